/**
 * Experiments parked at the launch gate, for bench/pipeline.ts: how much worker and server memory they hold,
 * what it costs the worker to get them there, and how fast the approval of any one of them is answered.
 *
 * One server and worker take the levels in turn (say 1,000 then 10,000): experiments are submitted until
 * that many wait at the launch gate, then RSS is read, then a handful are approved one at a time and timed,
 * and as many others are sent a status query (timed too: it costs the replay an approval of an evicted
 * experiment pays, and it works on a server that cannot take the approval).
 * Parked experiments stay parked from one level to the next, so the second level submits only the
 * difference. At the end every experiment still running is terminated and RSS is read once more.
 *
 * Parked = counted by visibility with `LablineStage = "launch_review"`, then confirmed one by one with
 * describe (answered by the server alone): the stage attribute is launch_review and neither a workflow task
 * nor an activity (the approval request) is pending. No status query is sent while parking: with a cache
 * smaller than the number parked, every query would make the worker replay an evicted experiment, and the
 * worker CPU measured to park would then include the benchmark's own polling.
 */
import type { Client, WorkflowExecutionDescription } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { submitExperiment } from '../src/client/experiments';
import type { ExperimentSpec, WorkflowSettingsInput } from '../src/experiment';
import { statusQuery } from '../src/workflows';
import { EventType } from './history';
import type { LablineStack } from './labline-stack';
import {
  cpuSecondsOf,
  loadAverages,
  memoryOf,
  pool,
  round,
  sleep,
  stats,
  withTimeout,
  type Stats,
} from './support';

export interface ParkedParameters {
  /** Experiments parked at each level, ascending (e.g. [1000, 10000]). */
  levels: number[];
  /** Submits (and describes, terminations) in flight at once. */
  concurrency: number;
  /** Pause before reading RSS, so in-flight replies and garbage collection settle. */
  settleMs: number;
  /** Between two rounds of describe over the experiments not yet parked. */
  recheckMs: number;
  /**
   * Parking stops the run when the worker's RSS passes this (MiB): a worker whose cache does not bound its
   * memory would otherwise take the machine's, and other work on it, down with it.
   */
  workerRssLimitMiB: number;
  /**
   * At each level: experiments approved at random, then among the most recently submitted; as many others
   * of each pick are sent a status query.
   */
  approvals: { random: number; mostRecent: number };
  timeouts: {
    /** Submitting and parking a level: base + per experiment submitted at that level. */
    parkBaseMs: number;
    parkPerExperimentMs: number;
    /** One approval: answered, out of the gate, then settled at the next gate or closed. */
    approvalMs: number;
    /** Terminating everything at the end: base + per experiment. */
    terminateBaseMs: number;
    terminatePerExperimentMs: number;
  };
}

/** What the caller's experiments look like: a spec with both gates on, and the workflow settings. */
export interface ParkedWorkload {
  spec: (id: string) => ExperimentSpec;
  settings: WorkflowSettingsInput;
}

interface Rss {
  workerMiB: number;
  serverMiB: number;
  workerPeakMiB: number;
  serverPeakMiB: number;
}

/** random: any parked experiment; mostRecent: among the last submitted, the likeliest to be cached. */
type Pick = 'random' | 'mostRecent';

/** One approval, timed from the call of `decide` (this process's clock); null where it did not get there. */
export interface ApprovalTiming {
  id: string;
  pick: Pick;
  /** Until `decide` returned: what the person approving waits for. */
  answeredMs: number | null;
  /** Until the workflow had left the gate: launchTraining's ActivityTaskScheduled event (server clock). */
  leftGateMs: number | null;
  /** Until it waited quietly at the next gate (publish review) or had closed. */
  settledMs: number | null;
  /** Where it settled (publish_review, completed…), or why the approval failed. */
  outcome: string;
}

/**
 * One status query to a parked experiment that is not approved: a worker that no longer caches it replays
 * its history to answer, the same replay an approval of it pays first. Measured apart from the approvals so
 * that it does not warm their cache.
 */
export interface QueryTiming {
  id: string;
  pick: Pick;
  ms: number;
}

export interface ParkedLevel {
  parked: number;
  submitted: number;
  submitSeconds: number;
  /** From the first submit of this level until all of it was confirmed parked. */
  parkSeconds: number;
  cpuSecondsToPark: { worker: number; server: number };
  cpuMsPerExperimentToPark: { worker: number; server: number };
  rss: Rss;
  /** (RSS at this level − idle RSS) / parked experiments. */
  perParkedExperimentKiB: { worker: number; server: number };
  approvals: ApprovalTiming[];
  /** Over the approvals that got that far; n says how many. */
  answeredMs: Record<Pick, Stats>;
  leftGateMs: Record<Pick, Stats>;
  queries: QueryTiming[];
  queryMs: Record<Pick, Stats>;
  loadAverage1m: { before: number; after: number };
}

