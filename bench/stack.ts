/**
 * The processes a Temporal benchmark measures: a server and a worker, each in its own process so that each
 * RSS and CPU time is its own, and a client in the benchmark's process; plus the workflow bundle the worker
 * loads, built once per run.
 *
 * The server is either Labline's embedded one (src/devserver, through a script such as `labline devserver`)
 * or the real Temporal dev server (`temporal server start-dev` of the Temporal CLI, started the way
 * `labline start` and the test harness start it). Both look the same to a benchmark: a `Server`.
 */
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  findTemporalCli,
  startTemporalCliServer,
  temporalCliInstallHint,
  temporalCliVersion,
} from '../src/client/temporal-cli-server';
import { lablineSearchAttributes } from '../src/devserver/labline-search-attributes';
import type { RunningProcess } from '../tests/support/processes';
import { exitOf, spawnTracked, stopProcess, trackKill, withTimeout } from './support';

// ---------------------------------------------------------------------------------------------------
// Servers

/** Which server: Labline's embedded one, or the real Temporal dev server of the Temporal CLI. */
export type ServerKind = 'embedded' | 'temporal-cli';
export const serverKinds: readonly ServerKind[] = ['embedded', 'temporal-cli'];

/** A running server, whichever kind. */
export interface Server {
  kind: ServerKind;
  pid: number;
  /** `host:port` of its gRPC front end. */
  address: string;
  /** Stops it (SIGTERM, SIGKILL after a grace period); resolves when it is gone. Safe to call twice. */
  stop(): Promise<void>;
  /** Rejects when the process exits before `stop` was called; never settles otherwise. */
  crashed: Promise<never>;
}

/** A promise that rejects with `error()` when `exited` settles, unless `stopping()` by then. */
function crashOf(exited: Promise<unknown>, stopping: () => boolean, error: () => Error): Promise<never> {
  const crashed = new Promise<never>((_, reject) => {
    void exited.then(() => {
      if (!stopping()) reject(error());
    });
  });
  // Only a run that races it cares; a crash after the run must not become an unhandled rejection.
  crashed.catch(() => undefined);
  return crashed;
}

/** Starts an embedded-server script and waits (bounded) until it says where it listens. */
export async function startEmbeddedServer(
  script: string,
  args: string[],
  timeouts: { processStartMs: number; processStopMs: number },
): Promise<Server> {
  const p = spawnTracked(script, args);
  const match = await p.waitFor(/listening on (127\.0\.0\.1:\d+)/, timeouts.processStartMs);
  let stopping = false;
  const exited = exitOf(p, 'server').catch(() => undefined);
  return {
    kind: 'embedded',
    pid: p.child.pid!,
    address: match[1]!,
    stop: () => {
      stopping = true;
      return stopProcess(p, timeouts.processStopMs);
    },
    crashed: crashOf(
      exited,
      () => stopping,
      () => new Error(`the embedded server exited during the run:\n${p.output().slice(-2000)}`),
    ),
  };
}

/**
 * Starts the real dev server, headless, with Labline's search attributes (temporal-config/
 * search-attributes.json) and the log level at warn: in memory, or in SQLite at `dbFile`; on `port`, or any
 * free one.
 */
export async function startRealServer(
  cli: string,
  options: { dbFile?: string; port?: number; processStartMs: number },
): Promise<Server> {
  const server = await startTemporalCliServer({
    cli,
    port: options.port,
    uiPort: false,
    logLevel: 'warn',
    searchAttributes: lablineSearchAttributes,
    dbFile: options.dbFile,
    startTimeoutMs: options.processStartMs,
  });
  trackKill(() => void server.kill());
  let stopping = false;
  return {
    kind: 'temporal-cli',
    pid: server.pid,
    address: server.address,
    stop: () => {
      stopping = true;
      return server.stop();
    },
    crashed: crashOf(
      server.exited,
      () => stopping,
      () => new Error(`the real Temporal dev server (${cli}, pid ${server.pid}) exited during the run`),
    ),
  };
}

