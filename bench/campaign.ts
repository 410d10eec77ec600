/**
 * Benchmark of campaigns (src/workflows/campaign.ts): how long a GPU slot stands idle when one child
 * experiment hands it over to the next.
 *
 *   npx tsx bench/campaign.ts
 *
 * A 20-child campaign (10 variants × 2 seeds) with a concurrency limit of 2, the campaign launch gate
 * disabled and the children's gates delegated, each child a ~1 s run of the example trainer. The two
 * slots are lanes: from the trainers' own start/end records (starts.jsonl, ends.jsonl), ends and starts
 * are sorted, and each start after the first two takes over the slot of the earliest end not yet taken
 * over; the gap between them is that hand-over's idle time. Measured with the watcher's poll interval
 * (`training_poll_interval_ms`) at its default of 250 ms and at 100 ms: after a warm-up campaign, two
 * campaigns per interval on one server and worker, alternating 250, 100, 250, 100 so that load from other
 * work on the machine falls on both alike.
 *
 * Each hand-over is also taken apart along its causal chain, from the workflow histories (the campaign's
 * and both children's) and the launcher's attempt records: the trainer's exit, the watcher noticing it,
 * the rest of the finished child's pipeline (validation, analysis, writing), the campaign starting the next
 * child, that child's launch gate and launchTraining, and the supervisor and trainer process starts.
 *
 * The server (`labline devserver`) and the worker (bench/pipeline-worker.ts, built like `labline worker`)
 * run in their own processes; this process is the client. Writes bench/results/campaign.json.
 */
