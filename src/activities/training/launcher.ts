import * as path from 'node:path';
import { z } from 'zod';

/**
 * The Launcher seam: how Labline starts a training process, finds it again after a crash, watches it and
 * stops it. One implementation per backend (`local.ts` today, Slurm next); the workflow never sees which.
 *
 * Contract every implementation keeps:
 * - `launch` is idempotent by `key`: a second call with the same key, from any process, after any crash,
 *   returns the first launch's handle (`adopted: true`) and never starts a second process or job.
 * - `status`, `cancel` and `logTail` work from the handle alone, so a new worker can re-attach to a run
 *   that a dead worker started.
 * - `cancel` is idempotent and safe to call on a run that already ended.
 */

/** Which backend started a run. */
export const LauncherKind = z.enum(['local', 'slurm']);
/** Which backend started a run. */
export type LauncherKind = z.infer<typeof LauncherKind>;

/**
 * An idempotency key: the name of one intended launch, e.g. `exp-42-a1` for attempt 1 of `exp-42`. It names a
 * directory (local) or a job (Slurm), so it is limited to letters, digits, `.`, `_` and `-`.
 */
export const LaunchKey = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/,
    'use letters, digits, ".", "_" and "-" (at most 200), e.g. "exp-42-a1"',
  );

/** The idempotency key Labline uses for attempt `attempt` of experiment `experimentId`. */
export function launchKeyFor(experimentId: string, attempt: number): string {
  return `${experimentId}-a${attempt}`;
}

/** What a launch needs from the machine. */
export const TrainingResources = z.object({
  /** GPUs to reserve. Local launcher: slots from the host's `gpuIds`, passed as `CUDA_VISIBLE_DEVICES`. Default 0. */
  gpus: z.number().int().nonnegative().default(0),
  /** CPU cores. Slurm: `--cpus-per-task`. The local launcher records it and does not enforce it. Default 1. */
  cpus: z.number().int().positive().default(1),
  /** Memory as Slurm writes it (`16G`). The local launcher records it and does not enforce it. */
  memory: z.string().optional(),
  /**
   * Wall-clock limit in seconds. Local launcher: the process group gets SIGTERM when it is reached, then
   * SIGKILL after the kill grace period, and the state says `reason: 'timeout'`. Default: no limit.
   */
  timeLimitSeconds: z.number().positive().optional(),
});
/** What a launch needs from the machine. */
export type TrainingResources = z.infer<typeof TrainingResources>;

/** How the trainer is told to resume, and from which checkpoint. */
export const ResumeFrom = z.object({
  /** The checkpoint to resume from; a relative path is taken relative to the run directory. */
  checkpointPath: z.string().min(1),
  /** A command-line flag followed by the checkpoint path, appended to the args, e.g. `--resume-from`. */
  flag: z.string().min(1).optional(),
  /** An environment variable set to the checkpoint path. `LABLINE_RESUME_FROM` is always set as well. */
  envVar: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'is not an environment variable name')
    .optional(),
});
/** How the trainer is told to resume, and from which checkpoint. */
export type ResumeFrom = z.infer<typeof ResumeFrom>;

/** One intended launch of a training command. */
export const LaunchRequest = z.object({
  /** The experiment (= workflow id), passed to the trainer as `LABLINE_EXPERIMENT_ID`. */
  experimentId: z.string().min(1),
  /** 1-based training attempt, passed as `LABLINE_ATTEMPT`. */
  attempt: z.number().int().positive(),
  /** Idempotency key; see {@link LaunchKey} and {@link launchKeyFor}. */
  key: LaunchKey,
  /**
   * Absolute run directory of the experiment, shared by all its attempts and passed as `LABLINE_RUN_DIR`.
   * The trainer writes metrics, checkpoints and artifacts there; each attempt's launch records go under
   * `<runDir>/attempts/<key>/`.
   */
  runDir: z.string().refine((dir) => dir.startsWith('/'), 'must be an absolute path'),
  /** The program to run (looked up on PATH), e.g. `node` or `python`. Never run through a shell. */
  command: z.string().min(1),
  /** Its arguments, passed as an array: nothing is interpreted by a shell. */
  args: z.array(z.string()).default([]),
  /** Working directory; a relative path is taken relative to the run directory. Default: the run directory. */
  cwd: z.string().optional(),
  /** Environment added to the worker's environment for the trainer (the worker's secrets pass through). */
  env: z.record(z.string(), z.string()).default({}),
  /** What the run needs. */
  resources: TrainingResources.default({ gpus: 0, cpus: 1 }),
  /** Set when this launch resumes an earlier attempt from its checkpoint. */
  resumeFrom: ResumeFrom.optional(),
});
/** One intended launch of a training command (after parsing: defaults filled in). */
export type LaunchRequest = z.infer<typeof LaunchRequest>;
/** One intended launch of a training command, as callers write it (defaults optional). */
export type LaunchRequestInput = z.input<typeof LaunchRequest>;

