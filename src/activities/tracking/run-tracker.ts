import { z } from 'zod';
import {
  FailureType,
  RunLiveness,
  wandbRunIdFor,
  type ProbeResult,
  type TrackerSpec,
} from '../../experiment';

/**
 * The RunTracker seam: how Labline reads what a training run recorded (state, config, summary, history,
 * artifacts) to check deliverables and compute the analysis. `local.ts` reads the files the trainer wrote into
 * its run directory; W&B implements the same interface over its API. Vocabulary (states, `_step`,
 * `summary`, artifact states) follows W&B's, so the two answer alike.
 */

/** Which tracker recorded a run. */
export const TrackerKind = z.enum(['local', 'wandb']);
/** Which tracker recorded a run. */
export type TrackerKind = z.infer<typeof TrackerKind>;

/**
 * Which run to read. The experiment id is enough when the tracker is configured with where runs live
 * (local: `<runsRoot>/<experimentId>`; W&B: entity and project, with the experiment id as the run id).
 */
export const RunRef = z.object({
  experimentId: z.string().min(1),
  /** Local: the run directory, overriding `<runsRoot>/<experimentId>`. */
  runDir: z.string().optional(),
  /** W&B: the run id, when it is not the experiment id. */
  runId: z.string().optional(),
  /** W&B: the entity (user or team) that owns the project. */
  entity: z.string().optional(),
  /** W&B: the project holding the run. */
  project: z.string().optional(),
});
/** Which run to read. */
export type RunRef = z.infer<typeof RunRef>;

/**
 * The ref of an experiment's run under the spec's tracker: the run directory for the local tracker; entity,
 * project and the run id derived from the experiment id (see `wandbRunIdFor`) for W&B.
 */
export function runRefFor(tracker: TrackerSpec, experimentId: string, runDir?: string): RunRef {
  const ref: RunRef = { experimentId, ...(runDir !== undefined ? { runDir } : {}) };
  if (tracker.type === 'wandb') {
    return { ...ref, entity: tracker.entity, project: tracker.project, runId: wandbRunIdFor(experimentId) };
  }
  return ref;
}

/**
 * A run's state, in W&B's words: `finished` (exit 0), `failed` (non-zero exit), `crashed` (vanished
 * without an exit: killed hard, machine lost, or W&B stopped hearing from it), `killed` (cancelled),
 * `preempting` (W&B: the trainer announced a preemption and has not exited yet), `preempted` (SIGTERM from
 * outside, to be resumed), `running`, `pending` (nothing ran yet), `unknown` (a state this version of Labline
 * does not know, reported by a newer tracker).
 */
export const RunState = z.enum([
  'pending',
  'running',
  'finished',
  'failed',
  'crashed',
  'killed',
  'preempting',
  'preempted',
  'unknown',
]);
/** A run's state, in W&B's words. */
export type RunState = z.infer<typeof RunState>;

/** A config or summary: JSON values by name. */
export const RunValues = z.record(z.string(), z.json());
/** A config or summary: JSON values by name. */
export type RunValues = z.infer<typeof RunValues>;

/** What `run` returns. */
export const RunInfo = z.object({
  state: RunState,
  /** The hyperparameters the run recorded (W&B `config`). */
  config: RunValues,
  /** The latest value of each metric (W&B `summary`). */
  summary: RunValues,
  /** Every metric name that appears in the history, sorted, `_step` included. */
  historyKeys: z.array(z.string()),
  /** Where a person can look at the run (a W&B page, a `file://` run directory). */
  url: z.string().optional(),
  /** When the run was created, ISO 8601. */
  createdAt: z.string().optional(),
  /** When the run last reported anything, ISO 8601. */
  heartbeatAt: z.string().optional(),
  /**
   * Whether the run is stale: alive by its state, but silent for too long (see `RunLiveness`). Absent when the
   * tracker does not judge it (the local tracker: a quiet trainer does not touch its files).
   */
  liveness: RunLiveness.optional(),
  /**
   * The last value logged for each history key, when the tracker keeps it (W&B: `historyKeys.keys.<key>.
   * previousValue`), so that a `final` threshold needs no history scan. Absent: read the history.
   */
  lastLogged: z.record(z.string(), z.object({ value: z.json(), count: z.number().optional() })).optional(),
  /**
   * Whether the summary holds everything the history logged (W&B: the summary's `_step` reached the
   * history's last step). Absent when the tracker cannot tell.
   */
  synced: z.boolean().optional(),
});
/** What `run` returns. */
export type RunInfo = z.infer<typeof RunInfo>;

/**
 * One logged step. `_step` is always there; other values are what the trainer logged (numbers mostly; a
 * non-finite number is logged as the string `"NaN"`, `"Infinity"` or `"-Infinity"`, since JSON has none).
 */
