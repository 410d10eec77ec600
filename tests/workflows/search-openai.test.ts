/**
 * A search campaign whose proposer is a model behind an OpenAI-compatible API (the suite's fake OpenAI), set up
 * as users set it up: `agents.per_agent.proposer` in a settings file, the key in OPENAI_API_KEY, the workers
 * built by `createLablineWorkers`. The model answers a diff that does not apply, is sent back once with the
 * reason and answers a good one, which trains; then it refuses, and that trial is rejected without launching.
 * Also the proposer activity alone, with an answer that does not fit the schema.
 */
import { NativeConnection } from '@temporalio/worker';
import { existsSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { stringify as toYaml } from 'yaml';
import {
  AgentsSettings,
  agentProviderFromSettings,
  DEFAULT_PRICES,
} from '../../src/activities/agents/agent-settings';
import { propose } from '../../src/activities/search/proposers';
import { readCampaignFile } from '../../src/client/campaigns';
import { workflowSettingsOf } from '../../src/client/cli-experiments';
import { searchCampaignFrom, searchStatus, submitSearch } from '../../src/client/search';
import { loadSettings, type ResolvedSettings } from '../../src/client/settings';
import { trialExperimentId } from '../../src/experiment';
import { createLablineWorkers, runWorkers } from '../../src/workers/worker';
import { RecordingNotifier } from '../support/experiments';
import { historyText } from '../support/histories';
import { HYPERPARAMETERS, makeSearchRepo, removeSearchRepos, type SearchRepo } from '../support/search';
import { FakeOpenAI, fakeTokens, type FakeChatRequest } from '../support/fake-openai';
import { startTestTemporal, uniqueTaskQueue, workflowBundle, type TestTemporal } from '../support/temporal';

const MODEL = 'gpt-4o-mini';

let env: TestTemporal;
let fake: FakeOpenAI;
beforeAll(async () => {
  env = await startTestTemporal();
});
afterAll(async () => {
  removeSearchRepos();
  await env?.stop();
});
beforeEach(async () => {
  // A key of its own: a request that did not take it from the environment is answered 401.
  fake = await FakeOpenAI.start({ apiKey: `sk-search-openai-${process.pid}` });
  // Every answer is scripted; one more request than the script holds is a bad request, and the search ends.
  fake.fallback = () => ({ status: 400, message: 'the test scripted no answer for this request' });
});
afterEach(async () => fake?.close());

const searchRepo = () => makeSearchRepo('labline-search-openai-');

/**
 * The Labline settings file a user would write beside the repository: the proposer (and only it) on the
 * fake's API, everything else offline; its own task queues; fast training polls. No key: that is the
 * environment's.
 */
function settingsFile(repo: SearchRepo): ResolvedSettings {
  const file = path.join(path.dirname(repo.dir), 'labline.config.yaml');
  writeFileSync(
    file,
    toYaml({
      runs_root: 'runs',
      data_dir: '.labline',
      task_queues: {
        workflow: uniqueTaskQueue('search-openai'),
        gpu: uniqueTaskQueue('search-openai-gpu'),
        agents: uniqueTaskQueue('search-openai-agents'),
      },
      training: {
        heartbeat_timeout_seconds: 5,
        poll_interval_ms: 100,
        launch_timeout_seconds: 5,
        kill_grace_seconds: 1,
      },
      agents: { per_agent: { proposer: { provider: 'openai', base_url: fake.baseURL, model: MODEL } } },
    }),
  );
  return loadSettings(file);
}

/** A search campaign file beside the repository, its proposer the model, loaded as the CLI loads it. */
function campaignOf(repo: SearchRepo, id: string, budget: Record<string, unknown> = { max_trials: 2 }) {
  const file = path.join(path.dirname(repo.dir), `${id}.yaml`);
  writeFileSync(
    file,
    toYaml({
      campaign_id: id,
      name: `search ${id}`,
      base: path.join(repo.dir, 'experiment.yaml'),
      search: {
        editable: [HYPERPARAMETERS],
        objective: { metric: 'eval/accuracy', goal: 'max', seeds: 2, min_delta: 0.01, alpha: 0.05 },
        trial: { time_limit: '2m' },
        budget,
        proposer: { kind: 'openai' },
        autonomy: 'autonomous',
      },
      approvals: { launch: { enabled: false } },
    }),
  );
  return searchCampaignFrom(readCampaignFile(file), file);
}

/**
 * Runs `drive` while the workers `labline start` would run for these settings poll: workflow, GPU and agents
 * queues, the agent provider built from the settings with OPENAI_API_KEY from the environment.
 */
async function withLablineWorkers<T>(
  settings: ResolvedSettings,
  notifier: RecordingNotifier,
  drive: () => Promise<T>,
): Promise<T> {
  const previousKey = process.env.OPENAI_API_KEY;
  process.env.OPENAI_API_KEY = fake.apiKey;
  const connection = await NativeConnection.connect({ address: env.address });
  try {
    const workers = await createLablineWorkers({
      connection,
      namespace: env.namespace,
      settings,
      workflowBundle: workflowBundle(),
      notifier,
    });
    const driven = drive();
    await runWorkers(
      workers,
      driven.then(
        () => undefined,
        () => undefined,
      ),
    );
    return await driven;
  } finally {
    await connection.close();
    if (previousKey === undefined) delete process.env.OPENAI_API_KEY;
    else process.env.OPENAI_API_KEY = previousKey;
  }
}

/** What the fake charged for one request answered with `content`, at the model's list price. */
function costOf(request: FakeChatRequest, content: string): number {
  const price = DEFAULT_PRICES[MODEL]!;
  return (fakeTokens(request.size) * price.input + fakeTokens(content.length) * price.output) / 1e6;
}

/** What the proposer was given: the facts of the request's user message. */
interface ProposerFacts {
  objective: { metric: string; goal: string; seeds: number };
  files: { path: string; content: string }[];
  repository: string[];
  trials: { n: number; hypothesis: string; state: string }[];
  feedback?: { previous: { hypothesis: string; diff: string }; problem: string };
}
const factsOf = (request: FakeChatRequest) => request.facts as ProposerFacts;

test('openai proposer: a diff that does not apply goes back once with the reason, the fix trains, and a refusal is a rejected trial that never launches', async () => {
  const repo = searchRepo();
  const settings = settingsFile(repo);
  const notifier = new RecordingNotifier();
  const campaign = campaignOf(repo, `camp-openai-${process.pid}`);
  const base = repo.content('0.05');
  const better = repo.content('0.5');
  const hypothesis = 'a larger learning rate trains further in the same steps';
  // Written against a file that is not there (lr 0.07): git cannot apply it.
  const stale = { hypothesis, diff: repo.edit(repo.content('0.07'), better) };
  const fixed = { hypothesis, diff: repo.edit(base, better) };
  const refusal = 'I cannot help with changing this training code.';
  fake.reply({ output: stale }, { output: fixed }, { refusal });

  const { result, status } = await withLablineWorkers(settings, notifier, async () => {
    const { handle } = await submitSearch({
      client: env.client,
      campaign,
      settings: workflowSettingsOf(settings),
    });
    const result = await handle.result();
    return { result, status: await searchStatus(env.client, campaign.campaign_id) };
  });

  expect(result.stage).toBe('completed');
  expect(result.end_reason).toBe('max_trials reached (2 of 2)');
  const [baseline, first, second] = status.trials;
  expect(status.trials.map((trial) => [trial.n, trial.state])).toEqual([
    [0, 'promoted'],
    [1, expect.stringMatching(/^(promoted|not_better)$/)],
    [2, 'rejected'],
  ]);

  // Three requests, all to the proposer's model with the key from the environment; no other agent asked.
  const requests = fake.requestsOf('proposer');
  expect(requests).toHaveLength(3);
  expect(fake.requests).toHaveLength(3);
  for (const request of requests) {
    expect(request.body.model).toBe(MODEL);
    expect(request.headers.authorization).toBe(`Bearer ${fake.apiKey}`);
  }

  // Trial 1, first request: the incumbent's editable file, the objective, no history, no feedback.
  const asked = factsOf(requests[0]!);
  expect(asked.files).toEqual([{ path: HYPERPARAMETERS, content: base }]);
  expect(asked.repository).toEqual(expect.arrayContaining([HYPERPARAMETERS, 'trainer/run.js']));
  expect(asked.objective).toMatchObject({ metric: 'eval/accuracy', goal: 'max', seeds: 2 });
  expect(asked.trials).toEqual([]);
  expect(asked.feedback).toBeUndefined();
  // Trial 1, sent back once: the same facts plus the stale answer and git's reason for refusing it.
  const resent = factsOf(requests[1]!);
  expect(resent.feedback).toEqual({
    previous: stale,
    problem: expect.stringMatching(/^the diff does not apply to commit [0-9a-f]{12} \(git: .+\)/),
  });
  expect(resent.files).toEqual(asked.files);
  const resentMessage = requests[1]!.body.messages.find((message) => message.role === 'user')!.content;
  expect(resentMessage).toContain('does not apply to commit');

  // The fixed proposal trained both of its seeds and was decided; it is on its branch.
  expect(first).toMatchObject({ hypothesis, diff: fixed.diff, seeds: [2, 3] });
  expect(first!.values).toHaveLength(2);
  expect(first!.versus).toBeDefined();
  for (const id of first!.experiment_ids)
    expect(existsSync(path.join(settings.runsRoot, id, 'results.json'))).toBe(true);
  expect(repo.git('show', `labline/${campaign.campaign_id}/trial-1:${HYPERPARAMETERS}`)).toContain(
    'lr: 0.5,',
  );

  // Trial 2: the prompt holds the incumbent's file and trial 1 with its outcome; the model refused.
  const third = factsOf(requests[2]!);
  expect(third.files).toEqual([
    { path: HYPERPARAMETERS, content: status.incumbent.trial === 1 ? better : base },
  ]);
  expect(third.trials).toEqual([expect.objectContaining({ n: 1, hypothesis, state: first!.state })]);
  expect(third.feedback).toBeUndefined();
  expect(second).toMatchObject({ hypothesis: '(no proposal)', diff: '', values: [] });
  expect(second!.reason).toMatch(
    /^the model gave no usable proposal: the "proposer" agent \(model gpt-4o-mini at .+\) refused to answer: I cannot help with changing this training code\. Rephrasing/,
  );
  expect(second!.commit).toBeUndefined();
  for (const seed of second!.seeds)
    expect(existsSync(path.join(settings.runsRoot, trialExperimentId(campaign.campaign_id, 2, seed)))).toBe(
      false,
    );
  expect(repo.git('branch', '--list', `labline/${campaign.campaign_id}/trial-2`)).toBe('');

  // Every answer is paid for at the model's price: trial 1 both of its answers, trial 2 its refusal.
  expect(baseline!.llm_usd).toBe(0);
  expect(first!.llm_usd).toBeCloseTo(
    costOf(requests[0]!, JSON.stringify(stale)) + costOf(requests[1]!, JSON.stringify(fixed)),
    12,
  );
  expect(second!.llm_usd).toBeCloseTo(costOf(requests[2]!, refusal), 12);
  expect(second!.llm_usd).toBeGreaterThan(0);
  expect(status.usage.llm_usd).toBeCloseTo(first!.llm_usd + second!.llm_usd, 12);

  // The key reached the model from the worker's environment, never through the workflow.
  const history = await historyText(env.client, campaign.campaign_id);
  expect(history).toContain(hypothesis);
  expect(history).not.toContain(fake.apiKey);
});

test("an llm_usd budget ends the search with its reason once the proposer's model has cost it", async () => {
  const repo = searchRepo();
  const settings = settingsFile(repo);
  const campaign = campaignOf(repo, `camp-openai-usd-${process.pid}`, { max_trials: 5, llm_usd: 0.000001 });
  const edit = {
    hypothesis: 'a larger learning rate',
    diff: repo.edit(repo.content('0.05'), repo.content('0.5')),
  };
  fake.reply({ output: edit });

  const { result, status } = await withLablineWorkers(settings, new RecordingNotifier(), async () => {
    const { handle } = await submitSearch({
      client: env.client,
      campaign,
      settings: workflowSettingsOf(settings),
    });
    const result = await handle.result();
    return { result, status: await searchStatus(env.client, campaign.campaign_id) };
  });
  // One proposal cost more than the whole budget: it trains, and nothing is proposed after it.
  expect(result.end_reason).toMatch(/^llm_usd reached \(\$\d+\.\d{4} of \$0\.000001\)$/);
  expect(status.trials.map((trial) => trial.n)).toEqual([0, 1]);
  expect(status.trials[1]!.values).toHaveLength(2);
  expect(status.usage.llm_usd).toBeGreaterThan(0.000001);
  expect(fake.requestsOf('proposer')).toHaveLength(1);
}, 120_000);

test('proposer activity: an answer without a diff, twice (the schema retry too), is no proposal, with the schema problem and its cost', async () => {
  const provider = agentProviderFromSettings(
    AgentsSettings.parse({
      per_agent: { proposer: { provider: 'openai', base_url: fake.baseURL, model: MODEL } },
    }),
    { OPENAI_API_KEY: fake.apiKey },
  );
  const noDiff = { hypothesis: 'a larger learning rate trains further in the same steps' };
  fake.reply({ output: noDiff }, { output: noDiff });

  const answer = await propose(
    {
      proposer: { kind: 'openai' },
      n: 1,
      objective: { metric: 'eval/accuracy', goal: 'max', seeds: 2, min_delta: 0.01, alpha: 0.05 },
      limits: { max_files: 3, max_changed_lines: 80, max_diff_bytes: 32_768 },
      context: { files: [{ path: HYPERPARAMETERS, content: 'module.exports = { lr: 0.05 };\n' }], paths: [] },
      history: [],
    },
    provider,
  );

  expect(answer.kind).toBe('no_answer');
  const { reason, llm_usd } = answer as Extract<typeof answer, { kind: 'no_answer' }>;
  expect(reason).toMatch(
    /^the model gave no usable proposal: the "proposer" agent \(model gpt-4o-mini at .+\) answered twice with output that does not fit the "proposer" schema; last problem: the answer does not fit the schema:/,
  );
  expect(reason).toMatch(/→ at diff/);
  const requests = fake.requestsOf('proposer');
  expect(requests).toHaveLength(2);
  expect(requests[1]!.body.messages.at(-1)!.content).toMatch(/^Your answer cannot be used: .*[\s\S]*at diff/);
  expect(llm_usd).toBeCloseTo(
    requests.reduce((sum, request) => sum + costOf(request, JSON.stringify(noDiff)), 0),
    12,
  );
  expect(llm_usd).toBeGreaterThan(0);
});
