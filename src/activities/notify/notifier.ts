/**
 * Where approval requests go: the worker's console, or Slack (slack.ts). Posting is idempotent by key, so
 * a retried activity never posts twice.
 */
import { webUiWorkflowUrl, type DecisionRecord, type GateName, type Waiting } from '../../experiment';

export interface ApprovalMessage {
  /** Idempotency key: one post per key. */
  key: string;
  experimentId: string;
  name: string;
  hypothesis: string;
  gate: GateName;
  waiting: Waiting;
  /** Links to show: `run_dir`, `tracker` (the W&B run), `report`, `web_ui` (the Temporal Web UI page). */
  links: Record<string, string | undefined>;
  /** Which opening of this gate in the experiment (1, 2, …); absent from older workflow code. */
  round?: number;
}

/** A gate's decision, to update its request with. */
export type DecidedMessage = Omit<ApprovalMessage, 'waiting'> & {
  decision: DecisionRecord;
  /** When the gate opened, ISO 8601 (workflow time); absent from older workflow code. */
  since?: string;
};

/**
 * News nobody has to act on: an autonomous search promoting a new incumbent. Posted once per key; its
 * `gate` and `round` place it (a promotion: `publish`, the trial number).
 */
export interface Announcement {
  key: string;
  experimentId: string;
  name: string;
  gate: GateName;
  round: number;
  /** What happened, in one line. */
  title: string;
  /** The details: what changed and by how much. */
  body: string;
  /** When it happened, ISO 8601 (workflow time): where a notifier looks for an earlier attempt's post. */
  at: string;
  links: Record<string, string | undefined>;
}

/** Where a notification comes from, for notifiers that look for an earlier attempt's post. */
export interface NotifyContext {
  /** The workflow run: a resubmitted experiment (same id, new run) posts afresh. */
  workflowRunId?: string;
  /** The activity attempt, from 1; an attempt after the first may find its own earlier post. */
  attempt?: number;
}

export interface Notifier {
  requestApproval(message: ApprovalMessage, context?: NotifyContext): Promise<void>;
  remind(message: ApprovalMessage, context?: NotifyContext): Promise<void>;
  markDecided(message: DecidedMessage, context?: NotifyContext): Promise<void>;
  announce(message: Announcement, context?: NotifyContext): Promise<void>;
}

/** Writes approval requests to the worker's log, once per key, with the command that answers them. */
export class ConsoleNotifier implements Notifier {
  private readonly posted = new Set<string>();

  constructor(private readonly write: (line: string) => void = (line) => console.log(line)) {}

  async requestApproval(message: ApprovalMessage): Promise<void> {
    if (this.posted.has(message.key)) return;
    this.posted.add(message.key);
    // The command names this opening of the gate, so an answer given after it was decided changes nothing.
    const gate = `--gate ${message.gate}${message.waiting.opening ? ` --opening ${message.waiting.opening}` : ''}`;
    this.write(
      `[labline] ${message.experimentId} waits for ${message.gate} approval: ${message.waiting.question}\n` +
        `          approve: npx labline approve ${message.experimentId} ${gate}   ` +
        `reject: npx labline reject ${message.experimentId} ${gate}` +
        (message.links.web_ui ? `\n          Temporal Web UI: ${message.links.web_ui}` : ''),
    );
  }

  async remind(message: ApprovalMessage): Promise<void> {
    if (this.posted.has(message.key)) return;
    this.posted.add(message.key);
    this.write(
      `[labline] reminder ${message.waiting.reminders_sent}: ${message.experimentId} still waits for ${message.gate} approval` +
        (message.waiting.opening ? ` (opening ${message.waiting.opening})` : ''),
    );
  }

  async markDecided(message: DecidedMessage): Promise<void> {
    if (this.posted.has(message.key)) return;
    this.posted.add(message.key);
    const { decision } = message;
    this.write(
      `[labline] ${message.experimentId}: ${message.gate} ${decision.outcome ?? 'ignored'} by ${decision.by}`,
    );
  }

  async announce(message: Announcement): Promise<void> {
    if (this.posted.has(message.key)) return;
    this.posted.add(message.key);
    this.write(`[labline] ${message.experimentId}: ${message.title}\n          ${message.body}`);
  }
}

/**
 * Adds the experiment's Temporal Web UI page (`links.web_ui`) to every message: the worker knows the UI's
 * address (a local real dev server, or the `temporal.ui_url` setting); the workflow does not.
 */
export function withWebUiLinks(notifier: Notifier, uiUrl: string, namespace: string): Notifier {
  const linked = <M extends { experimentId: string; links: ApprovalMessage['links'] }>(message: M): M => ({
    ...message,
    links: { ...message.links, web_ui: webUiWorkflowUrl(uiUrl, namespace, message.experimentId) },
  });
  return {
    requestApproval: (message, context) => notifier.requestApproval(linked(message), context),
    remind: (message, context) => notifier.remind(linked(message), context),
    markDecided: (message, context) => notifier.markDecided(linked(message), context),
    announce: (message, context) => notifier.announce(linked(message), context),
  };
}
