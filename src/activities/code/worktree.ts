/**
 * The worktree an experiment trains in: a detached git worktree of its pinned commit, with the submit-time
 * patch applied, at `<runDir>/worktree`. Every launch of the experiment (resume, retry, rerun of the
 * deliverables) reuses it; the end of the experiment removes it unless the spec keeps it. The checkout the
 * commit came from is never touched, so two experiments on two branches of one repository run side by side.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { CodeSpec, PinnedCode } from '../../experiment';
import { writeFileAtomic } from '../atomic-file';
import { LaunchRejectedError } from '../training/launcher';
import { git, gitMaybe, GitError } from './git';

/** Where the worktree of a run lives. */
export function worktreeDirOf(runDir: string): string {
  return path.join(runDir, 'worktree');
}

/** What was checked out into the worktree, written once it is complete: a worktree without it is half made. */
interface WorktreeMarker {
  repository: string;
  commit: string;
  patchSha256?: string;
  createdAt: string;
}

const markerFileOf = (runDir: string): string => path.join(runDir, 'worktree.json');

/** The spec's code section once pinned: what a launch needs. */
export interface PinnedCodeSpec extends CodeSpec {
  repo: string;
  pinned: PinnedCode;
}

/** Narrows a spec's code section to a pinned one, or says how it came to be unpinned. */
export function requirePinned(code: CodeSpec): PinnedCodeSpec {
  if (!code.pinned || !code.repo) {
    throw new LaunchRejectedError(
      'the spec has a `code` section that was never pinned to a commit (it names no `code.pinned.commit`); ' +
        'submit it with `labline submit`/`labline start` or the TypeScript client, which pin it, so that ' +
        'the experiment trains one fixed commit rather than a moving branch',
    );
  }
  return code as PinnedCodeSpec;
}

/**
 * The worktree of `code` for this run, made if it is missing or half made, reused if complete. Idempotent:
 * a launch retried after a crash at any point ends with the same worktree.
 * @throws LaunchRejectedError when the commit or the patch cannot be had (never retried: it would not change)
 */
export async function preparedWorktree(runDir: string, code: PinnedCodeSpec): Promise<string> {
  const dir = worktreeDirOf(runDir);
  const wanted: Omit<WorktreeMarker, 'createdAt'> = {
    repository: code.repo,
    commit: code.pinned.commit,
    ...(code.pinned.patch ? { patchSha256: code.pinned.patch.sha256 } : {}),
  };
  const marker = await readMarker(runDir);
  if (
    marker &&
    marker.repository === wanted.repository &&
    marker.commit === wanted.commit &&
    marker.patchSha256 === wanted.patchSha256 &&
    (await exists(dir))
  ) {
    return dir;
  }
  await removeWorktree(runDir, code.repo);
  await fs.mkdir(runDir, { recursive: true });

  if (
    (await gitMaybe(['cat-file', '-e', `${code.pinned.commit}^{commit}`], { cwd: code.repo })) === undefined
  ) {
    throw new LaunchRejectedError(
      `commit ${code.pinned.commit} is not in the repository ${code.repo} (was its branch deleted, or its ` +
        'history rewritten?); fetch or restore it, or submit the experiment again to pin the code as it is now',
    );
  }
  const patch = code.pinned.patch ? await verifiedPatch(code.pinned.patch) : undefined;
  try {
    await git(['worktree', 'add', '--detach', dir, code.pinned.commit], { cwd: code.repo });
  } catch (error) {
    throw new Error(`could not make the worktree ${dir}: ${(error as Error).message}`, { cause: error });
  }
  if (patch && patch.length > 0) {
    try {
      await git(['apply', '--binary', '--whitespace=nowarn', code.pinned.patch!.path], { cwd: dir });
    } catch (error) {
      throw new LaunchRejectedError(
        `the uncommitted changes recorded when the experiment was submitted (${code.pinned.patch!.path}) do not ` +
          `apply to commit ${code.pinned.commit}: ${error instanceof GitError ? error.stderr.trim() : String(error)}`,
      );
    }
  }
  const complete: WorktreeMarker = { ...wanted, createdAt: new Date().toISOString() };
  await writeFileAtomic(markerFileOf(runDir), `${JSON.stringify(complete, null, 2)}\n`);
  return dir;
}

/**
 * Removes the run's worktree and git's record of it. Idempotent, and safe when the repository is gone (the
 * folder is deleted all the same).
 */
export async function removeWorktree(runDir: string, repository: string): Promise<void> {
  const dir = worktreeDirOf(runDir);
  await fs.rm(markerFileOf(runDir), { force: true });
  if (await exists(repository)) {
    await gitMaybe(['worktree', 'remove', '--force', '--force', dir], { cwd: repository }).catch(
      () => undefined,
    );
  }
  await fs.rm(dir, { recursive: true, force: true });
  if (await exists(repository)) {
    await gitMaybe(['worktree', 'prune'], { cwd: repository }).catch(() => undefined);
  }
}

/** The patch's bytes, once they are known to be the ones recorded at submit time. */
async function verifiedPatch(patch: NonNullable<PinnedCode['patch']>): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(patch.path);
  } catch (error) {
    throw new LaunchRejectedError(
      `the uncommitted changes recorded at submit time are missing (${patch.path}: ` +
        `${(error as NodeJS.ErrnoException).code ?? String(error)}); restore the file, or submit again`,
    );
  }
  const found = createHash('sha256').update(bytes).digest('hex');
  if (found !== patch.sha256) {
    throw new LaunchRejectedError(
      `the patch ${patch.path} changed since the experiment was submitted (SHA-256 ${found.slice(0, 12)}…, ` +
        `recorded ${patch.sha256.slice(0, 12)}…); restore it, or submit the experiment again`,
    );
  }
  return bytes;
}

async function readMarker(runDir: string): Promise<WorktreeMarker | undefined> {
  try {
    return JSON.parse(await fs.readFile(markerFileOf(runDir), 'utf8')) as WorktreeMarker;
  } catch {
    return undefined; // missing or half written: the worktree is made again
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    () => true,
    () => false,
  );
}
