/**
 * A search campaign survives a SIGKILL in the middle of a trial's training, of its worker or of its server:
 * the search completes, every trial is there once with a final state, no child experiment trains twice and no
 * trial branch is committed twice. Real trainers (the example search repository, examples/search/make-repo.js),
 * slowed so that the kill lands while they run.
 */
import { Client, Connection } from '@temporalio/client';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse as fromYaml, stringify as toYaml } from 'yaml';
import { readCampaignFile } from '../../src/client/campaigns';
import { searchCampaignFrom, searchStatus, submitSearch } from '../../src/client/search';
import type { SearchCampaignSpec, SearchStatus, TrialState } from '../../src/experiment';
import type { SearchResult } from '../../src/workflows';
import { experimentRig, type ExperimentRig, startLablineWorkerProcess } from '../support/experiments';
import { killOwnServers, startOwnServer } from '../support/own-server';
import type { RunningProcess } from '../support/processes';
import { startTestTemporal, withWorker, type TestTemporal } from '../support/temporal';
import { testServerKind } from '../support/temporal-cli';
import {
  HYPERPARAMETERS,
  makeSearchRepo,
  removeSearchRepos,
  waitForSearch,
  type SearchRepo,
} from '../support/search';

/** 120 steps (the example's) at 25 ms: each trainer runs about 3.5 s, long enough to be killed in. */
const STEP_DELAY_MS = 25;
/** A trial ends decided: trained and judged. A failed trial would mean a trainer lost to the kill. */
const DECIDED: TrialState[] = ['promoted', 'not_better'];

let env: TestTemporal;
const processes: RunningProcess[] = [];
const folders: string[] = [];
beforeAll(async () => {
  env = await startTestTemporal();
});
afterAll(async () => {
  await Promise.all(processes.map((p) => p.kill()));
  await killOwnServers();
  await env?.stop();
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  removeSearchRepos();
});

/**
 * The example repository, and a search campaign on it loaded as the CLI loads one: its base spec lies beside
 * the repository (so the checkout stays clean) with the trainer slowed down, and its scripted proposer offers
 * three lower learning rates. Lower ones train worse here, so none is promoted and each of the three diffs,
 * written against the base, still applies to the incumbent when its turn comes: all three train.
 */
function searchOf(id: string): { repo: SearchRepo; campaign: SearchCampaignSpec } {
  const repo = makeSearchRepo('labline-search-crash-');
  const { dir, folder: parent } = repo;

  const base = fromYaml(readFileSync(path.join(dir, 'experiment.yaml'), 'utf8')) as {
    code: Record<string, unknown>;
    training: { args: string[]; working_directory: string };
  };
  base.code.repo = 'repo';
  base.training.working_directory = 'repo';
  base.training.args.push(`--step-delay-ms=${STEP_DELAY_MS}`);
  writeFileSync(path.join(parent, 'base.yaml'), toYaml(base));

  const lr = (value: string) => ({
    hypothesis: `a learning rate of ${value} is steadier`,
    diff: repo.edit(repo.content('0.05'), repo.content(value)),
  });
  writeFileSync(
    path.join(parent, 'proposals.yaml'),
    toYaml({ proposals: [lr('0.01'), lr('0.02'), lr('0.03')] }),
  );
  const file = path.join(parent, `${id}.yaml`);
  writeFileSync(
    file,
    toYaml({
      campaign_id: id,
      name: `search ${id}`,
      base: 'base.yaml',
      search: {
        editable: [HYPERPARAMETERS],
        objective: { metric: 'eval/accuracy', goal: 'max', seeds: 2, min_delta: 0.01, alpha: 0.05 },
        trial: { time_limit: '2m' },
        proposer: { kind: 'scripted', file: 'proposals.yaml' },
        autonomy: 'autonomous',
        budget: { max_trials: 3 },
        concurrency: 2,
      },
      approvals: { launch: { enabled: false } },
    }),
  );
  return { repo, campaign: searchCampaignFrom(readCampaignFile(file), file) };
}

const runFile = (rig: ExperimentRig, experimentId: string, name: string) =>
  path.join(rig.runsRoot, experimentId, name);

/** Whether a proposed trial (not the baseline) has a trainer that started and has not ended yet. */
function trialTraining(rig: ExperimentRig, status: SearchStatus): boolean {
  return status.trials.some(
    (trial) =>
      trial.n > 0 &&
      trial.state === 'running' &&
      trial.experiment_ids.some(
        (id) => existsSync(runFile(rig, id, 'starts.jsonl')) && !existsSync(runFile(rig, id, 'ends.jsonl')),
      ),
  );
}

/** One line per start of the trainer (the example trainer appends one to starts.jsonl each time). */
function trainerStarts(rig: ExperimentRig, experimentId: string): number {
  return readFileSync(runFile(rig, experimentId, 'starts.jsonl'), 'utf8')
    .trim()
    .split('\n').length;
}

