/**
 * Shared fakes and helpers for experiment workflow tests: a spec for the tiny trainer, a worker with the
 * real local activities on a unique task queue, a notifier that records what it was asked to post, and a
 * bounded wait for the experiment to reach a gate.
 */
import type { Client } from '@temporalio/client';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  ExperimentSpec,
  type ExperimentSpecInput,
  type ExperimentStatus,
  type GateName,
} from '../../src/experiment';
import type { Announcement, ApprovalMessage, Notifier } from '../../src/activities/notify/notifier';
import { createLablineActivities } from '../../src/workers/activities';
import type { DecisionRecord } from '../../src/experiment';
import { experimentStatus, decide, submitExperiment } from '../../src/client/experiments';
import { startTsProcess, workerProcessScript, type RunningProcess } from './processes';
import { uniqueTaskQueue, withWorker, workflowBundle, type TestTemporal } from './temporal';

const repo = path.resolve(__dirname, '../..');
export const trainerPath = path.join(repo, 'examples/trainer/train.js');

/** A spec for the tiny trainer that finishes in well under a second. */
export function trainerSpec(
  id: string,
  extraArgs: string[] = [],
  overrides: Partial<ExperimentSpecInput> = {},
): ExperimentSpecInput {
  return {
    experiment_id: id,
    name: `test ${id}`,
    hypothesis: 'a small MLP separates the two moons',
    config: { steps: 60, learning_rate: 0.5, seed: 0 },
    training: {
      command: process.execPath,
      args: [
        trainerPath,
        '--steps=60',
        '--lr=0.5',
        '--seed=0',
        '--eval-every=10',
        '--checkpoint-every=10',
        ...extraArgs,
      ],
      working_directory: repo,
      checkpoint: { directory: 'checkpoints', resume: { flag: '--resume-from' } },
    },
    deliverables: [
      { name: 'curves', type: 'contains_keys', keys: ['train/loss', 'eval/accuracy'], in: 'history' },
      { name: 'accuracy', type: 'threshold', metric: 'eval/accuracy', op: '>=', value: 0.7 },
      { name: 'checkpoint', type: 'exists_and_loadable', path: 'checkpoints/latest.json' },
    ],
    metadata: { project: 'tests', researcher: 'tester' },
    approvals: {
      launch: { approvers: ['alice'] },
      publish: { approvers: ['alice'] },
      failure: { approvers: ['alice'] },
      deliverables: { approvers: ['alice'] },
    },
    budgets: { max_training_attempts: 2, max_preemption_restarts: 2 },
    ...overrides,
  };
}

export class RecordingNotifier implements Notifier {
  readonly requests: ApprovalMessage[] = [];
  readonly reminders: ApprovalMessage[] = [];
  readonly decided: (Omit<ApprovalMessage, 'waiting'> & { decision: DecisionRecord })[] = [];
  async requestApproval(message: ApprovalMessage): Promise<void> {
    if (!this.requests.some((m) => m.key === message.key)) this.requests.push(message);
  }
  async remind(message: ApprovalMessage): Promise<void> {
    if (!this.reminders.some((m) => m.key === message.key)) this.reminders.push(message);
  }
  async markDecided(message: Omit<ApprovalMessage, 'waiting'> & { decision: DecisionRecord }): Promise<void> {
    this.decided.push(message);
  }
  readonly announcements: Announcement[] = [];
  async announce(message: Announcement): Promise<void> {
    if (!this.announcements.some((m) => m.key === message.key)) this.announcements.push(message);
  }
}

export interface ExperimentRig {
  taskQueue: string;
  runsRoot: string;
  notifier: RecordingNotifier;
  settings: {
    runs_root: string;
    task_queues: { workflow: string; gpu: string; agents: string };
    training_heartbeat_timeout_seconds: number;
    training_poll_interval_ms: number;
    launch_timeout_seconds: number;
  };
  activities: ReturnType<typeof createLablineActivities>;
}