import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { readdirSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { z } from 'zod';
import {
  ATTEMPT_FILES,
  ExitRecord,
  LaunchRecord,
  readRecord,
  SupervisorRecord,
  TrainerRecord,
} from '../src/activities/training/local-attempt';
import { submitCampaign } from '../src/client/campaigns';
import { CampaignSpec, childExperimentId, type CampaignSpecInput } from '../src/experiment';
import type { CampaignResult } from '../src/workflows';
import { activitiesOf, EventType, eventTime, only, type ActivityTimes, type HistoryEvent } from './history';
import {
  bundleLablineWorkflows,
  exampleTrainerExperiment,
  runFolder,
  withLablineStack,
  workflowSettings as lablineWorkflowSettings,
  type LablineStack,
} from './labline-stack';
import {
  formatStats,
  loadAverages,
  machineInfo,
  meanByKey,
  resultHeader,
  round,
  runBenchmark,
  sourceState,
  stats,
  withTimeout,
  writeResult,
  type Stats,
} from './support';

const resultFile = path.join(__dirname, 'results', 'campaign.json');

const parameters = {
  campaign: {
    variants: 10,
    seeds: 2,
    concurrency: 2,
    /** The watcher's `training_poll_interval_ms`: the default (250 ms), then a faster one. */
    pollIntervalsMs: [250, 100],
    /** Measured campaigns per poll interval, alternating between the intervals. */
    campaignsPerInterval: 2,
  },
  trainer: {
    steps: 50,
    // Variant i sleeps (first + i × increment) ms after each step: runs of ≈ 0.65–1.55 s, ≈ 1.1 s on
    // average. Different lengths make the trainers end at every phase of the watcher's poll rather than
    // always at the same one, which would measure a single point of the saw-tooth.
    stepDelayMsFirst: 13,
    stepDelayMsIncrement: 2,
  },
  /**
   * Before the measured campaigns, a small one on the same worker, so the measured hand-overs are not
   * the first time the worker runs validation, analysis and writing (JIT, chart libraries). Its one
   * hand-over is reported as `coldHandOverMs`.
   */
  warmup: { variants: 3, seeds: 1 },
  heartbeatTimeoutSeconds: 30,
  timeouts: {
    processStartMs: 60_000,
    campaignMs: 5 * 60_000,
    processStopMs: 10_000,
    trainerCleanupMs: 30_000,
    wholeRunMs: 20 * 60_000,
  },
};

// ---------------------------------------------------------------------------------------------------
// The campaign

const stepDelayOf = (variant: number) =>
  parameters.trainer.stepDelayMsFirst + variant * parameters.trainer.stepDelayMsIncrement;

/** The base experiment: the trainer reads steps, step delay and seed from the (variant's) config. */
const baseSpec = (id: string) =>
  exampleTrainerExperiment({
    id,
    hypothesis: 'a small MLP separates the two moons whatever the pace of its steps',
    config: { steps: parameters.trainer.steps, step_delay_ms: stepDelayOf(0), learning_rate: 0.5, seed: 0 },
    args: [
      '--steps=${config.steps}',
      '--lr=${config.learning_rate}',
      '--seed=${config.seed}',
      '--step-delay-ms=${config.step_delay_ms}',
      '--eval-every=10',
      '--checkpoint-every=10',
    ],
  });

function campaignSpec(id: string, variants: number, seeds: number): CampaignSpec {
  const input: CampaignSpecInput = {
    campaign_id: id,
    name: `bench ${id}`,
    description: 'step-delay sweep of the example trainer',
    base: baseSpec(`exp-${id.replace(/^camp-/, '')}-base`),
    variants: {
      list: Array.from({ length: variants }, (_, i) => ({
        name: `d${stepDelayOf(i)}`,
        overrides: { step_delay_ms: stepDelayOf(i) },
      })),
    },
    include_base: false,
    seeds,
    concurrency: parameters.campaign.concurrency,
    primary_metric: { name: 'eval/accuracy', goal: 'max' },
    // No campaign-level approval; the children's own gates are delegated to it, so none of them waits.
    approvals: { launch: { enabled: false }, delegate_children: true },
  };
  return CampaignSpec.parse(input);
}

const workflowSettings = (runsRoot: string, pollIntervalMs: number) =>
  lablineWorkflowSettings(runsRoot, pollIntervalMs, parameters.heartbeatTimeoutSeconds);

// ---------------------------------------------------------------------------------------------------
// Reading what happened: workflow histories and run directories

interface WorkflowTask {
  /** WorkflowTaskStarted: a worker picked the task up. */
  started: number;
  /** WorkflowTaskCompleted: the worker ran the workflow code and sent its commands. */
  completed: number;
}

/** The first workflow task started after event index `after`, and its completion. */
function workflowTaskAfter(events: HistoryEvent[], after: number, what: string): WorkflowTask {
  const startedAt = events.findIndex(
    (e, i) => i > after && e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
  );
  const completed = events.find(
    (e, i) => i > startedAt && e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
  );
  if (startedAt < 0 || !completed)
    throw new Error(`${what}: no completed workflow task after event ${after}`);
  return { started: tsToMs(events[startedAt]!.eventTime), completed: tsToMs(completed.eventTime) };
}

/** The history of every run of a workflow, oldest first: from the latest run back through continue-as-new. */
async function fullHistory(client: Client, workflowId: string): Promise<HistoryEvent[]> {
  const runs: HistoryEvent[][] = [];
  let runId: string | undefined;
  do {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    const events: HistoryEvent[] = history.events ?? [];
    runs.unshift(events);
    runId = events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
  } while (runId);
  return runs.flat();
}

/** One child as its trainer, its launcher's records and its workflow history saw it (ms since epoch). */
interface ChildTimes {
  id: string;
  /** The trainer's own records: starts.jsonl startedAt and ends.jsonl endedAt. */
  trainerStart: number;
  trainerEnd: number;
  /** launch.json launchedAt: the launcher has spawned the supervisor. */
  supervisorSpawned: number;
  /** supervisor.json startedAt: the supervisor runs. */
  supervisorRunning: number;
  /** trainer.json startedAt: the supervisor has spawned the trainer. */
  trainerSpawned: number;
  /** exit.json endedAt: the supervisor saw the trainer exit. */
  trainerExited: number;
  workflowStarted: number;
  /** The child's first workflow task: the launch gate (delegated, so it approves itself) runs in it. */
  firstTask: WorkflowTask;
  workflowClosed: number;
  launch: ActivityTimes;
  watcher: ActivityTimes;
  /** Activities scheduled after the watcher completed: validation, analysis, writing. */
  afterTraining: ActivityTimes[];
}

const jsonLines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as Record<string, unknown>);

function record<T>(file: string, schema: z.ZodType<T>): T {
  const value = readRecord(file, schema);
  if (value === undefined) throw new Error(`missing ${file}`);
  return value;
}

