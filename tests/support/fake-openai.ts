/**
 * A fake OpenAI on 127.0.0.1 speaking the Chat Completions wire format the `openai` SDK calls: `POST
 * /v1/chat/completions` with Bearer auth, answered with a `chat.completion` object (choices with `content`
 * or `refusal`, `finish_reason`, `usage`), or an error body `{ error: { message, type, code } }` with its
 * status and headers (429 with Retry-After, 5xx, 401, 400). Replies are scripted per test; without a
 * script the fake answers each agent the way the offline writers would, from the facts in the request, so
 * outputs have a realistic size and pass the checks.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import { z } from 'zod';
import { OfflineAgentProvider } from '../../src/activities/agents/offline';

/** A request the fake received. */
export interface FakeChatRequest {
  /** The parsed JSON body (model, messages, response_format, max_completion_tokens…). */
  body: {
    model: string;
    messages: { role: string; content: string }[];
    response_format?: { type: string; json_schema?: { name: string; strict?: boolean; schema: unknown } };
    max_completion_tokens?: number;
    max_tokens?: number;
  };
  headers: IncomingMessage['headers'];
  /** The agent, from the response format's name (`<agent>_answer`). */
  agent: string;
  /** The facts, parsed from the user message. */
  facts: unknown;
  /** Characters of the request body, for token counts. */
  size: number;
}

/** What the fake answers one request with. */
export type FakeReply =
  /** The JSON of an output, as the answer's content. */
  | { output: unknown; finishReason?: string }
  /** Content as it is (malformed JSON, text). */
  | { content: string; finishReason?: string }
  /** A refusal (`message.refusal`, no content). */
  | { refusal: string }
  /** An HTTP error with an OpenAI error body. */
  | { status: number; message?: string; code?: string; headers?: Record<string, string> }
  /** Another reply, sent after a delay (a slow model). */
  | { delayMs: number; then: FakeReply }
  /** The offline writers' answer to the request's facts. */
  | { offline: true; edit?: (output: Record<string, unknown>) => unknown };

export interface FakeOpenAIOptions {
  /** The key clients must send. Default `sk-test`. */
  apiKey?: string;
  /** The model the answers name. Default: the requested one. */
  model?: string;
}

/** Tokens of some text, at 4 characters per token (as the provider estimates). */
export function fakeTokens(characters: number): number {
  return Math.ceil(characters / 4);
}

export class FakeOpenAI {
  readonly requests: FakeChatRequest[] = [];
  /** Replies for the next requests, in order; when empty, `fallback` answers. */
  readonly script: FakeReply[] = [];
  /** How requests are answered when the script is empty. Default: the offline writers' answer. */
  fallback: (request: FakeChatRequest) => FakeReply = () => ({ offline: true });
  /** Requests whose client went away before the answer (a timeout on its side). */
  aborted = 0;
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #offline = new OfflineAgentProvider();

