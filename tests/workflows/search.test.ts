/**
 * Search campaigns end to end on a real server, with the example repository (examples/search/make-repo.js)
 * and real trainers: scripted proposals that improve, do nothing, crash, do not apply, leave the editable
 * files or repeat an earlier one; the gates of each autonomy level; stop and budget updates.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { createTwoFilesPatch } from 'diff';
import { decide } from '../../src/client/experiments';
import { lineage, type LineageNode } from '../../src/client/lineage';
import { controlSearch, editTrial, searchStatus, submitSearch } from '../../src/client/search';
import type { SearchStatus } from '../../src/experiment';
import { trialExperimentId } from '../../src/experiment';
import { experimentRig } from '../support/experiments';
import { recordHistory } from '../support/histories';
import {
  HYPERPARAMETERS,
  makeSearchRepo,
  removeSearchRepos,
  searchCampaignOf,
  searchObjective,
  waitForSearch,
} from '../support/search';
import { startTestTemporal, withWorker, type TestTemporal } from '../support/temporal';

let env: TestTemporal;
beforeAll(async () => {
  env = await startTestTemporal();
});
afterAll(async () => {
  removeSearchRepos();
  await env?.stop();
});

const searchRepo = () => makeSearchRepo();

const statesOf = (status: SearchStatus) => status.trials.map((trial) => [trial.n, trial.state]);

test('scripted proposals: exactly the improving edit is promoted, the crash is classed, the bad three never launch', async () => {
  const rig = experimentRig();
  const repo = searchRepo();
  const base = repo.content('0.05');
  const better = repo.content('0.5');
  const neutral = repo.edit(better, `${better}// nothing changes: a comment\n`);
  // Three seeds a side: with two, this improvement (about 0.05 in accuracy) is not significant at 0.05.
  const campaign = searchCampaignOf(repo, `camp-search-${process.pid}`, { objective: searchObjective(3) }, [
    { hypothesis: 'a larger learning rate trains further in the same steps', diff: repo.edit(base, better) },
    { hypothesis: 'a comment changes nothing', diff: neutral },
    {
      hypothesis: 'this edit crashes the trainer',
      diff: repo.edit(better, `${better}throw new Error('trial crashes on purpose');\n`),
    },
    {
      hypothesis: 'edits a line that is not there',
      diff: repo.edit(repo.content('0.7'), repo.content('0.9')),
    },
    {
      hypothesis: 'edits the trainer itself',
      diff: createTwoFilesPatch('a/trainer/run.js', 'b/trainer/run.js', 'x\n', 'y\n'),
    },
    { hypothesis: 'the comment again', diff: neutral },
  ]);
  const headBefore = repo.git('rev-parse', 'HEAD');

  const result = await withWorker(env, { taskQueue: rig.taskQueue, activities: rig.activities }, async () => {
    const { handle } = await submitSearch({ client: env.client, campaign, settings: rig.settings });
    return await handle.result();
  });
  expect(result.stage).toBe('completed');
  expect(result.end_reason).toMatch(/scripted proposals ran out after 6/);
  expect(result.incumbent).toMatchObject({ trial: 1, branch: `labline/${campaign.campaign_id}/trial-1` });

  const status = JSON.parse(
    readFileSync(path.join(rig.runsRoot, campaign.campaign_id, 'search.json'), 'utf8'),
  ) as { status: SearchStatus };
  const trials = status.status.trials;
  expect(statesOf(status.status)).toEqual([
    [0, 'promoted'],
    [1, 'promoted'],
    [2, 'not_better'],
    [3, 'failed'],
    [4, 'rejected'],
    [5, 'rejected'],
    [6, 'rejected'],
  ]);
  expect(trials[1]!.versus).toMatchObject({ promote: true });
  expect(trials[1]!.versus!.p_value).toBeLessThan(0.05);
  expect(trials[3]).toMatchObject({ failure_class: 'error' });
  expect(trials[3]!.log_tail).toContain('trial crashes on purpose');
  expect(trials[4]!.reason).toMatch(/does not apply|apply/i);
  expect(trials[5]!.reason).toContain('trainer/run.js');
  expect(trials[6]!.reason).toMatch(/proposed before/);

  // The three refused proposals never launched: no child, no run folder, no branch.
  for (const n of [4, 5, 6]) {
    for (const seed of trials[n]!.seeds)
      expect(existsSync(path.join(rig.runsRoot, trialExperimentId(campaign.campaign_id, n, seed)))).toBe(
        false,
      );
    expect(repo.git('branch', '--list', `labline/${campaign.campaign_id}/trial-${n}`)).toBe('');
  }
  // The promoted branch holds the edit; the checkout is as it was.
  expect(repo.git('show', `labline/${campaign.campaign_id}/trial-1:${HYPERPARAMETERS}`)).toContain(
    'lr: 0.5,',
  );
  expect(repo.git('rev-parse', 'HEAD')).toBe(headBefore);
  expect(repo.git('status', '--porcelain')).toBe('');

  // Autonomous: nobody was asked about the promotion, so it was announced, once.
  expect(rig.notifier.requests).toEqual([]);
  expect(rig.notifier.announcements.map((a) => a.title)).toEqual([
    `New incumbent: trial 1 of ${campaign.name}`,
  ]);
  expect(rig.notifier.announcements[0]!.body).toContain(`labline/${campaign.campaign_id}/trial-1`);

  // Lineage: each trial's seeds descend from the first seed of the incumbent they tried to beat.
  const { root } = await lineage(env.client, trials[1]!.experiment_ids[0]!);
  const childrenOf = (id: string): string[] => {
    const find = (node: LineageNode): LineageNode | undefined =>
      node.experimentId === id ? node : node.children.map(find).find(Boolean);
    return (find(root)?.children ?? []).map((child) => child.experimentId).sort();
  };
  expect(childrenOf(trials[0]!.experiment_ids[0]!)).toEqual([...trials[1]!.experiment_ids].sort());
  expect(childrenOf(trials[1]!.experiment_ids[0]!)).toEqual(
    [...trials[2]!.experiment_ids, ...trials[3]!.experiment_ids].sort(),
  );

  const tsv = readFileSync(path.join(rig.runsRoot, campaign.campaign_id, 'trials.tsv'), 'utf8').trim();
  expect(tsv.split('\n')).toHaveLength(1 + 7);
  const report = readFileSync(result.report!, 'utf8');
  expect(report).toContain('a larger learning rate trains further');
  expect(report).toContain(`Search campaign \`${campaign.campaign_id}\` is **completed**`);
}, 180_000);

test('supervised: a promotion waits for a person; assisted: each proposal does, and an edit is checked first', async () => {
  const rig = experimentRig();
  const repo = searchRepo();
  const better = repo.content('0.5');
  const campaign = searchCampaignOf(
    repo,
    `camp-assisted-${process.pid}`,
    { autonomy: 'assisted', objective: searchObjective(3) },
    [
      { hypothesis: 'a tiny learning rate', diff: repo.edit(repo.content('0.05'), repo.content('0.001')) },
      {
        hypothesis: 'a wider hidden layer',
        diff: repo.edit(repo.content('0.05'), repo.content('0.05').replace('hidden: 4,', 'hidden: 8,')),
      },
    ],
  );
  await withWorker(env, { taskQueue: rig.taskQueue, activities: rig.activities }, async () => {
    const { handle } = await submitSearch({ client: env.client, campaign, settings: rig.settings });
    const waiting = await waitForSearch(
      env.client,
      campaign.campaign_id,
      (s) => s.waiting?.gate === 'launch',
    );
    expect(statesOf(waiting)).toEqual([
      [0, 'promoted'],
      [1, 'proposed'],
    ]);
    // An edit that does not apply is refused and changes nothing; one that does replaces the proposal.
    const refused = await editTrial(env.client, campaign.campaign_id, {
      trial: 1,
      diff: repo.edit(repo.content('0.3'), repo.content('0.4')),
      by: 'alice',
    }).catch((error: Error) => error);
    expect((refused as Error).message).toMatch(
      /refused the edit of trial 1: the edited diff is refused: .*does not apply.*Nothing changed\.$/,
    );
    const edited = await editTrial(env.client, campaign.campaign_id, {
      trial: 1,
      diff: repo.edit(repo.content('0.05'), better),
      hypothesis: 'a larger learning rate, as the reviewer suggests',
      by: 'alice',
    });
    expect(edited.hypothesis).toContain('reviewer');
    await decide(env.client, campaign.campaign_id, 'approve', { gate: 'launch', by: 'alice', source: 'cli' });
    // Assisted also asks before promoting; rejecting keeps the incumbent.
    const promotion = await waitForSearch(
      env.client,
      campaign.campaign_id,
      (s) => s.waiting?.gate === 'publish',
    );
    expect(promotion.trials[1]!.versus?.promote).toBe(true);
    await decide(env.client, campaign.campaign_id, 'reject', { gate: 'publish', by: 'alice', source: 'cli' });
    // The next proposal waits in turn; dropping it ends it there, untrained.
    await waitForSearch(
      env.client,
      campaign.campaign_id,
      (s) => s.waiting?.gate === 'launch' && s.trials.length === 3,
    );
    await decide(env.client, campaign.campaign_id, 'reject', { gate: 'launch', by: 'alice', source: 'cli' });
    const result = await handle.result();
    expect(result.incumbent.trial).toBe(0);
    const status = await searchStatus(env.client, campaign.campaign_id);
    expect(status.trials[1]).toMatchObject({ state: 'not_better' });
    expect(status.trials[1]!.reason).toMatch(/promotion was rejected/);
    expect(status.trials[2]).toMatchObject({ state: 'dropped', values: [] });
    expect(status.trials[2]!.reason).toMatch(/dropped at the proposal review by alice/);
    expect(repo.git('branch', '--list', `labline/${campaign.campaign_id}/trial-2`)).toBe('');
    expect(repo.git('show', `labline/${campaign.campaign_id}/trial-1:${HYPERPARAMETERS}`)).toContain(
      'lr: 0.5,',
    );

    // Supervised: the proposal runs without asking; only the promotion waits, and approving it promotes.
    const supervised = searchCampaignOf(
      repo,
      `camp-supervised-${process.pid}`,
      {
        autonomy: 'supervised',
        objective: searchObjective(3),
      },
      [{ hypothesis: 'a larger learning rate', diff: repo.edit(repo.content('0.05'), better) }],
    );
    const second = await submitSearch({ client: env.client, campaign: supervised, settings: rig.settings });
    const asked = await waitForSearch(env.client, supervised.campaign_id, (s) => s.waiting !== undefined);
    expect(asked.waiting?.gate).toBe('publish');
    expect(statesOf(asked)).toEqual([
      [0, 'promoted'],
      [1, 'deciding'],
    ]);
    await decide(env.client, supervised.campaign_id, 'approve', {
      gate: 'publish',
      by: 'bob',
      source: 'cli',
    });
    const promoted = await second.handle.result();
    expect(promoted.incumbent).toMatchObject({
      trial: 1,
      branch: `labline/${supervised.campaign_id}/trial-1`,
    });
    const after = await searchStatus(env.client, supervised.campaign_id);
    expect(after.trials[1]).toMatchObject({ state: 'promoted', reviewed_by: 'bob' });
    expect(rig.notifier.announcements).toEqual([]);
    // The launch gate is off (decided by itself); the only person asked was asked about the promotion.
    expect(after.decisions.filter((d) => d.source !== 'auto').map((d) => [d.gate, d.outcome, d.by])).toEqual([
      ['publish', 'approved', 'bob'],
    ]);
  });
}, 180_000);

test('offline proposer under a trial budget, and a stop update: the search ends with the reason', async () => {
  const rig = experimentRig();
  const repo = searchRepo();
  const campaign = searchCampaignOf(repo, `camp-offline-${process.pid}`, {
    proposer: { kind: 'offline' },
    budget: { max_trials: 3 },
    concurrency: 2,
  });
  const stopped = searchCampaignOf(repo, `camp-stopped-${process.pid}`, { proposer: { kind: 'offline' } });
  await withWorker(env, { taskQueue: rig.taskQueue, activities: rig.activities }, async () => {
    const { handle } = await submitSearch({ client: env.client, campaign, settings: rig.settings });
    const result = await handle.result();
    expect(result.end_reason).toMatch(/max_trials reached \(3 of 3\)/);
    const status = await searchStatus(env.client, campaign.campaign_id);
    expect(status.trials).toHaveLength(4);
    expect(new Set(status.trials.slice(1).map((t) => t.check?.hash)).size).toBe(3);

    const second = await submitSearch({ client: env.client, campaign: stopped, settings: rig.settings });
    await waitForSearch(env.client, stopped.campaign_id, (s) => s.stage === 'searching');
    await expect(
      controlSearch(env.client, stopped.campaign_id, {
        action: 'budget',
        by: 'alice',
        budget: { max_trials: -1 },
      }),
    ).rejects.toThrow();
    await controlSearch(env.client, stopped.campaign_id, { action: 'stop', by: 'alice', reason: 'enough' });
    const end = await second.handle.result();
    expect(end.end_reason).toBe('stopped by alice: enough');
    await expect(
      controlSearch(env.client, stopped.campaign_id, { action: 'pause', by: 'alice' }),
    ).rejects.toThrow();
  });
}, 180_000);

test('a search paused before its launch proposes nothing, and its wall time ends it with the reason', async () => {
  const rig = experimentRig();
  const repo = searchRepo();
  const campaign = searchCampaignOf(
    repo,
    `camp-paused-${process.pid}`,
    { proposer: { kind: 'offline' }, budget: { wall_time: '12s' } },
    [],
    { launch: { approvers: ['alice'] } },
  );
  await withWorker(env, { taskQueue: rig.taskQueue, activities: rig.activities }, async () => {
    const { handle } = await submitSearch({ client: env.client, campaign, settings: rig.settings });
    await waitForSearch(env.client, campaign.campaign_id, (s) => s.waiting?.gate === 'launch');
    await controlSearch(env.client, campaign.campaign_id, { action: 'pause', by: 'alice' });
    await decide(env.client, campaign.campaign_id, 'approve', { gate: 'launch', by: 'alice', source: 'cli' });
    const result = await handle.result();
    expect(result.end_reason).toMatch(/^wall_time reached \(\d+ s of 12 s\)$/);
    const status = await searchStatus(env.client, campaign.campaign_id);
    // The base was measured; no trial was proposed while paused.
    expect(statesOf(status)).toEqual([[0, 'promoted']]);
    expect(status.paused).toBe(true);
  });
}, 180_000);

test('a search whose history grows large continues as new: no trial lost, none run twice', async () => {
  const small = await startTestTemporal({ suggestContinueAsNewEvents: 30 });
  try {
    const rig = experimentRig();
    const repo = searchRepo();
    const campaign = searchCampaignOf(repo, `camp-continued-${process.pid}`, {
      proposer: { kind: 'offline' },
      objective: searchObjective(1),
      budget: { max_trials: 4 },
      concurrency: 2,
    });
    const result = await withWorker(
      small,
      { taskQueue: rig.taskQueue, activities: rig.activities },
      async () => {
        const { handle } = await submitSearch({ client: small.client, campaign, settings: rig.settings });
        // The handle from the start follows the chain of runs to the last one's result.
        return await handle.result();
      },
    );
    expect(result.end_reason).toBe('max_trials reached (4 of 4)');
    const status = JSON.parse(
      readFileSync(path.join(rig.runsRoot, campaign.campaign_id, 'search.json'), 'utf8'),
    ) as { status: SearchStatus };
    const trials = status.status.trials;
    expect(trials.map((trial) => trial.n)).toEqual([0, 1, 2, 3, 4]);
    expect(trials.every((trial) => ['promoted', 'not_better'].includes(trial.state))).toBe(true);
    expect(new Set(trials.slice(1).map((trial) => trial.check?.hash)).size).toBe(4);
    const runs: { runId: string; status: string }[] = [];
    for await (const execution of small.client.workflow.list({
      query: `WorkflowId = '${campaign.campaign_id}'`,
    }))
      runs.push({ runId: execution.runId, status: execution.status.name });
    const continued = runs.filter((run) => run.status === 'CONTINUED_AS_NEW');
    expect(continued.length).toBeGreaterThanOrEqual(1);
    expect(runs.map((run) => run.status)).toContain('COMPLETED');
    // Each trial's seed trained in one child run, whichever search run started it.
    for (const id of trials.flatMap((trial) => trial.experiment_ids)) {
      const childRuns: string[] = [];
      for await (const execution of small.client.workflow.list({ query: `WorkflowId = '${id}'` }))
        childRuns.push(execution.status.name);
      expect({ id, childRuns }).toEqual({ id, childRuns: ['COMPLETED'] });
    }
    await recordHistory(small.client, campaign.campaign_id, 'search-continued', continued.at(-1)!.runId);
    await recordHistory(small.client, campaign.campaign_id, 'search-continuation');
  } finally {
    await small.stop();
  }
}, 180_000);

test('a gpu_hours budget ends the search with its reason once the trials have used it', async () => {
  const rig = experimentRig();
  const repo = searchRepo();
  // One GPU per trial (the local launcher without GPU ids runs it anyway): the base alone spends the budget.
  const campaign = searchCampaignOf(repo, `camp-gpuhours-${process.pid}`, {
    proposer: { kind: 'offline' },
    objective: searchObjective(1),
    trial: { time_limit: '2m', resources: { gpus: 1 } },
    budget: { gpu_hours: 0.00001 },
  });
  const result = await withWorker(env, { taskQueue: rig.taskQueue, activities: rig.activities }, async () => {
    const { handle } = await submitSearch({ client: env.client, campaign, settings: rig.settings });
    return await handle.result();
  });
  expect(result.end_reason).toMatch(/^gpu_hours reached \(0\.\d{4} of 0\.00001\)$/);
  const status = JSON.parse(
    readFileSync(path.join(rig.runsRoot, campaign.campaign_id, 'search.json'), 'utf8'),
  ) as { status: SearchStatus };
  expect(statesOf(status.status)).toEqual([[0, 'promoted']]);
  expect(status.status.usage.gpu_hours).toBeGreaterThan(0.00001);
}, 180_000);
