/**
 * Checking a tracked run against a spec's deliverables: gather what `probesFor` asks for from the tracker
 * (and the run directory), then judge it with the pure `evaluateDeliverables`. The `validateDeliverables`
 * activity and `labline validate` both call {@link checkDeliverables}.
 *
 * Cost does not grow with the history where the deliverable allows: `contains_keys` reads the run's history
 * keys, `summary` thresholds the summary, and `final` thresholds the last logged value when the tracker
 * keeps it (W&B's `historyKeys`). Only `best_min` / `best_max` (and `final` on a tracker without last
 * values) stream the history, for those metrics only.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { loadTorchCheckpoint, trainerPython } from './torch-checkpoint';
import {
  evaluateDeliverables,
  MetricAggregatesAccumulator,
  probesFor,
  readMetricValue,
  RunObservation,
  type Deliverable,
  type MetricAggregate,
  type ProbeResult,
  type RunObservationInput,
  type ValidationReport,
} from '../../experiment';
import type { Artifact, RunInfo, RunRef, RunTracker } from './run-tracker';

/** What checking deliverables found. */
export interface DeliverablesCheck {
  report: ValidationReport;
  /** The run's summary metrics, for the results payload. */
  summary: Record<string, unknown>;
  /** Where the run can be seen (W&B URL or run directory). */
  runUrl?: string;
  /** The run's state, as the tracker reports it. */
  state: RunInfo['state'];
}

/** Options of {@link checkDeliverables}. */
export interface CheckDeliverablesOptions {
  /**
   * The run directory, where `path` deliverables are looked for when the tracker does not hold files
   * itself (the local tracker). Default: the ref's `runDir`.
   */
  runDir?: string;
}

/** Checks the run `ref` of `tracker` against `deliverables`. Tracker errors propagate as they are. */
export async function checkDeliverables(
  tracker: RunTracker,
  ref: RunRef,
  deliverables: readonly Deliverable[],
  options: CheckDeliverablesOptions = {},
): Promise<DeliverablesCheck> {
  const runDir = options.runDir ?? ref.runDir;
  const plan = probesFor(deliverables);
  const info = await tracker.run(ref);
  const aggregates = await aggregatesFor(tracker, ref, info, deliverables, plan.metric_aggregates);
  const artifacts =
    plan.probes.some((p) => p.kind === 'artifact') || plan.all_artifacts ? await tracker.artifacts(ref) : [];
  const probes: ProbeResult[] = [];
  for (const probe of plan.probes) {
    if (probe.kind === 'artifact') {
      probes.push(
        await probeArtifact(tracker, artifacts, probe.name, probe.load !== undefined || probe.download),
      );
    } else if (tracker.probeFile) {
      probes.push(
        await tracker.probeFile(ref, probe.name, {
          download: probe.download,
          ...(probe.load ? { load: probe.load } : {}),
        }),
      );
    } else {
      probes.push(await probeRunDirFile(runDir, probe.name, probe.load, probe.download));
    }
  }
  if (plan.all_artifacts) {
    for (const artifact of latestVersions(artifacts)) {
      if (!probes.some((p) => p.kind === 'artifact' && p.name === artifact.name)) {
        probes.push(await probeArtifact(tracker, artifacts, artifact.name, true));
      }
    }
  }
  const observation: RunObservationInput = {
    run: info.url ?? runDir,
    state: info.state,
    ...(info.liveness !== undefined ? { liveness: info.liveness } : {}),
    ...(info.synced !== undefined ? { synced: info.synced } : {}),
    summary: info.summary,
    config: info.config,
    history_keys: info.historyKeys,
    aggregates,
    probes,
    artifact_names: plan.all_artifacts ? latestVersions(artifacts).map((a) => a.name) : undefined,
  };
  return {
    report: evaluateDeliverables(deliverables, RunObservation.parse(observation)),
    summary: info.summary,
    ...(info.url !== undefined ? { runUrl: info.url } : {}),
    state: info.state,
  };
}

/**
 * History aggregates for the metrics thresholds need. A metric only ever compared on its `final` value is
 * answered from the tracker's last logged value when it has one; the rest are streamed from the history,
 * asking only for those metrics.
 */
