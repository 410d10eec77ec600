/**
 * `labline server`: a local Temporal and a Labline worker in one long-lived process, which `start`, `submit`,
 * `campaign`, `status` and the rest find through `<data_dir>/server.json`, so that experiments can be followed
 * after the command that started them has ended. `--detach` runs it in the background; `labline server stop`
 * stops it.
 */
import type { Command } from 'commander';
import { commandSummary } from './cli-registry';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseRetention } from '../devserver/cli';
import {
  firstInterrupt,
  loadWorkerModule,
  parseServerChoice,
  serverOptionHelp,
  STOP_TIMEOUT_MS,
  deferred,
} from './cli-start';
import type { GlobalOptions } from './cli-experiments';
import { connectWorker, temporalConfigured } from './connection';
import {
  isServerRecordLive,
  readServerRecord,
  serverRecordPath,
  startLocalTemporal,
  type LocalServerRecord,
} from './local-temporal';
import { loadSettings, type ResolvedSettings } from './settings';

interface ServerOptions {
  server?: string;
  port?: string;
  retention: string;
  detach?: boolean;
}

/** What the foreground server prints once its worker polls; `--detach` waits for this line in the log. */
const READY_LINE = 'Labline server ready';
/** How long `--detach` waits for the server to be ready (bundling the workflow code takes most of it). */
const DETACH_READY_TIMEOUT_MS = 120_000;
/** How long `server stop` waits for the server to exit. */
const STOP_WAIT_MS = 20_000;

export function addServerCommand(program: Command): void {
  const server = program
    .command('server')
    .description(commandSummary('server'))
    .option('--server <kind>', serverOptionHelp, 'auto')
    .option('--port <port>', 'gRPC port of the Temporal server (default: a free one)')
    .option('--retention <duration>', 'how long closed experiments are kept, e.g. 30d, 12h', '30d')
    .option(
      '--detach',
      'run in the background and return once it is ready; its output goes to <data_dir>/server.log',
    )
    .action(async (options: ServerOptions) => {
      const settings = loadSettings(program.opts<GlobalOptions>().config);
      refuseSecondServer(settings);
      const retentionMs = parseRetention(options.retention);
      const port = options.port === undefined ? undefined : parsePort(options.port);
      const choice = parseServerChoice(options.server);
      if (options.detach) {
        await detach(settings);
        return;
      }
      await runInForeground(settings, { server: choice, port, retentionMs });
    });

  server
    .command('stop')
    .description(
      'Stop the running `labline server` (experiments keep their state and continue when it is back).',
    )
    .action(async () => {
      const settings = loadSettings(program.opts<GlobalOptions>().config);
      await stopServer(settings);
    });
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`--port ${text}: give a port number between 1 and 65535.`);
  }
  return port;
}

/** Two servers on one data folder would write the same data file. */
function refuseSecondServer(settings: ResolvedSettings): void {
  if (temporalConfigured(settings)) {
    throw new Error(
      '`labline server` starts a local Temporal, but one is configured (TEMPORAL_ADDRESS, TEMPORAL_PROFILE or ' +
        'temporal.address in the settings). For that server, run `labline worker` instead.',
    );
  }
  const record = readServerRecord(settings.dataDir);
  if (record && isServerRecordLive(record)) {
    throw new Error(
      `A local server already runs for ${settings.dataDir}: ${describeOwner(record)} on ${record.address}. ` +
        (record.started_by === 'server'
          ? 'Use it as it is, or stop it with `labline server stop`.'
          : 'Wait for that command to end, or stop it with Ctrl-C.'),
    );
  }
}

function describeOwner(record: LocalServerRecord): string {
  return `\`labline ${record.started_by ?? 'start'}\` (pid ${record.owner_pid ?? record.pid})`;
}

