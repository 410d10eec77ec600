/**
 * The Slack notifier: approval requests in a channel with Block Kit and decision buttons, reminders in
 * the request's thread, escalations that mention the escalation approvers, and the request updated once
 * decided (`chat.update`).
 *
 * Idempotency. `chat.postMessage` has no idempotency key, so every post carries message metadata with the
 * notification's key and workflow run, and an attempt after the first looks in the channel (or thread)
 * for it before posting. The record lives in Slack itself: it survives a worker that crashed between
 * posting and reporting, and a retry on another host, which a local file or memory would not.
 *
 * Retries belong to Temporal: the Web API client does not retry; a 429 becomes a retryable failure whose
 * `nextRetryDelay` is Slack's Retry-After, and refusals (bad token, unknown channel, missing scope) are
 * not retried.
 */
import { ApplicationFailure } from '@temporalio/activity';
import {
  ErrorCode,
  LogLevel,
  WebClient,
  type ChatPostMessageArguments,
  type WebAPICallError,
} from '@slack/web-api';
import type { Block, KnownBlock, MessageMetadata } from '@slack/types';
import { FailureType } from '../../experiment';
import type { Announcement, ApprovalMessage, DecidedMessage, Notifier, NotifyContext } from './notifier';
import { SlackDirectory } from './slack-directory';
import {
  announcementContent,
  APPROVAL_EVENT_TYPE,
  ApprovalMetadata,
  decidedContent,
  reminderContent,
  requestContent,
  type SlackContent,
} from './slack-messages';
import type { SlackSettings } from './slack-settings';

/** Options of {@link createSlackWebClient}. */
export interface SlackWebClientOptions {
  /** Bot token (`xoxb-…`); from SLACK_BOT_TOKEN, never from settings. */
  token: string;
  /** Web API base URL. Default `https://slack.com/api/`. */
  apiUrl?: string;
  /** Milliseconds before one Web API call is abandoned. Default 10 000. */
  timeoutMs?: number;
  /** Whether the client retries by itself. Default `false`: inside activities Temporal retries. */
  retries?: boolean;
}

/**
 * A Web API client for activities: no retries of its own, a 429 thrown at once (with Slack's
 * Retry-After) instead of waited out, and a bounded time per call.
 */
export function createSlackWebClient(options: SlackWebClientOptions): WebClient {
  return new WebClient(options.token, {
    slackApiUrl: options.apiUrl ?? 'https://slack.com/api/',
    retryConfig: options.retries ? { retries: 2, factor: 2, minTimeout: 500 } : { retries: 0 },
    rejectRateLimitedCalls: !options.retries,
    timeout: options.timeoutMs ?? 10_000,
    logLevel: LogLevel.ERROR,
  });
}

/**
 * Platform errors that retrying cannot fix: credentials, scopes, the channel, the message itself.
 * Others (`internal_error`, `fatal_error`, `service_unavailable`, `request_timeout`…) are retried.
 */
const REFUSALS = new Map<string, string>([
  ['invalid_auth', 'check SLACK_BOT_TOKEN (a bot token, xoxb-…) and that the app is installed'],
  ['not_authed', 'set SLACK_BOT_TOKEN in the environment of the worker'],
  ['account_inactive', 'the bot token belongs to a deactivated user or an uninstalled app; reinstall it'],
  ['token_revoked', 'the bot token was revoked; reinstall the app and update SLACK_BOT_TOKEN'],
  ['token_expired', 'the bot token expired; update SLACK_BOT_TOKEN'],
  ['no_permission', 'the app lacks a permission for this channel'],
  [
    'missing_scope',
    'add the scopes chat:write, channels:history (groups:history for private channels), users:read and users:read.email, then reinstall the app',
  ],
  ['channel_not_found', 'set slack.channel to the id of an existing channel the bot can see'],
  ['not_in_channel', 'invite the bot to the channel (/invite @your-app)'],
  ['is_archived', 'the channel is archived; choose another slack.channel'],
  ['restricted_action', 'the workspace does not allow the bot to post in this channel'],
  ['invalid_blocks', 'Slack rejected the message layout; report this as a Labline bug'],
  ['invalid_arguments', 'Slack rejected the call arguments; report this as a Labline bug'],
  ['msg_too_long', 'the message is too long; report this as a Labline bug'],
  ['invalid_metadata_format', 'Slack rejected the message metadata; report this as a Labline bug'],
  ['invalid_metadata_schema', 'Slack rejected the message metadata; report this as a Labline bug'],
  ['metadata_too_large', 'the message metadata is too large; report this as a Labline bug'],
  ['cant_update_message', 'the bot can only update its own messages'],
]);

