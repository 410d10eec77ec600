import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import type {
  AnalysisFacts,
  BaselineFacts,
  BaselineSample,
  BaselineSpec,
  MetricGoal,
  SummaryMetricValue,
} from '../../experiment';
import { compareWithBaseline, metricGoalFromName, ResultsPayload } from '../../experiment';

// The samples of a baseline comparison: values from the spec, and earlier experiments' final values read from
// their results.json. The statistics themselves are computed in src/experiment/baselines.ts.

/** What {@link collectBaselineFacts} compares. */
export interface CollectBaselinesInput {
  /** Folder of run directories: earlier experiments' results are `<runsRoot>/<id>/results.json`. */
  runsRoot: string;
  /** The spec's baselines. */
  baselines: readonly BaselineSpec[];
  /** This experiment's summary metrics (from validation). */
  summary: Readonly<Record<string, SummaryMetricValue>>;
  /** This experiment's curve statistics. */
  analysis: AnalysisFacts;
  /** The spec's `analysis_pipeline.metric_goals`. */
  goals: Readonly<Record<string, MetricGoal>>;
}

function numeric(value: SummaryMetricValue | undefined): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** This experiment's value of a metric: its summary value, else the final value of its curve. */
function ownSample(input: CollectBaselinesInput, metric: string): BaselineSample {
  const value = numeric(input.summary[metric]) ?? input.analysis.metrics[metric]?.final ?? undefined;
  return value === undefined
    ? { values: [], sources: [], missing: ['this run: no finite value in its summary or history'] }
    : { values: [value], sources: ['this run'], missing: [] };
}

/** An earlier experiment's final value of a metric, from its results.json. */
async function earlierValue(
  runsRoot: string,
  experimentId: string,
  metric: string,
): Promise<number | string> {
  const file = path.join(runsRoot, experimentId, 'results.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return `${experimentId}: no results at ${file}`;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return `${experimentId}: ${file} is not JSON`;
  }
  const parsed = ResultsPayload.safeParse(json);
  if (!parsed.success) return `${experimentId}: ${file} is not a Labline results file`;
  return (
    numeric(parsed.data.summary_metrics[metric]) ?? `${experimentId}: no finite ${metric} in its summary`
  );
}

async function baselineSample(runsRoot: string, baseline: BaselineSpec): Promise<BaselineSample> {
  const sample: BaselineSample = { values: [], sources: [], missing: [] };
  for (const value of baseline.values ?? []) {
    sample.values.push(value);
    sample.sources.push('spec');
  }
  for (const id of baseline.experiments ?? []) {
    const value = await earlierValue(runsRoot, id, baseline.metric);
    if (typeof value === 'number') {
      sample.values.push(value);
      sample.sources.push(id);
    } else sample.missing.push(value);
  }
  return sample;
}

/**
 * The comparisons with every baseline of the spec: the samples (spec values, earlier experiments' final
 * values) and the statistics of `compareWithBaseline`. An earlier experiment without a value is listed as
 * missing rather than failing the analysis.
 */
export async function collectBaselineFacts(input: CollectBaselinesInput): Promise<BaselineFacts> {
  const comparisons = [];
  for (const baseline of input.baselines) {
    const metric = baseline.metric;
    const goal = input.analysis.metrics[metric]?.goal ?? input.goals[metric] ?? metricGoalFromName(metric);
    comparisons.push(
      compareWithBaseline({
        baseline: baseline.name,
        metric,
        goal,
        experiment: ownSample(input, metric),
        baselineSample: await baselineSample(input.runsRoot, baseline),
      }),
    );
  }
  return { comparisons };
}
