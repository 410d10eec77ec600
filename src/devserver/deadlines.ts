/**
 * Wall-clock deadlines by key: the dev server's durable timers, activity and task timeouts all land here.
 * A deadline is only a wake-up call: its callback re-reads the execution and decides whether it still
 * applies, so a stale deadline after a restart or a retry is harmless.
 */

// setTimeout clamps delays above 2^31-1 ms to 1 ms; longer deadlines are re-armed in steps.
const maxTimerDelayMs = 2_147_483_647;

export class Deadlines {
  private readonly pending = new Map<string, { at: number; handle: NodeJS.Timeout }>();
  private stopped = false;

  constructor(private readonly now: () => number = Date.now) {}

  /** Arms (or re-arms) the deadline `key` at epoch-millisecond `at`. */
  set(key: string, at: number, onDue: () => void): void {
    this.clear(key);
    if (this.stopped) return;
    const delay = Math.min(Math.max(0, at - this.now()), maxTimerDelayMs);
    const handle = setTimeout(() => {
      this.pending.delete(key);
      if (at > this.now()) this.set(key, at, onDue);
      else onDue();
    }, delay);
    this.pending.set(key, { at, handle });
  }

  clear(key: string): void {
    const entry = this.pending.get(key);
    if (entry) {
      clearTimeout(entry.handle);
      this.pending.delete(key);
    }
  }

  /** Clears every deadline whose key starts with `prefix` (all of one execution's, say). */
  clearPrefix(prefix: string): void {
    for (const key of [...this.pending.keys()]) if (key.startsWith(prefix)) this.clear(key);
  }

  has(key: string): boolean {
    return this.pending.has(key);
  }

  stop(): void {
    this.stopped = true;
    for (const key of [...this.pending.keys()]) this.clear(key);
  }
}