export interface ParkedResult {
  maxCachedWorkflows: number;
  idle: Rss;
  levels: ParkedLevel[];
  afterTerminate: Rss & { terminated: number; alreadyClosed: number; terminateSeconds: number };
  approvalRequestsLogged: number;
}

const launchReviewQuery = 'LablineStage = "launch_review" AND ExecutionStatus = "Running"';

const loadNow = () => loadAverages()[0]!;

/** The stage an experiment last recorded in its LablineStage search attribute. */
function stageOf(description: WorkflowExecutionDescription): string | undefined {
  const stage = description.searchAttributes.LablineStage?.[0];
  return typeof stage === 'string' ? stage : undefined;
}

/** Neither a workflow task nor an activity pending: nothing for the worker to do until something happens. */
function isQuiet(description: WorkflowExecutionDescription): boolean {
  const { pendingWorkflowTask, pendingActivities } = description.raw;
  return !pendingWorkflowTask && (pendingActivities?.length ?? 0) === 0;
}

// ---------------------------------------------------------------------------------------------------
// Parking

/** Parked, as the server alone sees it: at launch review, and neither a workflow task nor an activity pending. */
async function isParked(client: Client, id: string): Promise<boolean> {
  const description = await client.workflow.getHandle(id).describe();
  return stageOf(description) === 'launch_review' && isQuiet(description);
}

/**
 * Waits until visibility counts `expected` experiments at launch review: one cheap count per round while the
 * worker works through the backlog, instead of a describe per experiment.
 */
async function waitForCount(client: Client, expected: number, deadline: number, recheckMs: number) {
  for (;;) {
    const { count } = await client.workflow.count(launchReviewQuery);
    if (count >= expected) return;
    if (Date.now() > deadline)
      throw new Error(`only ${count} of ${expected} experiments reached the launch gate in time`);
    await sleep(recheckMs);
  }
}

/** Then confirms each one with describe, rechecking those not yet quiet, until the deadline. */
async function waitAllParked(client: Client, ids: string[], deadline: number, p: ParkedParameters) {
  let pending = ids;
  while (pending.length > 0) {
    const parked = await pool(pending.length, p.concurrency, (i) => isParked(client, pending[i]!));
    pending = pending.filter((_, i) => !parked[i]);
    if (pending.length === 0) return;
    if (Date.now() > deadline)
      throw new Error(`${pending.length} experiments never went quiet at the launch gate (${pending[0]}, …)`);
    await sleep(p.recheckMs);
  }
}

/** Rejects once the process's RSS passes `limitMiB` (checked every second) until `stop` is called. */
function rssWatchdog(pid: number, limitMiB: number): { tripped: Promise<never>; stop: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const tripped = new Promise<never>((_, reject) => {
    timer = setInterval(() => {
      const { rssMiB } = memoryOf(pid);
      if (rssMiB > limitMiB)
        reject(
          new Error(`the worker's RSS reached ${rssMiB} MiB, over the limit of ${limitMiB} MiB; stopped`),
        );
    }, 1000);
  });
  tripped.catch(() => undefined);
  return { tripped, stop: () => clearInterval(timer) };
}

// ---------------------------------------------------------------------------------------------------
// Approving

/** The ActivityTaskScheduled time of `activityType` in `id`'s history, polled until it is there. */
async function waitForScheduled(client: Client, id: string, activityType: string, deadline: number) {
  for (;;) {
    const { events } = await client.workflow.getHandle(id).fetchHistory();
    const scheduled = events?.find(
      (e) =>
        e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED &&
        e.activityTaskScheduledEventAttributes?.activityType?.name === activityType,
    );
    if (scheduled) return tsToMs(scheduled.eventTime);
    if (Date.now() > deadline) throw new Error(`${id}: ${activityType} was not scheduled in time`);
    await sleep(20);
  }
}

/**
 * Waits until an approved experiment is quiet again (at the publish gate, or closed), so that its training
 * and analysis do not load the worker while the next approval is timed. Returns where it settled, or
 * undefined when it had not within the deadline (recorded, not fatal: the approval itself was measured).
 */
async function waitUntilSettled(client: Client, id: string, deadline: number): Promise<string | undefined> {
  while (Date.now() < deadline) {
    const description = await client.workflow.getHandle(id).describe();
    if (description.status.name !== 'RUNNING') return description.status.name.toLowerCase();
    const stage = stageOf(description);
    if (stage?.endsWith('_review') && isQuiet(description)) return stage;
    await sleep(250);
  }
  return undefined;
}