async function childTimes(client: Client, runsRoot: string, id: string): Promise<ChildTimes> {
  const runDir = path.join(runsRoot, id);
  const starts = jsonLines(path.join(runDir, 'starts.jsonl'));
  const ends = jsonLines(path.join(runDir, 'ends.jsonl'));
  if (starts.length !== 1 || ends.length !== 1)
    throw new Error(`${id}: expected one trainer start and end, found ${starts.length} and ${ends.length}`);
  const attempts = readdirSync(path.join(runDir, 'attempts'));
  if (attempts.length !== 1) throw new Error(`${id}: expected one attempt, found ${attempts.length}`);
  const attempt = (name: string) => path.join(runDir, 'attempts', attempts[0]!, name);
  const exit = record(attempt(ATTEMPT_FILES.exit), ExitRecord);
  if (exit.exitCode !== 0) throw new Error(`${id}: the trainer exited with ${exit.exitCode ?? exit.signal}`);

  const events = (await client.workflow.getHandle(id).fetchHistory()).events ?? [];
  const activities = activitiesOf(events);
  const watcher = only(activities, 'awaitTraining', id);
  return {
    id,
    trainerStart: Date.parse(String(starts[0]!.startedAt)),
    trainerEnd: Date.parse(String(ends[0]!.endedAt)),
    supervisorSpawned: Date.parse(record(attempt(ATTEMPT_FILES.launch), LaunchRecord).launchedAt),
    supervisorRunning: Date.parse(record(attempt(ATTEMPT_FILES.supervisor), SupervisorRecord).startedAt),
    trainerSpawned: Date.parse(record(attempt(ATTEMPT_FILES.trainer), TrainerRecord).startedAt),
    trainerExited: Date.parse(exit.endedAt),
    workflowStarted: eventTime(events, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, id),
    firstTask: workflowTaskAfter(events, 0, id),
    workflowClosed: eventTime(events, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, id),
    launch: only(activities, 'launchTraining', id),
    watcher,
    afterTraining: activities.filter((a) => a.scheduled >= watcher.closed!),
  };
}

/** What the campaign's history says about one child: when it asked for it, and when it learnt it ended. */
interface CampaignChildEvents {
  id: string;
  initiated: number;
  /** The child whose ChildWorkflowExecutionCompleted came last before the campaign started this one. */
  completedBefore?: string;
  /** When the campaign's history recorded this child's completion. */
  completedEvent?: number;
  /** The campaign's workflow task that reacted to that completion (and started the next child). */
  reaction?: WorkflowTask;
}

function campaignChildEvents(events: HistoryEvent[]): Map<string, CampaignChildEvents> {
  const children = new Map<string, CampaignChildEvents>();
  let lastCompleted: string | undefined;
  for (const [index, event] of events.entries()) {
    const at = tsToMs(event.eventTime);
    const initiated = event.startChildWorkflowExecutionInitiatedEventAttributes;
    if (initiated?.workflowId) {
      children.set(initiated.workflowId, {
        id: initiated.workflowId,
        initiated: at,
        completedBefore: lastCompleted,
      });
    }
    const completed = event.childWorkflowExecutionCompletedEventAttributes?.workflowExecution?.workflowId;
    if (completed) {
      lastCompleted = completed;
      const child = children.get(completed);
      if (child) {
        child.completedEvent = at;
        child.reaction = workflowTaskAfter(events, index, `the campaign after ${completed} completed`);
      }
    }
  }
  return children;
}

// ---------------------------------------------------------------------------------------------------
// Hand-overs

interface Interval {
  start: number;
  end: number;
}

/**
 * Idle time of each slot hand-over, from the trainers' records alone: ends and starts sorted, each start
 * after the first `lanes` matched with the earliest end not yet matched. A negative gap would mean more
 * than `lanes` trainers at once.
 */
function handOverGaps(intervals: Interval[], lanes: number): number[] {
  const starts = intervals.map((i) => i.start).sort((a, b) => a - b);
  const ends = intervals.map((i) => i.end).sort((a, b) => a - b);
  return starts.slice(lanes).map((start, k) => start - ends[k]!);
}

