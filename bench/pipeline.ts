/**
 * Benchmark of the experiment pipeline (src/workflows/experiment.ts) with the real local activities and the
 * example trainer, on the embedded dev server and on the real Temporal dev server, with the same workloads.
 *
 *   npx tsx bench/pipeline.ts                               (npm run bench:pipeline; both servers)
 *   npx tsx bench/pipeline.ts --embedded-only               (no Temporal CLI needed)
 *   npx tsx bench/pipeline.ts --servers=temporal-cli --parked=1000
 *
 * Flags: `--servers=embedded,temporal-cli` (the default; `--embedded-only` = `--servers=embedded`);
 * `--parked=1000,10000` (the default: the levels of experiments parked at the launch gate);
 * `--max-cached-workflows=N` (the worker's `worker.max_cached_workflows`; default: Labline's production
 * default, 250); `--result=<file>` (default bench/results/pipeline.json), so that a run with another cache
 * size does not replace the reference result.
 *
 * On each server:
 * 1. Orchestration overhead: experiments with both approval gates disabled, run one at a time; wall time
 *    from submit to result minus the trainer process's own time (exit.json startedAt → endedAt).
 * 2. Trainer exit → validation: from the trainer's exit (exit.json endedAt) to the ActivityTaskScheduled
 *    event of `validateDeliverables` in the workflow history, at the production poll interval of the
 *    training watcher (1000 ms) and at 100 ms.
 * 3. Experiments parked at the launch gate (bench/pipeline-parked.ts), with the worker on Labline's
 *    production settings: worker and server RSS at each level, worker CPU and time to park them, and the
 *    latency of approving a few of them (answered, out of the gate); then all terminated, RSS once more.
 * Then the comparison (ratios embedded / real) and whether the goals of issue #11 hold: 10,000 parked on one
 * worker within 1 GB of worker RSS, and an approval answered in under a second.
 *
 * The server (`labline devserver` or `temporal server start-dev`, in memory) and the worker
 * (bench/pipeline-worker.ts, built like `labline worker`) each run in their own process; this process is the
 * client. Writes bench/results/pipeline.json (or the `--result` file).
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ExitRecord, readRecord } from '../src/activities/training/local-attempt';
import { decide, submitExperiment } from '../src/client/experiments';
import { ExperimentSpec, type ExperimentSpecInput } from '../src/experiment';
import {
  compareServers,
  summary,
  type ExperimentTiming,
  type LatencyRun,
  type Segments,
  type ServerResult,
} from './pipeline-report';
import { activitiesOf, EventType, eventTime, only } from './history';
import {
  bundleLablineWorkflows,
  exampleTrainerExperiment,
  runFolder,
  withLablineStack,
  workflowSettings as lablineWorkflowSettings,
  type LablineStack,
} from './labline-stack';
import { measureParked, type ApproveFn, type ParkedParameters, type ParkedResult } from './pipeline-parked';
import { selectServers, type ServerKind, type ServerTarget } from './stack';
import {
  loadAverages,
  machineInfo,
  meanByKey,
  meanOf,
  resultHeader,
  round,
  runBenchmark,
  sourceState,
  stats,
  withTimeout,
  writeResult,
} from './support';

/** The value of `--name=…`, if given. */
const flag = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

const resultFile = path.resolve(flag('result') ?? path.join(__dirname, 'results', 'pipeline.json'));

const selection = selectServers();

/** `--parked=1000,10000`: positive integers, ascending. */
function parkedLevels(): number[] {
  const given = flag('parked');
  const levels = (given ?? '1000,10000').split(',').map(Number);
  if (levels.some((n, i) => !Number.isInteger(n) || n <= 0 || (i > 0 && n <= levels[i - 1]!)))
    throw new Error(`--parked=${given}: give ascending positive whole numbers, e.g. --parked=1000,10000`);
  return levels;
}