/**
 * Approves `id`'s launch the way `labline approve <id> --gate launch` does, and times it: until `decide`
 * answered, until the workflow left the gate, until it settled.
 */
async function approveAndTime(
  decide: ApproveFn,
  client: Client,
  id: string,
  pick: Pick,
  approvalMs: number,
): Promise<ApprovalTiming> {
  const deadline = Date.now() + approvalMs;
  const calledAt = Date.now();
  try {
    await withTimeout(decide(client, id), approvalMs, `approving ${id}`);
  } catch (error) {
    // Recorded, not fatal: a server that cannot take the decision is a finding of this benchmark.
    const reason = `approval failed: ${(error as Error).message.split('\n')[0]}`;
    const cause = (error as Error).cause as Error | undefined;
    const outcome = cause?.message ? `${reason} (${cause.message.split('\n')[0]})` : reason;
    return { id, pick, answeredMs: null, leftGateMs: null, settledMs: null, outcome };
  }
  const answeredMs = Date.now() - calledAt;
  const leftGateAt = await waitForScheduled(client, id, 'launchTraining', deadline);
  const settledAt = await waitUntilSettled(client, id, deadline);
  return {
    id,
    pick,
    answeredMs,
    leftGateMs: leftGateAt - calledAt,
    settledMs: settledAt === undefined ? null : Date.now() - calledAt,
    outcome: settledAt ?? `left the gate, not settled within ${approvalMs} ms`,
  };
}

async function queryAndTime(
  client: Client,
  id: string,
  pick: Pick,
  approvalMs: number,
): Promise<QueryTiming> {
  const calledAt = Date.now();
  await withTimeout(client.workflow.getHandle(id).query(statusQuery), approvalMs, `querying ${id}`);
  return { id, pick, ms: Date.now() - calledAt };
}

/** Approves the launch of experiment `id` (the caller binds the client API's `decide`). */
export type ApproveFn = (client: Client, id: string) => Promise<unknown>;

/** `count` distinct ids drawn uniformly from `ids`. */
function sample(ids: string[], count: number): string[] {
  const remaining = [...ids];
  const drawn: string[] = [];
  while (drawn.length < count && remaining.length > 0) {
    const [id] = remaining.splice(Math.floor(Math.random() * remaining.length), 1);
    drawn.push(id!);
  }
  return drawn;
}

// ---------------------------------------------------------------------------------------------------
// The measurement

/**
 * Parks experiments up to each level in turn on `stack`, reading RSS and timing approvals at each; then
 * terminates everything still running. `decide` approves one launch.
 */
