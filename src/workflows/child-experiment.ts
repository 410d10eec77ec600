/**
 * One child experiment of a campaign or a search: started with the id its spec derives (so a retried start
 * never duplicates it) and awaited; a child that fails or cannot start is an outcome, not an error.
 */
import {
  ChildWorkflowFailure,
  isCancellation,
  ParentClosePolicy,
  startChild,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import { codeMemoOf, type ExperimentSpec, type WorkflowSettingsInput } from '../experiment';
import { experimentWorkflow, type ExperimentResult } from './experiment';

/** How a child ended: its result, or why it has none (`end: error`). */
export type ChildEnd =
  | { end: ExperimentResult['end_stage']; result: ExperimentResult; reason?: string }
  | { end: 'error'; result?: undefined; reason: string };

/** Starts (or, after a retry, finds) the child experiment of `spec` and waits for how it ends. */
export async function runChildExperiment(
  spec: ExperimentSpec,
  options: { taskQueue: string; settings: WorkflowSettingsInput; campaignId: string },
): Promise<ChildEnd> {
  let handle: ChildWorkflowHandle<typeof experimentWorkflow>;
  try {
    handle = await startChild(experimentWorkflow, {
      workflowId: spec.experiment_id,
      taskQueue: options.taskQueue,
      args: [{ spec, settings: options.settings }],
      // Cancelling the parent cancels its children (and their training); closing it does not
      // terminate them, so continue-as-new (only with none running) never cuts one short.
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      searchAttributes: {
        LablineStage: ['registered'],
        ...(spec.parent ? { LablineParent: [spec.parent.experiment_id] } : {}),
        LablineCampaign: [options.campaignId],
        ...(spec.metadata.project ? { LablineProject: [spec.metadata.project] } : {}),
      },
      staticSummary: spec.name,
      staticDetails: `**Hypothesis:** ${spec.hypothesis}`,
      memo: { name: spec.name, hypothesis: spec.hypothesis, ...codeMemoOf(spec) },
    });
  } catch (error) {
    return { end: 'error', reason: (error as Error).message };
  }
  try {
    const result = await handle.result();
    return { end: result.end_stage, result, reason: result.reason };
  } catch (error) {
    if (isCancellation(error)) throw error;
    const reason =
      error instanceof ChildWorkflowFailure
        ? (error.cause?.message ?? error.message)
        : (error as Error).message;
    return { end: 'error', reason };
  }
}

/** A finite number from a child's summary metrics, or `null`. */
export function metricOf(result: ExperimentResult | undefined, metric: string): number | null {
  const value = result?.summary_metrics[metric];
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}
