import os from 'node:os';
import type { TrainingState } from './launcher';

/**
 * What Labline reads about one Slurm job, from whichever source still knows it: `scontrol show job` (pending,
 * running, and finished jobs for `MinJobAge` seconds), `sacct` (with accounting) or the `jobcomp/filetxt`
 * completion log. Pure data; {@link trainingStateOf} turns it into the launcher's {@link TrainingState}.
 */
export interface SlurmJobInfo {
  jobId: string;
  /** Base state as Slurm prints it: `PENDING`, `RUNNING`, `COMPLETED`, `TIMEOUT`, … (flags such as `+` cut off). */
  state: string;
  /** Why it is pending (`Resources`, `Priority`…) or why it ended; `None` or absent when Slurm gives none. */
  reason?: string;
  /** The batch script's exit code, from `ExitCode=<code>:<signal>`. */
  exitCode?: number;
  /** The signal that ended the batch script, from `ExitCode=<code>:<signal>`; 0 when none. */
  exitSignal?: number;
  /** How often Slurm requeued it (`Restarts=`); above 0 the job was preempted, requeued or its node failed. */
  restarts?: number;
  /** ISO 8601, when known. */
  startTime?: string;
  endTime?: string;
  /** Which source answered, for messages. */
  source: 'scontrol' | 'sacct' | 'jobcomp';
}

/** States in which the job's processes may still run, or are about to. */
const ACTIVE_STATES = new Set([
  'RUNNING',
  'COMPLETING',
  'SUSPENDED',
  'STOPPED',
  'SIGNALING',
  'RESIZING',
  'STAGE_OUT',
  'POWER_UP_NODE',
]);
/** States of a job that waits to start. */
const WAITING_STATES = new Set(['PENDING', 'CONFIGURING', 'RESV_DEL_HOLD']);
/** States Slurm reports while it puts a job back in the queue. */
const REQUEUE_STATES = new Set(['REQUEUED', 'REQUEUE_FED', 'REQUEUE_HOLD', 'SPECIAL_EXIT']);

/** Whether the job will not change any more by itself (ended, or cancelled). */
export function isFinalSlurmState(state: string): boolean {
  return !ACTIVE_STATES.has(state) && !WAITING_STATES.has(state) && !REQUEUE_STATES.has(state);
}

/**
 * Maps a Slurm job to the launcher's state. Slurm's requeues (a `scontrol requeue`, preemption with
 * `PreemptMode=REQUEUE`, a node failure of a requeueable job) end the launch as `preempted`: Labline resumes
 * from the latest checkpoint in a new launch, within the experiment's preemption budget, and the requeued copy
 * of the job never runs the trainer again (`slurm-job.sh` exits at once when `SLURM_RESTART_COUNT` is set, and
 * the launcher cancels the copy when it sees it).
 */
