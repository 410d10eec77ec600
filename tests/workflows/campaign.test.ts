import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { CampaignSpec, type CampaignSpecInput, type ExperimentSpecInput } from '../../src/experiment';
import { campaignStatus, reviewProposal, submitCampaign } from '../../src/client/campaigns';
import { decide } from '../../src/client/experiments';
import { lineage } from '../../src/client/lineage';
import type { CampaignResult, CampaignStatus } from '../../src/workflows';
import type { RunningProcess } from '../support/processes';
import { startTestTemporal, withWorker, type TestTemporal } from '../support/temporal';
import {
  experimentRig,
  trainerPath,
  type ExperimentRig,
  startLablineWorkerProcess,
} from '../support/experiments';
import { recordHistory } from '../support/histories';
import { makeRepo, trainerSource } from '../support/git-repo';

let env: TestTemporal;
const processes: RunningProcess[] = [];
beforeAll(async () => {
  env = await startTestTemporal();
});
afterAll(async () => {
  await Promise.all(processes.map((p) => p.kill()));
  await env?.stop();
});

let counter = 0;
const suffix = () => `${process.pid % 10000}x${++counter}`;

/** A base experiment whose trainer reads steps, learning rate and seed from the config. */
function baseSpec(id: string, extraArgs: string[] = []): ExperimentSpecInput {
  return {
    experiment_id: id,
    name: `base ${id}`,
    hypothesis: 'longer training separates the moons better',
    config: { steps: 30, lr: 0.5, seed: 0 },
    training: {
      command: process.execPath,
      args: [
        trainerPath,
        '--steps=${config.steps}',
        '--lr=${config.lr}',
        '--seed=${config.seed}',
        '--eval-every=5',
        ...extraArgs,
      ],
      working_directory: path.dirname(trainerPath),
    },
    deliverables: [],
    approvals: { failure: { enabled: false }, deliverables: { enabled: false } },
  };
}

