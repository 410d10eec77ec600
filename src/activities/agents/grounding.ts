// How numbers are written into generated text, and how a number found in text is traced back to the computed
// value it came from. Pure (no I/O): the offline writers format with it, the report lists its traces. The
// grounding check of issue 6 (in src/experiment) takes over the checking; the formatting stays shared so
// that text written offline always passes it.

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
  /** As written, e.g. `0.3127`, `-12.5%`, `1e-7`. */
  text: string;
  /** Its value; for a percentage, the number before the `%` (`12.5` for `12.5%`). */
  value: number;
  /** Whether it was written as a percentage. */
  percent: boolean;
}

// A number standing on its own: not part of a word or identifier (`f1`, `resnet50`, `exp-lr-03`), a path
// (`step-100.json`) or a duration (`1h30m`). The lookbehind covers the sign too, so `a-3` is not `-3`.
const NUMBER = /(?<![\w.\-/])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?%?(?![\w/]|\.\d)/gi;

// Markdown that is not prose: code spans and blocks (ids, dates, file names), and link or image targets.
const NOT_PROSE = /```[\s\S]*?```|`[^`\n]*`|\]\([^)\s]*\)/g;

/**
 * The numbers written in a text, in order. Numbers inside Markdown code spans or blocks and link targets
 * are not counted: Labline writes identifiers, dates and paths there, never results.
 */
export function numbersInText(text: string): NumberMention[] {
  const prose = text.replace(NOT_PROSE, ' ');
  const mentions: NumberMention[] = [];
  for (const match of prose.matchAll(NUMBER)) {
    const written = match[0];
    const percent = written.endsWith('%');
    const value = Number(percent ? written.slice(0, -1) : written);
    if (Number.isFinite(value)) mentions.push({ text: written, value, percent });
  }
  return mentions;
}

/** Significant digits shown in a written number (`0.3127` → 4, `1.50` → 3, `1200` → 2). */
function shownDigits(text: string): number {
  const mantissa = text.replace(/^-/, '').replace(/%$/, '').split(/e/i)[0] ?? '';
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
export function mentionMatches(mention: NumberMention, value: number, options: MatchOptions = {}): boolean {
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
  return IDENTIFIER.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`;
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
export interface NumberTrace {
  /** As written. */
  text: string;
  /** The facts path of a value it stands for, e.g. `analysis.metrics["eval/loss"].final`; `null` when none does. */
  source: string | null;
}

/**
 * Traces every distinct number of a text back to the facts: the first value (in the order of `sources`, then
 * of the facts themselves) that the number stands for exactly, else the first it stands for rounded (see
 * {@link mentionMatches}; sign ignored, since prose says "worsened" or "improved" in words). Numbers of
 * Markdown code and link targets are skipped (see {@link numbersInText}).
 *
 * @param sources facts by name, e.g. `{ analysis, validation, results, spec }`; names start the paths
 */
export function traceNumbers(text: string, sources: Readonly<Record<string, unknown>>): NumberTrace[] {
  const leaves: Leaf[] = [];
  for (const [name, facts] of Object.entries(sources)) collectLeaves(facts, name, leaves);
  const traces = new Map<string, NumberTrace>();
  for (const mention of numbersInText(text)) {
    if (traces.has(mention.text)) continue;
    const leaf =
      leaves.find((candidate) =>
        mentionMatches(mention, candidate.value, { rounded: false, ignoreSign: true }),
      ) ?? leaves.find((candidate) => mentionMatches(mention, candidate.value, { ignoreSign: true }));
    traces.set(mention.text, { text: mention.text, source: leaf?.path ?? null });
  }
  return [...traces.values()];
}
