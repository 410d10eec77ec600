/**
 * The campaign report: a Markdown ranking of the variants with the statistics computed in code, an SVG bar
 * chart of each variant's mean and 95% confidence interval, an SVG of every child's curve of the primary
 * metric coloured by variant, and `campaign-results.json`.
 */
import type { TopLevelSpec } from 'vega-lite';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import {
  baseVariantOf,
  ExperimentSpec,
  variantsOf,
  type CampaignSpec,
  type ChildOutcome,
  type VariantComparison,
} from '../../experiment';
import { writeFileAtomic } from '../atomic-file';
import { gitMaybe } from '../code/git';
import { renderSvg } from '../artifacts/charts';
import type { BaselineInterpretation } from '../agents/schemas';
import type { RunTracker } from '../tracking/run-tracker';

export interface CampaignReportInput {
  campaign: CampaignSpec;
  runsRoot: string;
  outcomes: ChildOutcome[];
  comparison: VariantComparison[];
  /** The comparator agent's reading of the comparison, when it ran. */
  interpretation?: BaselineInterpretation;
}

const fmt = (value: number | null | undefined, digits = 4) =>
  value === null || value === undefined || !Number.isFinite(value)
    ? '—'
    : Number(value.toPrecision(digits)).toString();

async function writeAtomically(file: string, text: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await writeFileAtomic(file, text);
}

/**
 * For code variants: each variant's branch and commit, and the diff between it and the variant the others are
 * compared with, written beside the report (`diffs/<variant>.diff`) and linked with its size.
 */
async function codeSection(campaign: CampaignSpec, dir: string): Promise<string[]> {
  const variants = variantsOf(campaign).filter((variant) => variant.code?.pinned);
  const repository = ExperimentSpec.parse(campaign.base).code?.repo;
  const base = variants[0];
  if (!base?.code?.pinned || !repository) return [];
  const rows: string[] = [];
  for (const variant of variants) {
    const pinned = variant.code!.pinned!;
    let diff = variant === base ? 'the others are compared with it' : 'same commit as the base';
    if (variant !== base && pinned.commit !== base.code.pinned.commit) {
      const range = [base.code.pinned.commit, pinned.commit];
      const stat = await gitMaybe(['diff', '--shortstat', ...range], { cwd: repository });
      const text = await gitMaybe(['diff', '--no-color', ...range], { cwd: repository });
      if (text === undefined) diff = 'the diff could not be computed (is the repository still there?)';
      else {
        await writeAtomically(path.join(dir, 'diffs', `${variant.name}.diff`), text);
        diff = `[${stat?.trim() || 'no changes'}](diffs/${variant.name}.diff)`;
      }
    }
    const patch = pinned.patch ? ` + uncommitted changes (${pinned.patch.files.length} file(s))` : '';
    rows.push(
      `| \`${variant.name}\` | ${pinned.branch ?? variant.code!.ref} | \`${pinned.commit.slice(0, 12)}\`${patch} | ${diff} |`,
    );
  }
  return [
    '## Code',
    '',
    `Each variant trained its own worktree of \`${repository}\`.`,
    '',
    '| Variant | Branch | Commit | Diff against the base |',
    '|---|---|---|---|',
    ...rows,
    '',
  ];
}

function barChart(comparison: VariantComparison[], metric: string): TopLevelSpec {
  const data = comparison
    .filter((row) => row.estimate)
    .map((row) => ({
      variant: row.variant,
      mean: row.estimate!.mean,
      lower: row.estimate!.lower ?? row.estimate!.mean,
      upper: row.estimate!.upper ?? row.estimate!.mean,
    }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `${metric}: mean and 95% CI over seeds`,
    width: 480,
    height: 240,
    data: { values: data },
    layer: [
      {
        mark: 'bar',
        encoding: {
          x: { field: 'variant', type: 'nominal', sort: null },
          y: { field: 'mean', type: 'quantitative', title: metric },
        },
      },
      {
        mark: { type: 'rule', strokeWidth: 2 },
        encoding: {
          x: { field: 'variant', type: 'nominal', sort: null },
          y: { field: 'lower', type: 'quantitative' },
          y2: { field: 'upper' },
        },
      },
    ],
  };
}

function curvesChart(
  rows: { step: number; value: number; variant: string; child: string }[],
  metric: string,
): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `${metric} of every child, by variant`,
    width: 480,
    height: 240,
    data: { values: rows },
    mark: { type: 'line', strokeWidth: 1.5 },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'step' },
      y: { field: 'value', type: 'quantitative', title: metric },
      color: { field: 'variant', type: 'nominal' },
      detail: { field: 'child', type: 'nominal' },
    },
  };
}