function isWebApiError(error: unknown): error is WebAPICallError {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && Object.values(ErrorCode).includes(code as ErrorCode);
}

/**
 * Sorts a Web API error into a retryable or non-retryable activity failure: 429 → retry after Slack's
 * Retry-After; network errors, 5xx and transient platform errors → retry with Temporal's backoff;
 * refusals → not retried, with the fix in the message.
 */
export function slackFailure(error: unknown, call: string, where: string): unknown {
  if (!isWebApiError(error)) return error;
  switch (error.code) {
    case ErrorCode.RateLimitedError:
      return ApplicationFailure.create({
        type: FailureType.NotifierUnavailable,
        message: `Slack rate limited ${call} (${where}); retrying after ${error.retryAfter}s as its Retry-After asks`,
        nextRetryDelay: `${Math.max(1, error.retryAfter)}s`,
        cause: error,
      });
    case ErrorCode.RequestError:
      return ApplicationFailure.retryable(
        `Slack did not answer ${call} (${where}): ${error.original.message}; retrying`,
        FailureType.NotifierUnavailable,
      );
    case ErrorCode.HTTPError:
      return ApplicationFailure.retryable(
        `Slack answered ${call} (${where}) with HTTP ${error.statusCode}; retrying`,
        FailureType.NotifierUnavailable,
      );
    case ErrorCode.PlatformError: {
      const code = error.data.error;
      const fix = REFUSALS.get(code);
      const needed = (error.data as { needed?: string }).needed;
      if (fix)
        return ApplicationFailure.nonRetryable(
          `Slack refused ${call} (${where}): ${code}${needed ? ` (needs ${needed})` : ''}. Fix: ${fix}.`,
          FailureType.NotifierRejected,
        );
      return ApplicationFailure.retryable(
        `Slack failed ${call} (${where}): ${code}; retrying`,
        FailureType.NotifierUnavailable,
      );
    }
    default:
      return error;
  }
}

/** A message as `conversations.history` / `conversations.replies` return it. */
interface ChannelMessage {
  ts?: string;
  text?: string;
  blocks?: (KnownBlock | Block)[];
  metadata?: { event_type?: string; event_payload?: unknown };
}

/** Options of {@link SlackNotifier}. */
export interface SlackNotifierOptions {
  /** A client from {@link createSlackWebClient}. */
  client: WebClient;
  /** The `slack` section of the settings: channel and approver map. */
  settings: Pick<SlackSettings, 'channel' | 'approvers'>;
  /** History pages (of 100 messages) searched for an earlier post, newest first. Default 10. */
  maxHistoryPages?: number;
  /** Seconds of clock skew allowed between the workflow and Slack when bounding that search. Default 600. */
  clockSkewSeconds?: number;
}

export class SlackNotifier implements Notifier {
  private readonly client: WebClient;
  private readonly channel: string;
  private readonly directory: SlackDirectory;
  private readonly maxHistoryPages: number;
  private readonly clockSkewSeconds: number;
  /** Posts this process made, by run and key: spares the history search on a retry in the same process. */
  private readonly posted = new Map<string, string>();
  /** Slack user ids by email (users.lookupByEmail), for mentions. */
  private readonly idsByEmail = new Map<string, string | undefined>();

  constructor(options: SlackNotifierOptions) {
    this.client = options.client;
    this.channel = options.settings.channel;
    this.directory = new SlackDirectory(options.settings.approvers);
    this.maxHistoryPages = options.maxHistoryPages ?? 10;
    this.clockSkewSeconds = options.clockSkewSeconds ?? 600;
  }

  async requestApproval(message: ApprovalMessage, context: NotifyContext = {}): Promise<void> {
    const kind = message.waiting.escalated ? 'escalation' : 'request';
    const metadata = this.metadata(message, context, kind, true);
    if (await this.alreadyPosted(metadata, context, message.waiting.since)) return;
    // An escalation mentions who is asked now; the request mentions the gate's approvers.
    const mentions = await this.mentions(message.waiting.approvers);
    await this.post(requestContent(message, mentions, kind), metadata, `${kind} ${message.key}`);
  }

