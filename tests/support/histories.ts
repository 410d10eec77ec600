/**
 * Recorded workflow histories for the replay suite (tests/replay): with LABLINE_RECORD_HISTORIES=1 a
 * scenario writes its history to tests/replay/histories/<name>.json, which the replay test then replays
 * with today's workflow code on every run. A workflow change that alters the command sequence without
 * `patched()` fails there. Re-record after an intended change: `LABLINE_RECORD_HISTORIES=1 npx jest tests/workflows`.
 */
import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';

export const historiesDir = path.join(__dirname, '../replay/histories');

export const recordingHistories = () => Boolean(process.env.LABLINE_RECORD_HISTORIES);

/** Writes the history of `workflowId` (its run `runId`, default the latest) as `<name>.json` when recording. */
export async function recordHistory(
  client: Client,
  workflowId: string,
  name: string,
  runId?: string,
): Promise<void> {
  if (!recordingHistories()) return;
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  writeFileSync(path.join(historiesDir, `${name}.json`), historyToJSON(history));
}

/**
 * The history of `workflowId` as text with every payload decoded, for asserting what is (or is not) in it:
 * payloads are bytes, base64 in JSON, so a secret inside one is invisible to a plain `JSON.stringify`.
 */
export async function historyText(client: Client, workflowId: string): Promise<string> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return JSON.stringify(JSON.parse(historyToJSON(history)), (key, value: unknown) =>
    key === 'data' && typeof value === 'string' ? Buffer.from(value, 'base64').toString('utf8') : value,
  );
}
