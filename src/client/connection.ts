/**
 * Which Temporal to talk to: a configured one (TEMPORAL_ADDRESS / TEMPORAL_PROFILE or the settings), read
 * with @temporalio/envconfig from temporal-config/config.toml, or else the embedded dev server.
 */
import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type * as WorkerLibrary from '@temporalio/worker';
import type { NativeConnection } from '@temporalio/worker';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { startDevServer, type DevServer } from '../devserver/server';
import { lablineSearchAttributes } from '../devserver/labline-search-attributes';
import type { ResolvedSettings } from './settings';

export interface TemporalTarget {
  address: string;
  namespace: string;
  /** TLS and API key for Temporal Cloud, as envconfig resolved them. */
  connectionOptions: Parameters<typeof Connection.connect>[0];
  /** Set when Labline started the embedded server; stop it when done. */
  embedded?: DevServer;
}

const repoConfig = path.resolve(__dirname, '../../temporal-config/config.toml');

/** Whether the user configured a Temporal server, so the embedded one must not start. */
export function temporalConfigured(settings: ResolvedSettings): boolean {
  return Boolean(
    process.env.TEMPORAL_ADDRESS ||
    process.env.TEMPORAL_PROFILE ||
    settings.temporal.address ||
    settings.temporal.profile,
  );
}

/** Resolves the configured Temporal, or starts the embedded server with its data under the data folder. */
export async function resolveTemporal(
  settings: ResolvedSettings,
  options: { embeddedPort?: number; log?: (line: string) => void } = {},
): Promise<TemporalTarget> {
  if (temporalConfigured(settings)) {
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
      namespace:
        process.env.TEMPORAL_NAMESPACE ?? settings.temporal.namespace ?? config.namespace ?? 'default',
      connectionOptions: {
        ...(config.connectionOptions as object),
        address,
      },
    };
  }
  const embedded = await startDevServer({
    port: options.embeddedPort ?? 0,
    db: path.join(settings.dataDir, 'devserver.wal'),
    searchAttributes: lablineSearchAttributes,
  });
  // Other `labline` commands (approve, status…) find the running embedded server through this file.
  const addressFile = path.join(settings.dataDir, 'devserver.address');
  writeFileSync(addressFile, embedded.address);
  const stop = embedded.stop.bind(embedded);
  const owned: DevServer = {
    ...embedded,
    stop: async () => {
      rmSync(addressFile, { force: true });
      await stop();
    },
  };
  options.log?.(
    `Started the embedded Temporal dev server on ${embedded.address} (data in ${settings.dataDir})`,
  );
  return {
    address: embedded.address,
    namespace: 'default',
    connectionOptions: { address: embedded.address },
    embedded: owned,
  };
}

/**
 * For commands that only talk to Temporal: the configured server, or the embedded one a running
 * `labline start` announced; never starts one (its data file belongs to that process).
 */
export async function findTemporal(settings: ResolvedSettings): Promise<TemporalTarget> {
  if (temporalConfigured(settings)) return resolveTemporal(settings);
  const addressFile = path.join(settings.dataDir, 'devserver.address');
  if (!existsSync(addressFile)) {
    throw new Error(
      `No Temporal is configured and no embedded server is running (${addressFile} is missing).\n` +
        'Run `npx labline start <spec>` (it starts one), or point Labline at a server with TEMPORAL_ADDRESS.',
    );
  }
  const address = readFileSync(addressFile, 'utf8').trim();
  return { address, namespace: 'default', connectionOptions: { address } };
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
