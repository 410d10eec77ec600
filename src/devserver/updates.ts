/**
 * Workflow Updates, as Temporal's history service runs them (temporalio/temporal `service/history/workflow/update`
 * and `docs/architecture/workflow-update.md`), for the engine to call at a few seams:
 *
 * - A request is admitted in memory only; nothing is written until the workflow accepts it, so that a
 *   rejection leaves no trace. The request reaches the worker as a protocol message on the next workflow task
 *   (a speculative one when none is pending, see `WorkflowTaskState.speculative`).
 * - The worker answers with Acceptance, Rejection and Response messages; acceptance and response become the
 *   WorkflowExecutionUpdateAccepted and ...Completed events, at the place of their PROTOCOL_MESSAGE command.
 * - Accepted and completed updates are found again from history (`ExecutionState.updates`), after a restart
 *   too; admitted ones are lost with the server, as on Temporal, and their callers retry.
 *
 * Callers wait for a stage. Every state change is published after the transaction that made it is durable
 * (`afterCommit`), and a waiter answers with the stage reached when the server's long-poll interval ends, so
 * that the SDK asks again, or with DEADLINE_EXCEEDED when the caller's own deadline comes first.
 */
import { status } from '@grpc/grpc-js';
import { failedPrecondition, notFound, ServiceError, workflowCompleted } from './errors';
import { isOpen, keyOf, makeEvent, writeEvent, type ExecutionState } from './execution';
import { enums, type Pb } from './proto';
import {
  abortedByClosing,
  abortedByServer,
  badMessageCause,
  closedBeforeCompletionFailure,
  decodeMessage,
  invalidBody,
  requestMessage,
  resurrectionRequest,
  unprocessedFailure,
  workflowClosing,
  workflowTaskFailed,
  type DecodedMessage,
} from './update-protocol';

const { UpdateWorkflowExecutionLifecycleStage: Stage, EventType: E, CommandType: C } = enums;

/** Temporal's `history.maxInFlightUpdates`, `history.maxTotalUpdates` and its continue-as-new threshold. */
const maxInFlightUpdates = 10;
const maxTotalUpdates = 2000;
const suggestContinueAsNewAtUpdates = Math.ceil(maxTotalUpdates * 0.9);
/** A workflow task failing this often makes new updates fail fast (Temporal's `failUpdateWorkflowTaskAttemptCount`). */
const failingTaskAttempts = 3;
/** Temporal's `history.discardSpeculativeWorkflowTaskMaximumEventsCount`. */
const maxDiscardableEvents = 10;

type Result<T> = { value: T } | { error: ServiceError };

/** A result that arrives once; listeners can leave before it does (a timed-out poll must not leak). */
class Settlement<T> {
  result?: Result<T>;
  private readonly listeners = new Set<() => void>();

  settle(result: Result<T>): void {
    if (this.result) return;
    this.result = result;
    for (const listener of this.listeners) listener();
    this.listeners.clear();
  }

