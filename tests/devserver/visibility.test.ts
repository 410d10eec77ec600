import { status } from '@grpc/grpc-js';
import type { temporal } from '@temporalio/proto';
import { defineQuery } from '@temporalio/workflow';
import { startTestTemporal, uniqueTaskQueue, withWorker, type TestTemporal } from '../support/temporal';
import { createConformanceActivities } from './activities';
import { unblockSignal, visibilityWorkflow } from './workflows';

let env: TestTemporal;
beforeAll(async () => {
  env = await startTestTemporal();
});
afterAll(async () => env?.stop());

const count = 200;
const base = Date.parse('2026-01-01T00:00:00Z');
const taskQueue = uniqueTaskQueue('visibility');
const idOf = (i: number) => `vis-${taskQueue}-${String(i).padStart(3, '0')}`;

async function list(query: string, orderBy = ''): Promise<string[]> {
  const ids: string[] = [];
  for await (const execution of env.client.workflow.list({
    query: `TaskQueue = '${taskQueue}' AND (${query}) ${orderBy}`,
  })) {
    ids.push(execution.workflowId);
  }
  return ids;
}

const expectedIds = (predicate: (i: number) => boolean) =>
  Array.from({ length: count }, (_v, i) => i)
    .filter(predicate)
    .map(idOf)
    .sort();

describe('200 workflows started concurrently', () => {
  beforeAll(async () => {
    await withWorker(env, { taskQueue, activities: createConformanceActivities('/tmp') }, async () => {
      const handles = await Promise.all(
        Array.from({ length: count }, (_v, i) =>
          env.client.workflow.start(visibilityWorkflow, {
            taskQueue,
            workflowId: idOf(i),
            args: [i % 10 === 0 ? { LablineStage: ['upserted'] } : {}],
            searchAttributes: {
              TestKeyword: [i % 2 ? 'odd' : 'even'],
              TestInt: [i],
              TestDouble: [i / 4],
              TestBool: [i % 3 === 0],
              TestDatetime: [new Date(base + i * 60_000)],
              TestKeywordList: [`tag-${i % 5}`, 'all'],
              TestText: [i % 7 === 0 ? 'gradient noise dominates' : 'clean convergence'],
              ...(i < 20 ? { LablineProject: ['alpha'] } : {}),
            },
            memo: { index: i },
            staticSummary: `summary ${i}`,
            staticDetails: `details ${i}`,
          }),
        ),
      );
      await Promise.all(handles.map((h) => h.signal(unblockSignal, 'go')));
      await Promise.all(handles.map((h) => h.result()));
    });
    // Visibility is eventually consistent on a real Temporal: a closed workflow's record is updated by a
    // queue behind the history. Wait (bounded) until every run shows as completed before asking about them.
    const deadline = Date.now() + 30_000;
    const completed = `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Completed'`;
    while ((await env.client.workflow.count(completed)).count < count && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 100));
  }, 120_000);

  test('all complete', async () => {
    expect(await list(`ExecutionStatus = 'Completed'`)).toHaveLength(count);
    const counted = await env.client.workflow.count(
      `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Completed'`,
    );
    expect(counted.count).toBe(count);
  });

  test.each([
    ['TestInt < 50', (i: number) => i < 50],
    ["TestKeyword = 'odd' AND TestInt BETWEEN 10 AND 19", (i: number) => i % 2 === 1 && i >= 10 && i <= 19],
    ["TestKeyword != 'odd' OR TestInt >= 190", (i: number) => i % 2 === 0 || i >= 190],
    [
      "(TestKeyword = 'odd' OR TestInt = 4) AND TestInt <= 9",
      (i: number) => (i % 2 === 1 || i === 4) && i <= 9,
    ],
    ["TestKeywordList = 'tag-3'", (i: number) => i % 5 === 3],
    ["TestKeywordList IN ('tag-1', 'tag-2')", (i: number) => i % 5 === 1 || i % 5 === 2],
    ['TestInt IN (1, 2, 3, 500)', (i: number) => i >= 1 && i <= 3],
    ['TestDouble > 49.5', (i: number) => i / 4 > 49.5],
    ['TestBool = true AND TestInt < 30', (i: number) => i % 3 === 0 && i < 30],
    [`TestDatetime >= '${new Date(base + 195 * 60_000).toISOString()}'`, (i: number) => i >= 195],
    ["TestText = 'noise'", (i: number) => i % 7 === 0],
    ["LablineProject = 'alpha'", (i: number) => i < 20],
    ['LablineProject IS NULL AND TestInt < 25', (i: number) => i >= 20 && i < 25],
    ["LablineStage = 'upserted'", (i: number) => i % 10 === 0],
    [`WorkflowId STARTS_WITH 'vis-${taskQueue}-01'`, (i: number) => i >= 10 && i <= 19],
    [`WorkflowType = 'visibilityWorkflow' AND TestInt >= 199`, (i: number) => i >= 199],
  ])('the query %s returns exactly the expected set', async (query, predicate) => {
    expect((await list(query)).sort()).toEqual(expectedIds(predicate));
  });

  test('ORDER BY is refused with INVALID_ARGUMENT, as the SQLite store of the real dev server does', async () => {
    await expect(list('TestInt < 5', 'ORDER BY TestInt DESC')).rejects.toMatchObject({
      cause: {
        code: status.INVALID_ARGUMENT,
        details: "invalid query: operation is not supported: 'ORDER BY' clause",
      },
    });
  });

  test('describe returns memo, search attributes, static summary and details; the metadata query current details', async () => {
    const handle = env.client.workflow.getHandle(idOf(10));
    const description = await handle.describe();
    expect(description.memo).toEqual({ index: 10 });
    expect(description.searchAttributes.TestInt).toEqual([10]);
    expect(description.searchAttributes.LablineStage).toEqual(['upserted']);
    expect(await description.staticSummary()).toBe('summary 10');
    expect(await description.staticDetails()).toBe('details 10');
    // A query on a closed workflow is answered by a worker replaying its history.
    const metadata = await withWorker(env, { taskQueue }, () =>
      handle.query(defineQuery<temporal.api.sdk.v1.IWorkflowMetadata>('__temporal_workflow_metadata')),
    );
    expect(metadata.currentDetails).toBe('waiting for unblock; upserted LablineStage');
  });
});

test('an unregistered or mistyped search attribute is rejected at start with INVALID_ARGUMENT', async () => {
  const start = (searchAttributes: Record<string, unknown[]>) =>
    env.client.workflow.start(visibilityWorkflow, {
      taskQueue,
      workflowId: `bad-sa-${uniqueTaskQueue()}`,
      args: [{}],
      searchAttributes: searchAttributes as never,
    });
  await expect(start({ NoSuchAttribute: ['x'] })).rejects.toMatchObject({
    cause: { code: status.INVALID_ARGUMENT, details: expect.stringMatching(/NoSuchAttribute/) },
  });
  await expect(start({ TestInt: ['not a number'] })).rejects.toMatchObject({
    cause: { code: status.INVALID_ARGUMENT, details: expect.stringMatching(/TestInt/) },
  });
});

test('a malformed visibility query is INVALID_ARGUMENT and names the problem', async () => {
  await expect(list('TestInt <')).rejects.toMatchObject({
    cause: { code: status.INVALID_ARGUMENT, details: expect.stringMatching(/invalid query/) },
  });
  await expect(list("NoSuchAttribute = 'x'")).rejects.toMatchObject({
    cause: { code: status.INVALID_ARGUMENT, details: expect.stringMatching(/NoSuchAttribute/) },
  });
});
