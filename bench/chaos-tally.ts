/**
 * What a chaos run (bench/chaos-run.ts) counts, from what it recorded: the trainer log that bench/chaos-trainer.js
 * appends to, the attempt directories the local launcher leaves, the statuses the driver saw, and when each
 * fault struck and its process came back. Pure but for reading those files, so the definitions live in one
 * place and the driver only gathers.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import {
  ATTEMPT_FILES,
  attemptDirFor,
  ExitRecord,
  readRecord,
} from '../src/activities/training/local-attempt';
import type { ExperimentStatus } from '../src/experiment';

// ---------------------------------------------------------------------------------------------------
// The trainer log

const TrainerStart = z.object({
  event: z.literal('start'),
  pid: z.number().int(),
  experiment: z.string().nullable(),
  key: z.string().nullable(),
  attempt: z.number().int().nullable(),
  at: z.string(),
});
const TrainerEnd = z.object({
  event: z.literal('end'),
  pid: z.number().int(),
  experiment: z.string().nullable(),
  key: z.string().nullable(),
  /** The exit code; null cannot happen from an `exit` listener but is tolerated. */
  code: z.number().int().nullable(),
  /** The first SIGTERM, SIGINT or SIGHUP the trainer received, else null. */
  signal: z.string().nullable(),
  at: z.string(),
});
const TrainerEvent = z.discriminatedUnion('event', [TrainerStart, TrainerEnd]);
type TrainerEvent = z.infer<typeof TrainerEvent>;

/** Every line of the trainer log, parsed; a missing log is an empty one (nothing trained). */
export function readTrainerLog(file: string): TrainerEvent[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line, i) => {
      const parsed = TrainerEvent.safeParse(JSON.parse(line));
      if (!parsed.success) throw new Error(`${file}:${i + 1} is not a trainer log line: ${line}`);
      return parsed.data;
    });
}

/**
 * How one trainer start ended:
 * - `completed`: exit code 0;
 * - `signalled`: it received SIGTERM, SIGINT or SIGHUP (its own end record says so) and exited;
 * - `killed`: no end record, and its supervisor's exit.json says a signal (SIGKILL) ended it;
 * - `failed`: a non-zero exit without a signal (a crash of the trainer itself);
 * - `running`: no end record and the process still lives (an experiment still training at the deadline);
 * - `vanished`: none of the above: gone without a record of how.
 */
export type TrainerFate = 'completed' | 'signalled' | 'killed' | 'failed' | 'running' | 'vanished';

export interface TrainerStartRecord {
  pid: number;
  experiment: string;
  key: string;
  attempt: number | null;
  startedAt: string;
  fate: TrainerFate;
  /** The end as recorded: exit code and signal, and whether Labline had asked its launch to stop (cancel.json). */
  detail: string;
}

/** Each start of the log with its fate, read from its end record, else its attempt directory, else /proc. */
export function trainerStarts(events: TrainerEvent[], runsRoot: string): TrainerStartRecord[] {
  const ends = new Map<number, z.infer<typeof TrainerEnd>>();
  for (const event of events) if (event.event === 'end') ends.set(event.pid, event);
  return events.flatMap((event): TrainerStartRecord[] => {
    if (event.event !== 'start') return [];
    const experiment = event.experiment ?? '?';
    const key = event.key ?? '?';
    const attemptDir = attemptDirFor(path.join(runsRoot, experiment), key);
    const cancelled = existsSync(path.join(attemptDir, ATTEMPT_FILES.cancel)) ? ', cancel.json present' : '';
    const end = ends.get(event.pid);
    const base = { pid: event.pid, experiment, key, attempt: event.attempt, startedAt: event.at };
    if (end) {
      const detail = `exit code ${end.code}, signal received ${end.signal ?? 'none'}${cancelled}`;
      const fate: TrainerFate = end.signal ? 'signalled' : end.code === 0 ? 'completed' : 'failed';
      return [{ ...base, fate, detail }];
    }
    if (isAlive(event.pid)) return [{ ...base, fate: 'running', detail: `still running${cancelled}` }];
    const exit = readRecord(path.join(attemptDir, ATTEMPT_FILES.exit), ExitRecord);
    // exit.json is per key: with two starts of one key it describes one of them, so say which pid it saw.
    if (exit?.signal)
      return [{ ...base, fate: 'killed', detail: `exit.json: signal ${exit.signal}${cancelled}` }];
    const seen = exit ? `exit.json: code ${exit.exitCode}, reason ${exit.reason ?? 'none'}` : 'no exit.json';
    return [{ ...base, fate: 'vanished', detail: `no end record; ${seen}${cancelled}` }];
  });
}