export function trainingStateOf(job: SlurmJobInfo): TrainingState {
  // Before a job ends, Slurm's StartTime and EndTime are forecasts (EndTime = start + time limit).
  const times = job.startTime && !WAITING_STATES.has(job.state) ? { startedAt: job.startTime } : {};
  const ended = (
    reason: TrainingState['reason'],
    detail: string,
    exit: { exitCode: number | null; signal: string | null } = exitOf(job),
  ): TrainingState => ({
    phase: 'exited',
    ...exit,
    ...(reason ? { reason } : {}),
    detail,
    ...times,
    ...(job.endTime ? { endedAt: job.endTime } : {}),
  });

  if ((job.restarts ?? 0) > 0 || REQUEUE_STATES.has(job.state)) {
    // The first run's processes are still being stopped: wait for them, so the next launch never overlaps.
    if (job.state === 'COMPLETING' || job.state === 'SIGNALING' || job.state === 'STAGE_OUT') {
      return {
        phase: 'running',
        detail: `Slurm is requeueing job ${job.jobId}; waiting for its processes to end`,
        ...times,
      };
    }
    return ended(
      'preempted',
      `Slurm requeued job ${job.jobId} (preempted, requeued or its node failed); Labline resumes from the latest checkpoint in a new launch`,
      { exitCode: null, signal: null },
    );
  }
  if (WAITING_STATES.has(job.state)) {
    const detail =
      job.state === 'CONFIGURING'
        ? `Slurm job ${job.jobId} is starting: its nodes are being configured`
        : `queued in Slurm as job ${job.jobId}: ${describePendingReason(job.reason)}`;
    return { phase: 'pending', detail };
  }
  if (ACTIVE_STATES.has(job.state)) {
    const suspended = job.state === 'SUSPENDED' || job.state === 'STOPPED';
    return {
      phase: 'running',
      ...(suspended ? { detail: `Slurm job ${job.jobId} is suspended` } : {}),
      ...times,
    };
  }
  const why = job.reason && job.reason !== 'None' ? ` (${job.reason})` : '';
  switch (job.state) {
    case 'COMPLETED':
      return ended(undefined, `Slurm job ${job.jobId} completed`);
    case 'FAILED': {
      // FAILED with exit code 0 is a job that never ran its script (launch failure): not a success.
      const exit = exitOf(job);
      return ended(
        undefined,
        `Slurm job ${job.jobId} failed${why}`,
        exit.exitCode === 0 && exit.signal === null ? { exitCode: null, signal: null } : exit,
      );
    }
    case 'TIMEOUT':
      return ended('timeout', `Slurm job ${job.jobId} reached its time limit`);
    case 'DEADLINE':
      return ended('timeout', `Slurm job ${job.jobId} reached its deadline`);
    case 'OUT_OF_MEMORY':
      return ended('out-of-memory', `Slurm job ${job.jobId} ran out of memory`);
    case 'PREEMPTED':
      return ended('preempted', `Slurm preempted job ${job.jobId}`);
    case 'NODE_FAIL':
      return ended('node-failure', `the node of Slurm job ${job.jobId} failed`);
    case 'BOOT_FAIL':
      return ended('node-failure', `the node of Slurm job ${job.jobId} failed to boot`);
    case 'CANCELLED':
    case 'REVOKED':
      return ended('cancelled', `Slurm job ${job.jobId} was cancelled${why}`);
    default:
      // A state this code does not know (a newer Slurm): keep watching rather than guess an ending.
      return { phase: 'running', detail: `Slurm job ${job.jobId} is ${job.state}`, ...times };
  }
}

function exitOf(job: SlurmJobInfo): { exitCode: number | null; signal: string | null } {
  if (job.exitSignal) return { exitCode: null, signal: signalName(job.exitSignal) };
  return { exitCode: job.exitCode ?? null, signal: null };
}

function signalName(signal: number): string {
  const entry = Object.entries(os.constants.signals).find(([, number]) => number === signal);
  return entry ? entry[0] : `signal ${signal}`;
}

/** Slurm's pending reasons (squeue's `%r`, scontrol's `Reason=`) that people ask about, in words. */
const PENDING_REASONS: Record<string, string> = {
  None: 'waiting to be scheduled',
  Priority: 'jobs with a higher priority go first',
  Resources: 'waiting for resources (GPUs, CPUs or memory) to free up',
  Dependency: 'waiting for a job it depends on',
  DependencyNeverSatisfied: 'a job it depends on failed, so it can never start',
  BeginTime: 'its earliest start time has not come yet',
  JobHeldUser: 'held by its user (release it with `scontrol release <job id>`)',
  JobHeldAdmin: 'held by an administrator',
  ReqNodeNotAvail: 'the nodes it needs are not available (down, drained or reserved)',
  NodeDown: 'a node it needs is down',
  PartitionDown: 'its partition is down',
  PartitionInactive: 'its partition is inactive',
  PartitionNodeLimit: "it asks for more nodes than its partition's limit",
  PartitionTimeLimit: "its time limit is longer than its partition's limit",
  PartitionConfig: "it asks for more than its partition's nodes offer",
  Reservation: 'waiting for its reservation to start',
  InvalidAccount: 'its account is invalid',
  InvalidQOS: 'its QOS is invalid',
  Licenses: 'waiting for licenses',
};

/** A pending reason in words, with Slurm's own name for it. */
export function describePendingReason(reason: string | undefined): string {
  const name = reason && reason.length > 0 ? reason : 'None';
  const known = PENDING_REASONS[name];
  if (known) return name === 'None' ? known : `${known} (${name})`;
  if (/^(QOS|Assoc)/.test(name)) return `a limit of its QOS or account holds it (${name})`;
  return `Slurm says ${name}`;
}
