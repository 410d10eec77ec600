/**
 * The `labline github` webhook endpoint: GitHub's `issue_comment` deliveries, checked before anything is
 * read. A delivery must carry a valid `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the webhook
 * secret); a delivery id already taken (a replay, or GitHub's redelivery) changes nothing; edits and
 * deletions of comments, and comments by bots, are ignored.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SeenRequests } from '../slack/seen-requests';
import type { GithubComment, GithubDecisions } from './decisions';

/** Deliveries are at most this large; GitHub caps payloads at 25 MB, comments are far smaller. */
const MAX_BODY_BYTES = 1024 * 1024;

export interface GithubWebhookOptions {
  decisions: GithubDecisions;
  secret: string;
  seen: SeenRequests;
  port: number;
  host: string;
  path: string;
  log?: (line: string) => void;
}

export interface GithubWebhook {
  url: string;
  stop(): Promise<void>;
}

export async function startGithubWebhook(options: GithubWebhookOptions): Promise<GithubWebhook> {
  const log = options.log ?? ((line: string) => console.log(line));
  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      log(`[labline github] delivery failed: ${error instanceof Error ? error.message : String(error)}`);
      if (!response.headersSent)
        answer(response, 500, 'Labline could not take the delivery; GitHub may redeliver it.');
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (request.method !== 'POST' || new URL(request.url ?? '/', 'http://x').pathname !== options.path)
      return answer(response, 404, `POST deliveries to ${options.path}.`);
    const body = await readBody(request);
    if (body === undefined) return answer(response, 413, 'Delivery too large.');
    const signature = header(request, 'x-hub-signature-256');
    if (!signature || !signatureMatches(options.secret, body, signature))
      return answer(response, 401, 'The X-Hub-Signature-256 does not match: check GITHUB_WEBHOOK_SECRET.');
    const event = header(request, 'x-github-event');
    if (event === 'ping') return answer(response, 200, 'pong');
    if (event !== 'issue_comment') return answer(response, 202, `Ignored: a ${event ?? 'nameless'} event.`);
    const delivery = header(request, 'x-github-delivery');
    if (!delivery) return answer(response, 400, 'The delivery has no X-GitHub-Delivery id.');
    let payload: IssueCommentPayload;
    try {
      payload = JSON.parse(body) as IssueCommentPayload;
    } catch {
      return answer(response, 400, 'The delivery is not JSON.');
    }
    if (payload.action !== 'created')
      return answer(response, 202, `Ignored: a comment ${payload.action ?? 'changed'}.`);
    const key = `delivery:${delivery}`;
    if (!options.seen.claim(key))
      return answer(response, 200, `Ignored: delivery ${delivery} was taken already.`);
    let result;
    try {
      result = await options.decisions.handle(commentOf(payload));
    } catch (error) {
      // Not taken after all (Temporal or GitHub unreachable): GitHub's redelivery of it must be taken.
      options.seen.release(key);
      throw error;
    }
    log(
      `[labline github] delivery ${delivery}: ${result.kind}${'reason' in result ? ` (${result.reason})` : ''}`,
    );
    return answer(response, 200, result.kind);
  }

  await new Promise<void>((resolve) => server.listen(options.port, options.host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host}:${port}${options.path}`,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The parts of an `issue_comment` payload Labline reads. */
interface IssueCommentPayload {
  action?: string;
  issue: { number: number; body: string | null };
  comment: { id: number; body: string; user: { login: string; type: string } };
}

function commentOf(payload: IssueCommentPayload): GithubComment {
  return {
    id: payload.comment.id,
    body: payload.comment.body,
    login: payload.comment.user.login,
    userType: payload.comment.user.type,
    issue: { number: payload.issue.number, body: payload.issue.body },
  };
}

/**
 * GitHub's `X-Hub-Signature-256`: `sha256=` and the hex HMAC-SHA256 of the raw body, compared in constant
 * time. (Octokit's webhooks-methods does the same but ships as an ES module only, which CommonJS cannot load.)
 */
export function signatureMatches(secret: string, body: string, signature: string): boolean {
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function readBody(request: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function answer(response: ServerResponse, status: number, text: string): void {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  response.end(text);
}
