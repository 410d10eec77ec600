/**
 * Training activities: launch the training command exactly once per intended launch, watch it with
 * heartbeats until it exits, and stop it. They run on the GPU task queue.
 */
import { CancelledFailure, Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { FailureType, type TrainingSpec } from '../../experiment';
import {
  LaunchRejectedError,
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
  /** Absolute checkpoint path to resume from. */
  resumeFrom?: string;
  /** Extra environment for the trainer (tracker variables); never secrets. */
  env?: Record<string, string>;
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
}

export function createTrainingActivities(deps: { launchers: Partial<Record<LauncherKind, Launcher>> }) {
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

  return {
    async launchTraining(input: LaunchTrainingInput): Promise<LaunchTrainingResult> {
      const { training } = input;
      const resume = training.checkpoint.resume;
      try {
        return await launcherFor(training.launcher).launch({
          experimentId: input.experimentId,
          attempt: input.launch,
          key: input.key,
          runDir: input.runDir,
          command: training.command,
          args: training.args,
          cwd: training.working_directory,
          env: { ...training.env, ...input.env },
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
      } catch (error) {
        if (error instanceof LaunchRejectedError) {
          throw ApplicationFailure.nonRetryable(error.message, FailureType.LaunchRejected);
        }
        throw error;
      }
    },

    /** Heartbeats progress until the process exits; a cancelled experiment stops it. */
    async awaitTraining(input: AwaitTrainingInput): Promise<TrainingExitReport> {
      const ctx = Context.current();
      const launcher = launcherFor(input.handle.launcher);
      let state: TrainingState = await launcher.status(input.handle);
      while (state.phase !== 'exited') {
        ctx.heartbeat(state.progress ?? {});
        try {
          await ctx.sleep(input.pollIntervalMs);
        } catch (error) {
          if (error instanceof CancelledFailure) {
            await launcher.cancel(input.handle);
            throw error;
          }
          throw error;
        }
        state = await launcher.status(input.handle);
      }
      return {
        exitCode: state.exitCode ?? null,
        signal: state.signal ?? null,
        reason: state.reason,
        detail: state.detail,
        logTail: await launcher.logTail(input.handle, 40),
        startedAt: state.startedAt,
        endedAt: state.endedAt,
        step: state.progress?.step,
        loss: state.progress?.loss,
        latestCheckpoint: await latestCheckpoint(
          path.resolve(input.handle.runDir, input.checkpointDirectory),
        ),
      };
    },

    async cancelTraining(input: { handle: TrainingHandle }): Promise<void> {
      await launcherFor(input.handle.launcher).cancel(input.handle);
    },
  };
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
