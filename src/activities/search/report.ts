/**
 * The search report: `trials.tsv` (one row per trial, for spreadsheets and scripts), `search-chart.svg` (each
 * trial's mean against the incumbent's), `search.json` (the whole status) and `search-report.md`, which reads
 * the chain of kept changes oldest first, so that a reviewer follows how the code got to the incumbent before
 * merging its branch. Every number is computed by the search workflow; this module only lays it out.
 */
import type { TopLevelSpec } from 'vega-lite';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { SearchCampaignSpec, SearchStatus, Trial } from '../../experiment';
import { writeFileAtomic } from '../atomic-file';
import { renderSvg } from '../artifacts/charts';

/** What {@link writeSearchReport} writes from. */
export interface SearchReportInput {
  campaign: SearchCampaignSpec;
  /** The runs folder; the files go to `<runsRoot>/<campaign_id>/`, created when missing. */
  runsRoot: string;
  /** The search's status; the report is a snapshot of it, so it may be written again as the search goes on. */
  status: SearchStatus;
}

/** The files {@link writeSearchReport} wrote. */
export interface SearchReportFiles {
  /** `search-report.md`. */
  reportPath: string;
  /** `trials.tsv`. */
  trialsPath: string;
  /** `search-chart.svg`. */
  chartPath: string;
  /** `search.json`: `{ campaign_id, status }`. */
  jsonPath: string;
}

type Goal = SearchStatus['objective']['goal'];
type Estimate = NonNullable<Trial['estimate']>;

/** Numbers in the report: 4 significant digits, `—` when absent. */
const readable = (value: number | null | undefined): string =>
  value === null || value === undefined || !Number.isFinite(value)
    ? '—'
    : Number(value.toPrecision(4)).toString();

/**
 * A TSV cell. Integers stay whole, other numbers keep 6 significant digits (a metric's precision without float
 * noise such as `0.30000000000000004`), absent values are empty, and tabs or newlines in free text become
 * spaces so they cannot shift columns or split a row.
 */
function tsvCell(value: string | number | null | undefined): string {
  if (typeof value === 'string') return value.replace(/[\t\r\n]+/g, ' ');
  if (value === null || value === undefined || !Number.isFinite(value)) return '';
  return Number.isInteger(value) ? String(value) : Number(value.toPrecision(6)).toString();
}

/** The columns of `trials.tsv` beside how each is read, so the header and the rows cannot drift apart. */
const TSV_COLUMNS: [string, (trial: Trial) => string | number | null | undefined][] = [
  ['n', (trial) => trial.n],
  ['state', (trial) => trial.state],
  ['parent_trial', (trial) => trial.parent_trial],
  ['hypothesis', (trial) => trial.hypothesis],
  ['files', (trial) => trial.check?.files.join(',')],
  ['added', (trial) => trial.check?.added],
  ['removed', (trial) => trial.check?.removed],
  ['seeds', (trial) => trial.seeds.join(',')],
  ['mean', (trial) => trial.estimate?.mean],
  ['ci_low', (trial) => trial.estimate?.lower],
  ['ci_high', (trial) => trial.estimate?.upper],
  ['improvement', (trial) => trial.versus?.improvement],
  ['p_value', (trial) => trial.versus?.p_value],
  ['failure_class', (trial) => trial.failure_class],
  ['gpu_hours', (trial) => trial.gpu_hours],
  ['llm_usd', (trial) => trial.llm_usd],
  ['branch', (trial) => trial.branch],
  ['commit', (trial) => trial.commit],
  ['reason', (trial) => trial.reason],
];

function trialsTsv(trials: readonly Trial[]): string {
  const rows = trials.map((trial) => TSV_COLUMNS.map(([, read]) => tsvCell(read(trial))).join('\t'));
  return [TSV_COLUMNS.map(([name]) => name).join('\t'), ...rows].join('\n') + '\n';
}

/** Trial 0 is the base, the first incumbent whatever its state says; any other trial is kept when promoted. */
const isKept = (trial: Trial): boolean => trial.n === 0 || trial.state === 'promoted';

/** Trials proposed after the base: trial 0 is not one of the search's attempts. */
const attempts = (status: SearchStatus): Trial[] => status.trials.filter((trial) => trial.n >= 1);

const promotions = (status: SearchStatus): Trial[] =>
  attempts(status).filter((trial) => trial.state === 'promoted');

/**
 * The incumbent's mean after each trial, in trial order: the best kept mean so far. The best rather than the
 * last promoted, because with `concurrency` above 1 trials are decided out of order, and a promotion always
 * beats the incumbent of its time; so this is the incumbent in force once every trial up to `n` is decided.
 * Trials before the first kept mean have no step.
 */