/** A server to start: the embedded one, or the real one with the path of the Temporal CLI. */
export type ServerTarget = { kind: 'embedded' } | { kind: 'temporal-cli'; cli: string };

/** The servers a run measures, in order, and the Temporal CLI's version when the real server is one of them. */
export interface ServerSelection {
  targets: ServerTarget[];
  temporalCliVersion?: string;
}

/**
 * `--servers=embedded,temporal-cli` (default: both, in that order) or `--embedded-only`. Asking for the real
 * server without the Temporal CLI stops the run here, with how to install it.
 */
export function selectServers(argv: string[] = process.argv): ServerSelection {
  const listed = argv.find((a) => a.startsWith('--servers='))?.slice('--servers='.length);
  const kinds = argv.includes('--embedded-only')
    ? (['embedded'] as ServerKind[])
    : listed
      ? [...new Set(listed.split(','))].map((kind) => {
          if (!serverKinds.includes(kind as ServerKind))
            throw new Error(`--servers=${listed}: unknown server ${kind}; use ${serverKinds.join(', ')}.`);
          return kind as ServerKind;
        })
      : [...serverKinds];
  if (!kinds.includes('temporal-cli')) return { targets: kinds.map(() => ({ kind: 'embedded' })) };
  const cli = findTemporalCli();
  if (!cli)
    throw new Error(
      'This benchmark compares the embedded server with the real Temporal dev server, but no Temporal CLI ' +
        `was found. Install it with ${temporalCliInstallHint}, or pass --embedded-only.`,
    );
  return {
    targets: kinds.map((kind) => (kind === 'embedded' ? { kind } : { kind, cli })),
    temporalCliVersion: temporalCliVersion(cli),
  };
}

// ---------------------------------------------------------------------------------------------------
// A server, a worker and a client

export interface StackOptions {
  startServer: () => Promise<Server>;
  worker: {
    script: string;
    args: (serverAddress: string) => string[];
    /** The worker's line that says it polls; its match is handed to the stack's user. */
    ready: RegExp;
  };
  namespace: string;
  timeouts: { processStartMs: number; processStopMs: number };
}

export interface Stack {
  server: Server;
  worker: RunningProcess;
  workerReady: RegExpMatchArray;
  client: Client;
}

/** A server, a worker and a client, stopped together (the worker first) however `fn` ends. */
export async function withServerAndWorker<T>(
  options: StackOptions,
  fn: (stack: Stack) => Promise<T>,
): Promise<T> {
  const { processStartMs, processStopMs } = options.timeouts;
  const server = await options.startServer();
  let worker: RunningProcess | undefined;
  let connection: Connection | undefined;
  try {
    worker = spawnTracked(options.worker.script, options.worker.args(server.address));
    const workerReady = await worker.waitFor(options.worker.ready, processStartMs);
    connection = await withTimeout(
      Connection.connect({ address: server.address }),
      processStartMs,
      'client connection',
    );
    // A crashed server or worker fails the run at once instead of at a time limit.
    const crashed = Promise.race([server.crashed, exitOf(worker, 'worker')]);
    crashed.catch(() => undefined);
    const client = new Client({ connection, namespace: options.namespace });
    return await Promise.race([fn({ server, worker, workerReady, client }), crashed]);
  } finally {
    await connection?.close();
    if (worker) await stopProcess(worker, processStopMs);
    await server.stop();
  }
}

/** Bundles the workflows of `workflowsPath` into `dir/workflows.js`, quietly but for errors; returns its path. */
export async function bundleWorkflows(workflowsPath: string, dir: string): Promise<string> {
  const quiet = () => undefined;
  const { code } = await bundleWorkflowCode({
    workflowsPath,
    logger: {
      log: quiet,
      trace: quiet,
      debug: quiet,
      info: quiet,
      warn: quiet,
      error: (m) => console.error(m),
    },
  });
  const file = path.join(dir, 'workflows.js');
  writeFileSync(file, code);
  return file;
}
