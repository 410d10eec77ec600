// Value conversions the query language needs: datetimes, durations, full-text tokens, and the string
// order used for Keyword comparisons.

/**
 * Orders strings by Unicode code point, which is the order of their UTF-8 bytes: what SQLite's BINARY
 * collation and Elasticsearch's keyword sort use. JavaScript's `<` compares UTF-16 code units instead,
 * which puts characters above U+FFFF before U+E000–U+FFFF.
 */
export function compareCodePoints(a: string, b: string): number {
  const left = a[Symbol.iterator]();
  const right = b[Symbol.iterator]();
  for (;;) {
    const x = left.next();
    const y = right.next();
    if (x.done === true || y.done === true) return x.done === y.done ? 0 : x.done === true ? -1 : 1;
    const cx = x.value.codePointAt(0) ?? 0;
    const cy = y.value.codePointAt(0) ?? 0;
    if (cx !== cy) return cx < cy ? -1 : 1;
  }
}

const rfc3339 =
  /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]{1,9}))?(Z|([+-])([0-9]{2}):([0-9]{2}))$/;

/**
 * Parses an RFC 3339 timestamp the way Go's `time.Parse(time.RFC3339Nano, …)` does (an upper-case `T`,
 * a zone `Z` or `±hh:mm`, up to nine fraction digits), and returns epoch milliseconds, with any
 * sub-millisecond part as a fraction. Returns undefined when the text is not such a timestamp.
 */
export function parseRfc3339Millis(text: string): number | undefined {
  const m = rfc3339.exec(text);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMinutes = 0;
  if (m[8] !== 'Z') {
    const offsetHours = Number(m[10]);
    const offsetMins = Number(m[11]);
    if (offsetHours > 23 || offsetMins > 59) return undefined;
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMins);
  }
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0–99 to 1900–1999.
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  const fraction = m[7] === undefined ? 0 : Number(`0.${m[7]}`) * 1000;
  return date.getTime() - offsetMinutes * 60_000 + fraction;
}

function daysInMonth(year: number, month: number): number {
  const days = [31, isLeapYear(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  return days[month - 1] ?? 0;
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/**
 * Epoch nanoseconds written as an integer literal (Temporal reads an integer Datetime value as
 * `time.Unix(0, n)`) → epoch milliseconds. BigInt keeps the conversion exact: nanosecond values near
 * today are above 2^53.
 */
export function nanosTextToMillis(integerText: string): number {
  const nanos = BigInt(integerText);
  return Number(nanos / 1_000_000n) + Number(nanos % 1_000_000n) / 1_000_000;
}

const nanosPerUnit: ReadonlyMap<string, number> = new Map([
  ['ns', 1],
  ['us', 1e3],
  ['µs', 1e3], // U+00B5 micro sign
  ['μs', 1e3], // U+03BC Greek mu
  ['ms', 1e6],
  ['s', 1e9],
  ['m', 60e9],
  ['h', 3600e9],
  ['d', 86_400e9], // Temporal's addition to Go's units: a day is exactly 24 hours
]);

/**
 * An `ExecutionDuration` value given as a string → nanoseconds, accepting what Temporal's
 * `ParseExecutionDurationStr` accepts (temporalio/temporal `common/persistence/visibility/store/query/util.go`):
 * an integer count of nanoseconds (`'1500'`), a Go duration with Temporal's extra `d` unit (`'1h30m'`,
 * `'1.5d'`, `'300ms'`), or `hh:mm:ss` (`'01:30:00'`). Returns undefined otherwise.
 */
export function parseDurationNanos(text: string): number | undefined {
  if (/^[+-]?[0-9]+$/.test(text)) return Number(text);
  return parseGoDuration(text) ?? parseClockDuration(text);
}

function parseGoDuration(text: string): number | undefined {
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') return undefined;
  let total = 0;
  while (rest !== '') {
    // A number, then a unit that runs to the next digit or dot, as in Go's time.ParseDuration.
    const m = /^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([^0-9.]+)/.exec(rest);
    const perUnit = m?.[2] === undefined ? undefined : nanosPerUnit.get(m[2]);
    if (m === null || perUnit === undefined || m[1] === undefined) return undefined;
    total += Number(m[1]) * perUnit;
    rest = rest.slice(m[0].length);
  }
  // Go's Duration is whole nanoseconds; `+ 0` turns -0 into 0.
  return sign * Math.trunc(total) + 0;
}

function parseClockDuration(text: string): number | undefined {
  // Temporal scans with fmt.Sscanf("%d:%d:%d"), which ignores anything after the seconds.
  const m = /^\s*([+-]?[0-9]+):([+-]?[0-9]+):([+-]?[0-9]+)/.exec(text);
  if (m === null) return undefined;
  const [hours, minutes, seconds] = [m[1], m[2], m[3]].map(Number) as [number, number, number];
  if (hours < 0 || minutes < 0 || minutes > 59 || seconds < 0 || seconds > 59) return undefined;
  return ((hours * 60 + minutes) * 60 + seconds) * 1e9;
}

/**
 * Splits text into full-text tokens the way the SQLite store of `temporal server start-dev` indexes
 * Text attributes (FTS5 `unicode61 remove_diacritics 2`, temporalio/temporal
 * `schema/sqlite/v3/visibility/schema.sql`): case-folded, diacritics removed, split at every character
 * that is not a letter, a digit or a private-use character. So `my-business-id-foobar` holds the token
 * `foobar`, as the List Filter docs promise.
 */
export function textTokens(text: string): string[] {
  return text
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .split(/[^\p{L}\p{N}\p{Co}]+/u)
    .filter((token) => token !== '');
}

/** True when `phrase` (a non-empty token list) occurs as consecutive tokens in `tokens`. */
export function containsPhrase(tokens: readonly string[], phrase: readonly string[]): boolean {
  if (phrase.length === 0) return false;
  for (let start = 0; start + phrase.length <= tokens.length; start++) {
    if (phrase.every((token, k) => tokens[start + k] === token)) return true;
  }
  return false;
}
