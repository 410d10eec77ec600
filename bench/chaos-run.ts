/**
 * One chaos run against one server, for bench/chaos.ts and tests/chaos/chaos.test.ts: N experiments of the
 * example trainer, a few at a time, with the launch gate on and approved by this driver through the client
 * API, while the worker is killed (SIGKILL) or stopped (SIGTERM) and restarted, and the server is killed and
 * restarted, or stopped for longer than the training heartbeat timeout, on the same port and data file.
 *
 * Faults strike at points defined by progress, not by the clock: fault i strikes when experiment k is first
 * seen at point p or beyond (p one of `progressPoints`), k and p drawn from a seeded generator. Faults come
 * one at a time; after each, the next waits until every experiment that was in flight has been seen to move
 * again (or `settleCapMs`), so each stall is measured on its own. Experiment j is submitted only once the faults
 * of experiments up to j − inFlight are over, so the experiments do not run out before the faults do.
 *
 * What it records and how it counts: bench/chaos-tally.ts. Every trainer runs through bench/chaos-trainer.js,
 * which logs each start and end. Every wait is bounded by the run's deadline, every call by `callMs`.
 */
import { Client, Connection } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { decide, DecisionRefused, experimentStatus, submitExperiment } from '../src/client/experiments';
import {
  ExperimentSpec,
  finalStages,
  type ExperimentStatus,
  type GateName,
  type WorkflowSettingsInput,
} from '../src/experiment';
import type { RunningProcess } from '../tests/support/processes';
import { seededRandom, type Random } from '../tests/support/prng';
import {
  chaosGoals,
  readTrainerLog,
  stallsAfterRecoveries,
  tallyChaos,
  trainerStarts,
  type ExperimentOutcome,
  type ExperimentTimeline,
  type Recovery,
} from './chaos-tally';
import { exampleTrainerExperiment } from './labline-stack';
import { pool, sleep, spawnTracked, stopProcess, withTimeout } from './support';

const workerScript = path.join(__dirname, 'pipeline-worker.ts');
const trainerWrapper = path.join(__dirname, 'chaos-trainer.js');
const namespace = 'default';

// ---------------------------------------------------------------------------------------------------
// Faults and where they strike

export type FaultKind = 'worker-kill' | 'worker-stop' | 'server-kill' | 'server-outage';
export const faultKinds: readonly FaultKind[] = [
  'worker-kill',
  'worker-stop',
  'server-kill',
  'server-outage',
];

/**
 * Points of an experiment's progress, in order: its launch gate open; the driver's approval accepted; its
 * trainer running (a step reported); validation; analysis (or publish review); writing; ended.
 */
export const progressPoints = [
  'launch_review',
  'approved',
  'training',
  'validation',
  'analysis',
  'writing',
  'ended',
] as const;
export type ProgressPoint = (typeof progressPoints)[number];

export interface PlannedFault {
  /** 1, 2, … in the order they strike. */
  index: number;
  kind: FaultKind;
  /** Strikes when this experiment (1-based) is first seen at `point` or beyond. */
  experiment: number;
  point: ProgressPoint;
}

/**
 * `counts[kind]` faults of each kind, in a drawn order, spread over experiments 1..`lastExperiment`: fault i of
 * F at an experiment drawn from the i-th F-th of them, so that faults come throughout the run. Each kind cycles
 * through `points` from a drawn offset, so a kind with several faults strikes at several points.
 */
export function planFaults(
  random: Random,
  options: { counts: Record<FaultKind, number>; lastExperiment: number; points: readonly ProgressPoint[] },
): PlannedFault[] {
  const { counts, lastExperiment, points } = options;
  const drawn = faultKinds.flatMap((kind) => {
    const offset = Math.floor(random() * points.length);
    return Array.from({ length: counts[kind] }, (_, i) => ({
      kind,
      point: points[(offset + i) % points.length]!,
      order: random(),
    }));
  });
  drawn.sort((a, b) => a.order - b.order);
  return drawn
    .map((fault, i) => ({
      ...fault,
      experiment: 1 + Math.floor(((i + random()) * lastExperiment) / drawn.length),
    }))
    .sort((a, b) => a.experiment - b.experiment || rank(a.point) - rank(b.point))
    .map(({ kind, point, experiment }, i) => ({ index: i + 1, kind, experiment, point }));
}

