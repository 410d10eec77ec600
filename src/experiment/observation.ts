import { z } from 'zod';

/**
 * The state of a tracked run, lowercase as W&B reports it. The local tracker reports `running`, `finished`,
 * `crashed` or `failed`; `unknown` is for a tracker that cannot tell.
 */
export const RunState = z.enum([
  'pending',
  'running',
  'finished',
  'crashed',
  'failed',
  'killed',
  'preempting',
  'preempted',
  'unknown',
]);
/** The state of a tracked run, lowercase as W&B reports it. */
export type RunState = z.infer<typeof RunState>;

/** States in which a run's process is alive and keeps heartbeating. */
const LIVE_STATES: ReadonlySet<RunState> = new Set(['running', 'preempting']);

/**
 * How alive a tracked run looked when it was read. W&B keeps a run `running` until its process reports the end
 * or W&B gives up on its heartbeats, which some servers do late or never; so a run still `running` (or
 * `preempting`) whose last heartbeat is older than the threshold is `stale`: its process most likely crashed.
 */
export const RunLiveness = z.object({
  /** The state the tracker reports. */
  state: RunState,
  /** The run's last heartbeat, ISO 8601 (W&B `heartbeatAt`). */
  heartbeat_at: z.string().optional(),
  /** Seconds from the last heartbeat to when the run was read (the tracker's clock against ours). */
  heartbeat_age_seconds: z.number().nonnegative().optional(),
  /** Alive by its state, but silent for longer than `stale_after_seconds`. */
  stale: z.boolean(),
  /** The threshold it was judged by, in seconds; absent when staleness was not judged. */
  stale_after_seconds: z.number().nonnegative().optional(),
});
/** How alive a tracked run looked when it was read. */
export type RunLiveness = z.infer<typeof RunLiveness>;

/**
 * Judges a run's liveness at `nowMs` (epoch milliseconds): stale when its state is alive (`running`,
 * `preempting`) and its last heartbeat is more than `staleAfterSeconds` old. `0` never calls a run stale.
 */
export function runLivenessOf(
  run: { state: RunState; heartbeatAt?: string | undefined },
  nowMs: number,
  staleAfterSeconds: number,
): RunLiveness {
  const heartbeatMs = run.heartbeatAt === undefined ? Number.NaN : Date.parse(run.heartbeatAt);
  const age = Number.isNaN(heartbeatMs) ? undefined : Math.max(0, Math.round((nowMs - heartbeatMs) / 1000));
  return {
    state: run.state,
    ...(run.heartbeatAt !== undefined ? { heartbeat_at: run.heartbeatAt } : {}),
    ...(age !== undefined ? { heartbeat_age_seconds: age } : {}),
    stale:
      staleAfterSeconds > 0 && LIVE_STATES.has(run.state) && age !== undefined && age > staleAfterSeconds,
    stale_after_seconds: staleAfterSeconds,
  };
}

/**
 * A run's state for people: the state, or for a stale run `running but stale: no heartbeat for 3 h 12 min,
 * more than the 15 min allowed, so it probably crashed`.
 */
export function describeRunLiveness(liveness: RunLiveness): string {
  if (!liveness.stale) return liveness.state;
  return (
    `${liveness.state} but stale: no heartbeat for ${formatAge(liveness.heartbeat_age_seconds ?? 0)}, ` +
    `more than the ${formatAge(liveness.stale_after_seconds ?? 0)} allowed, so it probably crashed`
  );
}

/** Seconds as people read an age: `3 h 12 min`, `15 min`, `40 s`. */
function formatAge(seconds: number): string {
  const minutes = Math.floor(seconds / 60);
  if (minutes >= 60) return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  return minutes >= 1 ? `${minutes} min` : `${Math.round(seconds)} s`;
}

/**
 * What one metric's history came to, computed by the activity while it streams the history, so that a
 * threshold never needs the history itself. `min` and `max` are over finite values only.
 */
export const MetricAggregate = z.object({
  /** Rows that held this metric (finite or not). */
  count: z.number().int().nonnegative(),
  /** The last value logged; `null` when it was NaN or infinite (a diverged run). */
  final: z.number().nullable(),
  /** The smallest finite value; `null` when there was none. */
  min: z.number().nullable(),
  /** The largest finite value; `null` when there was none. */
  max: z.number().nullable(),
  /** Rows whose value was NaN or infinite. */
  non_finite: z.number().int().nonnegative().default(0),
});
/** What one metric's history came to: count, final, min, max. */
export type MetricAggregate = z.infer<typeof MetricAggregate>;

