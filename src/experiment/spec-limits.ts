/**
 * How big a spec may be. Every limit is far above any real spec (the quickstart is 4 KiB, about 100 keys
 * and list items, 4 levels deep) and low enough that reading, validating and submitting a spec stays fast
 * and fits Temporal. Each is checked before the work it protects.
 */

/**
 * Keys and list items a spec may hold, counted after YAML aliases are expanded. The parsed spec is walked
 * by the schema, the error reporter and every activity that receives it; 10,000 keeps that to
 * milliseconds, and bounds what an alias "bomb" can expand to.
 */
export const MAX_SPEC_ENTRIES = 10_000;

/** How deeply mappings and lists may nest (the quickstart nests 4 levels; the schema needs at most 6). */
export const MAX_SPEC_DEPTH = 32;

/** `12,345`: numbers in limit messages, grouped so that they read at a glance. */
export function formatCount(count: number): string {
  return Number.isFinite(count) ? Math.round(count).toLocaleString('en-US') : 'uncountably many';
}

/**
 * Bytes a spec file may have (UTF-8). The largest real specs are a few KiB; the limit is checked before the
 * YAML parser runs, so a huge file is refused at once.
 */
export const MAX_SPEC_FILE_BYTES = 256 * 1024;

/** The UTF-8 length of a string, in bytes, without encoding it (works in workflow code, which has no Buffer). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code < 0xdc00 && index + 1 < text.length) {
      const next = text.charCodeAt(index + 1);
      // A surrogate pair is one code point of 4 bytes; a lone surrogate is encoded as U+FFFD, 3 bytes.
      if (next >= 0xdc00 && next < 0xe000) {
        bytes += 4;
        index += 1;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/** `512 B`, `256 KiB`, `1.2 MiB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${trimmed(bytes / 1024)} KiB`;
  return `${trimmed(bytes / (1024 * 1024))} MiB`;
}

function trimmed(amount: number): string {
  return Number.isInteger(amount) ? String(amount) : amount.toFixed(1);
}
