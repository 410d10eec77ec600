/**
 * The dev server's history and matching engine: workflow runs, their histories, workflow and activity
 * tasks, timers, children, queries, and the seams where updates (updates.ts) meet workflow tasks. It follows Temporal's history service (temporalio/temporal
 * `service/history`) for the behaviour the SDK depends on; see shared/docs/temporal-devserver-notes.md.
 *
 * Every change happens inside a transaction: mutations are synchronous, then the touched runs are written
 * to the write-ahead log (when there is one), and only then do tasks reach pollers and replies go out.
 */
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { Deadlines } from './deadlines';
import {
  addActivityOutcome,
  addExternalEvent,
  attributesField,
  executionKey,
  flushBuffered,
  isOpen,
  keyOf,
  makeEvent,
  materializeSpeculativeTask,
  nextEventId,
  workflowTaskEvents,
  writeEvent,
  type ActivityState,
  type ExecutionState,
} from './execution';
import {
  alreadyExists,
  failedPrecondition,
  invalidArgument,
  namespaceNotFound,
  notFound,
  requireField,
  ServiceError,
  workflowCompleted,
  workflowNotFound,
} from './errors';
import { TaskQueues, type QueueKind } from './matching';
import { duration, durationToMs, enums, timestamp, type Pb } from './proto';
import {
  decideRetry,
  normaliseActivityTimeouts,
  normaliseRetryPolicy,
  retryTimeoutFailure,
  timeoutFailure,
} from './retry';
import {
  mergeSearchAttributes,
  SearchAttributeRegistry,
  type SearchAttributeTypeName,
} from './search-attributes';
import type { WriteAheadLog } from './store';
import { checkFirstRun, checkPollRequest, checkUpdateRequest } from './update-protocol';
import { Updates, type UpdateAnswers } from './updates';
import { listExecutions, type ListPage } from './visibility';

const {
  EventType: E,
  CommandType: C,
  WorkflowExecutionStatus: S,
  TimeoutType,
  RetryState,
  WorkflowTaskFailedCause: Cause,
  ParentClosePolicy,
  WorkflowIdReusePolicy: Reuse,
  WorkflowIdConflictPolicy: Conflict,
  HistoryEventFilterType,
  QueryResultType,
  QueryRejectCondition,
  TaskQueueKind,
  TaskQueueType,
  PendingActivityState,
  PendingWorkflowTaskState,
} = enums;

/** Namespace retention when none is given: 30 days. */
export const DEFAULT_RETENTION_MS = 30 * 24 * 3600_000;

export interface EngineOptions {
  /** How long an empty long poll waits before answering "nothing yet". Default 60 s (Temporal's). */
  longPollTimeoutMs?: number;
  /** History length at which workflow tasks suggest continue-as-new. Default 4096 events. */
  suggestContinueAsNewEvents?: number;
  /** History size at which workflow tasks suggest continue-as-new. Default 4 MiB. */
  suggestContinueAsNewBytes?: number;
  /** Namespaces besides `default`. */
  namespaces?: string[];
  /**
   * How long closed runs are kept before they are deleted (namespace retention). Default 30 days, longer than
   * the real dev server's 24 h: a researcher comes back to last week's experiments. UpdateNamespace changes it.
   */
  retentionMs?: number;
  /** Log bytes appended after which the write-ahead log is rewritten as a snapshot. Default 64 MiB. */
  compactAfterBytes?: number;
  /**
   * How long UpdateWorkflowExecution and PollWorkflowExecutionUpdate wait before answering with the stage
   * reached, so that the SDK asks again. Default 20 s (Temporal's `history.longPollExpirationInterval`).
   */
  updateWaitTimeoutMs?: number;
  log?: (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void;
}

interface NamespaceState {
  name: string;
  id: string;
  retentionMs: number;
  searchAttributes: SearchAttributeRegistry;
}

type TaskRef =
  | { kind: 'workflow'; key: string; seq: number; sticky: boolean }
  | { kind: 'activity'; key: string; scheduledEventId: number; attempt: number }
  | { kind: 'query'; key: string; queryId: string; sticky: boolean };

interface TaskToken {
  k: 'w' | 'a' | 'q';
  ns: string;
  wid: string;
  rid: string;
  /** Workflow task: scheduled and started event ids; activity: scheduled event id and attempt. */
  s?: number;
  st?: number;
  at?: number;
  q?: string;
}

interface PendingQuery {
  id: string;
  key: string;
  query: Pb;
  /** `wft`: rides on the workflow task that is running; `task`: sent as a query task. */
  dispatched?: 'wft' | 'task';
  /** A poller took its query task. */
  taken?: boolean;
  resolve: (result: Pb) => void;
  reject: (error: Error) => void;
}

/** A cancellable caller: grpc-js calls emit 'cancelled' when the client goes away. */
export interface CallLike {
  on(event: 'cancelled', listener: () => void): unknown;
  removeListener?(event: 'cancelled', listener: () => void): unknown;
}

const workflowTaskStickyDefaultMs = 10_000;
const closeEventTypes = new Set<number>([
  E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
  E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
  E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
  E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
  E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
  E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
]);

export class Engine {
  readonly namespaces = new Map<string, NamespaceState>();
  readonly executions = new Map<string, ExecutionState>();
  /** Latest run of each workflow id: `${namespace}/${workflowId}` → run id. */
  private readonly currentRuns = new Map<string, string>();
  private readonly queues = new TaskQueues<TaskRef>();
  private readonly deadlines: Deadlines;
  private readonly queries = new Map<string, PendingQuery>();
  private readonly updates: Updates;
  private readonly historyWaiters = new Map<string, Set<() => void>>();
  private readonly persistedEvents = new Map<string, number>();
  private dirty = new Set<ExecutionState>();
  private deleted: string[] = [];
  private dirtyNamespaces = new Set<NamespaceState>();
  private effects: (() => void)[] = [];
  private wftSeq = 0;
  private compacting = false;
  private readonly compactAfterBytes: number;
  private readonly longPollTimeoutMs: number;
  private readonly suggestEvents: number;
  private readonly suggestBytes: number;
  private stopped = false;

  constructor(
    private readonly options: EngineOptions = {},
    private wal?: WriteAheadLog,
    readonly now: () => number = Date.now,
  ) {
    this.deadlines = new Deadlines(now);
    this.longPollTimeoutMs = options.longPollTimeoutMs ?? 60_000;
    this.suggestEvents = options.suggestContinueAsNewEvents ?? 4096;
    this.suggestBytes = options.suggestContinueAsNewBytes ?? 4 * 1024 * 1024;
    this.compactAfterBytes = options.compactAfterBytes ?? 64 * 1024 * 1024;
    this.updates = new Updates({
      afterCommit: (effect) => this.afterCommit(effect),
      waitTimeoutMs: options.updateWaitTimeoutMs ?? 20_000,
    });
    for (const name of ['default', ...(options.namespaces ?? [])]) this.ensureNamespace(name);
  }

  private log(level: 'debug' | 'info' | 'warn' | 'error', message: string): void {
    this.options.log?.(level, message);
  }

  // ---------------------------------------------------------------------------------------------
  // Transactions and persistence

  private touch(ex: ExecutionState): void {
    this.dirty.add(ex);
  }

  private afterCommit(effect: () => void): void {
    this.effects.push(effect);
  }

  /** Runs a synchronous change, makes it durable, then releases its effects. */
  async transact<T>(change: () => T): Promise<T> {
    let result: T;
    try {
      result = change();
    } finally {
      await this.commit();
    }
    return result;
  }

  private async commit(): Promise<void> {
    const dirty = [...this.dirty];
    const namespaces = [...this.dirtyNamespaces];
    const deleted = this.deleted;
    const effects = this.effects;
    this.dirty = new Set();
    this.dirtyNamespaces = new Set();
    this.deleted = [];
    this.effects = [];
    if (this.wal && (dirty.length > 0 || namespaces.length > 0 || deleted.length > 0)) {
      await this.wal.append({
        ns: namespaces.map((ns) => this.namespaceRecord(ns)),
        x: dirty.map((ex) => this.executionRecord(ex)),
        del: deleted.length ? deleted : undefined,
      });
    }
    for (const ex of dirty) this.wakeHistoryWaiters(keyOf(ex));
    for (const effect of effects) effect();
    if (this.wal && this.wal.appendedBytes > this.compactAfterBytes) void this.compact();
  }

  private namespaceRecord(ns: NamespaceState): Pb {
    return {
      name: ns.name,
      id: ns.id,
      retentionMs: ns.retentionMs,
      sa: Object.fromEntries(ns.searchAttributes.types),
    };
  }

  private executionRecord(ex: ExecutionState): Pb {
    const key = keyOf(ex);
    const from = this.persistedEvents.get(key) ?? 0;
    this.persistedEvents.set(key, ex.events.length);
    const { events, ...state } = ex;
    // A speculative task is never persisted (as on Temporal): after a restart its updates are gone too.
    if (state.wft?.speculative) state.wft = undefined;
    return { s: state, from, e: events.slice(from) };
  }

  /** Rebuilds state from one write-ahead-log transaction (startup only). */
  replay(transaction: unknown): void {
    const tx = transaction as { ns?: Pb[]; x?: Pb[]; del?: string[] };
    for (const key of tx.del ?? []) this.forget(key);
    for (const record of tx.ns ?? []) {
      const ns = this.ensureNamespace(record.name as string, record.id as string);
      ns.retentionMs = record.retentionMs as number;
      for (const [name, type] of Object.entries(record.sa as Record<string, SearchAttributeTypeName>)) {
        ns.searchAttributes.add(name, type);
      }
    }
    for (const record of tx.x ?? []) {
      const state = record.s as Omit<ExecutionState, 'events'>;
      const key = keyOf(state);
      const previous = this.executions.get(key);
      const events = (previous?.events ?? []).slice(0, record.from as number).concat(record.e as Pb[]);
      const ex: ExecutionState = { ...state, events };
      this.executions.set(key, ex);
      this.persistedEvents.set(key, events.length);
      const current = this.executions.get(
        executionKey(ex.namespace, ex.workflowId, this.currentRunId(ex) ?? ''),
      );
      if (!current || current.startTime <= ex.startTime) {
        this.currentRuns.set(`${ex.namespace}/${ex.workflowId}`, ex.runId);
      }
    }
  }

  private currentRunId(ex: Pick<ExecutionState, 'namespace' | 'workflowId'>): string | undefined {
    return this.currentRuns.get(`${ex.namespace}/${ex.workflowId}`);
  }

  /**
   * Rewrites the log as one record per run, dropping superseded states. The snapshot is taken in one
   * synchronous step; transactions committed meanwhile are appended after it, so replay stays exact.
   */
  private async compact(): Promise<void> {
    if (!this.wal || this.compacting) return;
    this.compacting = true;
    try {
      const snapshot: unknown[] = [
        { ns: [...this.namespaces.values()].map((ns) => this.namespaceRecord(ns)) },
      ];
      for (const ex of this.executions.values()) {
        this.persistedEvents.set(keyOf(ex), 0);
        snapshot.push({ x: [this.executionRecord(ex)] });
      }
      await this.wal.rewrite(snapshot);
    } finally {
      this.compacting = false;
    }
  }

