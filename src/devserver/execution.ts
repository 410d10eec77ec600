/**
 * The mutable state of one workflow run, as the dev server keeps and persists it, and the primitives that
 * append to its history. Everything here is plain JSON so that the write-ahead log can store it as is.
 */
import { duration, enums, timestamp, type Pb } from './proto';

const { EventType, TaskQueueKind } = enums;

/** A workflow task: scheduled, then started by a poller, then completed, failed or timed out. */
export interface WorkflowTaskState {
  scheduledEventId: number;
  /** 0 until a poller takes it. */
  startedEventId: number;
  attempt: number;
  /** Attempts after the first are transient: their events are written only when one completes. */
  transient: boolean;
  /**
   * Scheduled only to deliver updates: its events are written when it completes with anything but
   * rejections, or as soon as another event reaches the run; otherwise it leaves no trace (Temporal's
   * speculative workflow task). Never persisted.
   */
  speculative?: boolean;
  /** Scheduled because the worker asked for a new task (a heartbeat): it re-sends no update already sent. */
  heartbeat?: boolean;
  onSticky: boolean;
  scheduledTime: number;
  startedTime?: number;
  identity?: string;
  requestId?: string;
  /** Not before this time (workflow-task retry backoff, first-task backoff). */
  notBefore?: number;
  /** Which dispatch of the task is current; a queued reference with another one is stale. Not persisted meaningfully. */
  seq?: number;
}

export interface RetryPolicyState {
  initialIntervalMs: number;
  backoffCoefficient: number;
  maximumIntervalMs: number;
  /** 0 = unlimited. */
  maximumAttempts: number;
  nonRetryableErrorTypes: string[];
}

export interface ActivityState {
  scheduledEventId: number;
  activityId: string;
  activityType: string;
  taskQueue: string;
  attempt: number;
  /** `backoff`: waiting for the retry interval before the next attempt is queued. */
  phase: 'scheduled' | 'started' | 'backoff';
  scheduledTime: number;
  attemptScheduledTime: number;
  startedTime?: number;
  identity?: string;
  scheduleToCloseMs: number;
  scheduleToStartMs: number;
  startToCloseMs: number;
  heartbeatMs: number;
  retry: RetryPolicyState;
  retryPolicy: Pb;
  heartbeatDetails?: Pb;
  lastHeartbeatTime?: number;
  lastFailure?: Pb;
  cancelRequested: boolean;
  lastAttemptCompleteTime?: number;
}

export interface TimerState {
  timerId: string;
  startedEventId: number;
  fireAt: number;
}

export interface ChildState {
  initiatedEventId: number;
  namespace: string;
  workflowId: string;
  workflowType: string;
  parentClosePolicy: number;
  runId?: string;
}

/** Where an update that the workflow accepted is in history: its accepted and, once done, completed event. */
export interface UpdateRecord {
  acceptedEventId: number;
  completedEventId?: number;
}

export interface ExecutionLink {
  namespace: string;
  workflowId: string;
  runId: string;
}

export interface ExecutionState {
  namespace: string;
  workflowId: string;
  runId: string;
  firstRunId: string;
  workflowType: string;
  taskQueue: string;
  /** WorkflowExecutionStatus enum value. */
  status: number;
  startTime: number;
  executionTime: number;
  closeTime?: number;
  requestIds: string[];
  memo?: Pb;
  /** `indexedFields` of the run's search attributes, JSON-form payloads by name. */
  searchAttributes: Record<string, Pb>;
  userMetadata?: Pb;
  parent?: ExecutionLink & { initiatedEventId: number };
  root: { workflowId: string; runId: string };
  workflowTaskTimeoutMs: number;
  runTimeoutMs: number;
  executionTimeoutMs: number;
  /** Deadline of the whole chain of runs (execution timeout), carried across continue-as-new. */
  executionExpiresAt?: number;
  retryPolicy?: Pb;
  attempt: number;
  stickyQueue?: string;
  stickyScheduleToStartMs: number;
  /** Started event id of the last completed workflow task. */
  previousStartedEventId: number;
  wft?: WorkflowTaskState;
  activities: Record<string, ActivityState>;
  timers: Record<string, TimerState>;
  children: Record<string, ChildState>;
  cancelRequested: boolean;
  /** Next run of the chain (continue-as-new, retry). */
  newRunId?: string;
  historySizeBytes: number;
  events: Pb[];
  /** Events that arrived while a workflow task ran; written after it completes. */
  buffered: Pb[];
  /** Updates in history by update id (absent in logs written before updates existed). */
  updates?: Record<string, UpdateRecord>;
}

export const executionKey = (namespace: string, workflowId: string, runId: string) =>
  `${namespace}/${workflowId}/${runId}`;