/** `--max-cached-workflows=N`, or undefined for Labline's production default. */
function maxCachedWorkflows(): number | undefined {
  const given = flag('max-cached-workflows');
  if (given === undefined) return undefined;
  const n = Number(given);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--max-cached-workflows=${given}: give a whole number`);
  return n;
}

const parameters = {
  servers: selection.targets.map((t) => t.kind),
  latency: {
    // Not counted: the first experiments on a fresh worker pay for JIT and the workflow sandbox.
    warmupExperiments: 2,
    // Ten per interval and server (twenty before the real server was added) keep the whole run bounded.
    experiments: 10,
    /** The watcher's `training_poll_interval_ms`: the production default, then a fast one. */
    pollIntervalsMs: [1000, 100],
    trainer: {
      steps: 60,
      // Experiment i sleeps (first + i × increment) ms after each step, so its run lasts 60 × 5…23 ms ≈ 0.3–1.4 s.
      // The spread is wider than one poll interval: exits then fall at every phase of the watcher's poll
      // instead of all at the same one, which would measure a single point of the saw-tooth.
      stepDelayMsFirst: 5,
      stepDelayMsIncrement: 2,
    },
    heartbeatTimeoutSeconds: 30,
  },
  parked: {
    levels: parkedLevels(),
    concurrency: 20,
    settleMs: 3000,
    recheckMs: 2000,
    // A third of the machine's memory: far above any bounded cache, low enough to leave the rest running.
    workerRssLimitMiB: Math.round(os.totalmem() / 1024 / 1024 / 3),
    approvals: { random: 5, mostRecent: 3 },
    timeouts: {
      // Generous: trial runs parked at 35–47 ms of worker CPU per experiment on 2 cores shared with the
      // server and this client; 10,000 then take minutes, more when other work loads the machine.
      parkBaseMs: 120_000,
      parkPerExperimentMs: 120,
      approvalMs: 60_000,
      terminateBaseMs: 60_000,
      terminatePerExperimentMs: 20,
    },
  } satisfies ParkedParameters,
  /** undefined: Labline's production default, which the worker reports. */
  maxCachedWorkflows: maxCachedWorkflows(),
  timeouts: {
    processStartMs: 60_000,
    experimentMs: 60_000,
    processStopMs: 15_000,
    trainerCleanupMs: 30_000,
    wholeRunMs: 55 * 60_000,
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

async function measureLatency(
  target: ServerTarget,
  bundlePath: string,
  dir: string,
  pollIntervalMs: number,
): Promise<LatencyRun> {
  const { warmupExperiments, experiments, trainer } = parameters.latency;
  const label = `${target.kind}-latency-${pollIntervalMs}ms`;
  const stackOptions = { dir, label, bundlePath, server: target, timeouts: parameters.timeouts };
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
    `lookup, the activity completion, one workflow task that schedules validation). ${runs[0]?.experiments} exit phases ` +
    'sample the saw-tooth only roughly, so at 1000 ms the fixed cost is lost in that error (it can even come ' +
    'out negative); the 100 ms run resolves it. Temporal and the dev ' +
    'server account only for that fixed part; a watcher woken by the exit itself (the supervisor, or ' +
    'exit.json appearing) instead of polling would remove the interval term.'
  );
}

// ---------------------------------------------------------------------------------------------------
// 3. Experiments parked at the launch gate

/** Approves a launch as `labline approve <id> --gate launch` does: the client API's `decide`. */
const approveLaunch: ApproveFn = (client, id) =>
  decide(client, id, 'approve', {
    gate: 'launch',
    by: 'bench',
    source: 'cli',
    comment: 'approval latency benchmark',
  });

async function measureParkedOn(target: ServerTarget, bundlePath: string, dir: string): Promise<ParkedResult> {
  const stackOptions = {
    dir,
    label: `${target.kind}-parked`,
    bundlePath,
    server: target,
    maxCachedWorkflows: parameters.maxCachedWorkflows,
    timeouts: parameters.timeouts,
  };
  return await withLablineStack(stackOptions, async (stack) => {
    const workload = {
      spec: (id: string) => benchSpec(id, { gates: true, stepDelayMs: 0 }),
      settings: workflowSettings(stack.runsRoot, 1000),
    };
    return await measureParked(stack, workload, approveLaunch, parameters.parked);
  });
}

// ---------------------------------------------------------------------------------------------------
// One server, every measurement

async function measureServer(target: ServerTarget, bundlePath: string, dir: string): Promise<ServerResult> {
  const runs: LatencyRun[] = [];
  for (const pollIntervalMs of parameters.latency.pollIntervalsMs) {
    console.log(`${target.kind}: experiments one at a time, watcher polling every ${pollIntervalMs} ms…`);
    runs.push(await measureLatency(target, bundlePath, dir, pollIntervalMs));
  }
  console.log(
    `${target.kind}: experiments parked at the launch gate (${parameters.parked.levels.join(', ')})…`,
  );
  const parked = await measureParkedOn(target, bundlePath, dir);
  const byInterval = <T>(pick: (run: LatencyRun) => T) =>
    Object.fromEntries(runs.map((run) => [`poll${run.pollIntervalMs}ms`, pick(run)]));
  return {
    server:
      target.kind === 'embedded'
        ? 'embedded: `labline devserver --port 0 --log-level warn`, in memory'
        : `real Temporal dev server (${selection.temporalCliVersion}): \`temporal server start-dev --headless ` +
          "--log-level warn` with Labline's search attributes, in memory",
    orchestrationOverhead: byInterval((run) => ({
      overheadMs: run.overheadMs,
      overheadVsTrainerLoopMs: run.overheadVsTrainerLoopMs,
      wallMs: run.wallMs,
      trainerProcessMs: run.trainerProcessMs,
      trainerLoopMs: run.trainerLoopMs,
    })),
    trainerExitToValidation: {
      ...byInterval((run) => ({
        latencyMs: run.exitToValidationMs,
        breakdownMeanMs: run.exitToValidationBreakdownMeanMs,
      })),
      whatDominates: explainExitToValidation(runs),
    },
    runs,
    parkedAtLaunchGate: parked,
  };
}