async function aggregatesFor(
  tracker: RunTracker,
  ref: RunRef,
  info: RunInfo,
  deliverables: readonly Deliverable[],
  metrics: readonly string[],
): Promise<Record<string, MetricAggregate>> {
  const result: Record<string, MetricAggregate> = {};
  const toScan: string[] = [];
  for (const metric of metrics) {
    if (!info.historyKeys.includes(metric)) {
      // Never logged: nothing to scan for.
      result[metric] = { count: 0, final: null, min: null, max: null, non_finite: 0 };
      continue;
    }
    const onlyFinal = deliverables.every(
      (d) =>
        d.type !== 'threshold' || d.metric !== metric || d.aggregate === 'final' || d.aggregate === 'summary',
    );
    const last = info.lastLogged?.[metric];
    const fromLast = onlyFinal && last !== undefined ? aggregateOfLastValue(last) : undefined;
    if (fromLast) result[metric] = fromLast;
    else toScan.push(metric);
  }
  // One pass per metric: asked for several keys, a tracker returns only the rows that hold them all.
  for (const metric of toScan) {
    const accumulator = new MetricAggregatesAccumulator([metric]);
    for await (const row of tracker.history(ref, { keys: [metric] })) accumulator.add(row);
    const aggregate = accumulator.result()[metric];
    if (aggregate) result[metric] = aggregate;
  }
  return result;
}

/** An aggregate that knows only the final value (enough for `final` thresholds); `undefined` if not a metric. */
function aggregateOfLastValue(last: {
  value: unknown;
  count?: number | undefined;
}): MetricAggregate | undefined {
  const value = readMetricValue(last.value);
  if (value === undefined) return undefined;
  const finite = Number.isFinite(value);
  return {
    count: Math.max(1, last.count ?? 1),
    final: finite ? value : null,
    min: null,
    max: null,
    non_finite: finite ? 0 : 1,
  };
}

/** Per artifact name, its newest version (W&B keeps every version a run logged). */
function latestVersions(artifacts: readonly Artifact[]): Artifact[] {
  const newest = new Map<string, Artifact>();
  for (const artifact of artifacts) {
    const seen = newest.get(artifact.name);
    if (!seen || versionNumber(artifact) > versionNumber(seen)) newest.set(artifact.name, artifact);
  }
  return [...newest.values()];
}

function versionNumber(artifact: Artifact): number {
  const match = /^v(\d+)$/.exec(artifact.version ?? '');
  return match ? Number(match[1]) : -1;
}

/**
 * The artifact a deliverable names: `name` (its newest version), `name:v3` (that version) or `name:alias`
 * (`name:latest`, `name:best`).
 */
export function findArtifact(artifacts: readonly Artifact[], name: string): Artifact | undefined {
  const exact = latestVersions(artifacts.filter((a) => a.name === name))[0];
  if (exact) return exact;
  const colon = name.lastIndexOf(':');
  if (colon < 0) return undefined;
  const base = name.slice(0, colon);
  const tag = name.slice(colon + 1);
  return artifacts.find((a) => a.name === base && (a.version === tag || (a.aliases ?? []).includes(tag)));
}

async function probeArtifact(
  tracker: RunTracker,
  artifacts: readonly Artifact[],
  name: string,
  download: boolean,
): Promise<ProbeResult> {
  const artifact = findArtifact(artifacts, name);
  if (!artifact) return { name, kind: 'artifact', exists: false };
  const result: ProbeResult = {
    name,
    kind: 'artifact',
    exists: true,
    state: artifact.state,
    ...(artifact.size !== undefined ? { size_bytes: artifact.size } : {}),
  };
  if (download) {
    const check = await tracker.checkDownload(artifact);
    result.downloadable = check.ok;
    result.loadable = check.ok;
    if (!check.ok && check.error !== undefined) result.error = check.error;
  }
  return result;
}

/**
 * A file of the run directory: exists, and reads back (parses as JSON for `load: json`; loads with
 * `torch.load` in the trainer's Python for `load: torch`).
 */
async function probeRunDirFile(
  runDir: string | undefined,
  name: string,
  load: 'json' | 'torch' | 'any' | undefined,
  download: boolean,
): Promise<ProbeResult> {
  if (runDir === undefined) {
    return { name, kind: 'file', exists: false, error: 'no run directory to look in' };
  }
  const file = path.resolve(runDir, name);
  const stat = await fs.stat(file).catch(() => undefined);
  if (!stat?.isFile()) return { name, kind: 'file', exists: false };
  const result: ProbeResult = { name, kind: 'file', exists: true, size_bytes: stat.size };
  if (load || download) {
    try {
      const text = await fs.readFile(file, 'utf8');
      if (load === 'json') JSON.parse(text);
      if (load === 'torch') await loadTorchCheckpoint(file, await trainerPython(runDir));
      if (load) result.loadable = true;
      if (download) result.downloadable = true;
    } catch (error) {
      if (load) result.loadable = false;
      if (download) result.downloadable = false;
      result.error = (error as Error).message;
    }
  }
  return result;
}