async function waitForCampaign(
  client: Client,
  id: string,
  predicate: (s: CampaignStatus) => boolean,
  timeoutMs = 60_000,
) {
  const deadline = Date.now() + timeoutMs;
  let last: CampaignStatus | undefined;
  while (Date.now() < deadline) {
    last = await campaignStatus(client, id).catch(() => undefined);
    if (last && predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${id}: ${JSON.stringify(last)}`);
}

function trainerIntervals(rig: ExperimentRig, childIds: string[]): { start: number; end: number }[] {
  return childIds.map((id) => {
    const dir = path.join(rig.runsRoot, id);
    const starts = readFileSync(path.join(dir, 'starts.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { startedAt: string });
    const ends = readFileSync(path.join(dir, 'ends.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { endedAt: string });
    expect(starts).toHaveLength(1); // exactly one trainer per child
    return { start: Date.parse(starts[0]!.startedAt), end: Date.parse(ends.at(-1)!.endedAt) };
  });
}

function maxOverlap(intervals: { start: number; end: number }[]): number {
  const events = intervals.flatMap((i) => [
    { t: i.start, d: 1 },
    { t: i.end, d: -1 },
  ]);
  events.sort((a, b) => a.t - b.t || a.d - b.d);
  let current = 0;
  let max = 0;
  for (const event of events) max = Math.max(max, (current += event.d));
  return max;
}

/** Runs a campaign while `drive` acts on it; its history is recorded as `campaign-<history>` for the replay suite. */
async function runCampaign(
  rig: ExperimentRig,
  input: CampaignSpecInput,
  drive: (id: string) => Promise<void>,
  history?: string,
) {
  const campaign = CampaignSpec.parse(input);
  return withWorker(env, { taskQueue: rig.taskQueue, activities: rig.activities }, async () => {
    const { handle } = await submitCampaign({ client: env.client, campaign, settings: rig.settings });
    await drive(campaign.campaign_id);
    const result: CampaignResult = await handle.result();
    if (history) await recordHistory(env.client, campaign.campaign_id, `campaign-${history}`);
    return { result, status: await campaignStatus(env.client, campaign.campaign_id) };
  });
}

const approveLaunch = async (id: string) => {
  await waitForCampaign(env.client, id, (s) => s.waiting?.gate === 'launch');
  await decide(env.client, id, 'approve', { gate: 'launch', by: 'alice', source: 'api' });
};

test('a 3 × 3 grid with a limit of 2 never runs more than 2 trainers and ranks the variants', async () => {
  const rig = experimentRig();
  const baseId = `exp-base-${suffix()}`;
  const campaignId = `camp-grid-${suffix()}`;
  const { result, status } = await runCampaign(
    rig,
    {
      campaign_id: campaignId,
      name: 'steps grid',
      base: baseSpec(baseId, ['--step-delay-ms=3']),
      variants: { grid: { steps: [2, 20, 150] } },
      include_base: false,
      seeds: 3,
      concurrency: 2,
      primary_metric: { name: 'eval/accuracy', goal: 'max' },
    },
    approveLaunch,
    'grid',
  );
  expect(result.stage).toBe('completed');
  expect(result.outcomes).toHaveLength(9);
  expect(result.outcomes.every((o) => o.end === 'completed')).toBe(true);
  expect(result.comparison.map((r) => r.variant)).toEqual(['steps-150', 'steps-20', 'steps-2']);
  expect(result.comparison[0]!.vs_base).toBeNull(); // no base variant to compare against
  const intervals = trainerIntervals(
    rig,
    result.outcomes.map((o) => o.experiment_id),
  );
  expect(maxOverlap(intervals)).toBeLessThanOrEqual(2);
  expect(status.children.every((c) => c.state === 'done')).toBe(true);
  const report = readFileSync(result.report!, 'utf8');
  expect(report).toContain('**Best variant: `steps-150`**');
  expect(existsSync(path.join(rig.runsRoot, campaignId, 'charts', 'variants.svg'))).toBe(true);
  expect(existsSync(path.join(rig.runsRoot, campaignId, 'charts', 'curves.svg'))).toBe(true);

  // Genealogy from visibility: the base (never run itself) with its nine children.
  const { root } = await lineage(env.client, result.outcomes[0]!.experiment_id);
  expect(root.experimentId).toBe(baseId);
  expect(root.ran).toBe(false);
  expect(root.children.map((c) => c.experimentId).sort()).toEqual(
    result.outcomes.map((o) => o.experiment_id).sort(),
  );
  expect(root.children.every((c) => c.stage === 'completed' && typeof c.primaryMetric === 'number')).toBe(
    true,
  );
});

test('code variants: each ref trains its own commit, is compared with the first, and lineage names the commits', async () => {
  const repo = makeRepo({ 'train.js': trainerSource('main') });
  try {
    repo.git('checkout', '--quiet', '-b', 'feature/longer-name');
    const feature = repo.commit('feature', { 'train.js': trainerSource('feature-branch') });
    repo.git('checkout', '--quiet', 'main');
    const rig = experimentRig();
    const baseId = `exp-refs-${suffix()}`;
    const campaignId = `camp-refs-${suffix()}`;
    const base = baseSpec(baseId);
    const { result } = await runCampaign(
      rig,
      {
        campaign_id: campaignId,
        name: 'code variants',
        base: {
          ...base,
          training: {
            ...base.training,
            args: ['train.js', '--seed=${config.seed}'],
            working_directory: repo.dir,
          },
          code: { repo: repo.dir },
        },
        variants: { refs: ['main', 'feature/longer-name'] },
        seeds: 1,
        concurrency: 2,
        primary_metric: { name: 'eval/accuracy', goal: 'max' },
      },
      approveLaunch,
      'refs',
    );
    expect(result.stage).toBe('completed');
    // The trainer scores the length of its variant's name: the branch's code ran, not main's.
    expect(result.comparison.map((row) => [row.variant, row.estimate?.mean])).toEqual([
      ['longer-name', 1.4],
      ['main', 0.4],
    ]);
    const ranIn = (id: string) => readFileSync(path.join(rig.runsRoot, id, 'variant.txt'), 'utf8');
    expect(ranIn(`exp-${campaignId.slice(5)}-longer-name-s0`)).toMatch(/^feature-branch .*\/worktree$/);
    const report = readFileSync(result.report!, 'utf8');
    expect(report).toContain('vs `main`: difference');
    expect(report).toContain(`| \`longer-name\` | feature/longer-name | \`${feature.slice(0, 12)}\` |`);

    const { root } = await lineage(env.client, result.outcomes[0]!.experiment_id);
    expect(root.children.map((child) => child.code)).toEqual(
      expect.arrayContaining([
        { commit: feature, branch: 'feature/longer-name', patched: false },
        { commit: repo.git('rev-parse', 'main'), branch: 'main', patched: false },
      ]),
    );
    expect(repo.git('worktree', 'list').split('\n')).toHaveLength(1);
  } finally {
    repo.remove();
  }
});