export interface HistoryRow {
  _step: number;
  [key: string]: unknown;
}

/** Options of `history`. */
export interface HistoryOptions {
  /**
   * Only rows that have every one of these metrics, each row cut down to them plus `_step` (W&B's
   * `scan_history(keys=…)`). Default: every row, whole.
   */
  keys?: string[];
  /** At most this many rows, evenly spaced over the matching ones, first and last included. Default: all. */
  samples?: number;
}

/** Artifact states in W&B's words: committed (complete, readable), pending (being written), deleted. */
export const ArtifactState = z.enum(['COMMITTED', 'PENDING', 'DELETED']);
/** Artifact state. */
export type ArtifactState = z.infer<typeof ArtifactState>;

/** One artifact of a run: a checkpoint, a model, a dataset version. */
export const Artifact = z.object({
  /** Local: the path relative to the run directory (`checkpoints/step-100.json`); W&B: the artifact name. */
  name: z.string(),
  /** `checkpoint`, `model`, `dataset`, …, as the trainer declared it. */
  type: z.string(),
  /** W&B version (`v3`), when the tracker versions artifacts. */
  version: z.string().optional(),
  /** W&B aliases (`latest`, `best`), without the version alias; `name:alias` finds the artifact too. */
  aliases: z.array(z.string()).optional(),
  state: ArtifactState,
  /** Bytes. */
  size: z.number().optional(),
  /** `sha256:<hex>` locally, W&B's digest remotely; `checkDownload` verifies it when present. */
  digest: z.string().optional(),
  /** Absolute local path, when the artifact is a local file or directory. */
  path: z.string().optional(),
  /** Where it can be fetched from (`file://…`, `wandb-artifact://<artifact id>`). */
  uri: z.string().optional(),
});
/** One artifact of a run. */
export type Artifact = z.infer<typeof Artifact>;

/** Whether an artifact or file can be fetched and read back intact. */
export const DownloadCheck = z.object({
  ok: z.boolean(),
  /** What was wrong, naming the file or artifact. */
  error: z.string().optional(),
});
/** Whether an artifact or file can be fetched and read back intact. */
export type DownloadCheck = z.infer<typeof DownloadCheck>;

/** A run's state and last sign of life, cheap enough to poll while training runs. */
export const TrackedRunState = z.object({
  state: RunState,
  /** When the run last reported anything, ISO 8601 (W&B: its `heartbeatAt`). */
  heartbeatAt: z.string().optional(),
});
/** A run's state and last sign of life. */
export type TrackedRunState = z.infer<typeof TrackedRunState>;

/** Options of {@link RunTracker.probeFile}. */
export interface ProbeFileOptions {
  /** Read it back: `json` parses it, `any` reads it whole. Absent: only check that it exists. */
  load?: 'json' | 'torch' | 'any';
  /** Download it to check that it can be. */
  download: boolean;
}

/** A backend that reads tracked runs. */
export interface RunTracker {
  readonly kind: TrackerKind;
  /**
   * The run's state, config, summary and history keys.
   * @throws RunNotFoundError when the tracker has no such run
   */
  run(ref: RunRef): Promise<RunInfo>;
  /** The run's history rows in step order, streamed: memory stays bounded however long the run was. */
  history(ref: RunRef, options?: HistoryOptions): AsyncIterable<HistoryRow>;
  /** The run's artifacts. */
  artifacts(ref: RunRef): Promise<Artifact[]>;
  /** Fetches an artifact (or a file by path or URI) and checks it reads back: digest, and JSON parses. */
  checkDownload(target: Artifact | string): Promise<DownloadCheck>;
  /**
   * Only the run's state and last heartbeat, for following a run while it trains. Optional: trackers
   * without it are not followed.
   * @throws RunNotFoundError when the run does not exist (yet)
   */
  runState?(ref: RunRef): Promise<TrackedRunState>;
  /**
   * The version an artifact reference (`entity/project/name:alias`) names now, and its digest, for the
   * reproducibility record of `data:` entries. Optional: trackers without artifacts of their own lack it.
   */
  resolveArtifact?(reference: string): Promise<{ version: string; digest?: string }>;
  /**
   * Looks for one file the run saved (W&B: the run's files) and checks it as asked. Optional: without it, a
   * deliverable's `path` is a file of the run directory.
   */
  probeFile?(ref: RunRef, name: string, options: ProbeFileOptions): Promise<ProbeResult>;
}

/** The tracker has no run for this ref. Not retryable as is: the ref or the tracker settings are wrong. */
export class RunNotFoundError extends Error {
  readonly failureType: FailureType = FailureType.TrackerRunNotFound;
  override readonly name = 'RunNotFoundError';
}
