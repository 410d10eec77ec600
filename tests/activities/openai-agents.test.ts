import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { HistoryRow } from '../../src/experiment';
import { AgentsSettings, agentProviderFromSettings } from '../../src/activities/agents/agent-settings';
import {
  ablationProblems,
  baselineProblems,
  createAgentActivities,
  MAX_ABLATION_PROPOSALS,
  performanceProblems,
} from '../../src/activities/agents/activities';
import { OpenAIAgentProvider, type OpenAIAgentOptions } from '../../src/activities/agents/openai';
import { AgentError } from '../../src/activities/agents/provider';
import { agentPrompt } from '../../src/activities/agents/prompts';
import { PerformanceAnalysis } from '../../src/activities/agents/schemas';
import { writePerformanceAnalysis } from '../../src/activities/agents/offline-performance';
import {
  compareWithBaseline,
  computeAnalysis,
  ComparisonVerdict,
  ExperimentSpec,
  FailureType,
  HypothesisVerdict,
  hypothesisVerdict,
  UNVERIFIED_MARK,
  type BaselineFacts,
  type ValidationReport,
} from '../../src/experiment';
import { trainerSpec } from '../support/experiments';
import { FakeOpenAI } from '../support/fake-openai';

/** gpt-4o-mini's price: $0.15 per million prompt tokens, $0.60 per million completion tokens. */
const PRICE = { inputPerMillion: 0.15, outputPerMillion: 0.6 };

let fake: FakeOpenAI;
beforeEach(async () => {
  fake = await FakeOpenAI.start();
});
afterEach(async () => fake.close());

function provider(overrides: Partial<OpenAIAgentOptions> = {}): OpenAIAgentProvider {
  return new OpenAIAgentProvider({
    baseURL: fake.baseURL,
    apiKey: fake.apiKey,
    model: 'gpt-4o-mini',
    timeoutMs: 5_000,
    maxOutputTokens: 2_000,
    price: PRICE,
    ...overrides,
  });
}

/** Loss falling, eval loss turning up after step 1500: one overfitting anomaly. */
function overfittingRun(): HistoryRow[] {
  return Array.from({ length: 300 }, (_, step) => ({
    _step: step * 10,
    'train/loss': 2 / (1 + step / 20),
    'eval/loss': step < 150 ? 2.1 / (1 + step / 20) : 0.2 + (step - 150) * 0.002,
  }));
}

const analysis = computeAnalysis(overfittingRun());
const facts = { analysis };
const offlineAnswer = writePerformanceAnalysis(facts);
const budget = { limit_usd: 1, spent_usd: 0, approved_over: false };

function request() {
  const prompt = agentPrompt('performance');
  return {
    agent: 'performance',
    instructions: prompt.text,
    facts,
    schema: PerformanceAnalysis,
    promptVersion: prompt.version,
  };
}

async function rejection(promise: Promise<unknown>): Promise<AgentError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(AgentError);
  return error as AgentError;
}

