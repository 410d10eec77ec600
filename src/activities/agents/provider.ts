import type { z } from 'zod';
import type { FailureType } from '../../experiment';

/**
 * The AgentProvider seam: one structured call to an analysis or writing agent. The caller gives the numbers
 * (computed in code) and the schema of the answer; the provider returns the answer parsed by that schema,
 * with what it cost. Implementations: `offline.ts` (no model, the default) and `openai.ts` (any
 * OpenAI-compatible Chat Completions API).
 */

/** One call to an agent. */
export interface AgentRequest<Schema extends z.ZodType> {
  /** Which agent, e.g. `performance`, `report`; names the answer's schema (and selects the offline writer). */
  agent: string;
  /** What the agent must do, in words (the prompt's instructions). */
  instructions: string;
  /** The numbers it works from, computed in code; plain JSON. Every number it writes must come from here. */
  facts: unknown;
  /** The shape of its answer; the answer is parsed with it before it is returned. */
  schema: Schema;
  /** Version of the prompt files used, recorded with the output. */
  promptVersion: string;
  /**
   * A previous answer sent back with what is wrong with it (numbers no fact backs, content that does not
   * validate): the provider asks for the whole answer again, revised.
   */
  revision?: { previous: unknown; problems: readonly string[] };
  /**
   * At most this long for the whole call, schema retry included, in milliseconds; the provider's own
   * timeout applies when it is shorter. Activities pass what is left of their start-to-close timeout.
   */
  timeoutMs?: number;
}

/** Tokens one call used. */
export interface AgentUsage {
  /** Tokens sent (instructions and facts). */
  promptTokens: number;
  /** Tokens generated. */
  completionTokens: number;
}

/**
 * One HTTP request to a model: `answer` (the first), or `schema_retry` (the answer did not fit the schema and
 * was sent back once with the validation error).
 */
export interface AgentCall {
  purpose: 'answer' | 'schema_retry';
  /** The model that answered. */
  model: string;
  usage: AgentUsage;
  /** US dollars, from the price table. */
  costUsd: number;
}

/** The answer of one call. */
export interface AgentResponse<Output> {
  /** The answer, parsed by the request's schema. */
  output: Output;
  /** Tokens used over every request of the call; zero offline. */
  usage: AgentUsage;
  /** What the call cost in US dollars, from the price table; `0` offline. */
  costUsd: number;
  /** Each request the call made (one, or two with a schema retry); empty offline. */
  calls: AgentCall[];
  /** The model that answered, e.g. `gpt-4o-mini`; `offline` for the offline provider. */
  model: string;
  /** The request's prompt version, echoed so the output records it. */
  promptVersion: string;
}

/** What a call may cost at most, before it is made: for the LLM budget. */
export interface AgentCostEstimate {
  /** Tokens the first request will send (estimated from its characters when no tokenizer is at hand). */
  promptTokens: number;
  /** The most tokens the model may generate per request (its output limit). */
  maxCompletionTokens: number;
  /**
   * US dollars the whole call may cost at the model's price: every request it may make, the schema retry
   * included, so that a call started within the budget cannot end past it.
   */
  usd: number;
}

/** A backend that answers agent calls. Providers do not retry transport errors: Temporal owns retries. */
export interface AgentProvider {
  /** Makes one call. Rejects with an {@link AgentError} whose `failureType` says whether a retry can help. */
  call<Schema extends z.ZodType>(request: AgentRequest<Schema>): Promise<AgentResponse<z.infer<Schema>>>;
  /** The most this call may cost, every request it may make included; `0` for providers without a price. */
  estimate(request: AgentRequest<z.ZodType>): AgentCostEstimate;
}

/**
 * A failed agent call. `failureType` is one of the `Agent*` types of {@link FailureType}; the activity turns
 * it into an `ApplicationFailure` of that type (retryable only for `AgentUnavailable`, after
 * `retryAfterMs` when the server said how long to wait). `calls` are the requests it made and paid for.
 */
export class AgentError extends Error {
  override readonly name = 'AgentError';

  constructor(
    readonly failureType: FailureType,
    message: string,
    readonly details: { retryAfterMs?: number; calls?: AgentCall[] } = {},
  ) {
    super(message);
  }
}
