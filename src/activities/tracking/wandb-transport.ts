/**
 * HTTP to W&B on undici: GraphQL calls (`POST {base}/graphql`, HTTP Basic `api:<key>`) and downloads (files,
 * artifact manifests), over one connection pool per origin, with a timeout on every request. It never
 * retries: it sorts what went wrong into the tracker errors, and Temporal retries what is retryable.
 */
import { Agent, errors as undiciErrors, request, type Dispatcher } from 'undici';
import type { z } from 'zod';
import type { WandbOperation } from './wandb-queries';
import { describeIssues, GraphQLEnvelope, parseWandbJson } from './wandb-schemas';
import {
  TrackerAuthError,
  TrackerMalformedResponseError,
  TrackerRequestError,
  TrackerUnavailableError,
} from './tracker-errors';

/** Options of {@link WandbTransport}. */
export interface WandbTransportOptions {
  /** API base URL, e.g. `https://api.wandb.ai`; no trailing slash needed. */
  baseUrl: string;
  /** The W&B API key; sent as HTTP Basic `api:<key>` to the base URL's origin only. */
  apiKey: string;
  /** Per-request timeout (waiting for headers, and between body chunks), in milliseconds. */
  timeoutMs: number;
  /** Connections kept per origin. */
  connections: number;
}

/** What a download saw: bytes streamed through `onChunk`. */
export interface DownloadResult {
  bytes: number;
}

/** Statuses that mean a download target is missing or not readable with these credentials. */
const MISSING_STATUSES = new Set([401, 403, 404, 410]);
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

