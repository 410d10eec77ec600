/**
 * The experiment workflow with tracker `wandb`, end to end: real client, worker and embedded Temporal, the
 * real local launcher running the example trainer, and the fake W&B serving each run as W&B would show it
 * had the trainer logged there (computed from the trainer's run directory).
 */
import { ActivityFailure, WorkflowFailedError, type ApplicationFailure } from '@temporalio/client';
import { defineQuery } from '@temporalio/workflow';
import * as path from 'node:path';
import type { ExperimentSpecInput } from '../../src/experiment';
import { experimentHandle } from '../../src/client/experiments';
import { WandbSettings } from '../../src/activities/tracking/wandb-settings';
import { WandbTracker } from '../../src/activities/tracking/wandb';
import { createLablineActivities } from '../../src/workers/activities';
import { startTestTemporal, type TestTemporal } from '../support/temporal';
import {
  decideWhenWaiting,
  experimentRig,
  readJsonLines,
  runExperiment,
  trainerSpec,
  waitForStatus,
  type ExperimentRig,
} from '../support/experiments';
import { runFromRunDir, startFakeWandb, type FakeWandb } from '../support/fake-wandb';

const ENTITY = 'acme-ml';
const PROJECT = 'labline-e2e';
const wrapper = path.join(__dirname, 'fixtures', 'wandb-env-trainer.js');

let env: TestTemporal;
let fake: FakeWandb;
/** Run directories the fake may serve, by W&B run id; and runs whose heartbeat the test froze. */
const runDirs = new Map<string, string>();
const frozenHeartbeats = new Map<string, string>();
/** Runs the fake pretends never reached W&B. */
const neverLogged = new Set<string>();
const trackers: WandbTracker[] = [];

beforeAll(async () => {
  env = await startTestTemporal();
  fake = await startFakeWandb({
    resolveRun: (entity, project, name) => {
      const runDir = runDirs.get(name);
      if (entity !== ENTITY || project !== PROJECT || !runDir || neverLogged.has(name)) return undefined;
      const heartbeatAt = frozenHeartbeats.get(name);
      return runFromRunDir(runDir, { entity, project, name }, heartbeatAt ? { heartbeatAt } : {});
    },
  });
});
afterAll(async () => {
  await Promise.all(trackers.map((t) => t.close()));
  await fake?.close();
  await env?.stop();
});

let counter = 0;
const newId = (label: string) => `exp-wandb-${label}-${process.pid}-${++counter}-${Date.now() % 100000}`;

/** A rig whose activities use the fake W&B: fast following, a 1 s stall timeout. */
function wandbRig(): ExperimentRig & {
  settings: ExperimentRig['settings'] & { wandb: { base_url: string } };
} {
  const rig = experimentRig();
  const tracker = new WandbTracker({ baseUrl: fake.url, apiKey: fake.apiKey, historyPageSize: 25 });
  trackers.push(tracker);
  const activities = createLablineActivities({
    runsRoot: rig.runsRoot,
    gpuIds: [],
    slotsDir: path.join(rig.runsRoot, '.gpu-slots'),
    killGraceSeconds: 1,
    notifier: rig.notifier,
    wandb: WandbSettings.parse({ follow_interval_seconds: 0.1, stall_timeout_seconds: 1 }),
    wandbTracker: tracker,
  });
  return { ...rig, activities, settings: { ...rig.settings, wandb: { base_url: fake.url } } };
}

