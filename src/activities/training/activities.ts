/**
 * Training activities: launch the training command exactly once per intended launch, watch it with
 * heartbeats until it exits, and stop it. They run on the GPU task queue.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import {
  FailureType,
  redactSecrets,
  renderTrainingArgs,
  type CodeSpec,
  type DataSpec,
  type ExperimentSpec,
  type RecordedData,
  type TrainingSpec,
} from '../../experiment';
import { preparedWorktree, removeWorktree, requirePinned, type PinnedCodeSpec } from '../code/worktree';
import {
  describedLaunch,
  hashedData,
  pinnedCodeRecord,
  worktreeWorkingDirectory,
} from '../reproducibility/launch-capture';
import { recordLaunchEnd, unpinnedCode, writeLaunchRecord } from '../reproducibility/record';
import type { RunRef, RunTracker, TrackerKind } from '../tracking/run-tracker';
import { ProgressWatchdog } from './progress-watchdog';
import { TrackedRunFollower, type TrackedRunObservation } from './tracked-run-follower';
import {
  LaunchRejectedError,
  experimentEnvironment,
  LaunchRequest,
  trainerInvocation,
  type Launcher,
  type LauncherKind,
  type TrainingHandle,
  type TrainingState,
} from './launcher';

export interface LaunchTrainingInput {
  experimentId: string;
  /** 1, 2, … over the experiment; with the experiment id it makes the idempotency key. */
  launch: number;
  key: string;
  runDir: string;
  training: TrainingSpec;
  /** The experiment's config: `${config.KEY}` placeholders in the training arguments are filled from it. */
  config?: Record<string, unknown>;
  /** Absolute checkpoint path to resume from. */
  resumeFrom?: string;
  /** Extra environment for the trainer (tracker variables); never secrets. */
  env?: Record<string, string>;
  /**
   * The whole spec: its pinned code (the launch trains a worktree of it) and the reproducibility record.
   * Absent in workflows from before the record: those train the working directory as it is and write none.
   */
  spec?: ExperimentSpec;
  /** The spec's data sets as `hashData` found them just before this launch; absent when it declares none. */
  data?: RecordedData[];
}

export interface LaunchTrainingResult {
  handle: TrainingHandle;
  /** True when an earlier attempt of this activity had already launched it. */
  adopted: boolean;
}

export interface AwaitTrainingInput {
  handle: TrainingHandle;
  pollIntervalMs: number;
  checkpointDirectory: string;
  /**
   * Also follow the run in its tracker (W&B): its state and heartbeat go into the heartbeats and the exit
   * report, and a run that stops heartbeating while the process runs is stopped (see `follow` options).
   * Absent: only the process is watched.
   */
  trackedRun?: { tracker: TrackerKind; ref: RunRef };
  /**
   * How long the process may run without a new metric before it is stopped as hung (reason `hung`), in
   * milliseconds; the spec's `training.stall_timeout`. Absent (workflows before it) or `0`: never.
   */
  stallTimeoutMs?: number;
}

/** What the watcher learnt of the tracked run, at the end. */
export interface TrackedRunReport extends TrackedRunObservation {
  /** Set when the watcher stopped the process because the run stopped heartbeating: why, in a sentence. */
  stalled?: string;
}

export interface AwaitTrainingStartInput {
  handle: TrainingHandle;
  pollIntervalMs: number;
  /** The queue detail the workflow shows now; absent before the first report. */
  shown?: string;
  /** Least time before a changed queue detail is reported, ms (a growing interval bounds the history). */
  reportChangesAfterMs: number;
}

/** Where a queued launch is: still `pending` (with why), or started (`running`) or already `exited`. */
export interface TrainingStartReport {
  phase: TrainingState['phase'];
  /** Why it waits (Slurm: its pending reason in words), or what the launcher says about it. */
  detail?: string;
}

