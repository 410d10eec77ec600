import type { z } from 'zod';
import type { FailureType } from '../../experiment';

/**
 * The AgentProvider seam: one structured call to an analysis or writing agent. The caller gives the numbers
 * (computed in code) and the schema of the answer; the provider returns the answer parsed by that schema,
 * with what it cost. Implementations: `offline.ts` (no model, the default) and, with issue 6, an
 * OpenAI-compatible one.
 */

/** One call to an agent. */
export interface AgentRequest<Schema extends z.ZodType> {
  /** Which agent, e.g. `performance`, `report`; selects the prompt (or the offline writer). */
  agent: string;
  /** What the agent must do, in words (the prompt's instructions). */
  instructions: string;
  /** The numbers it works from, computed in code; plain JSON. Every number it writes must come from here. */
  facts: unknown;
  /** The shape of its answer; the answer is parsed with it before it is returned. */
  schema: Schema;
  /** Version of the prompt files used, recorded with the output. */
  promptVersion: string;
}

/** Tokens one call used. */
export interface AgentUsage {
  /** Tokens sent (instructions and facts). */
  promptTokens: number;
  /** Tokens generated. */
  completionTokens: number;
}

/** The answer of one call. */
export interface AgentResponse<Output> {
  /** The answer, parsed by the request's schema. */
  output: Output;
  /** Tokens used; zero offline. */
  usage: AgentUsage;
  /** What the call cost in US dollars, from the price table; `0` offline. */
  costUsd: number;
  /** The model that answered, e.g. `gpt-4o-mini`; `offline` for the offline provider. */
  model: string;
  /** The request's prompt version, echoed so the output records it. */
  promptVersion: string;
}

/** A backend that answers agent calls. Providers do not retry: Temporal owns retries. */
export interface AgentProvider {
  /** Makes one call. Rejects with an {@link AgentError} whose `failureType` says whether a retry can help. */
  call<Schema extends z.ZodType>(request: AgentRequest<Schema>): Promise<AgentResponse<z.infer<Schema>>>;
}

/**
 * A failed agent call. `failureType` is one of the `Agent*` types of {@link FailureType}; the activity turns
 * it into an `ApplicationFailure` of that type (retryable only for `AgentUnavailable`).
 */
export class AgentError extends Error {
  override readonly name = 'AgentError';

  constructor(
    readonly failureType: FailureType,
    message: string,
  ) {
    super(message);
  }
}