export function incumbentSteps(trials: readonly Trial[], goal: Goal): { n: number; mean: number }[] {
  const sign = goal === 'max' ? 1 : -1;
  const steps: { n: number; mean: number }[] = [];
  let best: number | undefined;
  for (const trial of trials) {
    const mean = trial.estimate?.mean;
    if (isKept(trial) && mean !== undefined && (best === undefined || sign * (mean - best) > 0)) best = mean;
    if (best !== undefined) steps.push({ n: trial.n, mean: best });
  }
  return steps;
}

/**
 * Each trial's mean with its interval, coloured kept or discarded, over the incumbent as a step line. Every
 * layer carries its own inline data: the step line has a row per trial, the points one per estimate.
 */
function searchChart(status: SearchStatus): TopLevelSpec {
  const { metric, goal } = status.objective;
  const points = status.trials
    .filter((trial) => trial.estimate)
    .map((trial) => ({
      n: trial.n,
      mean: trial.estimate!.mean,
      // One seed has no interval: a zero-length bar keeps the row beside its point.
      lower: trial.estimate!.lower ?? trial.estimate!.mean,
      upper: trial.estimate!.upper ?? trial.estimate!.mean,
      kept: isKept(trial) ? 'kept' : 'discarded',
    }));
  // Vega picks tick steps of at least (last trial / tickCount), so a count no larger than the last trial
  // number keeps fractional trials such as 2.5 off the axis.
  const ticks = Math.max(1, Math.min(12, status.trials.at(-1)?.n ?? 1));
  const x = { field: 'n', type: 'quantitative', title: 'trial', axis: { tickCount: ticks } } as const;
  // Metrics rarely sit near zero; a zero-based axis would flatten the differences the search is about.
  const y = { field: 'mean', type: 'quantitative', title: metric, scale: { zero: false } } as const;
  const color = {
    field: 'kept',
    type: 'nominal',
    title: null,
    scale: { domain: ['kept', 'discarded'], range: ['#1b9e77', '#d95f02'] },
    legend: { orient: 'bottom' },
  } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `${metric} per trial (goal: ${goal}, ${goal === 'max' ? 'higher' : 'lower'} is better)`,
    width: 560,
    height: 280,
    background: 'white',
    layer: [
      {
        data: { values: incumbentSteps(status.trials, goal) },
        mark: { type: 'line', interpolate: 'step-after', color: '#555555', strokeWidth: 1.5 },
        encoding: { x, y },
      },
      {
        data: { values: points },
        mark: { type: 'rule', strokeWidth: 1.5 },
        encoding: { x, y: { ...y, field: 'lower' }, y2: { field: 'upper' }, color },
      },
      {
        data: { values: points },
        mark: { type: 'point', filled: true, size: 60 },
        encoding: { x, y, color },
      },
    ],
  };
}

/**
 * The final incumbent's ancestry, oldest first, the base included: each promotion applied its diff to its
 * parent's commit, so these are the diffs the final branch holds. A missing or repeated trial ends the walk, so
 * a malformed status cannot loop.
 */
function promotionChain(status: SearchStatus): Trial[] {
  const byNumber = new Map(status.trials.map((trial) => [trial.n, trial]));
  const chain: Trial[] = [];
  for (let n: number | undefined = status.incumbent.trial; n !== undefined;) {
    const trial = byNumber.get(n);
    if (!trial || chain.includes(trial)) break;
    chain.unshift(trial);
    n = trial.n === 0 ? undefined : trial.parent_trial;
  }
  return chain;
}

/** A fence longer than any backtick run inside, so a diff or log holding ``` cannot close it early. */
function fenced(text: string, language = ''): string[] {
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((run) => run[0].length));
  const fence = '`'.repeat(longest + 1);
  return [fence + language, text.replace(/\n+$/, ''), fence];
}

/** A Markdown table cell: one line, cut to `max` characters, `|` escaped so text cannot add columns. */
function cell(text: string, max = Number.POSITIVE_INFINITY): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  const cut = flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
  return cut.replace(/\|/g, '\\|');
}

/** One row of a Markdown table; cells are escaped by their callers. */
const row = (...cells: (string | number)[]): string => `| ${cells.join(' | ')} |`;

function intervalText(estimate: Estimate | undefined): string {
  if (!estimate) return 'no value';
  const interval =
    estimate.lower === null || estimate.upper === null
      ? 'no interval with one seed'
      : `${readable(estimate.level * 100)}% interval [${readable(estimate.lower)}, ${readable(estimate.upper)}]`;
  return `mean ${readable(estimate.mean)} over ${estimate.n} seed(s), ${interval}`;
}