/** How a training process ended, with what the workflow needs to classify it and resume. */
export interface TrainingExitReport {
  exitCode: number | null;
  signal: string | null;
  /** The launcher's own reason (cancelled, timeout, lost…), checked before the log. */
  reason?: string;
  detail?: string;
  logTail: string;
  startedAt?: string;
  endedAt?: string;
  step?: number;
  loss?: number;
  /** Latest checkpoint on disk after the exit, to resume from. */
  latestCheckpoint?: { path: string; step?: number };
  /** The tracked run (W&B), when the watcher followed it. */
  tracker?: TrackedRunReport;
}

/** How the watcher follows tracked runs. */
export interface FollowTrackedRunOptions {
  /** Least time between two questions to the tracker, in milliseconds. Default 30000. */
  intervalMs?: number;
  /**
   * How long a run may go without a new heartbeat while its process runs before the watcher stops the
   * process as hung, in milliseconds. Default 600000 (10 minutes); `0` never stops it.
   */
  stallTimeoutMs?: number;
}

export interface TrainingActivityDeps {
  launchers: Partial<Record<LauncherKind, Launcher>>;
  /** Trackers whose runs `awaitTraining` can follow (those with `runState`). Default: none. */
  trackers?: Partial<Record<TrackerKind, RunTracker>>;
  /** How tracked runs are followed. */
  follow?: FollowTrackedRunOptions;
}

