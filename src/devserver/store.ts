/**
 * Write-ahead log for the dev server: every accepted change is appended as one JSON line and fsync'd
 * before the server replies, so a crash (even `kill -9`) loses nothing that a client was told about.
 *
 * One line holds one transaction (every execution it touched), so a torn last line after a crash drops
 * a whole transaction that was never acknowledged. Concurrent transactions share one fsync (group
 * commit). On open the log is replayed and rewritten as a compact snapshot.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

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
   * Opens (creating if needed) the log at `file`; `replay` receives each complete transaction in order.
   * A directory path means `<dir>/devserver.wal`.
   */
  static async open(file: string, replay: (transaction: unknown) => void): Promise<WriteAheadLog> {
    const resolved = await resolveLogFile(file);
    await fs.mkdir(path.dirname(resolved), { recursive: true });
    const text = await fs.readFile(resolved, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
    const lines = text.split('\n');
    // The last element is '' after a complete write, or a torn line after a crash mid-write.
    const torn = lines.pop();
    if (torn) process.emitWarning(`devserver: ignoring a torn last record in ${resolved}`);
    for (const [index, line] of lines.entries()) {
      if (!line) continue;
      try {
        replay(JSON.parse(line));
      } catch (error) {
        throw new Error(
          `devserver: cannot replay ${resolved} line ${index + 1}: ${(error as Error).message}. ` +
            'Move the file away to start with an empty server.',
          { cause: error },
        );
      }
    }
    const handle = await fs.open(resolved, 'a');
    return new WriteAheadLog(handle, resolved);
  }

  /** Appends one transaction; resolves once it is on disk. */
  append(transaction: unknown): Promise<void> {
    const line = JSON.stringify(transaction) + '\n';
    this.appendedBytes += line.length;
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
      for (const transaction of transactions) await out.write(JSON.stringify(transaction) + '\n');
      await out.datasync();
    } finally {
      await out.close();
    }
    await this.handle.close();
    await fs.rename(temporary, this.file);
    const dir = await fs.open(path.dirname(this.file), 'r');
    await dir.sync().finally(() => dir.close());
    this.handle = await fs.open(this.file, 'a');
  }

  async close(): Promise<void> {
    await this.flushing;
    await this.rewritten;
    await this.handle.close();
  }
}

async function resolveLogFile(file: string): Promise<string> {
  const stat = await fs.stat(file).catch(() => undefined);
  return stat?.isDirectory() ? path.join(file, 'devserver.wal') : file;
}