/** Where a status is, as a progress point (`approved`: the launch gate decided, the trainer not yet running). */
function pointOf(status: ExperimentStatus, approved: boolean): ProgressPoint | undefined {
  if (finalStages.includes(status.stage)) return 'ended';
  switch (status.stage) {
    case 'registered':
      return undefined;
    case 'launch_review':
      return approved ? 'approved' : 'launch_review';
    case 'training':
      return status.attempts.some((a) => (a.step ?? 0) > 0) ? 'training' : 'approved';
    case 'publish_review':
      return 'analysis';
    default:
      return status.stage as ProgressPoint;
  }
}

const rank = (point: ProgressPoint | undefined) => (point === undefined ? -1 : progressPoints.indexOf(point));

/** What counts as progress: stage, gate, decisions, and each attempt's outcome and latest step. */
function progressOf(status: ExperimentStatus): string {
  const attempts = status.attempts.map((a) => `${a.key}:${a.outcome ?? ''}:${a.step ?? ''}`).join(',');
  return `${status.stage}|${status.waiting?.gate ?? ''}|${status.decisions.length}|${attempts}`;
}

// ---------------------------------------------------------------------------------------------------
// Options and result

/** A server of either kind that the driver can kill, stop and start again. */
export interface ChaosServer {
  /** `host:port`. */
  address: string;
  /** SIGKILL, as a crash; resolves when it is gone. */
  kill(): Promise<void>;
  /** A clean stop (SIGTERM); resolves when it is gone. A server that cannot be stopped cleanly may kill. */
  stop(): Promise<void>;
  /** Settles when the process exits for any reason; absent when the starter cannot tell. */
  exited?: Promise<unknown>;
}

export interface ChaosOptions {
  /** Names the run in logs and experiment ids (e.g. the server kind). */
  label: string;
  /** The run's folder: runs, worker data and the trainer log go under it. */
  dir: string;
  /** The Labline workflow bundle the worker loads. */
  bundlePath: string;
  /** Starts the server on its data file: on any free port (no argument), then again on `port`. */
  startServer: (port?: number) => Promise<ChaosServer>;
  experiments: number;
  /** Experiments running at once; at most the worker's GPU slots (4 by default), so none waits for a slot. */
  inFlight: number;
  seed: number;
  faults: Record<FaultKind, number>;
  /** Points faults strike at. Default: every point but `ended`. */
  points?: readonly ProgressPoint[];
  /** The example trainer: SGD steps and the sleep after each (ms). */
  trainer: { steps: number; stepDelayMs: number };
  /** Workflow settings given with each experiment; production defaults where not given. */
  settings: Omit<WorkflowSettingsInput, 'runs_root'>;
  /** How long the server stays down in a `server-outage`: longer than the training heartbeat timeout. */
  outageMs: number;
  /** Between two status reads of one experiment. */
  statusPollMs: number;
  timeouts: {
    /** Experiments not finished this long after the start are stuck. */
    runMs: number;
    processStartMs: number;
    /** A graceful worker stop gets this long before SIGKILL (and is reported as not graceful). */
    processStopMs: number;
    /** One client call (submit, status, decide). */
    callMs: number;
    /** Retrying one approval while the server is down, at most. */
    approvalMs: number;
    /** After a fault, the next waits at most this long for the experiments in flight to move again. */
    settleCapMs: number;
    /** Experiments not moving this long after a recovery are described (what they wait on) in the result. */
    slowToMoveMs: number;
  };
  log: (line: string) => void;
}

