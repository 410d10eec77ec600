/**
 * Tracking activities: observe the tracked run (local files or W&B) and check it against the spec's
 * deliverables, and compute the analysis numbers. History is streamed, so memory stays bounded.
 */
import { ApplicationFailure } from '@temporalio/common';
import {
  AnalysisAccumulator,
  FailureType,
  type AnalysisFacts,
  type Deliverable,
  type MetricGoal,
  type TrackerSpec,
  type ValidationReport,
} from '../../experiment';
import { checkDeliverables } from './deliverable-check';
import { runRefFor, type RunTracker, type TrackerKind } from './run-tracker';
import { trackerFailure } from './tracker-errors';

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
        `the spec tracks with "${spec.type}", but this worker has no ${spec.type} tracker configured` +
          (spec.type === 'wandb' ? "; set WANDB_API_KEY in the worker's environment and restart it" : ''),
        FailureType.InvalidSpec,
      );
    }
    return tracker;
  };

  return {
    async validateDeliverables(input: ValidateDeliverablesInput): Promise<ValidateDeliverablesResult> {
      const tracker = trackerFor(input.tracker);
      try {
        const checked = await checkDeliverables(
          tracker,
          runRefFor(input.tracker, input.experimentId, input.runDir),
          input.deliverables,
          { runDir: input.runDir },
        );
        return {
          report: checked.report,
          summary: checked.summary,
          ...(checked.runUrl !== undefined ? { runUrl: checked.runUrl } : {}),
        };
      } catch (error) {
        throw trackerFailure(error);
      }
    },

    async computeAnalysis(input: ComputeAnalysisInput): Promise<AnalysisFacts> {
      const tracker = trackerFor(input.tracker);
      const accumulator = new AnalysisAccumulator({ goals: input.goals });
      try {
        for await (const row of tracker.history(runRefFor(input.tracker, input.experimentId, input.runDir))) {
          accumulator.add(row);
        }
      } catch (error) {
        throw trackerFailure(error);
      }
      return accumulator.result();
    },
  };
}

export type TrackingActivities = ReturnType<typeof createTrackingActivities>;