describe('OpenAIAgentProvider against the Chat Completions wire format', () => {
  test('valid structured output: parsed by the schema, with the usage the server reported and its cost', async () => {
    fake.reply({ output: offlineAnswer });
    const response = await provider().call(request());
    expect(response.output).toEqual(offlineAnswer);
    const [sent] = fake.requests;
    expect(sent!.body.model).toBe('gpt-4o-mini');
    expect(sent!.body.max_completion_tokens).toBe(2_000);
    expect(sent!.body.response_format).toMatchObject({
      type: 'json_schema',
      json_schema: { name: 'performance_answer', strict: true, schema: { type: 'object' } },
    });
    expect(sent!.body.messages.map((message) => message.role)).toEqual(['system', 'user']);
    expect(sent!.body.messages[0]!.content).toContain('Every number you write must appear in the facts');
    expect(sent!.facts).toEqual(facts);
    expect(sent!.headers.authorization).toBe(`Bearer ${fake.apiKey}`);
    expect(response.calls).toHaveLength(1);
    const { promptTokens, completionTokens } = response.usage;
    expect(promptTokens).toBeGreaterThan(100);
    expect(completionTokens).toBeGreaterThan(50);
    expect(response.costUsd).toBeCloseTo((promptTokens * 0.15 + completionTokens * 0.6) / 1e6, 12);
    expect(response.promptVersion).toBe('performance.v2+rules.v1');
  });

  test('malformed JSON is sent back once with the parse error, and the corrected answer is used', async () => {
    fake.reply({ content: '{"summary": "cut off' }, { output: offlineAnswer });
    const response = await provider().call(request());
    expect(response.output).toEqual(offlineAnswer);
    expect(response.calls.map((call) => call.purpose)).toEqual(['answer', 'schema_retry']);
    const retry = fake.requests[1]!.body.messages;
    expect(retry.map((message) => message.role)).toEqual(['system', 'user', 'assistant', 'user']);
    expect(retry[2]!.content).toBe('{"summary": "cut off');
    expect(retry[3]!.content).toMatch(/not valid JSON/);
  });

  test('output that fails its schema twice is a non-retryable AgentOutputInvalid that names the problem', async () => {
    fake.reply({ output: { summary: 'fine' } }, { output: { summary: 'fine', findings: 'none' } });
    const error = await rejection(provider().call(request()));
    expect(error.failureType).toBe(FailureType.AgentOutputInvalid);
    expect(error.message).toMatch(/findings/);
    expect(error.details.calls).toHaveLength(2);
    expect(fake.requests[1]!.body.messages[3]!.content).toMatch(/does not fit the schema[\s\S]*findings/);
  });

  test('a refusal is a non-retryable AgentRefused with the model’s words', async () => {
    fake.reply({ refusal: "I can't help with that." });
    const error = await rejection(provider().call(request()));
    expect(error.failureType).toBe(FailureType.AgentRefused);
    expect(error.message).toContain("I can't help with that.");
    expect(fake.requests).toHaveLength(1);
  });

  test('429 is a retryable AgentUnavailable carrying Retry-After; the next call succeeds', async () => {
    fake.reply({ status: 429, message: 'Rate limit reached', headers: { 'retry-after': '7' } });
    fake.reply({ output: offlineAnswer });
    const error = await rejection(provider().call(request()));
    expect(error.failureType).toBe(FailureType.AgentUnavailable);
    expect(error.details.retryAfterMs).toBe(7_000);
    expect(error.message).toMatch(/HTTP 429/);
    // maxRetries 0: the SDK did not retry by itself; Temporal retries the activity.
    expect(fake.requests).toHaveLength(1);
    const response = await provider().call(request());
    expect(response.output).toEqual(offlineAnswer);
  });

  test('5xx is retryable; 401 and 400 are non-retryable with the fix in the message', async () => {
    fake.reply({ status: 503, message: 'overloaded' });
    expect((await rejection(provider().call(request()))).failureType).toBe(FailureType.AgentUnavailable);
    const unauthorized = await rejection(provider({ apiKey: 'sk-wrong' }).call(request()));
    expect(unauthorized.failureType).toBe(FailureType.AgentAuthFailed);
    expect(unauthorized.message).toMatch(/OPENAI_API_KEY/);
    fake.reply({ status: 400, message: "Invalid schema for response_format 'performance_answer'" });
    const bad = await rejection(provider().call(request()));
    expect(bad.failureType).toBe(FailureType.AgentBadRequest);
    expect(bad.message).toMatch(/Invalid schema[\s\S]*structured outputs/);
    fake.reply({ status: 429, message: 'You exceeded your current quota', code: 'insufficient_quota' });
    expect((await rejection(provider().call(request()))).failureType).toBe(FailureType.AgentAuthFailed);
  });

  test('a response slower than the timeout is abandoned: retryable AgentUnavailable, the request aborted', async () => {
    fake.reply({ delayMs: 30_000, then: { output: offlineAnswer } });
    const started = Date.now();
    const error = await rejection(provider({ timeoutMs: 300 }).call(request()));
    expect(error.failureType).toBe(FailureType.AgentUnavailable);
    expect(error.message).toMatch(/did not answer within 300 ms/);
    expect(Date.now() - started).toBeLessThan(10_000);
    for (let i = 0; i < 100 && fake.aborted === 0; i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fake.aborted).toBe(1);
  });

  test("the request's own time limit shortens the provider's timeout", async () => {
    fake.reply({ delayMs: 30_000, then: { output: offlineAnswer } });
    const error = await rejection(provider({ timeoutMs: 60_000 }).call({ ...request(), timeoutMs: 250 }));
    expect(error.message).toMatch(/within 2\d\d ms, what was left of the agent activity's time/);
  });

  test('estimate: the answer and the schema retry it may need, each up to the output limit, at the model price', () => {
    const estimate = provider().estimate(request());
    expect(estimate.maxCompletionTokens).toBe(2_000);
    expect(estimate.promptTokens).toBeGreaterThan(JSON.stringify(facts).length / 4);
    const answer = (estimate.promptTokens * 0.15 + 2_000 * 0.6) / 1e6;
    // The retry sends the prompt, the answer and a bounded correction again, and may get as long an answer.
    const retryAtLeast = ((estimate.promptTokens + 2_000) * 0.15 + 2_000 * 0.6) / 1e6;
    expect(estimate.usd).toBeGreaterThan(answer + retryAtLeast);
    expect(estimate.usd).toBeLessThan(answer + retryAtLeast + (1_000 * 0.15) / 1e6);
  });
});

describe('agent activities on the OpenAI provider', () => {
  const activities = () => createAgentActivities({ provider: provider() });

  test('a number not in the data is caught, sent back once with the list, and marked when it stays', async () => {
    const madeUp = (output: Record<string, unknown>) => ({
      ...output,
      summary: `${output.summary as string} Accuracy reached 0.777 on the test set.`,
    });
    fake.reply({ offline: true, edit: madeUp }, { offline: true, edit: madeUp });
    const step = await activities().analyzePerformance({ experimentId: 'exp-x', budget, analysis });
    expect(step.status).toBe('completed');
    if (step.status !== 'completed') return;
    const revision = fake.requests[1]!.body.messages;
    expect(revision.map((message) => message.role)).toEqual(['system', 'user', 'assistant', 'user']);
    expect(revision[3]!.content).toMatch(/not in the facts .*: 0\.777\./);
    expect(step.output.summary).toContain(`0.777 ${UNVERIFIED_MARK}`);
    expect(step.record.unverified_numbers).toEqual(['0.777']);
    expect(step.record.calls!.map((call) => call.purpose)).toEqual(['answer', 'revision']);
    expect(step.record.verified_numbers!.length).toBeGreaterThan(3);
    expect(step.record.note).toMatch(/marked \[unverified\]/);
  });

  test('a number not in the data that the revision removes leaves no mark', async () => {
    fake.reply(
      {
        offline: true,
        edit: (output) => ({ ...output, summary: `${output.summary as string} It reached 0.777.` }),
      },
      { offline: true },
    );
    const step = await activities().analyzePerformance({ experimentId: 'exp-x', budget, analysis });
    if (step.status !== 'completed') throw new Error('expected a completed step');
    expect(step.output).toEqual(offlineAnswer);
    expect(step.record.unverified_numbers).toEqual([]);
    expect(step.record.cost_usd).toBeGreaterThan(0);
  });

  test('a finding the analysis does not support is sent back; if it stays, the step fails for a person', async () => {
    const invented = (output: Record<string, unknown>) => ({
      ...output,
      findings: [
        ...(output.findings as unknown[]),
        {
          kind: 'divergence',
          metric: 'train/loss',
          severity: 'critical',
          observation: 'It diverged.',
          likely_causes: [],
          recommendations: [],
        },
      ],
    });
    fake.reply({ offline: true, edit: invented }, { offline: true, edit: invented });
    // The answer schema names the anomalies found, so the answer does not parse: one correction, then a person.
    const failure = await activities()
      .analyzePerformance({ experimentId: 'exp-x', budget, analysis })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(failure).toBeInstanceOf(ApplicationFailure);
    const app = failure as ApplicationFailure;
    expect(app.type).toBe(FailureType.AgentOutputInvalid);
    expect(app.nonRetryable).toBe(true);
    expect(app.message).toMatch(/does not fit the "performance" schema[\s\S]*findings\[\d+\]/);
    expect((app.details?.[0] as { calls: unknown[] }).calls).toHaveLength(2);
    expect(fake.requests[1]!.body.messages[3]!.content).toMatch(/cannot be used: the answer does not fit/);
    // A server without strict structured outputs let it through; the checks in code say the same in words.
    expect(performanceProblems(PerformanceAnalysis.parse(invented(offlineAnswer)), analysis)).toEqual([
      expect.stringMatching(/detected no divergence in train\/loss/),
    ]);
  });

  test('429: the activity fails retryable with nextRetryDelay from Retry-After', async () => {
    fake.reply({ status: 429, headers: { 'retry-after-ms': '1500' } });
    const failure = (await activities()
      .analyzePerformance({ experimentId: 'exp-x', budget, analysis })
      .catch((error: unknown) => error)) as ApplicationFailure;
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure.type).toBe(FailureType.AgentUnavailable);
    expect(failure.nonRetryable).toBe(false);
    expect(failure.nextRetryDelay).toBe(1500);
  });

  test('a call that could exceed the budget is not made: the step answers over_budget', async () => {
    const step = await activities().analyzePerformance({
      experimentId: 'exp-x',
      budget: { limit_usd: 0.001, spent_usd: 0, approved_over: false },
      analysis,
    });
    expect(step).toMatchObject({ status: 'over_budget', agent: 'performance', calls: [] });
    if (step.status === 'over_budget') expect(step.estimate_usd).toBeGreaterThan(0.001);
    expect(fake.requests).toHaveLength(0);
    const approved = await activities().analyzePerformance({
      experimentId: 'exp-x',
      budget: { limit_usd: 0.001, spent_usd: 0, approved_over: true },
      analysis,
    });
    expect(approved.status).toBe('completed');
  });

  test('offline: the budget gate refused more spending, so the rules write without a request', async () => {
    const step = await activities().analyzePerformance({
      experimentId: 'exp-x',
      budget,
      analysis,
      offline: true,
    });
    if (step.status !== 'completed') throw new Error('expected a completed step');
    expect(step.record).toMatchObject({ model: 'offline', cost_usd: 0 });
    expect(step.record.note).toMatch(/offline rules/);
    expect(fake.requests).toHaveLength(0);
  });
});

