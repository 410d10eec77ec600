import { z } from 'zod';

// How numbers are written into generated text, and the grounding check: every number of a text an agent wrote
// is traced back to a value computed in code, within the rounding shown. Pure (no I/O), so workflows,
// activities and the report writers share one implementation; the offline writers format with it, so text
// written offline always passes it.

/** Significant digits of every non-integer number Labline writes into text. */
export const SIGNIFICANT_DIGITS = 4;

/**
 * Formats a number the way reports show it: integers as they are (`1200`), other numbers to
 * {@link SIGNIFICANT_DIGITS} significant digits without trailing zeros (`0.3127`, `0.0003`, `1.235e-7`).
 * NaN and infinities as `NaN`, `Infinity`, `-Infinity`.
 */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value) || Number.isInteger(value)) return String(value);
  return String(Number(value.toPrecision(SIGNIFICANT_DIGITS)));
}

/** Formats a fraction as a percentage: `0.1234` → `12.34%` ({@link formatNumber} of 100 × the fraction). */
export function formatPercent(fraction: number): string {
  return `${formatNumber(100 * fraction)}%`;
}

/**
 * A number that code wrote as text (a deliverable's `found: "0.4449545454545455"`) in the format of
 * {@link formatNumber}; any other text unchanged.
 */
export function formatNumberText(text: string): string {
  return /^\s*-?\d+(\.\d+)?(e[+-]?\d+)?\s*$/i.test(text) ? formatNumber(Number(text)) : text;
}

/** A number written in text. */
export interface NumberMention {
  /** As written, e.g. `0.3127`, `-12.5%`, `1e-7`, `1,200`. */
  text: string;
  /** Its value; for a percentage, the number before the `%` (`12.5` for `12.5%`). */
  value: number;
  /** Whether it was written as a percentage. */
  percent: boolean;
  /** Where it starts in the text (UTF-16 index). */
  index: number;
}

// A number standing on its own: not part of a word or identifier (`f1`, `resnet50`, `exp-lr-03`), a path
// (`step-100.json`) or a duration (`1h30m`). The lookbehind covers the sign too, so `a-3` is not `-3`.
// Thousands may be grouped with commas (`1,200`).
const NUMBER = /(?<![\w.\-/])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[+-]?\d+)?%?(?![\w/]|\.\d)/gi;

// A reference to a figure or table of the document ("Figure 2", "Tables 1 and 3"): a label, not a result.
// A number after a comma is only taken as a label when it is not the start of a decimal ("Table 1, 0.93").
const REFERENCE =
  /\b(Figures?|Figs?\.|Tables?)(?:[ \t~\u00a0])*\d+(?![\d.]\d)(?:[ \t]*(?:,|and|&|or|to|–|-)[ \t~\u00a0]*\d+(?![\d.]\d))*/g;

