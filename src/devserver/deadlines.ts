/**
 * Wall-clock deadlines by key: the dev server's durable timers, activity and task timeouts all land here.
 * A deadline is only a wake-up call: its callback re-reads the execution and decides whether it still
 * applies, so a stale deadline after a restart or a retry is harmless.
 *
 * Keys are `<owner>\u0000<name>`: the owner (an execution) groups its deadlines, so clearing one
 * execution's or one activity's deadlines looks only at that owner's, not at every pending deadline.
 */

// setTimeout clamps delays above 2^31-1 ms to 1 ms; longer deadlines are re-armed in steps.
const maxTimerDelayMs = 2_147_483_647;

interface Entry {
  at: number;
  handle: NodeJS.Timeout;
}

const ownerOf = (key: string) => key.slice(0, Math.max(0, key.indexOf('\u0000')));

export class Deadlines {
  private readonly owners = new Map<string, Map<string, Entry>>();
  private stopped = false;

  constructor(private readonly now: () => number = Date.now) {}

  /** Arms (or re-arms) the deadline `key` at epoch-millisecond `at`. */
  set(key: string, at: number, onDue: () => void): void {
    this.clear(key);
    if (this.stopped) return;
    const delay = Math.min(Math.max(0, at - this.now()), maxTimerDelayMs);
    const handle = setTimeout(() => {
      this.remove(key);
      if (at > this.now()) this.set(key, at, onDue);
      else onDue();
    }, delay);
    const owner = ownerOf(key);
    let entries = this.owners.get(owner);
    if (!entries) this.owners.set(owner, (entries = new Map()));
    entries.set(key, { at, handle });
  }

  clear(key: string): void {
    const entry = this.owners.get(ownerOf(key))?.get(key);
    if (entry) {
      clearTimeout(entry.handle);
      this.remove(key);
    }
  }

  private remove(key: string): void {
    const owner = ownerOf(key);
    const entries = this.owners.get(owner);
    entries?.delete(key);
    if (entries?.size === 0) this.owners.delete(owner);
  }

  /** Clears the deadlines of one owner whose names start with `prefix` (`<owner>\u0000<prefix>`). */
  clearPrefix(prefix: string): void {
    for (const key of [...(this.owners.get(ownerOf(prefix))?.keys() ?? [])]) {
      if (key.startsWith(prefix)) this.clear(key);
    }
  }

  /** Clears every deadline of one owner (all of an execution's). */
  clearOwner(owner: string): void {
    for (const key of [...(this.owners.get(owner)?.keys() ?? [])]) this.clear(key);
  }

  has(key: string): boolean {
    return this.owners.get(ownerOf(key))?.has(key) ?? false;
  }

  stop(): void {
    this.stopped = true;
    for (const owner of [...this.owners.keys()]) this.clearOwner(owner);
  }
}
