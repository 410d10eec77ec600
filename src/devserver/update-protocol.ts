/**
 * The wire side of Workflow Updates: what UpdateWorkflowExecution and PollWorkflowExecutionUpdate requests and
 * the worker's protocol messages must look like, and the errors and failures Temporal answers with, in its
 * wording (temporalio/temporal `service/frontend/workflow_handler.go`, `service/history/workflow/update`).
 * The states and waits are in updates.ts.
 */
import { status } from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { failedPrecondition, invalidArgument, notFound, ServiceError } from './errors';
import type { ExecutionState } from './execution';
import { decodeToJson, encodeFromJson, enums, type Pb } from './proto';

const { UpdateWorkflowExecutionLifecycleStage: Stage } = enums;

/** The failed-task cause of a bad update message. */
export const badMessageCause =
  enums.WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_BAD_UPDATE_WORKFLOW_EXECUTION_MESSAGE;

const updateType = (name: string) => `type.googleapis.com/temporal.api.update.v1.${name}`;

/** Failures and errors with Temporal's wording (`service/history/workflow/update/errors_failures.go`). */
const serverFailure = (message: string, type: string): Pb => ({
  message,
  source: 'Server',
  applicationFailureInfo: { type, nonRetryable: true },
});
export const unprocessedFailure = serverFailure(
  "Workflow Update is rejected because it wasn't processed by worker. Probably, Workflow Update is not supported by the worker.",
  'UnprocessedUpdate',
);
export const closedBeforeCompletionFailure = serverFailure(
  'Workflow Update failed because the Workflow completed before the Update completed.',
  'AcceptedUpdateCompletedWorkflow',
);
export const abortedByClosing = () => notFound('workflow update was aborted by closing workflow');
export const workflowClosing = () =>
  new ServiceError(
    status.RESOURCE_EXHAUSTED,
    'workflow operation can not be applied because workflow is closing',
  );
export const abortedByServer = () => new ServiceError(status.UNAVAILABLE, 'workflow update was aborted');
export const workflowTaskFailed = () =>
  failedPrecondition('Unable to perform workflow execution update due to unexpected workflow task failure.');

/**
 * Checks an UpdateWorkflowExecution request as Temporal's frontend does, fills in a missing update id and
 * returns the stage to wait for (COMPLETED when unspecified).
 */
export function checkUpdateRequest(req: Pb): number {
  checkExecution(req.workflowExecution as Pb | undefined);
  const request = req.request as Pb | undefined;
  const meta = request?.meta as Pb | undefined;
  if (!meta) throw invalidArgument('Update meta is not set on request.');
  if (String(meta.updateId ?? '').length > 1000) throw invalidArgument('UpdateId length exceeds limit.');
  if (!meta.updateId) meta.updateId = randomUUID();
  if (!request!.input) throw invalidArgument('Update input is not set on request.');
  if (!request!.input.name) throw invalidArgument('Update name is not set on request.');
  const stage =
    (req.waitPolicy?.lifecycleStage as number) || Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED;
  if (stage === Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED) {
    throw new ServiceError(
      status.PERMISSION_DENIED,
      'UpdateWorkflowExecution issued asynchronously and waiting on update admitted is not supported.',
    );
  }
  return stage;
}

/** Checks a PollWorkflowExecutionUpdate request as Temporal does. */
export function checkPollRequest(req: Pb): void {
  if (!req.updateRef) throw invalidArgument('UpdateRef is not set on request.');
  if (!req.updateRef.workflowExecution?.workflowId) {
    throw invalidArgument("Can't load workflow execution.  WorkflowId not set.");
  }
}

function checkExecution(execution: Pb | undefined): void {
  if (!execution) throw invalidArgument('Execution is not set on request.');
  if (!execution.workflowId) throw invalidArgument('WorkflowId is not set on request.');
  if (
    execution.runId &&
    !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(execution.runId)
  ) {
    throw invalidArgument('Invalid RunId.');
  }
}

/** The first run id a request names must be the run's chain, or Temporal answers "not found". */
export function checkFirstRun(ex: ExecutionState, firstExecutionRunId: string | undefined): void {
  if (firstExecutionRunId && ex.firstRunId !== firstExecutionRunId) {
    throw notFound('workflow execution not found');
  }
}

/**
 * The message that delivers an update request to the worker. Temporal sequences it after every event of the
 * task (`startedEventId - 1`), whatever the order the events came in.
 */
export function requestMessage(updateId: string, request: Pb, startedEventId: number): Pb {
  return {
    id: `${updateId}/request`,
    protocolInstanceId: updateId,
    eventId: String(startedEventId - 1),
    body: {
      type_url: updateType('Request'),
      value: encodeFromJson('temporal.api.update.v1.Request', request).toString('base64'),
    },
  };
}

/** A protocol message of the update protocol, its body decoded. */
export interface DecodedMessage {
  id: string;
  updateId: string;
  kind: 'Acceptance' | 'Rejection' | 'Response';
  body: Pb;
}

/** Decodes a protocol message of the update protocol; a string says what is wrong with it. */
export function decodeMessage(message: Pb): DecodedMessage | string {
  const body = message.body as Pb | undefined;
  const typeUrl = (body?.type_url ?? body?.typeUrl ?? '') as string;
  const kind = typeUrl.replace(/^.*\/temporal\.api\.update\.v1\./, '');
  if (kind !== 'Acceptance' && kind !== 'Rejection' && kind !== 'Response') {
    return `unsupported protocol type ${typeUrl || '(none)'}`;
  }
  if (!message.protocolInstanceId)
    return `invalid message ${String(message.id)}: protocol_instance_id is not set`;
  let decoded: Pb;
  try {
    decoded = decodeToJson(
      `temporal.api.update.v1.${kind}`,
      Buffer.from(String(body!.value ?? ''), 'base64'),
    );
  } catch (error) {
    return `unable to unmarshal request: ${(error as Error).message}`;
  }
  return { id: message.id as string, updateId: message.protocolInstanceId as string, kind, body: decoded };
}

/** The request an Acceptance or Rejection carries back (SDKs since 2024 send it), to resurrect a lost update. */
export function resurrectionRequest(message: DecodedMessage): Pb | undefined {
  return (message.body.acceptedRequest ?? message.body.rejectedRequest) as Pb | undefined;
}

/** Temporal's checks of a message body (`update/validation.go`), with its wording. */
export function invalidBody(message: DecodedMessage): string | undefined {
  const { body, kind, updateId } = message;
  if (kind === 'Acceptance') {
    if (!Number(body.acceptedRequestSequencingEventId ?? 0)) {
      return 'invalid *update.Acceptance: accepted_request_sequencing_event_id is not set';
    }
    if (!body.acceptedRequestMessageId)
      return 'invalid *update.Acceptance: accepted_request_message_id is not set';
  } else if (kind === 'Response') {
    if (!body.meta) return 'invalid *update.Response: meta is not set';
    if (!body.meta.updateId) return 'invalid *update.Response: meta.update_id is not set';
    if (body.meta.updateId !== updateId) return `invalid *update.Response: meta.update_id != ${updateId}`;
    if (!body.outcome) return 'invalid *update.Response: outcome is not set';
  }
  return undefined;
}
