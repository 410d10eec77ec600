/**
 * The offline proposer: with no model, a search still moves by scaling one numeric constant of an editable
 * file per trial. Rules cannot know whether an edit helps; they only make edits that are small, valid and not
 * tried before, and leave the judging to the trials. Pure and deterministic: the same files, trial number and
 * history always give the same proposal, so a retried proposal activity proposes the same edit.
 */
import { createTwoFilesPatch, FILE_HEADERS_ONLY, parsePatch } from 'diff';
import type { TrialProposal } from '../../experiment';

/** What the offline proposer reads. */
export interface OfflineProposalInput {
  /**
   * The editable files of the incumbent; their order is the order edits are numbered in, so keep it fixed.
   * Paths are relative to the repository, with `/`.
   */
  files: readonly { path: string; content: string }[];
  /** The trial number, from 1: it picks where in the list of edits the proposer starts looking. */
  n: number;
  /** Every diff proposed earlier in the search, kept or not: an edit adding a line one of them added is skipped. */
  earlierDiffs: readonly string[];
}

/** A numeric literal that is the value of an assignment or a key, and where it stands. */
export interface NumericConstant {
  path: string;
  /** Line of the number, from 0. */
  line: number;
  /** Column of the number in its line, from 0. */
  column: number;
  /** The number as written, e.g. `3e-4`. */
  number: string;
  /** The whole line as written (without a trailing `\r`). */
  lineText: string;
}

/**
 * A name (letters, digits, `_` and `.`, as in `self.lr`; a closing quote allowed, for `"lr": 0.1` and
 * `{'lr': 0.1}`), then `=` or `:` with spaces or tabs around it, then a number: an optional sign, digits with
 * optional decimals (or `.5`), an optional exponent. It matches `NAME = 0.01`, `name: 16`, `default=16`,
 * `lr=3e-4`. The number may not run on into a letter, digit or dot, so `1.2.3`, `0x10`, `16px` and `1_000` are
 * left alone; `==`, `<=`, `+=` and `:=` never match, since the name must stand right before the `=`. Strings
 * are not parsed: a `key: 3` inside a string is a candidate, and `//` or `#` inside a string (a URL) hides the
 * rest of its line. Both are rare in training code, and the trial measures whatever the edit does.
 */