  /** After replay: compacts the log and re-arms every queue entry and deadline of the open runs. */
  async resumeAfterReplay(): Promise<void> {
    await this.compact();
    await this.transact(() => {
      for (const ex of [...this.executions.values()]) {
        if (!isOpen(ex)) {
          this.armRetention(ex);
          continue;
        }
        this.armRunDeadlines(ex);
        if (ex.wft) {
          if (ex.wft.startedEventId > 0) this.armWorkflowTaskTimeout(ex);
          else this.dispatchWorkflowTask(ex);
        }
        for (const activity of Object.values(ex.activities)) this.armActivity(ex, activity);
        for (const timer of Object.values(ex.timers)) this.armTimer(ex, timer.timerId);
        for (const child of Object.values(ex.children)) {
          if (!child.runId) this.startChild(ex, child.initiatedEventId);
        }
      }
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.deadlines.stop();
    this.queues.releaseAll();
    for (const query of this.queries.values())
      query.reject(new ServiceError(status.UNAVAILABLE, 'server is shutting down'));
    this.queries.clear();
    this.updates.stop();
    for (const waiters of this.historyWaiters.values()) for (const wake of waiters) wake();
    await this.wal?.close();
    this.wal = undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // Namespaces and search attributes

  private ensureNamespace(name: string, id: string = randomUUID()): NamespaceState {
    let ns = this.namespaces.get(name);
    if (!ns) {
      const retentionMs = this.options.retentionMs ?? DEFAULT_RETENTION_MS;
      ns = { name, id, retentionMs, searchAttributes: new SearchAttributeRegistry() };
      this.namespaces.set(name, ns);
    }
    return ns;
  }

  namespace(name: string | undefined): NamespaceState {
    requireField(name, 'Namespace');
    const ns = this.namespaces.get(name!);
    if (!ns) throw namespaceNotFound(name!);
    return ns;
  }

  registerNamespace(name: string, retentionMs: number): void {
    requireField(name, 'Namespace');
    if (this.namespaces.has(name)) throw alreadyExists('Namespace already exists.');
    const ns = this.ensureNamespace(name);
    if (retentionMs > 0) ns.retentionMs = retentionMs;
    this.dirtyNamespaces.add(ns);
  }

  /** UpdateNamespace: only the retention can change here; everything else is refused rather than ignored. */
  updateNamespace(req: Pb): NamespaceState {
    const ns = this.namespace(req.namespace as string);
    const unsupported = [
      'updateInfo',
      'replicationConfig',
      'securityToken',
      'deleteBadBinary',
      'promoteNamespace',
    ].filter(
      (field) => req[field] !== undefined && req[field] !== null && req[field] !== '' && req[field] !== false,
    );
    if (unsupported.length) {
      throw invalidArgument(
        `The Labline dev server updates only a namespace's retention, not ${unsupported.join(', ')}.`,
      );
    }
    const retentionMs = durationToMs((req.config as Pb | undefined)?.workflowExecutionRetentionTtl as Pb);
    if (retentionMs > 0) {
      ns.retentionMs = retentionMs;
      this.dirtyNamespaces.add(ns);
      // Closed runs get the new retention now, as they would at this server's next start (which arms every
      // deletion from the namespace's retention): a longer one must not lose runs closed before it was set.
      for (const ex of this.executions.values()) {
        if (ex.namespace === ns.name && !isOpen(ex)) this.armRetention(ex);
      }
    }
    return ns;
  }

  addSearchAttributes(namespace: string, attributes: Record<string, SearchAttributeTypeName>): void {
    const ns = this.namespace(namespace);
    for (const name of Object.keys(attributes)) {
      if (ns.searchAttributes.types.has(name)) {
        throw alreadyExists(`Search attribute ${name} already exists.`);
      }
    }
    for (const [name, type] of Object.entries(attributes)) ns.searchAttributes.add(name, type);
    this.dirtyNamespaces.add(ns);
  }

  removeSearchAttributes(namespace: string, names: string[]): void {
    const ns = this.namespace(namespace);
    for (const name of names) {
      if (!ns.searchAttributes.types.has(name)) throw notFound(`Search attribute ${name} doesn't exist.`);
    }
    for (const name of names) ns.searchAttributes.remove(name);
    this.dirtyNamespaces.add(ns);
  }

  // ---------------------------------------------------------------------------------------------
  // Lookup

  private run(namespace: string, workflowId: string | undefined, runId?: string | null): ExecutionState {
    requireField(workflowId, 'WorkflowId');
    const id = runId || this.currentRuns.get(`${namespace}/${workflowId}`);
    const ex = id ? this.executions.get(executionKey(namespace, workflowId!, id)) : undefined;
    if (!ex) throw workflowNotFound(workflowId!, runId || undefined);
    return ex;
  }

  /** The run addressed by a request's `execution`, following `firstExecutionRunId` if given. */
  private addressed(
    namespace: string,
    execution: Pb | undefined,
    firstExecutionRunId?: string,
  ): ExecutionState {
    const ex = this.run(namespace, execution?.workflowId as string, execution?.runId as string);
    if (firstExecutionRunId && ex.firstRunId !== firstExecutionRunId) {
      throw workflowNotFound(ex.workflowId, firstExecutionRunId);
    }
    return ex;
  }

  // ---------------------------------------------------------------------------------------------
  // Starting runs

  /** StartWorkflowExecution and the start half of SignalWithStart. */
  startWorkflow(req: Pb, signal?: { name: string; input?: Pb; header?: Pb; identity?: string }): Pb {
    const ns = this.namespace(req.namespace as string);
    requireField(req.workflowId, 'WorkflowId');
    requireField(req.workflowType?.name, 'WorkflowType');
    requireField(req.taskQueue?.name, 'TaskQueue');
    if ((req.workflowId as string).length > 1000) throw invalidArgument('WorkflowId exceeds length limit.');
    for (const field of ['workflowExecutionTimeout', 'workflowRunTimeout', 'workflowTaskTimeout']) {
      if (durationToMs(req[field] as Pb) < 0) throw invalidArgument(`Invalid ${field}.`);
    }
    if (req.cronSchedule)
      throw invalidArgument('Cron schedules are not supported by the Labline dev server.');
    ns.searchAttributes.validate(ns.name, req.searchAttributes?.indexedFields as Record<string, Pb>);
    if (req.retryPolicy) normaliseRetryPolicy(req.retryPolicy as Pb);

    const currentId = this.currentRuns.get(`${ns.name}/${req.workflowId}`);
    const current = currentId
      ? this.executions.get(executionKey(ns.name, req.workflowId as string, currentId))
      : undefined;
    const requestId = (req.requestId as string) || randomUUID();
    if (current && current.requestIds.includes(requestId)) {
      // The same request again (a client retry): answer as the first time.
      return { runId: current.runId, started: true, status: current.status };
    }
    if (current && isOpen(current)) {
      const conflict = (req.workflowIdConflictPolicy as number) || Conflict.WORKFLOW_ID_CONFLICT_POLICY_FAIL;
      const terminateIfRunning =
        req.workflowIdReusePolicy === Reuse.WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING;
      if (conflict === Conflict.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING) {
        if (signal)
          this.signalRun(current, signal.name, signal.input, signal.header, signal.identity, requestId);
        return { runId: current.runId, started: false, status: current.status };
      }
      if (conflict === Conflict.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING || terminateIfRunning) {
        this.terminateRun(
          current,
          'terminated by a new start with the same workflow id',
          undefined,
          req.identity as string,
        );
      } else {
        throw alreadyExists(
          `Workflow execution is already running. WorkflowId: ${current.workflowId}, RunId: ${current.runId}.`,
        );
      }
    } else if (current) {
      const reuse = (req.workflowIdReusePolicy as number) || Reuse.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE;
      const failedLike =
        current.status !== S.WORKFLOW_EXECUTION_STATUS_COMPLETED &&
        current.status !== S.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW;
      if (
        reuse === Reuse.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE ||
        (reuse === Reuse.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY && !failedLike)
      ) {
        throw alreadyExists(
          `Workflow execution already finished and WorkflowIdReusePolicy is ${
            Reuse[reuse]
          }. WorkflowId: ${current.workflowId}, RunId: ${current.runId}.`,
        );
      }
    }
    const ex = this.createRun({
      namespace: ns.name,
      workflowId: req.workflowId as string,
      workflowType: req.workflowType.name as string,
      taskQueue: req.taskQueue.name as string,
      input: req.input as Pb,
      header: req.header as Pb,
      memo: req.memo as Pb,
      searchAttributes: (req.searchAttributes?.indexedFields as Record<string, Pb>) ?? {},
      userMetadata: req.userMetadata as Pb,
      executionTimeoutMs: durationToMs(req.workflowExecutionTimeout as Pb),
      runTimeoutMs: durationToMs(req.workflowRunTimeout as Pb),
      workflowTaskTimeoutMs: durationToMs(req.workflowTaskTimeout as Pb),
      retryPolicy: req.retryPolicy as Pb,
      identity: req.identity as string,
      requestId,
      startDelayMs: durationToMs(req.workflowStartDelay as Pb),
      signal,
    });
    return { runId: ex.runId, started: true, status: ex.status };
  }

  private createRun(params: {
    namespace: string;
    workflowId: string;
    workflowType: string;
    taskQueue: string;
    input?: Pb;
    header?: Pb;
    memo?: Pb;
    searchAttributes: Record<string, Pb>;
    userMetadata?: Pb;
    executionTimeoutMs: number;
    runTimeoutMs: number;
    workflowTaskTimeoutMs: number;
    retryPolicy?: Pb;
    identity?: string;
    requestId?: string;
    startDelayMs?: number;
    signal?: { name: string; input?: Pb; header?: Pb; identity?: string };
    parent?: ExecutionState['parent'];
    root?: ExecutionState['root'];
    previous?: ExecutionState;
    attempt?: number;
    initiator?: number;
    continuedFailure?: Pb;
    lastCompletionResult?: Pb;
  }): ExecutionState {
    const now = this.now();
    const runId = randomUUID();
    const previous = params.previous;
    const workflowTaskTimeoutMs = Math.min(params.workflowTaskTimeoutMs || 10_000, 120_000);
    const executionTimeoutMs = params.executionTimeoutMs;
    let runTimeoutMs = params.runTimeoutMs;
    if (executionTimeoutMs > 0 && (runTimeoutMs === 0 || runTimeoutMs > executionTimeoutMs)) {
      runTimeoutMs = executionTimeoutMs;
    }
    const backoffMs = params.startDelayMs ?? 0;
    const ex: ExecutionState = {
      namespace: params.namespace,
      workflowId: params.workflowId,
      runId,
      firstRunId: previous?.firstRunId ?? runId,
      workflowType: params.workflowType,
      taskQueue: params.taskQueue,
      status: S.WORKFLOW_EXECUTION_STATUS_RUNNING,
      startTime: now,
      executionTime: now + backoffMs,
      requestIds: params.requestId ? [params.requestId] : [],
      memo: params.memo,
      searchAttributes: params.searchAttributes,
      userMetadata: params.userMetadata,
      parent: params.parent,
      root: params.root ?? { workflowId: params.workflowId, runId },
      workflowTaskTimeoutMs,
      runTimeoutMs,
      executionTimeoutMs,
      executionExpiresAt:
        previous?.executionExpiresAt ?? (executionTimeoutMs > 0 ? now + executionTimeoutMs : undefined),
      retryPolicy: params.retryPolicy,
      attempt: params.attempt ?? 1,
      stickyScheduleToStartMs: workflowTaskStickyDefaultMs,
      previousStartedEventId: 0,
      activities: {},
      timers: {},
      children: {},
      cancelRequested: false,
      historySizeBytes: 0,
      events: [],
      buffered: [],
    };
    if (params.root === undefined && !params.parent) ex.root = { workflowId: ex.workflowId, runId };
    const key = keyOf(ex);
    this.executions.set(key, ex);
    this.currentRuns.set(`${ex.namespace}/${ex.workflowId}`, runId);
    this.touch(ex);
    writeEvent(
      ex,
      makeEvent(
        E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
        {
          workflowType: { name: ex.workflowType },
          taskQueue: { name: ex.taskQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
          input: params.input,
          header: params.header,
          workflowExecutionTimeout: executionTimeoutMs ? duration(executionTimeoutMs) : undefined,
          workflowRunTimeout: runTimeoutMs ? duration(runTimeoutMs) : undefined,
          workflowTaskTimeout: duration(workflowTaskTimeoutMs),
          identity: params.identity,
          originalExecutionRunId: runId,
          firstExecutionRunId: ex.firstRunId,
          continuedExecutionRunId: previous?.runId,
          initiator: params.initiator,
          continuedFailure: params.continuedFailure,
          lastCompletionResult: params.lastCompletionResult,
          attempt: ex.attempt,
          workflowExecutionExpirationTime: ex.executionExpiresAt
            ? timestamp(ex.executionExpiresAt)
            : undefined,
          firstWorkflowTaskBackoff: backoffMs ? duration(backoffMs) : undefined,
          memo: params.memo,
          searchAttributes: Object.keys(ex.searchAttributes).length
            ? { indexedFields: ex.searchAttributes }
            : undefined,
          retryPolicy: params.retryPolicy,
          parentWorkflowNamespace: params.parent?.namespace,
          parentWorkflowExecution: params.parent
            ? { workflowId: params.parent.workflowId, runId: params.parent.runId }
            : undefined,
          parentInitiatedEventId: params.parent ? String(params.parent.initiatedEventId) : undefined,
          rootWorkflowExecution: ex.root,
          workflowId: ex.workflowId,
        },
        now,
        { userMetadata: params.userMetadata },
      ),
    );
    if (params.signal) {
      writeEvent(
        ex,
        makeEvent(
          E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
          {
            signalName: params.signal.name,
            input: params.signal.input,
            header: params.signal.header,
            identity: params.signal.identity,
          },
          now,
        ),
      );
    }
    this.armRunDeadlines(ex);
    this.scheduleWorkflowTask(ex, 1, backoffMs > 0 ? now + backoffMs : undefined);
    return ex;
  }

  private armRunDeadlines(ex: ExecutionState): void {
    const key = keyOf(ex);
    if (ex.runTimeoutMs > 0) {
      this.deadlines.set(`${key}\u0000run-timeout`, ex.startTime + ex.runTimeoutMs, () =>
        this.onRunTimeout(key),
      );
    }
    if (ex.executionExpiresAt) {
      this.deadlines.set(`${key}\u0000execution-timeout`, ex.executionExpiresAt, () =>
        this.onRunTimeout(key),
      );
    }
  }

  private onRunTimeout(key: string): void {
    void this.transact(() => {
      const ex = this.executions.get(key);
      if (!ex || !isOpen(ex)) return;
      this.closeRun(ex, S.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT, {
        retryState: RetryState.RETRY_STATE_TIMEOUT,
      });
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Signals, cancellation, termination

  signalWorkflow(req: Pb): void {
    this.namespace(req.namespace as string);
    requireField(req.signalName, 'SignalName');
    const ex = this.addressed(req.namespace as string, req.workflowExecution as Pb);
    if (!isOpen(ex)) throw workflowCompleted();
    const requestId = req.requestId as string | undefined;
    if (requestId && ex.requestIds.includes(requestId)) return;
    this.signalRun(
      ex,
      req.signalName as string,
      req.input as Pb,
      req.header as Pb,
      req.identity as string,
      requestId,
    );
  }

  private signalRun(
    ex: ExecutionState,
    name: string,
    input: Pb | undefined,
    header: Pb | undefined,
    identity: string | undefined,
    requestId?: string,
    external?: Pb,
  ): void {
    this.touch(ex);
    if (requestId) ex.requestIds.push(requestId);
    addExternalEvent(
      ex,
      makeEvent(
        E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
        { signalName: name, input, header, identity, externalWorkflowExecution: external },
        this.now(),
      ),
    );
    this.scheduleWorkflowTask(ex);
  }

  signalWithStart(req: Pb): Pb {
    requireField(req.signalName, 'SignalName');
    const signal = {
      name: req.signalName as string,
      input: req.signalInput as Pb,
      header: req.header as Pb,
      identity: req.identity as string,
    };
    const ns = this.namespace(req.namespace as string);
    const currentId = this.currentRuns.get(`${ns.name}/${req.workflowId}`);
    const current = currentId
      ? this.executions.get(executionKey(ns.name, req.workflowId as string, currentId))
      : undefined;
    if (
      current &&
      isOpen(current) &&
      req.workflowIdConflictPolicy !== Conflict.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING
    ) {
      ns.searchAttributes.validate(ns.name, req.searchAttributes?.indexedFields as Record<string, Pb>);
      this.signalRun(
        current,
        signal.name,
        signal.input,
        signal.header,
        signal.identity,
        req.requestId as string,
      );
      return { runId: current.runId, started: false };
    }
    const { runId, started } = this.startWorkflow(
      { ...req, workflowIdConflictPolicy: Conflict.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING },
      signal,
    );
    return { runId, started };
  }

  requestCancelWorkflow(req: Pb): void {
    this.namespace(req.namespace as string);
    const ex = this.addressed(
      req.namespace as string,
      req.workflowExecution as Pb,
      req.firstExecutionRunId as string,
    );
    if (!isOpen(ex)) throw workflowCompleted();
    const requestId = req.requestId as string | undefined;
    if (requestId && ex.requestIds.includes(requestId)) return;
    if (requestId) ex.requestIds.push(requestId);
    this.cancelRun(ex, { identity: req.identity as string, cause: req.reason as string });
  }

  private cancelRun(ex: ExecutionState, attrs: Pb): void {
    this.touch(ex);
    if (ex.cancelRequested) return;
    ex.cancelRequested = true;
    addExternalEvent(ex, makeEvent(E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED, attrs, this.now()));
    this.scheduleWorkflowTask(ex);
  }

  terminateWorkflow(req: Pb): void {
    this.namespace(req.namespace as string);
    const ex = this.addressed(
      req.namespace as string,
      req.workflowExecution as Pb,
      req.firstExecutionRunId as string,
    );
    if (!isOpen(ex)) throw workflowCompleted();
    this.terminateRun(ex, req.reason as string, req.details as Pb, req.identity as string);
  }

  private terminateRun(
    ex: ExecutionState,
    reason: string,
    details: Pb | undefined,
    identity: string | undefined,
  ): void {
    this.touch(ex);
    const wft = ex.wft;
    // A running speculative task is recorded, then failed; one not yet started goes without a trace (as on Temporal).
    if (wft?.speculative && wft.startedEventId > 0) materializeSpeculativeTask(ex);
    if (wft && wft.startedEventId > 0 && !wft.transient && !wft.speculative) {
      writeEvent(
        ex,
        makeEvent(
          E.EVENT_TYPE_WORKFLOW_TASK_FAILED,
          {
            scheduledEventId: String(wft.scheduledEventId),
            startedEventId: String(wft.startedEventId),
            cause: Cause.WORKFLOW_TASK_FAILED_CAUSE_FORCE_CLOSE_COMMAND,
            identity,
          },
          this.now(),
        ),
      );
    }
    ex.wft = undefined;
    flushBuffered(ex);
    this.closeRun(ex, S.WORKFLOW_EXECUTION_STATUS_TERMINATED, E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED, {
      reason,
      details,
      identity,
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Closing runs

  /** Writes the close event and applies what follows a close: parent notice, children, waiters. */
  private closeRun(ex: ExecutionState, status: number, eventType: number, attrs: Pb): void {
    this.touch(ex);
    const now = this.now();
    writeEvent(ex, makeEvent(eventType, attrs, now));
    ex.status = status;
    ex.closeTime = now;
    ex.wft = undefined;
    ex.activities = {};
    ex.timers = {};
    ex.stickyQueue = undefined;
    this.deadlines.clearOwner(keyOf(ex));
    this.armRetention(ex);
    const children = Object.values(ex.children);
    ex.children = {};
    for (const child of children) this.applyParentClosePolicy(ex, child);
    const hasNewRun =
      eventType === E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW || Boolean(attrs.newExecutionRunId);
    this.updates.onRunClosed(ex, hasNewRun);
    if (eventType !== E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW && !attrs.newExecutionRunId) {
      this.notifyParent(ex, eventType, attrs);
    }
    // Queries waiting for a workflow task that will never come go out as query tasks instead.
    for (const query of this.queries.values()) {
      if (query.key === keyOf(ex) && query.dispatched !== 'task') this.dispatchQueryTask(ex, query);
    }
  }

  /** Deletes a closed run once the namespace's retention has passed, as Temporal does. */
  private armRetention(ex: ExecutionState): void {
    const key = keyOf(ex);
    const retentionMs = this.namespaces.get(ex.namespace)?.retentionMs ?? DEFAULT_RETENTION_MS;
    this.deadlines.set(`retention\u0000${key}`, (ex.closeTime ?? this.now()) + retentionMs, () => {
      void this.transact(() => this.deleteRun(key));
    });
  }

  private deleteRun(key: string): void {
    const ex = this.executions.get(key);
    if (!ex || isOpen(ex)) return;
    this.forget(key);
    this.dirty.delete(ex);
    this.deleted.push(key);
  }

  private forget(key: string): void {
    const ex = this.executions.get(key);
    if (!ex) return;
    this.executions.delete(key);
    this.persistedEvents.delete(key);
    const currentKey = `${ex.namespace}/${ex.workflowId}`;
    if (this.currentRuns.get(currentKey) === ex.runId) this.currentRuns.delete(currentKey);
  }

  /** DeleteWorkflowExecution: terminates the run if it is open, then deletes it. */
  deleteWorkflow(req: Pb): void {
    this.namespace(req.namespace as string);
    const ex = this.addressed(req.namespace as string, req.workflowExecution as Pb);
    if (isOpen(ex)) this.terminateRun(ex, 'Delete workflow execution', undefined, 'history-service');
    this.deadlines.clear(`retention\u0000${keyOf(ex)}`);
    this.deleteRun(keyOf(ex));
  }

  private applyParentClosePolicy(parent: ExecutionState, child: ExecutionState['children'][string]): void {
    if (!child.runId) return;
    const policy = child.parentClosePolicy || ParentClosePolicy.PARENT_CLOSE_POLICY_TERMINATE;
    if (policy === ParentClosePolicy.PARENT_CLOSE_POLICY_ABANDON) return;
    const currentId = this.currentRuns.get(`${child.namespace}/${child.workflowId}`);
    const target = currentId
      ? this.executions.get(executionKey(child.namespace, child.workflowId, currentId))
      : undefined;
    if (!target || !isOpen(target)) return;
    if (policy === ParentClosePolicy.PARENT_CLOSE_POLICY_TERMINATE) {
      this.terminateRun(target, 'by parent close policy', undefined, 'history-service');
    } else {
      this.cancelRun(target, {
        identity: 'history-service',
        cause: 'by parent close policy',
        externalWorkflowExecution: { workflowId: parent.workflowId, runId: parent.runId },
      });
    }
  }

  private notifyParent(ex: ExecutionState, closeEventType: number, attrs: Pb): void {
    if (!ex.parent) return;
    const parent = this.executions.get(
      executionKey(ex.parent.namespace, ex.parent.workflowId, ex.parent.runId),
    );
    if (!parent || !isOpen(parent)) return;
    const child = parent.children[String(ex.parent.initiatedEventId)];
    if (!child) return;
    const common = {
      namespace: ex.namespace,
      workflowExecution: { workflowId: ex.workflowId, runId: child.runId ?? ex.runId },
      workflowType: { name: ex.workflowType },
      initiatedEventId: String(child.initiatedEventId),
      startedEventId: String(childStartedEventId(parent, child.initiatedEventId)),
    };
    const mapping: Record<number, [number, Pb]> = {
      [E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED]: [
        E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED,
        { ...common, result: attrs.result },
      ],
      [E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED]: [
        E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED,
        { ...common, failure: attrs.failure, retryState: attrs.retryState },
      ],
      [E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED]: [
        E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED,
        { ...common, details: attrs.details },
      ],
      [E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED]: [
        E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED,
        common,
      ],
      [E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT]: [
        E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT,
        { ...common, retryState: attrs.retryState },
      ],
    };
    const entry = mapping[closeEventType];
    if (!entry) return;
    this.touch(parent);
    delete parent.children[String(child.initiatedEventId)];
    addExternalEvent(parent, makeEvent(entry[0], entry[1], this.now()));
    this.scheduleWorkflowTask(parent);
  }

  // ---------------------------------------------------------------------------------------------
  // Workflow tasks

  /**
   * Schedules a workflow task. `speculative`: only to deliver updates, its events are written only if they must
   * be; `heartbeat`: the worker asked for it, and it re-sends no update already sent.
   */
  private scheduleWorkflowTask(
    ex: ExecutionState,
    attempt = 1,
    notBefore?: number,
    kind?: 'speculative' | 'heartbeat',
  ): void {
    const speculative = kind === 'speculative';
    if (!isOpen(ex) || ex.wft) return;
    this.touch(ex);
    const now = this.now();
    const transient = attempt > 1;
    const onSticky = Boolean(ex.stickyQueue);
    let scheduledEventId = 0;
    if (!transient && !speculative) {
      scheduledEventId = writeEvent(
        ex,
        makeEvent(
          E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
          {
            taskQueue: onSticky
              ? { name: ex.stickyQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_STICKY, normalName: ex.taskQueue }
              : { name: ex.taskQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
            startToCloseTimeout: duration(ex.workflowTaskTimeoutMs),
            attempt,
          },
          notBefore ?? now,
        ),
      );
    }
    ex.wft = {
      scheduledEventId,
      startedEventId: 0,
      attempt,
      transient,
      speculative: speculative || undefined,
      heartbeat: kind === 'heartbeat' || undefined,
      onSticky,
      scheduledTime: now,
      notBefore,
    };
    this.dispatchWorkflowTask(ex);
  }

  /** Puts the pending workflow task on its queue (after any backoff), with the sticky fallback armed. */
  private dispatchWorkflowTask(ex: ExecutionState): void {
    const wft = ex.wft!;
    const key = keyOf(ex);
    if (wft.notBefore && wft.notBefore > this.now()) {
      this.deadlines.set(`${key}\u0000wft-backoff`, wft.notBefore, () => {
        void this.transact(() => {
          const current = this.executions.get(key);
          if (current?.wft === wft && isOpen(current)) {
            this.touch(current);
            wft.notBefore = undefined;
            this.dispatchWorkflowTask(current);
          }
        });
      });
      return;
    }
    const seq = ++this.wftSeq;
    const sticky = wft.onSticky && Boolean(ex.stickyQueue);
    wft.onSticky = sticky;
    wft.seq = seq;
    const queue = sticky ? ex.stickyQueue! : ex.taskQueue;
    const namespace = ex.namespace;
    this.afterCommit(() =>
      this.queues.add(namespace, 'workflow', queue, { kind: 'workflow', key, seq, sticky }),
    );
    if (sticky) {
      this.deadlines.set(`${key}\u0000wft-sticky`, this.now() + ex.stickyScheduleToStartMs, () =>
        this.onStickyTimeout(key, seq),
      );
    }
  }

  private onStickyTimeout(key: string, seq: number): void {
    void this.transact(() => {
      const ex = this.executions.get(key);
      const wft = ex?.wft;
      if (!ex || !wft || wft.seq !== seq || wft.startedEventId > 0 || !isOpen(ex)) return;
      this.log('debug', `sticky queue ${ex.stickyQueue} did not take a task of ${ex.workflowId} in time`);
      this.fallBackFromSticky(ex);
    });
  }

  /** The sticky worker is gone: time the task out and schedule it again on the normal queue. */
  private fallBackFromSticky(ex: ExecutionState): void {
    this.touch(ex);
    const wft = ex.wft;
    if (!wft || wft.startedEventId > 0) {
      ex.stickyQueue = undefined;
      return;
    }
    // A speculative task that timed out is recorded like any other (Temporal writes its events first).
    materializeSpeculativeTask(ex);
    ex.stickyQueue = undefined;
    this.deadlines.clear(`${keyOf(ex)}\u0000wft-sticky`);
    if (!wft.transient) {
      writeEvent(
        ex,
        makeEvent(
          E.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
          {
            scheduledEventId: String(wft.scheduledEventId),
            startedEventId: '0',
            timeoutType: TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START,
          },
          this.now(),
        ),
      );
    }
    ex.wft = undefined;
    this.scheduleWorkflowTask(ex, wft.attempt);
  }

  /** Long poll for a workflow task (or a query task). */
  pollWorkflowTask(req: Pb, call: CallLike): Promise<Pb> {
    const ns = this.namespace(req.namespace as string);
    requireField(req.taskQueue?.name, 'TaskQueue');
    const queue = req.taskQueue.name as string;
    const sticky = req.taskQueue.kind === TaskQueueKind.TASK_QUEUE_KIND_STICKY;
    return this.longPoll(ns.name, 'workflow', queue, req, call, (task) => {
      if (task.kind === 'workflow') return this.startWorkflowTask(task, req, sticky);
      if (task.kind === 'query') return this.startQueryTask(task, sticky);
      return undefined;
    });
  }

  private longPoll(
    namespace: string,
    kind: QueueKind,
    queue: string,
    req: Pb,
    call: CallLike,
    start: (task: TaskRef) => Pb | undefined,
  ): Promise<Pb> {
    if (this.stopped) return Promise.resolve({});
    return new Promise((resolve) => {
      let done = false;
      // Armed after the poll is registered: a queued task may be handed over synchronously before that.
      const expiry: { timer?: NodeJS.Timeout } = {};
      const finish = (response: Pb) => {
        if (done) return;
        done = true;
        clearTimeout(expiry.timer);
        call.removeListener?.('cancelled', onCancelled);
        resolve(response);
      };
      const withdraw = this.queues.poll(
        namespace,
        kind,
        queue,
        {
          workerKey: (req.workerInstanceKey as string) || (req.identity as string) || '',
          identity: (req.identity as string) || '',
          offer: (task) => {
            if (done) return false;
            const response = start(task);
            if (!response) return false;
            done = true;
            clearTimeout(expiry.timer);
            call.removeListener?.('cancelled', onCancelled);
            // The task is marked started in memory now; the poller gets it once that is durable.
            void this.commit().then(() => resolve(response));
            return true;
          },
          release: () => finish({}),
        },
        this.now(),
      );
      if (done) return;
      expiry.timer = setTimeout(() => {
        withdraw();
        finish({});
      }, this.longPollTimeoutMs);
      function onCancelled() {
        withdraw();
        finish({});
      }
      call.on('cancelled', onCancelled);
    });
  }

  private startWorkflowTask(
    task: Extract<TaskRef, { kind: 'workflow' }>,
    req: Pb,
    fromSticky: boolean,
  ): Pb | undefined {
    const ex = this.executions.get(task.key);
    const wft = ex?.wft;
    if (
      !ex ||
      !wft ||
      !isOpen(ex) ||
      wft.seq !== task.seq ||
      wft.startedEventId > 0 ||
      task.sticky !== fromSticky
    ) {
      return undefined;
    }
    this.touch(ex);
    const now = this.now();
    const key = keyOf(ex);
    this.deadlines.clear(`${key}\u0000wft-sticky`);
    const historySizeBytes = ex.historySizeBytes;
    const suggestContinueAsNew =
      ex.events.length >= this.suggestEvents ||
      historySizeBytes >= this.suggestBytes ||
      this.updates.nearTotalLimit(ex);
    const startedAttrs = {
      identity: req.identity as string,
      requestId: randomUUID(),
      historySizeBytes: String(historySizeBytes),
      suggestContinueAsNew,
    };
    let transientEvents: Pb[] = [];
    if (wft.transient || wft.speculative) {
      wft.scheduledEventId = nextEventId(ex);
      wft.startedEventId = wft.scheduledEventId + 1;
      transientEvents = workflowTaskEvents(ex, startedAttrs, now);
    } else {
      wft.startedEventId = writeEvent(
        ex,
        makeEvent(
          E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
          { scheduledEventId: String(wft.scheduledEventId), ...startedAttrs },
          now,
        ),
      );
    }
    const messages = this.updates.requestMessages(ex, wft.startedEventId, !wft.heartbeat);
    if (wft.speculative && messages.length === 0) {
      // Its updates went away (the run's updates were answered otherwise): Temporal drops such a task.
      ex.wft = undefined;
      return undefined;
    }
    wft.startedTime = now;
    wft.identity = req.identity as string;
    this.armWorkflowTaskTimeout(ex);
    const events = (fromSticky ? ex.events.slice(ex.previousStartedEventId) : ex.events).concat(
      transientEvents,
    );
    const queries: Record<string, Pb> = {};
    for (const query of this.queries.values()) {
      if (query.key === key && !query.dispatched) {
        query.dispatched = 'wft';
        queries[query.id] = query.query;
      }
    }
    const token: TaskToken = {
      k: 'w',
      ns: ex.namespace,
      wid: ex.workflowId,
      rid: ex.runId,
      s: wft.scheduledEventId,
      st: wft.startedEventId,
      at: wft.attempt,
    };
    return {
      taskToken: encodeToken(token),
      workflowExecution: { workflowId: ex.workflowId, runId: ex.runId },
      workflowType: { name: ex.workflowType },
      previousStartedEventId: String(ex.previousStartedEventId),
      startedEventId: String(wft.startedEventId),
      attempt: wft.attempt,
      history: { events },
      workflowExecutionTaskQueue: { name: ex.taskQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
      scheduledTime: timestamp(wft.scheduledTime),
      startedTime: timestamp(now),
      queries: Object.keys(queries).length ? queries : undefined,
      messages: messages.length ? messages : undefined,
    };
  }

  /**
   * The events of a retried (transient) or speculative workflow task that history reads show, as Temporal's
   * do: scheduled, and started while it runs.
   */
  private transientHistoryEvents(ex: ExecutionState): Pb[] {
    const wft = ex.wft;
    if (!(wft?.transient || wft?.speculative) || !isOpen(ex)) return [];
    if (wft.startedEventId > 0) {
      return workflowTaskEvents(ex, { identity: wft.identity }, wft.startedTime ?? this.now());
    }
    const scheduled = { ...wft, scheduledEventId: nextEventId(ex) };
    return workflowTaskEvents({ ...ex, wft: scheduled }, {}, this.now()).slice(0, 1);
  }

  private armWorkflowTaskTimeout(ex: ExecutionState): void {
    const wft = ex.wft!;
    const key = keyOf(ex);
    const startedEventId = wft.startedEventId;
    this.deadlines.set(
      `${key}\u0000wft-timeout`,
      (wft.startedTime ?? this.now()) + ex.workflowTaskTimeoutMs,
      () => {
        void this.transact(() => {
          const current = this.executions.get(key);
          if (!current || !isOpen(current) || current.wft !== wft || wft.startedEventId !== startedEventId)
            return;
          this.log('debug', `workflow task of ${current.workflowId} timed out`);
          this.endWorkflowTaskUnsuccessfully(current, E.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT, {
            timeoutType: TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE,
          });
        });
      },
    );
  }

  private workflowTaskOf(token: TaskToken): ExecutionState {
    const ex = this.executions.get(executionKey(token.ns, token.wid, token.rid));
    const wft = ex?.wft;
    if (!ex || !isOpen(ex) || !wft || wft.scheduledEventId !== token.s || wft.startedEventId !== token.st) {
      throw notFound('Workflow task not found.');
    }
    return ex;
  }

  /** Workflow task failed or timed out: record it (first attempt only), then schedule the next attempt. */
  private endWorkflowTaskUnsuccessfully(ex: ExecutionState, eventType: number, attrs: Pb): void {
    this.touch(ex);
    const wft = ex.wft!;
    const key = keyOf(ex);
    this.deadlines.clear(`${key}\u0000wft-timeout`);
    // A failure must be visible: a speculative task's events are written before it (as Temporal does).
    materializeSpeculativeTask(ex);
    if (!wft.transient) {
      writeEvent(
        ex,
        makeEvent(
          eventType,
          {
            scheduledEventId: String(wft.scheduledEventId),
            startedEventId: String(wft.startedEventId),
            ...attrs,
          },
          this.now(),
        ),
      );
    }
    // The worker drops the run from its cache after a failure, so the next task needs the whole history.
    ex.stickyQueue = undefined;
    ex.wft = undefined;
    this.requeueQueries(key);
    const hadNewEvents = flushBuffered(ex);
    // With new events the next task is an ordinary one; otherwise a transient retry that backs off.
    const attempt = hadNewEvents ? 1 : wft.attempt + 1;
    const backoffMs = attempt >= 3 ? Math.min(1000 * 2 ** (attempt - 3), 600_000) : 0;
    this.scheduleWorkflowTask(ex, attempt, backoffMs ? this.now() + backoffMs : undefined);
  }

  respondWorkflowTaskFailed(req: Pb): void {
    const token = decodeToken(req.taskToken as string, 'w');
    const ex = this.workflowTaskOf(token);
    this.endWorkflowTaskUnsuccessfully(ex, E.EVENT_TYPE_WORKFLOW_TASK_FAILED, {
      cause: req.cause,
      failure: req.failure,
      identity: req.identity,
      binaryChecksum: req.binaryChecksum,
    });
  }

  respondWorkflowTaskCompleted(req: Pb): Pb {
    const token = decodeToken(req.taskToken as string, 'w');
    const ex = this.workflowTaskOf(token);
    this.touch(ex);
    const key = keyOf(ex);
    const wft = ex.wft!;
    const commands = (req.commands as Pb[] | undefined) ?? [];
    this.answerQueries(req.queryResults as Record<string, Pb> | undefined);

    const closes = commands.some((c) => closingCommands.has(c.commandType as number));
    if (closes && ex.buffered.length > 0) {
      // New events arrived while the task ran: the workflow must see them before it may close.
      this.updates.onCompletionRefused(ex);
      this.endWorkflowTaskUnsuccessfully(ex, E.EVENT_TYPE_WORKFLOW_TASK_FAILED, {
        cause: Cause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND,
        failure: { message: 'UnhandledCommand', source: 'Server' },
        identity: req.identity,
      });
      // Temporal answers the worker with the same error after recording it; the SDK then polls again.
      throw invalidArgument('UnhandledCommand');
    }
    const { answers, failure: badMessage } = this.updates.checkAnswers(ex, commands, req.messages as Pb[]);
    const invalid = this.validateCommands(ex, commands) ?? badMessage;
    if (invalid) {
      this.updates.onCompletionRefused(ex);
      // A retried task that fails again is not recorded: it stays started until it times out, as Temporal
      // drops "a workflow task that keeps failing".
      if (wft.attempt > 1) throw invalidArgument(invalid.message);
      this.endWorkflowTaskUnsuccessfully(ex, E.EVENT_TYPE_WORKFLOW_TASK_FAILED, {
        cause: invalid.cause,
        failure: { message: invalid.message, source: 'Server' },
        identity: req.identity,
      });
      throw invalidArgument(invalid.message);
    }

    this.deadlines.clear(`${key}\u0000wft-timeout`);
    const now = this.now();
    this.updates.applyRejections(ex, answers);
    if (wft.speculative && this.updates.canDiscard(ex, req, answers))
      return this.discardSpeculativeTask(ex, req);
    if (wft.transient || wft.speculative) {
      for (const event of workflowTaskEvents(ex, { identity: wft.identity }, wft.startedTime ?? now)) {
        writeEvent(ex, event);
      }
    }
    const completedEventId = writeEvent(
      ex,
      makeEvent(
        E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
        {
          scheduledEventId: String(wft.scheduledEventId),
          startedEventId: String(wft.startedEventId),
          identity: req.identity,
          binaryChecksum: req.binaryChecksum,
          workerVersion: req.workerVersionStamp,
          sdkMetadata: req.sdkMetadata,
          meteringMetadata: req.meteringMetadata,
          deployment: req.deployment,
        },
        now,
      ),
    );
    ex.previousStartedEventId = wft.startedEventId;
    ex.wft = undefined;
    this.applyStickyAttributes(ex, req);

    const heartbeat = Boolean(req.forceCreateNewWorkflowTask);
    let needsTask = heartbeat;
    const followUps: (() => boolean)[] = [];
    for (const command of commands) {
      if (!isOpen(ex)) break;
      const followUp = this.applyCommand(ex, command, completedEventId, answers);
      if (followUp === true) needsTask = true;
      else if (followUp) followUps.push(followUp);
    }
    this.updates.applyRemaining(ex, answers, now);
    if (isOpen(ex) && !heartbeat) this.updates.rejectUnanswered(ex);
    if (flushBuffered(ex)) needsTask = true;
    for (const followUp of followUps) if (followUp()) needsTask = true;
    if (isOpen(ex) && needsTask) {
      this.scheduleWorkflowTask(ex, 1, undefined, heartbeat ? 'heartbeat' : undefined);
    } else if (isOpen(ex) && this.updates.hasUndelivered(ex)) {
      // Updates that arrived while the task ran: a speculative task delivers them.
      this.scheduleWorkflowTask(ex, 1, undefined, 'speculative');
    }
    this.dispatchQueriesWithoutTask(ex);
    return {};
  }

  /**
   * A speculative task that only rejected updates leaves no trace, as on Temporal: nothing is written, and the
   * worker is told to roll its history back to the last completed task (`resetHistoryEventId`).
   */
  private discardSpeculativeTask(ex: ExecutionState, req: Pb): Pb {
    ex.wft = undefined;
    this.applyStickyAttributes(ex, req);
    this.updates.rejectUnanswered(ex);
    if (this.updates.hasUndelivered(ex)) this.scheduleWorkflowTask(ex, 1, undefined, 'speculative');
    this.dispatchQueriesWithoutTask(ex);
    return { resetHistoryEventId: String(ex.previousStartedEventId) };
  }

  private applyStickyAttributes(ex: ExecutionState, req: Pb): void {
    const stickyName = req.stickyAttributes?.workerTaskQueue?.name as string | undefined;
    ex.stickyQueue = stickyName || undefined;
    ex.stickyScheduleToStartMs =
      durationToMs(req.stickyAttributes?.scheduleToStartTimeout as Pb) || workflowTaskStickyDefaultMs;
  }

  /** Queries waiting for a workflow task go out as query tasks when no task is pending. */
  private dispatchQueriesWithoutTask(ex: ExecutionState): void {
    if (ex.wft) return;
    for (const query of this.queries.values()) {
      if (query.key === keyOf(ex) && !query.dispatched) this.dispatchQueryTask(ex, query);
    }
  }

  private validateCommands(
    ex: ExecutionState,
    commands: Pb[],
  ): { cause: number; message: string } | undefined {
    const ns = this.namespace(ex.namespace);
    const newTimers = new Set<string>();
    const newActivities = new Set<string>();
    for (const command of commands) {
      const type = command.commandType as number;
      const attrs = (command[commandAttributesField(type)] ?? {}) as Pb;
      try {
        switch (type) {
          case C.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK: {
            requireField(attrs.activityId, 'ActivityId');
            requireField(attrs.activityType?.name, 'ActivityType');
            const id = attrs.activityId as string;
            if (newActivities.has(id) || Object.values(ex.activities).some((a) => a.activityId === id)) {
              return {
                cause: Cause.WORKFLOW_TASK_FAILED_CAUSE_SCHEDULE_ACTIVITY_DUPLICATE_ID,
                message: `Activity ID ${id} already exists.`,
              };
            }
            newActivities.add(id);
            normaliseActivityTimeouts(attrs, ex.runTimeoutMs);
            normaliseRetryPolicy(attrs.retryPolicy as Pb);
            break;
          }
          case C.COMMAND_TYPE_START_TIMER: {
            if (!attrs.timerId) throw invalidArgument('TimerId is not set on StartTimerCommand.');
            const id = attrs.timerId as string;
            if (ex.timers[id] || newTimers.has(id)) {
              return {
                cause: Cause.WORKFLOW_TASK_FAILED_CAUSE_START_TIMER_DUPLICATE_ID,
                message: `Timer ID ${id} is already in use.`,
              };
            }
            // A missing or zero StartToFireTimeout is accepted, as Temporal does: the timer fires at once.
            if (durationToMs(attrs.startToFireTimeout as Pb) < 0) {
              throw invalidArgument('An invalid StartToFireTimeout is set on StartTimerCommand.');
            }
            newTimers.add(id);
            break;
          }
          case C.COMMAND_TYPE_CANCEL_TIMER:
            requireField(attrs.timerId, 'TimerId');
            break;
          case C.COMMAND_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            ns.searchAttributes.validate(
              ns.name,
              attrs.searchAttributes?.indexedFields as Record<string, Pb>,
            );
            break;
          case C.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION:
            requireField(attrs.workflowId, 'WorkflowId');
            requireField(attrs.workflowType?.name, 'WorkflowType');
            this.namespace((attrs.namespace as string) || ex.namespace);
            this.namespace((attrs.namespace as string) || ex.namespace).searchAttributes.validate(
              ns.name,
              attrs.searchAttributes?.indexedFields as Record<string, Pb>,
            );
            break;
          case C.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION:
            ns.searchAttributes.validate(
              ns.name,
              attrs.searchAttributes?.indexedFields as Record<string, Pb>,
            );
            break;
          case C.COMMAND_TYPE_PROTOCOL_MESSAGE:
            break; // checked with the messages (Updates.checkAnswers)
          case C.COMMAND_TYPE_SCHEDULE_NEXUS_OPERATION:
          case C.COMMAND_TYPE_REQUEST_CANCEL_NEXUS_OPERATION:
            return {
              cause: Cause.WORKFLOW_TASK_FAILED_CAUSE_FEATURE_DISABLED,
              message: `${C[type]} is not supported by the Labline dev server.`,
            };
          default:
            if (!(type in commandAttributeFields)) {
              return {
                cause: Cause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND,
                message: `Unknown command type: ${type}.`,
              };
            }
        }
      } catch (error) {
        if (error instanceof ServiceError) {
          const cause = badAttributesCause[type] ?? Cause.WORKFLOW_TASK_FAILED_CAUSE_UNSPECIFIED;
          // Temporal's wording: the cause in PascalCase, then the problem ("BadStartTimerAttributes: …").
          return { cause, message: `${causeName(cause)}: ${error.message}` };
        }
        throw error;
      }
    }
    return undefined;
  }

  /**
   * Applies one command. Returns true when the run needs a new workflow task, or a follow-up to run once
   * every command is written (actions on other runs, whose results land in this history after them).
   */
  private applyCommand(
    ex: ExecutionState,
    command: Pb,
    completedEventId: number,
    answers: UpdateAnswers,
  ): boolean | (() => boolean) | void {
    const type = command.commandType as number;
    const attrs = (command[commandAttributesField(type)] ?? {}) as Pb;
    const now = this.now();
    const wftCompleted = String(completedEventId);
    const write = (eventType: number, eventAttrs: Pb) =>
      writeEvent(ex, makeEvent(eventType, eventAttrs, now, { userMetadata: command.userMetadata }));
    switch (type) {
      case C.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK:
        return this.scheduleActivity(ex, attrs, wftCompleted, command.userMetadata as Pb);
      case C.COMMAND_TYPE_REQUEST_CANCEL_ACTIVITY_TASK: {
        const scheduledEventId = Number(attrs.scheduledEventId);
        const activity = ex.activities[String(scheduledEventId)];
        const requestedId = write(E.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED, {
          scheduledEventId: String(scheduledEventId),
          workflowTaskCompletedEventId: wftCompleted,
        });
        if (!activity) return;
        if (activity.phase === 'started') {
          activity.cancelRequested = true;
          return;
        }
        delete ex.activities[String(scheduledEventId)];
        this.deadlines.clearPrefix(`${keyOf(ex)}\u0000act/${scheduledEventId}/`);
        write(E.EVENT_TYPE_ACTIVITY_TASK_CANCELED, {
          scheduledEventId: String(scheduledEventId),
          startedEventId: '0',
          latestCancelRequestedEventId: String(requestedId),
        });
        return true;
      }
      case C.COMMAND_TYPE_START_TIMER: {
        const fireAt = now + durationToMs(attrs.startToFireTimeout as Pb);
        const startedEventId = write(E.EVENT_TYPE_TIMER_STARTED, {
          timerId: attrs.timerId,
          startToFireTimeout: attrs.startToFireTimeout,
          workflowTaskCompletedEventId: wftCompleted,
        });
        ex.timers[attrs.timerId as string] = { timerId: attrs.timerId as string, startedEventId, fireAt };
        this.armTimer(ex, attrs.timerId as string);
        return;
      }
      case C.COMMAND_TYPE_CANCEL_TIMER: {
        const timer = ex.timers[attrs.timerId as string];
        if (!timer) return; // Already fired: the fire event is in the buffer the worker has not seen yet.
        delete ex.timers[timer.timerId];
        this.deadlines.clear(`${keyOf(ex)}\u0000timer/${timer.timerId}`);
        write(E.EVENT_TYPE_TIMER_CANCELED, {
          timerId: timer.timerId,
          startedEventId: String(timer.startedEventId),
          workflowTaskCompletedEventId: wftCompleted,
        });
        return;
      }
      case C.COMMAND_TYPE_PROTOCOL_MESSAGE:
        this.updates.applyCommand(ex, answers, command, now);
        return;
      case C.COMMAND_TYPE_RECORD_MARKER:
        write(E.EVENT_TYPE_MARKER_RECORDED, { ...attrs, workflowTaskCompletedEventId: wftCompleted });
        return;
      case C.COMMAND_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        write(E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES, {
          searchAttributes: attrs.searchAttributes,
          workflowTaskCompletedEventId: wftCompleted,
        });
        ex.searchAttributes = mergeSearchAttributes(
          ex.searchAttributes,
          attrs.searchAttributes?.indexedFields as Record<string, Pb>,
        );
        return;
      case C.COMMAND_TYPE_MODIFY_WORKFLOW_PROPERTIES: {
        write(E.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED, {
          upsertedMemo: attrs.upsertedMemo,
          workflowTaskCompletedEventId: wftCompleted,
        });
        const fields = { ...((ex.memo?.fields as Pb) ?? {}) };
        for (const [name, payload] of Object.entries(
          (attrs.upsertedMemo?.fields as Record<string, Pb>) ?? {},
        )) {
          if (payload.data) fields[name] = payload;
          else delete fields[name];
        }
        ex.memo = { fields };
        return;
      }
      case C.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION:
        this.closeRun(ex, S.WORKFLOW_EXECUTION_STATUS_COMPLETED, E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, {
          result: attrs.result,
          workflowTaskCompletedEventId: wftCompleted,
        });
        return;
      case C.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION:
        this.failRun(ex, attrs.failure as Pb, wftCompleted);
        return;
      case C.COMMAND_TYPE_CANCEL_WORKFLOW_EXECUTION:
        this.closeRun(ex, S.WORKFLOW_EXECUTION_STATUS_CANCELED, E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, {
          details: attrs.details,
          workflowTaskCompletedEventId: wftCompleted,
        });
        return;
      case C.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION:
        this.continueAsNew(ex, attrs, wftCompleted);
        return;
      case C.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION: {
        const initiatedEventId = write(E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED, {
          ...attrs,
          namespace: (attrs.namespace as string) || ex.namespace,
          workflowTaskCompletedEventId: wftCompleted,
        });
        ex.children[String(initiatedEventId)] = {
          initiatedEventId,
          namespace: (attrs.namespace as string) || ex.namespace,
          workflowId: attrs.workflowId as string,
          workflowType: attrs.workflowType.name as string,
          parentClosePolicy:
            (attrs.parentClosePolicy as number) || ParentClosePolicy.PARENT_CLOSE_POLICY_TERMINATE,
        };
        return () => this.startChild(ex, initiatedEventId);
      }
      case C.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION: {
        const initiatedEventId = write(E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED, {
          ...attrs,
          namespace: (attrs.namespace as string) || ex.namespace,
          workflowTaskCompletedEventId: wftCompleted,
        });
        return () => this.signalExternal(ex, attrs, initiatedEventId);
      }
      case C.COMMAND_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION: {
        const initiatedEventId = write(E.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED, {
          ...attrs,
          namespace: (attrs.namespace as string) || ex.namespace,
          workflowTaskCompletedEventId: wftCompleted,
        });
        return () => this.cancelExternal(ex, attrs, initiatedEventId);
      }
    }
  }

  private failRun(ex: ExecutionState, failure: Pb, wftCompleted?: string): void {
    // Workflow-level retry: the next attempt is a new run of the chain, as Temporal does it.
    if (ex.retryPolicy && isOpen(ex)) {
      const { state } = normaliseRetryPolicy(ex.retryPolicy);
      const decision = decideRetry(
        { retry: state, attempt: ex.attempt, scheduledTime: ex.startTime, scheduleToCloseMs: 0 },
        failure,
        this.now(),
      );
      const expiresAt = ex.executionExpiresAt;
      if (decision.retry && (!expiresAt || this.now() + decision.delayMs < expiresAt)) {
        const next = this.nextRunOf(ex, {
          input: (this.startedAttributes(ex).input as Pb) ?? undefined,
          backoffMs: decision.delayMs,
          attempt: ex.attempt + 1,
          initiator: enums.ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_RETRY,
          continuedFailure: failure,
        });
        this.closeRun(ex, S.WORKFLOW_EXECUTION_STATUS_FAILED, E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, {
          failure,
          retryState: RetryState.RETRY_STATE_IN_PROGRESS,
          workflowTaskCompletedEventId: wftCompleted,
          newExecutionRunId: next.runId,
        });
        ex.newRunId = next.runId;
        return;
      }
    }
    this.closeRun(ex, S.WORKFLOW_EXECUTION_STATUS_FAILED, E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, {
      failure,
      retryState: ex.retryPolicy
        ? RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE
        : RetryState.RETRY_STATE_RETRY_POLICY_NOT_SET,
      workflowTaskCompletedEventId: wftCompleted,
    });
  }

  private startedAttributes(ex: ExecutionState): Pb {
    return (ex.events[0]?.workflowExecutionStartedEventAttributes as Pb) ?? {};
  }

  private continueAsNew(ex: ExecutionState, attrs: Pb, wftCompleted: string): void {
    const started = this.startedAttributes(ex);
    const next = this.nextRunOf(ex, {
      workflowType: (attrs.workflowType?.name as string) || ex.workflowType,
      taskQueue: (attrs.taskQueue?.name as string) || ex.taskQueue,
      input: attrs.input as Pb,
      header: attrs.header as Pb,
      memo: (attrs.memo as Pb) ?? ex.memo,
      searchAttributes: (attrs.searchAttributes?.indexedFields as Record<string, Pb>) ?? ex.searchAttributes,
      runTimeoutMs:
        durationToMs(attrs.workflowRunTimeout as Pb) || durationToMs(started.workflowRunTimeout as Pb),
      workflowTaskTimeoutMs: durationToMs(attrs.workflowTaskTimeout as Pb) || ex.workflowTaskTimeoutMs,
      backoffMs: durationToMs(attrs.backoffStartInterval as Pb),
      retryPolicy: (attrs.retryPolicy as Pb) ?? ex.retryPolicy,
      attempt: 1,
      initiator:
        (attrs.initiator as number) || enums.ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_WORKFLOW,
      lastCompletionResult: attrs.lastCompletionResult as Pb,
      continuedFailure: attrs.failure as Pb,
    });
    this.closeRun(
      ex,
      S.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW,
      E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
      {
        newExecutionRunId: next.runId,
        workflowType: { name: next.workflowType },
        taskQueue: { name: next.taskQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
        input: attrs.input,
        workflowRunTimeout: attrs.workflowRunTimeout,
        workflowTaskTimeout: duration(next.workflowTaskTimeoutMs),
        workflowTaskCompletedEventId: wftCompleted,
        backoffStartInterval: attrs.backoffStartInterval,
        initiator: attrs.initiator,
        header: attrs.header,
        memo: attrs.memo,
        searchAttributes: attrs.searchAttributes,
      },
    );
    ex.newRunId = next.runId;
  }

  /** Starts the next run of a chain (continue-as-new or retry); the caller closes the current run. */
  private nextRunOf(
    ex: ExecutionState,
    next: {
      workflowType?: string;
      taskQueue?: string;
      input?: Pb;
      header?: Pb;
      memo?: Pb;
      searchAttributes?: Record<string, Pb>;
      runTimeoutMs?: number;
      workflowTaskTimeoutMs?: number;
      backoffMs: number;
      retryPolicy?: Pb;
      attempt: number;
      initiator: number;
      continuedFailure?: Pb;
      lastCompletionResult?: Pb;
    },
  ): ExecutionState {
    const started = this.startedAttributes(ex);
    // The new run becomes current only when created; the old one is closed right after by the caller.
    const created = this.createRun({
      namespace: ex.namespace,
      workflowId: ex.workflowId,
      workflowType: next.workflowType ?? ex.workflowType,
      taskQueue: next.taskQueue ?? ex.taskQueue,
      input: next.input,
      header: next.header ?? (started.header as Pb),
      memo: next.memo ?? ex.memo,
      searchAttributes: next.searchAttributes ?? ex.searchAttributes,
      userMetadata: undefined,
      executionTimeoutMs: ex.executionTimeoutMs,
      runTimeoutMs: next.runTimeoutMs ?? ex.runTimeoutMs,
      workflowTaskTimeoutMs: next.workflowTaskTimeoutMs ?? ex.workflowTaskTimeoutMs,
      retryPolicy: next.retryPolicy ?? ex.retryPolicy,
      identity: 'history-service',
      startDelayMs: next.backoffMs,
      parent: ex.parent,
      root: ex.root,
      previous: ex,
      attempt: next.attempt,
      initiator: next.initiator,
      continuedFailure: next.continuedFailure,
      lastCompletionResult: next.lastCompletionResult,
    });
    return created;
  }

  // ---------------------------------------------------------------------------------------------
  // Children and external runs

  /** Starts the child of an initiated event; its outcome is written into the parent. */
  private startChild(parent: ExecutionState, initiatedEventId: number): boolean {
    const child = parent.children[String(initiatedEventId)];
    if (!child || !isOpen(parent)) return false;
    this.touch(parent);
    const attrs = parent.events[initiatedEventId - 1]
      ?.startChildWorkflowExecutionInitiatedEventAttributes as Pb;
    const now = this.now();
    const currentId = this.currentRuns.get(`${child.namespace}/${child.workflowId}`);
    const current = currentId
      ? this.executions.get(executionKey(child.namespace, child.workflowId, currentId))
      : undefined;
    const reuse = (attrs.workflowIdReusePolicy as number) || Reuse.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE;
    const rejected =
      (current && isOpen(current)) ||
      (current && reuse === Reuse.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE) ||
      (current &&
        reuse === Reuse.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY &&
        current.status === S.WORKFLOW_EXECUTION_STATUS_COMPLETED);
    if (rejected || !this.namespaces.has(child.namespace)) {
      delete parent.children[String(initiatedEventId)];
      addExternalEvent(
        parent,
        makeEvent(
          E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED,
          {
            namespace: child.namespace,
            workflowId: child.workflowId,
            workflowType: { name: child.workflowType },
            cause: rejected
              ? enums.StartChildWorkflowExecutionFailedCause
                  .START_CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE_WORKFLOW_ALREADY_EXISTS
              : enums.StartChildWorkflowExecutionFailedCause
                  .START_CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE_NAMESPACE_NOT_FOUND,
            initiatedEventId: String(initiatedEventId),
            workflowTaskCompletedEventId: attrs.workflowTaskCompletedEventId,
          },
          now,
        ),
      );
      this.scheduleWorkflowTask(parent);
      return true;
    }
    const run = this.createRun({
      namespace: child.namespace,
      workflowId: child.workflowId,
      workflowType: child.workflowType,
      taskQueue: (attrs.taskQueue?.name as string) || parent.taskQueue,
      input: attrs.input as Pb,
      header: attrs.header as Pb,
      memo: attrs.memo as Pb,
      searchAttributes: (attrs.searchAttributes?.indexedFields as Record<string, Pb>) ?? {},
      userMetadata: parent.events[initiatedEventId - 1]?.userMetadata as Pb,
      executionTimeoutMs: durationToMs(attrs.workflowExecutionTimeout as Pb),
      runTimeoutMs: durationToMs(attrs.workflowRunTimeout as Pb),
      workflowTaskTimeoutMs: durationToMs(attrs.workflowTaskTimeout as Pb),
      retryPolicy: attrs.retryPolicy as Pb,
      identity: parent.workflowId,
      parent: {
        namespace: parent.namespace,
        workflowId: parent.workflowId,
        runId: parent.runId,
        initiatedEventId,
      },
      root: parent.root,
    });
    child.runId = run.runId;
    addExternalEvent(
      parent,
      makeEvent(
        E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED,
        {
          namespace: child.namespace,
          initiatedEventId: String(initiatedEventId),
          workflowExecution: { workflowId: run.workflowId, runId: run.runId },
          workflowType: { name: run.workflowType },
          header: attrs.header,
        },
        now,
      ),
    );
    this.scheduleWorkflowTask(parent);
    return true;
  }

  private externalTarget(source: ExecutionState, attrs: Pb): ExecutionState | undefined {
    const namespace = (attrs.namespace as string) || source.namespace;
    const execution = (attrs.execution ?? attrs.workflowExecution) as Pb | undefined;
    const workflowId = (execution?.workflowId as string) || (attrs.workflowId as string);
    const runId = (execution?.runId as string) || (attrs.runId as string);
    const id = runId || this.currentRuns.get(`${namespace}/${workflowId}`);
    const target = id ? this.executions.get(executionKey(namespace, workflowId, id)) : undefined;
    if (!target || !isOpen(target)) return undefined;
    if (attrs.childWorkflowOnly && target.parent?.runId !== source.runId) return undefined;
    return target;
  }

  private signalExternal(source: ExecutionState, attrs: Pb, initiatedEventId: number): boolean {
    const target = this.externalTarget(source, attrs);
    const execution = (attrs.execution ?? {}) as Pb;
    const namespace = (attrs.namespace as string) || source.namespace;
    if (target) {
      this.signalRun(
        target,
        attrs.signalName as string,
        attrs.input as Pb,
        attrs.header as Pb,
        source.workflowId,
        undefined,
        {
          workflowId: source.workflowId,
          runId: source.runId,
        },
      );
      addExternalEvent(
        source,
        makeEvent(
          E.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED,
          {
            initiatedEventId: String(initiatedEventId),
            namespace,
            workflowExecution: execution,
            control: attrs.control,
          },
          this.now(),
        ),
      );
    } else {
      addExternalEvent(
        source,
        makeEvent(
          E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED,
          {
            cause:
              enums.SignalExternalWorkflowExecutionFailedCause
                .SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND,
            initiatedEventId: String(initiatedEventId),
            namespace,
            workflowExecution: execution,
            control: attrs.control,
          },
          this.now(),
        ),
      );
    }
    return true;
  }

  private cancelExternal(source: ExecutionState, attrs: Pb, initiatedEventId: number): boolean {
    const target = this.externalTarget(source, attrs);
    const namespace = (attrs.namespace as string) || source.namespace;
    const execution = { workflowId: attrs.workflowId as string, runId: (attrs.runId as string) || undefined };
    if (target) {
      this.cancelRun(target, {
        cause: attrs.reason,
        externalInitiatedEventId: String(initiatedEventId),
        externalWorkflowExecution: { workflowId: source.workflowId, runId: source.runId },
        identity: source.workflowId,
      });
      addExternalEvent(
        source,
        makeEvent(
          E.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
          { initiatedEventId: String(initiatedEventId), namespace, workflowExecution: execution },
          this.now(),
        ),
      );
    } else {
      addExternalEvent(
        source,
        makeEvent(
          E.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED,
          {
            cause:
              enums.CancelExternalWorkflowExecutionFailedCause
                .CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND,
            initiatedEventId: String(initiatedEventId),
            namespace,
            workflowExecution: execution,
          },
          this.now(),
        ),
      );
    }
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Timers

  private armTimer(ex: ExecutionState, timerId: string): void {
    const timer = ex.timers[timerId];
    if (!timer) return;
    const key = keyOf(ex);
    const startedEventId = timer.startedEventId;
    this.deadlines.set(`${key}\u0000timer/${timerId}`, timer.fireAt, () => {
      void this.transact(() => {
        const current = this.executions.get(key);
        const pending = current?.timers[timerId];
        if (!current || !isOpen(current) || pending?.startedEventId !== startedEventId) return;
        this.touch(current);
        delete current.timers[timerId];
        addExternalEvent(
          current,
          makeEvent(
            E.EVENT_TYPE_TIMER_FIRED,
            { timerId, startedEventId: String(startedEventId) },
            this.now(),
          ),
        );
        this.scheduleWorkflowTask(current);
      });
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Activities

  private scheduleActivity(ex: ExecutionState, attrs: Pb, wftCompleted: string, userMetadata?: Pb): void {
    const timeouts = normaliseActivityTimeouts(attrs, ex.runTimeoutMs);
    const retry = normaliseRetryPolicy(attrs.retryPolicy as Pb);
    const now = this.now();
    const taskQueue = (attrs.taskQueue?.name as string) || ex.taskQueue;
    const scheduledEventId = writeEvent(
      ex,
      makeEvent(
        E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
        {
          activityId: attrs.activityId,
          activityType: attrs.activityType,
          taskQueue: { name: taskQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
          header: attrs.header,
          input: attrs.input,
          scheduleToCloseTimeout: duration(timeouts.scheduleToCloseMs),
          scheduleToStartTimeout: duration(timeouts.scheduleToStartMs),
          startToCloseTimeout: duration(timeouts.startToCloseMs),
          heartbeatTimeout: duration(timeouts.heartbeatMs),
          workflowTaskCompletedEventId: wftCompleted,
          retryPolicy: retry.wire,
          priority: attrs.priority,
        },
        now,
        { userMetadata },
      ),
    );
    const activity: ActivityState = {
      scheduledEventId,
      activityId: attrs.activityId as string,
      activityType: attrs.activityType.name as string,
      taskQueue,
      attempt: 1,
      phase: 'scheduled',
      scheduledTime: now,
      attemptScheduledTime: now,
      ...timeouts,
      retry: retry.state,
      retryPolicy: retry.wire,
      cancelRequested: false,
    };
    ex.activities[String(scheduledEventId)] = activity;
    this.armActivity(ex, activity);
  }

  /** Queues an activity attempt or arms the deadline that applies to its phase. */
  private armActivity(ex: ExecutionState, activity: ActivityState): void {
    const key = keyOf(ex);
    const prefix = `${key}\u0000act/${activity.scheduledEventId}/`;
    const { scheduledEventId, attempt } = activity;
    const guarded = (handler: (current: ExecutionState, act: ActivityState) => void) => () => {
      void this.transact(() => {
        const current = this.executions.get(key);
        const act = current?.activities[String(scheduledEventId)];
        if (!current || !isOpen(current) || !act || act.attempt !== attempt) return;
        this.touch(current);
        handler(current, act);
      });
    };
    this.deadlines.clearPrefix(prefix);
    if (activity.scheduleToCloseMs > 0) {
      this.deadlines.set(
        `${prefix}schedule-to-close`,
        activity.scheduledTime + activity.scheduleToCloseMs,
        guarded((current, act) =>
          this.timeOutActivity(current, act, TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE),
        ),
      );
    }
    if (activity.phase === 'backoff') {
      this.deadlines.set(
        `${prefix}retry`,
        activity.attemptScheduledTime,
        guarded((current, act) => {
          if (act.phase !== 'backoff') return;
          act.phase = 'scheduled';
          this.armActivity(current, act);
        }),
      );
      return;
    }
    if (activity.phase === 'scheduled') {
      const namespace = ex.namespace;
      this.afterCommit(() =>
        this.queues.add(namespace, 'activity', activity.taskQueue, {
          kind: 'activity',
          key,
          scheduledEventId,
          attempt,
        }),
      );
      if (activity.scheduleToStartMs > 0 && activity.scheduleToStartMs !== activity.scheduleToCloseMs) {
        this.deadlines.set(
          `${prefix}schedule-to-start`,
          activity.attemptScheduledTime + activity.scheduleToStartMs,
          guarded((current, act) => {
            if (act.phase === 'scheduled')
              this.timeOutActivity(current, act, TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START);
          }),
        );
      }
      return;
    }
    const startedTime = activity.startedTime ?? this.now();
    if (activity.startToCloseMs > 0) {
      this.deadlines.set(
        `${prefix}start-to-close`,
        startedTime + activity.startToCloseMs,
        guarded((current, act) => {
          if (act.phase === 'started')
            this.timeOutActivity(current, act, TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE);
        }),
      );
    }
    this.armHeartbeatTimeout(ex, activity);
  }

  private armHeartbeatTimeout(ex: ExecutionState, activity: ActivityState): void {
    if (activity.heartbeatMs <= 0) return;
    const key = keyOf(ex);
    const { scheduledEventId, attempt } = activity;
    const lastBeat = activity.lastHeartbeatTime ?? activity.startedTime ?? this.now();
    this.deadlines.set(
      `${key}\u0000act/${scheduledEventId}/heartbeat`,
      lastBeat + activity.heartbeatMs,
      () => {
        void this.transact(() => {
          const current = this.executions.get(key);
          const act = current?.activities[String(scheduledEventId)];
          if (!current || !isOpen(current) || !act || act.attempt !== attempt || act.phase !== 'started')
            return;
          this.touch(current);
          this.timeOutActivity(current, act, TimeoutType.TIMEOUT_TYPE_HEARTBEAT);
        });
      },
    );
  }

  private timeOutActivity(ex: ExecutionState, activity: ActivityState, timeoutType: number): void {
    // Only start-to-close and heartbeat timeouts are an attempt's failure; the others end the activity.
    const retryable =
      timeoutType === TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE ||
      timeoutType === TimeoutType.TIMEOUT_TYPE_HEARTBEAT;
    const retryState = retryable
      ? this.retryOrFinal(ex, activity, timeoutFailure(timeoutType, activity.heartbeatDetails))
      : RetryState.RETRY_STATE_TIMEOUT;
    if (retryState === undefined) return;
    // As Temporal's timer queue does: a timeout that leaves no time for another attempt is reported as the
    // schedule-to-close timeout ("Not enough time to schedule next retry…"), the last attempt's failure its cause.
    const final =
      retryState === RetryState.RETRY_STATE_TIMEOUT &&
      timeoutType !== TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START
        ? retryTimeoutFailure(activity.heartbeatDetails, activity.lastFailure)
        : timeoutFailure(timeoutType, activity.heartbeatDetails, activity.lastFailure);
    this.finishActivity(ex, activity, E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT, { failure: final, retryState });
  }

  /**
   * Schedules the next attempt when the retry policy allows it and returns undefined; otherwise returns
   * the RetryState to record with the final failure.
   */
  private retryOrFinal(ex: ExecutionState, activity: ActivityState, failure: Pb): number | undefined {
    if (activity.cancelRequested) return RetryState.RETRY_STATE_CANCEL_REQUESTED;
    const decision = decideRetry(activity, failure, this.now());
    if (!decision.retry) return decision.retryState;
    activity.attempt += 1;
    activity.phase = 'backoff';
    activity.lastFailure = failure;
    activity.lastAttemptCompleteTime = this.now();
    activity.attemptScheduledTime = this.now() + decision.delayMs;
    activity.startedTime = undefined;
    this.armActivity(ex, activity);
    return undefined;
  }

  /** Writes an attempt's started and final events and removes the activity. */
  private finishActivity(
    ex: ExecutionState,
    activity: ActivityState,
    eventType: number,
    attrs: Pb,
    identity?: string,
  ): void {
    const now = this.now();
    const key = keyOf(ex);
    delete ex.activities[String(activity.scheduledEventId)];
    this.deadlines.clearPrefix(`${key}\u0000act/${activity.scheduledEventId}/`);
    const outcome = makeEvent(
      eventType,
      { scheduledEventId: String(activity.scheduledEventId), identity, ...attrs },
      now,
    );
    if (activity.phase === 'started') {
      const started = makeEvent(
        E.EVENT_TYPE_ACTIVITY_TASK_STARTED,
        {
          scheduledEventId: String(activity.scheduledEventId),
          identity: activity.identity,
          requestId: randomUUID(),
          attempt: activity.attempt,
          lastFailure: activity.lastFailure,
        },
        activity.startedTime ?? now,
      );
      addActivityOutcome(ex, started, outcome);
    } else {
      (outcome[attributesField(eventType)] as Pb).startedEventId = '0';
      addExternalEvent(ex, outcome);
    }
    this.scheduleWorkflowTask(ex);
  }

  pollActivityTask(req: Pb, call: CallLike): Promise<Pb> {
    const ns = this.namespace(req.namespace as string);
    requireField(req.taskQueue?.name, 'TaskQueue');
    return this.longPoll(ns.name, 'activity', req.taskQueue.name as string, req, call, (task) =>
      task.kind === 'activity' ? this.startActivityTask(task, req) : undefined,
    );
  }

  private startActivityTask(task: Extract<TaskRef, { kind: 'activity' }>, req: Pb): Pb | undefined {
    const ex = this.executions.get(task.key);
    const activity = ex?.activities[String(task.scheduledEventId)];
    if (
      !ex ||
      !isOpen(ex) ||
      !activity ||
      activity.attempt !== task.attempt ||
      activity.phase !== 'scheduled'
    ) {
      return undefined;
    }
    this.touch(ex);
    const now = this.now();
    activity.phase = 'started';
    activity.startedTime = now;
    activity.identity = req.identity as string;
    activity.lastHeartbeatTime = undefined;
    this.armActivity(ex, activity);
    const scheduled = ex.events[activity.scheduledEventId - 1]?.activityTaskScheduledEventAttributes as Pb;
    const token: TaskToken = {
      k: 'a',
      ns: ex.namespace,
      wid: ex.workflowId,
      rid: ex.runId,
      s: activity.scheduledEventId,
      at: activity.attempt,
    };
    return {
      taskToken: encodeToken(token),
      workflowNamespace: ex.namespace,
      workflowType: { name: ex.workflowType },
      workflowExecution: { workflowId: ex.workflowId, runId: ex.runId },
      activityType: { name: activity.activityType },
      activityId: activity.activityId,
      header: scheduled.header,
      input: scheduled.input,
      heartbeatDetails: activity.heartbeatDetails,
      scheduledTime: timestamp(activity.scheduledTime),
      currentAttemptScheduledTime: timestamp(activity.attemptScheduledTime),
      startedTime: timestamp(now),
      attempt: activity.attempt,
      scheduleToCloseTimeout: duration(activity.scheduleToCloseMs),
      startToCloseTimeout: duration(activity.startToCloseMs),
      heartbeatTimeout: duration(activity.heartbeatMs),
      retryPolicy: activity.retryPolicy,
      priority: scheduled.priority,
    };
  }

  private activityOf(tokenBytes: string): { ex: ExecutionState; activity: ActivityState } {
    const token = decodeToken(tokenBytes, 'a');
    const ex = this.executions.get(executionKey(token.ns, token.wid, token.rid));
    if (!ex) throw workflowNotFound(token.wid, token.rid);
    if (!isOpen(ex)) throw workflowCompleted();
    const activity = ex.activities[String(token.s)];
    if (!activity || activity.attempt !== token.at || activity.phase !== 'started') {
      throw notFound('Activity task not found.');
    }
    this.touch(ex);
    return { ex, activity };
  }

  recordActivityHeartbeat(req: Pb): Pb {
    const { ex, activity } = this.activityOf(req.taskToken as string);
    activity.heartbeatDetails = (req.details as Pb) ?? activity.heartbeatDetails;
    activity.lastHeartbeatTime = this.now();
    this.armHeartbeatTimeout(ex, activity);
    return { cancelRequested: activity.cancelRequested };
  }

  respondActivityCompleted(req: Pb): void {
    const { ex, activity } = this.activityOf(req.taskToken as string);
    this.finishActivity(
      ex,
      activity,
      E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
      { result: req.result },
      req.identity as string,
    );
  }

  respondActivityFailed(req: Pb): void {
    const { ex, activity } = this.activityOf(req.taskToken as string);
    if (req.lastHeartbeatDetails) activity.heartbeatDetails = req.lastHeartbeatDetails as Pb;
    const failure = (req.failure as Pb) ?? { message: 'activity failed without a failure' };
    const retryState = this.retryOrFinal(ex, activity, failure);
    if (retryState === undefined) return;
    this.finishActivity(
      ex,
      activity,
      E.EVENT_TYPE_ACTIVITY_TASK_FAILED,
      { failure, retryState },
      req.identity as string,
    );
  }

  respondActivityCanceled(req: Pb): void {
    const { ex, activity } = this.activityOf(req.taskToken as string);
    const requested = [...ex.events]
      .reverse()
      .find(
        (e) =>
          e.eventType === E.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED &&
          Number(e.activityTaskCancelRequestedEventAttributes?.scheduledEventId) ===
            activity.scheduledEventId,
      );
    this.finishActivity(
      ex,
      activity,
      E.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
      { details: req.details, latestCancelRequestedEventId: requested?.eventId ?? '0' },
      req.identity as string,
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Queries

  queryWorkflow(req: Pb, call: CallLike): Promise<Pb> {
    this.namespace(req.namespace as string);
    requireField(req.query?.queryType, 'QueryType');
    const ex = this.addressed(req.namespace as string, req.execution as Pb);
    const reject = req.queryRejectCondition as number | undefined;
    if (
      !isOpen(ex) &&
      (reject === QueryRejectCondition.QUERY_REJECT_CONDITION_NOT_OPEN ||
        (reject === QueryRejectCondition.QUERY_REJECT_CONDITION_NOT_COMPLETED_CLEANLY &&
          ex.status !== S.WORKFLOW_EXECUTION_STATUS_COMPLETED))
    ) {
      return Promise.resolve({ queryRejected: { status: ex.status } });
    }
    if (ex.previousStartedEventId === 0 && !ex.wft) {
      throw failedPrecondition('Cannot query workflow before the first workflow task completes.');
    }
    return new Promise((resolve, reject) => {
      const query: PendingQuery = {
        id: randomUUID(),
        key: keyOf(ex),
        query: req.query as Pb,
        resolve,
        reject,
      };
      this.queries.set(query.id, query);
      call.on('cancelled', () => this.queries.delete(query.id));
      if (!ex.wft || !isOpen(ex)) this.dispatchQueryTask(ex, query);
    });
  }

  /** Sends a query as its own task: on the sticky queue when the run has one, with a fallback. */
  private dispatchQueryTask(ex: ExecutionState, query: PendingQuery): void {
    query.dispatched = 'task';
    const sticky = isOpen(ex) && Boolean(ex.stickyQueue);
    const queue = sticky ? ex.stickyQueue! : ex.taskQueue;
    const ref: TaskRef = { kind: 'query', key: keyOf(ex), queryId: query.id, sticky };
    const namespace = ex.namespace;
    this.afterCommit(() => this.queues.add(namespace, 'workflow', queue, ref));
    if (sticky) {
      const timeoutMs = ex.stickyScheduleToStartMs;
      this.deadlines.set(`query\u0000${query.id}`, this.now() + timeoutMs, () => {
        const pending = this.queries.get(query.id);
        if (!pending || pending.dispatched !== 'task' || pending.taken) return;
        const normal: TaskRef = { kind: 'query', key: ref.key, queryId: query.id, sticky: false };
        // The sticky worker is gone, as Temporal concludes too: later tasks and queries of the run go to the
        // normal queue instead of each waiting out the sticky timeout again.
        void this.transact(() => {
          const current = this.executions.get(ref.key);
          if (current?.stickyQueue === queue) {
            current.stickyQueue = undefined;
            this.touch(current);
          }
          this.afterCommit(() => this.queues.add(namespace, 'workflow', ex.taskQueue, normal));
        });
      });
    }
  }

  private startQueryTask(task: Extract<TaskRef, { kind: 'query' }>, fromSticky: boolean): Pb | undefined {
    const query = this.queries.get(task.queryId);
    const ex = this.executions.get(task.key);
    if (!query || !ex || query.taken || task.sticky !== fromSticky) return undefined;
    query.taken = true;
    this.deadlines.clear(`query\u0000${query.id}`);
    const token: TaskToken = { k: 'q', ns: ex.namespace, wid: ex.workflowId, rid: ex.runId, q: query.id };
    return {
      taskToken: encodeToken(token),
      workflowExecution: { workflowId: ex.workflowId, runId: ex.runId },
      workflowType: { name: ex.workflowType },
      previousStartedEventId: String(ex.previousStartedEventId),
      startedEventId: '0',
      attempt: 1,
      history: { events: fromSticky ? [] : ex.events },
      query: query.query,
      workflowExecutionTaskQueue: { name: ex.taskQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    };
  }

  respondQueryTaskCompleted(req: Pb): void {
    const token = decodeToken(req.taskToken as string, 'q');
    const query = this.queries.get(token.q!);
    if (!query) throw notFound('query task not found, or already expired');
    this.answerQueries({ [query.id]: req });
  }

  private answerQueries(results: Record<string, Pb> | undefined): void {
    for (const [id, result] of Object.entries(results ?? {})) {
      const query = this.queries.get(id);
      if (!query) continue;
      this.queries.delete(id);
      const type = (result.resultType ?? result.completedType) as number;
      if (type === QueryResultType.QUERY_RESULT_TYPE_ANSWERED) {
        query.resolve({ queryResult: result.answer ?? result.queryResult });
      } else {
        query.reject(
          invalidArgument(
            (result.errorMessage as string) || (result.failure?.message as string) || 'query failed',
          ),
        );
      }
    }
  }

  private requeueQueries(key: string): void {
    for (const query of this.queries.values()) {
      if (query.key === key && query.dispatched === 'wft') query.dispatched = undefined;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Updates (the protocol and its states are in updates.ts)

  /**
   * UpdateWorkflowExecution: admits the update, or finds the one with its id, and waits for the stage asked.
   * A new update rides on the pending workflow task (the next one, if it is running), else on a speculative one.
   * `deadline` is the caller's (epoch ms).
   */
  updateWorkflow(req: Pb, call: CallLike, deadline?: number): Promise<Pb> {
    const stage = checkUpdateRequest(req);
    const ns = this.namespace(req.namespace as string);
    const ex = this.addressed(ns.name, req.workflowExecution as Pb);
    checkFirstRun(ex, req.firstExecutionRunId as string);
    const { update, isNew } = this.updates.admit(ex, req.request as Pb);
    if (isNew && !ex.wft) this.scheduleWorkflowTask(ex, 1, undefined, 'speculative');
    return this.updates
      .wait(update, stage, deadline, call)
      .then((reached) => this.updates.response(ex, update.id, req.request as Pb, reached));
  }

  /** PollWorkflowExecutionUpdate: waits for an admitted, accepted or completed update to reach a stage. */
  pollWorkflowUpdate(req: Pb, call: CallLike, deadline?: number): Promise<Pb> {
    checkPollRequest(req);
    const ns = this.namespace(req.namespace as string);
    const ex = this.addressed(ns.name, req.updateRef.workflowExecution as Pb);
    const update = this.updates.findForPoll(ex, (req.updateRef.updateId as string) ?? '');
    return this.updates
      .wait(update, (req.waitPolicy?.lifecycleStage as number) ?? 0, deadline, call)
      .then((reached) => this.updates.pollResponse(ex, update.id, reached));
  }

  // ---------------------------------------------------------------------------------------------
  // Workers

  shutdownWorker(req: Pb): void {
    this.namespace(req.namespace as string);
    const workerKey = (req.workerInstanceKey as string) || (req.identity as string) || '';
    this.afterCommit(() => this.queues.releaseWorker(workerKey));
    const sticky = req.stickyTaskQueue as string | undefined;
    if (!sticky) return;
    for (const ex of this.executions.values()) {
      if (ex.namespace !== req.namespace || ex.stickyQueue !== sticky || !isOpen(ex)) continue;
      this.fallBackFromSticky(ex);
    }
    for (const query of this.queries.values()) {
      const ex = this.executions.get(query.key);
      if (ex && query.dispatched === 'task' && !query.taken) {
        this.afterCommit(() =>
          this.queues.add(ex.namespace, 'workflow', ex.taskQueue, {
            kind: 'query',
            key: query.key,
            queryId: query.id,
            sticky: false,
          }),
        );
      }
    }
  }

  resetStickyTaskQueue(req: Pb): void {
    const ex = this.addressed(req.namespace as string, req.execution as Pb);
    this.touch(ex);
    ex.stickyQueue = undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // History and visibility

  private wakeHistoryWaiters(key: string): void {
    const waiters = this.historyWaiters.get(key);
    if (!waiters) return;
    this.historyWaiters.delete(key);
    for (const wake of waiters) wake();
  }

  /** GetWorkflowExecutionHistory, including the long poll that `handle.result()` uses. */
  async getHistory(req: Pb, call: CallLike): Promise<Pb> {
    const ns = this.namespace(req.namespace as string);
    // The token is checked before the workflow is looked up, as Temporal does: a garbled token is
    // INVALID_ARGUMENT even for a workflow that does not exist.
    const token = req.nextPageToken ? decodePageToken(req.nextPageToken as string) : undefined;
    const first = this.addressed(ns.name, req.execution as Pb);
    const page = token ?? { runId: first.runId, from: 1 };
    const key = executionKey(ns.name, first.workflowId, page.runId);
    const closeOnly =
      req.historyEventFilterType === HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT;
    const pageSize = Math.min((req.maximumPageSize as number) || 1000, 1000);
    const deadline = this.now() + this.longPollTimeoutMs;
    for (;;) {
      const ex = this.executions.get(key);
      if (!ex) throw workflowNotFound(first.workflowId, page.runId);
      if (closeOnly) {
        const last = ex.events[ex.events.length - 1];
        if (!isOpen(ex) && last && closeEventTypes.has(last.eventType as number))
          return { history: { events: [last] } };
      } else {
        const events = ex.events.slice(page.from - 1, page.from - 1 + pageSize);
        const nextFrom = page.from + events.length;
        const more = nextFrom <= ex.events.length;
        if (events.length > 0 || !req.waitNewEvent || !isOpen(ex)) {
          const token =
            more || (req.waitNewEvent && isOpen(ex))
              ? encodePageToken({ runId: page.runId, from: nextFrom })
              : undefined;
          // As Temporal does, a read of the whole history ends with a retried (transient) workflow task's
          // events, though they are written only when an attempt completes.
          const transient = !token && !req.waitNewEvent ? this.transientHistoryEvents(ex) : [];
          return { history: { events: events.concat(transient) }, nextPageToken: token };
        }
      }
      if (!req.waitNewEvent || this.now() >= deadline || this.stopped) {
        return { history: { events: [] }, nextPageToken: encodePageToken(page) };
      }
      await this.waitForHistory(key, deadline, call);
    }
  }

  private waitForHistory(key: string, deadline: number, call: CallLike): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        call.removeListener?.('cancelled', wake);
        this.historyWaiters.get(key)?.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(0, deadline - this.now()));
      let waiters = this.historyWaiters.get(key);
      if (!waiters) this.historyWaiters.set(key, (waiters = new Set()));
      waiters.add(wake);
      call.on('cancelled', wake);
    });
  }

  /** The pollers of a task queue (`DescribeTaskQueue` without the enhanced mode's versioning details). */
  describeTaskQueue(req: Pb): Pb {
    const ns = this.namespace(req.namespace as string);
    const name = (req.taskQueue as Pb | undefined)?.name as string | undefined;
    if (!name) throw invalidArgument('TaskQueue is not set on request.');
    const kind: QueueKind =
      req.taskQueueType === TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY ||
      req.taskQueueType === 'TASK_QUEUE_TYPE_ACTIVITY'
        ? 'activity'
        : 'workflow';
    const pollers = this.queues.recentPollers(ns.name, kind, name, this.now()).map((poller) => ({
      identity: poller.identity,
      lastAccessTime: timestamp(poller.lastAccessTime),
      ratePerSecond: 100_000,
    }));
    return { pollers };
  }

  describeWorkflow(req: Pb): Pb {
    const ns = this.namespace(req.namespace as string);
    const ex = this.addressed(ns.name, req.execution as Pb);
    const started = this.startedAttributes(ex);
    return {
      executionConfig: {
        taskQueue: { name: ex.taskQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
        workflowExecutionTimeout: started.workflowExecutionTimeout,
        workflowRunTimeout: started.workflowRunTimeout,
        defaultWorkflowTaskTimeout: duration(ex.workflowTaskTimeoutMs),
        userMetadata: ex.userMetadata,
      },
      workflowExecutionInfo: this.executionInfo(ex),
      pendingActivities: Object.values(ex.activities).map((a) => ({
        activityId: a.activityId,
        activityType: { name: a.activityType },
        state: a.cancelRequested
          ? PendingActivityState.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED
          : a.phase === 'started'
            ? PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            : PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED,
        heartbeatDetails: a.heartbeatDetails,
        lastHeartbeatTime: a.lastHeartbeatTime ? timestamp(a.lastHeartbeatTime) : undefined,
        lastStartedTime: a.startedTime ? timestamp(a.startedTime) : undefined,
        attempt: a.attempt,
        maximumAttempts: a.retry.maximumAttempts,
        scheduledTime: timestamp(a.scheduledTime),
        expirationTime: a.scheduleToCloseMs ? timestamp(a.scheduledTime + a.scheduleToCloseMs) : undefined,
        lastFailure: a.lastFailure,
        lastWorkerIdentity: a.identity,
        lastAttemptCompleteTime: a.lastAttemptCompleteTime ? timestamp(a.lastAttemptCompleteTime) : undefined,
        nextAttemptScheduleTime: a.phase === 'backoff' ? timestamp(a.attemptScheduledTime) : undefined,
      })),
      pendingChildren: Object.values(ex.children).map((c) => ({
        workflowId: c.workflowId,
        runId: c.runId,
        workflowTypeName: c.workflowType,
        initiatedId: String(c.initiatedEventId),
        parentClosePolicy: c.parentClosePolicy,
      })),
      pendingWorkflowTask: ex.wft
        ? {
            state:
              ex.wft.startedEventId > 0
                ? PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_STARTED
                : PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED,
            scheduledTime: timestamp(ex.wft.scheduledTime),
            originalScheduledTime: timestamp(ex.wft.scheduledTime),
            startedTime: ex.wft.startedTime ? timestamp(ex.wft.startedTime) : undefined,
            attempt: ex.wft.attempt,
          }
        : undefined,
      workflowExtendedInfo: {
        cancelRequested: ex.cancelRequested,
        executionExpirationTime: ex.executionExpiresAt ? timestamp(ex.executionExpiresAt) : undefined,
        runExpirationTime: ex.runTimeoutMs ? timestamp(ex.startTime + ex.runTimeoutMs) : undefined,
        originalStartTime: timestamp(ex.startTime),
      },
    };
  }

  private executionInfo(ex: ExecutionState): Pb {
    return {
      execution: { workflowId: ex.workflowId, runId: ex.runId },
      type: { name: ex.workflowType },
      startTime: timestamp(ex.startTime),
      closeTime: ex.closeTime ? timestamp(ex.closeTime) : undefined,
      status: ex.status,
      historyLength: String(ex.events.length),
      historySizeBytes: String(ex.historySizeBytes),
      parentNamespaceId: ex.parent ? this.namespaces.get(ex.parent.namespace)?.id : undefined,
      parentExecution: ex.parent ? { workflowId: ex.parent.workflowId, runId: ex.parent.runId } : undefined,
      rootExecution: ex.root,
      executionTime: timestamp(ex.executionTime),
      memo: ex.memo ?? { fields: {} },
      searchAttributes: { indexedFields: ex.searchAttributes },
      taskQueue: ex.taskQueue,
      firstRunId: ex.firstRunId,
      stateTransitionCount: String(ex.events.length),
      executionDuration: ex.closeTime ? duration(ex.closeTime - ex.executionTime) : undefined,
    };
  }

  listWorkflows(req: Pb): Pb {
    const ns = this.namespace(req.namespace as string);
    const page: ListPage = listExecutions(
      [...this.executions.values()].filter((ex) => ex.namespace === ns.name),
      ns.searchAttributes,
      (req.query as string) ?? '',
      (req.pageSize as number) || 1000,
      req.nextPageToken ? Buffer.from(req.nextPageToken as string, 'base64').toString() : undefined,
    );
    return {
      executions: page.executions.map((ex) => this.executionInfo(ex)),
      nextPageToken: page.nextPageToken ? Buffer.from(page.nextPageToken).toString('base64') : undefined,
    };
  }

  countWorkflows(req: Pb): Pb {
    const ns = this.namespace(req.namespace as string);
    const page = listExecutions(
      [...this.executions.values()].filter((ex) => ex.namespace === ns.name),
      ns.searchAttributes,
      (req.query as string) ?? '',
      Number.MAX_SAFE_INTEGER,
      undefined,
    );
    return { count: String(page.executions.length) };
  }
}

const closingCommands = new Set<number>([
  C.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
  C.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION,
  C.COMMAND_TYPE_CANCEL_WORKFLOW_EXECUTION,
  C.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION,
]);

const commandAttributeFields: Record<number, string> = {
  [C.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK]: 'scheduleActivityTaskCommandAttributes',
  [C.COMMAND_TYPE_REQUEST_CANCEL_ACTIVITY_TASK]: 'requestCancelActivityTaskCommandAttributes',
  [C.COMMAND_TYPE_START_TIMER]: 'startTimerCommandAttributes',
  [C.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION]: 'completeWorkflowExecutionCommandAttributes',
  [C.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION]: 'failWorkflowExecutionCommandAttributes',
  [C.COMMAND_TYPE_CANCEL_TIMER]: 'cancelTimerCommandAttributes',
  [C.COMMAND_TYPE_CANCEL_WORKFLOW_EXECUTION]: 'cancelWorkflowExecutionCommandAttributes',
  [C.COMMAND_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION]:
    'requestCancelExternalWorkflowExecutionCommandAttributes',
  [C.COMMAND_TYPE_RECORD_MARKER]: 'recordMarkerCommandAttributes',
  [C.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION]: 'continueAsNewWorkflowExecutionCommandAttributes',
  [C.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION]: 'startChildWorkflowExecutionCommandAttributes',
  [C.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION]: 'signalExternalWorkflowExecutionCommandAttributes',
  [C.COMMAND_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES]: 'upsertWorkflowSearchAttributesCommandAttributes',
  [C.COMMAND_TYPE_MODIFY_WORKFLOW_PROPERTIES]: 'modifyWorkflowPropertiesCommandAttributes',
  [C.COMMAND_TYPE_PROTOCOL_MESSAGE]: 'protocolMessageCommandAttributes',
};

const commandAttributesField = (type: number) => commandAttributeFields[type] ?? '';

const badAttributesCause: Record<number, number> = {
  [C.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK]: Cause.WORKFLOW_TASK_FAILED_CAUSE_BAD_SCHEDULE_ACTIVITY_ATTRIBUTES,
  [C.COMMAND_TYPE_START_TIMER]: Cause.WORKFLOW_TASK_FAILED_CAUSE_BAD_START_TIMER_ATTRIBUTES,
  [C.COMMAND_TYPE_CANCEL_TIMER]: Cause.WORKFLOW_TASK_FAILED_CAUSE_BAD_CANCEL_TIMER_ATTRIBUTES,
  [C.COMMAND_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES]: Cause.WORKFLOW_TASK_FAILED_CAUSE_BAD_SEARCH_ATTRIBUTES,
  [C.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION]:
    Cause.WORKFLOW_TASK_FAILED_CAUSE_BAD_START_CHILD_EXECUTION_ATTRIBUTES,
  [C.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION]:
    Cause.WORKFLOW_TASK_FAILED_CAUSE_BAD_CONTINUE_AS_NEW_ATTRIBUTES,
};

function encodeToken(token: TaskToken): string {
  return Buffer.from(JSON.stringify(token)).toString('base64');
}

function decodeToken(base64: string | undefined, kind: TaskToken['k']): TaskToken {
  if (!base64) throw invalidArgument('Task token not set on request.');
  let token: TaskToken;
  try {
    token = JSON.parse(Buffer.from(base64, 'base64').toString()) as TaskToken;
  } catch {
    throw invalidArgument('Error deserializing task token.');
  }
  if (token?.k !== kind) throw invalidArgument('Error deserializing task token.');
  return token;
}

function encodePageToken(page: { runId: string; from: number }): string {
  return Buffer.from(JSON.stringify(page)).toString('base64');
}

function decodePageToken(base64: string): { runId: string; from: number } {
  try {
    const page = JSON.parse(Buffer.from(base64, 'base64').toString()) as { runId: string; from: number };
    if (typeof page.runId === 'string' && Number.isInteger(page.from) && page.from >= 1) return page;
  } catch {
    // fall through
  }
  throw invalidArgument('Invalid NextPageToken.');
}

/** Id of the ChildWorkflowExecutionStarted event of a child (0 while it waits in the buffer). */
function childStartedEventId(parent: ExecutionState, initiatedEventId: number): number {
  for (let i = parent.events.length - 1; i >= 0; i--) {
    const attrs = parent.events[i]?.childWorkflowExecutionStartedEventAttributes as Pb | undefined;
    if (attrs && Number(attrs.initiatedEventId) === initiatedEventId) return i + 1;
  }
  return 0;
}

/** `WORKFLOW_TASK_FAILED_CAUSE_BAD_START_TIMER_ATTRIBUTES` → `BadStartTimerAttributes`, as Temporal names it. */
function causeName(cause: number): string {
  return String(Cause[cause] ?? 'Unspecified')
    .replace(/^WORKFLOW_TASK_FAILED_CAUSE_/, '')
    .toLowerCase()
    .replace(/(^|_)([a-z])/g, (_m, _s, c: string) => c.toUpperCase());
}
