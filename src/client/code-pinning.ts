/**
 * Pinning an experiment's code before it is submitted: `code.ref` becomes a commit id and uncommitted
 * changes become a patch file (or a refusal), so the workflow input never names a moving branch and the
 * experiment trains what the researcher saw when they submitted it.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CodeSpec, ExperimentSpec, type CampaignSpec, type PinnedCode } from '../experiment';
import { changedFiles, git, gitBytes, gitMaybe, GitError, lablineExclusions } from '../activities/code/git';
import { writeFileAtomic } from '../activities/atomic-file';
import { InvalidSpecError } from './spec-file';

/** The largest patch of uncommitted changes Labline records; larger ones are usually data that belongs in `data:`. */
export const MAX_PATCH_BYTES = 16 * 1024 * 1024;

/** Where the run directory's copy of a submit-time patch goes. */
export function patchFileOf(runsRoot: string, experimentId: string, sha256: string): string {
  return path.join(runsRoot, experimentId, 'code', `${sha256}.patch`);
}

/**
 * The spec with its code pinned; unchanged when it has no `code` section or is pinned already. The patch
 * of uncommitted changes (with `dirty: snapshot`) is written under `<runsRoot>/<experiment_id>/code/`.
 * @throws InvalidSpecError naming the problem and the fix: no repository, an unknown ref, refused changes
 */
export async function pinExperimentCode(spec: ExperimentSpec, runsRoot: string): Promise<ExperimentSpec> {
  if (!spec.code || spec.code.pinned) return spec;
  const code = await pinnedCode(spec.code, {
    experimentId: spec.experiment_id,
    runsRoot,
    workingDirectory: spec.training.working_directory,
  });
  return { ...spec, code };
}

/** What pinning needs besides the code section. */
export interface PinningContext {
  /** Names the patch file's folder. */
  experimentId: string;
  runsRoot: string;
  /** The training command's directory: it must lie inside the repository, whose worktree replaces it. */
  workingDirectory?: string;
}

/** `code` with its repository made the top level of the checkout and `pinned` filled in. */
export async function pinnedCode(code: CodeSpec, context: PinningContext): Promise<CodeSpec> {
  const start = path.resolve(code.repo ?? context.workingDirectory ?? '.');
  const repository = await repositoryOf(start);
  if (context.workingDirectory) requireInside(repository, path.resolve(context.workingDirectory));
  const commit = await commitOf(repository, code.ref);
  const branch = await branchOf(repository, code.ref);
  const pinned: PinnedCode = { commit, ...(branch ? { branch } : {}) };

  const head = await gitMaybe(['rev-parse', '--verify', '--quiet', 'HEAD^{commit}'], { cwd: repository });
  // Uncommitted changes belong to the checked-out commit; another ref is taken as committed.
  if (head?.trim() === commit) {
    const excluded = lablineExclusions(repository, context.runsRoot);
    const dirty = changedFiles(
      await git(['status', '--porcelain=v1', '-z', '--untracked-files=all', '--', '.', ...excluded], {
        cwd: repository,
      }),
    );
    if (dirty.length > 0) {
      if (code.dirty === 'refuse') throw refusedChanges(repository, dirty);
      if (code.dirty === 'allow') pinned.left_out = dirty;
      else pinned.patch = await snapshotPatch(repository, commit, excluded, context);
    }
  }
  return { ...code, repo: repository, pinned };
}

async function repositoryOf(start: string): Promise<string> {
  try {
    return (await git(['rev-parse', '--show-toplevel'], { cwd: start })).trim();
  } catch (error) {
    throw new InvalidSpecError(
      `code.repo: ${start} is not inside a git repository (${error instanceof GitError ? error.stderr.trim() : String(error)}). ` +
        'Set code.repo to the repository that holds the training code, or run `git init` and commit it there.',
      { cause: error },
    );
  }
}

function requireInside(repository: string, workingDirectory: string): void {
  const relative = path.relative(repository, workingDirectory);
  if (relative.startsWith('..') || path.isAbsolute(relative)) {
    throw new InvalidSpecError(
      `training.working_directory: ${workingDirectory} is outside the repository ${repository}; with a code ` +
        'section the command runs inside a worktree of that repository. Move the working directory into it, ' +
        'or set code.repo to the repository that holds it.',
    );
  }
}

async function commitOf(repository: string, ref: string): Promise<string> {
  const commit = await gitMaybe(['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`], {
    cwd: repository,
  });
  if (!commit) {
    throw new InvalidSpecError(
      `code.ref: "${ref}" names no branch, tag or commit in ${repository}. ` +
        '`git branch --all` and `git tag` list what there is; fetch the branch first if it lives on a remote.',
    );
  }
  return commit.trim();
}

