/**
 * The experiment workflow with the agents on: one activity per agent on the agents task queue, served by a
 * worker of its own whose provider is the OpenAI one, talking to a fake OpenAI on 127.0.0.1. The workflow
 * worker's own agent activities are the offline ones, so a model name in the results proves the queue.
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  ExperimentSpec,
  ResultsPayload,
  type ExperimentSpecInput,
  type ExperimentStatus,
} from '../../src/experiment';
import { AgentsSettings, agentProviderFromSettings } from '../../src/activities/agents/agent-settings';
import { createAgentActivities } from '../../src/activities/agents/activities';
import { experimentHandle, experimentStatus, submitExperiment } from '../../src/client/experiments';
import { decideWhenWaiting, experimentRig, trainerSpec, waitForStatus } from '../support/experiments';
import { FakeOpenAI } from '../support/fake-openai';
import { recordHistory } from '../support/histories';
import { startTestTemporal, withWorker, type TestTemporal } from '../support/temporal';

let env: TestTemporal;
let fake: FakeOpenAI;
beforeAll(async () => {
  env = await startTestTemporal();
});
afterAll(async () => env?.stop());
beforeEach(async () => {
  fake = await FakeOpenAI.start();
});
afterEach(async () => fake?.close());

let counter = 0;
const newId = (label: string) => `exp-agents-${label}-${process.pid}-${++counter}-${Date.now() % 100000}`;

const ALL_AGENTS = ['performance', 'baselines', 'ablations', 'report', 'blog', 'paper'];

function agentsSpec(id: string, overrides: Partial<ExperimentSpecInput> = {}): ExperimentSpecInput {
  return trainerSpec(id, [], {
    approvals: { launch: { enabled: false }, publish: { enabled: false }, failure: { approvers: ['alice'] } },
    analysis_pipeline: {
      analyses: ['performance', 'baselines', 'ablations'],
      writers: ['report', 'blog', 'paper'],
      metric_goals: { 'eval/accuracy': 'max' },
    },
    baselines: [{ name: 'logistic regression', metric: 'eval/accuracy', values: [0.8, 0.82, 0.81] }],
    budgets: { max_training_attempts: 2, max_preemption_restarts: 2, llm_cost_usd: 1 },
    ...overrides,
  });
}

/**
 * Runs the experiment with two workers: the rig's (workflows, training, tracking, writing; offline agents)
 * and one on the agents queue with the OpenAI provider pointed at the fake.
 */
async function run<T>(
  input: ExperimentSpecInput,
  drive: (id: string) => Promise<T>,
  agentSettings: Record<string, unknown> = {},
): Promise<{ result: T; status: ExperimentStatus; runsRoot: string }> {
  const rig = experimentRig();
  const agentsQueue = `${rig.taskQueue}-agents`;
  const settings = { ...rig.settings, task_queues: { ...rig.settings.task_queues, agents: agentsQueue } };
  const provider = agentProviderFromSettings(
    AgentsSettings.parse({
      provider: 'openai',
      base_url: fake.baseURL,
      model: 'gpt-4o-mini',
      ...agentSettings,
    }),
    { OPENAI_API_KEY: fake.apiKey },
  );
  const connection = await NativeConnection.connect({ address: env.address });
  const agentsWorker = await Worker.create({
    connection,
    namespace: env.namespace,
    taskQueue: agentsQueue,
    activities: createAgentActivities({ provider }),
    shutdownGraceTime: '1s',
  });
  const spec = ExperimentSpec.parse(input);
  try {
    return await agentsWorker.runUntil(
      withWorker(env, { taskQueue: rig.taskQueue, activities: rig.activities }, async () => {
        await submitExperiment({ client: env.client, spec, settings });
        const result = await drive(spec.experiment_id);
        if (input.experiment_id?.includes('-e2e-'))
          await recordHistory(env.client, spec.experiment_id, 'experiment-agents');
        return {
          result,
          status: await experimentStatus(env.client, spec.experiment_id),
          runsRoot: rig.runsRoot,
        };
      }),
    );
  } finally {
    await connection.close();
  }
}

