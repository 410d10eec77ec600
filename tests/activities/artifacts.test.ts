import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { HistoryRow } from '../../src/experiment';
import {
  computeAnalysis,
  deliverablesStatus,
  evaluateDeliverables,
  ExperimentSpec,
  ResultsPayload,
  resultsStatus,
  RunObservation,
  summaryMetricsFrom,
  type ValidationReport,
} from '../../src/experiment';
import { OfflineAgentProvider } from '../../src/activities/agents/offline';
import { PerformanceAnalysis, ReportNarrative } from '../../src/activities/agents/schemas';
import { metricGroup, renderTrainingCharts } from '../../src/activities/artifacts/charts';
import { writeReport, type WriteReportInput } from '../../src/activities/artifacts/report';

/** A run of `steps` logged steps: losses falling (eval bottoming out and rising a little), accuracy rising. */
function history(steps: number): HistoryRow[] {
  return Array.from({ length: steps }, (_, step) => ({
    _step: step,
    _timestamp: 1_700_000_000 + step,
    'train/loss': 2 / (1 + step / 20),
    'eval/loss':
      step < (steps * 2) / 3
        ? 0.25 + 1.6 / (1 + step / 20)
        : 0.25 + 1.6 / (1 + (steps * 2) / 60) + 0.0005 * (step - (steps * 2) / 3),
    accuracy: 0.95 - 0.9 / (1 + step / 20),
  }));
}

/** The `d` attribute of every line mark in a vega SVG: one path per series. */
function linePaths(svg: string): string[] {
  return [...svg.matchAll(/<g class="mark-line[^"]*"[^>]*>([\s\S]*?)<\/g>/g)].flatMap((group) =>
    [...(group[1] ?? '').matchAll(/<path[^>]* d="([^"]*)"/g)].map((match) => match[1] ?? ''),
  );
}

function expectSvgDocument(svg: string): void {
  expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
  expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  expect(svg.match(/<svg[\s>]/g)).toHaveLength(1);
}

