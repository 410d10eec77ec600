/**
 * Code, data and reproducibility in the spec: which commit an experiment trains, which data files it reads,
 * and how close a reproduction must come. The client pins `code` before it submits (see
 * `src/client/code-pinning.ts`), so the workflow input names a commit, never a moving branch.
 */
import { z } from 'zod';
import { withHint } from './spec-errors';

/** A git commit id as git prints it in full: 40 lowercase hex digits. */
export const CommitId = z.string().regex(/^[0-9a-f]{40}$/, 'is not a full git commit id');

/** A SHA-256 digest in lowercase hex. */
export const Sha256 = withHint(
  z.string().regex(/^[0-9a-f]{64}$/, 'is not a SHA-256 digest'),
  'write the 64 lowercase hex digits that `sha256sum` prints',
);

/**
 * What to do with uncommitted changes in the checkout when the pinned ref is the checked-out commit:
 * `refuse` (submit nothing and name the changed files), `snapshot` (record them as a patch that every
 * launch applies), or `allow` (train the commit without them; the record lists what was left out).
 */
export const DirtyPolicy = z.enum(['refuse', 'snapshot', 'allow']);
/** What to do with uncommitted changes. */
export type DirtyPolicy = z.infer<typeof DirtyPolicy>;

/** Uncommitted changes recorded at submit time: a binary-safe `git diff` against the pinned commit. */
export const CodePatch = z.strictObject({
  /** SHA-256 of the patch file's bytes; the launcher refuses a patch file that does not match. */
  sha256: Sha256,
  /** Absolute path of the patch file (under the experiment's run directory, `code/<sha256>.patch`). */
  path: z.string().refine((file) => file.startsWith('/'), 'must be an absolute path'),
  /** The files it changes, relative to the repository. */
  files: z.array(z.string()).default([]),
});
/** Uncommitted changes recorded at submit time. */
export type CodePatch = z.infer<typeof CodePatch>;

/** What the client resolved `ref` to when it submitted. Written by Labline, not by hand. */
export const PinnedCode = z.strictObject({
  /** The commit every launch trains. */
  commit: CommitId,
  /** The branch `ref` named (or that was checked out, for `HEAD`), for people; launches never read it. */
  branch: z.string().min(1).optional(),
  /** Uncommitted changes, with `dirty: snapshot`. */
  patch: CodePatch.optional(),
  /** Uncommitted changes that were not included, with `dirty: allow`: the files, relative to the repository. */
  left_out: z.array(z.string()).optional(),
});
/** What the client resolved `ref` to. */
export type PinnedCode = z.infer<typeof PinnedCode>;

/**
 * The code an experiment trains. With this section, every launch runs in a git worktree of the pinned
 * commit (under the run directory, `worktree/`), so experiments on different branches of one repository
 * run side by side without touching the checkout. `training.working_directory` must lie inside the
 * repository; the launcher runs the command at the same place inside the worktree.
 */
export const CodeSpec = z.strictObject({
  /**
   * The git repository: a path, relative to the spec file's directory. Default: the repository that holds
   * the spec file. The CLI makes it absolute when it submits.
   */
  repo: z.string().min(1).optional(),
  /** Branch, tag or commit to train. Default `"HEAD"`: the checked-out commit. */
  ref: z.string().trim().min(1).default('HEAD'),
  /** Uncommitted changes, when `ref` is the checked-out commit. Default `"snapshot"`. */
  dirty: DirtyPolicy.default('snapshot'),
  /** Keep the worktree when the experiment ends (for debugging). Default `false`: it is removed. */
  keep_worktree: z.boolean().default(false),
  /** Filled in by the client when it submits; a spec that has it is already pinned. */
  pinned: PinnedCode.optional(),
});
/** The code an experiment trains. */
export type CodeSpec = z.infer<typeof CodeSpec>;

/** The prefix of data entries that name a W&B artifact instead of a path. */
export const WANDB_ARTIFACT_PREFIX = 'wandb-artifact:';

const DataSource = withHint(
  z.string().trim().min(1),
  `a path (relative to the spec file) or "${WANDB_ARTIFACT_PREFIX}entity/project/name:version"`,
);

/** One data set the experiment reads. */
export const DataEntry = z.union([
  DataSource,
  z.strictObject({
    /** A path (file or directory), or `wandb-artifact:entity/project/name:version`. */
    source: DataSource,
    /**
     * The content hash it must have (a file's SHA-256, a directory's manifest hash). A launch whose data
     * differs is refused with the difference named; `labline reproduce` writes it.
     */
    sha256: Sha256.optional(),
  }),
]);
/** One data set the experiment reads. */
export type DataEntry = z.infer<typeof DataEntry>;

/** A data entry's name: letters, digits, `.`, `_`, `-`. */
export const DataName = withHint(
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'is not a data set name'),
  'use letters, digits, ".", "_" and "-", like "digits-train"',
);

/**
 * The data sets the experiment reads, by name: each is hashed when training launches (files once, cached by
 * size and modification time; directories through a manifest of their files) and recorded in
 * `reproducibility.json`. Default `{}`.
 */
export const DataSpec = z.record(DataName, DataEntry);
/** The data sets the experiment reads, by name. */
export type DataSpec = z.infer<typeof DataSpec>;

/** A data entry in its long form. */
export function dataEntryOf(entry: DataEntry): { source: string; sha256?: string } {
  return typeof entry === 'string' ? { source: entry } : entry;
}

/** Whether a data source names a W&B artifact rather than a path. */
export function isWandbArtifact(source: string): boolean {
  return source.startsWith(WANDB_ARTIFACT_PREFIX);
}

/** How close a reproduction must come to the original. */
export const ReproducibilitySpec = z.strictObject({
  /**
   * Per summary metric, the largest absolute difference between a reproduction and the original that still
   * counts as reproduced, e.g. `{ eval/accuracy: 0.01 }`. Default `{}`: `labline reproduce --compare`
   * then asks for an exact match.
   */
  tolerance: z.record(z.string().min(1), z.number().nonnegative()).default({}),
});
/** How close a reproduction must come to the original. */
export type ReproducibilitySpec = z.infer<typeof ReproducibilitySpec>;

/** What the memo of a pinned experiment says of its code, for `labline lineage` and the Web UI. */
export interface CodeMemo {
  commit: string;
  branch?: string;
  /** Whether uncommitted changes were recorded as a patch on top of the commit. */
  patched: boolean;
}

/** The memo entries of a spec's pinned code: `{ code }`, or none when it is not pinned. */
export function codeMemoOf(spec: { code?: CodeSpec }): { code?: CodeMemo } {
  const pinned = spec.code?.pinned;
  if (!pinned) return {};
  return {
    code: {
      commit: pinned.commit,
      ...(pinned.branch ? { branch: pinned.branch } : {}),
      patched: !!pinned.patch,
    },
  };
}
