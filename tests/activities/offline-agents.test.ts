import type { HistoryRow, RunObservationInput } from '../../src/experiment';
import {
  computeAnalysis,
  Deliverables,
  evaluateDeliverables,
  FailureType,
  RunObservation,
  type AnalysisFacts,
  type DeliverableInput,
  type ValidationReport,
} from '../../src/experiment';
import { formatNumber, formatPercent, numbersInText, traceNumbers } from '../../src/experiment';
import { OfflineAgentProvider, OFFLINE_MODEL } from '../../src/activities/agents/offline';
import { AgentError } from '../../src/activities/agents/provider';
import {
  PerformanceAnalysis,
  ReportNarrative,
  type PerformanceFacts,
  type ReportFacts,
} from '../../src/activities/agents/schemas';

/** Deterministic noise in [-1, 1) (a linear congruential generator), so curves are the same on every run. */
function noise(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_664_525 + 1_013_904_223) % 4_294_967_296;
    return (state / 4_294_967_296) * 2 - 1;
  };
}

function curve(steps: number, value: (step: number) => Record<string, number | string>): HistoryRow[] {
  return Array.from({ length: steps }, (_, step) => ({ _step: step * 10, ...value(step) }));
}

/** Train and eval loss falling steadily, accuracy rising steadily: nothing wrong. */
function healthyRun(): HistoryRow[] {
  const jitter = noise(1);
  return curve(300, (step) => ({
    'train/loss': 2 / (1 + step / 20) + 0.002 * jitter(),
    'eval/loss': 2.1 / (1 + step / 20) + 0.002 * jitter(),
    accuracy: 0.9 - 0.8 / (1 + step / 20),
  }));
}

/** The loss falls, then turns NaN from step 2000 on. */
function nanRun(): HistoryRow[] {
  return curve(300, (step) => ({ 'train/loss': step < 200 ? 2 / (1 + step / 20) : 'NaN' }));
}

/** The loss falls to its best near step 1000, then climbs to several times that. */
function blowUpRun(): HistoryRow[] {
  return curve(300, (step) => ({
    'train/loss': step < 100 ? 2 / (1 + step / 10) : 0.18 + (step - 100) * 0.01,
  }));
}

/** Accuracy climbs fast, then sits at 0.9 for the last two thirds of training. */
function plateauRun(): HistoryRow[] {
  const jitter = noise(7);
  return curve(300, (step) => ({
    'eval/accuracy': step < 100 ? (0.9 * step) / 100 : 0.9 + 0.0001 * jitter(),
  }));
}

/** Train loss keeps falling; eval loss bottoms out near step 1200 and creeps back up (less than 2x). */
function overfittingRun(): HistoryRow[] {
  return curve(300, (step) => ({
    'train/loss': 2 / (1 + step / 20),
    'eval/loss': step < 120 ? 0.5 + 1.5 / (1 + step / 20) : 0.5 + 1.5 / 7 + (step - 120) * 0.002,
  }));
}

/** A metric that is mostly noise around a slow trend: noise, not instability. */
function noisyRun(): HistoryRow[] {
  const jitter = noise(3);
  return curve(300, (step) => ({ reward: step / 300 + 0.5 * jitter() }));
}

/** A reward that climbs with a little noise and twice collapses for one step: spikes, so instability. */
function spikyRun(): HistoryRow[] {
  const jitter = noise(5);
  return curve(300, (step) => ({
    reward: step / 300 + 0.02 * jitter() - (step === 120 || step === 230 ? 0.6 : 0),
  }));
}

/** A loss that fell about 10% early, then stayed flat under noise; its last value is its best. */
function fellTenPercentRun(): HistoryRow[] {
  const jitter = noise(7);
  const bell = () => (jitter() + jitter() + jitter() + jitter()) * Math.sqrt(3 / 4);
  const values = Array.from({ length: 200 }, (_, step) => 0.9 + 0.1 * Math.exp(-step / 15) + 0.004 * bell());
  values[199] = Math.min(...values) - 0.001;
  return values.map((loss, step) => ({ _step: step * 10, loss }));
}

/**
 * One loss curve seen twice: noisy minibatches every step and a low-noise full evaluation every 20 steps.
 * The last minibatch happens to be lucky, 21% below the evaluation.
 */
