/**
 * The typed client API: submit an experiment, read its status, decide its gates, cancel it, list them.
 * The CLI and the Slack bridge are built on these; the workflow id is the experiment id.
 */
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
} from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { existsSync } from 'node:fs';
import { defaultPayloadConverter } from '@temporalio/common';
import {
  codeMemoOf,
  DecideRequest,
  ExperimentSpec,
  type DecisionInput,
  type DecisionRecord,
  type DecisionSignal,
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
import { addPolicyRetry } from './activity-retries';
import { requireLablineId } from './ids';
import { pinExperimentCode } from './code-pinning';
import { InvalidSpecError } from './spec-file';
import { needingWorker } from './worker-presence';
import { withinWorkflowInputLimit } from './spec-file';

export type ExperimentHandle = WorkflowHandle<typeof experimentWorkflow>;

export interface SubmitOptions {
  client: Client;
  spec: ExperimentSpec;
  settings: WorkflowSettingsInput & { task_queues?: { workflow?: string } };
  /**
   * Run an experiment that already ran again, under a new run name (`<id>.rerun-<UTC time>`): its own run
   * directory, launch keys and tracked run, so that nothing of an earlier run is reused or overwritten.
   */
  rerun?: boolean;
}

/** An experiment id that already ran; starting it again needs `rerun` (or a new id). */
export class ExperimentAlreadyRan extends Error {
  constructor(
    readonly experimentId: string,
    readonly ended: string,
    readonly runDir: string | undefined,
  ) {
    super(
      `${experimentId} already ran (${ended})` +
        (runDir ? `; its report and results are in ${runDir}` : '') +
        '. Nothing was started. To run it again in a new run directory (nothing of the earlier run is ' +
        'reused or overwritten), use `labline start --rerun`; or give the spec a new experiment_id.',
    );
    this.name = 'ExperimentAlreadyRan';
  }
}

/** The run name of a rerun started at `at`: the experiment id and the UTC time to the second. */
export function rerunName(experimentId: string, at: Date): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${experimentId}.rerun-${stamp}`;
}

/**
 * Starts the experiment's workflow, with the search attributes and summary the Web UI shows. Submitting
 * an experiment that is already running returns its handle (`alreadyRunning`); it never starts a second.
 * An experiment that already ran is refused with {@link ExperimentAlreadyRan} unless `rerun` is set.
 */
export async function submitExperiment(options: SubmitOptions): Promise<{
  handle: ExperimentHandle;
  alreadyRunning: boolean;
  runName: string;
  /** The spec as submitted: with its code pinned. */
  spec: ExperimentSpec;
}> {
  const { client, settings } = options;
  // Checked again here: a caller of this API may hand over a spec that never went through the parser, and
  // the workflow would then fail on every task instead of refusing it once.
  const checked = ExperimentSpec.safeParse(options.spec);
  if (!checked.success) {
    throw new InvalidSpecError(
      `Invalid experiment spec; nothing was started:\n${z.prettifyError(checked.error)}`,
    );
  }
  // Pinned before anything starts: the workflow input names a commit and a patch, never a moving branch.
  const spec = await pinExperimentCode(checked.data, settings.runs_root);
  const rerun = options.rerun ? rerunName(spec.experiment_id, new Date()) : undefined;
  if (!rerun) await refuseFinishedRunDir(client, spec.experiment_id, settings.runs_root);
  try {
    const handle = await client.workflow.start(experimentWorkflow, {
      workflowId: spec.experiment_id,
      taskQueue: settings.task_queues?.workflow ?? 'labline',
      args: [withinWorkflowInputLimit({ spec, settings, ...(rerun ? { rerun } : {}) })],
      // The server refuses a second run of a finished experiment unless it is a rerun.
      workflowIdReusePolicy: rerun ? 'ALLOW_DUPLICATE' : 'REJECT_DUPLICATE',
      searchAttributes: {
        LablineStage: ['registered'],
        ...(spec.metadata.project ? { LablineProject: [spec.metadata.project] } : {}),
        ...(spec.metadata.researcher ? { LablineResearcher: [spec.metadata.researcher] } : {}),
        ...(spec.parent ? { LablineParent: [spec.parent.experiment_id] } : {}),
      },
      staticSummary: rerun ? `${spec.name} (${rerun})` : spec.name,
      staticDetails: `**Hypothesis:** ${spec.hypothesis}`,
      memo: {
        name: spec.name,
        hypothesis: spec.hypothesis,
        ...(rerun ? { rerun } : {}),
        ...codeMemoOf(spec),
      },
    });
    return { handle, alreadyRunning: false, runName: rerun ?? spec.experiment_id, spec };
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
    const handle = client.workflow.getHandle<typeof experimentWorkflow>(spec.experiment_id);
    const description = await handle.describe();
    if (description.status.name === 'RUNNING') {
      const running = (description.memo?.rerun as string | undefined) ?? spec.experiment_id;
      if (rerun)
        throw new Error(
          `${spec.experiment_id} is still running (${running}); nothing was started. Wait for it to end, ` +
            `or cancel it (\`labline cancel ${spec.experiment_id}\`), then rerun.`,
          { cause: error },
        );
      return { handle, alreadyRunning: true, runName: running, spec };
    }
    throw alreadyRan(spec.experiment_id, description, settings.runs_root);
  }
}

/**
 * Refuses when the run directory holds a finished run's results and the experiment is not running: the
 * server may no longer know a run older than its retention, but its directory must not be reused.
 */