export function createTrainingActivities(deps: TrainingActivityDeps) {
  const launcherFor = (kind: LauncherKind): Launcher => {
    const launcher = deps.launchers[kind];
    if (!launcher) {
      throw ApplicationFailure.nonRetryable(
        `the spec asks for launcher "${kind}", but this worker has none configured; set it up in the Labline settings or use launcher: local`,
        FailureType.LaunchRejected,
      );
    }
    return launcher;
  };

  const followerFor = (trackedRun: AwaitTrainingInput['trackedRun']): TrackedRunFollower | undefined => {
    const tracker = trackedRun ? deps.trackers?.[trackedRun.tracker] : undefined;
    if (!trackedRun || !tracker?.runState) return undefined;
    return new TrackedRunFollower(tracker, trackedRun.ref, {
      intervalMs: deps.follow?.intervalMs ?? 30_000,
      stallTimeoutMs: deps.follow?.stallTimeoutMs ?? 600_000,
    });
  };

  return {
    async launchTraining(input: LaunchTrainingInput): Promise<LaunchTrainingResult> {
      const { training, spec } = input;
      const resume = training.checkpoint.resume;
      try {
        const launcher = launcherFor(training.launcher);
        const code = spec?.code ? requirePinned(spec.code) : undefined;
        const worktree = code ? await preparedWorktree(input.runDir, code) : undefined;
        const request = LaunchRequest.parse({
          experimentId: input.experimentId,
          attempt: input.launch,
          key: input.key,
          runDir: input.runDir,
          command: training.command,
          args: renderTrainingArgs(training.args, input.config ?? {}),
          cwd:
            code && worktree
              ? worktreeWorkingDirectory(worktree, code, training.working_directory)
              : training.working_directory,
          env: {
            ...training.env,
            ...input.env,
            ...experimentEnvironment(
              input.config ?? {},
              path.resolve(input.runDir, training.checkpoint.directory),
            ),
          },
          resources: {
            gpus: training.resources.gpus,
            cpus: training.resources.cpus,
            memory: training.resources.memory,
            timeLimitSeconds: training.resources.time_limit,
          },
          resumeFrom: input.resumeFrom
            ? { checkpointPath: input.resumeFrom, flag: resume.flag, envVar: resume.env }
            : undefined,
        });
        // Described before the trainer starts (the tools' time is bounded), so that the launch returns its
        // handle at once: until it does, cancelling the experiment cannot reach the trainer. A record that
        // cannot be made is logged, not retried: the retry would launch nothing new and fail again.
        const described = spec
          ? await describeLaunch(spec, request, { code, worktree, data: input.data ?? [] }).catch(
              (error: unknown) => recordFailed(request, error),
            )
          : undefined;
        const launched = await launcher.launch(request);
        if (described) {
          await recordLaunch(request, described, launched.handle, training.launcher).catch((error: unknown) =>
            recordFailed(request, error),
          );
        }
        return launched;
      } catch (error) {
        if (error instanceof LaunchRejectedError) {
          throw ApplicationFailure.nonRetryable(error.message, FailureType.LaunchRejected);
        }
        throw error;
      }
    },

    /**
     * Hashes the spec's data sets where training runs (files cached by size, modification time and inode)
     * and checks those whose hash the spec gives. Its own activity, before each launch: hashing a large data
     * set for the first time may take far longer than a launch may.
     */
    async hashData(input: { runDir: string; data: DataSpec }): Promise<RecordedData[]> {
      const ctx = Context.current();
      try {
        const wandb = deps.trackers?.wandb;
        return await hashedData(
          input.data,
          input.runDir,
          (bytes) => ctx.heartbeat({ hashed_bytes: bytes }),
          wandb?.resolveArtifact ? (reference) => wandb.resolveArtifact!(reference) : undefined,
        );
      } catch (error) {
        if (error instanceof LaunchRejectedError) {
          throw ApplicationFailure.nonRetryable(error.message, FailureType.LaunchRejected);
        }
        throw error;
      }
    },

    /**
     * Heartbeats progress until the process exits. Cancelling it never stops the process (see below). With
     * `trackedRun`, also follows the tracked run, and stops a process whose run stopped heartbeating
     * (reported as `lost`).
     */
    async awaitTraining(input: AwaitTrainingInput): Promise<TrainingExitReport> {
      const ctx = Context.current();
      const launcher = launcherFor(input.handle.launcher);
      const follower = followerFor(input.trackedRun);
      const watchdog = new ProgressWatchdog(input.stallTimeoutMs ?? 0);
      let stalled: string | undefined;
      let hung: string | undefined;
      let state: TrainingState = await launcher.status(input.handle);
      while (state.phase !== 'exited') {
        if (follower && !stalled) {
          await follower.poll();
          stalled = follower.stallReason();
          if (stalled) {
            ctx.log.warn('tracked run stopped heartbeating; stopping the training process', {
              reason: stalled,
            });
            await launcher.cancel(input.handle);
          }
        }
        if (!stalled && !hung && state.phase === 'running') {
          hung = watchdog.observe(state.progress);
          if (hung) {
            ctx.log.warn('no new metric; stopping the training process as hung', { reason: hung });
            await launcher.cancel(input.handle);
          }
        }
        ctx.heartbeat({
          ...(state.progress ?? {}),
          ...(follower?.latest ? { tracker: follower.latest } : {}),
        });
        // A cancelled watcher leaves the trainer alone: it is cancelled on a worker shutdown, a heartbeat
        // timeout or a lost connection as well as on the experiment's cancellation, and only the last may stop
        // training; the workflow does that itself (cancelTraining), and the next watcher re-attaches otherwise.
        await ctx.sleep(input.pollIntervalMs);
        state = await launcher.status(input.handle);
      }
      const tracked = follower ? await follower.poll(true) : undefined;
      await recordLaunchEnd(input.handle.runDir, input.handle.key, {
        endedAt: state.endedAt,
        exitCode: state.exitCode ?? null,
        attemptDir: input.handle.attemptDir,
      });
      return {
        exitCode: state.exitCode ?? null,
        signal: state.signal ?? null,
        reason: stalled ? 'lost' : hung ? 'hung' : state.reason,
        // What leaves here goes into history, status, reports and Slack: no secret the trainer printed.
        detail:
          stalled ??
          hung ??
          (state.detail === undefined ? undefined : redactSecrets(state.detail, process.env)),
        logTail: redactSecrets(await launcher.logTail(input.handle, 40), process.env),
        startedAt: state.startedAt,
        endedAt: state.endedAt,
        step: state.progress?.step,
        loss: state.progress?.loss,
        latestCheckpoint: await latestCheckpoint(
          path.resolve(input.handle.runDir, input.checkpointDirectory),
        ),
        ...(tracked ? { tracker: { ...tracked, ...(stalled ? { stalled } : {}) } } : {}),
      };
    },

    /**
     * For launchers with a queue (Slurm): waits while the launch is pending, heartbeating, and returns when it
     * leaves the queue, or when the reason it waits (`detail`) is no longer the one the workflow shows, after
     * at least `reportChangesAfterMs`: the workflow puts the reason in its status and the Web UI details.
     */
    async awaitTrainingStart(input: AwaitTrainingStartInput): Promise<TrainingStartReport> {
      const ctx = Context.current();
      const launcher = launcherFor(input.handle.launcher);
      const startedAt = Date.now();
      for (;;) {
        const state = await launcher.status(input.handle);
        const report = { phase: state.phase, ...(state.detail ? { detail: state.detail } : {}) };
        if (state.phase !== 'pending') return report;
        if (state.detail !== input.shown && Date.now() - startedAt >= input.reportChangesAfterMs)
          return report;
        ctx.heartbeat(report);
        await ctx.sleep(input.pollIntervalMs);
      }
    },

    async cancelTraining(input: { handle: TrainingHandle }): Promise<void> {
      await launcherFor(input.handle.launcher).cancel(input.handle);
    },

    /** Removes the worktree an experiment trained in, unless its spec keeps it. Idempotent. */
    async removeWorktree(input: { runDir: string; code: CodeSpec }): Promise<void> {
      if (input.code.keep_worktree || !input.code.repo) return;
      await removeWorktree(input.runDir, input.code.repo);
    },
  };
}