/** Enough to find a launched run again, from any process. Plain JSON: it travels through workflow history. */
export const TrainingHandle = z.object({
  launcher: LauncherKind,
  key: LaunchKey,
  /** The experiment's run directory. */
  runDir: z.string(),
  /** Where this launch's records live: `<runDir>/attempts/<key>` (Slurm: also the job's output, `slurm.log`). */
  attemptDir: z.string(),
  /** The trainer's process id (local launcher), when it had started by the time `launch` returned. */
  pid: z.number().int().positive().optional(),
  /** The scheduler's job id (Slurm). */
  jobId: z.string().optional(),
  /** GPU ids this launch holds (`CUDA_VISIBLE_DEVICES`); absent when the host's GPUs are not managed. */
  gpuIds: z.array(z.string()).optional(),
});
/** Enough to find a launched run again, from any process. */
export type TrainingHandle = z.infer<typeof TrainingHandle>;

/**
 * Why a run ended, when the launcher knows more than the exit code:
 * - `cancelled`: Labline cancelled it;
 * - `timeout`: it hit `resources.timeLimitSeconds` (Slurm: TIMEOUT);
 * - `lost`: it is gone and nobody recorded how it ended (machine reboot, supervisor killed);
 * - `spawn-failed`: the command could not be started (not found, not executable);
 * - `preempted`, `out-of-memory`, `node-failure`: the scheduler said so (Slurm).
 *
 * Absent when the exit code says it all; classifying a plain failure (crash, NaN, OOM in the log) is the
 * workflow's job, from the exit code and the log tail.
 */
export const TrainingExitReason = z.enum([
  'cancelled',
  'timeout',
  'lost',
  'spawn-failed',
  'preempted',
  'out-of-memory',
  'node-failure',
]);
/** Why a run ended, when the launcher knows more than the exit code. */
export type TrainingExitReason = z.infer<typeof TrainingExitReason>;

/** The latest metrics the trainer logged. */
export const TrainingProgress = z.object({
  /** The latest logged step (`_step`). */
  step: z.number().optional(),
  /** The latest training loss (`train/loss`, else `loss`). */
  loss: z.number().optional(),
  /** When that row was logged, ISO 8601. */
  updatedAt: z.string().optional(),
});
/** The latest metrics the trainer logged. */
export type TrainingProgress = z.infer<typeof TrainingProgress>;

/** Where a launched run is. `exited` is final. */
export const TrainingState = z.object({
  phase: z.enum(['pending', 'running', 'exited']),
  /** Exit code when it exited on its own; `null` when a signal ended it or the exit is unknown. */
  exitCode: z.number().int().nullable().optional(),
  /** The signal that ended it (`SIGKILL`), when one did. */
  signal: z.string().nullable().optional(),
  /** See {@link TrainingExitReason}. */
  reason: TrainingExitReason.optional(),
  /** A sentence for people: why it is pending, how it was lost, the spawn error. */
  detail: z.string().optional(),
  /** When it started and ended, ISO 8601, when known. */
  startedAt: z.string().optional(),
  endedAt: z.string().optional(),
  progress: TrainingProgress.optional(),
});
/** Where a launched run is. */
export type TrainingState = z.infer<typeof TrainingState>;

/** What `launch` returns: the handle, and whether an earlier launch with the same key was found instead. */
export interface LaunchResult {
  handle: TrainingHandle;
  /** `true` when nothing was started because a launch with this key already existed. */
  adopted: boolean;
}

