/**
 * The embedded Temporal-compatible development server: Temporal's WorkflowService and OperatorService
 * over gRPC on 127.0.0.1, backed by the engine, optionally persisted to a write-ahead log.
 */
import * as grpc from '@grpc/grpc-js';
import { Engine, type CallLike } from './engine';
import { ServiceError } from './errors';
import { duration, durationToMs, serviceDefinition, type Pb } from './proto';
import {
  indexedValueTypeOf,
  searchAttributeTypes,
  typeNameOf,
  type SearchAttributeTypeName,
} from './search-attributes';
import { WriteAheadLog } from './store';
import { builtInSearchAttributes } from './visibility-query';
import { invalidArgument, notFound, requireLongPollDeadline } from './errors';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface DevServerOptions {
  /** TCP port; 0 picks a free one. Default 7233. */
  port?: number;
  /** Interface to listen on. Default 127.0.0.1 (loopback only). */
  ip?: string;
  /** Write-ahead log file or directory; without it the server keeps everything in memory. */
  db?: string;
  /** Namespaces to create besides `default`. */
  namespaces?: string[];
  /** Custom search attributes to register in every namespace (name → type). */
  searchAttributes?: Record<string, SearchAttributeTypeName>;
  /** Least severe message written to stderr. Default `warn`. */
  logLevel?: LogLevel;
  /** How long an empty long poll waits. Default 60 s, as in Temporal. */
  longPollTimeoutMs?: number;
  /** How long closed workflows are kept before deletion. Default 30 days. */
  retentionMs?: number;
  /** Log bytes appended after which the data file is compacted. Default 64 MiB. */
  compactAfterBytes?: number;
  /** History length at which workflow tasks suggest continue-as-new. Default 4096 events (tests lower it). */
  suggestContinueAsNewEvents?: number;
}

export interface DevServer {
  /** `host:port` to give to `Connection.connect` / `NativeConnection.connect`. */
  readonly address: string;
  readonly port: number;
  readonly engine: Engine;
  stop(): Promise<void>;
}

/** Version reported by GetSystemInfo: the Temporal API generation this server follows. */
export const devServerVersion = '1.29.0-labline';

const levels: LogLevel[] = ['debug', 'info', 'warn', 'error'];

export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const threshold = levels.indexOf(options.logLevel ?? 'warn');
  const log = (level: LogLevel, message: string) => {
    if (levels.indexOf(level) >= threshold) process.stderr.write(`[devserver ${level}] ${message}\n`);
  };
  const engineOptions = {
    namespaces: options.namespaces,
    log,
    longPollTimeoutMs: options.longPollTimeoutMs,
    retentionMs: options.retentionMs,
    compactAfterBytes: options.compactAfterBytes,
    suggestContinueAsNewEvents: options.suggestContinueAsNewEvents,
  };
  let engine: Engine;
  if (options.db) {
    const replayed: unknown[] = [];
    const wal = await WriteAheadLog.open(options.db, (tx) => replayed.push(tx));
    engine = new Engine(engineOptions, wal);
    for (const tx of replayed) engine.replay(tx);
    await engine.resumeAfterReplay();
  } else {
    engine = new Engine(engineOptions);
  }
  await engine.transact(() => {
    for (const ns of engine.namespaces.values()) {
      const missing = Object.entries(options.searchAttributes ?? {}).filter(
        ([name]) => !ns.searchAttributes.types.has(name),
      );
      if (missing.length) engine.addSearchAttributes(ns.name, Object.fromEntries(missing));
    }
  });

  const server = new grpc.Server({
    'grpc.max_receive_message_length': 128 * 1024 * 1024,
    'grpc.max_send_message_length': 128 * 1024 * 1024,
  });
  server.addService(
    serviceDefinition('temporal.api.workflowservice.v1.WorkflowService'),
    wrapHandlers(workflowServiceHandlers(engine), log),
  );
  server.addService(
    serviceDefinition('temporal.api.operatorservice.v1.OperatorService'),
    wrapHandlers(operatorServiceHandlers(engine), log),
  );
  const ip = options.ip ?? '127.0.0.1';
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      `${ip}:${options.port ?? 7233}`,
      grpc.ServerCredentials.createInsecure(),
      (error, bound) => (error ? reject(error) : resolve(bound)),
    ),
  );
  log('info', `listening on ${ip}:${port}${options.db ? ` with data in ${options.db}` : ' (in memory)'}`);
  let stopping: Promise<void> | undefined;
  return {
    address: `${ip}:${port}`,
    port,
    engine,
    stop: () =>
      (stopping ??= (async () => {
        await engine.stop();
        await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
        server.forceShutdown();
      })()),
  };
}