/** Whether a trainer of this run still runs under `pid` (its command line names the wrapper). */
function isAlive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('chaos-trainer.js');
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------
// Stalls: from a process coming back to each experiment's next progress

/** A fault's process coming back: the worker ready again, or the server answering (and the worker with it). */
export interface Recovery {
  fault: number;
  kind: string;
  /** When the fault struck (ms since the epoch). */
  downAt: number;
  /** When the process was back. */
  upAt: number;
}

/** What the driver saw of one experiment over time (ms since the epoch). */
export interface ExperimentTimeline {
  id: string;
  submittedAt?: number;
  /** When a final stage was first seen. */
  finalAt?: number;
  /** Each time its progress (stage, gate, decisions, attempts and their step) was seen to change. */
  changes: number[];
}

export interface Stall {
  experiment: string;
  fault: number;
  kind: string;
  ms: number;
  /** The next fault struck, or the run ended, before any progress: `ms` is a lower bound. */
  censored: boolean;
}

/**
 * For each recovery and each experiment in flight then (submitted before it, not finished by it): the time from
 * the recovery to its next change, or to the next fault (or the run's end) if none came first.
 */
export function stallsAfterRecoveries(
  recoveries: Recovery[],
  timelines: ExperimentTimeline[],
  runEndedAt: number,
): Stall[] {
  const sorted = [...recoveries].sort((a, b) => a.downAt - b.downAt);
  return sorted.flatMap((recovery, i) => {
    const limit = sorted[i + 1]?.downAt ?? runEndedAt;
    return timelines
      .filter((t) => t.submittedAt !== undefined && t.submittedAt < recovery.upAt)
      .filter((t) => t.finalAt === undefined || t.finalAt > recovery.upAt)
      .map((t) => {
        const next = t.changes.find((at) => at > recovery.upAt);
        const censored = next === undefined || next > limit;
        return {
          experiment: t.id,
          fault: recovery.fault,
          kind: recovery.kind,
          ms: (censored ? limit : next) - recovery.upAt,
          censored,
        };
      });
  });
}

// ---------------------------------------------------------------------------------------------------
// The figures and the goals

/** One experiment as the driver left it. */
export interface ExperimentOutcome {
  id: string;
  submitted: boolean;
  /** The last status seen, if any. */
  status?: ExperimentStatus;
  /** The launch approval the driver saw accepted: its request id. */
  approvalAccepted?: string;
}

export interface ChaosFigures {
  experiments: number;
  completed: number;
  /** Ended in another final stage: failed, rejected or cancelled. */
  failed: number;
  /** Submitted but not finished by the deadline. */
  stuck: number;
  /** Never submitted before the deadline. */
  notSubmitted: number;
  trainerStarts: number;
  /** Starts beyond the first of one experiment and launch key. */
  duplicateLaunches: number;
  /** Starts that ended by a signal (SIGTERM/SIGINT/SIGHUP received, or SIGKILL per exit.json). */
  healthyTrainersKilled: number;
  /** Starts gone without a record of how (neither an end record nor a signal in exit.json). */
  trainersVanished: number;
  /** Experiments with more than one launch key started and no failed or preempted attempt in their status. */
  relaunchedWithoutFailure: number;
  approvalsAccepted: number;
  /** Approvals the driver saw accepted that the experiment's last status does not show. */
  approvalsLost: number;
  /** The longest stall after a recovery, ms (a censored one counts at its lower bound). */
  longestStallMs: number;
}

