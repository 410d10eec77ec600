/**
 * A human decision inside a workflow: ask, remind on durable timers, escalate, and apply the gate's
 * timeout action. Decisions arrive as signals and are judged by `judgeDecision` from the domain layer.
 */
import { CancellationScope, condition, isCancellation, log, patched } from '@temporalio/workflow';
import {
  gateDisabledDecision,
  judgeDecision,
  rejectionOutcome,
  timeoutDecision,
  type Decision,
  type DecisionRecord,
  type DecisionSignal,
  type GateName,
  type GateOutcome,
  type ApprovalDetails,
  type GateSpec,
  type Waiting,
} from '../experiment';

/** Workflow time in epoch milliseconds (the sandbox makes `Date` deterministic). */
const nowMs = () => new Date().getTime();

/** What asking a person looks like from the workflow: the notifier activities. */
export interface GateMessenger {
  request(gate: GateName, waiting: Waiting, round: number): Promise<void>;
  remind(gate: GateName, waiting: Waiting, round: number): Promise<void>;
  /** `waiting` is the gate as it was when it closed (its `since` finds the request to update). */
  decided(gate: GateName, record: DecisionRecord, round: number, waiting: Waiting): Promise<void>;
}

/**
 * Since this patch, notifications never hold a gate up: requests and reminders run beside the wait (a
 * notifier that is down or rate limited retries while the gate can still be decided from the CLI), are
 * cancelled once the gate is decided, and the "decided" update runs beside what follows. Older histories
 * awaited each notification in turn; `patched` keeps them replaying that way.
 */
export const NOTIFICATIONS_IN_BACKGROUND_PATCH = 'labline-gate-notifications-in-background';

/** The notifications of one opening of a gate. */
class GateNotices {
  private readonly inFlight: { scope: CancellationScope; done: Promise<void> }[] = [];

  constructor(
    private readonly inBackground: boolean,
    private readonly context: { gate: GateName; round: number },
    private readonly finished: Promise<void>[],
  ) {}

  /** Sends a request or a reminder: in the background since the patch, awaited before it. */
  async send(kind: string, notify: () => Promise<void>): Promise<void> {
    if (!this.inBackground) return notify();
    const scope = new CancellationScope();
    const done = scope.run(notify).catch((error: unknown) => this.warn(kind, error));
    this.inFlight.push({ scope, done });
  }

  /** A decided gate needs no more requests or reminders: cancels those still retrying, waits until they stop. */
  async settle(): Promise<void> {
    if (!this.inBackground) return;
    for (const notice of this.inFlight) notice.scope.cancel();
    await Promise.all(this.inFlight.map((notice) => notice.done));
  }

  /** Sends the "decided" update: in the background since the patch (see {@link ApprovalGates.flush}). */
  async finish(notify: () => Promise<void>): Promise<void> {
    if (!this.inBackground) return notify();
    this.finished.push(notify().catch((error: unknown) => this.warn('decided', error)));
  }

