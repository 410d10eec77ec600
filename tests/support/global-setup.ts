/**
 * Bundles the workflow code once per test run (it takes seconds on a 2-core machine) and hands the bundle
 * to every test file through an environment variable, instead of a `workflowsPath` per worker.
 */
import { bundleWorkflowCode } from '@temporalio/worker';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

export default async function globalSetup(): Promise<void> {
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