type Handler = (request: Pb, call: ServerCall) => Pb | void | Promise<Pb | void>;

/** What handlers see of a gRPC call: cancellation (long polls) and the caller's deadline. */
type ServerCall = CallLike & { getDeadline(): grpc.Deadline };

function wrapHandlers(
  handlers: Record<string, Handler>,
  log: (level: LogLevel, message: string) => void,
): grpc.UntypedServiceImplementation {
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(handlers)) {
    implementation[name] = (call: grpc.ServerUnaryCall<Pb, Pb>, callback: grpc.sendUnaryData<Pb>) => {
      Promise.resolve()
        .then(() => handler(call.request, call))
        .then(
          (response) => callback(null, response ?? {}),
          (error: unknown) => {
            if (error instanceof ServiceError) {
              log('debug', `${name}: ${grpc.status[error.code]} ${error.message}`);
              callback({ code: error.code, details: error.message });
            } else {
              // A bug here must not stop the server: the caller gets INTERNAL and the server goes on.
              log('error', `${name}: ${(error as Error)?.stack ?? String(error)}`);
              callback({ code: grpc.status.INTERNAL, details: (error as Error)?.message ?? String(error) });
            }
          },
        );
    };
  }
  return implementation;
}

function workflowServiceHandlers(engine: Engine): Record<string, Handler> {
  const tx =
    (change: (request: Pb, call: CallLike) => Pb | void | Promise<Pb>) => (request: Pb, call: CallLike) =>
      engine.transact(() => change(request, call));
  return {
    GetSystemInfo: () => ({
      serverVersion: devServerVersion,
      capabilities: {
        signalAndQueryHeader: true,
        internalErrorDifferentiation: true,
        activityFailureIncludeHeartbeat: true,
        supportsSchedules: false,
        encodedFailureAttributes: true,
        buildIdBasedVersioning: false,
        upsertMemo: true,
        eagerWorkflowStart: false,
        sdkMetadata: true,
        countGroupByExecutionStatus: false,
        nexus: false,
      },
    }),
    GetClusterInfo: () => ({
      supportedClients: {},
      serverVersion: devServerVersion,
      clusterId: 'labline-devserver',
      clusterName: 'labline-devserver',
      historyShardCount: 1,
      persistenceStore: 'labline-wal',
      visibilityStore: 'labline-memory',
    }),
    DescribeNamespace: (req) => {
      if (!req.id) return describeNamespace(engine.namespace(req.namespace as string));
      const ns = [...engine.namespaces.values()].find((candidate) => candidate.id === req.id);
      if (!ns) throw notFound(`Namespace ${String(req.id)} is not found.`);
      return describeNamespace(ns);
    },
    ListNamespaces: () => ({ namespaces: [...engine.namespaces.values()].map(describeNamespace) }),
    UpdateNamespace: tx((req) => describeNamespace(engine.updateNamespace(req))),
    RegisterNamespace: tx((req) =>
      engine.registerNamespace(
        req.namespace as string,
        durationToMs(req.workflowExecutionRetentionPeriod as Pb),
      ),
    ),
    GetSearchAttributes: () => ({ keys: searchAttributeMap(engine, 'default') }),
    StartWorkflowExecution: tx((req) => {
      if (req.requestEagerExecution) delete req.requestEagerExecution; // not advertised, so never honoured
      return engine.startWorkflow(req);
    }),
    SignalWorkflowExecution: tx((req) => engine.signalWorkflow(req)),
    SignalWithStartWorkflowExecution: tx((req) => engine.signalWithStart(req)),
    RequestCancelWorkflowExecution: tx((req) => engine.requestCancelWorkflow(req)),
    TerminateWorkflowExecution: tx((req) => engine.terminateWorkflow(req)),
    DeleteWorkflowExecution: tx((req) => engine.deleteWorkflow(req)),
    QueryWorkflow: tx((req, call) => engine.queryWorkflow(req, call)),
    UpdateWorkflowExecution: (req, call) =>
      engine.transact(() => engine.updateWorkflow(req, call, deadlineOf(call))),
    PollWorkflowExecutionUpdate: (req, call) => engine.pollWorkflowUpdate(req, call, deadlineOf(call)),
    DescribeWorkflowExecution: (req) => engine.describeWorkflow(req),
    DescribeTaskQueue: (req) => engine.describeTaskQueue(req),
    GetWorkflowExecutionHistory: (req, call) => engine.getHistory(req, call),
    ListWorkflowExecutions: (req) => engine.listWorkflows(req),
    ScanWorkflowExecutions: (req) => engine.listWorkflows(req),
    CountWorkflowExecutions: (req) => engine.countWorkflows(req),
    PollWorkflowTaskQueue: (req, call) => {
      requireLongPollDeadline(call.getDeadline());
      return engine.pollWorkflowTask(req, call);
    },
    PollActivityTaskQueue: (req, call) => {
      requireLongPollDeadline(call.getDeadline());
      return engine.pollActivityTask(req, call);
    },
    RespondWorkflowTaskCompleted: tx((req) => engine.respondWorkflowTaskCompleted(req)),
    RespondWorkflowTaskFailed: tx((req) => engine.respondWorkflowTaskFailed(req)),
    RespondQueryTaskCompleted: tx((req) => engine.respondQueryTaskCompleted(req)),
    RecordActivityTaskHeartbeat: tx((req) => engine.recordActivityHeartbeat(req)),
    RespondActivityTaskCompleted: tx((req) => engine.respondActivityCompleted(req)),
    RespondActivityTaskFailed: tx((req) => engine.respondActivityFailed(req)),
    RespondActivityTaskCanceled: tx((req) => engine.respondActivityCanceled(req)),
    ShutdownWorker: tx((req) => engine.shutdownWorker(req)),
    ResetStickyTaskQueue: tx((req) => engine.resetStickyTaskQueue(req)),
  };
}