/** The decision's numbers, against the incumbent at decision time (with concurrency, not always the parent). */
function effectText(trial: Trial): string {
  if (!trial.versus) return intervalText(trial.estimate);
  const { improvement, p_value } = trial.versus;
  const test = p_value === null ? 'one seed: no test' : `one-sided Welch p = ${readable(p_value)}`;
  return `better than the incumbent of its time by ${readable(improvement)} (${test}); ${intervalText(trial.estimate)}`;
}

const codeOf = (trial: Trial): string =>
  [trial.branch && `branch \`${trial.branch}\``, trial.commit && `commit \`${trial.commit.slice(0, 12)}\``]
    .filter(Boolean)
    .join(', ') || 'not committed';

function chainSection(status: SearchStatus): string[] {
  const [base, ...chain] = promotionChain(status);
  const lines = ['## Chain of promoted changes, oldest first', ''];
  if (base) lines.push(`From the base (trial 0, ${codeOf(base)}): ${intervalText(base.estimate)}.`, '');
  if (!chain.length) lines.push('No change was kept: the incumbent is the base.', '');
  chain.forEach((trial, index) => {
    lines.push(`### ${index + 1}. Trial ${trial.n}`, '', `**Hypothesis.** ${trial.hypothesis}`, '');
    lines.push(...fenced(trial.diff, 'diff'), '', `**Effect.** ${effectText(trial)}.`, '');
    lines.push(`**Code.** ${codeOf(trial)}.`, '');
  });
  const superseded = promotions(status).filter((trial) => !chain.includes(trial));
  if (!superseded.length) return lines;
  lines.push('### Promoted, later superseded', '', 'The final incumbent does not descend from these:', '');
  for (const trial of superseded)
    lines.push(
      `- Trial ${trial.n}: ${cell(trial.hypothesis, 200)} — ${effectText(trial)}; ${codeOf(trial)}.`,
    );
  return [...lines, ''];
}

function trialsSection(status: SearchStatus): string[] {
  const mean = ({ estimate }: Trial) =>
    estimate?.lower == null || estimate.upper == null
      ? readable(estimate?.mean)
      : `${readable(estimate.mean)} ± ${readable((estimate.upper - estimate.lower) / 2)}`;
  return [
    '## Every trial',
    '',
    "Mean over the trial's seeds ± half its 95% interval; improvement over the incumbent of its time (positive is better); one-sided Welch p-value.",
    '',
    row('Trial', 'State', 'Mean ± interval', 'Improvement', 'p', 'Reason'),
    row('---', '---', '---', '---', '---', '---'),
    ...status.trials.map((trial) =>
      row(
        trial.n,
        trial.state,
        mean(trial),
        readable(trial.versus?.improvement),
        readable(trial.versus?.p_value),
        cell(trial.reason ?? '', 120),
      ),
    ),
    '',
  ];
}

/** Totals add up the trials, so the table's rows and its total agree. */
function costsSection(status: SearchStatus): string[] {
  const gpu = status.trials.reduce((sum, trial) => sum + trial.gpu_hours, 0);
  const usd = status.trials.reduce((sum, trial) => sum + trial.llm_usd, 0);
  const promoted = promotions(status).length;
  const perPromotion = promoted
    ? `${readable(gpu / promoted)} GPU hours and $${readable(usd / promoted)} of the proposer's model per promotion (${promoted} promotion(s))`
    : 'no promotion';
  return [
    '## Costs',
    '',
    row('Trial', 'State', 'GPU hours (training)', 'LLM $ (proposer)'),
    row('---', '---', '---', '---'),
    ...status.trials.map((trial) =>
      row(trial.n, trial.state, readable(trial.gpu_hours), readable(trial.llm_usd)),
    ),
    row('**total**', '', `**${readable(gpu)}**`, `**${readable(usd)}**`),
    '',
    `Cost per promoted improvement: ${perPromotion}.`,
    '',
  ];
}

function failuresSection(status: SearchStatus): string[] {
  const failed = status.trials.filter((trial) => trial.state === 'failed');
  const lines = ['## Failures', '', ...(failed.length ? [] : ['No trial failed.', ''])];
  for (const trial of failed) {
    lines.push(`### Trial ${trial.n}: ${trial.failure_class ?? 'error'}`, '');
    if (trial.reason) lines.push(trial.reason, '');
    const tail = trial.log_tail?.trimEnd().split('\n').slice(-10).join('\n');
    lines.push(...(tail ? ['The last 10 lines of its log:', '', ...fenced(tail)] : ['No log was kept.']), '');
  }
  return lines;
}