test('a proposed-ablation campaign waits for review and launches only what was approved', async () => {
  const rig = experimentRig();
  const sourceId = `exp-source-${suffix()}`;
  mkdirSync(path.join(rig.runsRoot, sourceId), { recursive: true });
  writeFileSync(
    path.join(rig.runsRoot, sourceId, 'ablations.json'),
    JSON.stringify({
      proposals: [
        {
          name: 'lower-lr',
          modifications: [{ parameter: 'lr', from: 0.5, to: 0.1 }],
          rationale: 'stability',
        },
        { name: 'fewer-steps', modifications: [{ parameter: 'steps', from: 30, to: 5 }], rationale: 'cost' },
      ],
    }),
  );
  const campaignId = `camp-ablate-${suffix()}`;
  const { result, status } = await runCampaign(
    rig,
    {
      campaign_id: campaignId,
      name: 'ablations',
      base: baseSpec(sourceId),
      variants: { ablations_from: sourceId },
      include_base: false,
      primary_metric: { name: 'eval/accuracy', goal: 'max' },
    },
    async (id) => {
      const waiting = await waitForCampaign(
        env.client,
        id,
        (s) => s.stage === 'proposal_review' && s.waiting !== undefined,
      );
      expect(waiting.proposals.map((p) => p.proposal.name)).toEqual(['lower-lr', 'fewer-steps']);
      expect(waiting.children).toHaveLength(0);
      await reviewProposal(env.client, id, {
        name: 'lower-lr',
        action: 'edit',
        by: 'alice',
        modifications: [{ parameter: 'lr', from: 0.5, to: 0.2 }],
      });
      await reviewProposal(env.client, id, { name: 'fewer-steps', action: 'drop', by: 'alice' });
      await waitForCampaign(env.client, id, (s) => s.proposals.every((p) => p.decision));
      await decide(env.client, id, 'approve', { gate: 'launch', by: 'alice', source: 'api' });
    },
    'ablations',
  );
  expect(result.stage).toBe('completed');
  expect(result.outcomes.map((o) => o.variant)).toEqual(['lower-lr']);
  const child = JSON.parse(
    readFileSync(path.join(rig.runsRoot, result.outcomes[0]!.experiment_id, 'config.json'), 'utf8'),
  ) as { learning_rate: number };
  expect(child.learning_rate).toBe(0.2);
  expect(status.proposals.map((p) => p.decision)).toEqual(['edit', 'drop']);
});

test('a worker killed mid-campaign: no child is lost or duplicated', async () => {
  const rig = experimentRig(2);
  const campaignId = `camp-crash-${suffix()}`;
  const campaign = CampaignSpec.parse({
    campaign_id: campaignId,
    name: 'crash',
    base: baseSpec(`exp-crashbase-${suffix()}`, ['--step-delay-ms=10']),
    variants: {
      list: [
        { name: 'a', overrides: { steps: 60 } },
        { name: 'b', overrides: { steps: 80 } },
      ],
    },
    include_base: false,
    seeds: 2,
    concurrency: 2,
    primary_metric: { name: 'eval/accuracy', goal: 'max' },
    approvals: { launch: { enabled: false } },
  } satisfies CampaignSpecInput);
  const first = await startLablineWorkerProcess(env, rig, processes);
  await submitCampaign({ client: env.client, campaign, settings: rig.settings });
  await waitForCampaign(env.client, campaignId, (s) => s.children.some((c) => c.state === 'running'));
  await first.kill('SIGKILL');
  const result = await withWorker(
    env,
    { taskQueue: rig.taskQueue, activities: rig.activities },
    () => env.client.workflow.getHandle(campaignId).result() as Promise<CampaignResult>,
  );
  expect(result.outcomes.map((o) => o.experiment_id).sort()).toEqual(
    ['a-s0', 'a-s1', 'b-s0', 'b-s1'].map((v) => `exp-${campaignId.replace(/^camp-/, '')}-${v}`),
  );
  expect(result.outcomes.every((o) => o.end === 'completed')).toBe(true);
  trainerIntervals(
    rig,
    result.outcomes.map((o) => o.experiment_id),
  ); // asserts one trainer start per child
});