test('agents on: each agent runs on the agents queue, grounded, costed and recorded, and every document is written', async () => {
  const id = newId('e2e');
  // The first model call is rate limited: Temporal retries the activity after Retry-After.
  fake.reply({ status: 429, message: 'Rate limit reached', headers: { 'retry-after-ms': '200' } });
  // The blog writer invents a number once; the revision drops it.
  fake.fallback = (request) =>
    request.agent === 'blog' && fake.requestsOf('blog').length === 1
      ? {
          offline: true,
          edit: (post) => ({ ...post, lead: `${post.lead as string} It beat 0.777 of runs.` }),
        }
      : { offline: true };
  const { result, status, runsRoot } = await run(agentsSpec(id), async () =>
    experimentHandle(env.client, id).result(),
  );

  expect(result.end_stage).toBe('completed');
  const reports = ResultsPayload.parse(result).analysis_reports;
  expect(reports.map((report) => report.agent)).toEqual(ALL_AGENTS);
  for (const report of reports) {
    const promptFile = report.agent === 'performance' ? 'performance.v2' : `${report.agent}.v1`;
    expect(report).toMatchObject({ model: 'gpt-4o-mini', prompt_version: `${promptFile}+rules.v1` });
    expect(report.cost_usd).toBeGreaterThan(0);
    expect(report.unverified_numbers).toEqual([]);
  }
  expect(fake.requestsOf('performance')).toHaveLength(2);
  const blog = reports.find((report) => report.agent === 'blog')!;
  expect(blog.calls!.map((call) => call.purpose)).toEqual(['answer', 'revision']);
  expect(fake.requestsOf('blog')[1]!.body.messages[3]!.content).toMatch(/0\.777/);

  const calls = reports.flatMap((report) => report.calls ?? []);
  expect(result.costs.llm_prompt_tokens).toBe(calls.reduce((sum, call) => sum + call.prompt_tokens, 0));
  expect(result.costs.llm_completion_tokens).toBe(
    calls.reduce((sum, call) => sum + call.completion_tokens, 0),
  );
  expect(result.costs.llm_usd).toBeCloseTo(
    reports.reduce((sum, report) => sum + (report.cost_usd ?? 0), 0),
    12,
  );
  expect(status.costs).toEqual(result.costs);
  expect(status.analysis_reports).toEqual(result.analysis_reports);

  const runDir = path.join(runsRoot, id);
  for (const file of ['report.md', 'blog.md', 'paper.tex', 'ablations.json', 'results.json'])
    expect(existsSync(path.join(runDir, file))).toBe(true);
  expect(reports.find((report) => report.agent === 'paper')!.path).toBe(path.join(runDir, 'paper.tex'));
  expect(reports.find((report) => report.agent === 'ablations')!.path).toBe(
    path.join(runDir, 'ablations.json'),
  );
  const report = readFileSync(path.join(runDir, 'report.md'), 'utf8');
  expect(report).toContain('## Comparison with baselines');
  expect(report.split('## Numbers in this report')[1]).not.toContain('not found in the facts');
  expect(readFileSync(path.join(runDir, 'paper.tex'), 'utf8')).toContain('written by gpt-4o-mini');
});

test('results.json is the workflow result (and the reproducibility record): the same end time, duration and document paths', async () => {
  const id = newId('results');
  const { result, runsRoot } = await run(agentsSpec(id), async () =>
    experimentHandle(env.client, id).result(),
  );
  expect(result.end_stage).toBe('completed');
  const { reproducibility, ...written } = JSON.parse(
    readFileSync(path.join(runsRoot, id, 'results.json'), 'utf8'),
  ) as Record<string, unknown>;
  const { end_stage: _stage, ...returned } = result;
  expect(written).toEqual(JSON.parse(JSON.stringify(returned)));
  // The record is in the file only: with its package list it is too large for the workflow's history.
  expect(reproducibility).toMatchObject({
    experiment_id: id,
    launches: [expect.objectContaining({ exit_code: 0 })],
  });
  // Spelled out too, so that a failure names what drifted.
  const file = ResultsPayload.parse(written);
  expect(file.completed_at).toBe(result.completed_at);
  expect(file.duration_seconds).toBe(result.duration_seconds);
  expect(file.analysis_reports.map((report) => [report.agent, report.path])).toEqual(
    result.analysis_reports.map((report) => [report.agent, report.path]),
  );
  expect(file.analysis_reports.find((report) => report.agent === 'blog')!.path).toBe(
    path.join(runsRoot, id, 'blog.md'),
  );
});

