/**
 * The Temporal a local Labline process starts for itself when none is configured: the real dev server
 * (`temporal server start-dev`, with the Web UI) when the Temporal CLI is installed, else the embedded server.
 * `labline start` and `labline campaign` use it, and so will the long-lived `labline server`.
 *
 * While it runs, `<data_dir>/server.json` says where it is, so that `status`, `approve` and the other commands
 * of another terminal find it.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { z } from 'zod';
import { DEFAULT_RETENTION_MS } from '../devserver/engine';
import { startDevServer } from '../devserver/server';
import { lablineSearchAttributes } from '../devserver/labline-search-attributes';
import {
  identityOf,
  isProcessAlive,
  ProcessIdentity,
  writeRecordAtomic,
} from '../activities/training/local-attempt';
import { findTemporalCli, startTemporalCliServer, temporalCliInstallHint } from './temporal-cli-server';

/** `temporal-cli`: the real Temporal dev server; `embedded`: Labline's own; `auto`: the real one when installed. */
export const ServerChoice = z.enum(['auto', 'temporal-cli', 'embedded']);
export type ServerChoice = z.infer<typeof ServerChoice>;

/** What `<data_dir>/server.json` records about a running local server. */
export const LocalServerRecord = z.object({
  kind: z.enum(['temporal-cli', 'embedded']),
  address: z.string().min(1),
  /** The Web UI's base URL (real dev server only). */
  ui_url: z.string().optional(),
  pid: z.number().int(),
  /** The Labline process that started it and stops it with itself (the server's own pid for the embedded one). */
  owner_pid: z.number().int().optional(),
  /** Which command started it: `labline server` keeps it (and a worker) running; `start` and `campaign` do not. */
  started_by: z.enum(['server', 'start', 'campaign', 'reproduce']).optional(),
  /** Whether the owner runs a worker that serves every Labline task queue. */
  worker: z.boolean().optional(),
  /** The owner beyond its pid (start time, boot id): a pid reused after a reboot is not the owner. */
  owner: ProcessIdentity.optional(),
});
export type LocalServerRecord = z.infer<typeof LocalServerRecord>;

/** Whether the Labline process that announced a local server still runs (and so does the server). */
export function isServerRecordLive(record: LocalServerRecord): boolean {
  return isProcessAlive(record.owner ?? { pid: record.owner_pid ?? record.pid });
}

export interface LocalTemporal extends LocalServerRecord {
  /** Stops the server and removes `server.json`. */
  stop(): Promise<void>;
}

export function serverRecordPath(dataDir: string): string {
  return path.join(dataDir, 'server.json');
}

/** The local server another Labline process announced, if its record is there. */
export function readServerRecord(dataDir: string): LocalServerRecord | undefined {
  const file = serverRecordPath(dataDir);
  if (!existsSync(file)) return undefined;
  const parsed = LocalServerRecord.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success)
    throw new Error(
      `${file} is not a Labline server record (${parsed.error.issues[0]?.message}); delete it.`,
    );
  return parsed.data;
}

export interface LocalTemporalOptions {
  /** Where the server keeps its data (`temporal.db` or `devserver.wal`) and `server.json`. */
  dataDir: string;
  /** Which server; default `auto`. */
  server?: ServerChoice;
  /** gRPC port; default: a free one. */
  port?: number;
  /** Progress lines for the person at the terminal. */
  log?: (line: string) => void;
  /** The command starting it, recorded in `server.json`. Default `start`. */
  startedBy?: LocalServerRecord['started_by'];
  /** Whether this process also runs a worker for every Labline task queue. Default false. */
  worker?: boolean;
  /** How long closed experiments are kept (the namespace's retention), ms. Default 30 days. */
  retentionMs?: number;
}

/** Starts the local Temporal (see the module comment) and announces it in `server.json`. */
export async function startLocalTemporal(options: LocalTemporalOptions): Promise<LocalTemporal> {
  const log = options.log ?? (() => undefined);
  mkdirSync(options.dataDir, { recursive: true });
  const choice = options.server ?? 'auto';
  const cli = choice === 'embedded' ? undefined : findTemporalCli();
  if (choice === 'temporal-cli' && !cli)
    throw new Error(
      `--server temporal-cli: the temporal CLI is not installed. Install it with ${temporalCliInstallHint}.`,
    );

  let started: Omit<LocalTemporal, 'stop'> & { stopServer: () => Promise<void> };
  if (cli) {
    const server = await startTemporalCliServer({
      cli,
      port: options.port,
      dbFile: path.join(options.dataDir, 'temporal.db'),
      searchAttributes: lablineSearchAttributes,
    });
    started = {
      kind: 'temporal-cli',
      address: server.address,
      ui_url: server.uiUrl,
      pid: server.pid,
      stopServer: () => server.stop(),
    };
    log(
      `Started the Temporal dev server on ${server.address} (data in ${options.dataDir}; Web UI ${server.uiUrl})`,
    );
  } else {
    const server = await startDevServer({
      port: options.port ?? 0,
      db: path.join(options.dataDir, 'devserver.wal'),
      searchAttributes: lablineSearchAttributes,
    });
    started = {
      kind: 'embedded',
      address: server.address,
      pid: process.pid,
      stopServer: () => server.stop(),
    };
    log(`Started the embedded Temporal dev server on ${server.address} (data in ${options.dataDir})`);
    if (choice === 'auto')
      log(`For the Temporal Web UI, install the Temporal CLI: ${temporalCliInstallHint}.`);
  }
  const { stopServer, ...server } = started;
  try {
    await keepClosedWorkflows(server.address, options.retentionMs ?? DEFAULT_RETENTION_MS);
  } catch (error) {
    await stopServer(); // not left running behind a command that failed to start
    throw error;
  }
  const record: LocalServerRecord = {
    ...server,
    owner_pid: process.pid,
    started_by: options.startedBy ?? 'start',
    worker: options.worker ?? false,
    owner: identityOf(process.pid),
  };
  const recordFile = serverRecordPath(options.dataDir);
  writeRecordAtomic(recordFile, record);
  let stopping: Promise<void> | undefined;
  return {
    ...record,
    stop: () =>
      (stopping ??= (async () => {
        // Only our own record: another process may have announced its server since (ours being gone).
        if (readServerRecord(options.dataDir)?.owner_pid === process.pid) rmSync(recordFile, { force: true });
        await stopServer();
      })()),
  };
}

/**
 * Sets the default namespace's retention, on either server: the real dev server keeps closed workflows for a
 * day, too short for a researcher who comes back to last week's experiments.
 */
async function keepClosedWorkflows(address: string, retentionMs: number): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    await connection.workflowService.updateNamespace({
      namespace: 'default',
      config: { workflowExecutionRetentionTtl: msToTs(retentionMs) },
    });
  } finally {
    await connection.close();
  }
}
