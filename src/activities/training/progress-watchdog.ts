/**
 * Notices a hung trainer: its process lives, but no new metric has arrived for the spec's
 * `training.stall_timeout`. Works for every launcher and tracker, since every trainer writes its metrics to
 * the run directory (see progress.ts); the W&B follower watches the tracked run's heartbeat besides.
 */
import { formatDuration } from '../../experiment';
import type { TrainingProgress } from './launcher';

export class ProgressWatchdog {
  private latest: string | undefined;
  private changedAt: number;

  /** @param stallTimeoutMs how long without a new metric counts as hung; `0` never does */
  constructor(
    private readonly stallTimeoutMs: number,
    now = Date.now(),
  ) {
    this.changedAt = now;
  }

  /**
   * Records the trainer's latest metric (its step, loss and time tell one row from the next) and says why
   * the trainer counts as hung, or `undefined` while it does not. The clock starts when the watcher does,
   * so a watcher that re-attaches after a worker restart gives the trainer the whole timeout again.
   */
  observe(progress: TrainingProgress | undefined, now = Date.now()): string | undefined {
    const row = JSON.stringify(progress ?? null);
    if (row !== this.latest) {
      // The first look is the baseline (a metric from before may be on disk), not a new metric.
      if (this.latest !== undefined) this.changedAt = now;
      this.latest = row;
      return undefined;
    }
    const silentMs = now - this.changedAt;
    if (this.stallTimeoutMs <= 0 || silentMs < this.stallTimeoutMs) return undefined;
    return (
      `no new metric for ${formatDuration(silentMs / 1000)} while the training process ran ` +
      `(training.stall_timeout is ${formatDuration(this.stallTimeoutMs / 1000)}); stopped as hung`
    );
  }
}
