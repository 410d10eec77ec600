/**
 * What a search proposal must pass before it trains, and the commit it trains as. A proposer (often a model)
 * writes a unified diff against the incumbent commit; these checks answer every bad diff with a reason the
 * proposer can act on, and hash the change so the same edit is not trained twice.
 *
 * Everything here is git plumbing over objects: a temporary index (`GIT_INDEX_FILE` in a scratch folder) stands
 * in for a checkout, so the repository's working tree, index and HEAD are never touched. A person may be
 * working in that checkout, and several trials are checked at once.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import picomatch from 'picomatch';
import type { CheckedProposal, SearchSpec } from '../../experiment';
import { git, gitBytes, gitMaybe, GitError, type GitOptions } from '../code/git';

/** Paths listed at most by {@link editableContext}: a prompt lists them, and a monorepo would drown it. */
const MAX_LISTED_PATHS = 500;
/** Default of `maxBytes` of {@link editableContext}: about 50k tokens of code. */
const DEFAULT_MAX_BYTES = 200_000;
/** Modes of plain files; a symlink (120000) or submodule (160000) is not code a proposal may write. */
const FILE_MODES = new Set(['100644', '100755']);
/**
 * The identity of trial commits. Fixed, with the date passed in, so that a retried {@link commitTrial} makes
 * the very same commit id instead of a second commit beside the branch.
 */
const SEARCH_IDENTITY = { name: 'Labline search', email: 'search@labline.invalid' };
/** Git's words about a bad diff can be long (one line per hunk); a reason keeps the start. */
const MAX_GIT_WORDS = 1_000;

/** Input of {@link editableContext}. */
export interface EditableContextInput {
  /** The repository's top folder. */
  repo: string;
  /** The commit to read (any revision naming a commit). */
  commit: string;
  /** Glob patterns relative to the repository (picomatch, dot files included). */
  editable: readonly string[];
  /** Bytes of file content returned at most, over all files. Default `200000`. */
  maxBytes?: number;
}

/** What a proposer is shown of the code: the editable files in full, and the names of all the others. */
export interface EditableContext {
  /** The editable text files at the commit, in path order. */
  files: { path: string; content: string }[];
  /** Every file tracked at the commit, the first 500. */
  paths: string[];
  /** Whether paths were cut at 500 or editable files left out for `maxBytes`. */
  truncated: boolean;
}

/** The editable files of `commit` and the paths of every tracked file, read from git's objects. */
export async function editableContext(input: EditableContextInput): Promise<EditableContext> {
  const commit = await resolveCommit(input.repo, input.commit);
  // -l gives blob sizes, so a file over the budget is skipped without reading it.
  const listing = await git(['ls-tree', '-r', '-l', '-z', '--full-tree', commit], { cwd: input.repo });
  const entries = listing
    .split('\0')
    .filter((line) => line.length > 0)
    .map((line) => {
      const tab = line.indexOf('\t');
      const [mode = '', type = '', oid = '', size = ''] = line.slice(0, tab).split(/\s+/);
      return { mode, type, oid, size: Number(size), path: line.slice(tab + 1) };
    });
  const isEditable = picomatch([...input.editable], { dot: true });
  let budget = input.maxBytes ?? DEFAULT_MAX_BYTES;
  let truncated = entries.length > MAX_LISTED_PATHS;
  const files: EditableContext['files'] = [];
  for (const entry of entries) {
    if (entry.type !== 'blob' || !FILE_MODES.has(entry.mode) || !isEditable(entry.path)) continue;
    if (entry.size > budget) {
      truncated = true;
      continue;
    }
    const bytes = await gitBytes(['cat-file', 'blob', entry.oid], { cwd: input.repo });
    if (bytes.includes(0)) continue; // binary: no diff can edit it as text
    files.push({ path: entry.path, content: bytes.toString('utf8') });
    budget -= bytes.length;
  }
  return { files, paths: entries.slice(0, MAX_LISTED_PATHS).map((entry) => entry.path), truncated };
}

/** Input of {@link checkProposal}. */
export interface CheckProposalInput {
  /** The repository's top folder. */
  repo: string;
  /** The commit the diff is written against (the incumbent). */
  commit: string;
  /** The proposed unified diff. */
  diff: string;
  /** Glob patterns of the files the diff may change (picomatch, dot files included). */
  editable: readonly string[];
  limits: SearchSpec['limits'];
  /** Hashes of every earlier proposal of the search: the same change again is refused. */
  knownHashes: readonly string[];
}

/** A proposal that passed, or why not, in words a proposer can act on. */
export type ProposalVerdict = { ok: true; check: CheckedProposal } | { ok: false; reason: string };