/** What the activity found when it looked for one file of the run directory or one tracked artifact. */
export const ProbeResult = z.object({
  /** The file path (relative to the run directory) or the artifact name, as the deliverable names it. */
  name: z.string().min(1),
  /** Whether `name` is a file of the run directory or an artifact of the tracker. */
  kind: z.enum(['file', 'artifact']),
  /** Whether it is there. */
  exists: z.boolean(),
  /** Whether it was read and parsed in the requested format; absent when loading was not asked for. */
  loadable: z.boolean().optional(),
  /** Whether its content (for an artifact: its manifest) downloaded; absent when not asked for. */
  downloadable: z.boolean().optional(),
  /** The tracker's state of an artifact, e.g. W&B's `COMMITTED`, `PENDING`, `DELETED`. */
  state: z.string().optional(),
  /** Size in bytes, when known. */
  size_bytes: z.number().nonnegative().optional(),
  /** Why loading or downloading failed, in the words of the underlying error. */
  error: z.string().optional(),
});
/** What the activity found when it looked for one file or artifact. */
export type ProbeResult = z.infer<typeof ProbeResult>;

/** A JSON value as trackers return it in summaries and configs. */
const TrackedValue = z.json();

/**
 * Everything deliverable rules look at, gathered by the validation activity from the tracker and the run
 * directory (see `probesFor` for what to gather). Plain data: the rules themselves are pure.
 */
export const RunObservation = z.object({
  /** Where the run can be found: a W&B URL or a local run directory. Shown in reports. */
  run: z.string().optional(),
  /** The run's state. */
  state: RunState,
  /** Its last heartbeat and whether it went stale, when the tracker judges that (W&B). */
  liveness: RunLiveness.optional(),
  /**
   * Whether the tracker holds everything the trainer logged (W&B: the summary and files synced). Absent means
   * the tracker cannot tell; `synced_and_downloadable` then relies on the run having finished.
   */
  synced: z.boolean().optional(),
  /** The run summary: last logged value per key (W&B `summaryMetrics`). */
  summary: z.record(z.string(), TrackedValue).default({}),
  /** The config the run recorded, with W&B's `{ value }` wrappers already removed. */
  config: z.record(z.string(), TrackedValue).default({}),
  /** Every key that appears in the run's history (W&B `historyKeys.keys`). */
  history_keys: z.array(z.string()).default([]),
  /** Per metric: final, min and max over the history, for the metrics `probesFor` asked about. */
  aggregates: z.record(z.string(), MetricAggregate).default({}),
  /** Files and artifacts the activity looked for. */
  probes: z.array(ProbeResult).default([]),
  /** Names of every artifact the run logged, when `probesFor` asked for all artifacts. */
  artifact_names: z.array(z.string()).optional(),
});
/** Everything deliverable rules look at, gathered by the validation activity. */
export type RunObservation = z.infer<typeof RunObservation>;
/** A {@link RunObservation} as an activity writes it, before defaults. */
export type RunObservationInput = z.input<typeof RunObservation>;

/**
 * One row of a run's history, as trackers return it: `_step` and metric values by name. Values are
 * numbers, or what JSON made of non-finite ones (`null`, `"NaN"`, `"Infinity"`); other keys are ignored.
 */
export type HistoryRow = Readonly<Record<string, unknown>>;

/**
 * Reads a metric value from a history row or summary: a number as is, `"NaN"`/`"Infinity"`/`"-Infinity"`
 * (how W&B and Python's json write non-finite floats) as the non-finite number, anything else `undefined`.
 */
export function readMetricValue(raw: unknown): number | undefined {
  if (typeof raw === 'number') return raw;
  if (typeof raw !== 'string') return undefined;
  switch (raw.trim().toLowerCase()) {
    case 'nan':
      return Number.NaN;
    case 'inf':
    case 'infinity':
    case '+infinity':
      return Number.POSITIVE_INFINITY;
    case '-inf':
    case '-infinity':
      return Number.NEGATIVE_INFINITY;
    default:
      return undefined;
  }
}

/**
 * Computes {@link MetricAggregate}s for chosen metrics while history rows stream past, in constant memory
 * per metric: the validation activity feeds it pages and never holds the history.
 */
export class MetricAggregatesAccumulator {
  readonly #aggregates = new Map<string, MetricAggregate>();

  /** @param metrics the metrics to aggregate (from `probesFor(...).metric_aggregates`) */
  constructor(metrics: Iterable<string>) {
    for (const metric of metrics)
      this.#aggregates.set(metric, { count: 0, final: null, min: null, max: null, non_finite: 0 });
  }

  /** Takes one history row, in step order. */
  add(row: HistoryRow): void {
    for (const [metric, aggregate] of this.#aggregates) {
      const value = readMetricValue(row[metric]);
      if (value === undefined) continue;
      aggregate.count += 1;
      if (!Number.isFinite(value)) {
        aggregate.non_finite += 1;
        aggregate.final = null;
        continue;
      }
      aggregate.final = value;
      if (aggregate.min === null || value < aggregate.min) aggregate.min = value;
      if (aggregate.max === null || value > aggregate.max) aggregate.max = value;
    }
  }

  /** The aggregates so far, by metric; a metric never seen has `count: 0` and nulls. */
  result(): Record<string, MetricAggregate> {
    const result: Record<string, MetricAggregate> = {};
    for (const [metric, aggregate] of this.#aggregates) result[metric] = { ...aggregate };
    return result;
  }
}
