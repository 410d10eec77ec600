/**
 * Benchmark of the experiment pipeline (src/workflows/experiment.ts) with the real local activities, the
 * example trainer and the embedded dev server.
 *
 *   npx tsx bench/pipeline.ts
 *
 * 1. Orchestration overhead: experiments with both approval gates disabled, run one at a time; wall time
 *    from submit to result minus the trainer process's own time (exit.json startedAt → endedAt).
 * 2. Trainer exit → validation: from the trainer's exit (exit.json endedAt) to the ActivityTaskScheduled
 *    event of `validateDeliverables` in the workflow history, at the production poll interval of the
 *    training watcher (1000 ms) and at 100 ms.
 * 3. Worker RSS with 500 experiments waiting at the launch gate (nobody approves), then terminated.
 *
 * The server (`labline devserver`) and the worker (bench/pipeline-worker.ts, built like `labline worker`)
 * each run in their own process; this process is the client. Writes bench/results/pipeline.json.
 */
import { Client, Connection } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { bundleWorkflowCode } from '@temporalio/worker';
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalLauncher } from '../src/activities/training/local';
import { ExitRecord, readRecord } from '../src/activities/training/local-attempt';
import { submitExperiment } from '../src/client/experiments';
import { ExperimentSpec, type ExperimentSpecInput, type WorkflowSettingsInput } from '../src/experiment';
import { statusQuery } from '../src/workflows';
import { cliScript, type RunningProcess } from '../tests/support/processes';
import {
  cpuSecondsOf,
  exitOf,
  killAllNow,
  memoryOf,
  pool,
  round,
  sleep,
  spawnTracked,
  stats,
  stopProcess,
  withTimeout,
  type Stats,
} from './support';

const root = path.resolve(__dirname, '..');
const resultFile = path.join(__dirname, 'results', 'pipeline.json');
const workerScript = path.join(__dirname, 'pipeline-worker.ts');
const trainerPath = path.join(root, 'examples/trainer/train.js');
const namespace = 'default';

const parameters = {
  latency: {
    // Not counted: the first experiments on a fresh worker pay for JIT and the workflow sandbox.
    warmupExperiments: 2,
    experiments: 20,
    /** The watcher's `training_poll_interval_ms`: the production default, then a fast one. */
    pollIntervalsMs: [1000, 100],
    trainer: {
      steps: 60,
      // Experiment i sleeps (first + i) ms after each step, so its run lasts 60 × (5 + i) ms ≈ 0.3–1.4 s.
      // The spread is wider than one poll interval: exits then fall at every phase of the watcher's poll
      // instead of all at the same one, which would measure a single point of the saw-tooth.
      stepDelayMsFirst: 5,
      stepDelayMsIncrement: 1,
    },
    heartbeatTimeoutSeconds: 30,
  },
  memory: { waitingExperiments: 500, concurrency: 20, settleMs: 2000, recheckMs: 500 },
  timeouts: {
    processStartMs: 60_000,
    experimentMs: 60_000,
    submitAllMs: 180_000,
    allWaitingMs: 300_000,
    terminateAllMs: 120_000,
    processStopMs: 10_000,
    trainerCleanupMs: 30_000,
    wholeRunMs: 20 * 60_000,
  },
};

// ---------------------------------------------------------------------------------------------------
// The stack: a server process, a worker process and a client in this process, stopped together

interface Stack {
  server: RunningProcess;
  worker: RunningProcess;
  client: Client;
  runsRoot: string;
  maxCachedWorkflows: number;
}

async function startServer(): Promise<{ process: RunningProcess; address: string }> {
  const p = spawnTracked(cliScript, ['devserver', '--port', '0', '--log-level', 'warn']);
  const match = await p.waitFor(/listening on (127\.0\.0\.1:\d+)/, parameters.timeouts.processStartMs);
  return { process: p, address: match[1]! };
}

async function startWorker(address: string, runsRoot: string, dataDir: string, bundlePath: string) {
  const p = spawnTracked(workerScript, [address, namespace, runsRoot, dataDir, bundlePath]);
  const match = await p.waitFor(/worker ready maxCachedWorkflows=(\d+)/, parameters.timeouts.processStartMs);
  return { process: p, maxCachedWorkflows: Number(match[1]) };
}

