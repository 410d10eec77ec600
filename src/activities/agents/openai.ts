import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import type { ChatCompletion, ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { z } from 'zod';
import { FailureType } from '../../experiment';
import type {
  AgentCall,
  AgentCostEstimate,
  AgentProvider,
  AgentRequest,
  AgentResponse,
  AgentUsage,
} from './provider';
import { AgentError } from './provider';

// Agents on any OpenAI-compatible Chat Completions API (OpenAI, Azure OpenAI's v1 API, vLLM, llama.cpp,
// Ollama), with structured outputs: the answer's zod schema goes out as a strict JSON Schema response format
// (the SDK's zod helper, which supports zod 4) and the answer is parsed with the same schema here. The
// client never retries (`maxRetries: 0`): Temporal retries the activity, honouring Retry-After.

/** What a model costs, in US dollars per million tokens. */
export interface ModelPrice {
  /** Per million prompt (input) tokens. */
  inputPerMillion: number;
  /** Per million completion (output) tokens. */
  outputPerMillion: number;
}

/** Options of {@link OpenAIAgentProvider}. */
export interface OpenAIAgentOptions {
  /**
   * Base URL of the API, e.g. `https://api.openai.com/v1`, `https://<resource>.openai.azure.com/openai/v1`,
   * `http://127.0.0.1:8000/v1` (vLLM), `http://127.0.0.1:11434/v1` (Ollama). Default: `OPENAI_BASE_URL`, else
   * OpenAI's.
   */
  baseURL?: string;
  /** The API key; callers read it from `OPENAI_API_KEY` (it never goes into settings or workflow inputs). */
  apiKey: string;
  /** The model, e.g. `gpt-4o-mini`. */
  model: string;
  /** Longest wait for one HTTP response, in milliseconds; a request's own `timeoutMs` can shorten it. */
  timeoutMs: number;
  /** Most tokens one answer may have. */
  maxOutputTokens: number;
  /**
   * The request field that carries `maxOutputTokens`: `max_completion_tokens` (OpenAI, Azure, vLLM) or
   * `max_tokens` (older compatible servers). Default `max_completion_tokens`.
   */
  outputLimitField?: 'max_completion_tokens' | 'max_tokens';
  /** The model's price, for the cost of each call. */
  price: ModelPrice;
}

/**
 * Tokens of a text, estimated at 4 characters per token (the usual figure for English and JSON with
 * OpenAI's tokenizers). Used for the budget check before a call, and when a server reports no usage.
 */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** US dollars of some tokens at a price. */
export function costUsd(usage: AgentUsage, price: ModelPrice): number {
  return (usage.promptTokens * price.inputPerMillion + usage.completionTokens * price.outputPerMillion) / 1e6;
}

/**
 * The longest problem text sent back with a schema retry, in characters: it bounds what the retry sends,
 * so that the cost estimate of a call is an upper bound of what it spends.
 */
const MAX_PROBLEM_CHARS = 2_000;

/** The correction that follows an answer which did not fit the schema, its problem cut to a bounded length. */
function schemaRetryMessage(problem: string): string {
  const shown = problem.length > MAX_PROBLEM_CHARS ? `${problem.slice(0, MAX_PROBLEM_CHARS - 1)}…` : problem;
  return `Your answer cannot be used: ${shown}\nAnswer again with one JSON object that fits the response schema.`;
}

/** Tokens the correction of a schema retry sends at most, besides the first request and its answer. */
const SCHEMA_RETRY_TOKENS = estimateTokens(schemaRetryMessage('x'.repeat(MAX_PROBLEM_CHARS))) + 16;

/** The name of an agent's answer schema on the wire (`^[a-zA-Z0-9_-]{1,64}$`). */
function schemaName(agent: string): string {
  return `${agent.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 50)}_answer`;
}

/** The messages of a call: instructions, facts, and for a revision the previous answer and its problems. */
export function agentMessages(request: AgentRequest<z.ZodType>): ChatCompletionMessageParam[] {
  const messages: ChatCompletionMessageParam[] = [
    { role: 'system', content: request.instructions },
    { role: 'user', content: `Facts (JSON):\n${JSON.stringify(request.facts)}` },
  ];
  if (request.revision)
    messages.push(
      { role: 'assistant', content: JSON.stringify(request.revision.previous) },
      {
        role: 'user',
        content: `Your answer has these problems:\n${request.revision.problems.map((problem) => `- ${problem}`).join('\n')}\nFix them and answer with the whole JSON object again.`,
      },
    );
  return messages;
}

/** Milliseconds to wait before retrying, from `retry-after-ms` or `retry-after` (seconds or an HTTP date). */
function retryAfterMs(headers: Headers | undefined): number | undefined {
  const milliseconds = Number.parseFloat(headers?.get('retry-after-ms') ?? '');
  if (Number.isFinite(milliseconds) && milliseconds >= 0) return milliseconds;
  const value = headers?.get('retry-after');
  if (!value) return undefined;
  const seconds = Number.parseFloat(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

type ParsedAnswer<Output> = { ok: true; output: Output } | { ok: false; problem: string };

function parseAnswer<Schema extends z.ZodType>(
  content: string | null | undefined,
  schema: Schema,
  finishReason: string,
): ParsedAnswer<z.infer<Schema>> {
  const truncated =
    finishReason === 'length' ? ' The answer was cut off at the output token limit: be more concise.' : '';
  if (!content) return { ok: false, problem: `the answer was empty.${truncated}` };
  let json: unknown;
  try {
    json = JSON.parse(content);
  } catch (error) {
    return { ok: false, problem: `the answer is not valid JSON (${(error as Error).message}).${truncated}` };
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return { ok: true, output: parsed.data };
  return { ok: false, problem: `the answer does not fit the schema:\n${z.prettifyError(parsed.error)}` };
}

/** The provider for OpenAI-compatible APIs; see {@link OpenAIAgentOptions}. */
export class OpenAIAgentProvider implements AgentProvider {
  readonly #client: OpenAI;
  readonly #options: OpenAIAgentOptions;

  constructor(options: OpenAIAgentOptions) {
    this.#options = options;
    this.#client = new OpenAI({
      apiKey: options.apiKey,
      baseURL: options.baseURL,
      maxRetries: 0,
      timeout: options.timeoutMs,
    });
  }

  /** Where requests go, for messages. */
  get baseURL(): string {
    return this.#client.baseURL;
  }

  estimate(request: AgentRequest<z.ZodType>): AgentCostEstimate {
    const format = zodResponseFormat(request.schema, schemaName(request.agent));
    const sent = JSON.stringify(agentMessages(request)) + JSON.stringify(format.json_schema);
    const promptTokens = estimateTokens(sent);
    const maxCompletionTokens = this.#options.maxOutputTokens;
    const price = this.#options.price;
    // The answer, and the schema retry a call makes when the answer does not fit: the same messages, the
    // answer (at most the output limit) and the correction in, another answer out.
    const answer = costUsd({ promptTokens, completionTokens: maxCompletionTokens }, price);
    const schemaRetry = costUsd(
      {
        promptTokens: promptTokens + maxCompletionTokens + SCHEMA_RETRY_TOKENS,
        completionTokens: maxCompletionTokens,
      },
      price,
    );
    return { promptTokens, maxCompletionTokens, usd: answer + schemaRetry };
  }

  async call<Schema extends z.ZodType>(
    request: AgentRequest<Schema>,
  ): Promise<AgentResponse<z.infer<Schema>>> {
    const startedAt = Date.now();
    const messages = agentMessages(request);
    const format = zodResponseFormat(request.schema, schemaName(request.agent));
    const calls: AgentCall[] = [];
    let problem = '';
    for (const purpose of ['answer', 'schema_retry'] as const) {
      const completion = await this.#complete(messages, format, request, startedAt, calls);
      const choice = completion.choices[0];
      const usage: AgentUsage = {
        promptTokens: completion.usage?.prompt_tokens ?? estimateTokens(JSON.stringify(messages)),
        completionTokens:
          completion.usage?.completion_tokens ?? estimateTokens(choice?.message.content ?? ''),
      };
      calls.push({
        purpose,
        model: completion.model || this.#options.model,
        usage,
        costUsd: costUsd(usage, this.#options.price),
      });
      if (!choice)
        throw new AgentError(
          FailureType.AgentOutputInvalid,
          `${this.#where(request)} answered without a choice`,
          { calls },
        );
      if (choice.message.refusal || choice.finish_reason === 'content_filter')
        throw new AgentError(
          FailureType.AgentRefused,
          // The model's own sentence ends where ours goes on: one full stop, not two.
          `${this.#where(request)} refused to answer: ${(choice.message.refusal ?? 'its content filter stopped the answer').replace(/[\s.]+$/, '')}. ` +
            'Rephrasing will not help on a retry; check the facts for content the model refuses, or choose another model for this agent.',
          { calls },
        );
      const parsed = parseAnswer(choice.message.content, request.schema, choice.finish_reason);
      if (parsed.ok) return this.#response(parsed.output, calls, request);
      problem = parsed.problem;
      // One correction, in the same conversation, with the validation error.
      messages.push(
        { role: 'assistant', content: choice.message.content ?? '' },
        { role: 'user', content: schemaRetryMessage(problem) },
      );
    }
    throw new AgentError(
      FailureType.AgentOutputInvalid,
      `${this.#where(request)} answered twice with output that does not fit the "${request.agent}" schema; last problem: ${problem}`,
      { calls },
    );
  }

  #where(request: AgentRequest<z.ZodType>): string {
    return `the "${request.agent}" agent (model ${this.#options.model} at ${this.#client.baseURL})`;
  }

  #response<Output>(
    output: Output,
    calls: AgentCall[],
    request: AgentRequest<z.ZodType>,
  ): AgentResponse<Output> {
    return {
      output,
      usage: {
        promptTokens: calls.reduce((sum, call) => sum + call.usage.promptTokens, 0),
        completionTokens: calls.reduce((sum, call) => sum + call.usage.completionTokens, 0),
      },
      costUsd: calls.reduce((sum, call) => sum + call.costUsd, 0),
      calls,
      model: calls.at(-1)?.model ?? this.#options.model,
      promptVersion: request.promptVersion,
    };
  }

  async #complete(
    messages: ChatCompletionMessageParam[],
    format: ReturnType<typeof zodResponseFormat>,
    request: AgentRequest<z.ZodType>,
    startedAt: number,
    calls: AgentCall[],
  ): Promise<ChatCompletion> {
    const left = (request.timeoutMs ?? Number.POSITIVE_INFINITY) - (Date.now() - startedAt);
    const timeout = Math.min(this.#options.timeoutMs, left);
    if (timeout <= 0)
      throw new AgentError(
        FailureType.AgentUnavailable,
        `${this.#where(request)} ran out of time before it could ask again`,
        { calls },
      );
    const limit = {
      [this.#options.outputLimitField ?? 'max_completion_tokens']: this.#options.maxOutputTokens,
    };
    const sentAt = Date.now();
    try {
      return await this.#client.chat.completions.create(
        { model: this.#options.model, messages: [...messages], response_format: format, ...limit },
        { timeout },
      );
    } catch (error) {
      // The SDK names a timeout only when the abort error is an `Error` of this realm; under a test runner's
      // VM context it reports a plain connection error at the timeout instead. Both are the timeout.
      const timedOut = error instanceof APIConnectionError && Date.now() - sentAt >= timeout - 5;
      throw this.#agentError(error, request, timeout, calls, timedOut);
    }
  }

  /** Sorts an SDK error into retryable (`AgentUnavailable`) and the non-retryable `Agent*` types. */
  #agentError(
    error: unknown,
    request: AgentRequest<z.ZodType>,
    timeoutMs: number,
    calls: AgentCall[],
    timedOut: boolean,
  ): unknown {
    const where = this.#where(request);
    if (timedOut || error instanceof APIConnectionTimeoutError || error instanceof APIUserAbortError)
      return new AgentError(
        FailureType.AgentUnavailable,
        timeoutMs < this.#options.timeoutMs
          ? `${where} did not answer within ${timeoutMs} ms, what was left of the agent activity's time`
          : `${where} did not answer within ${timeoutMs} ms; raise agents.timeout_seconds if the model is slow`,
        { calls },
      );
    if (error instanceof APIConnectionError)
      return new AgentError(
        FailureType.AgentUnavailable,
        `${where} cannot be reached: ${error.message}${error.cause ? ` (${(error.cause as Error).message})` : ''}`,
        { calls },
      );
    if (!(error instanceof APIError)) return error;
    const apiError = error as APIError<number | undefined, Headers | undefined>;
    const status = apiError.status;
    if (status === undefined) return error;
    const said = `HTTP ${status}${apiError.requestID ? `, request ${apiError.requestID}` : ''}: ${apiError.message}`;
    if (status === 429 && apiError.code === 'insufficient_quota')
      return new AgentError(
        FailureType.AgentAuthFailed,
        `${where} refused the request: the account has no quota left (${said}); add credit or use another key`,
        { calls },
      );
    if (status === 401 || status === 403)
      return new AgentError(
        FailureType.AgentAuthFailed,
        `${where} refused the credentials (${said}); set a valid OPENAI_API_KEY in the agents worker's environment`,
        { calls },
      );
    if (status === 408 || status === 409 || status === 429 || status >= 500)
      return new AgentError(FailureType.AgentUnavailable, `${where} is unavailable (${said})`, {
        calls,
        retryAfterMs: retryAfterMs(apiError.headers),
      });
    return new AgentError(
      FailureType.AgentBadRequest,
      `${where} rejected the request (${said}); check the model name, agents.base_url and whether the server supports structured outputs (response_format json_schema)`,
      { calls },
    );
  }
}
