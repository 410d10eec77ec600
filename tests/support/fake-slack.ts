/**
 * A fake Slack on 127.0.0.1, speaking the wire format in shared/specs/slack/: the Web API (`auth.test`,
 * `chat.postMessage`, `chat.update`, `conversations.history`, `conversations.replies`, `users.info`,
 * `users.lookupByEmail`) with form-encoded or JSON bodies and Bearer auth, `response_url` endpoints, and
 * injected failures (429 with Retry-After, 5xx, platform errors). It also plays Slack towards the app:
 * signed `block_actions` and slash-command requests, built from the messages the app posted.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parse as parseQuery } from 'node:querystring';

/** Slack's request signature: `v0=` + hex HMAC-SHA256 of `v0:<timestamp>:<raw body>`. */
export function slackSignature(signingSecret: string, timestamp: string | number, rawBody: string): string {
  return `v0=${createHmac('sha256', signingSecret).update(`v0:${timestamp}:${rawBody}`).digest('hex')}`;
}

export interface FakeSlackUser {
  id: string;
  name: string;
  email?: string;
}

export interface FakeMessage {
  channel: string;
  ts: string;
  text?: string;
  blocks?: Record<string, unknown>[];
  metadata?: { event_type: string; event_payload: Record<string, unknown> };
  thread_ts?: string;
  user: string;
  bot_id: string;
  /** Every version after an update, oldest first (the current content is in the fields above). */
  edits: { text?: string; blocks?: Record<string, unknown>[] }[];
}

export interface RecordedCall {
  method: string;
  status: number;
  headers: IncomingMessage['headers'];
  args: Record<string, unknown>;
  contentType: string | undefined;
}

export interface ResponseUrlPost {
  id: string;
  body: Record<string, unknown>;
  headers: IncomingMessage['headers'];
}

interface InjectedFailure {
  status: number;
  headers?: Record<string, string>;
  body: Record<string, unknown>;
}

export interface FakeSlackOptions {
  /** The bot token the app must send. Default `xoxb-fake`. */
  token?: string;
  /** Channels that exist. Default `['C0APPROVALS']`. */
  channels?: string[];
  /** Workspace users. Default: alice, bob, lead, mallory. */
  users?: FakeSlackUser[];
}

export const defaultUsers: FakeSlackUser[] = [
  { id: 'U0ALICE01', name: 'alice', email: 'alice@example.com' },
  { id: 'U0BOB0001', name: 'bob', email: 'bob@example.com' },
  { id: 'U0LEAD001', name: 'lead', email: 'lead@example.com' },
  { id: 'U0MALLORY', name: 'mallory', email: 'mallory@example.com' },
];

const BOT_USER = 'U0BOT0001';
const BOT_ID = 'B0BOT0001';

export class FakeSlack {
  readonly token: string;
  readonly messages: FakeMessage[] = [];
  readonly calls: RecordedCall[] = [];
  readonly responses: ResponseUrlPost[] = [];
  private readonly channels: Set<string>;
  private readonly users: FakeSlackUser[];
  private readonly failures = new Map<string, InjectedFailure[]>();
  private readonly waiters = new Set<() => void>();
  private server!: Server;
  private seq = 0;
  private responseSeq = 0;
  url = '';

  constructor(options: FakeSlackOptions = {}) {
    this.token = options.token ?? 'xoxb-fake';
    this.channels = new Set(options.channels ?? ['C0APPROVALS']);
    this.users = options.users ?? defaultUsers;
  }