/** A fresh server, worker and runs folder under `dir/label`; every process is stopped afterwards. */
async function withStack<T>(
  dir: string,
  label: string,
  bundlePath: string,
  fn: (stack: Stack) => Promise<T>,
): Promise<T> {
  const runsRoot = path.join(dir, label, 'runs');
  const dataDir = path.join(dir, label, 'data');
  mkdirSync(runsRoot, { recursive: true });
  mkdirSync(dataDir, { recursive: true });
  const server = await startServer();
  let worker: RunningProcess | undefined;
  let connection: Connection | undefined;
  try {
    const started = await startWorker(server.address, runsRoot, dataDir, bundlePath);
    worker = started.process;
    connection = await withTimeout(
      Connection.connect({ address: server.address }),
      parameters.timeouts.processStartMs,
      'client connection',
    );
    // A crashed server or worker fails the run at once instead of at a time limit.
    const crashed = Promise.race([exitOf(server.process, 'server'), exitOf(worker, 'worker')]);
    crashed.catch(() => undefined);
    const client = new Client({ connection, namespace });
    return await Promise.race([
      fn({
        server: server.process,
        worker,
        client,
        runsRoot,
        maxCachedWorkflows: started.maxCachedWorkflows,
      }),
      crashed,
    ]);
  } finally {
    await connection?.close();
    if (worker) await stopProcess(worker, parameters.timeouts.processStopMs);
    await stopProcess(server.process, parameters.timeouts.processStopMs);
  }
}

// ---------------------------------------------------------------------------------------------------
// Specs and settings

function benchSpec(id: string, options: { gates: boolean; stepDelayMs: number }): ExperimentSpec {
  const { steps } = parameters.latency.trainer;
  const input: ExperimentSpecInput = {
    experiment_id: id,
    name: `bench ${id}`,
    hypothesis: 'a small MLP separates the two moons',
    config: { steps, learning_rate: 0.5, seed: 0 },
    training: {
      command: process.execPath,
      args: [
        trainerPath,
        `--steps=${steps}`,
        '--lr=0.5',
        '--seed=0',
        '--eval-every=10',
        '--checkpoint-every=10',
        `--step-delay-ms=${options.stepDelayMs}`,
      ],
      working_directory: root,
      checkpoint: { directory: 'checkpoints', resume: { flag: '--resume-from' } },
    },
    deliverables: [
      { name: 'curves', type: 'contains_keys', keys: ['train/loss', 'eval/accuracy'], in: 'history' },
      { name: 'accuracy', type: 'threshold', metric: 'eval/accuracy', op: '>=', value: 0.7 },
      { name: 'checkpoint', type: 'exists_and_loadable', path: 'checkpoints/latest.json' },
    ],
    metadata: { project: 'bench', researcher: 'bench' },
    // Gates on: the spec's defaults (anyone approves, reminders hourly, 24 h timeout).
    ...(options.gates ? {} : { approvals: { launch: { enabled: false }, publish: { enabled: false } } }),
  };
  return ExperimentSpec.parse(input);
}

function workflowSettings(runsRoot: string, pollIntervalMs: number): WorkflowSettingsInput {
  return {
    runs_root: runsRoot,
    training_heartbeat_timeout_seconds: parameters.latency.heartbeatTimeoutSeconds,
    training_poll_interval_ms: pollIntervalMs,
  };
}

// ---------------------------------------------------------------------------------------------------
// Reading what happened: the workflow history and the run directory

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
const EventType = temporal.api.enums.v1.EventType;

interface ActivityTimes {
  type: string;
  scheduled: number;
  started?: number;
  closed?: number;
}

/** Every activity of a history with its scheduled, started and closed (completed or failed) times. */
function activitiesOf(events: HistoryEvent[]): ActivityTimes[] {
  const byScheduledId = new Map<number, ActivityTimes>();
  for (const event of events) {
    const at = tsToMs(event.eventTime);
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) {
      byScheduledId.set(Number(event.eventId), { type: scheduled.activityType?.name ?? '?', scheduled: at });
      continue;
    }
    const refersTo =
      event.activityTaskStartedEventAttributes?.scheduledEventId ??
      event.activityTaskCompletedEventAttributes?.scheduledEventId ??
      event.activityTaskFailedEventAttributes?.scheduledEventId;
    const activity = refersTo == null ? undefined : byScheduledId.get(Number(refersTo));
    if (!activity) continue;
    if (event.activityTaskStartedEventAttributes) activity.started = at;
    else activity.closed = at;
  }
  return [...byScheduledId.values()];
}

function only(activities: ActivityTimes[], type: string): ActivityTimes {
  const found = activities.filter((a) => a.type === type);
  if (found.length !== 1)
    throw new Error(`expected one ${type} activity in the history, found ${found.length}`);
  return found[0]!;
}