/**
 * Checks a proposed diff, in this order: its size, that it parses, that it changes only editable text files
 * and no modes, the file and line limits, that it applies to `commit`, that it changes something, and that
 * it was not proposed before. The first failure is the answer.
 * @throws when the repository or the commit cannot be read: that is not the proposal's fault
 */
export async function checkProposal(input: CheckProposalInput): Promise<ProposalVerdict> {
  const { limits } = input;
  const refuse = (reason: string): ProposalVerdict => ({ ok: false, reason });
  const bytes = Buffer.byteLength(input.diff);
  if (bytes > limits.max_diff_bytes)
    return refuse(
      `the diff is ${bytes} bytes, more than max_diff_bytes ${limits.max_diff_bytes}; propose a smaller edit`,
    );
  const commit = await resolveCommit(input.repo, input.commit);
  return withScratch(input.repo, input.diff, async (scratch) => {
    const reading = await readDiff(scratch, commit);
    if (reading.parseError !== undefined)
      return refuse(
        `the diff does not parse as a unified diff (git: ${reading.parseError}); answer with a unified diff ` +
          'of whole files: `--- a/<path>` and `+++ b/<path>` headers, then `@@` hunks with correct line counts',
      );
    const shape = shapeOf(reading.numstat, input.diff);
    const { files, added, removed } = shape;
    // git already calls a diff without a file change "No valid patches"; this keeps an empty one from passing.
    if (files.length === 0) return refuse('the diff changes no file; propose an edit of an editable file');
    const wrong = editRefusal(shape, reading.summary, input.editable);
    if (wrong !== undefined) return refuse(wrong);
    if (files.length > limits.max_files)
      return refuse(
        `the diff changes ${files.length} files, more than max_files ${limits.max_files}; change at most ` +
          `${limits.max_files} (it changes ${files.join(', ')})`,
      );
    if (added + removed > limits.max_changed_lines)
      return refuse(
        `the diff changes ${added + removed} lines (${added} added, ${removed} removed), more than ` +
          `max_changed_lines ${limits.max_changed_lines}; propose a smaller edit`,
      );
    if (reading.applyError !== undefined)
      return refuse(
        `the diff does not apply to commit ${commit.slice(0, 12)} (git: ${reading.applyError}); write it ` +
          "against the files as they are now: context (' ') and removed ('-') lines must match them exactly",
      );
    const tree = await appliedTree(scratch, reading.strip);
    const before = (await git(['rev-parse', `${commit}^{tree}`], { cwd: input.repo })).trim();
    if (tree === before)
      return refuse(
        'the diff changes nothing: the files are the same after it; propose an edit that changes code',
      );
    const hash = await changeHash(input.repo, before, tree);
    if (input.knownHashes.includes(hash))
      return refuse(
        `the same change was proposed before (hash ${hash.slice(0, 12)}); propose a different edit, not this ` +
          'one again in other words',
      );
    return { ok: true, check: { files, added, removed, bytes, hash } };
  });
}

/** What a diff changes, from `git apply --numstat -z`. */
interface DiffShape {
  /** Changed paths (a renamed file by its new name), each once. */
  files: string[];
  /** Old names of renamed files: git's numstat leaves them out, so they come from the `rename from` headers. */
  renamedFrom: string[];
  /** Changed paths git counts no lines of. */
  binary: string[];
  added: number;
  removed: number;
}

function shapeOf(numstat: string, diff: string): DiffShape {
  const changes = numstat
    .split('\0')
    .filter((record) => record.length > 0)
    .map((record) => {
      const [added = '', removed = '', ...rest] = record.split('\t');
      return { added, removed, path: rest.join('\t') };
    });
  const text = changes.filter((change) => change.added !== '-');
  return {
    files: [...new Set(changes.map((change) => change.path))],
    // A quoted name (git quotes unusual ones) is kept quoted: no glob matches it, so it is refused.
    renamedFrom: [...diff.matchAll(/^rename from (.+)$/gm)].map((match) => match[1]!),
    binary: changes.filter((change) => change.added === '-').map((change) => change.path),
    added: text.reduce((sum, change) => sum + Number(change.added), 0),
    removed: text.reduce((sum, change) => sum + Number(change.removed), 0),
  };
}

