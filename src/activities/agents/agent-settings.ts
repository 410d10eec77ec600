/**
 * The `agents` section of the Labline settings, and the provider a worker builds from it. The API key is
 * never a setting: it comes from `OPENAI_API_KEY`.
 */
import { z } from 'zod';
import { AGENT_CALLS_PER_STEP, AGENT_START_TO_CLOSE_SECONDS, AgentName } from '../../experiment';
import { OfflineAgentProvider } from './offline';
import type * as OpenAIModule from './openai';
import type { ModelPrice } from './openai';
import type { AgentCostEstimate, AgentProvider, AgentRequest, AgentResponse } from './provider';

/**
 * The agents that settings configure: the analysis and writing agents, and `proposer`, which proposes the
 * edits of search campaigns.
 */
export const AgentNames = z.enum([...AgentName.options, 'proposer']);
/** An agent that settings configure. */
export type ConfiguredAgent = z.infer<typeof AgentNames>;

/** Longest `timeout_seconds`: every call of one agent step must fit in the agents activity's start-to-close. */
export const MAX_AGENT_TIMEOUT_SECONDS = Math.floor(
  (AGENT_START_TO_CLOSE_SECONDS - 30) / AGENT_CALLS_PER_STEP,
);

/**
 * Prices used when the settings give none, in US dollars per million tokens (OpenAI's list prices when this
 * was written; set `agents.prices` to yours).
 */
export const DEFAULT_PRICES: Readonly<Record<string, { input: number; output: number }>> = {
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'gpt-4o': { input: 2.5, output: 10 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6 },
  'gpt-4.1-nano': { input: 0.1, output: 0.4 },
};

/** What answers the agents: the offline rules (no model) or an OpenAI-compatible API. */
export const AgentProviderKind = z.enum(['offline', 'openai']);

const modelOptions = {
  /** `offline` or `openai`. */
  provider: AgentProviderKind,
  /**
   * Base URL of an OpenAI-compatible API: OpenAI (`https://api.openai.com/v1`), Azure OpenAI
   * (`https://<resource>.openai.azure.com/openai/v1`), vLLM, llama.cpp or Ollama (`http://host:port/v1`).
   */
  base_url: z.url(),
  /** The model, e.g. `gpt-4o-mini`; it needs a price in `prices`. */
  model: z.string().trim().min(1),
  /** Longest wait for one answer, in seconds. */
  timeout_seconds: z
    .number()
    .positive()
    .max(
      MAX_AGENT_TIMEOUT_SECONDS,
      `must be at most ${MAX_AGENT_TIMEOUT_SECONDS}: the ${AGENT_CALLS_PER_STEP} calls an agent may make (answer, schema retry, revision and its retry) must fit in the agents activity's ${AGENT_START_TO_CLOSE_SECONDS} s start-to-close timeout`,
    ),
  /** Most tokens one answer may have. */
  max_output_tokens: z.number().int().positive(),
  /** The request field that carries it: `max_completion_tokens` (OpenAI, Azure, vLLM) or `max_tokens`. */
  output_limit_field: z.enum(['max_completion_tokens', 'max_tokens']),
};

/** Overrides for one agent; each absent field takes the section's value. */
const AgentOverride = z.strictObject({
  provider: modelOptions.provider.optional(),
  base_url: modelOptions.base_url.optional(),
  model: modelOptions.model.optional(),
  timeout_seconds: modelOptions.timeout_seconds.optional(),
  max_output_tokens: modelOptions.max_output_tokens.optional(),
  output_limit_field: modelOptions.output_limit_field.optional(),
});

/** The `agents` section of the Labline settings. Every option has a default: the offline provider. */
export const AgentsSettings = z
  .strictObject({
    /** Who answers: `offline` (rules, no model, no cost) or `openai`. Default `offline`. */
    provider: modelOptions.provider.default('offline'),
    /** API base URL. Default: env `OPENAI_BASE_URL`, else OpenAI's. */
    base_url: modelOptions.base_url.optional(),
    /** The model of every agent without its own. Default `gpt-4o-mini`. */
    model: modelOptions.model.default('gpt-4o-mini'),
    /** Longest wait for one answer, in seconds. Default 120; at most {@link MAX_AGENT_TIMEOUT_SECONDS}. */
    timeout_seconds: modelOptions.timeout_seconds.default(120),
    /** Most tokens one answer may have. Default 4096. */
    max_output_tokens: modelOptions.max_output_tokens.default(4096),
    /** Field carrying the output limit. Default `max_completion_tokens`. */
    output_limit_field: modelOptions.output_limit_field.default('max_completion_tokens'),
    /** Per agent (`performance`, `baselines`, `ablations`, `report`, `blog`, `paper`, `proposer`): other settings. */
    per_agent: z.partialRecord(AgentNames, AgentOverride).default({}),
    /**
     * Price per model in US dollars per million tokens, `{ input, output }`; merged over
     * {@link DEFAULT_PRICES}. Every model an `openai` agent uses needs one (a local model: `{ input: 0, output: 0 }`).
     */
    prices: z
      .record(
        z.string().min(1),
        z.strictObject({ input: z.number().nonnegative(), output: z.number().nonnegative() }),
      )
      .default({}),
  })
  .superRefine((settings, ctx) => {
    for (const agent of AgentNames.options) {
      const resolved = agentSettingsOf(settings, agent);
      if (resolved.provider === 'openai' && !resolved.price)
        ctx.addIssue({
          code: 'custom',
          path: settings.per_agent[agent]?.model ? ['per_agent', agent, 'model'] : ['model'],
          message: `the model "${resolved.model}" of the ${agent} agent has no price; add it under agents.prices as { input: <USD per 1M tokens>, output: <USD per 1M tokens> }`,
        });
    }
  });
