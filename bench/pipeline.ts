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
import type { Client } from '@temporalio/client';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ExitRecord, readRecord } from '../src/activities/training/local-attempt';
import { submitExperiment } from '../src/client/experiments';
import { ExperimentSpec, type ExperimentSpecInput } from '../src/experiment';
import { statusQuery } from '../src/workflows';
import type { RunningProcess } from '../tests/support/processes';
import { activitiesOf, EventType, eventTime, only } from './history';
import {
  bundleLablineWorkflows,
  exampleTrainerExperiment,
  runFolder,
  withLablineStack,
  workflowSettings as lablineWorkflowSettings,
  type LablineStack,
} from './labline-stack';
import {
  cpuSecondsOf,
  formatStats,
  loadAverages,
  machineInfo,
  meanByKey,
  meanOf,
  memoryOf,
  pool,
  resultHeader,
  round,
  runBenchmark,
  sleep,
  sourceState,
  stats,
  withTimeout,
  writeResult,
  type Stats,
} from './support';

const resultFile = path.join(__dirname, 'results', 'pipeline.json');

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
// Specs and settings

function benchSpec(id: string, options: { gates: boolean; stepDelayMs: number }): ExperimentSpec {
  const { steps } = parameters.latency.trainer;
  const input: ExperimentSpecInput = {
    ...exampleTrainerExperiment({
      id,
      hypothesis: 'a small MLP separates the two moons',
      config: { steps, learning_rate: 0.5, seed: 0 },
      args: [
        `--steps=${steps}`,
        '--lr=0.5',
        '--seed=0',
        '--eval-every=10',
        '--checkpoint-every=10',
        `--step-delay-ms=${options.stepDelayMs}`,
      ],
    }),
    // Gates on: the spec's defaults (anyone approves, reminders hourly, 24 h timeout).
    ...(options.gates ? {} : { approvals: { launch: { enabled: false }, publish: { enabled: false } } }),
  };
  return ExperimentSpec.parse(input);
}

const workflowSettings = (runsRoot: string, pollIntervalMs: number) =>
  lablineWorkflowSettings(runsRoot, pollIntervalMs, parameters.latency.heartbeatTimeoutSeconds);

// ---------------------------------------------------------------------------------------------------
// Reading what happened: the workflow history and the run directory

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
  stack: LablineStack,
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
  const launch = only(activities, 'launchTraining', id);
  const watcher = only(activities, 'awaitTraining', id);
  const validation = only(activities, 'validateDeliverables', id);
  const trainer = trainerTimes(path.join(stack.runsRoot, id));
  const closed = eventTime(events, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, id);

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
  const stackOptions = { dir, label, bundlePath, timeouts: parameters.timeouts };
  return await withLablineStack(stackOptions, async (stack) => {
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
  const stackOptions = { dir, label: 'memory', bundlePath, timeouts: parameters.timeouts };
  return await withLablineStack(stackOptions, async (stack) => {
    const pids = { worker: stack.worker.child.pid!, server: stack.server.pid };
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
// Run, record, summarise

function summary(runs: LatencyRun[], memory: WaitingMemory): string {
  const lines = [`Experiments one at a time, gates disabled (${parameters.latency.experiments} per run):`];
  for (const run of runs) {
    lines.push(
      `  poll ${run.pollIntervalMs} ms: wall ${formatStats(run.wallMs)}`,
      `    trainer process ${formatStats(run.trainerProcessMs)} (its own loop: mean ${run.trainerLoopMs.mean} ms)`,
      `    orchestration overhead ${formatStats(run.overheadMs)}`,
      `    trainer exit → validation scheduled ${formatStats(run.exitToValidationMs)}`,
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
const { dir, cleanUp } = runFolder('labline-bench-pipeline-', parameters.timeouts.trainerCleanupMs);

async function main(): Promise<void> {
  const loadAtStart = loadAverages();
  try {
    console.log('bundling workflow code…');
    const bundlePath = await bundleLablineWorkflows(dir);
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
      ...resultHeader('pipeline'),
      source: sourceState(),
      machine: { ...machineInfo(), loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadAverages() },
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
    writeResult(resultFile, report, summary(runs, memory));
  } finally {
    await cleanUp();
  }
}

runBenchmark(main, { wholeRunMs: parameters.timeouts.wholeRunMs, cleanUp });
