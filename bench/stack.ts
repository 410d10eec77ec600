/**
 * The processes a Temporal benchmark measures: a server and a worker, each in its own process so that each
 * RSS and CPU time is its own, and a client in the benchmark's process; plus the workflow bundle the worker
 * loads, built once per run.
 */
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { RunningProcess } from '../tests/support/processes';
import { exitOf, spawnTracked, stopProcess, withTimeout } from './support';

export interface Server {
  process: RunningProcess;
  pid: number;
  address: string;
}

/** Starts a server script and waits (bounded) until it says where it listens. */
export async function startServerProcess(script: string, args: string[], startMs: number): Promise<Server> {
  const p = spawnTracked(script, args);
  const match = await p.waitFor(/listening on (127\.0\.0\.1:\d+)/, startMs);
  return { process: p, pid: p.child.pid!, address: match[1]! };
}

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
    const crashed = Promise.race([exitOf(server.process, 'server'), exitOf(worker, 'worker')]);
    crashed.catch(() => undefined);
    const client = new Client({ connection, namespace: options.namespace });
    return await Promise.race([fn({ server, worker, workerReady, client }), crashed]);
  } finally {
    await connection?.close();
    if (worker) await stopProcess(worker, processStopMs);
    await stopProcess(server.process, processStopMs);
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