describe('agents settings', () => {
  test('defaults to the offline provider, which needs no key', async () => {
    const settings = AgentsSettings.parse({});
    expect(settings.provider).toBe('offline');
    const routed = agentProviderFromSettings(settings, {});
    const response = await routed.call(request());
    expect(response.model).toBe('offline');
  });

  test('openai without OPENAI_API_KEY fails at start with the fix', () => {
    const settings = AgentsSettings.parse({ provider: 'openai' });
    expect(() => agentProviderFromSettings(settings, {})).toThrow(/OPENAI_API_KEY is not set[\s\S]*export/i);
  });

  test('a model without a price, or a timeout that does not fit the activity, is a settings error', () => {
    const noPrice = AgentsSettings.safeParse({
      provider: 'openai',
      per_agent: { paper: { model: 'my-llama' } },
    });
    expect(noPrice.success).toBe(false);
    expect(noPrice.error?.issues[0]).toMatchObject({ path: ['per_agent', 'paper', 'model'] });
    expect(noPrice.error?.issues[0]?.message).toMatch(/my-llama.*agents\.prices/);
    expect(
      AgentsSettings.safeParse({
        provider: 'openai',
        per_agent: { paper: { model: 'my-llama' } },
        prices: { 'my-llama': { input: 0, output: 0 } },
      }).success,
    ).toBe(true);
    const slow = AgentsSettings.safeParse({ timeout_seconds: 900 });
    expect(slow.error?.issues[0]?.message).toMatch(/start-to-close/);
  });

  test('per agent: base URL and model route each agent to its own server', async () => {
    const other = await FakeOpenAI.start({ apiKey: 'sk-test' });
    try {
      const routed = agentProviderFromSettings(
        AgentsSettings.parse({
          provider: 'openai',
          base_url: fake.baseURL,
          per_agent: { paper: { base_url: other.baseURL, model: 'gpt-4o' } },
        }),
        { OPENAI_API_KEY: 'sk-test' },
      );
      fake.reply({ output: offlineAnswer });
      other.reply({ output: offlineAnswer });
      await routed.call(request());
      await routed.call({ ...request(), agent: 'paper' });
      expect(fake.requests.map((r) => r.body.model)).toEqual(['gpt-4o-mini']);
      expect(other.requests.map((r) => r.body.model)).toEqual(['gpt-4o']);
    } finally {
      await other.close();
    }
  });
});

