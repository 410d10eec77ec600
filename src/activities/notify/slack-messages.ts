/**
 * Labline's Slack messages in Block Kit: the approval request with its decision buttons, reminders,
 * escalations, and the request once decided. Also the two pieces of data that travel through Slack: the
 * message metadata that lets the notifier find its own posts again, and the value of a decision button.
 * Pure functions: the notifier and the `labline slack` endpoint both build on them.
 */
import type { Block, KnownBlock } from '@slack/types';
import { z } from 'zod';
import {
  DecisionChoice,
  DecisionSignal,
  GateName,
  type DecisionRecord,
  type GateOutcome,
  type Waiting,
} from '../../experiment';
import type { Announcement, ApprovalMessage } from './notifier';

/** The metadata `event_type` of every message Labline posts. */
export const APPROVAL_EVENT_TYPE = 'labline_approval';
/** The block holding the decision buttons; removed once the gate is decided. */
export const ACTIONS_BLOCK_ID = 'labline_actions';
/** The block saying who decided; replaced when the message is updated again. */
export const DECIDED_BLOCK_ID = 'labline_decided';
/** Every decision button's `action_id` starts with this. */
export const ACTION_ID_PREFIX = 'labline_';

/** Slack's limit for a section's text is 3000 characters; a log tail is cut to leave room around it. */
const MAX_LOG_TAIL = 2000;
/** Slack's limit for a header's text. */
const MAX_HEADER = 150;

/** What a Labline message is, in its Slack metadata (`event_payload`). */
export const ApprovalMetadata = z.object({
  /** The notification's idempotency key. */
  key: z.string(),
  /** The workflow run that posted it; a resubmitted experiment is a new run. */
  run_id: z.string(),
  experiment_id: z.string(),
  gate: GateName,
  /** Which opening of the gate. */
  round: z.number().int(),
  /** `request` (first post of the round), `escalation`, `reminder`, or `announcement` (nothing to decide). */
  kind: z.enum(['request', 'escalation', 'reminder', 'announcement']),
  /** Whether the message carries decision buttons (and must be updated once decided). */
  buttons: z.boolean(),
});
/** What a Labline message is, in its Slack metadata. */
export type ApprovalMetadata = z.infer<typeof ApprovalMetadata>;

/**
 * The value of a decision button (at most 2000 characters; Slack echoes it back unchanged): the
 * experiment, the opening of the gate it was posted for (`since`), and the decision.
 */
export const ButtonValue = z.object({
  experiment_id: z.string(),
  gate: GateName,
  /** The gate's `waiting.since`: a button from an earlier opening of the same gate decides nothing. */
  since: z.string(),
  /** The gate's `waiting.opening`, which the decision names; absent on buttons posted before openings. */
  opening: z.string().optional(),
  signal: DecisionSignal,
  choice: DecisionChoice.optional(),
});
/** The value of a decision button. */
export type ButtonValue = z.infer<typeof ButtonValue>;

interface ButtonSpec {
  word: string;
  signal: DecisionSignal;
  choice?: DecisionChoice;
  style?: 'primary' | 'danger';
  /** Ask again before a decision that ends the experiment. */
  confirm?: string;
}

const BUTTONS: Record<GateName, ButtonSpec[]> = {
  launch: [
    { word: 'Approve', signal: 'approve', style: 'primary' },
    { word: 'Reject', signal: 'reject', style: 'danger', confirm: 'The experiment will not be launched.' },
  ],
  publish: [
    { word: 'Approve', signal: 'approve', style: 'primary' },
    { word: 'Reject', signal: 'reject', style: 'danger', confirm: 'The report will not be published.' },
  ],
  budget: [
    { word: 'Approve', signal: 'approve', style: 'primary' },
    { word: 'Reject', signal: 'reject', style: 'danger', confirm: 'The analysis agents will stop.' },
  ],
  failure: [
    { word: 'Retry', signal: 'approve', choice: 'retry', style: 'primary' },
    {
      word: 'Abort',
      signal: 'reject',
      choice: 'abort',
      style: 'danger',
      confirm: 'The experiment will end failed.',
    },
  ],
  deliverables: [
    { word: 'Accept anyway', signal: 'approve', choice: 'accept', style: 'primary' },
    { word: 'Rerun', signal: 'approve', choice: 'rerun' },
    {
      word: 'Abort',
      signal: 'reject',
      choice: 'abort',
      style: 'danger',
      confirm: 'The experiment will end failed.',
    },
  ],
};

const GATE_WORDS: Record<GateName, string> = {
  launch: 'Launch',
  publish: 'Publication',
  budget: 'LLM budget',
  failure: 'Failed training',
  deliverables: 'Unmet deliverables',
};

const OUTCOME_WORDS: Record<GateOutcome, { emoji: string; words: string }> = {
  approved: { emoji: ':white_check_mark:', words: 'Approved' },
  rejected: { emoji: ':x:', words: 'Rejected' },
  retry: { emoji: ':repeat:', words: 'Retry approved' },
  abort: { emoji: ':x:', words: 'Aborted' },
  accept: { emoji: ':white_check_mark:', words: 'Accepted anyway' },
  rerun: { emoji: ':repeat:', words: 'Rerun approved' },
};