  async remind(message: ApprovalMessage, context: NotifyContext = {}): Promise<void> {
    const metadata = this.metadata(message, context, 'reminder', false);
    const cacheKey = `${metadata.run_id}/${metadata.key}`;
    if (this.posted.has(cacheKey)) return;
    const mentions = await this.mentions(message.waiting.approvers);
    const root = (
      await this.findInChannel(
        (m) =>
          m.run_id === metadata.run_id &&
          m.experiment_id === message.experimentId &&
          m.gate === message.gate &&
          m.round === metadata.round &&
          m.kind === 'request',
        message.waiting.since,
      )
    )[0];
    if (!root?.ts) {
      // The request never made it (refused, or cancelled in an outage): the reminder carries the buttons.
      const standalone = { ...metadata, buttons: true };
      if (await this.alreadyPosted(standalone, context, message.waiting.since)) return;
      await this.post(requestContent(message, mentions, 'reminder'), standalone, `reminder ${message.key}`);
      return;
    }
    if ((context.attempt ?? 2) > 1) {
      const replies = await this.findInThread(
        root.ts,
        (m) => m.key === metadata.key && m.run_id === metadata.run_id,
      );
      if (replies.length > 0) return;
    }
    await this.post(reminderContent(message, mentions), metadata, `reminder ${message.key}`, root.ts);
  }

  async markDecided(message: DecidedMessage, context: NotifyContext = {}): Promise<void> {
    const runId = context.workflowRunId ?? '';
    const round = message.round ?? roundFromKey(message.key);
    const posts = await this.findInChannel(
      (m) =>
        m.run_id === runId &&
        m.experiment_id === message.experimentId &&
        m.gate === message.gate &&
        m.round === round &&
        m.buttons,
      message.since,
    );
    const [who] = await this.mentions([message.decision.by]);
    const mention = who?.startsWith('<@') ? who : undefined;
    for (const post of posts) {
      if (!post.ts) continue;
      const content = decidedContent(
        post.blocks ?? [],
        post.text ?? `${message.gate} of ${message.name}`,
        message.decision,
        mention,
      );
      await this.call('chat.update', () =>
        this.client.chat.update({
          channel: this.channel,
          ts: post.ts!,
          text: content.text,
          blocks: content.blocks,
          metadata: post.metadata as MessageMetadata,
        }),
      );
    }
  }

  async announce(message: Announcement, context: NotifyContext = {}): Promise<void> {
    const metadata: ApprovalMetadata = {
      key: message.key,
      run_id: context.workflowRunId ?? '',
      experiment_id: message.experimentId,
      gate: message.gate,
      round: message.round,
      kind: 'announcement',
      buttons: false,
    };
    if (await this.alreadyPosted(metadata, context, message.at)) return;
    await this.post(announcementContent(message), metadata, `announcement ${message.key}`);
  }

  private metadata(
    message: ApprovalMessage,
    context: NotifyContext,
    kind: ApprovalMetadata['kind'],
    buttons: boolean,
  ): ApprovalMetadata {
    return {
      key: message.key,
      run_id: context.workflowRunId ?? '',
      experiment_id: message.experimentId,
      gate: message.gate,
      round: message.round ?? roundFromKey(message.key),
      kind,
      buttons,
    };
  }

  /**
   * Whether this notification was posted already: by this process, or (on an attempt after the first)
   * by an earlier attempt anywhere, found through its metadata in the channel.
   */
  private async alreadyPosted(
    metadata: ApprovalMetadata,
    context: NotifyContext,
    since: string,
  ): Promise<boolean> {
    if (this.posted.has(`${metadata.run_id}/${metadata.key}`)) return true;
    // The first attempt of a notification cannot find an earlier one: keys are unique per run.
    if ((context.attempt ?? 2) <= 1) return false;
    const found = await this.findInChannel(
      (m) => m.key === metadata.key && m.run_id === metadata.run_id,
      since,
    );
    return found.length > 0;
  }

  private async post(
    content: SlackContent,
    metadata: ApprovalMetadata,
    what: string,
    threadTs?: string,
  ): Promise<void> {
    const args: ChatPostMessageArguments = {
      channel: this.channel,
      text: content.text,
      blocks: content.blocks,
      metadata: { event_type: APPROVAL_EVENT_TYPE, event_payload: metadata },
      unfurl_links: false,
      ...(threadTs ? { thread_ts: threadTs } : {}),
    };
    const result = await this.call(`chat.postMessage (${what})`, () => this.client.chat.postMessage(args));
    if (result.ts) this.posted.set(`${metadata.run_id}/${metadata.key}`, result.ts);
  }

