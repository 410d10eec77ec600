/**
 * Slack requests already taken, so that a signed request sent again with the same bytes (a replay, which
 * Slack's signature alone accepts for five minutes) changes nothing. Each request is known by its signature
 * and timestamp; they are kept for the acceptance window, in a file when one is given, so that a restarted
 * endpoint still knows them.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

/** How long Slack (and Bolt's check) accept a signed request: five minutes either side of now. */
export const SLACK_ACCEPTANCE_WINDOW_MS = 5 * 60 * 1000;

/** The key of a signed request: a digest of its signature and timestamp headers. */
export function slackRequestKey(signature: string, timestamp: string): string {
  return createHash('sha256').update(`${timestamp}:${signature}`).digest('hex').slice(0, 32);
}

export class SeenRequests {
  /** Request key → when it was first taken (epoch ms). */
  private readonly seen = new Map<string, number>();

  /** @param file where the keys are kept across restarts; without it, in memory only */
  constructor(
    private readonly file?: string,
    private readonly windowMs = SLACK_ACCEPTANCE_WINDOW_MS,
  ) {
    if (file) this.load(file);
  }

  /** Takes `key` if it was not taken within the window: `true` the first time, `false` for a replay. */
  claim(key: string, now = Date.now()): boolean {
    this.forgetOlderThan(now - this.windowMs);
    if (this.seen.has(key)) return false;
    this.seen.set(key, now);
    this.save();
    return true;
  }

  /** Gives `key` back: taking it failed, so the same request sent again should be taken. */
  release(key: string): void {
    if (this.seen.delete(key)) this.save();
  }

  private forgetOlderThan(cutoff: number): void {
    for (const [key, at] of this.seen) if (at < cutoff) this.seen.delete(key);
  }

  private load(file: string): void {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    try {
      const entries = JSON.parse(text) as Record<string, unknown>;
      for (const [key, at] of Object.entries(entries)) if (typeof at === 'number') this.seen.set(key, at);
    } catch (error) {
      throw new Error(
        `${file} (Slack requests already taken) is not valid JSON: ${(error as Error).message}. ` +
          'Delete it to start afresh; requests replayed within five minutes may then be taken again.',
        { cause: error },
      );
    }
  }

  /** Written to a temporary file and renamed, so a crash leaves the old list or the new one, never half. */
  private save(): void {
    if (!this.file) return;
    mkdirSync(path.dirname(this.file), { recursive: true });
    const temporary = `${this.file}.${process.pid}.tmp`;
    writeFileSync(temporary, JSON.stringify(Object.fromEntries(this.seen)));
    renameSync(temporary, this.file);
  }
}
