/**
 * Errors the dev server returns, with the gRPC status codes and messages Temporal uses, so that the SDK
 * turns them into the same typed errors (WorkflowNotFoundError, WorkflowExecutionAlreadyStartedError…).
 */
import { status } from '@grpc/grpc-js';

export class ServiceError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = 'ServiceError';
  }
}

export const invalidArgument = (message: string) => new ServiceError(status.INVALID_ARGUMENT, message);
export const notFound = (message: string) => new ServiceError(status.NOT_FOUND, message);
export const alreadyExists = (message: string) => new ServiceError(status.ALREADY_EXISTS, message);
export const failedPrecondition = (message: string) => new ServiceError(status.FAILED_PRECONDITION, message);
export const unimplemented = (message: string) => new ServiceError(status.UNIMPLEMENTED, message);

export function workflowNotFound(workflowId: string, runId?: string): ServiceError {
  return notFound(
    runId
      ? `workflow execution not found for workflow ID "${workflowId}" and run ID "${runId}"`
      : `workflow not found for ID: ${workflowId}`,
  );
}

export const workflowCompleted = () => notFound('workflow execution already completed');

export function namespaceNotFound(namespace: string): ServiceError {
  return notFound(`Namespace ${namespace} is not found.`);
}

export function requireField(value: unknown, field: string): void {
  if (value === undefined || value === null || value === '') {
    throw invalidArgument(`${field} is not set on request.`);
  }
}

/** Temporal's minimum deadline for a long poll (`MinLongPollTimeout`). */
const minLongPollTimeoutMs = 2000;

/**
 * Refuses a task-queue poll without a deadline, or with one too close to wait on, as Temporal's frontend does
 * (`ValidateLongPollContextTimeout`): the SDK always sets one; a hand-written client that forgets learns it here.
 */
export function requireLongPollDeadline(deadline: Date | number | undefined, now = Date.now()): void {
  const ms = deadline instanceof Date ? deadline.getTime() : (deadline ?? Infinity);
  if (!Number.isFinite(ms)) throw invalidArgument('Context timeout is not set.');
  if (ms - now < minLongPollTimeoutMs) throw failedPrecondition('Context timeout is too short.');
}