test('the budget gate opens before a call that could exceed the LLM budget; rejecting it finishes offline', async () => {
  const id = newId('budget-reject');
  const spec = agentsSpec(id, {
    budgets: { max_training_attempts: 2, max_preemption_restarts: 2, llm_cost_usd: 0.0001 },
  });
  const { result } = await run(spec, async () => {
    const waiting = await decideWhenWaiting(env.client, id, 'budget', 'reject', { comment: 'too dear' });
    expect(waiting.waiting!.question).toMatch(
      /performance agent's next model call could cost up to \$0\.0\d+/,
    );
    return experimentHandle(env.client, id).result();
  });
  expect(fake.requests).toHaveLength(0);
  expect(result.end_stage).toBe('completed');
  expect(result.decisions.map((decision) => [decision.gate, decision.outcome])).toEqual([
    ['launch', 'approved'],
    ['budget', 'rejected'],
    ['publish', 'approved'],
  ]);
  expect(result.analysis_reports.map((report) => [report.agent, report.model])).toEqual(
    ALL_AGENTS.map((agent) => [agent, 'offline']),
  );
  expect(result.analysis_reports[0]!.note).toMatch(/budget gate stopped further model calls/);
  expect(result.costs.llm_usd).toBe(0);
});

test('approving the budget gate lets the agents spend past the budget, asked once', async () => {
  const id = newId('budget-approve');
  const spec = agentsSpec(id, {
    budgets: { max_training_attempts: 2, max_preemption_restarts: 2, llm_cost_usd: 0.0001 },
  });
  const { result } = await run(spec, async () => {
    await decideWhenWaiting(env.client, id, 'budget', 'approve');
    return experimentHandle(env.client, id).result();
  });
  expect(result.end_stage).toBe('completed');
  expect(result.decisions.filter((decision) => decision.gate === 'budget')).toHaveLength(1);
  expect(result.costs.llm_usd).toBeGreaterThan(0.0001);
  expect(new Set(result.analysis_reports.map((report) => report.model))).toEqual(new Set(['gpt-4o-mini']));
});

test('output failing its schema twice asks a person at the failure gate; retry runs the agent again', async () => {
  const id = newId('schema');
  fake.reply({ content: 'not json' }, { content: '{"summary": 1}' });
  const { result, status } = await run(agentsSpec(id), async () => {
    const waiting = await decideWhenWaiting(env.client, id, 'failure', 'approve', { choice: 'retry' });
    expect(waiting.stage).toBe('analysis');
    expect(waiting.waiting!.question).toMatch(/performance agent failed \(AgentOutputInvalid\)/);
    return experimentHandle(env.client, id).result();
  });
  expect(result.end_stage).toBe('completed');
  expect(fake.requestsOf('performance')).toHaveLength(3);
  // The two failed calls were paid for, so they count.
  const recorded = result.analysis_reports.flatMap((report) => report.calls ?? []);
  expect(result.costs.llm_prompt_tokens).toBeGreaterThan(
    recorded.reduce((sum, call) => sum + call.prompt_tokens, 0),
  );
  expect(status.failures).toBe(0);
});

test('a refusal asks a person; rejecting ends the experiment failed with the reason', async () => {
  const id = newId('refusal');
  fake.reply({ refusal: 'I cannot help with that request.' });
  const { result } = await run(agentsSpec(id), async () => {
    await waitForStatus(env.client, id, (s) => s.waiting?.gate === 'failure');
    await decideWhenWaiting(env.client, id, 'failure', 'reject');
    return experimentHandle(env.client, id).result();
  });
  expect(result.end_stage).toBe('failed');
  expect(result.reason).toMatch(
    /performance agent failed: .*refused to answer: I cannot help with that request/,
  );
});

test('with the failure gate off, an agent that keeps refusing is tried a bounded number of times', async () => {
  const id = newId('refusals');
  fake.fallback = () => ({ refusal: 'No.' });
  const spec = agentsSpec(id, {
    approvals: { launch: { enabled: false }, publish: { enabled: false }, failure: { enabled: false } },
  });
  const { result } = await run(spec, async () => experimentHandle(env.client, id).result());
  expect(result.end_stage).toBe('failed');
  expect(result.reason).toMatch(/the performance agent failed 4 times; last \(AgentRefused\)/);
  expect(fake.requestsOf('performance')).toHaveLength(4);
  expect(result.decisions.filter((decision) => decision.gate === 'failure')).toHaveLength(3);
});

test('an answer slower than agents.timeout_seconds is abandoned and Temporal retries the agent', async () => {
  const id = newId('slow');
  fake.reply({ delayMs: 20_000, then: { offline: true } });
  const { result } = await run(agentsSpec(id), async () => experimentHandle(env.client, id).result(), {
    timeout_seconds: 0.5,
  });
  expect(result.end_stage).toBe('completed');
  expect(fake.requestsOf('performance')).toHaveLength(2);
  expect(fake.aborted).toBe(1);
  expect(result.analysis_reports[0]).toMatchObject({ agent: 'performance', model: 'gpt-4o-mini' });
});
