/**
 * Visibility: the records that ListWorkflowExecutions and CountWorkflowExecutions filter and order, built
 * from the runs the engine holds, with Temporal's query language (visibility-query.ts).
 */
import { invalidArgument } from './errors';
import type { ExecutionState } from './execution';
import { enums } from './proto';
import type { SearchAttributeRegistry } from './search-attributes';
import { parseVisibilityQuery, VisibilityQueryError, type VisibilityRecord } from './visibility-query';

const statusNames: Record<number, string> = {
  [enums.WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING]: 'Running',
  [enums.WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED]: 'Completed',
  [enums.WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_FAILED]: 'Failed',
  [enums.WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CANCELED]: 'Canceled',
  [enums.WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED]: 'Terminated',
  [enums.WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW]: 'ContinuedAsNew',
  [enums.WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TIMED_OUT]: 'TimedOut',
};

/** The attributes of one run as a visibility query sees them. */
export function visibilityRecord(ex: ExecutionState, registry: SearchAttributeRegistry): VisibilityRecord {
  return {
    ...registry.decode(ex.searchAttributes),
    WorkflowId: ex.workflowId,
    RunId: ex.runId,
    WorkflowType: ex.workflowType,
    ExecutionStatus: statusNames[ex.status],
    StartTime: ex.startTime,
    ExecutionTime: ex.executionTime,
    CloseTime: ex.closeTime,
    TaskQueue: ex.taskQueue,
    HistoryLength: ex.events.length,
    ExecutionDuration: ex.closeTime === undefined ? undefined : (ex.closeTime - ex.executionTime) * 1e6,
    ParentWorkflowId: ex.parent?.workflowId,
    ParentRunId: ex.parent?.runId,
    RootWorkflowId: ex.root.workflowId,
    RootRunId: ex.root.runId,
  };
}

export interface ListPage {
  executions: ExecutionState[];
  nextPageToken?: string;
}

/** Filters, orders and pages runs; the page token is the offset into the ordered result. */
export function listExecutions(
  executions: ExecutionState[],
  registry: SearchAttributeRegistry,
  query: string,
  pageSize: number,
  pageToken: string | undefined,
): ListPage {
  let parsed;
  try {
    parsed = parseVisibilityQuery(query, registry.types);
  } catch (error) {
    if (error instanceof VisibilityQueryError) throw invalidArgument(error.message);
    throw error;
  }
  // As the SQLite store of the real dev server, the reference for this server, does.
  if (parsed.ordered) throw invalidArgument("invalid query: operation is not supported: 'ORDER BY' clause");
  const records = executions.map((ex) => ({ ex, record: visibilityRecord(ex, registry) }));
  const matching = records.filter(({ record }) => parsed.matches(record));
  matching.sort((a, b) => parsed.compare(a.record, b.record));
  const offset = pageToken ? Number(pageToken) : 0;
  if (!Number.isInteger(offset) || offset < 0) throw invalidArgument('Invalid NextPageToken.');
  const page = matching.slice(offset, offset + pageSize).map(({ ex }) => ex);
  const next = offset + page.length;
  return { executions: page, nextPageToken: next < matching.length ? String(next) : undefined };
}
