/**
 * What a launch records before the trainer starts: the code (worktree or working directory), the spec and the
 * command it resolved to, the machine and packages, the seeds and the data hashes. The training activity
 * calls these where the trainer runs, so the record describes that machine.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import {
  canonicalJson,
  dataEntryOf,
  isWandbArtifact,
  SECRET_NAME,
  seedsOfConfig,
  WANDB_ARTIFACT_PREFIX,
  type DataSpec,
  type ExperimentSpec,
  type RecordedCode,
  type RecordedData,
  type ReproducibilityRecord,
} from '../../experiment';
import type { PinnedCodeSpec } from '../code/worktree';
import { LaunchRejectedError } from '../training/launcher';
import { hashDataSet, verifyDataHash } from './data-hashes';
import { captureEnvironment } from './environment';

/** The record's code section for a pinned experiment. */
export function pinnedCodeRecord(code: PinnedCodeSpec, worktree: string): RecordedCode {
  return {
    pinned: true,
    repository: code.repo,
    commit: code.pinned.commit,
    ...(code.pinned.branch ? { branch: code.pinned.branch } : {}),
    ...(code.pinned.patch ? { patch: code.pinned.patch } : {}),
    clean: !code.pinned.patch,
    ...(code.pinned.left_out ? { left_out: code.pinned.left_out } : {}),
    worktree,
  };
}

/** Where a pinned experiment's command runs: the working directory's place in the repository, in the worktree. */
export function worktreeWorkingDirectory(
  worktree: string,
  code: PinnedCodeSpec,
  workingDirectory: string | undefined,
): string {
  const inside = path.relative(code.repo, workingDirectory ?? code.repo);
  if (inside.startsWith('..') || path.isAbsolute(inside)) {
    throw new LaunchRejectedError(
      `training.working_directory ${workingDirectory} is outside the repository ${code.repo}, so it has no place ` +
        'in the worktree; move it into the repository or set code.repo to the one that holds it',
    );
  }
  return path.join(worktree, inside);
}

/**
 * Hashes every data set (files cached by size and modification time, beside the runs) and checks the ones
 * whose hash the spec gives.
 * @throws LaunchRejectedError when a data set is missing or differs from its recorded hash
 */
export async function hashedData(
  data: DataSpec,
  runDir: string,
  onProgress?: (bytesHashed: number) => void,
  resolveArtifact?: ArtifactResolver,
): Promise<RecordedData[]> {
  const recorded: RecordedData[] = [];
  for (const [name, entry] of Object.entries(data)) {
    const { source, sha256 } = dataEntryOf(entry);
    if (isWandbArtifact(source)) {
      recorded.push(await wandbArtifactRecord(name, source, resolveArtifact));
      continue;
    }
    let hashed: RecordedData;
    try {
      hashed = await hashDataSet({
        name,
        source,
        runDir,
        cacheFile: path.join(path.dirname(runDir), '.labline-data-hashes.json'),
        onProgress,
      });
    } catch (error) {
      if (error instanceof Error && error.name === 'DataSetMissingError')
        throw new LaunchRejectedError(error.message);
      throw error;
    }
    const difference = sha256 === undefined ? undefined : verifyDataHash(hashed, sha256);
    if (difference) throw new LaunchRejectedError(difference);
    recorded.push(hashed);
  }
  return recorded;
}

/** Finds the version an artifact reference names now (the W&B tracker's `resolveArtifact`). */
export type ArtifactResolver = (reference: string) => Promise<{ version: string; digest?: string }>;

/**
 * A W&B artifact as the spec names it (`entity/project/name:alias`): with a W&B tracker on the worker, the
 * version the alias names now and its digest; without one, the version as written.
 * @throws LaunchRejectedError when W&B has no such artifact
 */
async function wandbArtifactRecord(
  name: string,
  source: string,
  resolve: ArtifactResolver | undefined,
): Promise<RecordedData> {
  const reference = source.slice(WANDB_ARTIFACT_PREFIX.length);
  if (resolve) {
    try {
      return { name, source, kind: 'wandb-artifact', ...(await resolve(reference)) };
    } catch (error) {
      if (error instanceof Error && /has no artifact|not a W&B artifact reference/.test(error.message)) {
        throw new LaunchRejectedError(`data "${name}": ${error.message}`);
      }
      throw error; // W&B down or refusing: retried
    }
  }
  const version = /:([^:/]+)$/.exec(reference)?.[1];
  return { name, source, kind: 'wandb-artifact', ...(version ? { version } : {}) };
}

/** How long each tool of the environment capture (`pip freeze`, `nvidia-smi`…) may take, ms. */
export const TOOL_TIMEOUT_MS = 15_000;

/** What a launch needs to describe itself. */
export interface LaunchDescription {
  spec: ExperimentSpec;
  runName: string;
  command: string;
  args: string[];
  cwd: string;
  /** What Labline and the spec add to the trainer's environment. */
  env: Record<string, string>;
  /** The environment the trainer sees (the worker's plus `env`): for tool lookups and secret names. */
  trainerEnv: NodeJS.ProcessEnv;
  code: RecordedCode;
  data: RecordedData[];
}

/** The record of a launch, but for the launch entries, which the caller adds once the launcher answers. */
export async function describedLaunch(
  launch: LaunchDescription,
): Promise<Omit<ReproducibilityRecord, 'launches' | 'version'>> {
  const seeds = seedsOfConfig(launch.spec.config);
  return {
    experiment_id: launch.spec.experiment_id,
    run_name: launch.runName,
    code: launch.code,
    spec: {
      sha256: createHash('sha256').update(canonicalJson(launch.spec)).digest('hex'),
      spec: launch.spec,
      command: launch.command,
      args: launch.args,
      cwd: launch.cwd,
      env: launch.env,
      secret_env_names: Object.keys(launch.trainerEnv)
        .filter((name) => SECRET_NAME.test(name) && launch.trainerEnv[name] !== undefined)
        .sort(),
    },
    environment: await captureEnvironment({
      command: launch.command,
      args: launch.args,
      cwd: launch.cwd,
      codeRoot: launch.code.worktree ?? launch.code.repository ?? launch.cwd,
      env: launch.trainerEnv,
      // The record is written inside the launch activity, whose time is bounded (launch_timeout_seconds): a
      // tool that hangs costs at most this, and the record says why it has no answer.
      timeoutMs: TOOL_TIMEOUT_MS,
    }),
    randomness: { seeds, reported_by_trainer: null },
    data: launch.data,
  };
}