function maxOverlap(intervals: Interval[]): number {
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

/**
 * One hand-over along its causal chain: child A's trainer ends → … → the campaign starts child B → … →
 * B's trainer starts. Consecutive stretches in ms; they add up to B's trainer start − A's trainer end.
 */
interface HandOverSegments {
  /** ends.jsonl endedAt → exit.json endedAt: the trainer process exits, its supervisor records it. */
  trainerProcessExit: number;
  /** exit.json → awaitTraining completed: the watcher's next poll, its status read and completion. */
  watcherNoticesExit: number;
  /** awaitTraining completed → A's workflow completed: validation, analysis and writing of A. */
  finishedChildPipeline: number;
  /** A's workflow completed → ChildWorkflowExecutionCompleted in the campaign's history. */
  childCompletionReachesCampaign: number;
  /** → StartChildWorkflowExecutionInitiated for B: the campaign's workflow task. */
  campaignStartsNextChild: number;
  /** → B's WorkflowExecutionStarted. */
  childWorkflowStart: number;
  /** → launchTraining scheduled: B's first workflow task, the delegated launch gate auto-approves. */
  launchGate: number;
  /** launchTraining scheduled → started: the GPU task queue hands it to the worker. */
  launchQueue: number;
  /** launchTraining started → launch.json: claim the attempt, spawn the supervisor. */
  launcherSpawnsSupervisor: number;
  /** → supervisor.json: the supervisor's Node process starts. */
  supervisorStartup: number;
  /** → trainer.json: the supervisor spawns the trainer. */
  supervisorSpawnsTrainer: number;
  /** → starts.jsonl: the trainer's Node process starts and sets up (data, model). */
  trainerStartup: number;
}

interface HandOver {
  from: string;
  to: string;
  idleMs: number;
  segments: HandOverSegments;
  /**
   * Three of the segments taken further apart (ms): finishedChildPipeline into A's activities after
   * training (scheduled → closed, by type) and the rest (workflow tasks between them); campaignStartsNextChild
   * and launchGate into the wait for a worker to pick the workflow task up and the task itself.
   */
  detail: HandOverDetail;
}

interface HandOverDetail {
  finishedChildActivities: Record<string, number>;
  finishedChildBetweenActivities: number;
  campaignTaskWait: number;
  campaignTaskRun: number;
  childFirstTaskWait: number;
  childFirstTaskRun: number;
  childFirstTaskToLaunchScheduled: number;
}

function handOver(a: ChildTimes, b: ChildTimes, campaign: Map<string, CampaignChildEvents>): HandOver {
  const aEvents = campaign.get(a.id)!;
  const bEvents = campaign.get(b.id)!;
  const segments: HandOverSegments = {
    trainerProcessExit: a.trainerExited - a.trainerEnd,
    watcherNoticesExit: a.watcher.closed! - a.trainerExited,
    finishedChildPipeline: a.workflowClosed - a.watcher.closed!,
    childCompletionReachesCampaign: aEvents.completedEvent! - a.workflowClosed,
    campaignStartsNextChild: bEvents.initiated - aEvents.completedEvent!,
    childWorkflowStart: b.workflowStarted - bEvents.initiated,
    launchGate: b.launch.scheduled - b.workflowStarted,
    launchQueue: b.launch.started! - b.launch.scheduled,
    launcherSpawnsSupervisor: b.supervisorSpawned - b.launch.started!,
    supervisorStartup: b.supervisorRunning - b.supervisorSpawned,
    supervisorSpawnsTrainer: b.trainerSpawned - b.supervisorRunning,
    trainerStartup: b.trainerStart - b.trainerSpawned,
  };
  const finishedChildActivities: Record<string, number> = {};
  for (const activity of a.afterTraining) {
    finishedChildActivities[activity.type] =
      (finishedChildActivities[activity.type] ?? 0) + (activity.closed ?? NaN) - activity.scheduled;
  }
  const activitiesTotal = Object.values(finishedChildActivities).reduce((sum, ms) => sum + ms, 0);
  const reaction = aEvents.reaction!;
  const detail: HandOverDetail = {
    finishedChildActivities,
    finishedChildBetweenActivities: segments.finishedChildPipeline - activitiesTotal,
    campaignTaskWait: reaction.started - aEvents.completedEvent!,
    campaignTaskRun: reaction.completed - reaction.started,
    childFirstTaskWait: b.firstTask.started - b.workflowStarted,
    childFirstTaskRun: b.firstTask.completed - b.firstTask.started,
    childFirstTaskToLaunchScheduled: b.launch.scheduled - b.firstTask.completed,
  };
  return { from: a.id, to: b.id, idleMs: b.trainerStart - a.trainerEnd, segments, detail };
}

// ---------------------------------------------------------------------------------------------------
// One campaign, measured

interface CampaignRun {
  campaignId: string;
  children: number;
  pollIntervalMs: number;
  /** 1-minute load average of the machine before and after the campaign (other work skews latencies). */
  loadAverage: [number, number];
  campaignWallMs: number;
  /** First trainer start → last trainer end. */
  trainerSpanMs: number;
  sumTrainerMs: number;
  trainerMs: Stats;
  /** Sum of trainer times / (slots × trainer span), and / (slots × campaign wall time). */
  slotUtilisation: number;
  slotUtilisationOfWallTime: number;
  maxTrainersAtOnce: number;
  /** From the trainers' records, lanes matched first-in first-out (the headline number). */
  handOverIdleMs: number[];
  /** How many hand-overs pair the same two children as the causal chain does. */
  causalPairsMatchingLanePairs: number;
  /** First child initiated → first trainer started; last trainer end → campaign result. */
  campaignStartToFirstTrainerMs: number;
  lastTrainerEndToResultMs: number;
  /** Along the causal chain (the campaign's history says which completion started which child). */
  handOvers: HandOver[];
}

async function runCampaign(
  stack: LablineStack,
  campaignId: string,
  shape: { variants: number; seeds: number },
  pollIntervalMs: number,
): Promise<CampaignRun> {
  const campaign = campaignSpec(campaignId, shape.variants, shape.seeds);
  const { concurrency } = campaign;
  const loadBefore = round(os.loadavg()[0]!, 2);
  // Date.now(), not performance.now(): compared with the server's, the worker's and the trainers' clocks.
  const submittedAt = Date.now();
  const { handle } = await submitCampaign({
    client: stack.client,
    campaign,
    settings: workflowSettings(stack.runsRoot, pollIntervalMs),
  });
  const result: CampaignResult = await withTimeout(
    handle.result(),
    parameters.timeouts.campaignMs,
    `campaign ${campaignId}`,
  );
  const resultAt = Date.now();
  const expected = shape.variants * shape.seeds;
  const failed = result.outcomes.filter((o) => o.end !== 'completed');
  if (result.stage !== 'completed' || result.outcomes.length !== expected || failed.length > 0) {
    throw new Error(
      `${campaignId} ended ${result.stage} with ${result.outcomes.length}/${expected} children; ` +
        `not completed: ${JSON.stringify(failed)}`,
    );
  }

  const children = new Map<string, ChildTimes>();
  for (const { experiment_id: id } of result.outcomes) {
    children.set(id, await childTimes(stack.client, stack.runsRoot, id));
  }
  const campaignEvents = campaignChildEvents(await fullHistory(stack.client, campaignId));

  const intervals = [...children.values()].map((c) => ({ start: c.trainerStart, end: c.trainerEnd }));
  const byStart = [...children.values()].sort((x, y) => x.trainerStart - y.trainerStart);
  const byEnd = [...children.values()].sort((x, y) => x.trainerEnd - y.trainerEnd);
  const handOvers: HandOver[] = [];
  let matching = 0;
  for (const [k, next] of byStart.slice(concurrency).entries()) {
    const cause = campaignEvents.get(next.id)?.completedBefore;
    if (!cause) throw new Error(`${next.id}: the campaign started it before any child completed`);
    handOvers.push(handOver(children.get(cause)!, next, campaignEvents));
    if (byEnd[k]!.id === cause) matching++;
  }

  const first = Math.min(...intervals.map((i) => i.start));
  const last = Math.max(...intervals.map((i) => i.end));
  const sumTrainerMs = intervals.reduce((sum, i) => sum + i.end - i.start, 0);
  const firstInitiated = Math.min(...[...campaignEvents.values()].map((c) => c.initiated));
  return {
    campaignId,
    children: children.size,
    pollIntervalMs,
    loadAverage: [loadBefore, round(os.loadavg()[0]!, 2)],
    campaignWallMs: resultAt - submittedAt,
    trainerSpanMs: last - first,
    sumTrainerMs,
    trainerMs: stats(intervals.map((i) => i.end - i.start)),
    slotUtilisation: round(sumTrainerMs / (concurrency * (last - first)), 3),
    slotUtilisationOfWallTime: round(sumTrainerMs / (concurrency * (resultAt - submittedAt)), 3),
    maxTrainersAtOnce: maxOverlap(intervals),
    handOverIdleMs: handOverGaps(intervals, concurrency),
    causalPairsMatchingLanePairs: matching,
    campaignStartToFirstTrainerMs: first - firstInitiated,
    lastTrainerEndToResultMs: resultAt - last,
    handOvers,
  };
}

/** Every measured campaign of one poll interval, summarised together. */
interface IntervalResult {
  pollIntervalMs: number;
  campaigns: number;
  handOvers: number;
  /** Pooled over the campaigns' hand-overs (from the trainers' records, lanes first-in first-out). */
  idleMs: Stats;
  handOversOverOneSecond: number;
  perCampaign: {
    campaignId: string;
    loadAverage: [number, number];
    idleMs: Stats;
    campaignWallMs: number;
    sumTrainerMs: number;
    trainerSpanMs: number;
    slotUtilisation: number;
    slotUtilisationOfWallTime: number;
    maxTrainersAtOnce: number;
    campaignStartToFirstTrainerMs: number;
    lastTrainerEndToResultMs: number;
  }[];
  causal: {
    idleMs: Stats;
    pairsMatchingLanePairs: string;
    segmentsMeanMs: HandOverSegments;
    segmentsP95Ms: Record<keyof HandOverSegments, number>;
    detailMeanMs: Record<string, number>;
    finishedChildActivitiesMeanMs: Record<string, number>;
  };
}

function summarise(pollIntervalMs: number, runs: CampaignRun[]): IntervalResult {
  const gaps = runs.flatMap((r) => r.handOverIdleMs);
  const handOvers = runs.flatMap((r) => r.handOvers);
  const segmentKeys = Object.keys(handOvers[0]!.segments) as (keyof HandOverSegments)[];
  return {
    pollIntervalMs,
    campaigns: runs.length,
    handOvers: gaps.length,
    idleMs: stats(gaps),
    handOversOverOneSecond: gaps.filter((g) => g >= 1000).length,
    perCampaign: runs.map(({ handOverIdleMs, handOvers: _h, causalPairsMatchingLanePairs: _m, ...run }) => ({
      campaignId: run.campaignId,
      loadAverage: run.loadAverage,
      idleMs: stats(handOverIdleMs),
      campaignWallMs: run.campaignWallMs,
      sumTrainerMs: run.sumTrainerMs,
      trainerSpanMs: run.trainerSpanMs,
      slotUtilisation: run.slotUtilisation,
      slotUtilisationOfWallTime: run.slotUtilisationOfWallTime,
      maxTrainersAtOnce: run.maxTrainersAtOnce,
      campaignStartToFirstTrainerMs: run.campaignStartToFirstTrainerMs,
      lastTrainerEndToResultMs: run.lastTrainerEndToResultMs,
    })),
    causal: {
      idleMs: stats(handOvers.map((h) => h.idleMs)),
      pairsMatchingLanePairs: `${runs.reduce((n, r) => n + r.causalPairsMatchingLanePairs, 0)} of ${handOvers.length}`,
      segmentsMeanMs: meanByKey(handOvers.map((h) => ({ ...h.segments }))) as unknown as HandOverSegments,
      segmentsP95Ms: Object.fromEntries(
        segmentKeys.map((key) => [key, stats(handOvers.map((h) => h.segments[key])).p95]),
      ) as Record<keyof HandOverSegments, number>,
      detailMeanMs: meanByKey(
        handOvers.map(({ detail: { finishedChildActivities: _a, ...rest } }) => ({ ...rest })),
      ),
      finishedChildActivitiesMeanMs: meanByKey(handOvers.map((h) => h.detail.finishedChildActivities)),
    },
  };
}

interface Measured {
  maxCachedWorkflows: number;
  warmup: { campaignId: string; children: number; campaignWallMs: number; coldHandOverMs: number[] };
  runs: CampaignRun[];
}

/** One server and worker: the warm-up campaign, then the measured ones, alternating the poll intervals. */
async function measure(bundlePath: string, dir: string): Promise<Measured> {
  const { variants, seeds, pollIntervalsMs, campaignsPerInterval } = parameters.campaign;
  const stackOptions = { dir, label: 'campaigns', bundlePath, timeouts: parameters.timeouts };
  return await withLablineStack(stackOptions, async (stack) => {
    console.log('warm-up campaign…');
    const warm = await runCampaign(stack, 'camp-warmup', parameters.warmup, pollIntervalsMs[0]!);
    const runs: CampaignRun[] = [];
    for (let repetition = 1; repetition <= campaignsPerInterval; repetition++) {
      for (const pollIntervalMs of pollIntervalsMs) {
        const id = `camp-bench-p${pollIntervalMs}-r${repetition}`;
        console.log(`${id}: ${variants * seeds} children, watcher polling every ${pollIntervalMs} ms…`);
        runs.push(await runCampaign(stack, id, { variants, seeds }, pollIntervalMs));
      }
    }
    return {
      maxCachedWorkflows: stack.maxCachedWorkflows,
      warmup: {
        campaignId: warm.campaignId,
        children: warm.children,
        campaignWallMs: warm.campaignWallMs,
        coldHandOverMs: warm.handOvers.map((h) => h.idleMs),
      },
      runs,
    };
  });
}

// ---------------------------------------------------------------------------------------------------
// What the idle time consists of, worked out from the runs

function explain(results: IntervalResult[]): Record<string, string> {
  const parts: Record<string, string> = {};
  for (const { pollIntervalMs, causal } of results) {
    const s = causal.segmentsMeanMs;
    const d = causal.detailMeanMs;
    const endSide = s.trainerProcessExit + s.watcherNoticesExit;
    const campaignSide = s.childCompletionReachesCampaign + s.campaignStartsNextChild + s.childWorkflowStart;
    const launchSide = s.launchGate + s.launchQueue + s.launcherSpawnsSupervisor;
    const processes = s.supervisorStartup + s.supervisorSpawnsTrainer + s.trainerStartup;
    const activities = Object.entries(causal.finishedChildActivitiesMeanMs)
      .map(([type, ms]) => `${type} ${ms}`)
      .join(', ');
    parts[`poll${pollIntervalMs}ms`] =
      `mean causal hand-over ${causal.idleMs.mean} ms = ` +
      `${round(endSide)} ms trainer end → watcher done (trainer process exit ${s.trainerProcessExit}, ` +
      `watcher ${s.watcherNoticesExit}; interval / 2 = ${pollIntervalMs / 2} expected from polling) + ` +
      `${s.finishedChildPipeline} ms the finished child's validation, analysis and writing before its ` +
      `workflow completes (activities scheduled → closed: ${activities}; workflow tasks between them ` +
      `${d.finishedChildBetweenActivities}) + ${round(campaignSide)} ms the campaign reacts and starts the ` +
      `next child workflow (completion recorded ${s.childCompletionReachesCampaign}, campaign workflow task ` +
      `${s.campaignStartsNextChild}: wait ${d.campaignTaskWait} + run ${d.campaignTaskRun}; child started ` +
      `${s.childWorkflowStart}) + ${round(launchSide)} ms launch gate auto-approval and launchTraining up to ` +
      `the supervisor spawn (child's first workflow task ${s.launchGate}: wait ${d.childFirstTaskWait} + ` +
      `run ${d.childFirstTaskRun}; activity queue ${s.launchQueue}; claim + spawn ` +
      `${s.launcherSpawnsSupervisor}) + ${round(processes)} ms process starts (supervisor Node start-up ` +
      `${s.supervisorStartup}, trainer spawn ${s.supervisorSpawnsTrainer}, trainer Node start-up and set-up ` +
      `${s.trainerStartup}).`;
  }
  return parts;
}

// ---------------------------------------------------------------------------------------------------
// Run, record, summarise

function summary(results: IntervalResult[], measured: Measured): string {
  const { variants, seeds, concurrency } = parameters.campaign;
  const lines = [
    `Campaigns of ${variants} variants × ${seeds} seeds, ${concurrency} slots, gates delegated, ` +
      `~1 s trainers; GPU-slot hand-over idle time (goal < 1000 ms):`,
  ];
  for (const r of results) {
    const s = r.causal.segmentsMeanMs;
    lines.push(
      `  poll ${r.pollIntervalMs} ms: ${r.handOvers} hand-overs in ${r.campaigns} campaigns, idle ` +
        `${formatStats(r.idleMs)} (${r.handOversOverOneSecond} ≥ 1 s)`,
    );
    for (const c of r.perCampaign) {
      lines.push(
        `    ${c.campaignId}: idle ${formatStats(c.idleMs)}; wall ${round(c.campaignWallMs / 1000, 2)} s, trainers ` +
          `${round(c.sumTrainerMs / 1000, 2)} s in total, slot utilisation ${round(c.slotUtilisation * 100)}% ` +
          `of the trainer span (${round(c.slotUtilisationOfWallTime * 100)}% of the wall time), at most ` +
          `${c.maxTrainersAtOnce} trainers at once, load ${c.loadAverage.join(' → ')}`,
      );
    }
    lines.push(
      `    mean idle by part: trainer end → watcher done ${round(s.trainerProcessExit + s.watcherNoticesExit)}, ` +
        `finished child's validation/analysis/writing ${s.finishedChildPipeline}, campaign starts next ` +
        `child ${round(s.childCompletionReachesCampaign + s.campaignStartsNextChild + s.childWorkflowStart)}, ` +
        `launch gate + launchTraining ${round(s.launchGate + s.launchQueue + s.launcherSpawnsSupervisor)}, ` +
        `supervisor + trainer start ${round(s.supervisorStartup + s.supervisorSpawnsTrainer + s.trainerStartup)} ms`,
    );
  }
  lines.push(`  cold worker (warm-up campaign) hand-over: ${measured.warmup.coldHandOverMs.join(', ')} ms`);
  return lines.join('\n');
}

/** The temporary folder of this run (bundle, runs, server data), removed by `cleanUp`. */
const { dir, cleanUp } = runFolder('labline-bench-campaign-', parameters.timeouts.trainerCleanupMs);

async function main(): Promise<void> {
  const loadAtStart = loadAverages();
  try {
    console.log('bundling workflow code…');
    const bundlePath = await bundleLablineWorkflows(dir);
    const measured = await measure(bundlePath, dir);
    const results = parameters.campaign.pollIntervalsMs.map((pollIntervalMs) =>
      summarise(
        pollIntervalMs,
        measured.runs.filter((run) => run.pollIntervalMs === pollIntervalMs),
      ),
    );
    const byInterval = <T>(pick: (result: IntervalResult) => T) =>
      Object.fromEntries(results.map((result) => [`poll${result.pollIntervalMs}ms`, pick(result)]));
    const { variants, seeds } = parameters.campaign;
    const report = {
      ...resultHeader('campaign'),
      source: sourceState(),
      machine: { ...machineInfo(), loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadAverages() },
      parameters: {
        ...parameters,
        campaign: {
          ...parameters.campaign,
          children: variants * seeds,
          approvals: { launch: { enabled: false }, delegate_children: true },
          childIdExample: childExperimentId('camp-bench-p250-r1', `d${stepDelayOf(0)}`, 0),
        },
        maxCachedWorkflows: measured.maxCachedWorkflows,
        topology:
          '`labline devserver --port 0 --log-level warn` process (in memory, 127.0.0.1); worker: ' +
          'bench/pipeline-worker.ts process (createLablineWorkers: labline, labline-gpu (4 activity slots, ' +
          'no GPU ids), labline-agents queues, console notifier, offline agents, local launcher and ' +
          'tracker); client: this process. One server and worker for all campaigns: the warm-up, then ' +
          'the measured ones alternating the poll interval.',
        trainerCommand:
          'node examples/trainer/train.js --steps=50 --lr=0.5 --seed=<seed> --step-delay-ms=<13+2i> ' +
          '--eval-every=10 --checkpoint-every=10 (variant i = 0…9, seeds 0 and 1)',
      },
      handOverIdleTime: {
        definition:
          "From the trainers' own records (starts.jsonl startedAt, ends.jsonl endedAt) of each campaign: " +
          'the two slots are lanes; ends and starts are sorted, and each start after the first two is ' +
          'matched with the earliest end not yet matched; idle = start − end. One value per trainer end ' +
          'except the last two (18 per 20-child campaign), pooled over the campaigns of a poll interval.',
        goalMs: 1000,
        ...byInterval((r) => ({
          idleMs: r.idleMs,
          handOversOverOneSecond: r.handOversOverOneSecond,
          perCampaign: r.perCampaign,
        })),
      },
      whatTheIdleTimeIs: {
        definition:
          'Each hand-over along its causal chain: the campaign history says after which ' +
          'ChildWorkflowExecutionCompleted it initiated each child, so the pair is (the child whose ' +
          'completion freed the slot, the child started in its place). The stretches are consecutive and ' +
          "add up to the pair's idle time; they mix the clocks of the trainer, supervisor, worker and server " +
          'processes of one machine (one system clock). segmentsMeanMs keys in chain order: ' +
          'trainerProcessExit (ends.jsonl → exit.json), watcherNoticesExit (→ awaitTraining completed), ' +
          "finishedChildPipeline (→ the finished child's WorkflowExecutionCompleted: its activities after " +
          'training and the workflow tasks between them), childCompletionReachesCampaign (→ ' +
          'ChildWorkflowExecutionCompleted in the campaign), campaignStartsNextChild (→ ' +
          "StartChildWorkflowExecutionInitiated), childWorkflowStart (→ the next child's " +
          'WorkflowExecutionStarted), launchGate (→ launchTraining scheduled; the delegated gate approves ' +
          'itself in the first workflow task), launchQueue (→ launchTraining started), ' +
          'launcherSpawnsSupervisor (→ launch.json), supervisorStartup (→ supervisor.json), ' +
          'supervisorSpawnsTrainer (→ trainer.json), trainerStartup (→ starts.jsonl). detailMeanMs: ' +
          'workflow-task wait (scheduled event → WorkflowTaskStarted) and run (→ WorkflowTaskCompleted).',
        ...byInterval((r) => r.causal),
        explanation: explain(results),
      },
      warmup: measured.warmup,
      runs: measured.runs,
      notes: [
        'p50/p95 by nearest rank.',
        'The slot is held by the child workflow, not by its trainer: the campaign starts the next child only ' +
          'when a child workflow completes, i.e. after its validation, analysis and writing.',
        'slotUtilisation = sum of trainer times / (2 × (last trainer end − first trainer start)); ' +
          'slotUtilisationOfWallTime uses submit → result instead.',
        "Trainer times are the trainer's own loop (starts.jsonl → ends.jsonl); its Node start-up and exit " +
          'count as idle.',
        'warmup.coldHandOverMs: the hand-over of the warm-up campaign, the first the worker ever did.',
      ],
    };
    writeResult(resultFile, report, summary(results, measured));
  } finally {
    await cleanUp();
  }
}

runBenchmark(main, { wholeRunMs: parameters.timeouts.wholeRunMs, cleanUp });