const ASSIGNED_NUMBER =
  /\b[A-Za-z_][\w.]*['"]?[ \t]*[=:][ \t]*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.])/g;
const LINE_COMMENT = /\/\/|#/;

/**
 * Scale factors, in the order they are tried: a doubling and a halving first, then gentler steps, then bolder
 * ones (a learning rate or a width can be off by more than two).
 */
const FACTORS = [2, 0.5, 1.5, 0.75, 1.25, 0.8, 3, 1 / 3] as const;

/** Plain notation, however small or large the number, with at most 4 significant digits. */
const PLAIN = new Intl.NumberFormat('en-US', { useGrouping: false, maximumSignificantDigits: 4 });

/** Every numeric constant of the files, by file (in the given order), then line, then column. */
export function numericConstants(files: OfflineProposalInput['files']): NumericConstant[] {
  return files.flatMap((file) =>
    file.content.split('\n').flatMap((raw, line) => {
      const lineText = raw.replace(/\r$/, '');
      return [...lineText.matchAll(ASSIGNED_NUMBER)]
        .filter((match) => !LINE_COMMENT.test(lineText.slice(0, match.index)))
        .map((match) => {
          const number = match[1]!;
          return {
            path: file.path,
            line,
            column: match.index + match[0].length - number.length,
            number,
            lineText,
          };
        });
    }),
  );
}

/**
 * `number` times `factor` as a literal of the same kind, or `undefined` when that leaves it as it was: integers
 * stay integers and keep a magnitude of at least 1 (a batch size of 0 is a crash, not an experiment); other
 * numbers get at most 4 significant digits, in exponent notation when they were written that way.
 */
export function scaledLiteral(number: string, factor: number): string | undefined {
  const original = Number(number);
  const product = original * factor;
  if (!Number.isFinite(product)) return undefined;
  const value = /^[-+]?\d+$/.test(number)
    ? String(Math.sign(original) * Math.max(1, Math.round(Math.abs(product))))
    : /e/i.test(number)
      ? Number(product.toPrecision(4)).toExponential()
      : PLAIN.format(product);
  return Number(value) === original ? undefined : value;
}

interface ScalingEdit {
  constant: NumericConstant;
  factor: number;
  value: string;
  /** The line once edited: what the diff adds. */
  newLine: string;
}

/**
 * The proposal of trial `n`: the `n`-th edit (going round) in the list of factors × constants or, when that
 * edit's new line was added by an earlier diff to the same file, the next one. Factors come first, so
 * successive trials double each constant in turn before any is halved: a search explores every constant early
 * rather than every factor of the first one. `undefined` when there is no constant, or every edit was tried:
 * the search has nothing left to propose offline.
 */
export function offlineProposal(input: OfflineProposalInput): TrialProposal | undefined {
  const constants = numericConstants(input.files);
  const edits = FACTORS.flatMap((factor) =>
    constants.flatMap((constant): ScalingEdit[] => {
      const value = scaledLiteral(constant.number, factor);
      if (value === undefined) return [];
      const { lineText, column, number } = constant;
      const newLine = lineText.slice(0, column) + value + lineText.slice(column + number.length);
      return [{ constant, factor, value, newLine }];
    }),
  );
  if (edits.length === 0) return undefined;
  const added = linesAddedBy(input.earlierDiffs);
  const start = (input.n - 1) % edits.length;
  for (let i = 0; i < edits.length; i++) {
    const edit = edits[(start + i) % edits.length]!;
    if (!added.has(addedLineKey(edit.constant.path, edit.newLine))) {
      const file = input.files.find((f) => f.path === edit.constant.path)!;
      return { hypothesis: hypothesisOf(edit), diff: diffOf(file, edit) };
    }
  }
  return undefined;
}

function addedLineKey(path: string, line: string): string {
  return `${path}\n${line.replace(/\r$/, '')}`;
}

/**
 * The lines each earlier diff added, per file. A diff that does not parse cannot say what it added; it is
 * skipped, since at worst an edit is proposed again and the search's duplicate check (by hash) drops it.
 */
function linesAddedBy(diffs: readonly string[]): Set<string> {
  const added = new Set<string>();
  for (const diff of diffs) {
    let patches: ReturnType<typeof parsePatch>;
    try {
      patches = parsePatch(diff);
    } catch {
      continue;
    }
    for (const patch of patches) {
      const path = (patch.newFileName ?? '').replace(/^[ab]\//, '');
      for (const line of patch.hunks.flatMap((hunk) => hunk.lines))
        if (line.startsWith('+')) added.add(addedLineKey(path, line.slice(1)));
    }
  }
  return added;
}

/**
 * The edit as a diff `git apply` (`-p1`) takes: `a/` and `b/` prefixes, and file headers only, since jsdiff's
 * `Index:` and `===` lines are not part of a git patch.
 */
function diffOf(file: { path: string; content: string }, edit: ScalingEdit): string {
  const lines = file.content.split('\n');
  const { line, lineText } = edit.constant;
  lines[line] = edit.newLine + lines[line]!.slice(lineText.length); // keeps a `\r` line ending
  return createTwoFilesPatch(`a/${file.path}`, `b/${file.path}`, file.content, lines.join('\n'), '', '', {
    context: 3,
    headerOptions: FILE_HEADERS_ONLY,
  });
}

/** One sentence that says what changes and, honestly, that a rule does not know whether it helps. */
function hypothesisOf({ constant, factor, value }: ScalingEdit): string {
  const shown = constant.lineText.trim();
  const line = shown.length > 160 ? `${shown.slice(0, 157)}...` : shown;
  return (
    `Scaling ${constant.number} on line ${constant.line + 1} of ${constant.path} (\`${line}\`) to ${value} ` +
    `(×${PLAIN.format(factor)}) changes what trains; offline rules cannot tell whether it helps, so the search measures it.`
  );
}
