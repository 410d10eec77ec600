// Shared vocabulary of the visibility query modules: value types, the error class, and the tables of
// built-in search attributes and execution statuses. Kept apart from `../visibility-query` so the lexer,
// parser and compiler can import it without an import cycle.

/** Temporal's search attribute types (`IndexedValueType` without the `INDEXED_VALUE_TYPE_` prefix). */
export type SearchAttributeType = 'Keyword' | 'Text' | 'Int' | 'Double' | 'Bool' | 'Datetime' | 'KeywordList';

/**
 * Value of one attribute on one execution: Datetime as epoch milliseconds (number); KeywordList as
 * string[]; absent = undefined.
 */
export type AttributeValue = string | number | boolean | string[] | undefined;

/** What the server knows about an execution: built-ins and custom attributes by name. */
export type VisibilityRecord = Record<string, AttributeValue>;

/**
 * A query the visibility store refuses. The server maps it to gRPC INVALID_ARGUMENT and sends the
 * message verbatim, so every message starts with Temporal's `invalid query: ` prefix
 * (`ConverterError.ToInvalidArgument` in temporalio/temporal
 * `common/persistence/visibility/store/query/errors.go`).
 */
export class VisibilityQueryError extends Error {
  override readonly name = 'VisibilityQueryError';
}

// The three message families of Temporal's query converter (same errors.go), so a user who greps
// Temporal's docs or issues for the text finds the same explanation.
export function malformedQuery(detail: string): VisibilityQueryError {
  return new VisibilityQueryError(`invalid query: malformed SQL query: ${detail}`);
}

export function invalidExpression(detail: string): VisibilityQueryError {
  return new VisibilityQueryError(`invalid query: invalid expression: ${detail}`);
}

export function notSupported(detail: string): VisibilityQueryError {
  return new VisibilityQueryError(`invalid query: operation is not supported: ${detail}`);
}

/**
 * Built-in search attributes and their types: Temporal's system attributes plus the predefined ones a
 * user may query (`system`, `predefinedWhiteList` and the worker-versioning entries of `predefined` in
 * temporalio/temporal `common/searchattribute/sadefs/constants.go`). `NamespaceId` is left out: the
 * server scopes every query to one namespace itself.
 *
 * Units the record must use: every Datetime in epoch milliseconds; `ExecutionDuration` in nanoseconds,
 * Temporal's unit, so that `ExecutionDuration > 1000000000` and `ExecutionDuration > '1s'` agree;
 * `ExecutionStatus` as a status name such as `'Running'`.
 */
export const builtInSearchAttributes: Readonly<Record<string, SearchAttributeType>> = Object.freeze({
  WorkflowId: 'Keyword',
  RunId: 'Keyword',
  WorkflowType: 'Keyword',
  StartTime: 'Datetime',
  ExecutionTime: 'Datetime',
  CloseTime: 'Datetime',
  ExecutionStatus: 'Keyword',
  TaskQueue: 'Keyword',
  HistoryLength: 'Int',
  HistorySizeBytes: 'Int',
  ExecutionDuration: 'Int',
  StateTransitionCount: 'Int',
  ParentWorkflowId: 'Keyword',
  ParentRunId: 'Keyword',
  RootWorkflowId: 'Keyword',
  RootRunId: 'Keyword',
  TemporalChangeVersion: 'KeywordList',
  BinaryChecksums: 'KeywordList',
  BuildIds: 'KeywordList',
  BatcherNamespace: 'Keyword',
  BatcherUser: 'Keyword',
  TemporalScheduledStartTime: 'Datetime',
  TemporalScheduledById: 'Keyword',
  TemporalSchedulePaused: 'Bool',
  TemporalNamespaceDivision: 'Keyword',
  TemporalPauseInfo: 'KeywordList',
  TemporalReportedProblems: 'KeywordList',
  TemporalWorkerDeployment: 'Keyword',
  TemporalWorkerDeploymentVersion: 'Keyword',
  TemporalWorkflowVersioningBehavior: 'Keyword',
  TemporalUsedWorkerDeploymentVersions: 'KeywordList',
});

/** Field names with special value handling, as in Temporal's converter. */
export const EXECUTION_STATUS = 'ExecutionStatus';
export const EXECUTION_DURATION = 'ExecutionDuration';
export const NAMESPACE_DIVISION = 'TemporalNamespaceDivision';

/** Temporal's `WorkflowExecutionStatus` enum: PascalCase name → wire number (go.temporal.io/api enums). */
const statusCodes: ReadonlyMap<string, number> = new Map([
  ['Unspecified', 0],
  ['Running', 1],
  ['Completed', 2],
  ['Failed', 3],
  ['Canceled', 4],
  ['Terminated', 5],
  ['ContinuedAsNew', 6],
  ['TimedOut', 7],
]);

/** The status names users write, for error messages (Unspecified is valid but never useful). */
export const statusNames: readonly string[] = [...statusCodes.keys()].filter((n) => n !== 'Unspecified');

/**
 * Status name → enum number. Accepts the PascalCase name and the SCREAMING_CASE proto name, like
 * `WorkflowExecutionStatusFromString` in go.temporal.io/api; case-sensitive there too.
 */
export function statusCode(name: string): number | undefined {
  const prefix = 'WORKFLOW_EXECUTION_STATUS_';
  if (name.startsWith(prefix)) {
    const wanted = name.slice(prefix.length);
    for (const [pascal, code] of statusCodes) {
      if (toScreamingCase(pascal) === wanted) return code;
    }
    return undefined;
  }
  return statusCodes.get(name);
}

export function isStatusCode(code: number): boolean {
  return [...statusCodes.values()].includes(code);
}

function toScreamingCase(pascal: string): string {
  return pascal.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();
}
