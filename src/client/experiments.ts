/**
 * The typed client API: submit an experiment, read its status, decide its gates, cancel it, list them.
 * The CLI and the Slack bridge are built on these; the workflow id is the experiment id.
 */
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import {
  DecideRequest,
  type DecisionInput,
  type DecisionRecord,
  type DecisionSignal,
  type ExperimentSpec,
  type ExperimentStatus,
  type Stage,
  type WorkflowSettingsInput,
} from '../experiment';
import {
  decideUpdate,
  experimentWorkflow,
  gatesQuery,
  statusQuery,
  type ExperimentResult,
  type GatesView,
} from '../workflows';

export type ExperimentHandle = WorkflowHandle<typeof experimentWorkflow>;

export interface SubmitOptions {
  client: Client;
  spec: ExperimentSpec;
  settings: WorkflowSettingsInput & { task_queues?: { workflow?: string } };
}

/**
 * Starts the experiment's workflow, with the search attributes and summary the Web UI shows. Submitting
 * an experiment that is already running returns its handle (`alreadyRunning`); it never starts a second.
 */
export async function submitExperiment(
  options: SubmitOptions,
): Promise<{ handle: ExperimentHandle; alreadyRunning: boolean }> {
  const { client, spec, settings } = options;
  try {
    const handle = await client.workflow.start(experimentWorkflow, {
      workflowId: spec.experiment_id,
      taskQueue: settings.task_queues?.workflow ?? 'labline',
      args: [{ spec, settings }],
      searchAttributes: {
        LablineStage: ['registered'],
        ...(spec.metadata.project ? { LablineProject: [spec.metadata.project] } : {}),
        ...(spec.metadata.researcher ? { LablineResearcher: [spec.metadata.researcher] } : {}),
        ...(spec.parent ? { LablineParent: [spec.parent.experiment_id] } : {}),
      },
      staticSummary: spec.name,
      staticDetails: `**Hypothesis:** ${spec.hypothesis}`,
      memo: { name: spec.name, hypothesis: spec.hypothesis },
    });
    return { handle, alreadyRunning: false };
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) {
      return {
        handle: client.workflow.getHandle<typeof experimentWorkflow>(spec.experiment_id),
        alreadyRunning: true,
      };
    }
    throw error;
  }
}

export function experimentHandle(client: Client, experimentId: string): ExperimentHandle {
  return client.workflow.getHandle<typeof experimentWorkflow>(experimentId);
}

/**
 * The workflow's `status`, with live training progress: the training watcher reports step and loss in its
 * heartbeats, which Temporal keeps on the pending activity, so the running attempt shows them.
 */
export async function experimentStatus(client: Client, experimentId: string): Promise<ExperimentStatus> {
  const handle = experimentHandle(client, experimentId);
  const status = await handle.query(statusQuery);
  const running = status.attempts.at(-1);
  if (status.stage !== 'training' || !running || running.outcome) return status;
  const { raw } = await handle.describe();
  const watcher = raw.pendingActivities?.find((a) => a.activityType?.name === 'awaitTraining');
  const payload = watcher?.heartbeatDetails?.payloads?.[0];
  if (payload) {
    const progress = defaultPayloadConverter.fromPayload<{ step?: number; loss?: number }>(payload);
    if (typeof progress?.step === 'number') running.step = progress.step;
    if (typeof progress?.loss === 'number') running.loss = progress.loss;
  }
  return status;
}

/** A decision the workflow refused; nothing was recorded. `reason` says why, in the workflow's words. */
export class DecisionRefused extends Error {
  constructor(
    readonly workflowId: string,
    readonly reason: string,
  ) {
    super(`${workflowId} refused the decision: ${reason}. Nothing was recorded.`);
    this.name = 'DecisionRefused';
  }
}

/** The open gate (with its opening) and the decisions so far, of an experiment or a campaign. */
export async function gatesOf(client: Client, workflowId: string): Promise<GatesView> {
  return await client.workflow.getHandle(workflowId).query(gatesQuery);
}

/** A decision as the client API takes it: the gate's opening and the request id are optional. */
export type DecideOptions = DecisionInput & {
  /** The opening it answers (`waiting.opening` of a request); default: the gate's current opening. */
  opening?: string;
  /** Idempotency key: the same id is taken at most once. Default: a fresh one. */
  requestId?: string;
};

/**
 * Decides a gate of an experiment or a campaign with the `decide` update and returns the decision the
 * workflow recorded. A decision that cannot take effect (gate not open, an earlier opening, a request id
 * already taken, not an approver, a choice that does not fit) is refused with `DecisionRefused`, and
 * nothing is recorded. Without `opening`, the gate's current opening is read first.
 */
export async function decide(
  client: Client,
  workflowId: string,
  action: DecisionSignal,
  decision: DecideOptions,
): Promise<DecisionRecord> {
  const { opening, requestId, ...rest } = decision;
  const request = DecideRequest.parse({
    ...rest,
    action,
    opening: opening ?? (await currentOpening(client, workflowId, rest.gate)),
  });
  try {
    return await client.workflow.getHandle(workflowId).executeUpdate(decideUpdate, {
      args: [request],
      updateId: requestId ?? randomUUID(),
    });
  } catch (error) {
    if (error instanceof WorkflowUpdateFailedError)
      throw new DecisionRefused(workflowId, error.cause?.message ?? error.message);
    throw error;
  }
}

/**
 * The current opening of `gate`; when that gate is not open, a placeholder that the workflow refuses with
 * the reason (it waits at another gate, or for no decision).
 */
async function currentOpening(client: Client, workflowId: string, gate: string): Promise<string> {
  const { waiting } = await gatesOf(client, workflowId);
  return waiting?.gate === gate && waiting.opening ? waiting.opening : 'not-open';
}

export async function cancelExperiment(client: Client, experimentId: string): Promise<void> {
  await experimentHandle(client, experimentId).cancel();
}

export interface ExperimentListing {
  experimentId: string;
  stage: string;
  status: string;
  name?: string;
  startTime: Date;
}

/** Experiments from visibility, newest first; `stage` filters on the LablineStage search attribute. */
export async function listExperiments(
  client: Client,
  options: { stage?: Stage; limit?: number } = {},
): Promise<ExperimentListing[]> {
  const query = [
    `WorkflowType IN ('experimentWorkflow', 'campaignWorkflow')`,
    options.stage ? `LablineStage = '${options.stage}'` : undefined,
  ]
    .filter(Boolean)
    .join(' AND ');
  const listings: ExperimentListing[] = [];
  for await (const execution of client.workflow.list({ query })) {
    const stage = execution.searchAttributes.LablineStage;
    listings.push({
      experimentId: execution.workflowId,
      stage: Array.isArray(stage) ? String(stage[0]) : '',
      status: execution.status.name,
      name: typeof execution.memo?.name === 'string' ? execution.memo.name : undefined,
      startTime: execution.startTime,
    });
    if (listings.length >= (options.limit ?? 100)) break;
  }
  return listings;
}

export async function experimentResult(client: Client, experimentId: string): Promise<ExperimentResult> {
  return experimentHandle(client, experimentId).result();
}