/** The branch a ref names, or the checked-out branch for `HEAD`; undefined for tags, commits, a detached HEAD. */
async function branchOf(repository: string, ref: string): Promise<string | undefined> {
  if (ref === 'HEAD') {
    return (
      (await gitMaybe(['symbolic-ref', '--quiet', '--short', 'HEAD'], { cwd: repository }))?.trim() ||
      undefined
    );
  }
  for (const prefix of ['refs/heads/', 'refs/remotes/']) {
    const found = await gitMaybe(['show-ref', '--verify', '--quiet', `${prefix}${ref}`], { cwd: repository });
    if (found !== undefined) return ref;
  }
  return undefined;
}

function refusedChanges(repository: string, files: string[]): InvalidSpecError {
  const shown = files.slice(0, 10).map((file) => `  ${file}`);
  if (files.length > shown.length) shown.push(`  … and ${files.length - shown.length} more`);
  return new InvalidSpecError(
    `code.dirty is "refuse" and ${repository} has uncommitted changes; nothing was submitted:\n${shown.join('\n')}\n` +
      'Commit or stash them, or set code.dirty: snapshot to train them as a recorded patch.',
  );
}

/**
 * The uncommitted changes (untracked files included) as a binary patch against `commit`, written under the
 * run directory. A throwaway index collects them, so the user's staging area is left as it was.
 */
async function snapshotPatch(
  repository: string,
  commit: string,
  excluded: string[],
  context: PinningContext,
): Promise<NonNullable<PinnedCode['patch']>> {
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'labline-pin-'));
  try {
    const env = { GIT_INDEX_FILE: path.join(scratch, 'index') };
    await git(['read-tree', commit], { cwd: repository, env });
    await git(['add', '--all', '--', '.', ...excluded], { cwd: repository, env });
    const bytes = await gitBytes(['diff', '--cached', '--binary', '--full-index', '--no-color', commit], {
      cwd: repository,
      env,
      maxBuffer: MAX_PATCH_BYTES + 1,
    }).catch((error: unknown) => {
      if (error instanceof Error && /maxBuffer/i.test(error.message)) throw tooLargePatch(repository);
      throw error;
    });
    if (bytes.length > MAX_PATCH_BYTES) throw tooLargePatch(repository);
    const files = (await git(['diff', '--cached', '--name-only', '-z', commit], { cwd: repository, env }))
      .split('\0')
      .filter((file) => file.length > 0);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const file = patchFileOf(context.runsRoot, context.experimentId, sha256);
    await fs.mkdir(path.dirname(file), { recursive: true });
    // Named by its hash: a patch already there is this one, and is never overwritten.
    if (!(await fs.stat(file).catch(() => undefined))) await writeFileAtomic(file, bytes);
    return { sha256, path: file, files };
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

function tooLargePatch(repository: string): InvalidSpecError {
  return new InvalidSpecError(
    `the uncommitted changes in ${repository} come to more than ${MAX_PATCH_BYTES / 1024 / 1024} MiB; nothing was ` +
      'submitted. Large untracked files are usually data: add them to .gitignore and declare them under `data:`, ' +
      'or commit the changes.',
  );
}

/**
 * The campaign with its code pinned: the base's code section (when it has one) and every ref of code
 * variants, each to its commit (a patch only for the checked-out commit, with `dirty: snapshot`). Code
 * variants of a base without a code section use the repository holding its working directory.
 */
export async function pinCampaignCode(campaign: CampaignSpec, runsRoot: string): Promise<CampaignSpec> {
  const refs = campaign.variants.refs;
  const base = ExperimentSpec.parse(campaign.base);
  if (!base.code && !refs) return campaign;
  const code = base.code ?? CodeSpec.parse({});
  const context: PinningContext = {
    experimentId: campaign.campaign_id,
    runsRoot,
    workingDirectory: base.training.working_directory,
  };
  const pinnedBase = code.pinned ? code : await pinnedCode(code, context);
  const pinnedRefs = refs
    ? await Promise.all(
        refs.map(async (ref) => {
          if (typeof ref !== 'string') return ref;
          const pinned = await pinnedCode({ ...pinnedBase, ref, pinned: undefined }, context);
          return { ref, pinned: pinned.pinned! };
        }),
      )
    : undefined;
  return {
    ...campaign,
    base: { ...base, code: pinnedBase },
    variants: { ...campaign.variants, ...(pinnedRefs ? { refs: pinnedRefs } : {}) },
  };
}

/** What a pinned spec trains, in a sentence for the CLI; undefined without a code section. */
export function describePinnedCode(spec: ExperimentSpec): string | undefined {
  const pinned = spec.code?.pinned;
  if (!pinned) return undefined;
  const branch = pinned.branch ? ` (${pinned.branch})` : '';
  const patch = pinned.patch
    ? `, with uncommitted changes to ${pinned.patch.files.length} file(s) recorded in ${pinned.patch.path}`
    : '';
  const leftOut = pinned.left_out
    ? `, without ${pinned.left_out.length} uncommitted file(s) (dirty: allow)`
    : '';
  return `Code: commit ${pinned.commit.slice(0, 12)}${branch}${patch}${leftOut}`;
}