describe('renderTrainingCharts', () => {
  test('train and eval sides of a quantity share a chart; other metrics get their own', async () => {
    const charts = await renderTrainingCharts(history(200));
    expect(charts.map(({ name, title, metrics }) => ({ name, title, metrics }))).toEqual([
      { name: 'loss', title: 'loss', metrics: ['train/loss', 'eval/loss'] },
      { name: 'accuracy', title: 'accuracy', metrics: ['accuracy'] },
    ]);
    expect(['train_loss', 'val_loss', 'loss', 'Eval/Loss'].map(metricGroup)).toEqual([
      'loss',
      'loss',
      'loss',
      'loss',
    ]);
  });

  test('each chart is one SVG document with a line per series and the series names in its legend', async () => {
    const [loss, accuracy] = await renderTrainingCharts(history(200));
    expectSvgDocument(loss?.svg ?? '');
    expectSvgDocument(accuracy?.svg ?? '');
    expect(linePaths(loss?.svg ?? '')).toHaveLength(2);
    expect(linePaths(accuracy?.svg ?? '')).toHaveLength(1);
    expect(loss?.svg).toContain('>train/loss</text>');
    expect(loss?.svg).toContain('>eval/loss</text>');
    expect(loss?.svg).not.toContain('>accuracy</text>');
  });

  test('long series are downsampled to at most maxPointsPerSeries points, first and last kept', async () => {
    const [loss] = await renderTrainingCharts(history(5000), { maxPointsPerSeries: 500 });
    const paths = linePaths(loss?.svg ?? '');
    expect(paths).toHaveLength(2);
    for (const d of paths) expect(d.split('L')).toHaveLength(500);
    const [small] = await renderTrainingCharts(history(5000), { maxPointsPerSeries: 50 });
    for (const d of linePaths(small?.svg ?? '')) expect(d.split('L')).toHaveLength(50);
    expect((small?.svg.length ?? 0) < (loss?.svg.length ?? 0)).toBe(true);
  });

  test('NaN and infinite values are left out of the lines; an async history works the same', async () => {
    const rows: HistoryRow[] = [
      { _step: 0, loss: 1 },
      { _step: 1, loss: 'NaN' },
      { _step: 2, loss: 0.5 },
      { _step: 3, loss: 'Infinity' },
      { _step: 4, loss: 0.25 },
    ];
    async function* stream(): AsyncGenerator<HistoryRow> {
      yield* rows;
    }
    const [fromArray] = await renderTrainingCharts(rows);
    const [fromStream] = await renderTrainingCharts(stream());
    const [d] = linePaths(fromArray?.svg ?? '');
    expect(d?.split('L')).toHaveLength(3);
    expect(d).not.toMatch(/NaN|Infinity/);
    expect(fromStream?.svg).toBe(fromArray?.svg);
  });

  test('a series keeps its colour across charts: training blue, evaluation orange, whatever the order', async () => {
    const rows = history(100).map((row) => ({
      ...row,
      'eval/accuracy': row.accuracy,
      'train/accuracy': row.accuracy,
    }));
    const charts = await renderTrainingCharts(rows);
    const strokeOf = (svg: string, index: number) =>
      [...svg.matchAll(/<g class="mark-line[^"]*"[^>]*>[\s\S]*?stroke="(#[0-9a-f]{6})"/g)][index]?.[1];
    const byName = new Map(charts.map((chart) => [chart.title, chart]));
    for (const title of ['loss', 'accuracy']) {
      const chart = byName.get(title)!;
      const colours = chart.metrics.map((metric, index) => [metric, strokeOf(chart.svg, index)]);
      expect(Object.fromEntries(colours.filter(([metric]) => /^(train|eval)\//.test(metric!)))).toEqual({
        [`train/${title}`]: '#4c78a8',
        [`eval/${title}`]: '#f58518',
      });
    }
  });

  test('the same history renders the same SVG', async () => {
    const [first] = await renderTrainingCharts(history(300));
    const [second] = await renderTrainingCharts(history(300));
    expect(second?.svg).toBe(first?.svg);
  });
});

const spec = ExperimentSpec.parse({
  experiment_id: 'exp-report-01',
  name: 'Report writer check',
  hypothesis: 'The model reaches an eval loss below 0.5 and an accuracy above 0.8.',
  config: { learning_rate: 0.0003, optimizer: 'adamw', batch_size: 32 },
  deliverables: [
    { name: 'low_eval_loss', type: 'threshold', metric: 'eval/loss', op: '<', value: 0.5 },
    { name: 'accurate', type: 'threshold', metric: 'accuracy', op: '>', value: 0.8, aggregate: 'final' },
    { name: 'final_checkpoint', type: 'exists', path: 'checkpoints/final.json', required: false },
  ],
  training: { command: 'node', args: ['train.js'] },
});

async function reportInput(runDir: string, rows: HistoryRow[]): Promise<WriteReportInput> {
  const analysis = computeAnalysis(rows);
  const last = rows.at(-1) ?? {};
  const validation: ValidationReport = evaluateDeliverables(
    spec.deliverables,
    RunObservation.parse({
      run: `file://${runDir}`,
      state: 'finished',
      summary: { 'eval/loss': last['eval/loss'], accuracy: last.accuracy },
      aggregates: {
        accuracy: {
          count: rows.length,
          final: analysis.metrics.accuracy?.final ?? null,
          min: 0.05,
          max: 0.95,
        },
      },
      probes: [{ name: 'checkpoints/final.json', kind: 'file', exists: false }],
    }),
  );
  const provider = new OfflineAgentProvider();
  const performance = (
    await provider.call({
      agent: 'performance',
      instructions: '',
      facts: { analysis },
      schema: PerformanceAnalysis,
      promptVersion: 'performance@test',
    })
  ).output;
  const narrative = (
    await provider.call({
      agent: 'report',
      instructions: '',
      facts: {
        experiment: {
          id: spec.experiment_id,
          name: spec.name,
          hypothesis: spec.hypothesis,
          research_question: '',
        },
        validation,
        analysis,
        performance,
      },
      schema: ReportNarrative,
      promptVersion: 'report@test',
    })
  ).output;
  return {
    runDir,
    spec,
    validation,
    analysis,
    performance,
    narrative,
    history: rows,
    results: {
      experiment_id: spec.experiment_id,
      status: resultsStatus(validation, false),
      completed_at: '2026-01-05T10:00:00.000Z',
      duration_seconds: 5400.25,
      deliverables_status: deliverablesStatus(validation, false),
      summary_metrics: summaryMetricsFrom({ 'eval/loss': last['eval/loss'], accuracy: last.accuracy }),
      validation_results: validation,
      artifacts: [
        { name: 'final checkpoint', kind: 'checkpoint', path: path.join(runDir, 'checkpoints/step-99.json') },
      ],
      analysis_reports: [
        { agent: 'performance', title: 'Performance analysis', summary: performance.summary },
      ],
      decisions: [
        {
          gate: 'launch',
          by: 'ada',
          at: '2026-01-05T08:30:00.000Z',
          source: 'cli',
          signal: 'approve',
          outcome: 'approved',
          comment: 'go, batch 32 is fine',
        },
      ],
      costs: { llm_usd: 0, llm_prompt_tokens: 0, llm_completion_tokens: 0, gpu_hours: 0.75 },
    },
  };
}

/** The report up to its numbers section, and the rows of that section. */
function numbersSection(markdown: string): { body: string; rows: string[] } {
  const [body = '', section = ''] = markdown.split('## Numbers in this report');
  return { body, rows: section.split('\n').filter((line) => /^\| (?!Number|---)/.test(line)) };
}

describe('writeReport', () => {
  let runDir: string;
  beforeEach(() => {
    runDir = mkdtempSync(path.join(tmpdir(), 'labline-report-'));
  });
  afterEach(() => rmSync(runDir, { recursive: true, force: true }));

  test('report.md has a row per deliverable with expected, found and pass', async () => {
    const input = await reportInput(runDir, history(300));
    const written = await writeReport(input);
    const markdown = readFileSync(written.reportPath, 'utf8');
    expect(markdown).toContain('| Deliverable | Type | Required | Expected | Found | Pass |');
    for (const result of input.validation?.results ?? []) {
      const pass = result.passed ? '✅ met' : '❌ not met';
      // Numbers found are shown to 4 significant digits, like every number of the report.
      const found = /^[\d.]+$/.test(result.found)
        ? String(Number(Number(result.found).toPrecision(4)))
        : result.found;
      expect(markdown).toContain(
        `| \`${result.name}\` | ${result.type} | ${result.required ? 'yes' : 'no'} | ${result.expected} | ${found} | ${pass} |`,
      );
    }
    expect(input.validation?.results.map((result) => result.passed)).toEqual([true, true, false]);
    expect(markdown).toContain(
      '| `low_eval_loss` | threshold | yes | eval/loss (summary) < 0.5 | 0.445 | ✅ met |',
    );
  });

  test('report.md links a chart file for each metric group, and each file exists', async () => {
    const written = await writeReport(await reportInput(runDir, history(300)));
    const markdown = readFileSync(written.reportPath, 'utf8');
    const links = [...markdown.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((match) => match[1] ?? '');
    // In figure-number order: metric groups in the order of the analysis (metric names sorted).
    expect(links).toEqual(['charts/accuracy.svg', 'charts/loss.svg']);
    expect(written.charts).toEqual(links.map((link) => path.join(runDir, link)));
    for (const link of links)
      expect(readFileSync(path.join(runDir, link), 'utf8')).toMatch(/^<svg[\s\S]*<\/svg>$/);
  });

  test('tables and figures are numbered in reading order, and files of the run are shown by their path in it', async () => {
    const markdown = readFileSync(
      (await writeReport(await reportInput(runDir, history(300)))).reportPath,
      'utf8',
    );
    const captions = [...markdown.matchAll(/^\*(Table|Figure) (\d+):/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(captions).toEqual(['Table 1', 'Table 2', 'Figure 1', 'Figure 2']);
    const artifacts = markdown.slice(markdown.indexOf('## Artifacts'), markdown.indexOf('## Numbers'));
    expect(artifacts).toContain('- charts/loss.svg (chart)\n');
    expect(artifacts).toContain('- report.md (report)\n');
    expect(artifacts).not.toContain(runDir);
  });

  test('report.md has the hypothesis, configuration, key metrics, findings, decisions and costs', async () => {
    const input = await reportInput(runDir, history(300));
    const markdown = readFileSync((await writeReport(input)).reportPath, 'utf8');
    expect(markdown.startsWith('# Report writer check\n')).toBe(true);
    expect(markdown).toContain(spec.hypothesis);
    expect(markdown).toContain('| `learning_rate` | 0.0003 |');
    const evalLoss = input.analysis.metrics['eval/loss'];
    expect(markdown).toMatch(/\| `eval\/loss` \| lower is better \| [\d.]+ \| 299 \| [\d.]+ \| \d+ \|/);
    expect(evalLoss?.best_step).not.toBe(299);
    expect(markdown).toContain('- **Overfitting** (warning) in `eval/loss`');
    expect(markdown).toContain(
      '| `2026-01-05T08:30:00.000Z` | launch | ada | cli | approved | go, batch 32 is fine |',
    );
    expect(markdown).toContain('| GPU hours | 0.75 |');
    expect(markdown).toContain(
      `**${input.narrative.hypothesis_outcome.verdict === 'supported' ? 'Supported' : 'Not supported'}.**`,
    );
  });

  test('the report ends with every number it shows and the facts path it came from', async () => {
    const markdown = readFileSync(
      (await writeReport(await reportInput(runDir, history(300)))).reportPath,
      'utf8',
    );
    const { body, rows } = numbersSection(markdown);
    expect(rows.length).toBeGreaterThan(10);
    expect(rows.filter((row) => row.includes('not found in the facts'))).toEqual([]);
    expect(rows).toContain('| 0.0003 | `spec.config.learning_rate` |');
    // Exact matches win over rounded ones: 0.8 is the spec's threshold, not some mean that rounds to it.
    expect(rows).toContain('| 0.8 | `validation.results[1].expected` |');
    expect(rows).toContain('| 32 | `spec.config.batch_size` |');
    expect(rows).toContain('| 5400 | `results.duration_seconds` |');
    expect(rows).toContain('| 0.75 | `results.costs.gpu_hours` |');
    // Each listed number is in the body, outside code.
    for (const row of rows) expect(body.replace(/`[^`]*`/g, '')).toContain(row.split(' | ')[0]?.slice(2));
  });

  test('a number in the narrative that no fact holds is listed as not found', async () => {
    const input = await reportInput(runDir, history(300));
    input.narrative = {
      ...input.narrative,
      summary: `${input.narrative.summary} It was 0.777 better than the baseline.`,
    };
    const { rows } = numbersSection(readFileSync((await writeReport(input)).reportPath, 'utf8'));
    expect(rows).toContain('| 0.777 | **not found in the facts** |');
  });

  test('results.json parses with ResultsPayload and records the report, results and charts', async () => {
    const input = await reportInput(runDir, history(300));
    const written = await writeReport(input);
    const results = ResultsPayload.parse(JSON.parse(readFileSync(written.resultsPath, 'utf8')));
    expect(results).toEqual(written.results);
    expect(results.status).toBe('completed');
    expect(results.artifacts.map((artifact) => [artifact.kind, artifact.path])).toEqual([
      ['checkpoint', path.join(runDir, 'checkpoints/step-99.json')],
      ['report', written.reportPath],
      ['results', written.resultsPath],
      ['chart', path.join(runDir, 'charts/accuracy.svg')],
      ['chart', path.join(runDir, 'charts/loss.svg')],
    ]);
    expect(written.artifacts).toEqual(results.artifacts.slice(1));
  });

  test('writing again (a retried activity) gives the same files and leaves no temporary files', async () => {
    const input = await reportInput(runDir, history(300));
    const first = await writeReport(input);
    const before = [first.reportPath, first.resultsPath, ...first.charts].map((file) =>
      readFileSync(file, 'utf8'),
    );
    const second = await writeReport({ ...input, results: first.results });
    const after = [second.reportPath, second.resultsPath, ...second.charts].map((file) =>
      readFileSync(file, 'utf8'),
    );
    expect(after).toEqual(before);
    expect(second.results.artifacts).toHaveLength(first.results.artifacts.length);
    const files = [...readdirSync(runDir), ...readdirSync(path.join(runDir, 'charts'))];
    expect(files.filter((file) => file.endsWith('.tmp'))).toEqual([]);
  });

  test('results that do not fit ResultsPayload are refused before anything is written', async () => {
    const input = await reportInput(runDir, history(300));
    const broken = { ...input, results: { ...input.results, status: 'done' as never, duration_seconds: -1 } };
    await expect(writeReport(broken)).rejects.toThrow(/exp-report-01[\s\S]*status[\s\S]*duration_seconds/);
    expect(existsSync(path.join(runDir, 'report.md'))).toBe(false);
    expect(existsSync(path.join(runDir, 'results.json'))).toBe(false);
    expect(existsSync(path.join(runDir, 'charts'))).toBe(false);
  });
});