function closedAt(events: HistoryEvent[]): number {
  const closed = events.find((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED);
  if (!closed) throw new Error('the history has no WorkflowExecutionCompleted event');
  return tsToMs(closed.eventTime);
}

/** The trainer process as its supervisor saw it (exit.json) and as it saw itself (starts/ends.jsonl). */
function trainerTimes(runDir: string): {
  processStart: number;
  processEnd: number;
  loopStart: number;
  loopEnd: number;
} {
  const attempts = readdirSync(path.join(runDir, 'attempts'));
  if (attempts.length !== 1)
    throw new Error(`${runDir}: expected one training attempt, found ${attempts.length}`);
  const exit = readRecord(path.join(runDir, 'attempts', attempts[0]!, 'exit.json'), ExitRecord);
  if (!exit?.startedAt || exit.exitCode !== 0) throw new Error(`${runDir}: the trainer did not exit cleanly`);
  const firstLine = (file: string) =>
    JSON.parse(readFileSync(path.join(runDir, file), 'utf8').split('\n')[0]!) as Record<string, string>;
  return {
    processStart: Date.parse(exit.startedAt),
    processEnd: Date.parse(exit.endedAt),
    loopStart: Date.parse(firstLine('starts.jsonl').startedAt!),
    loopEnd: Date.parse(firstLine('ends.jsonl').endedAt!),
  };
}

// ---------------------------------------------------------------------------------------------------
// 1 + 2. One experiment at a time: overhead and trainer-exit-to-validation latency

/**
 * Consecutive stretches of one experiment, in ms; they add up to its wall time. Times come from three
 * clocks of the same machine: this process (submit, result), the server (history event times) and the
 * supervisor (exit.json).
 */
interface Segments {
  submitToLaunchScheduled: number;
  launchScheduledToTrainerStart: number;
  trainerProcess: number;
  trainerExitToWatcherDone: number;
  watcherDoneToValidationScheduled: number;
  validationScheduledToWorkflowClosed: number;
  workflowClosedToClientResult: number;
}

interface ExperimentTiming {
  id: string;
  stepDelayMs: number;
  wallMs: number;
  trainerProcessMs: number;
  trainerLoopMs: number;
  overheadMs: number;
  overheadVsTrainerLoopMs: number;
  exitToValidationMs: number;
  segments: Segments;
  /** Per activity type: time in the queue (scheduled → started) and running (started → closed). */
  activities: Record<string, { queueMs: number; runMs: number }>;
}

async function runExperiment(
  stack: Stack,
  id: string,
  stepDelayMs: number,
  pollIntervalMs: number,
): Promise<ExperimentTiming> {
  const spec = benchSpec(id, { gates: false, stepDelayMs });
  const settings = workflowSettings(stack.runsRoot, pollIntervalMs);
  // Date.now(), not performance.now(): these are compared with the server's and the supervisor's clocks.
  const submittedAt = Date.now();
  const { handle } = await submitExperiment({ client: stack.client, spec, settings });
  const result = await withTimeout(handle.result(), parameters.timeouts.experimentMs, `experiment ${id}`);
  const resultAt = Date.now();
  if (result.end_stage !== 'completed' || result.status !== 'completed') {
    throw new Error(`${id} ended ${result.end_stage}/${result.status}: ${result.reason ?? ''}`);
  }

  const events = (await handle.fetchHistory()).events ?? [];
  const activities = activitiesOf(events);
  const launch = only(activities, 'launchTraining');
  const watcher = only(activities, 'awaitTraining');
  const validation = only(activities, 'validateDeliverables');
  const trainer = trainerTimes(path.join(stack.runsRoot, id));
  const closed = closedAt(events);

  const segments: Segments = {
    submitToLaunchScheduled: launch.scheduled - submittedAt,
    launchScheduledToTrainerStart: trainer.processStart - launch.scheduled,
    trainerProcess: trainer.processEnd - trainer.processStart,
    trainerExitToWatcherDone: watcher.closed! - trainer.processEnd,
    watcherDoneToValidationScheduled: validation.scheduled - watcher.closed!,
    validationScheduledToWorkflowClosed: closed - validation.scheduled,
    workflowClosedToClientResult: resultAt - closed,
  };
  const wallMs = resultAt - submittedAt;
  const trainerLoopMs = trainer.loopEnd - trainer.loopStart;
  return {
    id,
    stepDelayMs,
    wallMs,
    trainerProcessMs: segments.trainerProcess,
    trainerLoopMs,
    overheadMs: wallMs - segments.trainerProcess,
    overheadVsTrainerLoopMs: wallMs - trainerLoopMs,
    exitToValidationMs: validation.scheduled - trainer.processEnd,
    segments,
    activities: Object.fromEntries(
      activities.map((a) => [
        a.type,
        { queueMs: (a.started ?? NaN) - a.scheduled, runMs: a.closed! - a.started! },
      ]),
    ),
  };
}

const meanOf = (values: number[]) => round(values.reduce((sum, v) => sum + v, 0) / values.length);

/** Mean of every numeric field of `records`, by key. */
function meanByKey(records: Record<string, number>[]): Record<string, number> {
  const keys = [...new Set(records.flatMap((r) => Object.keys(r)))];
  return Object.fromEntries(keys.map((k) => [k, meanOf(records.map((r) => r[k] ?? NaN))]));
}

interface LatencyRun {
  pollIntervalMs: number;
  experiments: number;
  maxCachedWorkflows: number;
  warmupWallMs: number[];
  wallMs: Stats;
  trainerProcessMs: Stats;
  trainerLoopMs: Stats;
  overheadMs: Stats;
  overheadVsTrainerLoopMs: Stats;
  exitToValidationMs: Stats;
  exitToValidationBreakdownMeanMs: {
    trainerExitToWatcherDone: number;
    watcherDoneToValidationScheduled: number;
  };
  segmentsMeanMs: Record<string, number>;
  activitiesMeanMs: Record<string, { queueMs: number; runMs: number }>;
  perExperiment: Omit<ExperimentTiming, 'segments' | 'activities'>[];
}

async function measureLatency(bundlePath: string, dir: string, pollIntervalMs: number): Promise<LatencyRun> {
  const { warmupExperiments, experiments, trainer } = parameters.latency;
  const label = `latency-${pollIntervalMs}ms`;
  return await withStack(dir, label, bundlePath, async (stack) => {
    const warmupWallMs: number[] = [];
    for (let i = 1; i <= warmupExperiments; i++) {
      const warm = await runExperiment(
        stack,
        `exp-bench-p${pollIntervalMs}-warm-${i}`,
        trainer.stepDelayMsFirst,
        pollIntervalMs,
      );
      warmupWallMs.push(warm.wallMs);
    }
    const timings: ExperimentTiming[] = [];
    for (let i = 0; i < experiments; i++) {
      const stepDelayMs = trainer.stepDelayMsFirst + i * trainer.stepDelayMsIncrement;
      const id = `exp-bench-p${pollIntervalMs}-${String(i + 1).padStart(2, '0')}`;
      timings.push(await runExperiment(stack, id, stepDelayMs, pollIntervalMs));
      process.stdout.write('.');
    }
    process.stdout.write('\n');
    const of = (pick: (t: ExperimentTiming) => number) => stats(timings.map(pick));
    const segmentsMeanMs = meanByKey(timings.map((t) => ({ ...t.segments })));
    const activityTypes = Object.keys(timings[0]!.activities);
    return {
      pollIntervalMs,
      experiments,
      maxCachedWorkflows: stack.maxCachedWorkflows,
      warmupWallMs,
      wallMs: of((t) => t.wallMs),
      trainerProcessMs: of((t) => t.trainerProcessMs),
      trainerLoopMs: of((t) => t.trainerLoopMs),
      overheadMs: of((t) => t.overheadMs),
      overheadVsTrainerLoopMs: of((t) => t.overheadVsTrainerLoopMs),
      exitToValidationMs: of((t) => t.exitToValidationMs),
      exitToValidationBreakdownMeanMs: {
        trainerExitToWatcherDone: segmentsMeanMs.trainerExitToWatcherDone!,
        watcherDoneToValidationScheduled: segmentsMeanMs.watcherDoneToValidationScheduled!,
      },
      segmentsMeanMs,
      activitiesMeanMs: Object.fromEntries(
        activityTypes.map((type) => [
          type,
          {
            queueMs: meanOf(timings.map((t) => t.activities[type]?.queueMs ?? NaN)),
            runMs: meanOf(timings.map((t) => t.activities[type]?.runMs ?? NaN)),
          },
        ]),
      ),
      perExperiment: timings.map(({ segments: _s, activities: _a, ...rest }) => rest),
    };
  });
}

/** What dominates trainer-exit-to-validation, worked out from the runs rather than asserted. */
function explainExitToValidation(runs: LatencyRun[]): string {
  const parts = runs.map((run) => {
    const { trainerExitToWatcherDone: watch, watcherDoneToValidationScheduled: task } =
      run.exitToValidationBreakdownMeanMs;
    const fixed = round(run.exitToValidationMs.mean - run.pollIntervalMs / 2);
    return (
      `poll ${run.pollIntervalMs} ms: mean ${run.exitToValidationMs.mean} ms = ${watch} ms from the exit to ` +
      `awaitTraining completed + ${task} ms from there to validateDeliverables scheduled; ` +
      `interval / 2 = ${run.pollIntervalMs / 2} ms of it is sleeping, the remaining ${fixed} ms the fixed cost`
    );
  });
  return (
    "The training watcher's poll interval (training_poll_interval_ms) dominates. " +
    `${parts.join('. ')}. awaitTraining sleeps a whole interval between status checks and the trainer ` +
    'exits at a random point of that sleep, so the latency spreads from ~0 to one interval (see min and ' +
    'max): its mean is interval / 2 plus a small fixed cost (one status read, the log tail and checkpoint ' +
    'lookup, the activity completion, one workflow task that schedules validation). Twenty exit phases ' +
    'sample the saw-tooth only roughly, so at 1000 ms the fixed cost is lost in that error (it can even come ' +
    'out negative); the 100 ms run resolves it. Temporal and the dev ' +
    'server account only for that fixed part; a watcher woken by the exit itself (the supervisor, or ' +
    'exit.json appearing) instead of polling would remove the interval term.'
  );
}

// ---------------------------------------------------------------------------------------------------
// 3. Worker memory with experiments waiting at the launch gate

interface WaitingMemory {
  experiments: number;
  maxCachedWorkflows: number;
  idle: { workerMiB: number; serverMiB: number };
  allWaiting: { workerMiB: number; serverMiB: number; workerPeakMiB: number; serverPeakMiB: number };
  perWaitingExperimentKiB: { worker: number; server: number };
  afterTerminate: { workerMiB: number; serverMiB: number };
  approvalRequestsLogged: number;
  trainingStarted: number;
  /** From the first submit until all are submitted / all quiet (describe) / all confirmed at the gate. */
  submitSeconds: number;
  quietSeconds: number;
  allWaitingSeconds: number;
  /** Worker CPU from the first submit until all were quiet, per experiment: its first workflow task and request. */
  workerCpuMsPerExperimentToGate: number;
  terminateSeconds: number;
}

/** At the launch gate: status says so, and neither a workflow task nor an activity (the request) is pending. */
async function atLaunchGate(client: Client, id: string): Promise<boolean> {
  const handle = client.workflow.getHandle(id);
  try {
    const status = await handle.query(statusQuery);
    if (status.stage !== 'launch_review' || status.waiting?.gate !== 'launch') return false;
    const { raw } = await handle.describe();
    return !raw.pendingWorkflowTask && (raw.pendingActivities?.length ?? 0) === 0;
  } catch {
    return false; // not queryable until its first workflow task has run
  }
}

async function waitAllAtLaunchGate(client: Client, ids: string[]): Promise<void> {
  const { concurrency, recheckMs } = parameters.memory;
  const deadline = Date.now() + parameters.timeouts.allWaitingMs;
  let pending = ids;
  while (pending.length > 0) {
    if (Date.now() > deadline) {
      const example = await client.workflow
        .getHandle(pending[0]!)
        .query(statusQuery)
        .then((status) => JSON.stringify(status).slice(0, 2000), String);
      throw new Error(
        `${pending.length} experiments never reached the launch gate; ${pending[0]}: ${example}`,
      );
    }
    const waiting = await pool(pending.length, concurrency, (i) => atLaunchGate(client, pending[i]!));
    pending = pending.filter((_, i) => !waiting[i]);
    if (pending.length > 0) await sleep(recheckMs);
  }
}

const approvalRequestsIn = (worker: RunningProcess) =>
  worker.output().match(/waits for launch approval/g)?.length ?? 0;

/** Nothing left to do for now: no pending workflow task or activity. Asks the server only, not the worker. */
async function isQuiet(client: Client, id: string): Promise<boolean> {
  const description = await client.workflow.getHandle(id).describe();
  const { pendingWorkflowTask, pendingActivities } = description.raw;
  // At least started, task scheduled, task started, task completed: it has run its first task.
  return description.historyLength >= 4 && !pendingWorkflowTask && (pendingActivities?.length ?? 0) === 0;
}

/**
 * Waits (bounded) until every experiment has gone quiet (describe: no pending workflow task or activity).
 * Describe is answered by the server, so the worker's CPU up to here is the experiments' own work;
 * `waitAllAtLaunchGate` then confirms through the status query that they are quiet at the launch gate.
 */
async function waitAllQuiet(client: Client, ids: string[]): Promise<void> {
  const { concurrency, recheckMs } = parameters.memory;
  const deadline = Date.now() + parameters.timeouts.allWaitingMs;
  let pending = ids;
  while (pending.length > 0) {
    if (Date.now() > deadline) throw new Error(`${pending.length} experiments never went quiet`);
    const quiet = await pool(pending.length, concurrency, (i) => isQuiet(client, pending[i]!));
    pending = pending.filter((_, i) => !quiet[i]);
    if (pending.length > 0) await sleep(recheckMs);
  }
}

async function measureWaitingMemory(bundlePath: string, dir: string): Promise<WaitingMemory> {
  const { waitingExperiments, concurrency, settleMs } = parameters.memory;
  return await withStack(dir, 'memory', bundlePath, async (stack) => {
    const pids = { worker: stack.worker.child.pid!, server: stack.server.child.pid! };
    const rss = () => ({ worker: memoryOf(pids.worker), server: memoryOf(pids.server) });
    await sleep(settleMs);
    const idle = rss();

    const ids = Array.from(
      { length: waitingExperiments },
      (_, i) => `exp-bench-wait-${String(i + 1).padStart(3, '0')}`,
    );
    const settings = workflowSettings(stack.runsRoot, 1000);
    const cpuBefore = cpuSecondsOf(pids.worker);
    let mark = Date.now();
    await withTimeout(
      pool(ids.length, concurrency, (i) =>
        submitExperiment({
          client: stack.client,
          spec: benchSpec(ids[i]!, { gates: true, stepDelayMs: 0 }),
          settings,
        }),
      ),
      parameters.timeouts.submitAllMs,
      `submitting ${ids.length} experiments`,
    );
    const submitSeconds = (Date.now() - mark) / 1000;
    await waitAllQuiet(stack.client, ids);
    const workerCpuSeconds = cpuSecondsOf(pids.worker) - cpuBefore;
    const quietSeconds = (Date.now() - mark) / 1000;
    await waitAllAtLaunchGate(stack.client, ids);
    const allWaitingSeconds = (Date.now() - mark) / 1000;
    // Let in-flight replies and garbage collection settle before reading RSS.
    await sleep(settleMs);
    const open = rss();
    const approvalRequestsLogged = approvalRequestsIn(stack.worker);
    const trainingStarted = readdirSync(stack.runsRoot).length;

    mark = Date.now();
    await withTimeout(
      pool(ids.length, concurrency, (i) =>
        stack.client.workflow.getHandle(ids[i]!).terminate('benchmark over'),
      ),
      parameters.timeouts.terminateAllMs,
      `terminating ${ids.length} experiments`,
    );
    const terminateSeconds = (Date.now() - mark) / 1000;
    await sleep(settleMs);
    const after = rss();

    const perExperimentKiB = (openMiB: number, idleMiB: number) =>
      round(((openMiB - idleMiB) * 1024) / waitingExperiments);
    return {
      experiments: waitingExperiments,
      maxCachedWorkflows: stack.maxCachedWorkflows,
      idle: { workerMiB: idle.worker.rssMiB, serverMiB: idle.server.rssMiB },
      allWaiting: {
        workerMiB: open.worker.rssMiB,
        serverMiB: open.server.rssMiB,
        workerPeakMiB: open.worker.peakRssMiB,
        serverPeakMiB: open.server.peakRssMiB,
      },
      perWaitingExperimentKiB: {
        worker: perExperimentKiB(open.worker.rssMiB, idle.worker.rssMiB),
        server: perExperimentKiB(open.server.rssMiB, idle.server.rssMiB),
      },
      afterTerminate: { workerMiB: after.worker.rssMiB, serverMiB: after.server.rssMiB },
      approvalRequestsLogged,
      trainingStarted,
      submitSeconds: round(submitSeconds, 2),
      quietSeconds: round(quietSeconds, 2),
      allWaitingSeconds: round(allWaitingSeconds, 2),
      workerCpuMsPerExperimentToGate: round((workerCpuSeconds * 1000) / waitingExperiments),
      terminateSeconds: round(terminateSeconds, 2),
    };
  });
}

// ---------------------------------------------------------------------------------------------------
// Cleanup of training processes: the supervisors are detached on purpose, so killing the worker does
// not stop them. Any attempt without exit.json is cancelled through the launcher itself.

async function stopLeftoverTrainers(dir: string): Promise<void> {
  const launcher = new LocalLauncher({ killGraceMs: 1000 });
  const attemptDirs = readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((rel) => path.basename(path.dirname(rel)) === 'attempts')
    .map((rel) => path.join(dir, rel))
    .filter((attemptDir) => !existsSync(path.join(attemptDir, 'exit.json')));
  for (const attemptDir of attemptDirs) {
    const runDir = path.dirname(path.dirname(attemptDir));
    await launcher.cancel({ launcher: 'local', key: path.basename(attemptDir), runDir, attemptDir });
  }
}

// ---------------------------------------------------------------------------------------------------
// Run, record, summarise

async function bundle(dir: string): Promise<string> {
  const quiet = () => undefined;
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../src/workflows'),
    logger: {
      log: quiet,
      trace: quiet,
      debug: quiet,
      info: quiet,
      warn: quiet,
      error: (m) => console.error(m),
    },
  });
  const file = path.join(dir, 'workflows.js');
  writeFileSync(file, code);
  return file;
}

