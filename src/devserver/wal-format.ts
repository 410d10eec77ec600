/**
 * The record format of the dev server's data file (its write-ahead log), and the reading of it: which records
 * are intact, where the first damaged one is, and what a crash in the middle of a write left at the end.
 *
 * One record per line, one transaction per record:
 *
 *     <CRC-32 of the payload, 8 lowercase hex digits> <payload length in bytes, decimal> <payload: JSON>\n
 *     e.g.  3c2d58a4 7 {"n":1}
 *
 * The checksum catches a changed byte in the payload; the length tells a record cut short or run together
 * with the next one (a line break gained or lost) from one whose bytes changed. CRC-32 is `zlib.crc32`, in
 * every Node version the package supports (20.15+, 22.2+). Files written before checksums hold bare JSON lines;
 * they replay as they are, and the first compaction (on every start) rewrites them in this format. A bare line
 * after a checksummed one is damage, not an old record: the log never goes back to the old format.
 */
import { crc32 } from 'node:zlib';

/** Encodes one transaction as a line of the data file, its line break included. */
export function encodeRecord(transaction: unknown): string {
  const json = JSON.stringify(transaction);
  const payload = Buffer.from(json, 'utf8');
  return `${checksumOf(payload)} ${payload.length} ${json}\n`;
}

/** What is wrong with a damaged record. */
export type RecordProblem =
  | { kind: 'checksum mismatch'; stored: string; computed: string }
  | { kind: 'truncated'; declaredBytes: number; foundBytes: number }
  | { kind: 'too long'; declaredBytes: number; foundBytes: number }
  | { kind: 'unparsable'; reason: string };

/** The first damaged record of a data file, and how much of the file follows it. */
export interface DamagedRecord {
  /** 1-based; records are lines, so this is also its line number. */
  record: number;
  /** Byte offset of its first byte in the file. */
  offset: number;
  problem: RecordProblem;
  /** Lines after the damaged record, a torn last one included. */
  linesAfter: number;
  /** How many of those lines are intact records on their own (a hint whether one byte or a whole region broke). */
  intactLinesAfter: number;
  /** Bytes after the damaged record's line. */
  bytesAfter: number;
}

/** An intact record: its transaction and where it is, for messages about it. */
export interface IntactRecord {
  transaction: unknown;
  /** 1-based line number. */
  record: number;
  /** Byte offset of its first byte. */
  offset: number;
}

/** A data file as read: the intact records in order, then possibly a damaged record or a torn last one. */
export interface DataFileContents {
  records: IntactRecord[];
  /** Bytes of the file that hold the intact records: the prefix that stays when the rest goes. */
  intactBytes: number;
  /** The first damaged record; nothing from it on is replayed. */
  damaged?: DamagedRecord;
  /** Bytes of an incomplete last record (a crash in the middle of a write), dropped on open. 0 if none. */
  tornBytes: number;
  /** The last record is whole but lacks its line break, which must be written before anything is appended. */
  missingFinalLineBreak: boolean;
}

const lineBreak = 0x0a;
const header = /^([0-9a-f]{8}) (\d{1,12}) /;
/** What a write cut short in its checksum header leaves: hex digits, then a space and length digits. */
const partialHeader = /^(?:[0-9a-f]{0,8}|[0-9a-f]{8} \d{0,12})$/;

/** Reads a whole data file. Throws nothing: damage is reported in `damaged`. */
export function readDataFile(bytes: Buffer): DataFileContents {
  const contents: DataFileContents = {
    records: [],
    intactBytes: 0,
    tornBytes: 0,
    missingFinalLineBreak: false,
  };
  let checksummed = false;
  let offset = 0;
  for (let record = 1; offset < bytes.length; record++) {
    const end = bytes.indexOf(lineBreak, offset);
    const line = bytes.subarray(offset, end === -1 ? bytes.length : end);
    const next = end === -1 ? bytes.length : end + 1;
    if (line.length === 0) {
      offset = next;
      contents.intactBytes = next;
      continue;
    }
    const decoded = decodeRecord(line, { legacyAllowed: !checksummed });
    if (end === -1) {
      // The last line has no line break: a write cut short by a crash, unless it is a whole record.
      if ('transaction' in decoded) {
        contents.records.push({ transaction: decoded.transaction, record, offset });
        contents.intactBytes = bytes.length;
        contents.missingFinalLineBreak = true;
      } else if (isTornWrite(line, decoded.problem, !checksummed)) {
        contents.tornBytes = line.length;
      } else {
        contents.damaged = damagedRecord(bytes, record, offset, next, decoded.problem);
      }
      break;
    }
    if ('problem' in decoded) {
      contents.damaged = damagedRecord(bytes, record, offset, next, decoded.problem);
      break;
    }
    checksummed ||= decoded.checksummed;
    contents.records.push({ transaction: decoded.transaction, record, offset });
    contents.intactBytes = next;
    offset = next;
  }
  return contents;
}

type Decoded = { transaction: unknown; checksummed: boolean } | { problem: RecordProblem };