function mergeSection(status: SearchStatus): string[] {
  const base = status.trials.find((trial) => trial.n === 0);
  const baseCommit = base?.commit ?? base?.parent_commit ?? status.incumbent.commit;
  if (status.incumbent.trial === 0) {
    const text = `The code to keep is the base commit: no change was kept (\`${baseCommit}\`).`;
    return ['## The result', '', text, '', ...fenced(`git log -1 ${baseCommit}`, 'sh'), ''];
  }
  const target = status.incumbent.branch ?? status.incumbent.commit;
  const commands = [
    `git log --oneline ${baseCommit}..${target}   # the kept commits, newest first`,
    `git diff ${baseCommit}...${target}           # their combined change`,
    `git merge ${target}`,
  ];
  const text = `The code to merge is trial ${status.incumbent.trial}: \`${target}\` (commit \`${status.incumbent.commit}\`).`;
  return ['## The result', '', text, '', ...fenced(commands.join('\n'), 'sh'), ''];
}

function wallTime(seconds: number): string {
  if (seconds >= 3600) return `${readable(seconds / 3600)} h`;
  return seconds >= 60 ? `${readable(seconds / 60)} min` : `${readable(seconds)} s`;
}

function summary(status: SearchStatus): string {
  const count = (...states: Trial['state'][]) =>
    attempts(status).filter((trial) => states.includes(trial.state)).length;
  const { usage } = status;
  return [
    `Search campaign \`${status.campaign_id}\` is **${status.stage}**`,
    status.end_reason ? ` (it stopped proposing: ${status.end_reason}).` : '.',
    ` It ran ${attempts(status).length} trial(s) after the base: ${count('promoted')} promoted,`,
    ` ${count('not_better')} not better, ${count('failed')} failed, ${count('rejected', 'dropped')} rejected or dropped`,
    ` and ${count('proposed', 'running', 'deciding')} still open.`,
    ` Usage: ${readable(usage.gpu_hours)} GPU hours of training, $${readable(usage.llm_usd)} for the proposer's model`,
    ` and ${wallTime(usage.wall_seconds)} of wall time.`,
  ].join('');
}

function reportMarkdown(campaign: SearchCampaignSpec, status: SearchStatus): string {
  const { metric, goal, seeds, min_delta, alpha } = status.objective;
  return [
    `# ${campaign.name}`,
    '',
    summary(status),
    '',
    '## Objective',
    '',
    `\`${metric}\`, goal ${goal} (${goal === 'max' ? 'higher' : 'lower'} is better). Each trial trains ${seeds} fresh seed(s); it replaces the incumbent when its mean is better by at least ${min_delta} (min_delta, in the metric's units) and, with two or more seeds, a one-sided Welch test gives p < ${alpha} (alpha).`,
    '',
    ...chainSection(status),
    `![${metric} per trial](search-chart.svg)`,
    '',
    `Each point is a trial's mean of \`${metric}\` (kept or discarded), its bar the 95% interval over seeds; the step line is the incumbent's mean.`,
    '',
    ...trialsSection(status),
    ...costsSection(status),
    ...failuresSection(status),
    ...mergeSection(status),
  ].join('\n');
}

/**
 * Writes the search report into `<runsRoot>/<campaign_id>/`, each file atomically so a reader never sees half
 * of one. The chart renders first, as the step most likely to throw, and the Markdown last, so a report on
 * disk means the files it links to are there.
 */
export async function writeSearchReport(input: SearchReportInput): Promise<SearchReportFiles> {
  const { campaign, status } = input;
  const dir = path.join(input.runsRoot, campaign.campaign_id);
  await fs.mkdir(dir, { recursive: true });
  const files: SearchReportFiles = {
    reportPath: path.join(dir, 'search-report.md'),
    trialsPath: path.join(dir, 'trials.tsv'),
    chartPath: path.join(dir, 'search-chart.svg'),
    jsonPath: path.join(dir, 'search.json'),
  };
  await writeFileAtomic(files.chartPath, await renderSvg(searchChart(status)));
  await writeFileAtomic(files.trialsPath, trialsTsv(status.trials));
  await writeFileAtomic(
    files.jsonPath,
    JSON.stringify({ campaign_id: campaign.campaign_id, status }, null, 2) + '\n',
  );
  await writeFileAtomic(files.reportPath, reportMarkdown(campaign, status));
  return files;
}