/** The commit measured, and how many files under src/ differ from it (others' uncommitted work counts). */
function sourceState(): { commit: string; uncommittedFilesUnderSrc: number } | string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8' });
    return {
      commit: git('rev-parse', 'HEAD').trim(),
      uncommittedFilesUnderSrc: git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).length,
    };
  } catch {
    return 'not a git checkout';
  }
}

function sdkVersion(): string {
  const pkg = path.join(root, 'node_modules/@temporalio/worker/package.json');
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}

const fmt = (s: Stats) => `mean ${s.mean}, p50 ${s.p50}, p95 ${s.p95}, max ${s.max} ms`;

function summary(runs: LatencyRun[], memory: WaitingMemory): string {
  const lines = [`Experiments one at a time, gates disabled (${parameters.latency.experiments} per run):`];
  for (const run of runs) {
    lines.push(
      `  poll ${run.pollIntervalMs} ms: wall ${fmt(run.wallMs)}`,
      `    trainer process ${fmt(run.trainerProcessMs)} (its own loop: mean ${run.trainerLoopMs.mean} ms)`,
      `    orchestration overhead ${fmt(run.overheadMs)}`,
      `    trainer exit → validation scheduled ${fmt(run.exitToValidationMs)}`,
      `      (exit → watcher done ${run.exitToValidationBreakdownMeanMs.trainerExitToWatcherDone} ms, ` +
        `→ validation scheduled ${run.exitToValidationBreakdownMeanMs.watcherDoneToValidationScheduled} ms)`,
    );
  }
  const m = memory;
  lines.push(
    `${m.experiments} experiments waiting at the launch gate (submitted in ${m.submitSeconds} s, all quiet at ` +
      `${m.quietSeconds} s, all confirmed waiting at ${m.allWaitingSeconds} s):`,
    `  worker RSS ${m.allWaiting.workerMiB} MiB (idle ${m.idle.workerMiB}, ~${m.perWaitingExperimentKiB.worker} KiB/experiment, ` +
      `${m.afterTerminate.workerMiB} after terminating them)`,
    `  worker CPU to reach the gate ~${m.workerCpuMsPerExperimentToGate} ms/experiment`,
    `  server RSS ${m.allWaiting.serverMiB} MiB (idle ${m.idle.serverMiB}, ~${m.perWaitingExperimentKiB.server} KiB/experiment, ` +
      `${m.afterTerminate.serverMiB} after terminating them)`,
  );
  return lines.join('\n');
}