export const keyOf = (ex: Pick<ExecutionState, 'namespace' | 'workflowId' | 'runId'>) =>
  executionKey(ex.namespace, ex.workflowId, ex.runId);

export const isOpen = (ex: ExecutionState) =>
  ex.status === enums.WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING;

export const nextEventId = (ex: ExecutionState) => ex.events.length + 1;

let taskIdCounter = Date.now();

/** The attribute field of each event type, e.g. `activityTaskScheduledEventAttributes`. */
export function attributesField(eventType: number): string {
  const name = EventType[eventType] as unknown as string; // EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
  const camel = name
    .replace(/^EVENT_TYPE_/, '')
    .toLowerCase()
    .replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
  return `${camel}EventAttributes`;
}

/** Builds an event without an id; `writeEvent` or the buffer flush gives it one. */
export function makeEvent(eventType: number, attributes: Pb, now: number, extra: Pb = {}): Pb {
  return { eventTime: timestamp(now), eventType, [attributesField(eventType)]: attributes, ...extra };
}

/** Appends an event to history now, giving it the next id. Returns the id. */
export function writeEvent(ex: ExecutionState, event: Pb): number {
  const eventId = nextEventId(ex);
  event.eventId = String(eventId);
  event.taskId = String(++taskIdCounter);
  ex.events.push(event);
  ex.historySizeBytes += JSON.stringify(event).length;
  return eventId;
}

/**
 * The scheduled and started events of a workflow task that are not in history yet (a transient retry or a
 * speculative task): the worker gets them at the end of the task's history, and they are written when the
 * task completes. Their ids are the next ones of the history.
 */
export function workflowTaskEvents(ex: ExecutionState, startedAttrs: Pb, startedTime: number): Pb[] {
  const wft = ex.wft!;
  const sticky = wft.onSticky && ex.stickyQueue;
  const scheduled = makeEvent(
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    {
      taskQueue: sticky
        ? { name: ex.stickyQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_STICKY, normalName: ex.taskQueue }
        : { name: ex.taskQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
      startToCloseTimeout: duration(ex.workflowTaskTimeoutMs),
      attempt: wft.attempt,
    },
    wft.scheduledTime,
    { eventId: String(wft.scheduledEventId) },
  );
  const started = makeEvent(
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    { scheduledEventId: String(wft.scheduledEventId), ...startedAttrs },
    startedTime,
    { eventId: String(wft.startedEventId) },
  );
  return [scheduled, started];
}

/**
 * A speculative workflow task becomes an ordinary one: its scheduled (and, once started, started) events
 * enter history now, so that whatever happens next follows them, as Temporal converts a speculative task to
 * a normal one when the run changes. Nothing was written since the task got its ids, so they stay valid.
 */
export function materializeSpeculativeTask(ex: ExecutionState): void {
  const wft = ex.wft;
  if (!wft?.speculative) return;
  wft.speculative = false;
  if (wft.startedEventId === 0) wft.scheduledEventId = nextEventId(ex);
  const [scheduled, started] = workflowTaskEvents(ex, { identity: wft.identity }, wft.startedTime ?? 0);
  writeEvent(ex, scheduled!);
  if (wft.startedEventId > 0) writeEvent(ex, started!);
}

/**
 * Adds an event that arrived from outside the workflow task (signal, activity result, timer…): written
 * now, or buffered while a workflow task is running so the worker's view of history stays consistent.
 */
export function addExternalEvent(ex: ExecutionState, event: Pb): void {
  materializeSpeculativeTask(ex);
  if (ex.wft && ex.wft.startedEventId > 0) ex.buffered.push(event);
  else writeEvent(ex, event);
}

/**
 * Writes buffered events. An event that refers to the one written just before it (an activity's
 * completion refers to its started event) carries `startedEventId: 'previous'` until then.
 */
export function flushBuffered(ex: ExecutionState): boolean {
  const buffered = ex.buffered;
  ex.buffered = [];
  for (const event of buffered) {
    const attrs = event[attributesField(event.eventType as number)] as Pb;
    if (attrs?.startedEventId === 'previous') attrs.startedEventId = String(nextEventId(ex) - 1);
    writeEvent(ex, event);
  }
  return buffered.length > 0;
}

/** Writes an activity attempt's started event and its outcome event, buffered together if need be. */
export function addActivityOutcome(ex: ExecutionState, started: Pb, outcome: Pb): void {
  materializeSpeculativeTask(ex);
  const attrs = outcome[attributesField(outcome.eventType as number)] as Pb;
  if (ex.wft && ex.wft.startedEventId > 0) {
    attrs.startedEventId = 'previous';
    ex.buffered.push(started, outcome);
  } else {
    attrs.startedEventId = String(writeEvent(ex, started));
    writeEvent(ex, outcome);
  }
}
