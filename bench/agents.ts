/**
 * What the analysis and writing agents cost per experiment: `npx tsx bench/agents.ts`.
 *
 * Trains the quickstart for real (examples/quickstart.yaml, the tiny Node trainer), validates and analyses
 * its run with the real activities, then runs every agent through the OpenAI provider against the fake
 * OpenAI of the tests: the requests are the real ones (prompt files, facts, the JSON Schema response format)
 * and the answers are the offline writers' outputs for the same facts, which stand in for a model's
 * answers of realistic size. Tokens are counted as the fake counts them, 4 characters per token (no
 * tokenizer is installed; OpenAI's tokenizers give about 4 characters per token on English and JSON), and
 * priced at a gpt-4o-mini-class price ($0.15 per 1M prompt tokens, $0.60 per 1M completion tokens).
 *
 * Two scenarios are measured: the quickstart's own pipeline (performance; report) and the whole pipeline
 * (performance, baselines, ablations; report, blog, paper). For the whole pipeline an upper bound is added:
 * every agent revised once (its answer sent back) and every answer as long as the output limit allows.
 * Results: bench/results/agents.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createAgentActivities, type WriteDocumentInput } from '../src/activities/agents/activities';
import type { AgentStep } from '../src/activities/agents/grounded-call';
import { OpenAIAgentProvider, costUsd } from '../src/activities/agents/openai';
import { createArtifactActivities } from '../src/activities/artifacts/activities';
import { OfflineAgentProvider } from '../src/activities/agents/offline';
import { createTrackingActivities } from '../src/activities/tracking/activities';
import { LocalTracker } from '../src/activities/tracking/local';
import { loadSpecFile } from '../src/client/spec-file';
import { ExperimentSpec, summaryMetricsFrom, type AnalysisReportRecord } from '../src/experiment';
import { FakeOpenAI } from '../tests/support/fake-openai';

const PRICE = { inputPerMillion: 0.15, outputPerMillion: 0.6 };
const MAX_OUTPUT_TOKENS = 4096;
const TARGET_USD = 0.1;
const repo = path.resolve(__dirname, '..');

interface AgentTokens {
  agent: string;
  calls: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost_usd: number;
}

function totals(rows: readonly AgentTokens[]) {
  const prompt = rows.reduce((sum, row) => sum + row.prompt_tokens, 0);
  const completion = rows.reduce((sum, row) => sum + row.completion_tokens, 0);
  return {
    calls: rows.reduce((sum, row) => sum + row.calls, 0),
    prompt_tokens: prompt,
    completion_tokens: completion,
    cost_usd: Number(costUsd({ promptTokens: prompt, completionTokens: completion }, PRICE).toFixed(6)),
  };
}

function rowOf(record: AnalysisReportRecord): AgentTokens {
  const calls = record.calls ?? [];
  return {
    agent: record.agent,
    calls: calls.length,
    prompt_tokens: calls.reduce((sum, call) => sum + call.prompt_tokens, 0),
    completion_tokens: calls.reduce((sum, call) => sum + call.completion_tokens, 0),
    cost_usd: Number((record.cost_usd ?? 0).toFixed(6)),
  };
}

async function main(): Promise<void> {
  const workDir = mkdtempSync(path.join(tmpdir(), 'labline-bench-agents-'));
  const fake = await FakeOpenAI.start();
  try {
    // 1. The quickstart, trained for real, validated and analysed by the real activities.
    const quickstart = loadSpecFile(path.join(repo, 'examples/quickstart.yaml'));
    const runsRoot = path.join(workDir, 'runs');
    const runDir = path.join(runsRoot, quickstart.experiment_id);
    mkdirSync(runDir, { recursive: true });
    const args = quickstart.training.args.filter((arg) => !arg.startsWith('--step-delay-ms'));
    execFileSync(process.execPath, [...args, `--out=${runDir}`], {
      cwd: quickstart.training.working_directory,
      stdio: 'ignore',
    });
    const trackers = { local: new LocalTracker({ runsRoot }) };
    const tracking = createTrackingActivities({ trackers });
    const checked = await tracking.validateDeliverables({
      experimentId: quickstart.experiment_id,
      runDir,
      tracker: quickstart.tracker,
      deliverables: quickstart.deliverables,
    });
    const analysis = await tracking.computeAnalysis({
      experimentId: quickstart.experiment_id,
      runDir,
      tracker: quickstart.tracker,
      goals: quickstart.analysis_pipeline.metric_goals,
    });
    // The whole pipeline: every analysis and writer, with a baseline to compare against.
    const spec = ExperimentSpec.parse({
      ...quickstart,
      analysis_pipeline: {
        ...quickstart.analysis_pipeline,
        analyses: ['performance', 'baselines', 'ablations'],
        writers: ['report', 'blog', 'paper'],
      },
      baselines: [{ name: 'logistic regression', metric: 'eval/accuracy', values: [0.84, 0.86, 0.85] }],
    });
    const baselines = await createArtifactActivities({
      provider: new OfflineAgentProvider(),
      trackers,
    }).collectBaselines({ runsRoot, spec, facts: analysis, summary: summaryMetricsFrom(checked.summary) });

    // 2. Every agent through the OpenAI provider, against the fake (offline-sized answers).
    const provider = new OpenAIAgentProvider({
      baseURL: fake.baseURL,
      apiKey: fake.apiKey,
      model: 'gpt-4o-mini',
      timeoutMs: 30_000,
      maxOutputTokens: MAX_OUTPUT_TOKENS,
      price: PRICE,
    });
    const agents = createAgentActivities({ provider });
    const common = {
      experimentId: spec.experiment_id,
      budget: { limit_usd: 10, spent_usd: 0, approved_over: false },
    };
    const done = <T>(step: AgentStep<T>): { output: T; record: AnalysisReportRecord } => {
      if (step.status !== 'completed') throw new Error(`${step.agent} was over budget`);
      return step;
    };
    const performance = done(await agents.analyzePerformance({ ...common, analysis }));
    const interpretation = done(await agents.compareBaselines({ ...common, spec, baselines }));
    const ablations = done(
      await agents.designAblations({
        ...common,
        spec,
        analysis,
        validation: checked.report,
        performance: performance.output,
      }),
    );
    const writerInput = (full: boolean): WriteDocumentInput => ({
      ...common,
      spec: full ? spec : quickstart,
      analysis,
      validation: checked.report,
      performance: performance.output,
      baselines: full ? { facts: baselines, interpretation: interpretation.output } : null,
      ablations: full ? ablations.output : null,
    });
    const report = done(await agents.writeReportNarrative(writerInput(true)));
    const blog = done(await agents.writeBlogPost(writerInput(true)));
    const paper = done(await agents.writePaperDraft(writerInput(true)));
    // The quickstart's own pipeline: its report writer sees no baselines or follow-ups.
    const quickstartReport = done(await agents.writeReportNarrative(writerInput(false)));

    const full = [performance, interpretation, ablations, report, blog, paper].map((step) =>
      rowOf(step.record),
    );
    const own = [performance, quickstartReport].map((step) => rowOf(step.record));
    const unverified = [performance, interpretation, ablations, report, blog, paper].flatMap(
      (step) => step.record.unverified_numbers ?? [],
    );

    // 3. An upper bound for the whole pipeline: each agent's prompt sent twice (answer, then a revision that
    // also carries the first answer) and every answer at the output limit.
    const bound = full.map((row) => {
      const prompt = row.prompt_tokens + (row.prompt_tokens + MAX_OUTPUT_TOKENS + 100);
      const completion = 2 * MAX_OUTPUT_TOKENS;
      return {
        agent: row.agent,
        calls: 2,
        prompt_tokens: prompt,
        completion_tokens: completion,
        cost_usd: Number(costUsd({ promptTokens: prompt, completionTokens: completion }, PRICE).toFixed(6)),
      };
    });

    const results = {
      benchmark: 'agents',
      date: new Date().toISOString(),
      node: process.version,
      experiment: quickstart.experiment_id,
      price_usd_per_million_tokens: { input: PRICE.inputPerMillion, output: PRICE.outputPerMillion },
      token_counting:
        'estimated at 4 characters per token from the HTTP request bodies the provider sent (messages and the JSON Schema response format) and from the answers; no tokenizer is installed',
      answers:
        "the offline writers' outputs for the same facts, served by the fake OpenAI as a model's answers (one call per agent, no revision needed)",
      quickstart_pipeline: { agents: own, total: totals(own) },
      whole_pipeline: { agents: full, total: totals(full), unverified_numbers: unverified },
      whole_pipeline_upper_bound: {
        assumption: `every agent revised once, every answer ${MAX_OUTPUT_TOKENS} tokens (agents.max_output_tokens)`,
        agents: bound,
        total: totals(bound),
      },
      target_usd_per_experiment: TARGET_USD,
      within_target: totals(full).cost_usd < TARGET_USD && totals(bound).cost_usd < TARGET_USD,
    };
    const out = path.join(repo, 'bench/results/agents.json');
    writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
    console.log(
      JSON.stringify(
        {
          quickstart: results.quickstart_pipeline.total,
          whole: results.whole_pipeline.total,
          bound: results.whole_pipeline_upper_bound.total,
        },
        null,
        2,
      ),
    );
    console.log(`wrote ${out}`);
  } finally {
    await fake.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