/**
 * The JSON Schema a request carried, read back by an independent converter (zod's fromJSONSchema), so that a
 * test asks what a server enforcing it (OpenAI's strict structured outputs) could let through.
 */
function wireSchema(index = 0): z.ZodType {
  const format = fake.requests[index]?.body.response_format;
  expect(format).toMatchObject({ type: 'json_schema', json_schema: { strict: true } });
  return z.fromJSONSchema(format!.json_schema!.schema as Parameters<typeof z.fromJSONSchema>[0]);
}

describe('answer schemas: every closed set goes on the wire as an enum built from the facts', () => {
  const activities = () => createAgentActivities({ provider: provider() });

  test('performance: a strict server can write exactly the (kind, metric) findings the analysis supports', async () => {
    await activities().analyzePerformance({ experimentId: 'exp-x', budget, analysis });
    const wire = wireSchema();
    const answer = (kind: string, metric: string) => ({
      summary: 'Training went well.',
      findings: [
        { kind, metric, severity: 'info', observation: 'Seen.', likely_causes: [], recommendations: [] },
      ],
      recommendations: [],
    });
    // The quickstart's failure: a metric name the run does not have.
    expect(wire.safeParse(answer('result', 'loss')).success).toBe(false);
    expect(wire.safeParse(offlineAnswer).success).toBe(true);
    const kinds = ['result', 'divergence', 'plateau', 'instability', 'overfitting', 'generalization_gap'];
    const metrics = [...Object.keys(analysis.metrics), 'loss', 'val_loss'];
    let accepted = 0;
    for (const kind of kinds)
      for (const metric of metrics) {
        const candidate = answer(kind, metric);
        const valid = performanceProblems(PerformanceAnalysis.parse(candidate), analysis).length === 0;
        expect({ kind, metric, onTheWire: wire.safeParse(candidate).success }).toEqual({
          kind,
          metric,
          onTheWire: valid,
        });
        if (valid) accepted += 1;
      }
    // Both metrics' results; the plateau, the overfitting and the generalization gap of eval/loss.
    expect(accepted).toBe(5);
  });

  test('baselines: a reading names a baseline of the facts, with the verdict computed for it', async () => {
    const facts: BaselineFacts = {
      comparisons: [
        compareWithBaseline({
          baseline: 'logistic regression',
          metric: 'eval/accuracy',
          goal: 'max',
          experiment: { values: [0.93, 0.94], sources: ['this run', 'exp-seed-1'], missing: [] },
          baselineSample: { values: [0.8, 0.82, 0.81], sources: ['spec', 'spec', 'spec'], missing: [] },
        }),
      ],
    };
    const spec = ExperimentSpec.parse(trainerSpec('exp-baselines'));
    await activities().compareBaselines({ experimentId: spec.experiment_id, budget, spec, baselines: facts });
    const wire = wireSchema();
    for (const baseline of ['logistic regression', 'random forest'])
      for (const verdict of ComparisonVerdict.options) {
        const candidate = {
          summary: 'Better.',
          comparisons: [{ baseline, verdict, interpretation: 'It is better.' }],
          caveats: [],
        };
        const valid = baselineProblems(candidate, facts).length === 0;
        expect({ baseline, verdict, onTheWire: wire.safeParse(candidate).success }).toEqual({
          baseline,
          verdict,
          onTheWire: valid,
        });
      }
  });

  test('ablations: a modification names a parameter of the config and starts from its value', async () => {
    const spec = ExperimentSpec.parse(trainerSpec('exp-ablations'));
    await activities().designAblations({
      experimentId: spec.experiment_id,
      budget,
      spec,
      analysis,
      validation: null,
      performance: null,
    });
    const wire = wireSchema();
    const changes: [string, number | string, number | string][] = [
      ['learning_rate', 0.5, 0.25],
      ['learning_rate', 0.1, 0.25],
      ['learning_rate', 0.5, 'fast'],
      ['steps', 60, 120],
      ['lr', 0.5, 0.25],
    ];
    for (const [parameter, from, to] of changes) {
      const candidate = {
        summary: 'One follow-up.',
        proposals: [
          {
            name: 'follow-up',
            modifications: [{ parameter, from, to }],
            rationale: 'To see.',
            expected_effect: 'Something.',
          },
        ],
      };
      const valid = ablationProblems(candidate, spec, MAX_ABLATION_PROPOSALS).length === 0;
      expect({ parameter, from, to, onTheWire: wire.safeParse(candidate).success }).toEqual({
        parameter,
        from,
        to,
        onTheWire: valid,
      });
    }
  });

  test('report: the verdict on the wire is the one the deliverables decided', async () => {
    const validation: ValidationReport = {
      passed: true,
      results: [
        {
          name: 'accuracy',
          type: 'threshold',
          required: true,
          passed: true,
          expected: 'eval/accuracy >= 0.9',
          found: '0.93',
          message: 'met',
        },
      ],
    };
    const spec = ExperimentSpec.parse(trainerSpec('exp-report'));
    await activities().writeReportNarrative({
      experimentId: spec.experiment_id,
      budget,
      spec,
      analysis,
      validation,
      performance: null,
      baselines: null,
      ablations: null,
    });
    const wire = wireSchema();
    const decided = hypothesisVerdict(validation);
    for (const verdict of HypothesisVerdict.options)
      expect(
        wire.safeParse({
          summary: 'Done.',
          hypothesis_outcome: { verdict, explanation: 'Because.' },
          results: 'Results.',
          analysis: 'Analysis.',
        }).success,
      ).toBe(verdict === decided);
  });
});