  /** Base URL of the Web API, for `slack.api_url`. */
  get apiUrl(): string {
    return `${this.url}/api/`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        res.writeHead(500).end(String(error));
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The next `times` calls of `method` fail with this HTTP response (e.g. 429 + Retry-After). */
  failNext(method: string, failure: InjectedFailure, times = 1): void {
    const queue = this.failures.get(method) ?? [];
    for (let i = 0; i < times; i++) queue.push(failure);
    this.failures.set(method, queue);
  }

  /** Slack's rate limit: HTTP 429, `Retry-After: <seconds>`, body `{ok:false,error:"ratelimited"}`. */
  rateLimitNext(method: string, retryAfterSeconds: number, times = 1): void {
    this.failNext(
      method,
      {
        status: 429,
        headers: { 'Retry-After': String(retryAfterSeconds) },
        body: { ok: false, error: 'ratelimited' },
      },
      times,
    );
  }

  /** Calls of one Web API method that succeeded. */
  succeeded(method: string): RecordedCall[] {
    return this.calls.filter((c) => c.method === method && c.status === 200);
  }

  /** Top-level messages in posting order. */
  topLevel(): FakeMessage[] {
    return this.messages.filter((m) => m.thread_ts === undefined || m.thread_ts === m.ts);
  }

  /** Replies in a thread, oldest first. */
  replies(threadTs: string): FakeMessage[] {
    return this.messages.filter((m) => m.thread_ts === threadTs && m.ts !== threadTs);
  }

  /** The metadata payload of a message, or `{}`. */
  static payload(message: FakeMessage): Record<string, unknown> {
    return message.metadata?.event_payload ?? {};
  }

  /** Waits (bounded) until `predicate` holds, re-checking on every request the fake receives. */
  until<T>(predicate: () => T | undefined | null | false | 0, what: string, timeoutMs = 20_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const value = predicate();
        if (value) {
          cleanup();
          resolve(value);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(
            `fake Slack: timed out waiting for ${what}; calls: ${this.calls.map((c) => `${c.method}:${c.status}`).join(', ')}`,
          ),
        );
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  // ---- Slack → app ------------------------------------------------------------------------------

  /** The form body Slack posts when `user` clicks the button `actionId` of `message`. */
  blockActionsBody(message: FakeMessage, actionId: string, user: FakeSlackUser): string {
    const actions = (message.blocks ?? []).flatMap((block) =>
      block.type === 'actions'
        ? ((block.elements as Record<string, unknown>[]) ?? []).map((e): Record<string, unknown> => ({
            ...e,
            block_id: block.block_id,
          }))
        : [],
    );
    const button = actions.find((a) => a.action_id === actionId);
    if (!button) throw new Error(`message ${message.ts} has no button ${actionId}`);
    const payload = {
      type: 'block_actions',
      user: { id: user.id, username: user.name, name: user.name, team_id: 'T0ACME001' },
      api_app_id: 'A0APPROVAL',
      token: 'Vx1yZ2verificationTokenDeprecated',
      container: {
        type: 'message',
        message_ts: message.ts,
        channel_id: message.channel,
        is_ephemeral: false,
      },
      trigger_id: `8123456789012.1234567890123.${this.seq}`,
      team: { id: 'T0ACME001', domain: 'acme' },
      enterprise: null,
      is_enterprise_install: false,
      channel: { id: message.channel, name: 'ml-approvals' },
      message: {
        type: 'message',
        ts: message.ts,
        user: message.user,
        bot_id: message.bot_id,
        text: message.text,
        blocks: message.blocks,
      },
      state: { values: {} },
      response_url: this.newResponseUrl('actions'),
      actions: [{ ...button, action_ts: `${Math.floor(Date.now() / 1000)}.123456` }],
    };
    return `payload=${encodeURIComponent(JSON.stringify(payload))}`;
  }

  /** The form body of a slash command typed by `user`. */
  slashCommandBody(text: string, user: FakeSlackUser, command = '/labline'): string {
    return new URLSearchParams({
      token: 'Vx1yZ2verificationTokenDeprecated',
      team_id: 'T0ACME001',
      team_domain: 'acme',
      channel_id: 'C0APPROVALS',
      channel_name: 'ml-approvals',
      user_id: user.id,
      user_name: user.name,
      command,
      text,
      api_app_id: 'A0APPROVAL',
      is_enterprise_install: 'false',
      response_url: this.newResponseUrl('commands'),
      trigger_id: `8123456789014.1234567890123.${this.seq}`,
    }).toString();
  }

  /** The id of the `response_url` that a body built here carries (the last part of its path). */
  static responseId(body: string): string {
    const decoded = decodeURIComponent(body);
    const match = decoded.match(/\/response\/([a-z]+-\d+)/);
    if (!match) throw new Error('no response_url in body');
    return match[1]!;
  }

  /** What was posted to one `response_url`. */
  responsesTo(id: string): ResponseUrlPost[] {
    return this.responses.filter((r) => r.id === id);
  }

  private newResponseUrl(kind: 'actions' | 'commands'): string {
    return `${this.url}/response/${kind}-${++this.responseSeq}`;
  }

  // ---- Web API ------------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const path = new URL(req.url ?? '/', this.url).pathname;
    try {
      if (req.method === 'POST' && path.startsWith('/response/')) {
        this.responses.push({
          id: path.slice('/response/'.length),
          body: JSON.parse(raw || '{}'),
          headers: req.headers,
        });
        json(res, 200, { ok: true });
        return;
      }
      if (req.method !== 'POST' || !path.startsWith('/api/')) {
        json(res, 404, { ok: false, error: 'unknown_method' });
        return;
      }
      const method = path.slice('/api/'.length);
      const contentType = req.headers['content-type'];
      const args = parseArgs(raw, contentType);
      const injected = this.failures.get(method)?.shift();
      const answer = (
        status: number,
        body: Record<string, unknown>,
        headers: Record<string, string> = {},
      ) => {
        this.calls.push({ method, status, headers: req.headers, args, contentType });
        json(res, status, body, headers);
      };
      if (injected) return answer(injected.status, injected.body, injected.headers);
      const auth = req.headers.authorization;
      const token = auth?.startsWith('Bearer ')
        ? auth.slice('Bearer '.length)
        : (args.token as string | undefined);
      if (!token) return answer(200, { ok: false, error: 'not_authed' });
      if (token !== this.token) return answer(200, { ok: false, error: 'invalid_auth' });
      answer(200, this.call(method, args));
    } finally {
      for (const waiter of [...this.waiters]) waiter();
    }
  }

  private call(method: string, args: Record<string, unknown>): Record<string, unknown> {
    switch (method) {
      case 'auth.test':
        return {
          ok: true,
          url: 'https://acme.slack.com/',
          team: 'Acme',
          user: 'approvals_bot',
          team_id: 'T0ACME001',
          user_id: BOT_USER,
          bot_id: BOT_ID,
          is_enterprise_install: false,
        };
      case 'chat.postMessage': {
        const channel = str(args.channel);
        if (!this.channels.has(channel)) return { ok: false, error: 'channel_not_found' };
        if (!args.text && !args.blocks) return { ok: false, error: 'no_text' };
        const threadTs = args.thread_ts as string | undefined;
        if (threadTs && !this.messages.some((m) => m.channel === channel && m.ts === threadTs))
          return { ok: false, error: 'thread_not_found' };
        const message: FakeMessage = {
          channel,
          ts: this.nextTs(),
          text: args.text as string | undefined,
          blocks: args.blocks as Record<string, unknown>[] | undefined,
          metadata: args.metadata as FakeMessage['metadata'],
          ...(threadTs ? { thread_ts: threadTs } : {}),
          user: BOT_USER,
          bot_id: BOT_ID,
          edits: [],
        };
        this.messages.push(message);
        return { ok: true, channel, ts: message.ts, message: this.view(message, true) };
      }
      case 'chat.update': {
        const message = this.messages.find((m) => m.channel === args.channel && m.ts === args.ts);
        if (!message) return { ok: false, error: 'message_not_found' };
        message.edits.push({ text: message.text, blocks: message.blocks });
        if (args.text !== undefined) message.text = args.text as string;
        if (args.blocks !== undefined) message.blocks = args.blocks as Record<string, unknown>[];
        // Like Slack, an update without metadata keeps the message's metadata.
        if (args.metadata !== undefined) message.metadata = args.metadata as FakeMessage['metadata'];
        return {
          ok: true,
          channel: message.channel,
          ts: message.ts,
          text: message.text,
          message: this.view(message, false),
        };
      }
      case 'conversations.history': {
        const channel = str(args.channel);
        if (!this.channels.has(channel)) return { ok: false, error: 'channel_not_found' };
        const oldest = args.oldest === undefined ? -Infinity : Number(args.oldest);
        const all = this.messages
          .filter((m) => m.channel === channel && (m.thread_ts === undefined || m.thread_ts === m.ts))
          .filter((m) => Number(m.ts) > oldest)
          .reverse();
        return this.page(all, args, String(args.include_all_metadata) === 'true');
      }
      case 'conversations.replies': {
        const root = this.messages.find((m) => m.channel === args.channel && m.ts === args.ts);
        if (!root) return { ok: false, error: 'thread_not_found' };
        const thread = [root, ...this.replies(root.ts)];
        return this.page(thread, args, String(args.include_all_metadata) === 'true');
      }
      case 'users.info': {
        const user = this.users.find((u) => u.id === args.user);
        if (!user) return { ok: false, error: 'user_not_found' };
        return { ok: true, user: { id: user.id, name: user.name, profile: { email: user.email } } };
      }
      case 'users.lookupByEmail': {
        const user = this.users.find((u) => u.email === args.email);
        if (!user) return { ok: false, error: 'users_not_found' };
        return { ok: true, user: { id: user.id, name: user.name, profile: { email: user.email } } };
      }
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }

  private page(
    list: FakeMessage[],
    args: Record<string, unknown>,
    withMetadata: boolean,
  ): Record<string, unknown> {
    const limit = Math.min(Number(args.limit ?? 100) || 100, 1000);
    const start = args.cursor ? Number(Buffer.from(str(args.cursor), 'base64').toString()) : 0;
    const slice = list.slice(start, start + limit);
    const more = start + limit < list.length;
    return {
      ok: true,
      messages: slice.map((m) => this.view(m, withMetadata)),
      has_more: more,
      response_metadata: { next_cursor: more ? Buffer.from(String(start + limit)).toString('base64') : '' },
    };
  }

  /** A message as the Web API shows it; metadata only when asked for (`include_all_metadata`). */
  private view(message: FakeMessage, withMetadata: boolean): Record<string, unknown> {
    return {
      type: 'message',
      ts: message.ts,
      user: message.user,
      bot_id: message.bot_id,
      text: message.text,
      blocks: message.blocks,
      ...(message.thread_ts ? { thread_ts: message.thread_ts } : {}),
      ...(withMetadata && message.metadata ? { metadata: message.metadata } : {}),
      ...(message.edits.length ? { edited: { user: BOT_ID, ts: this.lastTs() } } : {}),
    };
  }

  private nextTs(): string {
    this.seq += 1;
    return `${Math.floor(Date.now() / 1000)}.${String(this.seq).padStart(6, '0')}`;
  }

  private lastTs(): string {
    return `${Math.floor(Date.now() / 1000)}.${String(this.seq).padStart(6, '0')}`;
  }
}

/** Starts a fake Slack on a free port. */
export async function startFakeSlack(options: FakeSlackOptions = {}): Promise<FakeSlack> {
  return new FakeSlack(options).start();
}

export interface SignedRequestOptions {
  signingSecret: string;
  /** Unix seconds; default now. */
  timestamp?: number;
  /** Default `application/x-www-form-urlencoded`, exactly as Slack sends it. */
  contentType?: string;
  /** Replaces the computed signature (for tampering tests). */
  signature?: string;
}

/** Posts `body` to the app as Slack does: signed, with the timestamp header. */
export async function sendSigned(
  url: string,
  body: string,
  options: SignedRequestOptions,
): Promise<{ status: number; body: string; contentType: string | null }> {
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'Content-Type': options.contentType ?? 'application/x-www-form-urlencoded',
      'X-Slack-Request-Timestamp': String(timestamp),
      'X-Slack-Signature': options.signature ?? slackSignature(options.signingSecret, timestamp, body),
      'User-Agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
    },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  return {
    status: response.status,
    body: await response.text(),
    contentType: response.headers.get('content-type'),
  };
}

/** A form or JSON argument as a string ('' when absent or not a scalar). */
function str(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' ? String(value) : '';
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Web API arguments: form fields (non-scalars arrive JSON-encoded in one field) or a JSON body. */
function parseArgs(raw: string, contentType: string | undefined): Record<string, unknown> {
  if (contentType?.startsWith('application/json'))
    return (JSON.parse(raw || '{}') as Record<string, unknown>) ?? {};
  const form = parseQuery(raw);
  const args: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(form)) {
    const text = Array.isArray(value) ? value[0] : value;
    if (text === undefined) continue;
    args[key] = ['blocks', 'metadata', 'attachments'].includes(key) ? JSON.parse(text) : text;
  }
  return args;
}

function json(
  res: ServerResponse,
  status: number,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}
