/**
 * Bundles the workflow code once per test run (it takes seconds on a 2-core machine) and hands the bundle
 * to every test file through an environment variable, instead of a `workflowsPath` per worker.
 *
 * With LABLINE_TEST_SERVER=temporal-cli (and no TEMPORAL_ADDRESS), it also starts one real Temporal dev server
 * (`temporal server start-dev`, headless, its SQLite file in a temp dir) for the whole run and points every test
 * file at it through TEMPORAL_ADDRESS; global-teardown.ts stops it.
 */
import { bundleWorkflowCode } from '@temporalio/worker';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { testServerKind, startTestTemporalCli } from './temporal-cli';

export default async function globalSetup(): Promise<void> {
  if (testServerKind() === 'temporal-cli' && !process.env.TEMPORAL_ADDRESS) await startTestTemporalCli();
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('./all-workflows'),
    logger: {
      log: () => undefined,
      trace: () => undefined,
      debug: () => undefined,
      info: () => undefined,
      warn: () => undefined,
      error: (m) => console.error(m),
    },
  });
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'labline-bundle-')), 'workflows.js');
  writeFileSync(file, code);
  process.env.LABLINE_TEST_WORKFLOW_BUNDLE = file;
}