async function runInForeground(
  settings: ResolvedSettings,
  options: { server: ReturnType<typeof parseServerChoice>; port?: number; retentionMs: number },
): Promise<void> {
  const { createLablineWorkers, installWorkerRuntime, runWorkers } = loadWorkerModule();
  installWorkerRuntime(process.env.LABLINE_LOG_LEVEL ?? 'WARN');
  const interrupt = firstInterrupt();
  const local = await startLocalTemporal({
    dataDir: settings.dataDir,
    server: options.server,
    port: options.port,
    retentionMs: options.retentionMs,
    startedBy: 'server',
    worker: true,
    log: (line) => console.log(line),
  });
  const stopWorkers = deferred();
  let workersDone: Promise<void> | undefined;
  const target = { address: local.address, connectionOptions: { address: local.address } };
  let connection: Awaited<ReturnType<typeof connectWorker>> | undefined;
  try {
    connection = await connectWorker({ ...target, namespace: 'default' });
    console.log('Starting the Labline worker (bundling workflow code)…');
    const workers = await createLablineWorkers({
      connection,
      namespace: 'default',
      settings,
      webUiUrl: local.ui_url ?? settings.temporal.ui_url,
    });
    workersDone = runWorkers(workers, stopWorkers.promise);
    console.log(
      `${READY_LINE}: Temporal on ${local.address}${local.ui_url ? ` (Web UI ${local.ui_url})` : ''}, ` +
        `worker serving ${Object.values(settings.task_queues).join(', ')}, data in ${settings.dataDir}. ` +
        'Stop it with Ctrl-C or `labline server stop`.',
    );
    const signal = await Promise.race([interrupt.received, workersDone.then(() => undefined)]);
    if (signal) console.log(`${signal}: stopping the Labline server (a second one stops it at once).`);
  } finally {
    const deadline = setTimeout(() => {
      console.error(`Not stopped within ${STOP_TIMEOUT_MS / 1000} s; exiting now.`);
      rmSync(serverRecordPath(settings.dataDir), { force: true });
      process.exit(process.exitCode ?? 1);
    }, STOP_TIMEOUT_MS);
    stopWorkers.resolve();
    await workersDone?.catch((error: unknown) => console.error(`worker: ${(error as Error).message}`));
    await connection?.close();
    await local.stop();
    clearTimeout(deadline);
    interrupt.dispose();
    console.log('Labline server stopped.');
  }
}

/** Starts this same command without `--detach` in the background and waits until it says it is ready. */
async function detach(settings: ResolvedSettings): Promise<void> {
  mkdirSync(settings.dataDir, { recursive: true });
  const logFile = path.join(settings.dataDir, 'server.log');
  const log = openSync(logFile, 'a');
  const readFrom = existsSync(logFile) ? readFileSync(logFile).length : 0;
  const args = process.argv.slice(1).filter((arg) => arg !== '--detach');
  const child = spawn(process.execPath, [...process.execArgv, ...args], {
    detached: true,
    stdio: ['ignore', log, log],
    env: process.env,
  });
  closeSync(log);
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  child.unref();
  const deadline = Date.now() + DETACH_READY_TIMEOUT_MS;
  for (;;) {
    const output = readFileSync(logFile).subarray(readFrom).toString('utf8');
    const ready = output.split('\n').find((line) => line.startsWith(READY_LINE));
    if (ready) {
      console.log(
        `${ready.replace(/ Stop it with.*$/, '')}\nRunning in the background as pid ${child.pid}; log: ${logFile}`,
      );
      console.log('Stop it with `labline server stop`.');
      return;
    }
    if (exited !== undefined || Date.now() > deadline) {
      if (exited === undefined) process.kill(child.pid!, 'SIGTERM');
      throw new Error(
        `The Labline server ${exited === undefined ? `was not ready within ${DETACH_READY_TIMEOUT_MS / 1000} s` : `exited (code ${exited})`}; ` +
          `its output (${logFile}):\n${output.trim() || '(none)'}`,
      );
    }
    await sleep(200);
  }
}

async function stopServer(settings: ResolvedSettings): Promise<void> {
  const file = serverRecordPath(settings.dataDir);
  const record = readServerRecord(settings.dataDir);
  if (!record) {
    console.log(`No local server is running for ${settings.dataDir} (${file} is missing).`);
    return;
  }
  if (!isServerRecordLive(record)) {
    rmSync(file, { force: true });
    console.log(`The local server recorded in ${file} had already stopped; removed its record.`);
    return;
  }
  if (record.started_by !== 'server') {
    throw new Error(
      `The local server belongs to ${describeOwner(record)}, which stops it when it ends; stop that command with Ctrl-C.`,
    );
  }
  const pid = record.owner_pid ?? record.pid;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + STOP_WAIT_MS;
  while (isServerRecordLive(record)) {
    if (Date.now() > deadline) {
      throw new Error(
        `The Labline server (pid ${pid}) did not stop within ${STOP_WAIT_MS / 1000} s; kill it with \`kill -9 ${pid}\`.`,
      );
    }
    await sleep(100);
  }
  console.log(`Stopped the Labline server (pid ${pid}).`);
}