async function refuseFinishedRunDir(
  client: Client,
  experimentId: string,
  runsRoot: string | undefined,
): Promise<void> {
  if (!runsRoot || !existsSync(`${runsRoot}/${experimentId}/results.json`)) return;
  const description = await client.workflow
    .getHandle(experimentId)
    .describe()
    .catch((error: unknown) => {
      if (error instanceof WorkflowNotFoundError) return undefined;
      throw error;
    });
  if (description?.status.name === 'RUNNING') return;
  throw description
    ? alreadyRan(experimentId, description, runsRoot)
    : new ExperimentAlreadyRan(experimentId, 'its results.json exists', `${runsRoot}/${experimentId}`);
}

/** The refusal for an experiment whose last run (described) has closed. */
function alreadyRan(
  experimentId: string,
  description: WorkflowExecutionDescription,
  runsRoot: string | undefined,
): ExperimentAlreadyRan {
  const lastRun = (description.memo?.rerun as string | undefined) ?? experimentId;
  const closed = description.closeTime ? ` at ${description.closeTime.toISOString()}` : '';
  return new ExperimentAlreadyRan(
    experimentId,
    `${description.status.name.toLowerCase()}${closed}`,
    runsRoot ? `${runsRoot}/${lastRun}` : undefined,
  );
}

export function experimentHandle(client: Client, experimentId: string): ExperimentHandle {
  return client.workflow.getHandle<typeof experimentWorkflow>(requireLablineId(experimentId));
}

/**
 * The workflow's `status`, with live training progress: the training watcher reports step and loss in its
 * heartbeats, which Temporal keeps on the pending activity, so the running attempt shows them; and the retries
 * Temporal runs of an activity the stage waits on (`addPolicyRetry`).
 */
export async function experimentStatus(client: Client, experimentId: string): Promise<ExperimentStatus> {
  const handle = experimentHandle(client, experimentId);
  const status = await needingWorker(client, experimentId, () => handle.query(statusQuery));
  await addPolicyRetry(handle, status);
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
  requireLablineId(workflowId);
  return await needingWorker(client, workflowId, () =>
    client.workflow.getHandle(workflowId).query(gatesQuery),
  );
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
  requireLablineId(workflowId);
  const { opening, requestId, ...rest } = decision;
  const request = DecideRequest.parse({
    ...rest,
    action,
    opening: opening ?? (await currentOpening(client, workflowId, rest.gate)),
  });
  try {
    const updateId = requestId ?? randomUUID();
    return await needingWorker(client, workflowId, () =>
      client.workflow.getHandle(workflowId).executeUpdate(decideUpdate, { args: [request], updateId }),
    );
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
  kind: 'experiment' | 'campaign';
  stage: string;
  /** Temporal's execution status: RUNNING, COMPLETED, FAILED, CANCELLED, TERMINATED, TIMED_OUT. */
  status: string;
  name?: string;
  startTime: Date;
  closeTime?: Date;
  /** The primary metric's final value, once the experiment has one. */
  primaryMetric?: number;
  /** The gate it waits at, from its memo (workflows started before Labline recorded it there: from its stage). */
  waitingFor?: string;
}

export interface ListOptions {
  stage?: Stage;
  /** At most this many, in Temporal's order (running first, then the most recently closed). Default 50. */
  limit?: number;
  /**
   * Only those running or closed after this time. Default: no bound (everything the server still keeps, which
   * is up to its retention: 30 days on a local server).
   */
  closedAfter?: Date;
}

/** Experiments and campaigns from visibility (running first, then the most recently closed); `stage` filters on the LablineStage search attribute. */
export async function listExperiments(
  client: Client,
  options: ListOptions = {},
): Promise<ExperimentListing[]> {
  const query = [
    `WorkflowType IN ('experimentWorkflow', 'campaignWorkflow')`,
    options.stage ? `LablineStage = '${options.stage}'` : undefined,
    options.closedAfter
      ? `(ExecutionStatus = 'Running' OR CloseTime > '${options.closedAfter.toISOString()}')`
      : undefined,
  ]
    .filter(Boolean)
    .join(' AND ');
  const limit = options.limit ?? 50;
  const listings: ExperimentListing[] = [];
  if (limit <= 0) return listings;
  for await (const execution of client.workflow.list({ query, pageSize: Math.min(limit, 1000) })) {
    const stage = execution.searchAttributes.LablineStage;
    const metric = execution.searchAttributes.LablinePrimaryMetric;
    listings.push({
      experimentId: execution.workflowId,
      kind: execution.type === 'campaignWorkflow' ? 'campaign' : 'experiment',
      stage: Array.isArray(stage) ? String(stage[0]) : '',
      status: execution.status.name,
      name: typeof execution.memo?.name === 'string' ? execution.memo.name : undefined,
      startTime: execution.startTime,
      ...(execution.closeTime ? { closeTime: execution.closeTime } : {}),
      ...(Array.isArray(metric) && typeof metric[0] === 'number' ? { primaryMetric: metric[0] } : {}),
      // A closed experiment waits for nothing, whatever its memo kept (a cancel while a gate was open).
      ...(execution.status.name === 'RUNNING'
        ? waitingOf(execution.memo?.waiting, String(Array.isArray(stage) ? stage[0] : ''))
        : {}),
    });
    if (listings.length >= limit) break;
  }
  return listings;
}

/** The gate an experiment waits at: its memo's `waiting` when set, else what its stage says (a review). */
function waitingOf(memo: unknown, stage: string): { waitingFor?: string } {
  if (typeof memo === 'string') return { waitingFor: memo };
  if (memo === undefined && (stage === 'launch_review' || stage === 'publish_review')) {
    return { waitingFor: stage.replace('_review', '') };
  }
  return {};
}

export async function experimentResult(client: Client, experimentId: string): Promise<ExperimentResult> {
  return experimentHandle(client, experimentId).result();
}