// ---------------------------------------------------------------------------------------------------
// Run and record

/** The temporary folder of this run (bundle, runs, server data), removed by `cleanUp`. */
const { dir, cleanUp } = runFolder('labline-bench-pipeline-', parameters.timeouts.trainerCleanupMs);

async function main(): Promise<void> {
  const loadAtStart = loadAverages();
  try {
    console.log('bundling workflow code…');
    const bundlePath = await bundleLablineWorkflows(dir);
    const results: Partial<Record<ServerKind, ServerResult>> = {};
    for (const target of selection.targets)
      results[target.kind] = await measureServer(target, bundlePath, dir);
    const comparison = compareServers(results);

    const report = {
      ...resultHeader('pipeline'),
      source: sourceState(),
      machine: { ...machineInfo(), loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadAverages() },
      temporalCli: selection.temporalCliVersion ?? 'not used',
      parameters: {
        ...parameters,
        topology:
          'server: `labline devserver --port 0 --log-level warn` or `temporal server start-dev --headless ' +
          "--log-level warn` with Labline's search attributes, in memory, on 127.0.0.1; worker: " +
          'bench/pipeline-worker.ts process (createLablineWorkers: labline, labline-gpu, labline-agents ' +
          'queues, production settings, console notifier, offline agents, local launcher and tracker); client: ' +
          'this process; a fresh server and worker for each run; the servers measured one after the other',
        trainerCommand:
          `node examples/trainer/train.js --steps=${parameters.latency.trainer.steps} --lr=0.5 --seed=0 ` +
          '--eval-every=10 --checkpoint-every=10 --step-delay-ms=<5+2i> (parked experiments: 0)',
      },
      definitions: {
        orchestrationOverhead:
          'wall time from submitExperiment to the result, minus the trainer process time (exit.json ' +
          'startedAt → endedAt, as the supervisor saw it, Node start-up included). overheadVsTrainerLoopMs ' +
          "subtracts the trainer's own start/end records (starts.jsonl/ends.jsonl) instead.",
        trainerExitToValidation:
          'exit.json endedAt (the supervisor saw the trainer exit) → ActivityTaskScheduled event time of ' +
          'validateDeliverables in the workflow history.',
        parked:
          'Parked = visibility counts the experiment with LablineStage = launch_review, and describe shows ' +
          'that stage with no pending workflow task or activity (the approval request has been posted). ' +
          'Levels are cumulative on one server and worker: the next level submits only the difference.',
        approval:
          'answeredMs: from calling decide (client API, as `labline approve --gate launch`) until it returned; ' +
          "leftGateMs: from that call to launchTraining's ActivityTaskScheduled event (server clock); " +
          'random: drawn among all parked; mostRecent: the last submitted, the likeliest to still be in the ' +
          "worker's workflow cache. Each approved experiment is left to train and settle at the publish gate " +
          'before the next approval is timed.',
      },
      servers: results,
      comparison,
      notes: [
        'p50/p95 by nearest rank over the measured experiments (warm-ups excluded).',
        'segmentsMeanMs are consecutive stretches that add up to the wall time; they mix three clocks of ' +
          'one machine (client, server event times, supervisor), all read from the same system clock.',
        'activitiesMeanMs: queueMs = ActivityTaskScheduled → ActivityTaskStarted, runMs = started → completed.',
        'RSS from VmRSS (peak: VmHWM) in /proc/<pid>/status, read after a settle pause. ' +
          'perParkedExperimentKiB = (at that level − idle) / parked; it includes heap headroom.',
        'CPU from /proc/<pid>/stat (user + system, all threads), from the first submit of a level until all ' +
          'of it was confirmed parked; the server share includes answering the count and describe polls.',
        "loadAverage1m: the machine's 1-minute load average before and after each level; on 2 cores, a load " +
          'above ~2 means other work competed with the measured processes.',
      ],
    };
    writeResult(resultFile, report, summary(results, comparison));
  } finally {
    await cleanUp();
  }
}

runBenchmark(main, { wholeRunMs: parameters.timeouts.wholeRunMs, cleanUp });