/** Why the diff may not make these changes: a file that is not editable, a binary file, a mode. */
function editRefusal(shape: DiffShape, summary: string, editable: readonly string[]): string | undefined {
  const isEditable = picomatch([...editable], { dot: true });
  const outside = [...new Set([...shape.files, ...shape.renamedFrom])].filter((file) => !isEditable(file));
  if (outside.length > 0)
    return (
      `the diff changes ${outside.join(', ')}, which ${outside.length === 1 ? 'is' : 'are'} not editable; ` +
      `change only files matching ${editable.join(', ')}`
    );
  if (shape.binary.length > 0)
    return `the diff changes ${shape.binary.join(', ')} as binary; only text edits can be proposed`;
  for (const line of summary.split('\n')) {
    const modeChange = /^ mode change (\d+) => (\d+) (.+)$/.exec(line);
    if (modeChange)
      return (
        `the diff changes the mode of ${modeChange[3]} (${modeChange[1]} to ${modeChange[2]}); leave modes ` +
        'alone: drop the `old mode`/`new mode` lines'
      );
    const created = /^ create mode (\d+) (.+)$/.exec(line);
    if (created && !FILE_MODES.has(created[1]!))
      return `the diff creates ${created[2]} with mode ${created[1]}; create plain files only`;
  }
  return undefined;
}

/** Input of {@link commitTrial}. */
export interface CommitTrialInput {
  /** The repository's top folder. */
  repo: string;
  /** The incumbent commit the diff applies to. */
  parentCommit: string;
  /** A diff that passed {@link checkProposal} against `parentCommit`. */
  diff: string;
  /** The branch to create, e.g. `labline/camp-x/trial-3`. */
  branch: string;
  message: string;
  /** ISO 8601; author and committer date. Pass the same date on a retry to get the same commit. */
  date: string;
}

/**
 * Commits the diff on top of `parentCommit` as branch `branch`, without touching the checkout. Idempotent: the
 * identity and date are fixed, so a retry makes the same commit id and finds the branch already at it.
 * @throws when the branch name is invalid, the diff does not apply, or the branch exists at another commit
 */
export async function commitTrial(input: CommitTrialInput): Promise<{ commit: string }> {
  // `--branch` expands `@{-1}` to the previous branch's name: only a name that comes back unchanged is one.
  const checked = await gitMaybe(['check-ref-format', '--branch', input.branch], { cwd: input.repo });
  if (checked?.trim() !== input.branch)
    throw new Error(
      `"${input.branch}" is not a valid branch name (git check-ref-format --branch); use another`,
    );
  const parent = await resolveCommit(input.repo, input.parentCommit);
  const tree = await withScratch(input.repo, input.diff, async (scratch) => {
    const reading = await readDiff(scratch, parent);
    const failure = reading.parseError ?? reading.applyError;
    if (failure !== undefined)
      throw new Error(
        `the diff of branch ${input.branch} does not apply to ${parent} (git: ${failure}); run checkProposal first`,
      );
    return appliedTree(scratch, reading.strip);
  });
  const identity = {
    GIT_AUTHOR_NAME: SEARCH_IDENTITY.name,
    GIT_AUTHOR_EMAIL: SEARCH_IDENTITY.email,
    GIT_AUTHOR_DATE: input.date,
    GIT_COMMITTER_NAME: SEARCH_IDENTITY.name,
    GIT_COMMITTER_EMAIL: SEARCH_IDENTITY.email,
    GIT_COMMITTER_DATE: input.date,
  };
  // --no-gpg-sign: a signature (commit.gpgSign) would make the id depend on more than the inputs.
  const commit = (
    await git(['commit-tree', '--no-gpg-sign', tree, '-p', parent, '-m', input.message], {
      cwd: input.repo,
      env: identity,
    })
  ).trim();
  const ref = `refs/heads/${input.branch}`;
  try {
    // The empty old value: create the branch only if it does not exist, atomically.
    await git(['update-ref', ref, commit, ''], { cwd: input.repo });
  } catch (error) {
    const existing = (await gitMaybe(['rev-parse', '--verify', '--quiet', ref], { cwd: input.repo }))?.trim();
    if (existing === commit) return { commit }; // a retry: the branch is already where it should be
    if (existing === undefined) throw error;
    throw new Error(
      `the branch ${input.branch} already exists in ${input.repo} at ${existing}, not at the trial's commit ` +
        `${commit}; delete it (git branch -D ${input.branch}) or start the search under a new campaign id`,
      { cause: error },
    );
  }
  return { commit };
}

/** A scratch folder holding the diff as a file and a temporary index; git runs with that index. */
interface Scratch {
  patch: string;
  options: GitOptions;
}

/**
 * Runs `body` with a fresh scratch folder, removed afterwards whatever happens. The diff gets a final newline
 * if it lacks one: git calls a patch without it corrupt, and answers pasted from a model or YAML often lack it.
 */