export async function measureParked(
  stack: LablineStack,
  workload: ParkedWorkload,
  decide: ApproveFn,
  p: ParkedParameters,
): Promise<ParkedResult> {
  const { client } = stack;
  const pids = { worker: stack.worker.child.pid!, server: stack.server.pid };
  const rss = (): Rss => {
    const worker = memoryOf(pids.worker);
    const server = memoryOf(pids.server);
    return {
      workerMiB: worker.rssMiB,
      serverMiB: server.rssMiB,
      workerPeakMiB: worker.peakRssMiB,
      serverPeakMiB: server.peakRssMiB,
    };
  };
  await sleep(p.settleMs);
  const idle = rss();

  const submitted: string[] = [];
  let parked = new Set<string>();
  const levels: ParkedLevel[] = [];
  for (const level of p.levels) {
    const loadBefore = loadNow();
    const fresh = Array.from(
      { length: Math.max(0, level - parked.size) },
      (_, i) => `exp-bench-park-${String(submitted.length + i + 1).padStart(5, '0')}`,
    );
    submitted.push(...fresh);
    const deadline = Date.now() + p.timeouts.parkBaseMs + fresh.length * p.timeouts.parkPerExperimentMs;
    const cpuBefore = { worker: cpuSecondsOf(pids.worker), server: cpuSecondsOf(pids.server) };
    const startedAt = Date.now();
    console.log(`  parking ${fresh.length} more experiments (to ${level})…`);
    let submitSeconds = NaN;
    const parking = async () => {
      await withTimeout(
        pool(fresh.length, p.concurrency, (i) =>
          submitExperiment({ client, spec: workload.spec(fresh[i]!), settings: workload.settings }),
        ),
        deadline - Date.now(),
        `submitting ${fresh.length} experiments`,
      );
      submitSeconds = (Date.now() - startedAt) / 1000;
      await waitForCount(client, level, deadline, p.recheckMs);
      await waitAllParked(client, fresh, deadline, p);
    };
    const watchdog = rssWatchdog(pids.worker, p.workerRssLimitMiB);
    try {
      await Promise.race([parking(), watchdog.tripped]);
    } finally {
      watchdog.stop();
    }
    const parkSeconds = (Date.now() - startedAt) / 1000;
    const cpu = {
      worker: round(cpuSecondsOf(pids.worker) - cpuBefore.worker, 1),
      server: round(cpuSecondsOf(pids.server) - cpuBefore.server, 1),
    };
    parked = new Set([...parked, ...fresh]);
    await sleep(p.settleMs);
    const atLevel = rss();
    console.log(
      `  ${level} parked in ${round(parkSeconds)} s; worker RSS ${atLevel.workerMiB} MiB; approving…`,
    );

    // Disjoint picks: the queried experiments are never approved, so neither measurement warms the other's.
    const { random: randomCount, mostRecent: recentCount } = p.approvals;
    const random = sample([...parked], 2 * randomCount);
    const mostRecent = fresh.filter((id) => !random.includes(id)).slice(-2 * recentCount);
    const picks = (ids: string[], count: number, pick: Pick) => ({
      approve: ids.slice(0, count).map((id) => ({ id, pick })),
      query: ids.slice(count).map((id) => ({ id, pick })),
    });
    const randomPicks = picks(random, randomCount, 'random');
    const recentPicks = picks(mostRecent, recentCount, 'mostRecent');
    const approvals: ApprovalTiming[] = [];
    for (const { id, pick } of [...randomPicks.approve, ...recentPicks.approve]) {
      const approval = await approveAndTime(decide, client, id, pick, p.timeouts.approvalMs);
      approvals.push(approval);
      if (approval.leftGateMs !== null) parked.delete(id);
    }
    const queries: QueryTiming[] = [];
    for (const { id, pick } of [...randomPicks.query, ...recentPicks.query])
      queries.push(await queryAndTime(client, id, pick, p.timeouts.approvalMs));
    const of = (pick: Pick, field: 'answeredMs' | 'leftGateMs') =>
      stats(approvals.flatMap((a) => (a.pick === pick && a[field] !== null ? [a[field]] : [])));
    const queryStats = (pick: Pick) => stats(queries.filter((q) => q.pick === pick).map((q) => q.ms));
    const perExperimentKiB = (atMiB: number, idleMiB: number) => round(((atMiB - idleMiB) * 1024) / level);
    levels.push({
      parked: level,
      submitted: fresh.length,
      submitSeconds: round(submitSeconds, 1),
      parkSeconds: round(parkSeconds, 1),
      cpuSecondsToPark: cpu,
      cpuMsPerExperimentToPark: {
        worker: round((cpu.worker * 1000) / Math.max(1, fresh.length), 1),
        server: round((cpu.server * 1000) / Math.max(1, fresh.length), 1),
      },
      rss: atLevel,
      perParkedExperimentKiB: {
        worker: perExperimentKiB(atLevel.workerMiB, idle.workerMiB),
        server: perExperimentKiB(atLevel.serverMiB, idle.serverMiB),
      },
      approvals,
      answeredMs: { random: of('random', 'answeredMs'), mostRecent: of('mostRecent', 'answeredMs') },
      leftGateMs: { random: of('random', 'leftGateMs'), mostRecent: of('mostRecent', 'leftGateMs') },
      queries,
      queryMs: { random: queryStats('random'), mostRecent: queryStats('mostRecent') },
      loadAverage1m: { before: loadBefore, after: loadNow() },
    });
  }

  const terminated = await terminateAll(client, submitted, p);
  await sleep(p.settleMs);
  return {
    maxCachedWorkflows: stack.maxCachedWorkflows,
    idle,
    levels,
    afterTerminate: { ...rss(), ...terminated },
    approvalRequestsLogged: stack.worker.output().match(/\] \S+ waits for launch approval/g)?.length ?? 0,
  };
}

/** Terminates every experiment still running; one already closed is counted, not an error. */
async function terminateAll(client: Client, ids: string[], p: ParkedParameters) {
  const startedAt = Date.now();
  const outcomes = await withTimeout(
    pool(ids.length, p.concurrency, async (i) => {
      const handle = client.workflow.getHandle(ids[i]!);
      const { status } = await handle.describe();
      if (status.name !== 'RUNNING') return 'closed';
      await handle.terminate('benchmark over');
      return 'terminated';
    }),
    p.timeouts.terminateBaseMs + ids.length * p.timeouts.terminatePerExperimentMs,
    `terminating ${ids.length} experiments`,
  );
  return {
    terminated: outcomes.filter((o) => o === 'terminated').length,
    alreadyClosed: outcomes.filter((o) => o === 'closed').length,
    terminateSeconds: round((Date.now() - startedAt) / 1000, 1),
  };
}
