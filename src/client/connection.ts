/**
 * Which Temporal to talk to: a configured one (TEMPORAL_ADDRESS / TEMPORAL_PROFILE or the settings), read
 * with @temporalio/envconfig from temporal-config/config.toml, or else a local server (see local-temporal.ts).
 */
import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type * as WorkerLibrary from '@temporalio/worker';
import type { NativeConnection } from '@temporalio/worker';
import { existsSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from './project-root';
import {
  isServerRecordLive,
  readServerRecord,
  type LocalServerRecord,
  serverRecordPath,
  startLocalTemporal,
  type LocalTemporal,
  type ServerChoice,
} from './local-temporal';
import type { ResolvedSettings } from './settings';

export interface TemporalTarget {
  address: string;
  namespace: string;
  /** TLS and API key for Temporal Cloud, as envconfig resolved them. */
  connectionOptions: Parameters<typeof Connection.connect>[0];
  /** The Temporal Web UI's base URL, when the server has one (real dev server, or `temporal.ui_url`). */
  uiUrl?: string;
  /** Set when this process started a local server; stop it when done. */
  local?: LocalTemporal;
  /** Set when another Labline process's local server is used (`labline server`, another `start`). */
  shared?: LocalServerRecord;
}

const repoConfig = path.join(projectRoot(), 'temporal-config/config.toml');

/** Whether the user configured a Temporal server, so no local one may start. */
export function temporalConfigured(settings: ResolvedSettings): boolean {
  return Boolean(
    process.env.TEMPORAL_ADDRESS ||
    process.env.TEMPORAL_PROFILE ||
    settings.temporal.address ||
    settings.temporal.profile,
  );
}

function configuredTemporal(settings: ResolvedSettings): TemporalTarget {
  const configFile = process.env.TEMPORAL_CONFIG_FILE ?? (existsSync(repoConfig) ? repoConfig : undefined);
  const config = loadClientConnectConfig({
    profile: process.env.TEMPORAL_PROFILE ?? settings.temporal.profile,
    configSource: configFile ? { path: configFile } : undefined,
  });
  const address =
    process.env.TEMPORAL_ADDRESS ?? settings.temporal.address ?? config.connectionOptions.address;
  if (!address) {
    throw new Error(
      'A Temporal profile is configured but it names no address: set `address` in the profile or TEMPORAL_ADDRESS.',
    );
  }
  return {
    address,
    namespace: process.env.TEMPORAL_NAMESPACE ?? settings.temporal.namespace ?? config.namespace ?? 'default',
    connectionOptions: {
      ...(config.connectionOptions as object),
      address,
    },
    uiUrl: settings.temporal.ui_url,
  };
}

/**
 * Resolves the configured Temporal; without one, starts a local server (`server`: which one, default the real
 * dev server when the Temporal CLI is installed) with its data under the data folder.
 */
export async function resolveTemporal(
  settings: ResolvedSettings,
  options: {
    server?: ServerChoice;
    port?: number;
    log?: (line: string) => void;
    startedBy?: LocalServerRecord['started_by'];
  } = {},
): Promise<TemporalTarget> {
  if (temporalConfigured(settings)) return configuredTemporal(settings);
  const log = options.log ?? (() => undefined);
  // One server per data folder: two on the same data file would corrupt it.
  const announced = readServerRecord(settings.dataDir);
  if (announced && isServerRecordLive(announced)) {
    log(describeSharedServer(announced));
    return { ...sharedTarget(announced, settings), shared: announced };
  }
  if (announced) {
    log(`The local server recorded in ${serverRecordPath(settings.dataDir)} is gone; starting a new one.`);
    rmSync(serverRecordPath(settings.dataDir), { force: true });
  }
  const local = await startLocalTemporal({
    dataDir: settings.dataDir,
    server: options.server,
    port: options.port,
    log: options.log,
    startedBy: options.startedBy,
  });
  return {
    address: local.address,
    namespace: 'default',
    connectionOptions: { address: local.address },
    uiUrl: local.ui_url,
    local,
  };
}

/**
 * For commands that only talk to Temporal: the configured server, or the local one a running
 * `labline start` announced; never starts one (its data file belongs to that process).
 */
export async function findTemporal(settings: ResolvedSettings): Promise<TemporalTarget> {
  if (temporalConfigured(settings)) return configuredTemporal(settings);
  const record = readServerRecord(settings.dataDir);
  if (!record) {
    throw new Error(
      `No Temporal is configured and no local server is running (${serverRecordPath(settings.dataDir)} is missing).\n` +
        'Start one with `npx labline server` (it keeps running, with a worker), or point Labline at a server ' +
        'with TEMPORAL_ADDRESS.',
    );
  }
  if (!isServerRecordLive(record)) {
    throw new Error(
      `The local server recorded in ${serverRecordPath(settings.dataDir)} (pid ${record.owner_pid ?? record.pid}) ` +
        'is no longer running. Start one with `npx labline server`; your experiments are kept in its data folder.',
    );
  }
  return sharedTarget(record, settings);
}

function sharedTarget(record: LocalServerRecord, settings: ResolvedSettings): TemporalTarget {
  return {
    address: record.address,
    namespace: 'default',
    connectionOptions: { address: record.address },
    uiUrl: record.ui_url ?? settings.temporal.ui_url,
  };
}

function describeSharedServer(record: LocalServerRecord): string {
  const owner = record.owner_pid ?? record.pid;
  if (record.started_by === 'server') return `Using the Labline server on ${record.address} (pid ${owner}).`;
  return (
    `Using the local server of a running \`labline ${record.started_by ?? 'start'}\` (pid ${owner}) on ` +
    `${record.address}; it stops when that command ends. For one that stays, run \`labline server\`.`
  );
}

export async function connectClient(
  target: TemporalTarget,
): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect(target.connectionOptions);
  return { client: new Client({ connection, namespace: target.namespace }), connection };
}

export async function connectWorker(target: TemporalTarget): Promise<NativeConnection> {
  const { address, tls, apiKey, metadata } = target.connectionOptions ?? {};
  // Loaded here so that commands that run no worker do not load the worker library.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { NativeConnection } = require('@temporalio/worker') as typeof WorkerLibrary;
  return NativeConnection.connect({
    address,
    tls,
    apiKey: typeof apiKey === 'string' ? apiKey : undefined,
    metadata,
  });
}