  private constructor(
    private readonly server: Server,
    readonly baseURL: string,
    readonly apiKey: string,
    private readonly model: string | undefined,
  ) {
    server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  static async start(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
    const started: { fake?: FakeOpenAI } = {};
    const server = createServer((request, response) => {
      started.fake?.handle(request, response).catch((error: unknown) => {
        response.writeHead(500, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: { message: String(error), type: 'server_error' } }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    started.fake = new FakeOpenAI(
      server,
      `http://127.0.0.1:${port}/v1`,
      options.apiKey ?? 'sk-test',
      options.model,
    );
    return started.fake;
  }

  /** Adds replies for the next requests. */
  reply(...replies: FakeReply[]): this {
    this.script.push(...replies);
    return this;
  }

  /** Requests of one agent. */
  requestsOf(agent: string): FakeChatRequest[] {
    return this.requests.filter((request) => request.agent === agent);
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (request.method !== 'POST' || request.url !== '/v1/chat/completions')
      return this.error(response, {
        status: 404,
        message: `unknown endpoint ${request.method} ${request.url}`,
      });
    if (request.headers.authorization !== `Bearer ${this.apiKey}`)
      return this.error(response, {
        status: 401,
        message: 'Incorrect API key provided.',
        code: 'invalid_api_key',
      });
    const body = JSON.parse(text) as FakeChatRequest['body'];
    const user = body.messages.find((message) => message.role === 'user')?.content ?? '';
    const factsText = user.replace(/^Facts \(JSON\):\n/, '');
    let facts: unknown;
    try {
      facts = JSON.parse(factsText);
    } catch {
      facts = undefined;
    }
    const recorded: FakeChatRequest = {
      body,
      headers: request.headers,
      agent: (body.response_format?.json_schema?.name ?? '').replace(/_answer$/, ''),
      facts,
      size: text.length,
    };
    this.requests.push(recorded);
    const reply = this.script.shift() ?? this.fallback(recorded);
    await this.send(response, recorded, reply);
  }

  private async send(response: ServerResponse, request: FakeChatRequest, reply: FakeReply): Promise<void> {
    if ('delayMs' in reply) {
      const gone = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          resolve(false);
        }, reply.delayMs);
        this.#timers.add(timer);
        response.on('close', () => {
          if (!response.writableFinished) {
            clearTimeout(timer);
            this.#timers.delete(timer);
            resolve(true);
          }
        });
      });
      if (gone) {
        this.aborted += 1;
        return;
      }
      return this.send(response, request, reply.then);
    }
    if ('status' in reply) return this.error(response, reply);
    if ('refusal' in reply)
      return this.completion(response, request, { content: null, refusal: reply.refusal });
    if ('offline' in reply) {
      const answer = await this.#offline.call({
        agent: request.agent,
        instructions: '',
        facts: request.facts,
        schema: z.record(z.string(), z.unknown()),
        promptVersion: 'fake',
      });
      const output = reply.edit ? reply.edit(structuredClone(answer.output)) : answer.output;
      return this.completion(response, request, { content: JSON.stringify(output) });
    }
    const content = 'output' in reply ? JSON.stringify(reply.output) : reply.content;
    return this.completion(response, request, { content, finishReason: reply.finishReason });
  }

  private completion(
    response: ServerResponse,
    request: FakeChatRequest,
    answer: { content: string | null; refusal?: string; finishReason?: string },
  ): void {
    const promptTokens = fakeTokens(request.size);
    const completionTokens = fakeTokens((answer.content ?? answer.refusal ?? '').length);
    response.writeHead(200, {
      'content-type': 'application/json',
      'x-request-id': `req_${this.requests.length}`,
    });
    response.end(
      JSON.stringify({
        id: `chatcmpl-fake-${this.requests.length}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: this.model ?? request.body.model,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: answer.content, refusal: answer.refusal ?? null },
            logprobs: null,
            finish_reason: answer.refusal ? 'stop' : (answer.finishReason ?? 'stop'),
          },
        ],
        usage: {
          prompt_tokens: promptTokens,
          completion_tokens: completionTokens,
          total_tokens: promptTokens + completionTokens,
        },
        system_fingerprint: 'fp_fake',
      }),
    );
  }

  private error(
    response: ServerResponse,
    reply: { status: number; message?: string; code?: string; headers?: Record<string, string> },
  ): void {
    const type =
      reply.status === 429
        ? 'rate_limit_exceeded'
        : reply.status >= 500
          ? 'server_error'
          : 'invalid_request_error';
    response.writeHead(reply.status, {
      'content-type': 'application/json',
      'x-request-id': `req_err_${this.requests.length}`,
      ...reply.headers,
    });
    response.end(
      JSON.stringify({
        error: {
          message: reply.message ?? `fake error ${reply.status}`,
          type,
          param: null,
          code: reply.code ?? null,
        },
      }),
    );
  }
}