/** What happened to one fault. */
export interface FaultRecord extends PlannedFault {
  /** Where the trigger experiment was seen when it struck; absent when it did not strike. */
  seenAt?: ProgressPoint;
  /** Experiments in flight when it struck, with the point each was seen at. */
  inFlight?: string[];
  downAt?: string;
  /** Down to back up (worker ready, or server answering), ms. */
  downMs?: number;
  /** worker-stop: ms from SIGTERM to exit, and whether it had to be killed. */
  stopMs?: number;
  stoppedCleanly?: boolean;
  /** After it, until every experiment in flight had moved (or the cap), ms. */
  settledMs?: number;
  /** Experiments that had not moved `slowToMoveMs` after the recovery, and what each waited on then. */
  slowToMove?: string[];
  /** Its trigger was reached with nothing in flight, so it waited for the next experiment to be submitted. */
  awaitingExperiments?: boolean;
  /** Why it did not strike. */
  skipped?: string;
}

// ---------------------------------------------------------------------------------------------------
// The processes: one server, one worker, restarted on demand, one change at a time

class ChaosProcesses {
  server!: ChaosServer;
  port = 0;
  private worker: RunningProcess | undefined;
  private expectedExits = new WeakSet<RunningProcess>();
  private serverDownOnPurpose = false;
  private queue: Promise<unknown> = Promise.resolve();
  private closing = false;
  /** Exits nobody asked for, with the worker's exit code or signal and the end of its output. */
  readonly unexpected: { process: 'worker' | 'server'; at: string; exit?: string; output?: string }[] = [];

  constructor(
    private readonly options: ChaosOptions,
    private readonly workerArgs: (address: string) => string[],
  ) {}

  async start(): Promise<void> {
    await this.startServer();
    await this.startWorker();
  }

  /** Runs `fn` after every change queued before it: one change of the processes at a time. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  async killWorker(): Promise<void> {
    const worker = this.expectExit();
    await worker?.kill('SIGKILL');
  }

  /** SIGTERM, SIGKILL after `processStopMs`: how long it took, and whether it exited on its own. */
  async stopWorker(): Promise<{ stopMs: number; stoppedCleanly: boolean }> {
    const worker = this.expectExit();
    const began = Date.now();
    if (worker) await stopProcess(worker, this.options.timeouts.processStopMs);
    return { stopMs: Date.now() - began, stoppedCleanly: worker?.child.signalCode !== 'SIGKILL' };
  }

  async startWorker(): Promise<void> {
    const worker = spawnTracked(workerScript, this.workerArgs(this.server.address));
    this.worker = worker;
    worker.child.once('exit', (code, signal) => {
      if (this.closing || this.expectedExits.has(worker)) return;
      this.unexpected.push({
        process: 'worker',
        at: new Date().toISOString(),
        exit: signal ?? `code ${code}`,
        output: worker.output().slice(-2000),
      });
      this.options.log(`${this.options.label}: the worker exited unasked; restarting it`);
      void this.exclusive(() => this.startWorker()).catch((error: unknown) =>
        this.options.log(String(error)),
      );
    });
    await worker.waitFor(/worker ready/, this.options.timeouts.processStartMs);
  }

  async killServer(): Promise<void> {
    this.serverDownOnPurpose = true;
    await this.server.kill();
  }

  async stopServer(): Promise<void> {
    this.serverDownOnPurpose = true;
    await this.server.stop();
  }

  async startServer(): Promise<void> {
    const server = await this.options.startServer(this.port || undefined);
    this.server = server;
    this.port = Number(server.address.split(':').at(-1));
    this.serverDownOnPurpose = false;
    void server.exited?.then(() => {
      if (this.closing || this.serverDownOnPurpose || this.server !== server) return;
      this.unexpected.push({ process: 'server', at: new Date().toISOString() });
      this.options.log(`${this.options.label}: the server exited unasked; restarting it`);
      void this.exclusive(() => this.startServer()).catch((error: unknown) =>
        this.options.log(String(error)),
      );
    });
  }