function decodeRecord(line: Buffer, options: { legacyAllowed: boolean }): Decoded {
  // Every transaction is a JSON object, so a line starting with `{` is a record from before checksums.
  if (line[0] === '{'.charCodeAt(0)) {
    if (!options.legacyAllowed)
      return {
        problem: { kind: 'unparsable', reason: 'it has no checksum, though the records before it do' },
      };
    return parsePayload(line, false);
  }
  const match = header.exec(line.subarray(0, 32).toString('latin1'));
  if (!match) {
    const expected = 'a checksum header (8 hex digits, a space, the payload length, a space)';
    const reason = options.legacyAllowed
      ? `it starts neither with ${expected} nor with the "{" of a record from before checksums`
      : `it does not start with ${expected}`;
    return { problem: { kind: 'unparsable', reason } };
  }
  const stored = match[1] ?? '';
  const declaredBytes = Number(match[2]);
  const payload = line.subarray(match[0].length);
  if (payload.length < declaredBytes)
    return { problem: { kind: 'truncated', declaredBytes, foundBytes: payload.length } };
  if (payload.length > declaredBytes)
    return { problem: { kind: 'too long', declaredBytes, foundBytes: payload.length } };
  const computed = checksumOf(payload);
  if (computed !== stored) return { problem: { kind: 'checksum mismatch', stored, computed } };
  return parsePayload(payload, true);
}

function parsePayload(payload: Buffer, checksummed: boolean): Decoded {
  try {
    return { transaction: JSON.parse(payload.toString('utf8')), checksummed };
  } catch (error) {
    return {
      problem: { kind: 'unparsable', reason: `its JSON does not parse (${(error as Error).message})` },
    };
  }
}

/**
 * Whether an incomplete last line is what a crash in the middle of appending leaves: a prefix of a record. A
 * record's bytes are written in order, so a cut one is shorter than its header says, or is a cut header; a last
 * line that is too long, or whole with a wrong checksum, was damaged after it was written. Without checksums
 * (an old file) any incomplete last line counts as torn, as it always did.
 */
function isTornWrite(line: Buffer, problem: RecordProblem, legacyAllowed: boolean): boolean {
  if (legacyAllowed && line[0] === '{'.charCodeAt(0)) return true;
  if (problem.kind === 'truncated') return true;
  return line.length <= 21 && partialHeader.test(line.toString('latin1'));
}

function damagedRecord(
  bytes: Buffer,
  record: number,
  offset: number,
  next: number,
  problem: RecordProblem,
): DamagedRecord {
  let linesAfter = 0;
  let intactLinesAfter = 0;
  for (let start = next; start < bytes.length;) {
    const end = bytes.indexOf(lineBreak, start);
    const line = bytes.subarray(start, end === -1 ? bytes.length : end);
    if (line.length > 0) {
      linesAfter++;
      if (end !== -1 && 'transaction' in decodeRecord(line, { legacyAllowed: false })) intactLinesAfter++;
    }
    start = end === -1 ? bytes.length : end + 1;
  }
  return { record, offset, problem, linesAfter, intactLinesAfter, bytesAfter: bytes.length - next };
}

/** The problem in a sentence that follows "record N is damaged:". */
export function describeProblem(problem: RecordProblem): string {
  switch (problem.kind) {
    case 'checksum mismatch':
      return `its checksum does not match its contents (stored ${problem.stored}, computed ${problem.computed}): bytes in it changed after it was written`;
    case 'truncated':
      return `it is truncated: its header declares ${problem.declaredBytes} payload bytes and the line holds ${problem.foundBytes} (a line break where none belongs, or lost bytes)`;
    case 'too long':
      return `it is longer than its header declares (${problem.declaredBytes} payload bytes declared, ${problem.foundBytes} found): its line break is lost, or bytes were added`;
    case 'unparsable':
      return `it is unparsable: ${problem.reason}`;
  }
}

/**
 * A data file that cannot be replayed because a record in it is damaged. The message says where, what is wrong,
 * how much follows, and how to repair the file.
 */
export class DataFileDamagedError extends Error {
  readonly record: number;
  readonly offset: number;
  readonly problem: RecordProblem;

  constructor(
    readonly file: string,
    readonly intactRecords: number,
    readonly damaged: DamagedRecord,
  ) {
    const { record, offset, linesAfter, intactLinesAfter, bytesAfter } = damaged;
    const after =
      linesAfter === 0
        ? 'Nothing follows it.'
        : `After it come ${plural(linesAfter, 'more line')} (${bytesAfter} bytes), ${intactLinesAfter} of them intact records; ` +
          'they are not replayed either, because every record builds on the ones before it.';
    super(
      `devserver: the data file ${file} is damaged at record ${record} (line ${record}, byte offset ${offset}): ` +
        `${describeProblem(damaged.problem)}.\n` +
        `${intactBefore(intactRecords, offset)} ${after}\n` +
        `To keep the intact records and move record ${record} and everything after it to ${file}.corrupt-<time> ` +
        '(nothing is deleted), run\n' +
        `  labline devserver --db ${shellQuote(file)} --repair\n` +
        'then start the server again.',
    );
    this.name = 'DataFileDamagedError';
    this.record = record;
    this.offset = offset;
    this.problem = damaged.problem;
  }
}

function intactBefore(records: number, bytes: number): string {
  if (records === 0) return 'It is the first record.';
  return `The ${plural(records, 'record')} before it (${bytes} bytes) ${records === 1 ? 'is' : 'are'} intact.`;
}

function checksumOf(payload: Buffer): string {
  return crc32(payload).toString(16).padStart(8, '0');
}

export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
