/**
 * A human decision inside a workflow: ask, remind on durable timers, escalate, and apply the gate's
 * timeout action. Decisions arrive as signals and are judged by `judgeDecision` from the domain layer.
 */
import { condition } from '@temporalio/workflow';
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
  type GateSpec,
  type Waiting,
} from '../experiment';

/** Workflow time in epoch milliseconds (the sandbox makes `Date` deterministic). */
const nowMs = () => new Date().getTime();

/** What asking a person looks like from the workflow: the notifier activities. */
export interface GateMessenger {
  request(gate: GateName, waiting: Waiting, round: number): Promise<void>;
  remind(gate: GateName, waiting: Waiting, round: number): Promise<void>;
  decided(gate: GateName, record: DecisionRecord, round: number): Promise<void>;
}

/** Open gates and the decisions taken at them; the workflow's `status` reads `waiting` and `decisions`. */
export class ApprovalGates {
  readonly decisions: DecisionRecord[] = [];
  waiting: Waiting | undefined;
  private pending: DecisionRecord | undefined;
  private rounds = 0;

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

  /** Waits for the gate's decision, with reminders, escalation and the timeout action of its spec. */
  async decide(gate: GateName, spec: GateSpec, question: string): Promise<GateOutcome> {
    const round = ++this.rounds;
    if (!spec.enabled) {
      const record = gateDisabledDecision(gate, new Date().toISOString());
      this.decisions.push(record);
      return record.outcome!;
    }
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
    };
    this.pending = undefined;
    this.onWaitingChange();
    await this.messenger.request(gate, this.waiting, round);
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
        await this.messenger.remind(gate, waiting, round);
        continue;
      }
      if (spec.on_timeout === 'escalate' && !waiting.escalated) {
        waiting.escalated = true;
        waiting.approvers = [...spec.approvers, ...spec.escalation_approvers];
        deadline = nowMs() + spec.timeout * 1000;
        waiting.deadline = new Date(deadline).toISOString();
        this.onWaitingChange();
        await this.messenger.request(gate, waiting, round);
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
    await this.messenger.decided(gate, record, round);
    return record.outcome ?? rejectionOutcome(gate);
  }
}