  /** Stops the worker (cleanly) and the server; bounded by their stop timeouts. */
  async close(): Promise<void> {
    this.closing = true;
    await this.queue;
    if (this.worker) await stopProcess(this.worker, this.options.timeouts.processStopMs);
    await this.server?.stop();
  }

  private expectExit(): RunningProcess | undefined {
    if (this.worker) this.expectedExits.add(this.worker);
    return this.worker;
  }
}

// ---------------------------------------------------------------------------------------------------
// What the driver saw of each experiment

interface Tracked extends ExperimentTimeline {
  index: number;
  point?: ProgressPoint;
  progress?: string;
  status?: ExperimentStatus;
  approval: {
    requestId: string;
    acceptedAt?: number;
    /** `answer`: decide returned the record; `refusal`: a retry was refused as already taken. */
    via?: 'answer' | 'refusal';
    tries: number;
    lastError?: string;
  };
  /** Gates other than launch that opened (failure, deliverables, budget): the driver rejects them. */
  otherGates: { gate: GateName; question: string }[];
}

class Observations {
  readonly experiments: Tracked[];

  constructor(ids: string[]) {
    this.experiments = ids.map((id, i) => ({
      id,
      index: i + 1,
      changes: [],
      approval: { requestId: randomUUID(), tries: 0 },
      otherGates: [],
    }));
  }

  byIndex(index: number): Tracked | undefined {
    return this.experiments[index - 1];
  }

  observe(experiment: Tracked, status: ExperimentStatus, at: number): void {
    experiment.status = status;
    const progress = progressOf(status);
    if (progress !== experiment.progress) {
      experiment.progress = progress;
      experiment.changes.push(at);
    }
    this.advance(experiment, pointOf(status, experiment.approval.acceptedAt !== undefined));
    if (finalStages.includes(status.stage)) experiment.finalAt ??= at;
  }

  approved(experiment: Tracked, via: 'answer' | 'refusal', at: number): void {
    experiment.approval.acceptedAt = at;
    experiment.approval.via = via;
    experiment.changes.push(at);
    this.advance(experiment, 'approved');
  }

  inFlight(): Tracked[] {
    return this.experiments.filter((e) => e.submittedAt !== undefined && e.finalAt === undefined);
  }

  private advance(experiment: Tracked, point: ProgressPoint | undefined): void {
    if (rank(point) > rank(experiment.point)) experiment.point = point;
  }
}

// ---------------------------------------------------------------------------------------------------
// The run