/** The trainer spec, run through the wrapper that records its W&B variables, tracked in the fake W&B. */
function wandbSpec(
  rig: ExperimentRig,
  id: string,
  extraArgs: string[],
  overrides: Partial<ExperimentSpecInput> = {},
) {
  runDirs.set(id, path.join(rig.runsRoot, id));
  const base = trainerSpec(id, extraArgs, overrides);
  const training = base.training as { args: string[] };
  return {
    ...base,
    training: { ...base.training, args: [wrapper, ...training.args.slice(1)] },
    tracker: { type: 'wandb' as const, entity: ENTITY, project: PROJECT },
    deliverables: [
      ...(base.deliverables ?? []),
      {
        name: 'final-accuracy',
        type: 'threshold',
        metric: 'eval/accuracy',
        op: '>=',
        value: 0.7,
        aggregate: 'final',
      },
      { name: 'model', type: 'synced_and_downloadable', artifacts: ['model'] },
    ],
  } satisfies ExperimentSpecInput;
}

const run = <T>(rig: ExperimentRig, input: ExperimentSpecInput, drive: (id: string) => Promise<T>) =>
  runExperiment(env, rig, input, drive);

const readLines = readJsonLines;

const noGates = { launch: { enabled: false }, publish: { enabled: false } };
const metadataQuery = defineQuery<{ currentDetails?: string }>('__temporal_workflow_metadata');

test('preempted and resumed, both launches log into one W&B run; its URL is shown from the start; deliverables pass against W&B', async () => {
  const rig = wandbRig();
  const id = newId('preempt');
  const url = `${fake.url}/${ENTITY}/${PROJECT}/runs/${id}`;
  const spec = wandbSpec(rig, id, ['--preempt-at-step=30', '--step-delay-ms=30'], { approvals: noGates });
  const { result, status } = await run(rig, spec, async () => {
    const training = await waitForStatus(
      env.client,
      id,
      (s) => s.stage === 'training' && s.attempts.length > 0 && s.attempts.at(-1)!.outcome === undefined,
    );
    expect(training.links.tracker_url).toBe(url);
    const metadata = await experimentHandle(env.client, id).query(metadataQuery);
    expect(metadata.currentDetails).toContain(`**W&B run:** ${url}`);
    return experimentHandle(env.client, id).result();
  });

  expect(result.end_stage).toBe('completed');
  const launches = readLines(path.join(rig.runsRoot, id, 'wandb-env.jsonl'));
  expect(launches).toEqual([
    {
      attempt: '1',
      WANDB_RUN_ID: id,
      WANDB_RESUME: 'allow',
      WANDB_PROJECT: PROJECT,
      WANDB_ENTITY: ENTITY,
      WANDB_BASE_URL: fake.url,
    },
    {
      attempt: '2',
      WANDB_RUN_ID: id,
      WANDB_RESUME: 'allow',
      WANDB_PROJECT: PROJECT,
      WANDB_ENTITY: ENTITY,
      WANDB_BASE_URL: fake.url,
    },
  ]);
  expect(status.attempts.map((a) => [a.outcome, a.tracker_state])).toEqual([
    ['preempted', 'preempted'],
    ['success', 'finished'],
  ]);
  expect(status.links.tracker_url).toBe(url);
  expect(result.validation_results?.run).toBe(url);
  expect(result.deliverables_status).toEqual({
    curves: 'met',
    accuracy: 'met',
    checkpoint: 'met',
    'final-accuracy': 'met',
    model: 'met',
  });
  // Validation and analysis read W&B, for this run only.
  const runOps = fake.requests.filter(
    (r) => r.server === 'api' && r.variables && Object.values(r.variables).includes(id),
  );
  expect(new Set(runOps.map((r) => r.operation))).toEqual(
    new Set(['RunState', 'Run', 'RunOutputArtifacts', 'RunFiles', 'RunHistoryKeys', 'HistoryPage']),
  );
});

test('approval requests carry the W&B run URL', async () => {
  const rig = wandbRig();
  const id = newId('gate');
  const spec = wandbSpec(rig, id, [], { approvals: { publish: { enabled: false } } });
  const { result } = await run(rig, spec, async () => {
    await decideWhenWaiting(env.client, id, 'launch', 'approve');
    return experimentHandle(env.client, id).result();
  });
  expect(result.end_stage).toBe('completed');
  expect(rig.notifier.requests[0]!.links.tracker).toBe(`${fake.url}/${ENTITY}/${PROJECT}/runs/${id}`);
});