/** The `agents` section of the Labline settings, defaults filled in. */
export type AgentsSettings = z.infer<typeof AgentsSettings>;

/** One agent's effective settings. */
export interface ResolvedAgentSettings {
  provider: 'offline' | 'openai';
  baseURL?: string;
  model: string;
  timeoutMs: number;
  maxOutputTokens: number;
  outputLimitField: 'max_completion_tokens' | 'max_tokens';
  /** Its model's price; absent when neither the settings nor the defaults have one. */
  price?: ModelPrice;
}

/** An agent's settings: its `per_agent` entry over the section's. */
export function agentSettingsOf(settings: AgentsSettings, agent: ConfiguredAgent): ResolvedAgentSettings {
  const own = settings.per_agent[agent] ?? {};
  const model = own.model ?? settings.model;
  const price = settings.prices[model] ?? DEFAULT_PRICES[model];
  const baseURL = own.base_url ?? settings.base_url;
  return {
    provider: own.provider ?? settings.provider,
    ...(baseURL ? { baseURL } : {}),
    model,
    timeoutMs: (own.timeout_seconds ?? settings.timeout_seconds) * 1000,
    maxOutputTokens: own.max_output_tokens ?? settings.max_output_tokens,
    outputLimitField: own.output_limit_field ?? settings.output_limit_field,
    ...(price ? { price: { inputPerMillion: price.input, outputPerMillion: price.output } } : {}),
  };
}

/** A provider that hands each call to the provider of its agent. */
export class RoutedAgentProvider implements AgentProvider {
  constructor(
    private readonly routes: Readonly<Partial<Record<string, AgentProvider>>>,
    private readonly fallback: AgentProvider,
  ) {}

  #route(agent: string): AgentProvider {
    return this.routes[agent] ?? this.fallback;
  }

  call<Schema extends z.ZodType>(request: AgentRequest<Schema>): Promise<AgentResponse<z.infer<Schema>>> {
    return this.#route(request.agent).call(request);
  }

  estimate(request: AgentRequest<z.ZodType>): AgentCostEstimate {
    return this.#route(request.agent).estimate(request);
  }
}

/**
 * The provider of a worker that serves the agents task queue: per agent, the offline rules or an
 * OpenAI-compatible API with its model, price and timeout.
 *
 * @throws Error when an agent uses `openai` and `OPENAI_API_KEY` is not set, saying how to fix it
 */
export function agentProviderFromSettings(
  settings: AgentsSettings,
  env: NodeJS.ProcessEnv = process.env,
): AgentProvider {
  const offline = new OfflineAgentProvider();
  const routes: Partial<Record<string, AgentProvider>> = {};
  const shared = new Map<string, AgentProvider>();
  for (const agent of AgentNames.options) {
    const resolved = agentSettingsOf(settings, agent);
    if (resolved.provider === 'offline') continue;
    const apiKey = env.OPENAI_API_KEY;
    if (!apiKey)
      throw new Error(
        `the ${agent} agent uses the openai provider, but OPENAI_API_KEY is not set in this worker's environment. ` +
          'Export the key (for a local server that ignores keys, any value, e.g. OPENAI_API_KEY=unused), or set agents.provider: offline.',
      );
    if (!resolved.price) throw new Error(`the model "${resolved.model}" has no price in agents.prices`);
    const key = JSON.stringify(resolved);
    let provider = shared.get(key);
    if (!provider) {
      // Loaded here: the settings schema in this file is read by every CLI command; the OpenAI client only
      // by a worker whose agents use it.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { OpenAIAgentProvider } = require('./openai') as typeof OpenAIModule;
      provider = new OpenAIAgentProvider({
        apiKey,
        baseURL: resolved.baseURL,
        model: resolved.model,
        timeoutMs: resolved.timeoutMs,
        maxOutputTokens: resolved.maxOutputTokens,
        outputLimitField: resolved.outputLimitField,
        price: resolved.price,
      });
      shared.set(key, provider);
    }
    routes[agent] = provider;
  }
  return new RoutedAgentProvider(routes, offline);
}
