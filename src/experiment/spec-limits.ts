/**
 * How big a spec may be. Every limit is far above any real spec (the quickstart is 4 KiB, about 100 keys
 * and list items, 4 levels deep) and low enough that reading, validating and submitting a spec stays fast
 * and fits Temporal. Each is checked before the work it protects.
 */
import type { z } from 'zod';
import type { LocateSpecPath, SpecError } from './spec-errors';
import { formatSpecPath } from './spec-errors';

/**
 * Bytes a spec file may have (UTF-8). The largest real specs are a few KiB; the limit is checked before the
 * YAML parser runs, so a huge file is refused at once.
 */
export const MAX_SPEC_FILE_BYTES = 256 * 1024;

/**
 * Keys and list items a spec may hold, counted after YAML aliases are expanded. The parsed spec is walked
 * by the schema, the error reporter and every activity that receives it; 10,000 keeps that to
 * milliseconds, and bounds what an alias "bomb" can expand to.
 */
export const MAX_SPEC_ENTRIES = 10_000;

/** How deeply mappings and lists may nest (the quickstart nests 4 levels; the schema needs at most 6). */
export const MAX_SPEC_DEPTH = 32;

/**
 * Bytes the parsed spec may take once encoded as Temporal encodes it (JSON, UTF-8). Temporal refuses a
 * payload over 2 MiB and warns from 512 KiB (`limit.blobSize.error` and `.warn`, server defaults), and the
 * spec is copied into the workflow input, into activity inputs and into campaign children: 512 KiB keeps
 * each copy under the warning and the history far from its limits.
 */
export const MAX_ENCODED_SPEC_BYTES = 512 * 1024;

/**
 * Bytes the whole workflow input (spec, settings, rerun name) may take once encoded: half of Temporal's
 * default 2 MiB payload limit, so that a server configured below the default still takes it. A spec within
 * {@link MAX_ENCODED_SPEC_BYTES} leaves the settings 512 KiB.
 */
export const MAX_WORKFLOW_INPUT_BYTES = 1024 * 1024;

/**
 * Bytes of the spec's short labels once encoded: `name` (the run's summary in Temporal, followed by the
 * rerun name; Temporal caps a summary at 400 bytes, `limit.userMetadataSummarySize`) and
 * `metadata.researcher` and `metadata.project` (search attributes, which Temporal caps at 2 KiB each).
 */
export const MAX_LABEL_BYTES = 200;

/**
 * Bytes of the hypothesis once encoded. It goes into the run's details in Temporal (capped at 20,000
 * bytes, `limit.userMetadataDetailsSize`) and into its memo, next to a copy in the workflow input.
 */
export const MAX_HYPOTHESIS_BYTES = 16 * 1024;

/** `12,345`: numbers in limit messages, grouped so that they read at a glance. */
export function formatCount(count: number): string {
  return Number.isFinite(count) ? Math.round(count).toLocaleString('en-US') : 'more than can be counted';
}