/** One task queue for every role, a fresh runs folder, fast polling. */
export function experimentRig(heartbeatTimeoutSeconds = 5): ExperimentRig {
  const taskQueue = uniqueTaskQueue('exp');
  const runsRoot = mkdtempSync(path.join(tmpdir(), 'labline-runs-'));
  const notifier = new RecordingNotifier();
  return {
    taskQueue,
    runsRoot,
    notifier,
    settings: {
      runs_root: runsRoot,
      task_queues: { workflow: taskQueue, gpu: taskQueue, agents: taskQueue },
      training_heartbeat_timeout_seconds: heartbeatTimeoutSeconds,
      training_poll_interval_ms: 100,
      launch_timeout_seconds: 5,
    },
    activities: createLablineActivities({
      runsRoot,
      gpuIds: [],
      slotsDir: path.join(runsRoot, '.gpu-slots'),
      killGraceSeconds: 1,
      notifier,
    }),
  };
}

/** Waits (bounded) until the experiment's status satisfies `predicate`. */
export async function waitForStatus(
  client: Client,
  id: string,
  predicate: (status: ExperimentStatus) => boolean,
  timeoutMs = 30_000,
): Promise<ExperimentStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: ExperimentStatus | undefined;
  while (Date.now() < deadline) {
    try {
      last = await experimentStatus(client, id);
      if (predicate(last)) return last;
    } catch {
      // Not queryable until its first workflow task ran.
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${id}; last status: ${JSON.stringify(last, null, 2)}`);
}

/** Waits for `gate` to open, then sends the decision. */
export async function decideWhenWaiting(
  client: Client,
  id: string,
  gate: GateName,
  signal: 'approve' | 'reject',
  extra: { by?: string; choice?: 'retry' | 'abort' | 'accept' | 'rerun'; comment?: string } = {},
): Promise<ExperimentStatus> {
  const status = await waitForStatus(client, id, (s) => s.waiting?.gate === gate);
  await decide(client, id, signal, {
    gate,
    by: extra.by ?? 'alice',
    choice: extra.choice,
    comment: extra.comment,
    source: 'api',
  });
  return status;
}

/**
 * Submits the experiment with the rig's worker running, lets `drive` act on it, then `afterDrive` (recording
 * its history, say), and returns what `drive` returned with the final status (queried while the worker runs:
 * a query needs a worker, even on a closed workflow).
 */
export async function runExperiment<T>(
  env: TestTemporal,
  rig: ExperimentRig,
  input: ExperimentSpecInput,
  drive: (id: string) => Promise<T>,
  afterDrive?: (id: string) => Promise<void>,
): Promise<{ result: T; status: ExperimentStatus }> {
  const spec = ExperimentSpec.parse(input);
  return withWorker(env, { taskQueue: rig.taskQueue, activities: rig.activities }, async () => {
    await submitExperiment({ client: env.client, spec, settings: rig.settings });
    const result = await drive(spec.experiment_id);
    await afterDrive?.(spec.experiment_id);
    return { result, status: await experimentStatus(env.client, spec.experiment_id) };
  });
}

/** The JSON lines of a file (the example trainer's starts.jsonl, ends.jsonl…); none when it does not exist. */
export const readJsonLines = (file: string): Record<string, unknown>[] =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>)
    : [];

/**
 * A Labline worker in a process of its own (tests/support/worker-process.ts) on the rig's task queue, for tests
 * that kill it; added to `processes` (for the test's cleanup) before it is awaited, returned once ready.
 */
export async function startLablineWorkerProcess(
  server: { address: string; namespace: string },
  rig: Pick<ExperimentRig, 'taskQueue' | 'runsRoot'>,
  processes: RunningProcess[],
  env: NodeJS.ProcessEnv = {},
): Promise<RunningProcess> {
  const worker = startTsProcess(
    workerProcessScript,
    ['labline', server.address, server.namespace, rig.taskQueue, rig.runsRoot, workflowBundle().codePath],
    env,
  );
  processes.push(worker);
  await worker.waitFor(/worker ready/);
  return worker;
}
