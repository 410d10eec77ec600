/**
 * The Temporal the tests run against: the embedded dev server on a free port, or, when TEMPORAL_ADDRESS is
 * set, that server (with TEMPORAL_NAMESPACE, default `default`), so the same suite runs against Temporal.
 */
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { status } from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { startDevServer, type DevServer, type DevServerOptions } from '../../src/devserver/server';
import { ClosableRetries } from './grpc-retries';
import { temporal } from '@temporalio/proto';
import { testSearchAttributes } from './search-attributes';
import { testServerKind } from './temporal-cli';
import {
  findTemporalCli,
  startTemporalCliServer,
  type TemporalCliServer,
} from '../../src/client/temporal-cli-server';

export interface TestTemporal {
  address: string;
  namespace: string;
  connection: Connection;
  client: Client;
  /** The embedded server, when the suite is not pointed at an external one. */
  server?: DevServer;
  stop(): Promise<void>;
}

let runtimeInstalled = false;

function installRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({
      logger: new DefaultLogger(process.env.LABLINE_TEST_LOG_LEVEL === 'debug' ? 'DEBUG' : 'ERROR'),
    });
  } catch {
    // Already installed by another harness in this process.
  }
}

/** Whether the suite runs against an external Temporal (TEMPORAL_ADDRESS). */
export const externalTemporal = Boolean(process.env.TEMPORAL_ADDRESS);

/**
 * The server a test file uses: the run's shared one (TEMPORAL_ADDRESS, which a temporal-cli run sets), or an
 * embedded server of its own. A test that needs a server setting a real Temporal takes as dynamic config
 * (`suggestContinueAsNewEvents`) gets a real dev server of its own in a temporal-cli run.
 */
export async function startTestTemporal(options: Omit<DevServerOptions, 'port'> = {}): Promise<TestTemporal> {
  installRuntime();
  let server: DevServer | undefined;
  let ownRealServer: TemporalCliServer | undefined;
  let address = process.env.TEMPORAL_ADDRESS;
  const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
  if (testServerKind() === 'temporal-cli' && options.suggestContinueAsNewEvents !== undefined) {
    ownRealServer = await startTemporalCliServer({
      cli: findTemporalCli()!,
      uiPort: false,
      searchAttributes: testSearchAttributes,
      dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': options.suggestContinueAsNewEvents },
    });
    address = ownRealServer.address;
  } else if (!address) {
    server = await startDevServer({ port: 0, longPollTimeoutMs: 10_000, ...options });
    address = server.address;
  }
  const retries = new ClosableRetries();
  const connection = await Connection.connect({ address, interceptors: [retries.interceptor] });
  await registerSearchAttributes(connection, namespace);
  const client = new Client({ connection, namespace });
  return {
    address,
    namespace,
    connection,
    client,
    server,
    async stop() {
      await retries.drain();
      await connection.close();
      await server?.stop();
      await ownRealServer?.stop();
    },
  };
}

async function registerSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const { IndexedValueType } = temporal.api.enums.v1;
  const types: Record<string, number> = {
    Keyword: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    Text: IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
    Int: IndexedValueType.INDEXED_VALUE_TYPE_INT,
    Double: IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    Bool: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    Datetime: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    KeywordList: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
  };
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = Object.entries(testSearchAttributes).filter(([name]) => !existing.customAttributes?.[name]);
  if (missing.length === 0) return;
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map(([name, type]) => [name, types[type]!])),
    });
  } catch (error) {
    if ((error as { code?: number }).code !== status.ALREADY_EXISTS) throw error;
  }
}

export function uniqueTaskQueue(prefix = 'test'): string {
  return `${prefix}-${randomUUID()}`;
}

/** The workflow bundle global-setup.ts wrote. */
export function workflowBundle(): { codePath: string } {
  const codePath = process.env.LABLINE_TEST_WORKFLOW_BUNDLE;
  if (!codePath)
    throw new Error('LABLINE_TEST_WORKFLOW_BUNDLE is not set: run the tests through jest (global setup).');
  return { codePath };
}

export type TestWorkerOptions = Omit<
  WorkerOptions,
  'connection' | 'namespace' | 'workflowBundle' | 'workflowsPath'
>;

/** Runs `fn` while a worker polls, then shuts the worker down and waits for it. */
export async function withWorker<T>(
  env: TestTemporal,
  options: TestWorkerOptions,
  fn: (worker: Worker) => Promise<T>,
): Promise<T> {
  const connection = await NativeConnection.connect({ address: env.address });
  const worker = await Worker.create({
    connection,
    namespace: env.namespace,
    workflowBundle: workflowBundle(),
    shutdownGraceTime: '1s',
    ...options,
  });
  try {
    return await worker.runUntil(fn(worker));
  } finally {
    await connection.close();
  }
}