const DECIDED_PREFIX = new RegExp(
  `^(?:${[...Object.values(OUTCOME_WORDS).map((o) => o.words), 'Decided'].join('|')}): `,
);

/** Escapes the three characters Slack's mrkdwn treats as control characters. */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A date Slack shows in each reader's time zone, with the ISO time as the fallback. */
export function slackDate(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return escapeMrkdwn(iso);
  return `<!date^${Math.floor(ms / 1000)}^{date_short_pretty} at {time}|${iso}>`;
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** A link in mrkdwn; paths that are not URLs are shown as code. */
function link(label: string, target: string): string {
  return /^https?:\/\//.test(target) ? `<${target}|${label}>` : `${label}: \`${escapeMrkdwn(target)}\``;
}

/** The decision buttons of a gate, each carrying the experiment, the gate's opening and the decision. */
export function decisionButtons(experimentId: string, waiting: Waiting): KnownBlock {
  return {
    type: 'actions',
    block_id: ACTIONS_BLOCK_ID,
    elements: BUTTONS[waiting.gate].map((button) => {
      const value: ButtonValue = {
        experiment_id: experimentId,
        gate: waiting.gate,
        since: waiting.since,
        ...(waiting.opening ? { opening: waiting.opening } : {}),
        signal: button.signal,
        ...(button.choice ? { choice: button.choice } : {}),
      };
      return {
        type: 'button' as const,
        action_id: `${ACTION_ID_PREFIX}${button.choice ?? button.signal}`,
        text: { type: 'plain_text' as const, text: button.word, emoji: true },
        value: JSON.stringify(value),
        ...(button.style ? { style: button.style } : {}),
        ...(button.confirm
          ? {
              confirm: {
                title: { type: 'plain_text' as const, text: `${button.word}?` },
                text: { type: 'mrkdwn' as const, text: button.confirm },
                confirm: { type: 'plain_text' as const, text: button.word },
                deny: { type: 'plain_text' as const, text: 'Cancel' },
              },
            }
          : {}),
      };
    }),
  };
}

/** What is to be approved, from the structured details when the workflow gave them, else its question. */
function whatToApprove(waiting: Waiting): string {
  const d = waiting.details;
  const lines: string[] = [];
  if (d?.command !== undefined) lines.push(`*Command* \`${escapeMrkdwn(d.command)}\``);
  if (d?.resources !== undefined) lines.push(`*Resources* ${escapeMrkdwn(d.resources)}`);
  if (d?.command !== undefined)
    lines.push(
      d.gpu_hours_estimate !== undefined
        ? `*Estimated GPU hours* at most ${+d.gpu_hours_estimate.toFixed(2)} per attempt`
        : '*Estimated GPU hours* unknown (no `resources.time_limit` in the spec)',
    );
  if (d?.error_class !== undefined)
    lines.push(
      `*Error class* \`${escapeMrkdwn(d.error_class)}\`${d.error ? `: ${escapeMrkdwn(d.error)}` : ''}`,
    );
  if (d?.headline !== undefined) lines.push(`*Analysis* ${escapeMrkdwn(d.headline)}`);
  if (d?.key_results?.length) {
    lines.push(waiting.gate === 'deliverables' ? '*Deliverables*' : '*Key results*');
    for (const r of d.key_results)
      lines.push(
        `${r.passed ? ':white_check_mark:' : ':x:'} ${escapeMrkdwn(r.name)}: ${escapeMrkdwn(r.found)} (expected ${escapeMrkdwn(r.expected)})`,
      );
  }
  if (lines.length === 0) lines.push(escapeMrkdwn(cut(waiting.question, 2800)));
  return lines.join('\n');
}

/** The approvers line: mentions, when the decision is due, what happens then. */
function approversLine(waiting: Waiting, mentions: string[]): string {
  const who = mentions.length ? mentions.join(', ') : 'anyone in this channel';
  return `*Who decides* ${who}\n*Decide by* ${slackDate(waiting.deadline)}`;
}

function linksLine(message: Pick<ApprovalMessage, 'links'>): string | undefined {
  const { tracker, report, run_dir: runDir, web_ui: webUi } = message.links;
  const parts = [
    webUi ? link('Temporal Web UI', webUi) : undefined,
    tracker ? link('W&B run', tracker) : undefined,
    report ? link('Report', report) : undefined,
    runDir ? link('Run directory', runDir) : undefined,
  ].filter((part): part is string => part !== undefined);
  return parts.length ? parts.join('  ·  ') : undefined;
}

/** Block Kit content: the fallback `text` (notifications, screen readers) and the blocks. */
export interface SlackContent {
  text: string;
  blocks: (KnownBlock | Block)[];
}

/**
 * An approval request: experiment and hypothesis, what is to be approved, links, who decides by when,
 * and the decision buttons. `kind` `escalation` says nobody decided in time and mentions who is asked now.
 */
export function requestContent(
  message: ApprovalMessage,
  mentions: string[],
  kind: 'request' | 'escalation' | 'reminder' = 'request',
): SlackContent {
  const { waiting } = message;
  const subject = `${GATE_WORDS[message.gate]} of ${message.name}`;
  const title =
    kind === 'escalation'
      ? `Escalated: ${subject} still needs a decision`
      : kind === 'reminder'
        ? `Reminder ${waiting.reminders_sent}: ${subject} needs a decision`
        : `Approval needed: ${subject}`;
  const blocks: (KnownBlock | Block)[] = [
    { type: 'header', text: { type: 'plain_text', text: cut(title, MAX_HEADER), emoji: true } },
  ];
  if (kind === 'escalation')
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: `Nobody decided in time. ${mentions.length ? mentions.join(', ') : 'Anyone'}, please decide.`,
      },
    });
  blocks.push({
    type: 'section',
    text: {
      type: 'mrkdwn',
      text: `*Experiment* \`${escapeMrkdwn(message.experimentId)}\`\n*Hypothesis* ${escapeMrkdwn(cut(message.hypothesis, 1000))}`,
    },
  });
  blocks.push({ type: 'section', text: { type: 'mrkdwn', text: whatToApprove(waiting) } });
  if (waiting.details?.log_tail)
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: `*Log tail*\n\`\`\`${escapeMrkdwn(waiting.details.log_tail.slice(-MAX_LOG_TAIL))}\`\`\``,
      },
    });
  const links = linksLine(message);
  if (links) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: links }] });
  blocks.push({ type: 'section', text: { type: 'mrkdwn', text: approversLine(waiting, mentions) } });
  blocks.push(decisionButtons(message.experimentId, waiting));
  return { text: `${title} (${message.experimentId})`, blocks };
}

