/**
 * What bench/pipeline.ts reports: the result of each measurement on one server, the comparison of the two
 * servers (ratios embedded / real) with the goals of issue #11, and the printed summary.
 */
import { judgeGoal, ratio, ratios, type Goal } from './comparison';
import type { ParkedResult } from './pipeline-parked';
import type { ServerKind } from './stack';
import { formatStats, type Stats } from './support';

// ---------------------------------------------------------------------------------------------------
// Results of one server

/**
 * Consecutive stretches of one experiment, in ms; they add up to its wall time. Times come from three
 * clocks of the same machine: this process (submit, result), the server (history event times) and the
 * supervisor (exit.json).
 */
export interface Segments {
  submitToLaunchScheduled: number;
  launchScheduledToTrainerStart: number;
  trainerProcess: number;
  trainerExitToWatcherDone: number;
  watcherDoneToValidationScheduled: number;
  validationScheduledToWorkflowClosed: number;
  workflowClosedToClientResult: number;
}

export interface ExperimentTiming {
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

export interface LatencyRun {
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

export interface ServerResult {
  server: string;
  orchestrationOverhead: Record<string, unknown>;
  trainerExitToValidation: Record<string, unknown>;
  runs: LatencyRun[];
  parkedAtLaunchGate: ParkedResult;
}

// ---------------------------------------------------------------------------------------------------
// Comparison and the goals of issue #11

/** "Within 1 GB", read as 1 GiB = 1024 MiB of RSS, at the top level and at its peak while parking. */
const workerRssGoalMiB = 1024;
const approvalAnsweredGoalMs = 1000;

/** The goals on one server: the highest level parked within 1 GB of worker RSS, every approval answered < 1 s. */
export function goalsOn(kind: ServerKind, parked: ParkedResult): Goal[] {
  const top = parked.levels.at(-1);
  if (!top) return [];
  const { workerMiB, workerPeakMiB } = top.rss;
  const withinMemory = Math.max(workerMiB, workerPeakMiB) <= workerRssGoalMiB;
  const answered = top.approvals.flatMap((a) => (a.answeredMs === null ? [] : [a.answeredMs]));
  const failed = top.approvals.filter((a) => a.answeredMs === null);
  const slowest = Math.max(...answered);
  const approvalStatement =
    failed.length > 0
      ? `${failed.length} of ${top.approvals.length} approvals at ${top.parked} parked FAILED (${failed[0]!.outcome})` +
        (answered.length > 0 ? `; the others answered in ${answered.join(', ')} ms` : '')
      : `${top.approvals.length} approvals at ${top.parked} parked answered in ${answered.join(', ')} ms ` +
        `(slowest ${slowest} ms: ${slowest < approvalAnsweredGoalMs ? 'under' : 'NOT under'} a second); out ` +
        `of the gate in ${top.approvals.map((a) => a.leftGateMs).join(', ')} ms`;
  return [
    {
      goal: `${kind}: ${top.parked} experiments parked on one worker within 1 GB of worker RSS`,
      holds: withinMemory,
      statement:
        `${kind}: worker RSS with ${top.parked} parked ${workerMiB} MiB (peak while parking ${workerPeakMiB}), ` +
        `${withinMemory ? 'within' : 'OVER'} 1 GiB, with maxCachedWorkflows ${parked.maxCachedWorkflows}.`,
    },
    {
      goal: `${kind}: approving any one of ${top.parked} parked experiments answered in under a second`,
      holds: failed.length === 0 && slowest < approvalAnsweredGoalMs,
      statement: `${kind}: ${approvalStatement}.`,
    },
  ];
}

export function compareServers(results: Partial<Record<ServerKind, ServerResult>>) {
  const e = results.embedded;
  const r = results['temporal-cli'];
  const levels = (e ?? r)?.parkedAtLaunchGate.levels.map((l) => l.parked) ?? [];
  const overhead = ratios(e, r, (s) =>
    Object.fromEntries(
      s.runs.flatMap((run) => [
        [`poll${run.pollIntervalMs}msOverheadMeanMs`, run.overheadMs.mean],
        [`poll${run.pollIntervalMs}msOverheadP50Ms`, run.overheadMs.p50],
        [`poll${run.pollIntervalMs}msExitToValidationMeanMs`, run.exitToValidationMs.mean],
      ]),
    ),
  );
  const parkedLevel = (side: ServerResult | undefined, level: number) =>
    side?.parkedAtLaunchGate.levels.find((l) => l.parked === level);
  const parked = Object.fromEntries(
    levels.map((level) => [
      `parked${level}`,
      ratios(parkedLevel(e, level), parkedLevel(r, level), (l) => ({
        workerRssMiB: l.rss.workerMiB,
        serverRssMiB: l.rss.serverMiB,
        parkSeconds: l.parkSeconds,
        workerCpuMsPerExperimentToPark: l.cpuMsPerExperimentToPark.worker,
        serverCpuMsPerExperimentToPark: l.cpuMsPerExperimentToPark.server,
        approvalAnsweredP50Ms: l.answeredMs.random.p50,
        approvalLeftGateP50Ms: l.leftGateMs.random.p50,
      })),
    ]),
  );
  const idle = {
    workerRssMiB: ratio(e?.parkedAtLaunchGate.idle.workerMiB, r?.parkedAtLaunchGate.idle.workerMiB),
    serverRssMiB: ratio(e?.parkedAtLaunchGate.idle.serverMiB, r?.parkedAtLaunchGate.idle.serverMiB),
  };
  const top = `parked${levels.at(-1)}`;
  const goals: Goal[] = [
    ...(e ? goalsOn('embedded', e.parkedAtLaunchGate) : []),
    ...(r ? goalsOn('temporal-cli', r.parkedAtLaunchGate) : []),
    judgeGoal(
      `Embedded server uses less memory than the real one with experiments parked`,
      {
        'server RSS idle': idle.serverRssMiB,
        ...Object.fromEntries(
          levels.map((level) => [
            `server RSS with ${level} parked`,
            parked[`parked${level}`]?.serverRssMiB ?? null,
          ]),
        ),
      },
      (x) => x < 1,
    ),
  ];
  return {
    definition:
      'embedded / real of the same figure: above 1 the embedded figure is larger (worse for every figure ' +
      'here: time, CPU, memory). null: not measured on both.',
    orchestrationOverhead: overhead,
    idle,
    parked,
    headline: parked[top],
    goals,
  };
}

// ---------------------------------------------------------------------------------------------------
// The printed summary

export function summaryOf(kind: string, result: ServerResult): string[] {
  const lines = [`${kind}: ${result.server}`];
  lines.push(`  experiments one at a time, gates disabled (${result.runs[0]?.experiments} per run):`);
  for (const run of result.runs) {
    lines.push(
      `    poll ${run.pollIntervalMs} ms: orchestration overhead ${formatStats(run.overheadMs)}`,
      `      trainer exit → validation scheduled ${formatStats(run.exitToValidationMs)}`,
    );
  }
  const p = result.parkedAtLaunchGate;
  lines.push(
    `  parked at the launch gate (maxCachedWorkflows ${p.maxCachedWorkflows}; idle RSS worker ` +
      `${p.idle.workerMiB} MiB, server ${p.idle.serverMiB} MiB):`,
  );
  for (const l of p.levels) {
    lines.push(
      `    ${l.parked} parked (${l.submitted} submitted in ${l.submitSeconds} s, all parked at ${l.parkSeconds} s; ` +
        `worker CPU ${l.cpuMsPerExperimentToPark.worker} ms/experiment, server ${l.cpuMsPerExperimentToPark.server}):`,
      `      RSS worker ${l.rss.workerMiB} MiB (~${l.perParkedExperimentKiB.worker} KiB/experiment), ` +
        `server ${l.rss.serverMiB} MiB (~${l.perParkedExperimentKiB.server} KiB/experiment)`,
      `      approval answered: random ${formatStats(l.answeredMs.random)}; most recent ${formatStats(l.answeredMs.mostRecent)}`,
      `      out of the gate:   random ${formatStats(l.leftGateMs.random)}; most recent ${formatStats(l.leftGateMs.mostRecent)}`,
      `      status query:      random ${formatStats(l.queryMs.random)}; most recent ${formatStats(l.queryMs.mostRecent)}`,
    );
    const failed = l.approvals.filter((a) => a.answeredMs === null);
    if (failed.length > 0)
      lines.push(`      ${failed.length} of ${l.approvals.length} approvals failed: ${failed[0]!.outcome}`);
  }
  const t = p.afterTerminate;
  lines.push(
    `    after terminating ${t.terminated} (${t.alreadyClosed} already closed) in ${t.terminateSeconds} s: ` +
      `RSS worker ${t.workerMiB} MiB, server ${t.serverMiB} MiB`,
  );
  return lines;
}

export function summary(
  results: Partial<Record<ServerKind, ServerResult>>,
  comparison: ReturnType<typeof compareServers>,
): string {
  const lines = Object.entries(results).flatMap(([kind, result]) => summaryOf(kind, result));
  lines.push(
    'embedded / real:',
    `  orchestration overhead: ${JSON.stringify(comparison.orchestrationOverhead)}`,
    ...Object.entries(comparison.parked).map(([level, r]) => `  ${level}: ${JSON.stringify(r)}`),
    ...comparison.goals.map((g) => `  ${g.statement}`),
  );
  return lines.join('\n');
}