  listen(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** One update of one run. `admitted` and `sent` live only in memory; `accepted` is in history. */
interface Update {
  readonly id: string;
  phase: 'admitted' | 'sent' | 'accepted' | 'done';
  /** The JSON-form `temporal.api.update.v1.Request`, until history holds it (in the accepted event). */
  request?: Pb;
  /** Order of admission: messages go to the worker in this order. */
  readonly seq: number;
  acceptedEventId?: number;
  /** Settles with the rejection failure, or undefined once accepted. */
  readonly accepted: Settlement<Pb | undefined>;
  /** Settles with the `temporal.api.update.v1.Outcome`. */
  readonly outcome: Settlement<Pb>;
}

/** What a caller waiting on an update gets: the stage reached and, once completed, the outcome. */
export interface UpdateStatus {
  stage: number;
  outcome?: Pb;
}

/** The messages of one workflow-task completion, decoded and checked before anything is written. */
export interface UpdateAnswers {
  /** Message id → message, for the PROTOCOL_MESSAGE commands; those not referenced are applied after the commands. */
  readonly pending: Map<string, DecodedMessage>;
  /** Any message that is not a rejection (a speculative task with only rejections leaves no trace). */
  readonly writesHistory: boolean;
}

export interface UpdatesHooks {
  /** Runs an effect once the current transaction is durable. */
  afterCommit(effect: () => void): void;
  /** How long a caller waits before it is answered with the stage reached (Temporal: 20 s). */
  waitTimeoutMs: number;
}

export class Updates {
  /** In-flight updates by run key, then update id. */
  private readonly runs = new Map<string, Map<string, Update>>();
  private readonly waits = new Set<(error: ServiceError) => void>();
  private seq = 0;

  constructor(private readonly hooks: UpdatesHooks) {}

  // ---------------------------------------------------------------------------------------------
  // Requests

  /**
   * Finds the update a request names, or admits it. `isNew` tells the engine to get it delivered (a
   * speculative workflow task when none is pending).
   */
  admit(ex: ExecutionState, request: Pb): { update: Update; isNew: boolean } {
    const id = request.meta.updateId as string;
    if (!isOpen(ex)) {
      // A closed run still answers for the updates it recorded, so a repeated request sees the same outcome.
      const recorded = this.find(ex, id);
      if (recorded) return { update: recorded, isNew: false };
      throw workflowCompleted();
    }
    if ((ex.wft?.attempt ?? 1) >= failingTaskAttempts) {
      // Updates are delivered after the events: a task that keeps failing would fail them too.
      throw failedPrecondition(
        'Unable to perform workflow execution update due to Workflow Task in failed state.',
      );
    }
    const existing = this.find(ex, id);
    if (existing) return { update: existing, isNew: false };
    this.checkLimits(ex);
    const update = newUpdate(id, 'admitted', ++this.seq);
    update.request = request;
    this.live(ex).set(id, update);
    return { update, isNew: true };
  }

  /** The update with this id: in flight, or recorded in the run's history. */
  find(ex: ExecutionState, id: string): Update | undefined {
    const live = this.runs.get(keyOf(ex))?.get(id);
    if (live) return live;
    const record = ex.updates?.[id];
    if (!record) return undefined;
    const update = newUpdate(id, 'accepted', 0);
    update.acceptedEventId = record.acceptedEventId;
    update.accepted.settle({ value: undefined });
    if (record.completedEventId) {
      update.phase = 'done';
      const completed = ex.events[record.completedEventId - 1];
      update.outcome.settle({
        value: completed?.workflowExecutionUpdateCompletedEventAttributes?.outcome as Pb,
      });
    } else if (!isOpen(ex)) {
      update.phase = 'done';
      update.outcome.settle({ value: { failure: closedBeforeCompletionFailure } });
    } else {
      // Accepted before a restart: kept so that the worker's response finds it.
      this.live(ex).set(id, update);
    }
    return update;
  }

  /** Like `find`, with Temporal's error when there is no such update. */
  findForPoll(ex: ExecutionState, id: string): Update {
    const update = this.find(ex, id);
    if (!update) throw notFound(`update "${id}" not found`);
    return update;
  }

  private checkLimits(ex: ExecutionState): void {
    const live = this.runs.get(keyOf(ex));
    const recorded = Object.entries(ex.updates ?? {});
    const inFlight =
      [...(live?.values() ?? [])].filter((u) => u.phase !== 'done').length +
      recorded.filter(([id, record]) => !record.completedEventId && !live?.has(id)).length;
    if (inFlight >= maxInFlightUpdates) {
      throw new ServiceError(
        status.RESOURCE_EXHAUSTED,
        `limit on number of concurrent in-flight updates has been reached (${maxInFlightUpdates})`,
      );
    }
    if (this.total(ex) >= maxTotalUpdates) {
      throw failedPrecondition(
        `The limit on the total number of distinct updates in this workflow has been reached (${maxTotalUpdates}). ` +
          'Make sure any duplicate updates share an Update ID so the server can deduplicate them, and consider ' +
          "rejecting updates that you aren't going to process. You can also Continue-as-New to avoid this; we " +
          'recommend you check Continue-as-New Suggested in your Workflow.',
      );
    }
  }

  /** Updates the run has taken: recorded in history, or admitted and not yet answered (rejections do not count). */
  private total(ex: ExecutionState): number {
    let admitted = 0;
    for (const update of this.runs.get(keyOf(ex))?.values() ?? []) {
      if (update.phase === 'admitted' || update.phase === 'sent') admitted++;
    }
    return Object.keys(ex.updates ?? {}).length + admitted;
  }

  /** Whether workflow tasks suggest continue-as-new: 90% of the updates a run may take are taken (as Temporal). */
  nearTotalLimit(ex: ExecutionState): boolean {
    return this.total(ex) >= suggestContinueAsNewAtUpdates;
  }

  /**
   * Waits until the update reaches `stage`, the server's wait interval ends (answered with the stage reached,
   * so the caller asks again) or the caller's deadline passes (DEADLINE_EXCEEDED). UNSPECIFIED and ADMITTED
   * answer at once with the stage reached.
   */
  wait(
    update: Update,
    stage: number,
    deadline: number | undefined,
    call: { on(event: 'cancelled', listener: () => void): unknown },
  ): Promise<UpdateStatus> {
    return new Promise((resolve, reject) => {
      const cleanups: (() => void)[] = [];
      let done = false;
      const finish = (settle: () => void) => {
        if (done) return;
        done = true;
        for (const cleanup of cleanups) cleanup();
        settle();
      };
      const evaluate = (intervalEnded: boolean) => {
        const reached = statusOf(update, stage, intervalEnded);
        if (reached instanceof ServiceError) finish(() => reject(reached));
        else if (reached) finish(() => resolve(reached));
      };
      evaluate(false);
      if (done) return;
      // Re-evaluated after every effect of the transaction has run: an update accepted and completed in one
      // workflow task then answers with its outcome, not with ACCEPTED.
      const onChange = () => queueMicrotask(() => evaluate(false));
      cleanups.push(update.accepted.listen(onChange), update.outcome.listen(onChange));
      const interval = setTimeout(() => evaluate(true), this.hooks.waitTimeoutMs);
      cleanups.push(() => clearTimeout(interval));
      if (deadline !== undefined && Number.isFinite(deadline)) {
        const expiry = setTimeout(
          () => finish(() => reject(new ServiceError(status.DEADLINE_EXCEEDED, 'context deadline exceeded'))),
          Math.max(0, deadline - Date.now()),
        );
        cleanups.push(() => clearTimeout(expiry));
      }
      const abort = (error: ServiceError) => finish(() => reject(error));
      this.waits.add(abort);
      cleanups.push(() => this.waits.delete(abort));
      call.on('cancelled', () =>
        finish(() => resolve({ stage: Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_UNSPECIFIED })),
      );
    });
  }

  /** UpdateWorkflowExecution's answer: the update's reference, the stage, the outcome and a link to it. */
  response(ex: ExecutionState, updateId: string, request: Pb, reached: UpdateStatus): Pb {
    const workflow = { namespace: ex.namespace, workflowId: ex.workflowId, runId: ex.runId };
    const completed = reached.stage === Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED;
    let link: Pb | undefined;
    // As Temporal does: any failure outcome links to the workflow, as for a rejection, which has no event.
    if (completed && reached.outcome?.failure)
      link = { workflow: { ...workflow, reason: 'Update rejected' } };
    else if (completed || reached.stage === Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ACCEPTED) {
      link = {
        workflowEvent: {
          ...workflow,
          requestIdRef: {
            requestId: request.requestId,
            eventType: E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
          },
        },
      };
    }
    return { ...this.pollResponse(ex, updateId, reached), link };
  }

  pollResponse(ex: ExecutionState, updateId: string, reached: UpdateStatus): Pb {
    return {
      updateRef: { workflowExecution: { workflowId: ex.workflowId, runId: ex.runId }, updateId },
      outcome: reached.outcome,
      stage: reached.stage,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Delivery

  /** Whether the run has updates the worker has not seen, so a workflow task is needed. */
  hasUndelivered(ex: ExecutionState): boolean {
    for (const update of this.runs.get(keyOf(ex))?.values() ?? [])
      if (update.phase === 'admitted') return true;
    return false;
  }

  /**
   * The request messages for a workflow task that starts now, in admission order; they are then `sent`.
   * Updates sent on an earlier task that failed or timed out go again, except on a heartbeat task.
   */
  requestMessages(ex: ExecutionState, startedEventId: number, includeSent: boolean): Pb[] {
    const live = this.runs.get(keyOf(ex));
    if (!live) return [];
    const due = [...live.values()]
      .filter((u) => u.phase === 'admitted' || (includeSent && u.phase === 'sent'))
      .sort((a, b) => a.seq - b.seq);
    return due.map((update) => {
      update.phase = 'sent';
      return requestMessage(update.id, update.request!, startedEventId);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // The worker's answers (RespondWorkflowTaskCompleted)

  /**
   * Decodes and checks a completion's messages against its commands and the updates in flight, so that a bad
   * message fails the workflow task before anything is written. Returns the failure, or the answers to apply.
   */
  checkAnswers(
    ex: ExecutionState,
    commands: Pb[],
    messages: Pb[] | undefined,
  ): { answers: UpdateAnswers; failure?: { cause: number; message: string } } {
    const pending = new Map<string, DecodedMessage>();
    const fail = (problem: string) => ({
      answers: { pending: new Map<string, DecodedMessage>(), writesHistory: false },
      // Temporal's wording for a failed task: the cause's name, then the problem.
      failure: { cause: badMessageCause, message: `BadUpdateWorkflowExecutionMessage: ${problem}` },
    });
    for (const message of messages ?? []) {
      const decoded = decodeMessage(message);
      if (typeof decoded === 'string') return fail(decoded);
      pending.set(decoded.id, decoded);
    }
    const order: DecodedMessage[] = [];
    for (const command of commands) {
      if (command.commandType !== C.COMMAND_TYPE_PROTOCOL_MESSAGE) continue;
      const id = command.protocolMessageCommandAttributes?.messageId as string | undefined;
      const message = id ? pending.get(id) : undefined;
      if (!message || order.includes(message)) {
        return fail(`ProtocolMessageCommand referenced absent message ID ${id ?? ''}`);
      }
      order.push(message);
    }
    for (const message of pending.values()) if (!order.includes(message)) order.push(message);
    // Rejections are applied first (see applyRejections); then the others in order, each seeing the one before.
    const phases = new Map<string, Update['phase']>();
    for (const message of [
      ...order.filter((m) => m.kind === 'Rejection'),
      ...order.filter((m) => m.kind !== 'Rejection'),
    ]) {
      const update = this.find(ex, message.updateId);
      const resurrectable = message.kind !== 'Response' && resurrectionRequest(message);
      if (!update && !resurrectable) {
        return fail(
          `update ${message.updateId} wasn't found on the server. This is most likely a transient error which will be resolved automatically by retries`,
        );
      }
      const phase = phases.get(message.updateId) ?? update?.phase ?? 'admitted';
      const allowed =
        message.kind === 'Response' ? phase === 'accepted' : phase === 'admitted' || phase === 'sent';
      if (!allowed) {
        return fail(
          `invalid state transition attempted for Update ${message.updateId}: received *update.${message.kind} message while in state ${phase}`,
        );
      }
      const invalid = invalidBody(message);
      if (invalid) return fail(invalid);
      phases.set(message.updateId, message.kind === 'Acceptance' ? 'accepted' : 'done');
    }
    return { answers: { pending, writesHistory: order.some((m) => m.kind !== 'Rejection') } };
  }

  /**
   * Applies the rejections first: they write nothing, and a workflow that closes in the same task must not
   * turn them into "aborted by closing workflow" (Temporal applies them before it aborts what is left).
   */
  applyRejections(ex: ExecutionState, answers: UpdateAnswers): void {
    for (const message of [...answers.pending.values()]) {
      if (message.kind !== 'Rejection') continue;
      answers.pending.delete(message.id);
      const update = this.find(ex, message.updateId) ?? this.resurrect(ex, message);
      this.reject(ex, update, message.body.failure as Pb);
    }
  }

  /** Applies the message a PROTOCOL_MESSAGE command names: its event takes the command's place in history. */
  applyCommand(ex: ExecutionState, answers: UpdateAnswers, command: Pb, now: number): void {
    const message = answers.pending.get(command.protocolMessageCommandAttributes?.messageId as string);
    if (!message) return;
    answers.pending.delete(message.id);
    this.apply(ex, message, now);
  }

  /** Applies the messages no command named, after the commands, in the order the worker sent them. */
  applyRemaining(ex: ExecutionState, answers: UpdateAnswers, now: number): void {
    for (const message of [...answers.pending.values()]) {
      answers.pending.delete(message.id);
      this.apply(ex, message, now);
    }
  }

  private apply(ex: ExecutionState, message: DecodedMessage, now: number): void {
    // Closed by an earlier command of the same task: closeRun has already answered every update in flight.
    if (!isOpen(ex)) return;
    const update = this.find(ex, message.updateId) ?? this.resurrect(ex, message);
    if (message.kind === 'Acceptance') {
      const acceptedEventId = writeEvent(
        ex,
        makeEvent(
          E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
          {
            protocolInstanceId: update.id,
            acceptedRequestMessageId: `${update.id}/request`,
            acceptedRequestSequencingEventId: message.body.acceptedRequestSequencingEventId,
            acceptedRequest: update.request,
          },
          now,
        ),
      );
      (ex.updates ??= {})[update.id] = { acceptedEventId };
      update.phase = 'accepted';
      update.acceptedEventId = acceptedEventId;
      update.request = undefined;
      this.hooks.afterCommit(() => update.accepted.settle({ value: undefined }));
    } else if (message.kind === 'Response') {
      const completedEventId = writeEvent(
        ex,
        makeEvent(
          E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
          {
            meta: message.body.meta,
            outcome: message.body.outcome,
            acceptedEventId: String(update.acceptedEventId),
          },
          now,
        ),
      );
      (ex.updates ??= {})[update.id] = { acceptedEventId: update.acceptedEventId!, completedEventId };
      this.settleDone(ex, update, { value: message.body.outcome as Pb });
    }
  }

  /**
   * After a completion that kept the run open: an update the task delivered and the worker did not answer is
   * rejected for it, as Temporal does, or it would be delivered again and again. Not after a heartbeat.
   */
  rejectUnanswered(ex: ExecutionState): void {
    for (const update of this.runs.get(keyOf(ex))?.values() ?? []) {
      if (update.phase === 'sent') this.reject(ex, update, unprocessedFailure);
    }
  }

  /**
   * The server refused a completion (a bad command or message, or unhandled events): updates the task
   * delivered fail, as Temporal's AbortReasonWorkflowTaskFailed does; those not yet delivered wait for the
   * next task, as Temporal's internal retries get them delivered.
   */
  onCompletionRefused(ex: ExecutionState): void {
    for (const update of [...(this.runs.get(keyOf(ex))?.values() ?? [])]) {
      if (update.phase !== 'sent') continue;
      this.settleDone(ex, update, { error: workflowTaskFailed() });
    }
  }

  /**
   * The run closed. Updates not yet accepted are refused: for good when the workflow ended ("aborted by closing
   * workflow"), or with a retryable error when a new run follows (the caller's retry reaches it). Accepted ones
   * complete with Temporal's "completed before the update completed" failure.
   */
  onRunClosed(ex: ExecutionState, hasNewRun: boolean): void {
    const live = this.runs.get(keyOf(ex));
    if (!live) return;
    this.runs.delete(keyOf(ex));
    for (const update of live.values()) {
      if (update.phase === 'accepted') {
        this.hooks.afterCommit(() =>
          update.outcome.settle({ value: { failure: closedBeforeCompletionFailure } }),
        );
      } else if (update.phase !== 'done') {
        const error = hasNewRun ? workflowClosing() : abortedByClosing();
        this.hooks.afterCommit(() => {
          update.accepted.settle({ error });
          update.outcome.settle({ error });
        });
      }
    }
  }

  /** Whether a speculative task's completion can be dropped: only rejections and no new commands. */
  canDiscard(ex: ExecutionState, req: Pb, answers: UpdateAnswers): boolean {
    if (
      (req.commands as Pb[] | undefined)?.length ||
      req.forceCreateNewWorkflowTask ||
      answers.writesHistory
    ) {
      return false;
    }
    // Events after the last completed task are shipped again with the next one: an SDK that says it copes
    // gets a bounded number of them, another none (Temporal's skipWorkflowTaskCompletedEvent).
    const eventsSinceCompleted = ex.events.length - (ex.previousStartedEventId + 1);
    const bound = req.capabilities?.discardSpeculativeWorkflowTaskWithEvents ? maxDiscardableEvents : 0;
    return eventsSinceCompleted <= bound;
  }

  /** The server stops: callers get a retryable error instead of waiting on a server that is gone. */
  stop(): void {
    for (const abort of [...this.waits]) abort(abortedByServer());
    this.runs.clear();
  }

  // ---------------------------------------------------------------------------------------------

  private live(ex: ExecutionState): Map<string, Update> {
    const key = keyOf(ex);
    let live = this.runs.get(key);
    if (!live) this.runs.set(key, (live = new Map()));
    return live;
  }

  /** An update the server lost (its task outlived a restart) comes back from the request the worker returns. */
  private resurrect(ex: ExecutionState, message: DecodedMessage): Update {
    const update = newUpdate(message.updateId, 'sent', ++this.seq);
    update.request = resurrectionRequest(message);
    this.live(ex).set(update.id, update);
    return update;
  }

  private reject(ex: ExecutionState, update: Update, failure: Pb): void {
    this.runs.get(keyOf(ex))?.delete(update.id);
    update.phase = 'done';
    this.hooks.afterCommit(() => {
      update.accepted.settle({ value: failure });
      update.outcome.settle({ value: { failure } });
    });
  }

  private settleDone(ex: ExecutionState, update: Update, result: Result<Pb>): void {
    this.runs.get(keyOf(ex))?.delete(update.id);
    update.phase = 'done';
    this.hooks.afterCommit(() => {
      if ('error' in result) update.accepted.settle(result);
      update.outcome.settle(result);
    });
  }
}

function newUpdate(id: string, phase: Update['phase'], seq: number): Update {
  return { id, phase, seq, accepted: new Settlement(), outcome: new Settlement() };
}

/**
 * What a caller waiting for `stage` gets now: a status, an error, or undefined to keep waiting. After the
 * server's wait interval it is the stage reached (Temporal's WaitLifecycleStage).
 */
function statusOf(
  update: Update,
  stage: number,
  intervalEnded: boolean,
): UpdateStatus | ServiceError | undefined {
  const accepted = update.accepted.result;
  const outcome = update.outcome.result;
  if (outcome && 'error' in outcome) return outcome.error;
  if (outcome)
    return { stage: Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED, outcome: outcome.value };
  if (accepted && 'error' in accepted) return accepted.error;
  const waitsForCompletion = stage === Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED;
  const waits = waitsForCompletion || stage === Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ACCEPTED;
  if (accepted && (!waitsForCompletion || intervalEnded)) {
    return { stage: Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ACCEPTED };
  }
  if (!waits || intervalEnded) return { stage: Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED };
  return undefined;
}