describe('the LLM budget covers every paid request of a call', () => {
  test('a call is not started when the budget covers its answer but not the schema retry it may need', async () => {
    const one = provider().estimate(request());
    // What one request may cost: the facts and instructions in, the output limit out.
    const oneRequest = (one.promptTokens * PRICE.inputPerMillion + 2_000 * PRICE.outputPerMillion) / 1e6;
    fake.reply({ content: '{"summary": "cut off' }, { offline: true });
    const tight = await createAgentActivities({ provider: provider() }).analyzePerformance({
      experimentId: 'exp-x',
      budget: { limit_usd: 1.5 * oneRequest, spent_usd: 0, approved_over: false },
      analysis,
    });
    expect(tight.status).toBe('over_budget');
    expect(fake.requests).toHaveLength(0);
    if (tight.status === 'over_budget') expect(tight.estimate_usd).toBeGreaterThan(2 * oneRequest);

    const enough = await createAgentActivities({ provider: provider() }).analyzePerformance({
      experimentId: 'exp-x',
      budget: { limit_usd: 2.5 * oneRequest, spent_usd: 0, approved_over: false },
      analysis,
    });
    expect(enough.status).toBe('completed');
    if (enough.status === 'completed')
      expect(enough.record.calls!.map((call) => call.purpose)).toEqual(['answer', 'schema_retry']);
  });
});