function noiseOnlyPairRun(): HistoryRow[] {
  const jitter = noise(1);
  const bell = () => (jitter() + jitter() + jitter() + jitter()) * Math.sqrt(3 / 4);
  const loss = (step: number) => 0.3 + 0.5 * Math.exp(-step / 80);
  return Array.from({ length: 401 }, (_, step) => ({
    _step: step,
    'train/loss': loss(step) + 0.06 * bell(),
    ...(step % 20 === 0 ? { 'eval/loss': loss(step) + 0.003 * bell() } : {}),
  }));
}

const provider = new OfflineAgentProvider();

async function performanceOf(
  rows: HistoryRow[],
): Promise<{ facts: AnalysisFacts; output: PerformanceAnalysis }> {
  const facts = computeAnalysis(rows);
  const response = await provider.call({
    agent: 'performance',
    instructions: 'Analyse the training curves.',
    facts: { analysis: facts } satisfies PerformanceFacts,
    schema: PerformanceAnalysis,
    promptVersion: 'performance@test',
  });
  return { facts, output: response.output };
}

// An independent reading of "every number written comes from the facts": numbers outside code spans, each
// equal to a fact (a number, or a number inside a fact string) as is, rounded to 4 significant digits, or
// as a percentage of a fraction. Deliberately not the production matcher, so the two check each other.
const WRITTEN_NUMBER = /(?<![\w.\-/])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?%?(?![\w/]|\.\d)/gi;

function factNumbers(facts: unknown, into: number[] = []): number[] {
  if (typeof facts === 'number') into.push(facts);
  else if (typeof facts === 'string')
    for (const match of facts.matchAll(WRITTEN_NUMBER)) into.push(Number(match[0].replace('%', '')));
  else if (Array.isArray(facts)) for (const item of facts) factNumbers(item, into);
  else if (typeof facts === 'object' && facts !== null)
    for (const value of Object.values(facts)) factNumbers(value, into);
  return into;
}