test('a run that stops heartbeating in W&B while the trainer runs is stopped, and the failure gate says why', async () => {
  const rig = wandbRig();
  const id = newId('stall');
  const spec = wandbSpec(rig, id, ['--steps=100000', '--step-delay-ms=20'], {
    approvals: { ...noGates, failure: { approvers: ['alice'] } },
  });
  const { result, status } = await run(rig, spec, async () => {
    await waitForStatus(env.client, id, (s) => (s.attempts[0]?.step ?? 0) > 20);
    frozenHeartbeats.set(id, new Date().toISOString());
    const waiting = await decideWhenWaiting(env.client, id, 'failure', 'reject');
    expect(waiting.waiting!.question).toMatch(
      /W&B run acme-ml\/labline-e2e\/exp-wandb-stall\S* stopped heartbeating/,
    );
    return experimentHandle(env.client, id).result();
  });
  expect(result.end_stage).toBe('failed');
  expect(status.attempts[0]!.outcome).toBe('error');
  const [start] = readLines(path.join(rig.runsRoot, id, 'starts.jsonl'));
  expect(() => process.kill(start!.pid as number, 0)).toThrow();
});

test('a run that never reached W&B fails validation at once, naming entity, project and run', async () => {
  const rig = wandbRig();
  const id = newId('missing');
  neverLogged.add(id);
  const spec = wandbSpec(rig, id, [], { approvals: noGates });
  const { result: error, status } = await run(rig, spec, async () =>
    experimentHandle(env.client, id)
      .result()
      .catch((e: unknown) => e),
  );
  expect(error).toBeInstanceOf(WorkflowFailedError);
  // The workflow fails with the validation activity's failure, whose cause is the tracker's.
  const activity = (error as WorkflowFailedError).cause as ActivityFailure;
  expect(activity).toBeInstanceOf(ActivityFailure);
  const cause = activity.cause as ApplicationFailure;
  expect(cause.type).toBe('TrackerRunNotFound');
  expect(cause.nonRetryable).toBe(true);
  expect(cause.message).toMatch(new RegExp(`no run ${ENTITY}/${PROJECT}/${id}`));
  expect(status.stage).toBe('failed');
  expect(fake.requests.filter((r) => r.operation === 'Run' && r.variables?.name === id)).toHaveLength(1);
});