/** The caller's deadline in epoch milliseconds; undefined when it set none. */
function deadlineOf(call: ServerCall): number | undefined {
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) ? ms : undefined;
}

function describeNamespace(ns: { name: string; id: string; retentionMs: number }): Pb {
  return {
    namespaceInfo: {
      name: ns.name,
      id: ns.id,
      state: 1, // NAMESPACE_STATE_REGISTERED
      description: 'Labline dev server namespace',
      capabilities: { workerPollCompleteOnShutdown: true, syncUpdate: true, asyncUpdate: true },
    },
    config: { workflowExecutionRetentionTtl: duration(ns.retentionMs) },
    isGlobalNamespace: false,
  };
}

function searchAttributeMap(engine: Engine, namespace: string): Record<string, number> {
  const map: Record<string, number> = {};
  for (const [name, type] of Object.entries(builtInSearchAttributes)) map[name] = indexedValueTypeOf[type];
  for (const [name, type] of engine.namespace(namespace).searchAttributes.types)
    map[name] = indexedValueTypeOf[type];
  return map;
}

function operatorServiceHandlers(engine: Engine): Record<string, Handler> {
  const namespaceOf = (req: Pb) => (req.namespace as string) || 'default';
  return {
    AddSearchAttributes: (req) =>
      engine.transact(() => {
        const attributes: Record<string, SearchAttributeTypeName> = {};
        for (const [name, value] of Object.entries((req.searchAttributes as Record<string, number>) ?? {})) {
          const type = typeNameOf(value);
          if (!type) {
            throw invalidArgument(
              `Unable to read search attribute type for ${name}: use one of ${searchAttributeTypes.join(', ')}.`,
            );
          }
          if (name in builtInSearchAttributes) {
            throw invalidArgument(`Search attribute ${name} is reserved by system.`);
          }
          attributes[name] = type;
        }
        engine.addSearchAttributes(namespaceOf(req), attributes);
      }),
    RemoveSearchAttributes: (req) =>
      engine.transact(() =>
        engine.removeSearchAttributes(namespaceOf(req), (req.searchAttributes as string[]) ?? []),
      ),
    ListSearchAttributes: (req) => {
      const custom: Record<string, number> = {};
      for (const [name, type] of engine.namespace(namespaceOf(req)).searchAttributes.types) {
        custom[name] = indexedValueTypeOf[type];
      }
      const system: Record<string, number> = {};
      for (const [name, type] of Object.entries(builtInSearchAttributes))
        system[name] = indexedValueTypeOf[type];
      return { customAttributes: custom, systemAttributes: system, storageSchema: {} };
    },
  };
}