function ungroundedNumbers(text: string, facts: unknown): string[] {
  const known = factNumbers(facts).filter(Number.isFinite);
  const shown = (value: number): number => Number(value.toPrecision(4));
  const prose = text.replace(/`[^`]*`/g, ' ');
  return [...prose.matchAll(WRITTEN_NUMBER)]
    .map((match) => match[0])
    .filter((written) => {
      const percent = written.endsWith('%');
      const value = Number(percent ? written.slice(0, -1) : written);
      return !known.some(
        (fact) => fact === value || shown(fact) === value || (percent && shown(100 * fact) === value),
      );
    });
}

function allText(output: unknown): string {
  return JSON.stringify(output)
    .replace(/\\"/g, '"')
    .split(/"[a-z_]+":/)
    .join(' ');
}

describe('OfflineAgentProvider: the call contract', () => {
  test('answers with zero tokens and cost, model "offline", the prompt version echoed', async () => {
    const response = await provider.call({
      agent: 'performance',
      instructions: 'ignored offline',
      facts: { analysis: computeAnalysis(healthyRun()) },
      schema: PerformanceAnalysis,
      promptVersion: 'performance@3',
    });
    expect(response).toMatchObject({
      usage: { promptTokens: 0, completionTokens: 0 },
      costUsd: 0,
      model: OFFLINE_MODEL,
      promptVersion: 'performance@3',
    });
    expect(PerformanceAnalysis.safeParse(response.output).success).toBe(true);
  });

  test('the same facts give the same text', async () => {
    const first = await performanceOf(overfittingRun());
    const second = await performanceOf(overfittingRun());
    expect(second.output).toEqual(first.output);
  });

  test('an agent it does not know is a non-retryable bad request naming the agents it has', async () => {
    const call = provider.call({
      agent: 'haiku',
      instructions: '',
      facts: {},
      schema: ReportNarrative,
      promptVersion: 'haiku@1',
    });
    await expect(call).rejects.toBeInstanceOf(AgentError);
    await expect(call).rejects.toMatchObject({
      failureType: FailureType.AgentBadRequest,
      message: expect.stringContaining('performance, baselines, ablations, report, blog and paper'),
    });
  });

  test('facts that do not fit the agent are a bad request naming the path', async () => {
    const call = provider.call({
      agent: 'performance',
      instructions: '',
      facts: { analysis: { rows: 'many' } },
      schema: PerformanceAnalysis,
      promptVersion: 'p@1',
    });
    await expect(call).rejects.toMatchObject({
      failureType: FailureType.AgentBadRequest,
      message: expect.stringContaining('analysis.rows'),
    });
  });

  test("output that does not fit the caller's schema is AgentOutputInvalid", async () => {
    const call = provider.call({
      agent: 'performance',
      instructions: '',
      facts: { analysis: computeAnalysis(healthyRun()) },
      schema: ReportNarrative,
      promptVersion: 'p@1',
    });
    await expect(call).rejects.toMatchObject({ failureType: FailureType.AgentOutputInvalid });
  });
});

describe('offline performance analyst: anomalies from synthetic curves', () => {
  test('a healthy run gets a result per metric and no anomaly finding', async () => {
    const { output } = await performanceOf(healthyRun());
    const kinds = output.findings.map((finding) => finding.kind);
    expect(kinds.filter((kind) => kind === 'result')).toHaveLength(3);
    expect(kinds).not.toEqual(expect.arrayContaining(['divergence']));
    expect(kinds).not.toEqual(expect.arrayContaining(['plateau']));
    expect(kinds).not.toEqual(expect.arrayContaining(['overfitting']));
    expect(output.summary).toContain('No divergence, plateau, instability or overfitting');
  });

  test('a loss that turns NaN is a critical divergence at the step it happened, with causes and fixes', async () => {
    const { output } = await performanceOf(nanRun());
    const divergence = output.findings.find((finding) => finding.kind === 'divergence');
    expect(divergence).toMatchObject({ metric: 'train/loss', severity: 'critical' });
    expect(divergence?.observation).toContain('NaN or infinite at step 2000');
    expect(divergence?.likely_causes.join(' ')).toMatch(/learning rate/);
    expect(divergence?.recommendations.join(' ')).toMatch(/clip gradients/);
    expect(output.recommendations[0]).toBe(divergence?.recommendations[0]);
  });

  test('a loss that climbs far from its best is a divergence recommending the best checkpoint', async () => {
    const { facts, output } = await performanceOf(blowUpRun());
    const divergence = output.findings.find((finding) => finding.kind === 'divergence');
    expect(divergence).toMatchObject({ metric: 'train/loss', severity: 'critical' });
    expect(divergence?.recommendations).toContain(
      `keep the checkpoint nearest step ${facts.metrics['train/loss']?.best_step}, where \`train/loss\` was best`,
    );
  });

  test('a metric that stops improving is a plateau with the window it was flat in', async () => {
    const { facts, output } = await performanceOf(plateauRun());
    const plateau = output.findings.find((finding) => finding.kind === 'plateau');
    expect(plateau).toMatchObject({ metric: 'eval/accuracy', severity: 'warning' });
    expect(plateau?.observation).toContain(
      `from step ${facts.metrics['eval/accuracy']?.plateau?.window_start_step}`,
    );
  });

  test('eval loss rising while train loss falls is overfitting, and not also called a plateau', async () => {
    const { facts, output } = await performanceOf(overfittingRun());
    const overfitting = output.findings.find((finding) => finding.kind === 'overfitting');
    const pair = facts.pairs[0];
    expect(overfitting).toMatchObject({ metric: 'eval/loss', severity: 'warning' });
    expect(overfitting?.observation).toContain(
      `worsened by ${formatPercent(pair?.eval_worsening_since_best ?? 0)}`,
    );
    expect(overfitting?.observation).toContain('`train/loss` improved by');
    expect(
      output.findings.filter((finding) => finding.kind === 'plateau' && finding.metric === 'eval/loss'),
    ).toEqual([]);
    expect(output.summary).toContain('overfitting in `eval/loss`');
  });

  test('a curve that is mostly noise is not called unstable', async () => {
    const { facts, output } = await performanceOf(noisyRun());
    expect(facts.metrics.reward?.unstable).toBe(false);
    expect(output.findings.filter((finding) => finding.kind === 'instability')).toEqual([]);
  });

  test('a curve with spikes far beyond its noise is unstable, with the step of the largest', async () => {
    const { facts, output } = await performanceOf(spikyRun());
    const instability = output.findings.find((finding) => finding.kind === 'instability');
    expect(instability).toMatchObject({ metric: 'reward', severity: 'warning' });
    expect(facts.metrics.reward?.spikes).toBe(2);
    expect(instability?.observation).toContain(`at step ${facts.metrics.reward?.largest_spike_step}`);
    expect(instability?.recommendations.join(' ')).toMatch(/learning rate/);
  });

  test('a loss that fell 10% and ends at its best is reported as improved, never as "did not improve"', async () => {
    const { facts, output } = await performanceOf(fellTenPercentRun());
    const text = allText(output);
    expect(text).not.toMatch(/did not improve|got worse|worsened/);
    const result = output.findings.find((finding) => finding.kind === 'result');
    expect(result?.observation).toContain(
      `its best; it improved by ${formatPercent(facts.metrics.loss?.improvement ?? 0)} from its first value`,
    );
    const plateau = output.findings.find((finding) => finding.kind === 'plateau');
    expect(plateau?.observation).toMatch(/levelled off .* within the noise .* it ended at its best/);
  });

  test('train and eval that differ only by noise get no generalization gap finding', async () => {
    const { facts, output } = await performanceOf(noiseOnlyPairRun());
    const pair = facts.pairs[0]!;
    expect((pair.eval_final! - pair.train_final!) / pair.train_final!).toBeGreaterThan(0.2);
    expect(output.findings.filter((finding) => finding.kind === 'generalization_gap')).toEqual([]);
    expect(output.findings.filter((finding) => finding.severity !== 'info')).toEqual([]);
  });

  test('a gap beyond the noise is a warning that compares the two curves over the same steps', async () => {
    const jitter = noise(2);
    const { facts, output } = await performanceOf(
      Array.from({ length: 401 }, (_, step) => ({
        _step: step,
        'train/loss': 0.1 + 0.9 * Math.exp(-step / 40) + 0.02 * jitter(),
        ...(step % 20 === 0 ? { 'eval/loss': 0.5 + 0.6 * Math.exp(-step / 40) + 0.002 * jitter() } : {}),
      })),
    );
    const pair = facts.pairs[0]!;
    expect(pair).toMatchObject({ generalization_gap: true, overfitting: false });
    const gap = output.findings.find((finding) => finding.kind === 'generalization_gap');
    expect(gap).toMatchObject({ metric: 'eval/loss', severity: 'warning' });
    expect(gap?.observation).toContain(`from step ${pair.window_start_step} on`);
    expect(gap?.observation).toContain(`a gap (eval − train) of ${formatNumber(pair.gap ?? 0)}`);
  });

  test.each([
    ['healthy', healthyRun],
    ['NaN', nanRun],
    ['blow-up', blowUpRun],
    ['plateau', plateauRun],
    ['overfitting', overfittingRun],
    ['noisy', noisyRun],
    ['spiky', spikyRun],
    ['fell 10%', fellTenPercentRun],
    ['noise-only pair', noiseOnlyPairRun],
  ])('every number written for the %s run is a number of the facts', async (_name, run) => {
    const { facts, output } = await performanceOf(run());
    expect(numbersInText(allText(output)).length).toBeGreaterThan(0);
    expect(ungroundedNumbers(allText(output), { analysis: facts })).toEqual([]);
  });

  test('the grounding check of this suite catches a number that is not in the facts', async () => {
    const { facts, output } = await performanceOf(overfittingRun());
    const tampered = { ...output, summary: `${output.summary} Eval loss reached 0.1234 at step 777.` };
    expect(ungroundedNumbers(allText(tampered), { analysis: facts })).toEqual(['0.1234', '777']);
  });
});

