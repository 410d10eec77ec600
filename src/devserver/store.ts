/**
 * Write-ahead log for the dev server: every accepted change is appended as one checksummed JSON line
 * (`wal-format.ts`) and fsync'd before the server replies, so a crash (even `kill -9`) loses nothing that a
 * client was told about.
 *
 * One line holds one transaction (every execution it touched), so a torn last line after a crash drops
 * a whole transaction that was never acknowledged. Concurrent transactions share one fsync (group
 * commit). On open the log is replayed and rewritten as a compact snapshot. A damaged record stops the open
 * with a report; `repairDataFile` keeps the intact records before it and moves the rest aside.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import {
  DataFileDamagedError,
  describeProblem,
  encodeRecord,
  plural,
  readDataFile,
  type DamagedRecord,
} from './wal-format';

export class WriteAheadLog {
  private queue: { line: string; resolve: () => void; reject: (error: unknown) => void }[] = [];
  private flushing: Promise<void> | undefined;
  private rewriting = false;
  private rewritten: Promise<void> | undefined;
  /** Bytes appended since the log was last rewritten; the engine compacts when it grows large. */
  appendedBytes = 0;

  private constructor(
    private handle: fs.FileHandle,
    readonly file: string,
  ) {}

  /**
   * Opens (creating if needed) the log at `file`; `replay` receives each intact transaction in order.
   * A directory path means `<dir>/devserver.wal`. Throws `DataFileDamagedError`, before replaying anything and
   * without touching the file, when a record is damaged; an incomplete last record (a crash in the middle of a
   * write, never acknowledged) is dropped with a warning.
   */
  static async open(file: string, replay: (transaction: unknown) => void): Promise<WriteAheadLog> {
    const resolved = await resolveLogFile(file);
    await fs.mkdir(path.dirname(resolved), { recursive: true });
    const bytes = await fs.readFile(resolved).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return Buffer.alloc(0);
      throw error;
    });
    const contents = readDataFile(bytes);
    if (contents.damaged) throw new DataFileDamagedError(resolved, contents.records.length, contents.damaged);
    for (const { transaction, record, offset } of contents.records) {
      try {
        replay(transaction);
      } catch (error) {
        throw new Error(
          `devserver: cannot replay record ${record} (line ${record}, byte offset ${offset}) of ${resolved}: ` +
            `${(error as Error).message}. Move the file away to start with an empty server.`,
          { cause: error },
        );
      }
    }
    const handle = await fs.open(resolved, 'a');
    // Appends go after the last intact record: a torn one would run into them, a missing line break join them.
    if (contents.tornBytes > 0) {
      process.emitWarning(
        `devserver: ignoring a torn last record in ${resolved} (${contents.tornBytes} bytes at byte offset ` +
          `${contents.intactBytes}, a write cut short by a crash)`,
      );
      await handle.truncate(contents.intactBytes);
    }
    if (contents.missingFinalLineBreak) await handle.write('\n');
    if (contents.tornBytes > 0 || contents.missingFinalLineBreak) await handle.datasync();
    return new WriteAheadLog(handle, resolved);
  }

  /** Appends one transaction; resolves once it is on disk. */
  append(transaction: unknown): Promise<void> {
    const line = encodeRecord(transaction);
    this.appendedBytes += Buffer.byteLength(line);
    return new Promise((resolve, reject) => {
      this.queue.push({ line, resolve, reject });
      // During a rewrite appends wait; they follow the snapshot in the new file.
      if (!this.rewriting) this.flushing ??= this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    while (this.queue.length > 0 && !this.rewriting) {
      const batch = this.queue;
      this.queue = [];
      try {
        await this.handle.write(batch.map((entry) => entry.line).join(''));
        await this.handle.datasync();
        for (const entry of batch) entry.resolve();
      } catch (error) {
        for (const entry of batch) entry.reject(error);
      }
    }
    this.flushing = undefined;
  }

  /**
   * Replaces the log by a snapshot: written to a temporary file, fsync'd, then renamed over the log. The
   * snapshot must be taken in the same synchronous step as this call: transactions queued before it are
   * contained in it (and resolve once it is durable); those appended after it follow it in the new file.
   */
  rewrite(transactions: unknown[]): Promise<void> {
    const work = this.rewriteNow(transactions);
    this.rewritten = work.catch(() => undefined);
    return work;
  }

  private async rewriteNow(transactions: unknown[]): Promise<void> {
    this.rewriting = true;
    const covered = this.queue;
    this.queue = [];
    try {
      await this.flushing; // the batch already being written goes to the old file
      await this.replaceFile(transactions);
      for (const entry of covered) entry.resolve();
    } catch (error) {
      for (const entry of covered) entry.reject(error);
      throw error;
    } finally {
      this.rewriting = false;
      this.appendedBytes = 0;
      if (this.queue.length > 0) this.flushing ??= this.flushLoop();
    }
  }

  private async replaceFile(transactions: unknown[]): Promise<void> {
    const temporary = `${this.file}.compact`;
    const out = await fs.open(temporary, 'w');
    try {
      for (const transaction of transactions) await out.write(encodeRecord(transaction));
      await out.datasync();
    } finally {
      await out.close();
    }
    await this.handle.close();
    await fs.rename(temporary, this.file);
    await syncDirectory(this.file);
    this.handle = await fs.open(this.file, 'a');
  }

  async close(): Promise<void> {
    await this.flushing;
    await this.rewritten;
    await this.handle.close();
  }
}

/** What `repairDataFile` did. */
export interface DataFileRepair {
  /** The data file (a directory given as `--db` resolved to the file in it). */
  file: string;
  /** Intact records left in the data file. */
  keptRecords: number;
  keptBytes: number;
  /** Where the damaged record and everything after it went; absent when the file was intact. */
  moved?: { file: string; bytes: number; damaged: DamagedRecord };
  /** What was kept and moved, in sentences for the person who asked for the repair. */
  message: string;
}

/**
 * Repairs a damaged data file: keeps every intact record before the first damaged one and moves that record and
 * everything after it, byte for byte, to `<file>.corrupt-<time>` beside it. Nothing is deleted. An intact file
 * is left as it is. The server must not be running on the file.
 */
export async function repairDataFile(file: string, now = new Date()): Promise<DataFileRepair> {
  const resolved = await resolveLogFile(file);
  const bytes = await fs.readFile(resolved).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
    throw new Error(`devserver --repair: there is no data file at ${resolved}: check the --db path.`);
  });
  const contents = readDataFile(bytes);
  const keptRecords = contents.records.length;
  const { damaged } = contents;
  if (!damaged) {
    const torn =
      contents.tornBytes > 0
        ? ' Its last record is incomplete (a write cut short by a crash); the server drops it on start, as always.'
        : '';
    return {
      file: resolved,
      keptRecords,
      keptBytes: contents.intactBytes,
      message: `The data file ${resolved} is intact (${plural(keptRecords, 'record')}, ${bytes.length} bytes): nothing to repair.${torn}`,
    };
  }
  // The damaged part is on disk beside the file before the file loses it: a crash in between leaves a copy too many.
  const moved = bytes.subarray(damaged.offset);
  const aside = await writeAside(resolved, moved, now);
  const handle = await fs.open(resolved, 'r+');
  try {
    await handle.truncate(damaged.offset);
    await handle.datasync();
  } finally {
    await handle.close();
  }
  const { record, linesAfter } = damaged;
  return {
    file: resolved,
    keptRecords,
    keptBytes: damaged.offset,
    moved: { file: aside, bytes: moved.length, damaged },
    message:
      `Repaired ${resolved}: kept the ${plural(keptRecords, 'intact record')} before record ${record} ` +
      `(${damaged.offset} bytes); moved record ${record} and the ${plural(linesAfter, 'line')} after it ` +
      `(${moved.length} bytes) to ${aside}. What was wrong with record ${record}: ${describeProblem(damaged.problem)}.\n` +
      'Start the server again without --repair.',
  };
}

/** Writes `bytes` durably to a new `<file>.corrupt-<time>`, never over an existing file; returns its path. */
async function writeAside(file: string, bytes: Buffer, now: Date): Promise<string> {
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  for (let attempt = 1; ; attempt++) {
    const aside = `${file}.corrupt-${stamp}${attempt > 1 ? `-${attempt}` : ''}`;
    const out = await fs.open(aside, 'wx').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'EEXIST') return undefined;
      throw error;
    });
    if (!out) continue;
    try {
      await out.write(bytes);
      await out.datasync();
    } finally {
      await out.close();
    }
    await syncDirectory(aside);
    return aside;
  }
}

/** Makes a file's creation or renaming durable: fsync of the directory that holds it. */
async function syncDirectory(file: string): Promise<void> {
  const dir = await fs.open(path.dirname(file), 'r');
  await dir.sync().finally(() => dir.close());
}

async function resolveLogFile(file: string): Promise<string> {
  const stat = await fs.stat(file).catch(() => undefined);
  return stat?.isDirectory() ? path.join(file, 'devserver.wal') : file;
}