/** The temporary folder of this run (bundle, runs, server data), removed by `cleanUp`. */
const dir = mkdtempSync(path.join(os.tmpdir(), 'labline-bench-pipeline-'));
let cleaning: Promise<void> | undefined;

/**
 * Kills the server and worker, cancels any training still running (its supervisor is detached, so killing
 * the worker does not reach it) and removes the temporary folder. Bounded; safe to call more than once.
 */
function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    killAllNow();
    await withTimeout(
      stopLeftoverTrainers(dir),
      parameters.timeouts.trainerCleanupMs,
      'stopping trainers',
    ).catch((error: unknown) => console.error(error));
    rmSync(dir, { recursive: true, force: true });
  })();
  return cleaning;
}

async function main(): Promise<void> {
  const loadAtStart = os.loadavg().map((l) => round(l, 2));
  try {
    console.log('bundling workflow code…');
    const bundlePath = await bundle(dir);
    const runs: LatencyRun[] = [];
    for (const pollIntervalMs of parameters.latency.pollIntervalsMs) {
      console.log(`experiments one at a time, watcher polling every ${pollIntervalMs} ms…`);
      runs.push(await measureLatency(bundlePath, dir, pollIntervalMs));
    }
    console.log(`${parameters.memory.waitingExperiments} experiments waiting at the launch gate…`);
    const memory = await measureWaitingMemory(bundlePath, dir);

    const byInterval = <T>(pick: (run: LatencyRun) => T) =>
      Object.fromEntries(runs.map((run) => [`poll${run.pollIntervalMs}ms`, pick(run)]));
    const report = {
      benchmark: 'pipeline',
      date: new Date().toISOString(),
      node: process.version,
      temporalSdk: sdkVersion(),
      source: sourceState(),
      machine: {
        platform: `${os.platform()} ${os.release()}`,
        arch: os.arch(),
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        totalMemoryMiB: Math.round(os.totalmem() / 1024 / 1024),
        // Other work on the machine skews latencies; the 1, 5 and 15 minute load averages say how much.
        loadAverageAtStart: loadAtStart,
        loadAverageAtEnd: os.loadavg().map((l) => round(l, 2)),
      },
      parameters: {
        ...parameters,
        topology:
          '`labline devserver --port 0 --log-level warn` process (in memory, 127.0.0.1); worker: ' +
          'bench/pipeline-worker.ts process (createLablineWorkers: labline, labline-gpu, labline-agents ' +
          'queues, SDK defaults, console notifier, offline agents, local launcher and tracker); client: this ' +
          'process; a fresh server and worker for each run; experiments submitted one at a time',
        trainerCommand: `node examples/trainer/train.js --steps=${parameters.latency.trainer.steps} --lr=0.5 --seed=0 --eval-every=10 --checkpoint-every=10 --step-delay-ms=<5+i>`,
      },
      orchestrationOverhead: {
        definition:
          'wall time from submitExperiment to the result, minus the trainer process time (exit.json ' +
          'startedAt → endedAt, as the supervisor saw it, Node start-up included). overheadVsTrainerLoopMs ' +
          "subtracts the trainer's own start/end records (starts.jsonl/ends.jsonl) instead.",
        ...byInterval((run) => ({
          overheadMs: run.overheadMs,
          overheadVsTrainerLoopMs: run.overheadVsTrainerLoopMs,
          wallMs: run.wallMs,
          trainerProcessMs: run.trainerProcessMs,
          trainerLoopMs: run.trainerLoopMs,
        })),
      },
      trainerExitToValidation: {
        definition:
          'exit.json endedAt (the supervisor saw the trainer exit) → ActivityTaskScheduled event time of ' +
          'validateDeliverables in the workflow history.',
        ...byInterval((run) => ({
          latencyMs: run.exitToValidationMs,
          breakdownMeanMs: run.exitToValidationBreakdownMeanMs,
        })),
        whatDominates: explainExitToValidation(runs),
      },
      runs,
      workerMemoryAtLaunchGate: memory,
      notes: [
        'p50/p95 by nearest rank over the measured experiments (warm-ups excluded).',
        'segmentsMeanMs are consecutive stretches that add up to the wall time; they mix three clocks of ' +
          'one machine (client, server event times, supervisor), all read from the same system clock.',
        'activitiesMeanMs: queueMs = ActivityTaskScheduled → ActivityTaskStarted, runMs = started → completed.',
        'RSS from VmRSS (peak: VmHWM) in /proc/<pid>/status, read after a settle pause. ' +
          'perWaitingExperimentKiB = (all waiting − idle) / experiments; it includes V8 heap headroom.',
        'Waiting = the status query shows stage launch_review with the launch gate open, and describe ' +
          'shows no pending workflow task or activity (the approval request has been posted).',
      ],
    };
    mkdirSync(path.dirname(resultFile), { recursive: true });
    writeFileSync(resultFile, JSON.stringify(report, null, 2) + '\n');
    console.log(summary(runs, memory));
    console.log(`wrote ${path.relative(root, resultFile)}`);
  } finally {
    await cleanUp();
  }
}

/** Cleans up (bounded) and exits; the children are killed first, whatever else fails. */
function exitAfterCleanUp(code: number): void {
  killAllNow();
  void cleanUp().finally(() => process.exit(code));
}

// A hard ceiling on the whole run: whatever hangs, the children die and the process exits.
setTimeout(() => {
  console.error(`bench: the run exceeded ${parameters.timeouts.wholeRunMs} ms; killing everything`);
  exitAfterCleanUp(1);
}, parameters.timeouts.wholeRunMs).unref();

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => exitAfterCleanUp(130));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    exitAfterCleanUp(1);
  },
);
