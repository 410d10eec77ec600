/**
 * Tracking activities: observe the tracked run (local files or W&B) and check it against the spec's
 * deliverables, and compute the analysis numbers. History is streamed, so memory stays bounded.
 */
import { ApplicationFailure } from '@temporalio/common';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import {
  AnalysisAccumulator,
  evaluateDeliverables,
  FailureType,
  MetricAggregatesAccumulator,
  probesFor,
  RunObservation,
  type AnalysisFacts,
  type Deliverable,
  type MetricGoal,
  type ProbeResult,
  type RunObservationInput,
  type TrackerSpec,
  type ValidationReport,
} from '../../experiment';
import type { Artifact, RunRef, RunTracker, TrackerKind } from './run-tracker';

export interface ValidateDeliverablesInput {
  experimentId: string;
  runDir: string;
  tracker: TrackerSpec;
  deliverables: Deliverable[];
}

export interface ValidateDeliverablesResult {
  report: ValidationReport;
  /** The run's summary metrics, for the results payload. */
  summary: Record<string, unknown>;
  /** Where the run can be seen (W&B URL or run directory). */
  runUrl?: string;
}

export interface ComputeAnalysisInput {
  experimentId: string;
  runDir: string;
  tracker: TrackerSpec;
  goals: Record<string, MetricGoal>;
}

export function createTrackingActivities(deps: { trackers: Partial<Record<TrackerKind, RunTracker>> }) {
  const trackerFor = (spec: TrackerSpec): RunTracker => {
    const tracker = deps.trackers[spec.type];
    if (!tracker) {
      throw ApplicationFailure.nonRetryable(
        `the spec tracks with "${spec.type}", but this worker has no ${spec.type} tracker configured`,
        FailureType.InvalidSpec,
      );
    }
    return tracker;
  };
  const refOf = (input: { experimentId: string; runDir: string }): RunRef => ({
    experimentId: input.experimentId,
    runDir: input.runDir,
  });

  return {
    async validateDeliverables(input: ValidateDeliverablesInput): Promise<ValidateDeliverablesResult> {
      const tracker = trackerFor(input.tracker);
      const ref = refOf(input);
      const plan = probesFor(input.deliverables);
      const info = await tracker.run(ref);
      const aggregates = new MetricAggregatesAccumulator(plan.metric_aggregates);
      if (plan.metric_aggregates.length > 0) {
        for await (const row of tracker.history(ref, { keys: plan.metric_aggregates })) aggregates.add(row);
      }
      const artifacts =
        plan.probes.some((p) => p.kind === 'artifact') || plan.all_artifacts
          ? await tracker.artifacts(ref)
          : [];
      const probes: ProbeResult[] = [];
      for (const probe of plan.probes) {
        probes.push(
          probe.kind === 'file'
            ? await probeFile(input.runDir, probe.name, probe.load, probe.download)
            : await probeArtifact(tracker, artifacts, probe.name, probe.load !== undefined || probe.download),
        );
      }
      if (plan.all_artifacts) {
        for (const artifact of artifacts) {
          if (!probes.some((p) => p.kind === 'artifact' && p.name === artifact.name)) {
            probes.push(await probeArtifact(tracker, artifacts, artifact.name, true));
          }
        }
      }
      const observation: RunObservationInput = {
        run: info.url ?? input.runDir,
        state: info.state,
        summary: info.summary,
        config: info.config,
        history_keys: info.historyKeys,
        aggregates: aggregates.result(),
        probes,
        artifact_names: plan.all_artifacts ? artifacts.map((a) => a.name) : undefined,
      };
      return {
        report: evaluateDeliverables(input.deliverables, RunObservation.parse(observation)),
        summary: info.summary,
        runUrl: info.url,
      };
    },

    async computeAnalysis(input: ComputeAnalysisInput): Promise<AnalysisFacts> {
      const accumulator = new AnalysisAccumulator({ goals: input.goals });
      for await (const row of trackerFor(input.tracker).history(refOf(input))) accumulator.add(row);
      return accumulator.result();
    },
  };
}

async function probeFile(
  runDir: string,
  name: string,
  load: 'json' | 'any' | undefined,
  download: boolean,
): Promise<ProbeResult> {
  const file = path.resolve(runDir, name);
  const stat = await fs.stat(file).catch(() => undefined);
  if (!stat?.isFile()) return { name, kind: 'file', exists: false };
  const result: ProbeResult = { name, kind: 'file', exists: true, size_bytes: stat.size };
  if (load || download) {
    try {
      const text = await fs.readFile(file, 'utf8');
      if (load === 'json') JSON.parse(text);
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

async function probeArtifact(
  tracker: RunTracker,
  artifacts: Artifact[],
  name: string,
  download: boolean,
): Promise<ProbeResult> {
  const artifact = artifacts.find((a) => a.name === name || `${a.name}:${a.version ?? ''}` === name);
  if (!artifact) return { name, kind: 'artifact', exists: false };
  const result: ProbeResult = {
    name,
    kind: 'artifact',
    exists: true,
    state: artifact.state,
    size_bytes: artifact.size,
  };
  if (download) {
    const check = await tracker.checkDownload(artifact);
    result.downloadable = check.ok;
    result.loadable = check.ok;
    if (!check.ok) result.error = check.error;
  }
  return result;
}

export type TrackingActivities = ReturnType<typeof createTrackingActivities>;
