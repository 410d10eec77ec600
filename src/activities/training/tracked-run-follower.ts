/**
 * Following a tracked run (W&B) while its training process runs: the run's state and heartbeat go into the
 * watcher's heartbeats and exit report, and a run that stops heartbeating while its process still runs —
 * a trainer hung in a collective, a dead data loader — is noticed, so the watcher can stop it instead of
 * holding a GPU forever.
 *
 * Staleness is measured on this machine's clock, from when the tracker's `heartbeatAt` last *changed*, not
 * by comparing the tracker's clock with ours; and only after the run was seen heartbeating during this
 * watch, so a relaunch is not judged by the heartbeats of the attempt before it.
 */
import type { RunRef, RunState, RunTracker } from '../tracking/run-tracker';

/** What the watcher last learnt about the tracked run. Plain JSON: it goes into heartbeats. */
export interface TrackedRunObservation {
  /** The tracker's state of the run; absent until it was read once. */
  state?: RunState;
  /** The run's last heartbeat as the tracker reports it, ISO 8601. */
  heartbeatAt?: string;
  /** When the tracker was last asked, ISO 8601 (this machine's clock). */
  checkedAt: string;
  /** Why the last question failed (the run does not exist yet, W&B unreachable); following goes on. */
  error?: string;
  /** Seconds since the heartbeat last changed, once it was seen changing. */
  silentSeconds?: number;
}

/** Options of {@link TrackedRunFollower}. */
export interface TrackedRunFollowerOptions {
  /** Least time between two questions to the tracker, in milliseconds (W&B rate-limits). */
  intervalMs: number;
  /**
   * How long the run may go without a new heartbeat, while W&B still calls it running (or has given up on
   * it as crashed), before it counts as stalled, in milliseconds. `0` never counts it stalled.
   */
  stallTimeoutMs: number;
  /** The clock, for tests. Default `Date.now`. */
  now?: () => number;
}

/** States in which a live trainer keeps heartbeating; in the others it has said it is done. */
const HEARTBEATING_STATES: ReadonlySet<RunState> = new Set(['running', 'crashed']);

export class TrackedRunFollower {
  private readonly now: () => number;
  private lastAskedAt = Number.NEGATIVE_INFINITY;
  private lastHeartbeat: string | undefined;
  /** Local time at which `heartbeatAt` was last seen changing, once it has been. */
  private heartbeatChangedAt: number | undefined;
  private observation: TrackedRunObservation | undefined;

  constructor(
    private readonly tracker: Pick<RunTracker, 'runState'>,
    private readonly ref: RunRef,
    private readonly options: TrackedRunFollowerOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** What was last learnt; undefined before the first poll. */
  get latest(): TrackedRunObservation | undefined {
    return this.observation;
  }

  /**
   * Asks the tracker for the run's state, unless it was asked less than `intervalMs` ago (or `force`).
   * Never throws: a failed question is recorded in `error`, and following goes on.
   */
  async poll(force = false): Promise<TrackedRunObservation | undefined> {
    const now = this.now();
    if (!this.tracker.runState || (!force && now - this.lastAskedAt < this.options.intervalMs)) {
      return this.observation;
    }
    this.lastAskedAt = now;
    const checkedAt = new Date(now).toISOString();
    try {
      const { state, heartbeatAt } = await this.tracker.runState(this.ref);
      if (
        heartbeatAt !== undefined &&
        this.lastHeartbeat !== undefined &&
        heartbeatAt !== this.lastHeartbeat
      ) {
        this.heartbeatChangedAt = now;
      }
      if (heartbeatAt !== undefined) this.lastHeartbeat = heartbeatAt;
      this.observation = { state, ...(heartbeatAt ? { heartbeatAt } : {}), checkedAt, ...this.silence(now) };
    } catch (error) {
      this.observation = {
        ...(this.observation ?? {}),
        checkedAt,
        error: error instanceof Error ? error.message : String(error),
        ...this.silence(now),
      };
    }
    return this.observation;
  }

  /**
   * Why the run counts as stalled, in a sentence, or undefined when it does not: it was seen heartbeating
   * during this watch, the tracker still calls it running (or crashed), and no new heartbeat came for
   * `stallTimeoutMs`.
   */
  stallReason(): string | undefined {
    const { stallTimeoutMs } = this.options;
    const state = this.observation?.state;
    if (stallTimeoutMs <= 0 || this.heartbeatChangedAt === undefined || !state) return undefined;
    if (!HEARTBEATING_STATES.has(state)) return undefined;
    const silentMs = this.now() - this.heartbeatChangedAt;
    if (silentMs < stallTimeoutMs) return undefined;
    const run = `${this.ref.entity ?? ''}/${this.ref.project ?? ''}/${this.ref.runId ?? this.ref.experimentId}`;
    return (
      `the W&B run ${run} stopped heartbeating (last heartbeat ${this.lastHeartbeat ?? 'unknown'}, ` +
      `${Math.round(silentMs / 1000)} s without a new one; W&B state ${state}) while the training process ` +
      'still ran, so Labline stopped the process as hung'
    );
  }

  private silence(now: number): { silentSeconds?: number } {
    return this.heartbeatChangedAt === undefined
      ? {}
      : { silentSeconds: Math.round((now - this.heartbeatChangedAt) / 1000) };
  }
}