/**
 * What a crash must not change: trials 0..3 once each, each trained and decided; one child per seed, each
 * run once by Temporal and its trainer started once; one branch per proposed trial, at the trial's commit,
 * one commit on top of its parent; one row per trial in trials.tsv.
 */
async function expectEveryTrialOnce(
  client: Client,
  rig: ExperimentRig,
  repo: SearchRepo,
  { result, status }: { result: SearchResult; status: SearchStatus },
): Promise<void> {
  const id = result.campaign_id;
  expect(result.stage).toBe('completed');
  expect(result.end_reason).toBe('max_trials reached (3 of 3)');
  expect(status.trials.map((trial) => trial.n)).toEqual([0, 1, 2, 3]);
  for (const trial of status.trials) {
    expect({ n: trial.n, state: trial.state, values: trial.values.length }).toEqual({
      n: trial.n,
      state: expect.stringMatching(new RegExp(`^(${DECIDED.join('|')})$`)) as TrialState,
      values: 2,
    });
  }

  const children = status.trials.flatMap((trial) => trial.experiment_ids);
  expect(new Set(children).size).toBe(8);
  // No experiment besides the trials' ran: every run folder of an experiment belongs to one of them.
  expect(
    readdirSync(rig.runsRoot)
      .filter((name) => name.startsWith('exp-'))
      .sort(),
  ).toEqual([...children].sort());
  for (const child of children) {
    expect({ child, starts: trainerStarts(rig, child) }).toEqual({ child, starts: 1 });
    const runs: string[] = [];
    for await (const execution of client.workflow.list({ query: `WorkflowId = '${child}'` }))
      runs.push(execution.status.name);
    expect({ child, runs }).toEqual({ child, runs: ['COMPLETED'] });
  }

  expect(
    repo.git('for-each-ref', '--format=%(refname:short)', `refs/heads/labline/${id}/`).split('\n'),
  ).toEqual([1, 2, 3].map((n) => `labline/${id}/trial-${n}`));
  for (const trial of status.trials.slice(1)) {
    expect(trial.branch).toBe(`labline/${id}/trial-${trial.n}`);
    expect(repo.git('rev-parse', trial.branch!)).toBe(trial.commit);
    expect(repo.git('rev-list', '--count', `${trial.parent_commit}..${trial.branch!}`)).toBe('1');
  }
  expect(repo.git('status', '--porcelain')).toBe('');

  const rows = readFileSync(path.join(rig.runsRoot, id, 'trials.tsv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1);
  expect(rows.map((row) => row.split('\t')[0])).toEqual(['0', '1', '2', '3']);
}

test('a worker killed with SIGKILL while a trial trains: a new worker finishes the search, no trial runs twice or is lost', async () => {
  const rig = experimentRig(2);
  const { repo, campaign } = searchOf(`camp-search-worker-kill-${process.pid}`);
  const id = campaign.campaign_id;
  const first = await startLablineWorkerProcess(env, rig, processes);
  await submitSearch({ client: env.client, campaign, settings: rig.settings });
  await waitForSearch(env.client, id, (status) => trialTraining(rig, status));
  await first.kill('SIGKILL');

  // The status is asked while a worker runs: a query needs one.
  const ended = await withWorker(env, { taskQueue: rig.taskQueue, activities: rig.activities }, async () => ({
    result: (await env.client.workflow.getHandle(id).result()) as SearchResult,
    status: await searchStatus(env.client, id),
  }));
  await expectEveryTrialOnce(env.client, rig, repo, ended);
}, 150_000);

test(`the ${testServerKind()} server killed with SIGKILL while a trial trains: restarted on its data, the search completes with every trial once`, async () => {
  const db = path.join(mkdtempSync(path.join(tmpdir(), 'labline-search-crash-db-')), 'server.wal');
  folders.push(path.dirname(db));
  const server = await startOwnServer(db);
  const rig = experimentRig();
  const { repo, campaign } = searchOf(`camp-search-server-kill-${process.pid}`);
  const id = campaign.campaign_id;
  const connection = await Connection.connect({ address: server.address });
  const own: TestTemporal = {
    address: server.address,
    namespace: 'default',
    connection,
    client: new Client({ connection, namespace: 'default' }),
    stop: () => connection.close(),
  };
  try {
    // One in-process worker throughout: it keeps polling through the outage and carries on after it.
    const ended = await withWorker(
      own,
      { taskQueue: rig.taskQueue, activities: rig.activities },
      async () => {
        await submitSearch({ client: own.client, campaign, settings: rig.settings });
        await waitForSearch(own.client, id, (status) => trialTraining(rig, status));
        await server.kill();
        await startOwnServer(db, server.port);
        // The handle's long poll would give up during the outage; the status query is retried here instead.
        const status = await waitForSearch(own.client, id, (s) => s.stage === 'completed', 120_000);
        return { result: (await own.client.workflow.getHandle(id).result()) as SearchResult, status };
      },
    );
    await expectEveryTrialOnce(own.client, rig, repo, ended);
  } finally {
    await own.stop();
  }
}, 180_000);