/** The record's sections that do not depend on the launcher's answer. */
async function describeLaunch(
  spec: ExperimentSpec,
  request: LaunchRequest,
  prepared: { code?: PinnedCodeSpec; worktree?: string; data: RecordedData[] },
): Promise<Awaited<ReturnType<typeof describedLaunch>>> {
  const invocation = trainerInvocation(request);
  return describedLaunch({
    spec,
    runName: path.basename(request.runDir),
    command: request.command,
    args: invocation.args,
    cwd: invocation.cwd,
    env: invocation.env,
    trainerEnv: { ...process.env, ...invocation.env },
    code:
      prepared.code && prepared.worktree
        ? pinnedCodeRecord(prepared.code, prepared.worktree)
        : await unpinnedCode(invocation.cwd, path.dirname(request.runDir)),
    data: prepared.data,
  });
}

/** Logs a record that could not be made; the launch goes on without it. */
function recordFailed(request: LaunchRequest, error: unknown): undefined {
  Context.current().log.error('could not write the reproducibility record', {
    runDir: request.runDir,
    error: error instanceof Error ? error.message : String(error),
  });
  return undefined;
}

/** Writes the record with this launch, and the GPUs the launcher gave it. */
async function recordLaunch(
  request: LaunchRequest,
  described: Awaited<ReturnType<typeof describedLaunch>>,
  handle: TrainingHandle,
  launcher: LauncherKind,
): Promise<void> {
  if (handle.gpuIds) {
    const devices = handle.gpuIds.join(',');
    described.environment.cuda_visible_devices = devices;
    described.spec.env.CUDA_VISIBLE_DEVICES = devices;
  }
  await writeLaunchRecord(request.runDir, described, {
    key: request.key,
    launch: request.attempt,
    host: os.hostname(),
    launcher,
    ...(handle.jobId ? { slurm_job_id: handle.jobId } : {}),
    started_at: new Date().toISOString(),
  });
}

/** The newest checkpoint: `latest.json` if the trainer keeps one, else the highest `step-N` file. */
async function latestCheckpoint(dir: string): Promise<{ path: string; step?: number } | undefined> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  if (names.includes('latest.json')) {
    const file = path.join(dir, 'latest.json');
    const step = await fs
      .readFile(file, 'utf8')
      .then((text) => (JSON.parse(text) as { step?: unknown }).step)
      .catch(() => undefined);
    return { path: file, step: typeof step === 'number' ? step : undefined };
  }
  const steps = names
    .map((name) => ({ name, step: Number(/^step-(\d+)\./.exec(name)?.[1]) }))
    .filter((entry) => Number.isFinite(entry.step))
    .sort((a, b) => b.step - a.step);
  const newest = steps[0];
  return newest ? { path: path.join(dir, newest.name), step: newest.step } : undefined;
}

export type TrainingActivities = ReturnType<typeof createTrainingActivities>;