function validationOf(deliverables: DeliverableInput[], observation: RunObservationInput): ValidationReport {
  return evaluateDeliverables(Deliverables.parse(deliverables), RunObservation.parse(observation));
}

async function narrativeOf(facts: ReportFacts): Promise<ReportNarrative> {
  const response = await provider.call({
    agent: 'report',
    instructions: 'Write the report.',
    facts,
    schema: ReportNarrative,
    promptVersion: 'report@test',
  });
  return response.output;
}

describe('offline report writer', () => {
  const analysis = computeAnalysis(overfittingRun());
  const experiment = {
    id: 'exp-offline-01',
    name: 'Offline writer',
    hypothesis: 'A wider model reaches an eval loss below 0.8 within 3000 steps.',
    research_question: '',
  };
  const threshold: DeliverableInput = {
    name: 'low_eval_loss',
    type: 'threshold',
    metric: 'eval_loss',
    op: '<',
    value: 0.8,
  };
  const checkpoint: DeliverableInput = {
    name: 'final_checkpoint',
    type: 'exists',
    path: 'checkpoints/final.json',
  };
  const probe = { name: 'checkpoints/final.json', kind: 'file' as const, exists: true };

  test('met thresholds support the hypothesis, citing expected and found values', async () => {
    const validation = validationOf([threshold, checkpoint], {
      state: 'finished',
      summary: { eval_loss: 0.7341 },
      probes: [probe],
    });
    const narrative = await narrativeOf({ experiment, validation, analysis, performance: null });
    expect(narrative.hypothesis_outcome.verdict).toBe('supported');
    expect(narrative.hypothesis_outcome.explanation).toContain(
      'expected eval_loss (summary) < 0.8 and found 0.7341',
    );
    expect(narrative.results).toContain('`low_eval_loss` passed');
    expect(narrative.results).toContain('`final_checkpoint` passed');
  });

  test('a missed threshold means not supported, and a missing checkpoint is named as a caveat', async () => {
    const validation = validationOf([threshold, checkpoint], {
      state: 'finished',
      summary: { eval_loss: 0.9123 },
      probes: [{ ...probe, exists: false }],
    });
    const narrative = await narrativeOf({ experiment, validation, analysis, performance: null });
    expect(narrative.hypothesis_outcome.verdict).toBe('not_supported');
    expect(narrative.hypothesis_outcome.explanation).toContain('but found 0.9123');
    expect(narrative.hypothesis_outcome.explanation).toContain('`final_checkpoint`');
  });

  test('without a threshold, or without validation, the outcome is inconclusive', async () => {
    const validation = validationOf([checkpoint], { state: 'finished', probes: [probe] });
    expect(
      (await narrativeOf({ experiment, validation, analysis, performance: null })).hypothesis_outcome.verdict,
    ).toBe('inconclusive');
    const unvalidated = await narrativeOf({ experiment, validation: null, analysis, performance: null });
    expect(unvalidated.hypothesis_outcome).toMatchObject({ verdict: 'inconclusive' });
    expect(unvalidated.results).toContain('not checked');
  });

  test("the analysis section carries the performance analyst's anomalies and recommendations", async () => {
    const { output: performance } = await performanceOf(overfittingRun());
    const narrative = await narrativeOf({ experiment, validation: null, analysis, performance });
    expect(narrative.analysis).toContain(performance.summary);
    expect(narrative.analysis).toContain('worsened by');
    expect(narrative.analysis).toContain(`Recommended next: ${performance.recommendations[0]}`);
  });

  test('every number of the narrative is a number of its facts', async () => {
    const validation = validationOf([threshold, checkpoint], {
      state: 'finished',
      summary: { eval_loss: 0.7341 },
      probes: [probe],
    });
    const { output: performance } = await performanceOf(overfittingRun());
    const facts: ReportFacts = { experiment, validation, analysis, performance };
    const narrative = await narrativeOf(facts);
    expect(ungroundedNumbers(allText(narrative), facts)).toEqual([]);
  });
});