/** A backend that runs training commands. See the contract at the top of this file. */
export interface Launcher {
  readonly kind: LauncherKind;
  /**
   * Starts the command unless a launch with `request.key` exists, in which case it returns that one.
   * @throws LaunchRejectedError when the request can never run here (e.g. more GPUs than the host has)
   */
  launch(request: LaunchRequestInput): Promise<LaunchResult>;
  /** Where the run is now. Never throws for a run that ended or vanished: that is `phase: 'exited'`. */
  status(handle: TrainingHandle): Promise<TrainingState>;
  /** Stops the run (SIGTERM, then SIGKILL after a grace period). Idempotent. */
  cancel(handle: TrainingHandle): Promise<void>;
  /** The last `lines` lines of the run's output (stdout and stderr together). Default 50. */
  logTail(handle: TrainingHandle, lines?: number): Promise<string>;
}

/**
 * A launch that can never succeed as asked, thrown before anything starts. Activities turn it into a
 * non-retryable `ApplicationFailure` of type `failureType`.
 */
export class LaunchRejectedError extends Error {
  readonly failureType = 'LaunchRejected';
  override readonly name = 'LaunchRejectedError';
}

/**
 * The host cannot run the launch right now (all GPU slots held by other runs). Retryable: Temporal's retry
 * policy tries again later; nothing was started.
 */
export class LauncherBusyError extends Error {
  readonly failureType = 'LauncherBusy';
  override readonly name = 'LauncherBusyError';
}

/** Options of {@link awaitTrainingExit}. */
export interface AwaitTrainingExitOptions {
  /** Time between status polls, in milliseconds. Default 2000. */
  pollIntervalMs?: number;
  /** Called after every poll that did not see the exit (an activity heartbeats with it). */
  onProgress?: (state: TrainingState) => void;
  /** Stops waiting (not the run) when aborted; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Polls `launcher.status` until the run exits and returns its final state. The body of the `awaitTraining`
 * activity, which passes `Context.current().heartbeat` as `onProgress` and its cancellation signal.
 */
export async function awaitTrainingExit(
  launcher: Launcher,
  handle: TrainingHandle,
  options: AwaitTrainingExitOptions = {},
): Promise<TrainingState> {
  const pollIntervalMs = options.pollIntervalMs ?? 2000;
  for (;;) {
    options.signal?.throwIfAborted();
    const state = await launcher.status(handle);
    if (state.phase === 'exited') return state;
    options.onProgress?.(state);
    await delay(pollIntervalMs, options.signal);
  }
}

function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(
        signal.reason instanceof Error ? signal.reason : new Error('stopped waiting for training: aborted'),
      );
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(
        signal?.reason instanceof Error ? signal.reason : new Error('stopped waiting for training: aborted'),
      );
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * What Labline tells every trainer about its experiment, besides the launcher's own variables (see
 * docs/trainer-contract.md): the config as JSON, the seed when the config has one, and the absolute checkpoint
 * folder. The training activity adds them to the launch's environment.
 */
export function experimentEnvironment(
  config: Record<string, unknown>,
  checkpointDirectory: string,
): Record<string, string> {
  const seed = config.seed;
  return {
    LABLINE_CONFIG: JSON.stringify(config),
    ...(typeof seed === 'number' && Number.isInteger(seed) ? { LABLINE_SEED: String(seed) } : {}),
    LABLINE_CHECKPOINT_DIR: checkpointDirectory,
  };
}

/**
 * What every launcher hands the trainer: the request's arguments and environment plus Labline's variables,
 * and on a resumed attempt the checkpoint (always `LABLINE_RESUME_FROM`, the spec's variable, the spec's
 * flag). Relative `cwd` and checkpoint paths are taken relative to the run directory.
 */
export function trainerInvocation(request: LaunchRequest): {
  args: string[];
  env: Record<string, string>;
  cwd: string;
} {
  const args = [...request.args];
  const env: Record<string, string> = {
    ...request.env,
    LABLINE_RUN_DIR: request.runDir,
    LABLINE_EXPERIMENT_ID: request.experimentId,
    LABLINE_ATTEMPT: String(request.attempt),
    LABLINE_LAUNCH_KEY: request.key,
  };
  if (request.resumeFrom) {
    const checkpoint = path.resolve(request.runDir, request.resumeFrom.checkpointPath);
    env.LABLINE_RESUME_FROM = checkpoint;
    if (request.resumeFrom.envVar) env[request.resumeFrom.envVar] = checkpoint;
    if (request.resumeFrom.flag) args.push(request.resumeFrom.flag, checkpoint);
  }
  return { args, env, cwd: path.resolve(request.runDir, request.cwd ?? '.') };
}
