import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { startTestTemporal, uniqueTaskQueue, withWorker, type TestTemporal } from '../support/temporal';
import { createConformanceActivities } from './activities';
import { echoWorkflow } from './workflows';

let env: TestTemporal;
const dir = mkdtempSync(path.join(tmpdir(), 'labline-conf-'));
beforeAll(async () => {
  env = await startTestTemporal();
});
afterAll(async () => env?.stop());

test('a workflow runs an activity and returns its result', async () => {
  const taskQueue = uniqueTaskQueue();
  const result = await withWorker(env, { taskQueue, activities: createConformanceActivities(dir) }, () =>
    env.client.workflow.execute(echoWorkflow, { taskQueue, workflowId: `echo-${taskQueue}`, args: ['hi'] }),
  );
  expect(result).toBe('echo:hi');
});