/** Waits (bounded) until the Web UI's current details of `id` satisfy `predicate`. */
async function waitForDetails(id: string, predicate: (details: string) => boolean): Promise<string> {
  const deadline = Date.now() + 30_000;
  let last = '';
  while (Date.now() < deadline) {
    last = (await experimentHandle(env.client, id).query(metadataQuery)).currentDetails ?? '';
    if (predicate(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for the current details of ${id}; last:\n${last}`);
}

test('a W&B answering 500 during validation is retried within the settings, shown while retrying, then asks at the failure gate', async () => {
  const rig = wandbRig();
  const settings = {
    ...rig.settings,
    validation_retry: { max_attempts: 3, max_retry_seconds: 120, retry_interval_seconds: 0.1 },
  };
  const id = newId('w500');
  const spec = wandbSpec(rig, id, [], { approvals: { ...noGates, failure: { approvers: ['alice'] } } });
  // Only validation asks for `Run` (training follows `RunState`): its three attempts fail, W&B asking for 2 s each.
  fake.script(
    'Run',
    { status: 500, headers: { 'retry-after': '2' }, body: '{"errors":[{"message":"internal error"}]}' },
    3,
  );
  const { result, status } = await run({ ...rig, settings }, spec, async () => {
    const retrying = await waitForStatus(env.client, id, (s) => s.retrying !== undefined);
    expect(retrying.stage).toBe('validation');
    const retry = retrying.retrying!;
    expect(retry).toMatchObject({
      activity: 'validateDeliverables',
      max_attempts: 3,
      failure_type: 'TrackerUnavailable',
    });
    expect(retry.failed_attempts).toBeGreaterThanOrEqual(1);
    expect(retry.last_error).toMatch(
      /W&B Run at \S+ answered HTTP 500; it asks to retry after 2 s: internal error/,
    );
    // W&B's Retry-After decides the wait, not the 0.1 s of the settings.
    expect(Date.parse(retry.next_attempt_at!) - Date.parse(retry.failed_at!)).toBe(2000);
    const details = await waitForDetails(id, (d) => d.includes('**Retrying:**'));
    expect(details).toMatch(
      /\*\*Retrying:\*\* validateDeliverables failed [12] of 3 attempts \(TrackerUnavailable: .*HTTP 500/,
    );
    const asked = await decideWhenWaiting(env.client, id, 'failure', 'approve');
    expect(asked.stage).toBe('validation');
    expect(asked.retrying).toBeUndefined();
    expect(asked.waiting!.question).toMatch(
      /validation could not read the tracked run: TrackerUnavailable, 3 of 3 attempts failed .*: W&B Run .* HTTP 500/,
    );
    expect(asked.waiting!.details).toMatchObject({ error_class: 'TrackerUnavailable' });
    return experimentHandle(env.client, id).result();
  });
  // Approved at the failure gate, validation ran once more against a W&B that had recovered.
  expect(result.end_stage).toBe('completed');
  expect(status.retrying).toBeUndefined();
  expect(fake.requests.filter((r) => r.operation === 'Run' && r.variables?.name === id)).toHaveLength(4);
});

test('with the failure gate disabled, retries used up end the experiment as failed, with the classified error', async () => {
  const rig = wandbRig();
  const settings = {
    ...rig.settings,
    validation_retry: { max_attempts: 2, max_retry_seconds: 60, retry_interval_seconds: 0.05 },
  };
  const id = newId('w503');
  const spec = wandbSpec(rig, id, [], { approvals: { ...noGates, failure: { enabled: false } } });
  fake.script('Run', { status: 503, body: 'upstream unavailable' }, 2);
  const { result, status } = await run({ ...rig, settings }, spec, () =>
    experimentHandle(env.client, id).result(),
  );
  expect(result.end_stage).toBe('failed');
  expect(status.reason).toMatch(
    /validation could not read the tracked run: TrackerUnavailable, 2 of 2 attempts failed .*HTTP 503: upstream unavailable \(the failure gate is disabled\)/,
  );
  expect(fake.requests.filter((r) => r.operation === 'Run' && r.variables?.name === id)).toHaveLength(2);
});

test('while an activity is retried by its Temporal retry policy (analysis reading a failing W&B), status shows the retry', async () => {
  const rig = wandbRig();
  const id = newId('a503');
  const spec = wandbSpec(rig, id, [], { approvals: noGates });
  // Only the analysis streams the history (validation reads summaries and last values): two 503s.
  fake.script(
    'RunHistoryKeys',
    { status: 503, headers: { 'retry-after': '2' }, body: 'upstream unavailable' },
    2,
  );
  const { result } = await run(rig, spec, async () => {
    const retrying = await waitForStatus(env.client, id, (s) => s.retrying !== undefined);
    expect(retrying.stage).toBe('analysis');
    expect(retrying.retrying).toMatchObject({
      activity: 'computeAnalysis',
      failure_type: 'TrackerUnavailable',
    });
    expect(retrying.retrying!.failed_attempts).toBeGreaterThanOrEqual(1);
    expect(retrying.retrying!.last_error).toMatch(/RunHistoryKeys .* answered HTTP 503/);
    expect(Date.parse(retrying.retrying!.next_attempt_at!)).toBeGreaterThan(
      Date.parse(retrying.retrying!.failed_at!),
    );
    return experimentHandle(env.client, id).result();
  });
  expect(result.end_stage).toBe('completed');
});