describe('grounding: number format and tracing', () => {
  test('numbers are written with 4 significant digits; integers as they are', () => {
    expect([0.312749, 0.0003, 1234.5678, 3990, 1.23456e-7, 0.5].map(formatNumber)).toEqual([
      '0.3127',
      '0.0003',
      '1235',
      '3990',
      '1.235e-7',
      '0.5',
    ]);
    expect(formatPercent(0.12345)).toBe('12.35%');
  });

  test('numbers in code spans, identifiers, paths and durations are not numbers of the text', () => {
    const mentions = numbersInText(
      '`exp-lr-03` top1_acc ended at 0.91 (12.5%) in 1h30m; see [x](charts/run-2.svg), step -3.',
    );
    expect(mentions.map((mention) => mention.text)).toEqual(['0.91', '12.5%', '-3']);
  });

  test('each number is traced to the first fact it stands for; a made-up one has no source', () => {
    const traces = traceNumbers('loss 0.3127 at step 900, 12.35% worse, and 0.777 from nowhere', {
      analysis: { metrics: { 'eval/loss': { final: 0.312749, final_step: 900 }, worsening: 0.12345 } },
    });
    expect(traces).toEqual([
      { text: '0.3127', source: 'analysis.metrics["eval/loss"].final' },
      { text: '900', source: 'analysis.metrics["eval/loss"].final_step' },
      { text: '12.35%', source: 'analysis.metrics.worsening' },
      { text: '0.777', source: null },
    ]);
  });
});