/** The part of a URL that is safe to show: signed URLs carry their signature in the query string. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return url.replace(/[?#].*$/, '');
  }
}

/** Milliseconds a `Retry-After` header asks for (seconds or an HTTP date); undefined when absent or unreadable. */
export function retryAfterMs(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return undefined;
  const seconds = Number(value.trim());
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Messages of a GraphQL error body, if the body is one. */
function errorMessages(text: string): string | undefined {
  try {
    const parsed = GraphQLEnvelope.safeParse(parseWandbJson(text));
    const messages = parsed.success ? parsed.data.errors?.map((e) => e.message) : undefined;
    return messages?.length ? messages.join('; ') : undefined;
  } catch {
    return undefined;
  }
}

/** A short excerpt of a body for an error message. */
function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 197)}…` : flat || '(empty body)';
}

/** One W&B base URL's HTTP client: GraphQL and downloads over one pool per origin. See the file comment. */
export class WandbTransport {
  readonly baseUrl: string;
  private readonly graphqlUrl: string;
  private readonly origin: string;
  private readonly authorization: string;
  private readonly timeoutMs: number;
  private readonly agent: Agent;

  constructor(options: WandbTransportOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.graphqlUrl = `${this.baseUrl}/graphql`;
    this.origin = new URL(this.baseUrl).origin;
    this.authorization = `Basic ${Buffer.from(`api:${options.apiKey}`).toString('base64')}`;
    this.timeoutMs = options.timeoutMs;
    this.agent = new Agent({
      connections: options.connections,
      keepAliveTimeout: 30_000,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connectTimeout: options.timeoutMs,
    });
  }

  /**
   * Sends one GraphQL operation and returns its `data`, parsed with `schema`.
   * @throws TrackerAuthError on 401; TrackerUnavailableError on 429, 5xx, timeouts and network errors;
   *   TrackerRequestError on other 4xx and on GraphQL `errors`; TrackerMalformedResponseError when the
   *   answer does not parse
   */
  async graphql<T>(
    operation: WandbOperation,
    variables: Record<string, unknown> | undefined,
    schema: z.ZodType<T>,
  ): Promise<T> {
    const what = `W&B ${operation.name} at ${this.graphqlUrl}`;
    const response = await this.send(what, this.graphqlUrl, {
      method: 'POST',
      headers: {
        authorization: this.authorization,
        'content-type': 'application/json',
        accept: 'application/json',
        'user-agent': 'Labline (W&B public API client)',
      },
      body: JSON.stringify({
        query: operation.query,
        ...(variables ? { variables } : {}),
        operationName: operation.name,
      }),
    });
    const text = await this.readText(what, response.body);
    const { statusCode } = response;
    if (statusCode === 401) {
      throw new TrackerAuthError(
        `W&B refused the API key (HTTP 401 from ${this.graphqlUrl}: ${errorMessages(text) ?? excerpt(text)}). ` +
          'Set WANDB_API_KEY in the environment of the Labline worker (or CLI) to a valid key ' +
          `(find yours at ${this.authorizeUrl()}).`,
        { status: statusCode },
      );
    }
    if (statusCode === 429 || statusCode >= 500) {
      const wait = retryAfterMs(response.headers['retry-after']);
      throw new TrackerUnavailableError(
        `${what} answered HTTP ${statusCode}${statusCode === 429 ? ' (rate limited)' : ''}` +
          `${wait !== undefined ? `; it asks to retry after ${Math.ceil(wait / 1000)} s` : ''}: ` +
          `${errorMessages(text) ?? excerpt(text)}`,
        { status: statusCode, ...(wait !== undefined ? { retryAfterMs: wait } : {}) },
      );
    }
    if (statusCode !== 200) {
      const hint =
        statusCode === 403
          ? ' The key is valid but may not read this entity or project; check tracker.entity and tracker.project.'
          : statusCode === 404
            ? ` Is the W&B base URL right (settings wandb.base_url or WANDB_BASE_URL)? It is ${this.baseUrl}.`
            : '';
      throw new TrackerRequestError(
        `${what} answered HTTP ${statusCode}: ${errorMessages(text) ?? excerpt(text)}.${hint}`,
        { status: statusCode },
      );
    }
    let json: unknown;
    try {
      json = parseWandbJson(text);
    } catch (error) {
      throw new TrackerMalformedResponseError(
        `${what} answered with a body that is not JSON: ${excerpt(text)}`,
        {
          cause: error,
          status: statusCode,
        },
      );
    }
    const envelope = GraphQLEnvelope.safeParse(json);
    if (!envelope.success) {
      throw new TrackerMalformedResponseError(
        `${what} answered with something that is not a GraphQL response: ${describeIssues(envelope.error)}`,
        { status: statusCode },
      );
    }
    const errors = envelope.data.errors ?? [];
    if (errors.length > 0) {
      const messages = errors.map((e) => (e.path?.length ? `${e.path.join('.')}: ${e.message}` : e.message));
      throw new TrackerRequestError(`${what} answered with errors: ${messages.join('; ')}`, {
        status: statusCode,
      });
    }
    const data = schema.safeParse(envelope.data.data);
    if (!data.success) {
      throw new TrackerMalformedResponseError(
        `${what} answered with data Labline does not understand (${describeIssues(data.error)}); ` +
          'is this a W&B server that speaks the public GraphQL API?',
        { status: statusCode },
      );
    }
    return data.data;
  }

  /**
   * Downloads `url`, handing each chunk to `onChunk`, following up to 5 redirects. The API key is sent only
   * to the W&B base URL's origin (files served by W&B), never to storage hosts (signed URLs).
   * @returns the bytes read, or `{ missing }` with the status when the target is not there (401/403/404/410)
   * @throws TrackerUnavailableError on 429, 5xx, timeouts and network errors; TrackerRequestError otherwise
   */
  async download(
    url: string,
    onChunk: (chunk: Buffer) => void,
  ): Promise<DownloadResult | { missing: string; status: number }> {
    let current = url;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop += 1) {
      const target = new URL(current, this.baseUrl);
      const what = `download of ${redactUrl(target.href)}`;
      const response = await this.send(what, target.href, {
        method: 'GET',
        headers: target.origin === this.origin ? { authorization: this.authorization } : {},
      });
      const { statusCode, headers, body } = response;
      const location = headers.location;
      if (REDIRECT_STATUSES.has(statusCode) && typeof location === 'string') {
        await body.dump();
        current = new URL(location, target).href;
        continue;
      }
      if (statusCode >= 200 && statusCode < 300) {
        let bytes = 0;
        try {
          for await (const chunk of body) {
            const buffer = chunk as Buffer;
            bytes += buffer.length;
            onChunk(buffer);
          }
        } catch (error) {
          throw this.transportError(what, error);
        }
        return { bytes };
      }
      const text = await this.readText(what, body);
      if (MISSING_STATUSES.has(statusCode)) {
        return {
          missing: `HTTP ${statusCode} from ${redactUrl(target.href)}: ${excerpt(text)}`,
          status: statusCode,
        };
      }
      if (statusCode === 429 || statusCode >= 500) {
        const wait = retryAfterMs(headers['retry-after']);
        throw new TrackerUnavailableError(`${what} answered HTTP ${statusCode}: ${excerpt(text)}`, {
          status: statusCode,
          ...(wait !== undefined ? { retryAfterMs: wait } : {}),
        });
      }
      throw new TrackerRequestError(`${what} answered HTTP ${statusCode}: ${excerpt(text)}`, {
        status: statusCode,
      });
    }
    throw new TrackerRequestError(
      `download of ${redactUrl(url)} redirected more than ${MAX_REDIRECTS} times`,
    );
  }

  /** Closes every pooled connection. */
  async close(): Promise<void> {
    await this.agent.close();
  }

  private authorizeUrl(): string {
    return this.origin === 'https://api.wandb.ai' ? 'https://wandb.ai/authorize' : `${this.origin}/authorize`;
  }

  private async send(
    what: string,
    url: string,
    options: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string },
  ): Promise<Dispatcher.ResponseData> {
    try {
      return await request(url, {
        dispatcher: this.agent,
        method: options.method,
        headers: options.headers,
        ...(options.body !== undefined ? { body: options.body } : {}),
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
    } catch (error) {
      throw this.transportError(what, error);
    }
  }

  private async readText(what: string, body: Dispatcher.ResponseData['body']): Promise<string> {
    try {
      return await body.text();
    } catch (error) {
      throw this.transportError(what, error);
    }
  }

  /** Network trouble and timeouts: retryable. */
  private transportError(what: string, error: unknown): TrackerUnavailableError {
    const timedOut =
      error instanceof undiciErrors.HeadersTimeoutError ||
      error instanceof undiciErrors.BodyTimeoutError ||
      error instanceof undiciErrors.ConnectTimeoutError;
    const reason = timedOut
      ? `no answer within ${this.timeoutMs} ms (settings wandb.timeout_ms)`
      : error instanceof Error
        ? `${(error as { code?: string }).code ? `${(error as { code?: string }).code}: ` : ''}${error.message}`
        : String(error);
    return new TrackerUnavailableError(`${what} failed: ${reason}`, { cause: error });
  }
}