/** Reads each child's primary-metric curve (at most 200 points each) through the tracker. */
async function curves(input: CampaignReportInput, tracker: RunTracker) {
  const metric = input.campaign.primary_metric.name;
  const rows: { step: number; value: number; variant: string; child: string }[] = [];
  for (const outcome of input.outcomes) {
    const ref = {
      experimentId: outcome.experiment_id,
      runDir: path.join(input.runsRoot, outcome.experiment_id),
    };
    try {
      for await (const row of tracker.history(ref, { keys: [metric], samples: 200 })) {
        const value = row[metric];
        if (typeof value === 'number' && Number.isFinite(value)) {
          rows.push({ step: row._step, value, variant: outcome.variant, child: outcome.experiment_id });
        }
      }
    } catch {
      // A child that never trained has no curve; the table says how it ended.
    }
  }
  return rows;
}

export async function writeCampaignReport(
  input: CampaignReportInput,
  tracker: RunTracker,
): Promise<{ reportPath: string; resultsPath: string; charts: string[] }> {
  const { campaign, comparison, outcomes } = input;
  const dir = path.join(input.runsRoot, campaign.campaign_id);
  const metric = campaign.primary_metric.name;
  const charts: string[] = [];
  const bars = path.join(dir, 'charts', 'variants.svg');
  await writeAtomically(bars, await renderSvg(barChart(comparison, metric)));
  charts.push(bars);
  const curveRows = await curves(input, tracker);
  if (curveRows.length) {
    const file = path.join(dir, 'charts', 'curves.svg');
    await writeAtomically(file, await renderSvg(curvesChart(curveRows, metric)));
    charts.push(file);
  }
  const best = comparison.find((row) => row.rank === 1);
  const lines = [
    `# ${campaign.name}`,
    '',
    `Campaign \`${campaign.campaign_id}\`: ${outcomes.length} experiment(s), ranked by \`${metric}\` (${campaign.primary_metric.goal === 'max' ? 'higher' : 'lower'} is better).`,
    '',
    best
      ? `**Best variant: \`${best.variant}\`** with mean ${fmt(best.estimate?.mean)} over ${best.values.length} seed(s).`
      : 'No variant produced the primary metric.',
    '',
    '## Variants',
    '',
    `| Rank | Variant | n | Mean | 95% CI | vs \`${baseVariantOf(campaign)}\`: difference | p (Welch) | Hedges g | Failed |`,
    '|---|---|---|---|---|---|---|---|---|',
    ...comparison.map((row) =>
      [
        row.rank ?? '—',
        `\`${row.variant}\``,
        row.values.length,
        fmt(row.estimate?.mean),
        row.estimate?.lower === null || !row.estimate
          ? '—'
          : `[${fmt(row.estimate.lower)}, ${fmt(row.estimate.upper)}]`,
        fmt(row.vs_base?.difference),
        fmt(row.vs_base?.p_value, 3),
        fmt(row.vs_base?.hedges_g, 3),
        row.failed,
      ]
        .join(' | ')
        .replace(/^/, '| ')
        .concat(' |'),
    ),
    '',
    ...(await codeSection(campaign, dir)),
    `![variants](charts/variants.svg)`,
    ...(curveRows.length ? ['', `![curves](charts/curves.svg)`] : []),
    '',
    ...(input.interpretation
      ? [
          '## Interpretation (comparator agent)',
          '',
          input.interpretation.summary,
          '',
          ...input.interpretation.caveats.map((caveat) => `- ${caveat}`),
          '',
        ]
      : []),
    '## Experiments',
    '',
    '| Experiment | Variant | Seed | Ended | Metric | Note |',
    '|---|---|---|---|---|---|',
    ...outcomes.map(
      (o) =>
        `| \`${o.experiment_id}\` | ${o.variant} | ${o.seed} | ${o.end} | ${fmt(o.metric)} | ${o.reason ?? ''} |`,
    ),
    '',
    "Means, confidence intervals (Student t), Welch's t-test and Hedges' g are computed in code from the children's summary metrics.",
    '',
  ];
  const reportPath = path.join(dir, 'campaign-report.md');
  const resultsPath = path.join(dir, 'campaign-results.json');
  await writeAtomically(reportPath, lines.join('\n'));
  await writeAtomically(
    resultsPath,
    JSON.stringify(
      { campaign_id: campaign.campaign_id, primary_metric: campaign.primary_metric, comparison, outcomes },
      null,
      2,
    ),
  );
  return { reportPath, resultsPath, charts };
}