/** Counts what happened; `details` lists each experiment, start and stall behind a non-zero count. */
export function tallyChaos(input: {
  outcomes: ExperimentOutcome[];
  starts: TrainerStartRecord[];
  stalls: Stall[];
}) {
  const { outcomes, starts, stalls } = input;
  const final = (o: ExperimentOutcome) => o.status?.stage;
  const byKey = new Map<string, TrainerStartRecord[]>();
  for (const start of starts) {
    const key = `${start.experiment}/${start.key}`;
    byKey.set(key, [...(byKey.get(key) ?? []), start]);
  }
  const duplicates = [...byKey.values()].filter((group) => group.length > 1);
  const killed = starts.filter((s) => s.fate === 'signalled' || s.fate === 'killed');
  const vanished = starts.filter((s) => s.fate === 'vanished');
  const relaunched = outcomes.filter((o) => {
    const keys = new Set(starts.filter((s) => s.experiment === o.id).map((s) => s.key));
    const hadFailure = (o.status?.failures ?? 0) > 0 || (o.status?.preemptions ?? 0) > 0;
    return keys.size > 1 && !hadFailure;
  });
  const accepted = outcomes.filter((o) => o.approvalAccepted !== undefined);
  const lost = accepted.filter(
    (o) =>
      !o.status?.decisions.some(
        (d) => d.request_id === o.approvalAccepted && d.gate === 'launch' && d.outcome === 'approved',
      ),
  );
  const notFinished = ['completed', 'failed', 'rejected', 'cancelled'];
  const figures: ChaosFigures = {
    experiments: outcomes.length,
    completed: outcomes.filter((o) => final(o) === 'completed').length,
    failed: outcomes.filter((o) => ['failed', 'rejected', 'cancelled'].includes(final(o) ?? '')).length,
    stuck: outcomes.filter((o) => o.submitted && !notFinished.includes(final(o) ?? '')).length,
    notSubmitted: outcomes.filter((o) => !o.submitted).length,
    trainerStarts: starts.length,
    duplicateLaunches: duplicates.reduce((sum, group) => sum + group.length - 1, 0),
    healthyTrainersKilled: killed.length,
    trainersVanished: vanished.length,
    relaunchedWithoutFailure: relaunched.length,
    approvalsAccepted: accepted.length,
    approvalsLost: lost.length,
    longestStallMs: Math.max(0, ...stalls.map((s) => s.ms)),
  };
  const details = {
    notCompleted: outcomes
      .filter((o) => final(o) !== 'completed')
      .map((o) => ({
        id: o.id,
        stage: o.status?.stage ?? (o.submitted ? 'unknown' : 'not submitted'),
        reason: o.status?.reason,
        waiting: o.status?.waiting?.gate,
        attempts: o.status?.attempts.map((a) => `${a.key}: ${a.outcome ?? 'running'} ${a.detail ?? ''}`),
      })),
    duplicateLaunches: duplicates.map((group) => ({
      key: `${group[0]!.experiment}/${group[0]!.key}`,
      starts: group.map(({ pid, startedAt, fate }) => ({ pid, startedAt, fate })),
    })),
    trainersKilled: [...killed, ...vanished],
    relaunchedWithoutFailure: relaunched.map((o) => o.id),
    approvalsLost: lost.map((o) => ({ id: o.id, requestId: o.approvalAccepted, stage: o.status?.stage })),
    longestStalls: [...stalls].sort((a, b) => b.ms - a.ms).slice(0, 10),
  };
  return { figures, details };
}

/** The goals of issue 12's chaos suite, each with its figure and whether it holds. */
export function chaosGoals(figures: ChaosFigures, stallLimitMs = 90_000) {
  const goal = (text: string, value: number, met: boolean) => ({ goal: text, value, met });
  return {
    allCompleted: goal(
      `${figures.experiments} of ${figures.experiments} completed`,
      figures.completed,
      figures.completed === figures.experiments,
    ),
    noDuplicateLaunches: goal(
      '0 duplicate launches',
      figures.duplicateLaunches,
      figures.duplicateLaunches === 0,
    ),
    noHealthyTrainerKilled: goal(
      '0 healthy trainers killed (nor any gone unrecorded)',
      figures.healthyTrainersKilled + figures.trainersVanished,
      figures.healthyTrainersKilled + figures.trainersVanished === 0,
    ),
    noApprovalLost: goal('0 approvals lost', figures.approvalsLost, figures.approvalsLost === 0),
    noLongStall: goal(
      `no experiment stalled more than ${stallLimitMs / 1000} s after its process came back`,
      figures.longestStallMs,
      figures.longestStallMs <= stallLimitMs,
    ),
  };
}