  /**
   * Labline's top-level messages in the channel matching `match`, newest first, searched back to a little
   * before `since` (when the gate opened), at most {@link SlackNotifierOptions.maxHistoryPages} pages.
   */
  private async findInChannel(
    match: (metadata: ApprovalMetadata) => boolean,
    since: string | undefined,
  ): Promise<ChannelMessage[]> {
    const sinceMs = since === undefined ? NaN : Date.parse(since);
    const oldest = Number.isNaN(sinceMs)
      ? undefined
      : String(Math.floor(sinceMs / 1000) - this.clockSkewSeconds);
    const found: ChannelMessage[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < this.maxHistoryPages; page++) {
      const result = await this.call('conversations.history', () =>
        this.client.conversations.history({
          channel: this.channel,
          include_all_metadata: true,
          limit: 100,
          ...(oldest ? { oldest } : {}),
          ...(cursor ? { cursor } : {}),
        }),
      );
      for (const message of (result.messages ?? []) as ChannelMessage[])
        if (matchesMetadata(message, match)) found.push(message);
      cursor = result.response_metadata?.next_cursor || undefined;
      if (!result.has_more || !cursor) break;
    }
    return found;
  }

  /** Labline's replies in a thread matching `match`. */
  private async findInThread(
    threadTs: string,
    match: (metadata: ApprovalMetadata) => boolean,
  ): Promise<ChannelMessage[]> {
    const found: ChannelMessage[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < this.maxHistoryPages; page++) {
      const result = await this.call('conversations.replies', () =>
        this.client.conversations.replies({
          channel: this.channel,
          ts: threadTs,
          include_all_metadata: true,
          limit: 100,
          ...(cursor ? { cursor } : {}),
        }),
      );
      for (const message of (result.messages ?? []) as ChannelMessage[])
        if (message.ts !== threadTs && matchesMetadata(message, match)) found.push(message);
      cursor = result.response_metadata?.next_cursor || undefined;
      if (!result.has_more || !cursor) break;
    }
    return found;
  }

  /** Mentions for approvers: `<@U…>` when the settings give a Slack user (by id or email), else the name. */
  private async mentions(approvers: readonly string[]): Promise<string[]> {
    const mentions: string[] = [];
    for (const approver of approvers) {
      const { ids, emails } = this.directory.identities(approver);
      const id = ids[0] ?? (emails[0] !== undefined ? await this.idOfEmail(emails[0]) : undefined);
      mentions.push(id ? `<@${id}>` : approver);
    }
    return mentions;
  }

  /** A mention is a courtesy: an email Slack does not know leaves the plain name, it does not fail the post. */
  private async idOfEmail(email: string): Promise<string | undefined> {
    if (this.idsByEmail.has(email)) return this.idsByEmail.get(email);
    let id: string | undefined;
    try {
      id = (await this.client.users.lookupByEmail({ email })).user?.id;
    } catch (error) {
      // users_not_found, missing_scope…: no mention. Rate limits and outages are retried like any call.
      if (!(isWebApiError(error) && error.code === ErrorCode.PlatformError))
        throw slackFailure(error, 'users.lookupByEmail', email);
      id = undefined;
    }
    this.idsByEmail.set(email, id);
    return id;
  }

  private async call<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw slackFailure(error, what, `channel ${this.channel}`);
    }
  }
}

function matchesMetadata(message: ChannelMessage, match: (metadata: ApprovalMetadata) => boolean): boolean {
  if (message.metadata?.event_type !== APPROVAL_EVENT_TYPE) return false;
  const parsed = ApprovalMetadata.safeParse(message.metadata.event_payload);
  return parsed.success && match(parsed.data);
}

/** The round of a key `<experiment>/<gate>/<round>/…`, for messages from workflow code older than `round`. */
function roundFromKey(key: string): number {
  const round = Number(key.split('/')[2]);
  return Number.isInteger(round) ? round : 0;
}

/**
 * The worker's notifier when the settings have a `slack` section.
 *
 * @param token the bot token, from SLACK_BOT_TOKEN (`slackBotTokenFromEnv`)
 */
export function createSlackNotifier(settings: SlackSettings, token: string): SlackNotifier {
  return new SlackNotifier({ client: createSlackWebClient({ token, apiUrl: settings.api_url }), settings });
}