async function withScratch<T>(
  repo: string,
  diff: string,
  body: (scratch: Scratch) => Promise<T>,
): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'labline-proposal-'));
  try {
    const patch = path.join(dir, 'proposal.diff');
    await fs.writeFile(patch, diff.endsWith('\n') ? diff : `${diff}\n`);
    return await body({ patch, options: { cwd: repo, env: { GIT_INDEX_FILE: path.join(dir, 'index') } } });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** What git makes of a diff: its numstat and summary, or why it does not parse, and whether it applies. */
type Reading =
  | { strip: 0 | 1; parseError: string; applyError?: undefined }
  | { strip: 0 | 1; parseError?: undefined; numstat: string; summary: string; applyError?: string };

/**
 * Reads the diff against `commit` in the scratch index. Git-style `a/` `b/` prefixes (`-p1`) come first; a
 * diff whose headers name the paths bare is read with `-p0` when `-p1` cannot parse or apply it and `-p0` can.
 * (A bare diff that only creates files is ambiguous and taken as `-p1`: `+++ src/new.py` becomes `new.py`.)
 */
async function readDiff(scratch: Scratch, commit: string): Promise<Reading> {
  await git(['read-tree', commit], scratch.options);
  const readings: Reading[] = [];
  for (const strip of [1, 0] as const) {
    const apply = (...flags: string[]) =>
      gitAnswer(['apply', ...flags, '--whitespace=nowarn', `-p${strip}`, scratch.patch], scratch.options);
    // git prints every numstat record (NUL-terminated with -z) before the summary lines (a path may hold a
    // newline, never a NUL): the summary starts after the last NUL.
    const stats = await apply('--numstat', '--summary', '-z');
    if ('failure' in stats) {
      readings.push({ strip, parseError: stats.failure });
      continue;
    }
    const cut = stats.output.lastIndexOf('\0') + 1;
    const reading = { strip, numstat: stats.output.slice(0, cut), summary: stats.output.slice(cut) };
    const check = await apply('--cached', '--check');
    if (!('failure' in check)) return reading;
    readings.push({ ...reading, applyError: check.failure });
  }
  return readings.find((reading) => reading.parseError === undefined) ?? readings[0]!;
}

/** The tree of `commit` with the diff applied (the scratch index holds `commit`, read by {@link readDiff}). */
async function appliedTree(scratch: Scratch, strip: 0 | 1): Promise<string> {
  await git(['apply', '--cached', '--whitespace=nowarn', `-p${strip}`, scratch.patch], scratch.options);
  return (await git(['write-tree'], scratch.options)).trim();
}

/**
 * SHA-256 of the change between two trees without what varies with how it was written or where: no context
 * (`-U0`), no blob ids (`index` lines), no positions (`@@` headers cut to `@@`, their function names too), no
 * rename detection. The same edit of the same lines hashes the same against a later incumbent too.
 */
async function changeHash(repo: string, before: string, after: string): Promise<string> {
  const flags = [
    '-p',
    '-U0',
    '--no-color',
    '--no-renames',
    '--no-ext-diff',
    '--src-prefix=a/',
    '--dst-prefix=b/',
  ];
  const patch = await git(['diff-tree', ...flags, before, after], { cwd: repo });
  const normalised = patch
    .split('\n')
    .filter((line) => !line.startsWith('index '))
    .map((line) => (line.startsWith('@@') ? '@@' : line))
    .join('\n');
  return createHash('sha256').update(normalised).digest('hex');
}

/** The full id of `commit`. @throws when the repository is missing or has no such commit */
async function resolveCommit(repo: string, commit: string): Promise<string> {
  const id = await gitMaybe(['rev-parse', '--verify', '--quiet', '--end-of-options', `${commit}^{commit}`], {
    cwd: repo,
  });
  if (id === undefined)
    throw new Error(
      `commit ${commit} is not in the repository ${repo} (or that is no git repository); fetch the commit, or ` +
        'check the path of the repository',
    );
  return id.trim();
}

/** Git's output, or its words when it exits non-zero (the diff is bad); any other failure throws. */
async function gitAnswer(
  args: readonly string[],
  options: GitOptions,
): Promise<{ output: string } | { failure: string }> {
  try {
    return { output: await git(args, options) };
  } catch (error) {
    if (!(error instanceof GitError) || error.exitCode === null) throw error;
    const words = error.stderr.trim().replace(/\s*\n\s*/g, '; ');
    return { failure: words.length > MAX_GIT_WORDS ? `${words.slice(0, MAX_GIT_WORDS)}…` : words };
  }
}