// Markdown that is not prose: code spans and blocks (ids, dates, file names), link or image targets, the
// markers of ordered lists (`1. `), which count items rather than state results, and figure and table
// references (checked on their own by `documentReferences`).
const NOT_PROSE = new RegExp(
  `${/```[\s\S]*?```|`[^`\n]*`|\]\([^)\s]*\)|^[ \t]*\d+[.)](?=[ \t])/.source}|${REFERENCE.source}`,
  'gm',
);

// A hyphen between two digits is a range (`0.85-0.91`): both ends are numbers of the text.
const RANGE_HYPHEN = /(?<=\d)-(?=\d)/g;

/**
 * The numbers written in a text, in order. Numbers inside Markdown code spans or blocks, link targets and
 * ordered-list markers are not counted: Labline writes identifiers, dates and paths there, never results.
 */
export function numbersInText(text: string): NumberMention[] {
  // Replaced by spaces of the same length, so that indices still point into `text`.
  const prose = text.replace(NOT_PROSE, (match) => ' '.repeat(match.length)).replace(RANGE_HYPHEN, ' ');
  const mentions: NumberMention[] = [];
  for (const match of prose.matchAll(NUMBER)) {
    const written = match[0];
    const percent = written.endsWith('%');
    const value = Number((percent ? written.slice(0, -1) : written).replaceAll(',', ''));
    if (Number.isFinite(value)) mentions.push({ text: written, value, percent, index: match.index });
  }
  return mentions;
}

/** Significant digits shown in a written number (`0.3127` → 4, `1.50` → 3, `1200` → 2). */
function shownDigits(text: string): number {
  const mantissa = text.replace(/^-/, '').replace(/%$/, '').replaceAll(',', '').split(/e/i)[0] ?? '';
  const digits = mantissa.includes('.')
    ? mantissa.replace('.', '').replace(/^0+/, '')
    : mantissa.replace(/^0+/, '').replace(/0+$/, '');
  return Math.max(1, digits.length);
}

/** How closely a written number must agree with a value to stand for it. */
export interface MatchOptions {
  /**
   * Also accept the value rounded to the digits shown (`0.31` for `0.3127`), when the number is written
   * with a decimal point or exponent. Integers written without one must match exactly either way, so that a
   * step count is never "grounded" by a nearby value. Default `true`.
   */
  rounded?: boolean;
  /** Ignore the sign (prose such as "worsened by 0.05" for a change of `-0.05`). Default `false`. */
  ignoreSign?: boolean;
}

/** Whether `shown` (a number as written, value `shownValue`) can stand for `value`; see {@link MatchOptions}. */
function stands(shown: string, shownValue: number, value: number, rounded: boolean): boolean {
  if (!Number.isFinite(value)) return false;
  if (value === shownValue || Number(formatNumber(value)) === shownValue) return true;
  if (!rounded || !/[.e]/i.test(shown)) return false;
  return Number(value.toPrecision(shownDigits(shown))) === shownValue;
}

/**
 * Whether a mention stands for a computed value: equal to it, to its {@link formatNumber} form, or (see
 * {@link MatchOptions}) to it rounded to the digits shown. A percentage stands for a fraction (`12.34%` for
 * `0.1234`) or for a value already in percent.
 */
export function mentionMatches(
  mention: Pick<NumberMention, 'text' | 'value' | 'percent'>,
  value: number,
  options: MatchOptions = {},
): boolean {
  const rounded = options.rounded ?? true;
  const shown = mention.percent ? mention.text.slice(0, -1) : mention.text;
  for (const candidate of mention.percent ? [value, 100 * value] : [value]) {
    if (stands(shown, mention.value, candidate, rounded)) return true;
    if (
      options.ignoreSign &&
      stands(shown.replace(/^-/, ''), Math.abs(mention.value), Math.abs(candidate), rounded)
    )
      return true;
  }
  return false;
}

/** A computed value (or a number inside a computed string) and where it is. */
interface Leaf {
  path: string;
  value: number;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function childPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  if (!IDENTIFIER.test(key)) return `${parent}[${JSON.stringify(key)}]`;
  return parent === '' ? key : `${parent}.${key}`;
}

function collectLeaves(value: unknown, path: string, leaves: Leaf[]): void {
  if (typeof value === 'number') leaves.push({ path, value });
  else if (typeof value === 'string')
    // Numbers inside computed strings count: a deliverable's `found: "0.3127"`, a hypothesis's "by 2%".
    for (const mention of numbersInText(value)) leaves.push({ path, value: mention.value });
  else if (Array.isArray(value))
    value.forEach((item, index) => collectLeaves(item, childPath(path, index), leaves));
  else if (typeof value === 'object' && value !== null)
    for (const [key, inner] of Object.entries(value)) collectLeaves(inner, childPath(path, key), leaves);
}

/** A number of a text with the place in the facts it came from. */
export const NumberTrace = z.object({
  /** As written. */
  text: z.string(),
  /** The facts path of a value it stands for, e.g. `analysis.metrics["eval/loss"].final`; `null` when none does. */
  source: z.string().nullable(),
});
/** A number of a text with the place in the facts it came from. */
export type NumberTrace = z.infer<typeof NumberTrace>;

/** Computed values by name, e.g. `{ analysis, validation, spec }`; the names start the facts paths. */
export type NumberSources = Readonly<Record<string, unknown>>;

/** The leaves of the sources, once per set of sources. */
function leavesOf(sources: NumberSources): Leaf[] {
  const leaves: Leaf[] = [];
  for (const [name, facts] of Object.entries(sources)) collectLeaves(facts, name, leaves);
  return leaves;
}

function sourceOf(mention: NumberMention, leaves: readonly Leaf[]): string | null {
  const leaf =
    leaves.find((candidate) =>
      mentionMatches(mention, candidate.value, { rounded: false, ignoreSign: true }),
    ) ?? leaves.find((candidate) => mentionMatches(mention, candidate.value, { ignoreSign: true }));
  return leaf?.path ?? null;
}

/**
 * Traces every distinct number of a text back to the facts: the first value (in the order of `sources`, then
 * of the facts themselves) that the number stands for exactly, else the first it stands for rounded (see
 * {@link mentionMatches}; sign ignored, since prose says "worsened" or "improved" in words). Numbers of
 * Markdown code and link targets are skipped (see {@link numbersInText}).
 *
 * @param sources facts by name, e.g. `{ analysis, validation, results, spec }`; names start the paths
 */
export function traceNumbers(text: string, sources: NumberSources): NumberTrace[] {
  return traceWithLeaves([text], leavesOf(sources));
}

function traceWithLeaves(texts: readonly string[], leaves: readonly Leaf[]): NumberTrace[] {
  const traces = new Map<string, NumberTrace>();
  for (const text of texts)
    for (const mention of numbersInText(text)) {
      if (traces.has(mention.text)) continue;
      traces.set(mention.text, { text: mention.text, source: sourceOf(mention, leaves) });
    }
  return [...traces.values()];
}

/** What the grounding check found in a text or an agent's output. */
export const GroundingReport = z.object({
  /** Distinct numbers that stand for a computed value, each with the first facts path it stands for. */
  verified: z.array(NumberTrace),
  /** Distinct numbers (as written) that stand for no computed value. */
  unverified: z.array(z.string()),
});
/** What the grounding check found. */
export type GroundingReport = z.infer<typeof GroundingReport>;

/**
 * The grounding check: every distinct number of the texts, verified (with its source) or not. A number is
 * verified when it stands for a value of `sources` within the rounding shown (see {@link traceNumbers}).
 */
export function checkGrounding(texts: string | readonly string[], sources: NumberSources): GroundingReport {
  const traces = traceWithLeaves(typeof texts === 'string' ? [texts] : texts, leavesOf(sources));
  return {
    verified: traces.filter((trace) => trace.source !== null),
    unverified: traces.filter((trace) => trace.source === null).map((trace) => trace.text),
  };
}

/** What an unverified number is followed by in text, so readers see which numbers no computation backs. */
export const UNVERIFIED_MARK = '[unverified]';

/**
 * The text with every occurrence of the given numbers (as written, e.g. from
 * {@link GroundingReport.unverified}) followed by {@link UNVERIFIED_MARK}. Numbers in code are left alone,
 * as {@link numbersInText} skips them; marking twice marks once.
 */
export function markUnverified(text: string, unverified: readonly string[]): string {
  const marked = new Set(unverified);
  if (marked.size === 0) return text;
  let result = '';
  let from = 0;
  for (const mention of numbersInText(text)) {
    if (!marked.has(mention.text)) continue;
    const end = mention.index + mention.text.length;
    if (text.startsWith(` ${UNVERIFIED_MARK}`, end)) continue;
    result += `${text.slice(from, end)} ${UNVERIFIED_MARK}`;
    from = end;
  }
  return result + text.slice(from);
}

/** A string inside a structured output, with its path (`findings[2].observation`). */
export interface OutputText {
  path: string;
  text: string;
}

/**
 * The strings of a structured output (an agent's parsed answer), in order, except under keys in `skipKeys`
 * (fields that hold values rather than prose, such as proposed hyperparameter values).
 */
export function outputTexts(output: unknown, skipKeys: readonly string[] = []): OutputText[] {
  const texts: OutputText[] = [];
  const visit = (value: unknown, path: string): void => {
    if (typeof value === 'string') texts.push({ path, text: value });
    else if (Array.isArray(value)) value.forEach((item, index) => visit(item, childPath(path, index)));
    else if (typeof value === 'object' && value !== null)
      for (const [key, inner] of Object.entries(value))
        if (!skipKeys.includes(key)) visit(inner, childPath(path, key));
  };
  visit(output, '');
  return texts;
}

/** The output with {@link markUnverified} applied to each of its strings (except under `skipKeys`). */
export function markUnverifiedInOutput<Output>(
  output: Output,
  unverified: readonly string[],
  skipKeys: readonly string[] = [],
): Output {
  const visit = (value: unknown): unknown => {
    if (typeof value === 'string') return markUnverified(value, unverified);
    if (Array.isArray(value)) return value.map(visit);
    if (typeof value === 'object' && value !== null)
      return Object.fromEntries(
        Object.entries(value).map(([key, inner]) => [key, skipKeys.includes(key) ? inner : visit(inner)]),
      );
    return value;
  };
  return visit(output) as Output;
}

/** The figures and tables a text refers to by number ("Figure 2", "Tables 1 and 3"), outside code. */
export function documentReferences(text: string): { figures: number[]; tables: number[] } {
  const prose = text.replace(/```[\s\S]*?```|`[^`\n]*`/g, ' ');
  const figures = new Set<number>();
  const tables = new Set<number>();
  for (const match of prose.matchAll(REFERENCE)) {
    const into = /^T/.test(match[1] ?? '') ? tables : figures;
    for (const number of match[0].slice((match[1] ?? '').length).matchAll(/\d+/g))
      into.add(Number(number[0]));
  }
  return { figures: [...figures].sort((a, b) => a - b), tables: [...tables].sort((a, b) => a - b) };
}
