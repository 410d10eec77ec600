/**
 * Replays the committed histories of the experiment workflow tests with today's workflow code. A change to
 * the workflow that alters its command sequence without `patched()` fails here with a nondeterminism error.
 * Re-record after an intended change with `LABLINE_RECORD_HISTORIES=1 npx jest tests/workflows`.
 */
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { workflowBundle } from '../support/temporal';

const dir = path.join(__dirname, 'histories');

beforeAll(() => {
  // Replay workers log every state change at INFO; the test only needs errors.
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // Installed already in this process.
  }
});
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

test('there are recorded histories to replay', () => {
  expect(files.length).toBeGreaterThanOrEqual(8);
});

test.each(files)('%s replays without nondeterminism', async (file) => {
  const history: unknown = JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
  await expect(
    Worker.runReplayHistory({ workflowBundle: workflowBundle() }, history, file.replace(/\.json$/, '')),
  ).resolves.toBeUndefined();
});

test('a workflow changed without patched() fails to replay a committed history: the replays above can fail', async () => {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('./fixtures/changed-workflows'),
    logger: {
      log: () => {},
      trace: () => {},
      debug: () => {},
      info: () => {},
      warn: () => {},
      error: () => {},
    },
  });
  const history: unknown = JSON.parse(readFileSync(path.join(dir, 'experiment-accept.json'), 'utf8'));
  await expect(
    Worker.runReplayHistory({ workflowBundle: { code } }, history, 'experiment-accept'),
  ).rejects.toThrow(DeterminismViolationError);
}, 120_000);
