/**
 * Where approval requests go: the console now, Slack next. Posting is idempotent by key, so a retried
 * activity never posts twice.
 */
import type { DecisionRecord, GateName, Waiting } from '../../experiment';

export interface ApprovalMessage {
  /** Idempotency key: one post per key. */
  key: string;
  experimentId: string;
  name: string;
  hypothesis: string;
  gate: GateName;
  waiting: Waiting;
  /** Links to show (run directory, W&B run, report). */
  links: Record<string, string | undefined>;
}

export interface Notifier {
  requestApproval(message: ApprovalMessage): Promise<void>;
  remind(message: ApprovalMessage): Promise<void>;
  markDecided(message: Omit<ApprovalMessage, 'waiting'> & { decision: DecisionRecord }): Promise<void>;
}

/** Writes approval requests to the worker's log, once per key, with the command that answers them. */
export class ConsoleNotifier implements Notifier {
  private readonly posted = new Set<string>();

  constructor(private readonly write: (line: string) => void = (line) => console.log(line)) {}

  async requestApproval(message: ApprovalMessage): Promise<void> {
    if (this.posted.has(message.key)) return;
    this.posted.add(message.key);
    this.write(
      `[labline] ${message.experimentId} waits for ${message.gate} approval: ${message.waiting.question}\n` +
        `          approve: npx labline approve ${message.experimentId} --gate ${message.gate}   ` +
        `reject: npx labline reject ${message.experimentId} --gate ${message.gate}`,
    );
  }

  async remind(message: ApprovalMessage): Promise<void> {
    if (this.posted.has(message.key)) return;
    this.posted.add(message.key);
    this.write(
      `[labline] reminder ${message.waiting.reminders_sent}: ${message.experimentId} still waits for ${message.gate} approval`,
    );
  }

  async markDecided(message: Omit<ApprovalMessage, 'waiting'> & { decision: DecisionRecord }): Promise<void> {
    if (this.posted.has(message.key)) return;
    this.posted.add(message.key);
    const { decision } = message;
    this.write(
      `[labline] ${message.experimentId}: ${message.gate} ${decision.outcome ?? 'ignored'} by ${decision.by}`,
    );
  }
}