export async function runChaos(options: ChaosOptions) {
  const { label, timeouts, log } = options;
  const startedAt = Date.now();
  const deadline = startedAt + timeouts.runMs;
  const runsRoot = path.join(options.dir, 'runs');
  const dataDir = path.join(options.dir, 'worker-data');
  const trainerLog = path.join(options.dir, 'trainers.jsonl');
  mkdirSync(runsRoot, { recursive: true });
  mkdirSync(dataDir, { recursive: true });

  const random = seededRandom(options.seed);
  const plan = planFaults(random, {
    counts: options.faults,
    // Not the last few: a fault needs experiments in flight after its trigger to matter.
    lastExperiment: Math.max(1, options.experiments - options.inFlight),
    points: options.points ?? progressPoints.filter((p) => p !== 'ended'),
  });
  const ids = Array.from(
    { length: options.experiments },
    (_, i) => `exp-chaos-${label}-${String(i + 1).padStart(3, '0')}`,
  );
  const seen = new Observations(ids);
  const settings: WorkflowSettingsInput = { ...options.settings, runs_root: runsRoot };
  const specOf = (id: string) => chaosSpec(id, options.trainer, trainerLog);

  const processes = new ChaosProcesses(options, (address) => [
    address,
    namespace,
    runsRoot,
    dataDir,
    options.bundlePath,
  ]);
  await processes.start();
  const connection = await withTimeout(
    Connection.connect({ address: processes.server.address }),
    timeouts.processStartMs,
    'client connection',
  );
  const client = new Client({ connection, namespace });
  const call = <T>(promise: Promise<T>, what: string) => withTimeout(promise, timeouts.callMs, what);

  const read = async (experiment: Tracked): Promise<ExperimentStatus | undefined> => {
    try {
      const status = await call(experimentStatus(client, experiment.id), `status of ${experiment.id}`);
      seen.observe(experiment, status, Date.now());
      return status;
    } catch {
      return undefined; // the server or the worker is down, or the workflow has not run its first task
    }
  };

  /** Approves the launch gate, retrying (same request id) while the server is down, for `approvalMs`. */
  const approve = async (experiment: Tracked, opening: string | undefined): Promise<void> => {
    const until = Math.min(deadline, Date.now() + timeouts.approvalMs);
    const { approval } = experiment;
    while (Date.now() < until) {
      approval.tries += 1;
      try {
        const decision = { gate: 'launch' as const, by: 'chaos', source: 'api' as const, opening };
        await call(
          decide(client, experiment.id, 'approve', { ...decision, requestId: approval.requestId }),
          `approval of ${experiment.id}`,
        );
        seen.approved(experiment, 'answer', Date.now());
        return;
      } catch (error) {
        approval.lastError = (error as Error).message;
        if (error instanceof DecisionRefused) {
          // A retry of a request the workflow took before its answer was lost: accepted all the same.
          if (/already taken/.test(error.reason)) seen.approved(experiment, 'refusal', Date.now());
          return; // otherwise the gate moved on; the lane reads the status again
        }
        await sleep(1000);
      }
    }
  };

  /** A gate other than launch opened (a failed attempt, unmet deliverables): record it, and end it. */
  const reject = async (experiment: Tracked, status: ExperimentStatus): Promise<void> => {
    const waiting = status.waiting!;
    if (!experiment.otherGates.some((g) => g.question === waiting.question))
      experiment.otherGates.push({ gate: waiting.gate, question: waiting.question });
    await call(
      decide(client, experiment.id, 'reject', {
        gate: waiting.gate,
        by: 'chaos',
        source: 'api',
        comment: 'chaos driver: this gate opened under faults that should not fail an experiment',
        opening: waiting.opening,
      }),
      `rejection at ${experiment.id}`,
    ).catch(() => undefined); // tried again at the next read while the gate stays open
  };

  const faults: FaultRecord[] = plan.map((fault) => ({ ...fault }));
  const recoveries: Recovery[] = [];
  let lanesDone = false;
  const finished = (fault: FaultRecord) => fault.settledMs !== undefined || fault.skipped !== undefined;
  /** The fault runner's trigger is reached with nothing in flight: one held-back experiment may go. */
  let awaitingExperiments = false;
  /** Lanes submitting now (the server may be down): the runner waits for them before releasing another. */
  let submitting = 0;

  const lane = async (i: number): Promise<void> => {
    const experiment = seen.experiments[i]!;
    const spec = specOf(experiment.id);
    // The experiments do not outrun the faults: experiment j waits for the faults of experiments up to
    // j − inFlight, so each fault finds experiments in flight, however long the ones before it took.
    const due = faults.filter((f) => f.experiment <= experiment.index - options.inFlight);
    while (!due.every(finished) && Date.now() < deadline) {
      if (awaitingExperiments) {
        awaitingExperiments = false; // one experiment goes; the runner asks again if it is not enough
        break;
      }
      await sleep(100);
    }
    submitting += 1;
    while (experiment.submittedAt === undefined && Date.now() < deadline) {
      try {
        await call(submitExperiment({ client, spec, settings }), `submit ${experiment.id}`);
        experiment.submittedAt = Date.now();
      } catch {
        await sleep(1000); // the server is down: bounded by the deadline
      }
    }
    submitting -= 1;
    while (experiment.finalAt === undefined && Date.now() < deadline) {
      const status = await read(experiment);
      if (status?.waiting?.gate === 'launch' && experiment.approval.acceptedAt === undefined)
        await approve(experiment, status.waiting.opening);
      else if (status?.waiting && status.waiting.gate !== 'launch') await reject(experiment, status);
      if (experiment.finalAt === undefined) await sleep(options.statusPollMs);
    }
  };

  /** What an experiment that has not moved waits on: its pending workflow task and activities. */
  const waitingOn = async (id: string): Promise<string> => {
    try {
      const { raw } = await call(client.workflow.getHandle(id).describe(), `describe ${id}`);
      const activities = (raw.pendingActivities ?? []).map(
        (a) =>
          `${a.activityType?.name} attempt ${a.attempt} ${String(a.state).replace(/^PENDING_ACTIVITY_STATE_/, '')}`,
      );
      const task = raw.pendingWorkflowTask ? ['a workflow task'] : [];
      return `${id}: ${[...task, ...activities].join('; ') || 'nothing pending'}`;
    } catch (error) {
      return `${id}: describe failed: ${(error as Error).message}`;
    }
  };

  const strike = async (fault: FaultRecord): Promise<void> => {
    const downAt = Date.now();
    fault.downAt = new Date(downAt).toISOString();
    switch (fault.kind) {
      case 'worker-kill':
        await processes.killWorker();
        await processes.startWorker();
        break;
      case 'worker-stop':
        Object.assign(fault, await processes.stopWorker());
        await processes.startWorker();
        break;
      case 'server-kill':
        await processes.killServer();
        await processes.startServer();
        break;
      case 'server-outage':
        await processes.stopServer();
        await sleep(options.outageMs);
        await processes.startServer();
        break;
    }
    const upAt = Date.now();
    fault.downMs = upAt - downAt;
    recoveries.push({ fault: fault.index, kind: fault.kind, downAt, upAt });
  };

  const runFaults = async (): Promise<void> => {
    for (const fault of faults) {
      const trigger = seen.byIndex(fault.experiment)!;
      const reached = () => rank(trigger.point) >= rank(fault.point);
      while (!reached() && !lanesDone && Date.now() < deadline) await sleep(100);
      if (lanesDone || Date.now() >= deadline) {
        fault.skipped = 'the experiments ended (or the deadline passed) first';
        continue;
      }
      // Nothing in flight (the ones before ended while the last fault settled): the experiments held back for
      // this fault may go, one at a time, and it strikes as soon as one of them is submitted. Everything in
      // flight is read first: a change seen after the recovery is then progress made after it.
      let inFlight: Tracked[] = [];
      while (inFlight.length === 0 && !lanesDone && Date.now() < deadline) {
        if (seen.inFlight().length > 0) {
          await Promise.all(seen.inFlight().map(read));
          inFlight = seen.inFlight();
          continue;
        }
        fault.awaitingExperiments = true;
        if (submitting === 0) awaitingExperiments = true;
        await sleep(100);
      }
      awaitingExperiments = false;
      if (inFlight.length === 0) {
        fault.skipped = 'the experiments ended (or the deadline passed) first';
        continue;
      }
      fault.seenAt = trigger.point;
      fault.inFlight = inFlight.map((e) => `${e.id} ${e.point ?? 'registered'}`);
      log(
        `${label}: fault ${fault.index}/${faults.length} ${fault.kind} at ${trigger.id} (${trigger.point})`,
      );
      await processes.exclusive(() => strike(fault));
      const upAt = recoveries.at(-1)!.upAt;
      const moved = () => inFlight.every((e) => e.finalAt !== undefined || e.changes.some((at) => at > upAt));
      const settleUntil = Math.min(deadline, upAt + timeouts.settleCapMs);
      const lookAt = upAt + timeouts.slowToMoveMs;
      while (!moved() && !lanesDone && Date.now() < settleUntil) {
        if (fault.slowToMove === undefined && Date.now() >= lookAt) {
          const still = inFlight.filter((e) => e.finalAt === undefined && !e.changes.some((at) => at > upAt));
          fault.slowToMove = await Promise.all(still.map((e) => waitingOn(e.id)));
        }
        await sleep(250);
      }
      fault.settledMs = Date.now() - upAt;
      log(`${label}:   back after ${fault.downMs} ms; experiments moving again after ${fault.settledMs} ms`);
    }
  };

  const progressLog = setInterval(() => {
    const ended = seen.experiments.filter((e) => e.finalAt !== undefined);
    const completed = ended.filter((e) => e.status?.stage === 'completed').length;
    const struck = faults.filter((f) => f.downAt).length;
    log(
      `${label}: ${ended.length}/${ids.length} ended (${completed} completed), ${seen.inFlight().length} in ` +
        `flight, ${struck}/${faults.length} faults, ${Math.round((Date.now() - startedAt) / 1000)} s`,
    );
  }, 30_000);

  let faultsRun: Promise<void> | undefined;
  try {
    faultsRun = runFaults();
    faultsRun.catch(() => undefined);
    await pool(ids.length, options.inFlight, lane);
    lanesDone = true;
    await faultsRun;
  } finally {
    lanesDone = true;
    clearInterval(progressLog);
    await faultsRun?.catch((error: unknown) => log(`${label}: faults: ${String(error)}`));
    // The last statuses: an experiment whose end came while the worker was down is read once more.
    await Promise.all(seen.experiments.filter((e) => e.submittedAt !== undefined).map(read));
    await connection.close().catch(() => undefined);
    await processes.close().catch((error: unknown) => log(`${label}: close: ${String(error)}`));
  }
  const endedAt = Date.now();

  const starts = trainerStarts(readTrainerLog(trainerLog), runsRoot);
  const outcomes: ExperimentOutcome[] = seen.experiments.map((e) => ({
    id: e.id,
    submitted: e.submittedAt !== undefined,
    status: e.status,
    approvalAccepted: e.approval.acceptedAt !== undefined ? e.approval.requestId : undefined,
  }));
  const stalls = stallsAfterRecoveries(recoveries, seen.experiments, endedAt);
  const { figures, details } = tallyChaos({ outcomes, starts, stalls });
  return {
    figures,
    goals: chaosGoals(figures),
    wallSeconds: Math.round((endedAt - startedAt) / 1000),
    faults,
    unexpectedExits: processes.unexpected,
    approvals: {
      retriedWhileDown: seen.experiments.filter((e) => e.approval.tries > 1).length,
      acceptedThroughRefusal: seen.experiments.filter((e) => e.approval.via === 'refusal').length,
    },
    otherGatesOpened: seen.experiments
      .filter((e) => e.otherGates.length > 0)
      .map((e) => ({ id: e.id, gates: e.otherGates })),
    details,
  };
}

export type ChaosRunResult = Awaited<ReturnType<typeof runChaos>>;

/**
 * The example trainer through the wrapper that logs its starts; launch gate on (anyone approves), publish
 * gate off; the failure and deliverables gates on, so a failure shows as a gate the driver sees.
 */
function chaosSpec(id: string, trainer: ChaosOptions['trainer'], trainerLog: string): ExperimentSpec {
  const input = exampleTrainerExperiment({
    id,
    hypothesis: 'a small MLP separates the two moons, whatever happens to the processes around it',
    config: { steps: trainer.steps, learning_rate: 0.5, seed: 0 },
    args: [
      `--steps=${trainer.steps}`,
      '--lr=0.5',
      '--seed=0',
      '--eval-every=10',
      '--checkpoint-every=10',
      `--step-delay-ms=${trainer.stepDelayMs}`,
    ],
  });
  return ExperimentSpec.parse({
    ...input,
    training: { ...input.training, args: [trainerWrapper, trainerLog, ...(input.training.args ?? [])] },
    approvals: { launch: { enabled: true }, publish: { enabled: false } },
  });
}