/**
 * `512 B`, `256 KiB`, `1.2 MiB`, rounded up to a tenth, so that a size just over a limit never reads as the
 * limit itself (1 MiB and 2 bytes is `1.1 MiB`).
 */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${tenthsUp(bytes / 1024)} KiB`;
  return `${tenthsUp(bytes / (1024 * 1024))} MiB`;
}

function tenthsUp(amount: number): string {
  const tenths = Math.ceil(amount * 10) / 10;
  return Number.isInteger(tenths) ? String(tenths) : tenths.toFixed(1);
}

/** The UTF-8 length of a string, in bytes, without encoding it (works in workflow code, which has no Buffer). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (isHighSurrogate(code) && isLowSurrogate(text.charCodeAt(index + 1))) {
      bytes += 4; // a surrogate pair is one code point
      index += 1;
    } else bytes += 3; // a lone surrogate is encoded as U+FFFD
  }
  return bytes;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code < 0xdc00;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code < 0xe000;
}

/** The bytes of a string as a JSON string literal, quotes included, in UTF-8 (as `JSON.stringify` writes it). */
function jsonStringLength(text: string): number {
  let bytes = 2;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code === 0x22 || code === 0x5c || code === 0x08 || code === 0x0c || code === 0x0a) bytes += 2;
    else if (code === 0x0d || code === 0x09) bytes += 2;
    else if (code < 0x20)
      bytes += 6; // \u00XX
    else if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (isHighSurrogate(code) && isLowSurrogate(text.charCodeAt(index + 1))) {
      bytes += 4;
      index += 1;
    } else if (isHighSurrogate(code) || isLowSurrogate(code))
      bytes += 6; // a lone surrogate is escaped
    else bytes += 3;
  }
  return bytes;
}

/**
 * The bytes `value` takes once encoded as Temporal's default payload converter encodes it: JSON, UTF-8.
 * Measured without building the JSON, which for a spec full of aliases could be larger than memory; the
 * walk stops as soon as the count passes `stopAbove` (the result is then some number above it).
 */
export function encodedSize(value: unknown, stopAbove = Infinity): number {
  let bytes = 0;
  const open = new Set<object>();
  const visit = (node: unknown, inArray: boolean): void => {
    if (bytes > stopAbove) return;
    if (
      typeof node === 'object' &&
      node !== null &&
      typeof (node as { toJSON?: unknown }).toJSON === 'function'
    ) {
      node = (node as { toJSON(): unknown }).toJSON();
    }
    if (node === null) bytes += 4;
    else if (typeof node === 'string') bytes += jsonStringLength(node);
    else if (typeof node === 'number') bytes += Number.isFinite(node) ? String(node).length : 4;
    else if (typeof node === 'boolean') bytes += node ? 4 : 5;
    else if (typeof node !== 'object')
      bytes += inArray ? 4 : 0; // undefined, functions: null in a list, dropped elsewhere
    else if (open.has(node))
      bytes = Infinity; // a cycle: JSON cannot encode it at all
    else {
      open.add(node);
      if (Array.isArray(node)) {
        bytes += 2 + Math.max(0, node.length - 1);
        for (const item of node as unknown[]) visit(item, true);
      } else {
        const entries = Object.entries(node).filter(([, item]) => isEncoded(item));
        bytes += 2 + Math.max(0, entries.length - 1);
        for (const [key, item] of entries) {
          bytes += jsonStringLength(key) + 1;
          visit(item, false);
        }
      }
      open.delete(node);
    }
  };
  visit(value, false);
  return bytes;
}

/** Whether JSON keeps an object's property (it drops undefined, functions and symbols). */
function isEncoded(value: unknown): boolean {
  return value !== undefined && typeof value !== 'function' && typeof value !== 'symbol';
}

/** Sizes above this are reported as "more than"; measuring further would only cost time. */
const MEASURE_UP_TO = 64 * MAX_WORKFLOW_INPUT_BYTES;

/**
 * The path of the part that makes a value big: the child holding more than half of it, then its child
 * holding more than half of that, and so on; with the bytes of that part.
 */
function largestPart(value: unknown, total: number): { path: PropertyKey[]; bytes: number } {
  const path: PropertyKey[] = [];
  let node = value;
  let bytes = total;
  while (typeof node === 'object' && node !== null) {
    let largest: { key: PropertyKey; item: unknown; bytes: number } | undefined;
    const entries: [PropertyKey, unknown][] = Array.isArray(node)
      ? node.map((item: unknown, index) => [index, item])
      : Object.entries(node);
    for (const [key, item] of entries) {
      const size = encodedSize(item, bytes);
      if (size > (largest?.bytes ?? 0)) largest = { key, item, bytes: size };
    }
    if (!largest || largest.bytes * 2 <= bytes) break;
    path.push(largest.key);
    node = largest.item;
    bytes = largest.bytes;
  }
  return { path, bytes };
}

function describeBytes(bytes: number): string {
  return bytes > MEASURE_UP_TO ? `more than ${formatBytes(MEASURE_UP_TO)}` : formatBytes(bytes);
}

/** What to tell a user whose spec is too big: where large data belongs. */
export const LARGE_DATA_HINT =
  'keep large data (grids, tables, lists of files, long texts) in files the trainer reads, and name them here';

/**
 * Checks that a parsed spec, encoded as Temporal will carry it, stays within {@link MAX_ENCODED_SPEC_BYTES}.
 * The error points at the part that makes it big (with its position, through `locate`, when known).
 */
export function encodedSpecSizeProblem(spec: unknown, locate?: LocateSpecPath): SpecError | undefined {
  const total = encodedSize(spec, MEASURE_UP_TO);
  if (total <= MAX_ENCODED_SPEC_BYTES) return undefined;
  const limit = `a spec may take at most ${formatBytes(MAX_ENCODED_SPEC_BYTES)}`;
  const part = largestPart(spec, total);
  const error: SpecError =
    part.path.length === 0
      ? { path: '', problem: `takes ${describeBytes(total)} once encoded; ${limit}`, hint: LARGE_DATA_HINT }
      : {
          path: formatSpecPath(part.path),
          problem: `holds ${describeBytes(part.bytes)} of the ${describeBytes(total)} the spec takes once encoded; ${limit}`,
          hint: LARGE_DATA_HINT,
        };
  return { ...error, ...locate?.(part.path) };
}

/**
 * Checks that a workflow's input, encoded as Temporal will carry it, stays within
 * {@link MAX_WORKFLOW_INPUT_BYTES}, so that an oversized input is refused before anything starts instead of
 * failing at the server. The error names the input's largest part.
 */
export function workflowInputSizeProblem(input: unknown): SpecError | undefined {
  const total = encodedSize(input, MEASURE_UP_TO);
  if (total <= MAX_WORKFLOW_INPUT_BYTES) return undefined;
  const part = largestPart(input, total);
  return {
    path: '',
    problem:
      `the workflow input takes ${describeBytes(total)} once encoded; Labline sends at most ` +
      `${formatBytes(MAX_WORKFLOW_INPUT_BYTES)} (Temporal refuses more than 2 MiB by default)`,
    hint:
      (part.path.length > 0 ? `${formatSpecPath(part.path)} holds ${describeBytes(part.bytes)}; ` : '') +
      LARGE_DATA_HINT,
  };
}

/**
 * A refinement for a text field: at most `max` bytes once encoded, with `why` as the hint. Registered on the
 * field's schema, so the limit is stated where the field is.
 */
export function atMostBytes(
  max: number,
  why: string,
): (text: string, ctx: z.core.$RefinementCtx<string>) => void {
  return (text, ctx) => {
    // The encoded string without its two quotes: what the user wrote, with JSON's escapes.
    const bytes = jsonStringLength(text) - 2;
    if (bytes > max) {
      ctx.addIssue({
        code: 'custom',
        message: `is ${formatBytes(bytes)} long; at most ${formatBytes(max)} is allowed`,
        params: { hint: why },
      });
    }
  };
}