test('cancelling a campaign cancels its running children and stops every trainer', async () => {
  const rig = experimentRig();
  const campaignId = `camp-cancel-${suffix()}`;
  const campaign = CampaignSpec.parse({
    campaign_id: campaignId,
    name: 'cancel',
    base: baseSpec(`exp-cancelbase-${suffix()}`, ['--step-delay-ms=20']),
    variants: { list: [{ name: 'long', overrides: { steps: 100000 } }] },
    include_base: false,
    seeds: 3,
    concurrency: 2,
    primary_metric: { name: 'eval/accuracy', goal: 'max' },
    approvals: { launch: { enabled: false } },
  } satisfies CampaignSpecInput);
  const children = await withWorker(
    env,
    { taskQueue: rig.taskQueue, activities: rig.activities },
    async () => {
      const { handle } = await submitCampaign({ client: env.client, campaign, settings: rig.settings });
      const running = await waitForCampaign(
        env.client,
        campaignId,
        (s) => s.children.filter((c) => c.state === 'running').length === 2,
      );
      const ids = running.children.filter((c) => c.state === 'running').map((c) => c.experiment_id);
      // Both trainers have started before the cancel.
      for (const id of ids) {
        for (let i = 0; i < 200 && !existsSync(path.join(rig.runsRoot, id, 'starts.jsonl')); i++)
          await new Promise((r) => setTimeout(r, 50));
      }
      await handle.cancel();
      await expect(handle.result()).rejects.toThrow();
      await recordHistory(env.client, campaignId, 'campaign-cancelled');
      for (const id of ids) {
        await expect(env.client.workflow.getHandle(id).result()).rejects.toThrow();
        expect((await env.client.workflow.getHandle(id).describe()).status.name).toBe('CANCELLED');
      }
      return ids;
    },
  );
  for (const id of children) {
    const starts = readFileSync(path.join(rig.runsRoot, id, 'starts.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { pid: number });
    for (const { pid } of starts) expect(() => process.kill(pid, 0)).toThrow();
  }
  expect((await env.client.workflow.getHandle(campaignId).describe()).status.name).toBe('CANCELLED');
});

test('a campaign whose history grows large continues as new and loses no child', async () => {
  const small = await startTestTemporal({ suggestContinueAsNewEvents: 30 });
  try {
    const rig = experimentRig();
    const campaignId = `camp-can-${suffix()}`;
    const campaign = CampaignSpec.parse({
      campaign_id: campaignId,
      name: 'continue-as-new',
      base: baseSpec(`exp-canbase-${suffix()}`, ['--steps=5']),
      variants: { list: ['a', 'b', 'c', 'd', 'e', 'f'].map((name) => ({ name, overrides: {} })) },
      include_base: false,
      concurrency: 2,
      primary_metric: { name: 'eval/accuracy', goal: 'max' },
      approvals: { launch: { enabled: false } },
    } satisfies CampaignSpecInput);
    const result = await withWorker(
      small,
      { taskQueue: rig.taskQueue, activities: rig.activities },
      async () => {
        const { handle } = await submitCampaign({ client: small.client, campaign, settings: rig.settings });
        // The handle from the start follows the chain of runs to the last one's result.
        return await handle.result();
      },
    );
    expect(result.outcomes).toHaveLength(6);
    expect(new Set(result.outcomes.map((o) => o.experiment_id)).size).toBe(6);
    const runs: { runId: string; status: string }[] = [];
    for await (const execution of small.client.workflow.list({ query: `WorkflowId = '${campaignId}'` }))
      runs.push({ runId: execution.runId, status: execution.status.name });
    const continued = runs.filter((run) => run.status === 'CONTINUED_AS_NEW');
    expect(continued.length).toBeGreaterThanOrEqual(1);
    expect(runs.map((run) => run.status)).toContain('COMPLETED');
    // A run that ends by continuing as new, and the last, which starts from the carried state.
    await recordHistory(small.client, campaignId, 'campaign-continued', continued.at(-1)!.runId);
    await recordHistory(small.client, campaignId, 'campaign-continuation');
  } finally {
    await small.stop();
  }
});

test('with the baselines analysis on, the comparator agent interprets the comparison against the base', async () => {
  const rig = experimentRig();
  const campaignId = `camp-interpret-${suffix()}`;
  const base = {
    ...baseSpec(`exp-interpbase-${suffix()}`),
    analysis_pipeline: { analyses: ['performance', 'baselines'] },
  };
  const { result } = await runCampaign(
    rig,
    {
      campaign_id: campaignId,
      name: 'interpretation',
      base: base,
      variants: { list: [{ name: 'short', overrides: { steps: 3 } }] },
      seeds: 2,
      concurrency: 2,
      primary_metric: { name: 'eval/accuracy', goal: 'max' },
      approvals: { launch: { enabled: false } },
    },
    async () => undefined,
  );
  expect(result.stage).toBe('completed');
  const comparison = result.comparison.find((row) => row.variant === 'short')!;
  expect(comparison.vs_base).not.toBeNull();
  const report = readFileSync(result.report!, 'utf8');
  expect(report).toContain('## Interpretation (comparator agent)');
});