/** An announcement: a header, what happened, links; no buttons, since nobody has to decide. */
export function announcementContent(message: Announcement): SlackContent {
  const blocks: (KnownBlock | Block)[] = [
    { type: 'header', text: { type: 'plain_text', text: cut(message.title, MAX_HEADER), emoji: true } },
    {
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: `*Campaign* \`${escapeMrkdwn(message.experimentId)}\`\n${escapeMrkdwn(cut(message.body, 2500))}`,
      },
    },
  ];
  const links = linksLine(message);
  if (links) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: links }] });
  return { text: `${message.title} (${message.experimentId})`, blocks };
}

/** A reminder in the request's thread: who still has to decide, and by when. */
export function reminderContent(message: ApprovalMessage, mentions: string[]): SlackContent {
  const { waiting } = message;
  const who = mentions.length ? mentions.join(', ') : 'Anyone in this channel';
  const text =
    `Reminder ${waiting.reminders_sent}: ${GATE_WORDS[message.gate].toLowerCase()} of ${message.name} ` +
    `(${message.experimentId}) still waits for a decision.`;
  return {
    text,
    blocks: [
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `:bell: ${escapeMrkdwn(text)} ${who}, please decide with the buttons above by ${slackDate(waiting.deadline)}.`,
        },
      },
    ],
  };
}

/** How a decision reads: outcome, who (with a mention when known), when, from where, and the comment. */
export function decisionLine(record: DecisionRecord, mention?: string): { emoji: string; text: string } {
  const outcome = record.outcome
    ? OUTCOME_WORDS[record.outcome]
    : { emoji: ':grey_question:', words: 'Ignored' };
  const who =
    record.source === 'timeout'
      ? 'by the gate timeout'
      : `by ${escapeMrkdwn(record.by)}${mention ? ` (${mention})` : ''}${record.source === 'slack' ? '' : ` via ${record.source}`}`;
  const comment = record.comment ? `\n> ${escapeMrkdwn(cut(record.comment, 500))}` : '';
  return { emoji: outcome.emoji, text: `*${outcome.words}* ${who} on ${slackDate(record.at)}${comment}` };
}

/**
 * A request once decided: the same blocks without the buttons, and who decided when (replacing an earlier
 * "decided" block, so updating twice gives the same message).
 */
export function decidedContent(
  blocks: readonly (KnownBlock | Block)[],
  fallbackText: string,
  record: DecisionRecord,
  mention?: string,
): SlackContent {
  const kept = blocks.filter(
    (block) => block.block_id !== ACTIONS_BLOCK_ID && block.block_id !== DECIDED_BLOCK_ID,
  );
  const line = decisionLine(record, mention);
  const outcome = record.outcome ? OUTCOME_WORDS[record.outcome].words : 'Decided';
  // Updating an updated message replaces its outcome rather than adding a second one.
  const original = fallbackText.replace(DECIDED_PREFIX, '');
  return {
    text: `${outcome}: ${original}`.slice(0, 3000),
    blocks: [
      ...kept,
      {
        type: 'section',
        block_id: DECIDED_BLOCK_ID,
        text: { type: 'mrkdwn', text: `${line.emoji} ${line.text}` },
      },
    ],
  };
}
