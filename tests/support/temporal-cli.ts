/**
 * The real Temporal dev server for the suite: which server a run uses (LABLINE_TEST_SERVER), and starting and
 * stopping the one `temporal server start-dev` that a run against the real server shares.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  findTemporalCli,
  startTemporalCliServer,
  temporalCliInstallHint,
  temporalCliVersion,
  type TemporalCliServer,
} from '../../src/client/temporal-cli-server';
import { testSearchAttributes } from './search-attributes';

export type TestServerKind = 'embedded' | 'temporal-cli';

/** LABLINE_TEST_SERVER: `embedded` (default) or `temporal-cli`; anything else is a mistake worth stopping for. */
export function testServerKind(): TestServerKind {
  const kind = process.env.LABLINE_TEST_SERVER ?? 'embedded';
  if (kind !== 'embedded' && kind !== 'temporal-cli')
    throw new Error(`LABLINE_TEST_SERVER=${kind}: use embedded (the default) or temporal-cli.`);
  return kind;
}

interface RunningServer {
  server: TemporalCliServer;
  dataDir: string;
}

const key = Symbol.for('labline.test.temporal-cli');
type Holder = { [key]?: RunningServer };

export async function startTestTemporalCli(): Promise<void> {
  const cli = findTemporalCli();
  if (!cli)
    throw new Error(
      `LABLINE_TEST_SERVER=temporal-cli, but no temporal CLI was found: ${temporalCliInstallHint}.`,
    );
  const dataDir = mkdtempSync(path.join(tmpdir(), 'labline-temporal-cli-'));
  const server = await startTemporalCliServer({
    cli,
    uiPort: false,
    dbFile: path.join(dataDir, 'temporal.db'),
    searchAttributes: testSearchAttributes,
    logLevel: 'warn',
  });
  (globalThis as Holder)[key] = { server, dataDir };
  process.env.TEMPORAL_ADDRESS = server.address;
  process.env.TEMPORAL_NAMESPACE = 'default';
  console.log(`\nTests run on the real Temporal dev server: ${temporalCliVersion(cli)} at ${server.address}`);
}

export async function stopTestTemporalCli(): Promise<void> {
  const running = (globalThis as Holder)[key];
  if (!running) return;
  delete (globalThis as Holder)[key];
  await running.server.stop();
  rmSync(running.dataDir, { recursive: true, force: true });
}