  private warn(kind: string, error: unknown): void {
    if (isCancellation(error)) return;
    log.warn('approval notification failed; the gate can still be decided from the CLI', {
      ...this.context,
      notification: kind,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

/** Open gates and the decisions taken at them; the workflow's `status` reads `waiting` and `decisions`. */
export class ApprovalGates {
  readonly decisions: DecisionRecord[] = [];
  waiting: Waiting | undefined;
  private pending: DecisionRecord | undefined;
  private rounds = 0;
  private readonly finishedNotices: Promise<void>[] = [];

  constructor(
    private readonly messenger: GateMessenger,
    private readonly onWaitingChange: () => void,
  ) {}

  /** Handles an `approve` or `reject` signal; ignored decisions are recorded with why. */
  receive(signal: DecisionSignal, decision: Decision): void {
    const open = this.waiting ? { gate: this.waiting.gate, approvers: this.waiting.approvers } : undefined;
    const previous = [...this.decisions].reverse().find((d) => d.gate === decision.gate && d.outcome);
    const record = judgeDecision({
      signal,
      decision,
      at: new Date().toISOString(),
      open: this.pending ? undefined : open,
      previous,
    });
    this.decisions.push(record);
    if (record.outcome && !this.pending) this.pending = record;
  }

  /** Records a decision that could not be parsed, so the status says why nothing happened. */
  receiveMalformed(signal: DecisionSignal, gate: GateName, by: string, problem: string): void {
    this.decisions.push({
      gate,
      by,
      at: new Date().toISOString(),
      source: 'api',
      signal,
      ignored: `malformed decision: ${problem}`,
    });
  }

  /**
   * Waits for the "decided" updates still being sent, so that the experiment's last message is updated
   * before the workflow ends. Bounded by the notify activities' own timeouts.
   */
  async flush(): Promise<void> {
    await Promise.all(this.finishedNotices);
  }

  /**
   * Waits for the gate's decision, with reminders, escalation and the timeout action of its spec.
   *
   * @param details what is to be approved, field by field, for rich notifications
   */
  async decide(
    gate: GateName,
    spec: GateSpec,
    question: string,
    details?: ApprovalDetails,
  ): Promise<GateOutcome> {
    const round = ++this.rounds;
    if (!spec.enabled) {
      const record = gateDisabledDecision(gate, new Date().toISOString());
      this.decisions.push(record);
      return record.outcome!;
    }
    // Decided once per opening, so that a replay takes the same branch for the whole gate.
    const notices = new GateNotices(
      patched(NOTIFICATIONS_IN_BACKGROUND_PATCH),
      { gate, round },
      this.finishedNotices,
    );
    const openedAt = nowMs();
    let deadline = openedAt + spec.timeout * 1000;
    this.waiting = {
      gate,
      question,
      since: new Date(openedAt).toISOString(),
      approvers: [...spec.approvers],
      reminders_sent: 0,
      escalated: false,
      deadline: new Date(deadline).toISOString(),
      ...(details ? { details } : {}),
    };
    this.pending = undefined;
    this.onWaitingChange();
    const opened = this.waiting;
    await notices.send('request', () => this.messenger.request(gate, opened, round));
    // Every wait is bounded: by the next reminder or the deadline, whichever comes first.
    for (;;) {
      const now = nowMs();
      const waiting = this.waiting;
      const nextReminder =
        waiting.reminders_sent < spec.max_reminders
          ? openedAt + (waiting.reminders_sent + 1) * spec.reminder_interval * 1000
          : Infinity;
      const wakeAt = Math.min(nextReminder, deadline);
      const decided = await condition(() => this.pending !== undefined, Math.max(1, wakeAt - now));
      if (decided) break;
      if (nowMs() < deadline) {
        waiting.reminders_sent += 1;
        this.onWaitingChange();
        await notices.send('reminder', () => this.messenger.remind(gate, waiting, round));
        continue;
      }
      if (spec.on_timeout === 'escalate' && !waiting.escalated) {
        waiting.escalated = true;
        waiting.approvers = [...spec.approvers, ...spec.escalation_approvers];
        deadline = nowMs() + spec.timeout * 1000;
        waiting.deadline = new Date(deadline).toISOString();
        this.onWaitingChange();
        await notices.send('escalation', () => this.messenger.request(gate, waiting, round));
        continue;
      }
      const action = spec.on_timeout === 'approve' ? 'approve' : 'reject';
      const waited = (nowMs() - openedAt) / 1000;
      this.pending = timeoutDecision(gate, action, new Date().toISOString(), waited);
      this.decisions.push(this.pending);
      break;
    }
    const record = this.pending!;
    this.waiting = undefined;
    this.pending = undefined;
    this.onWaitingChange();
    await notices.settle();
    await notices.finish(() => this.messenger.decided(gate, record, round, opened));
    return record.outcome ?? rejectionOutcome(gate);
  }
}
