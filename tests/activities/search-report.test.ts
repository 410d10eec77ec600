import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  promotionDecision,
  SearchCampaignSpec,
  trialBranch,
  trialEstimate,
  trialSeeds,
  type SearchStatus,
  type Trial,
} from '../../src/experiment';
import { incumbentSteps, writeSearchReport } from '../../src/activities/search/report';

const CAMPAIGN = SearchCampaignSpec.parse({
  campaign_id: 'camp-lr-search',
  name: 'Learning-rate search',
  base: { experiment_id: 'exp-base' },
  search: {
    editable: ['train.py'],
    objective: { metric: 'val_acc', goal: 'max', seeds: 3, min_delta: 0.005 },
    budget: { max_trials: 6 },
  },
});
const OBJECTIVE = CAMPAIGN.search.objective;
const DIFF = (n: number) => `--- a/train.py\n+++ b/train.py\n@@ -1 +1 @@\n-lr = 0.1\n+lr = 0.0${n}\n`;

/** A trial with the statistics the workflow would compute: estimate from `values`, decision against `against`. */
function trial(
  n: number,
  fields: Partial<Trial> & Pick<Trial, 'state' | 'parent_trial'>,
  values: number[] = [],
  against?: number[],
): Trial {
  const edited = n > 0 && values.length > 0;
  return {
    n,
    hypothesis: `hypothesis ${n}`,
    diff: n === 0 ? '' : DIFF(n),
    parent_commit: `c${fields.parent_trial}`.padEnd(40, '0'),
    seeds: trialSeeds(n, OBJECTIVE.seeds),
    experiment_ids: [],
    values,
    estimate: trialEstimate(values),
    versus: against && values.length ? promotionDecision(values, against, OBJECTIVE) : undefined,
    gpu_hours: values.length ? 0.5 : 0,
    llm_usd: n === 0 ? 0 : 0.02,
    proposed_at: '2025-01-01T00:00:00Z',
    ...(edited
      ? {
          commit: `c${n}`.padEnd(40, '0'),
          branch: trialBranch(CAMPAIGN.campaign_id, n),
          check: { files: ['train.py', 'model.py'], added: 1, removed: 1, bytes: 80, hash: `h${n}` },
        }
      : {}),
    ...fields,
  };
}

const BASE = [0.7, 0.71, 0.72];
const T1 = [0.75, 0.76, 0.77];
const T2 = [0.77, 0.78, 0.79];
const T4 = [0.8, 0.81, 0.82];
const LOG = Array.from({ length: 15 }, (_, i) => `log line ${i + 1}`).join('\n') + '\n';

/**
 * Trial 1 and trial 2 both start from the base and are promoted in turn (trial 2 decided last, against trial 1);
 * trial 4 builds on trial 1 and becomes the final incumbent, so the chain is 0 → 1 → 4 and trial 2 is superseded.
 */
function searchStatus(): SearchStatus {
  return {
    kind: 'search',
    campaign_id: CAMPAIGN.campaign_id,
    name: CAMPAIGN.name,
    stage: 'completed',
    autonomy: 'autonomous',
    objective: OBJECTIVE,
    incumbent: { trial: 4, commit: 'c4'.padEnd(40, '0'), branch: trialBranch(CAMPAIGN.campaign_id, 4) },
    trials: [
      trial(0, { state: 'promoted', parent_trial: 0, commit: 'c0'.padEnd(40, '0') }, BASE),
      trial(1, { state: 'promoted', parent_trial: 0, hypothesis: 'lower lr\tby ten\ntimes' }, T1, BASE),
      trial(2, { state: 'promoted', parent_trial: 0 }, T2, T1),
      trial(
        3,
        { state: 'not_better', parent_trial: 1, reason: 'worse | noisier than the incumbent' },
        [0.74, 0.75, 0.76],
        T2,
      ),
      trial(4, { state: 'promoted', parent_trial: 1 }, T4, T2),
      trial(5, {
        state: 'failed',
        parent_trial: 4,
        failure_class: 'out_of_memory',
        reason: 'launch 1 ended out_of_memory',
        log_tail: LOG,
        gpu_hours: 0.1,
      }),
      trial(6, { state: 'rejected', parent_trial: 4, reason: 'touches data.py, which is not editable' }),
    ],
    usage: { trials: 6, gpu_hours: 2.6, llm_usd: 0.12, wall_seconds: 5400 },
    budget: CAMPAIGN.search.budget,
    paused: false,
    end_reason: 'max_trials reached (6 of 6)',
    decisions: [],
  };
}

/** The `## title` section of a Markdown report, up to the next `## ` heading. */
function section(markdown: string, title: string): string {
  const start = markdown.indexOf(`## ${title}`);
  expect(start).toBeGreaterThanOrEqual(0);
  const end = markdown.indexOf('\n## ', start + 1);
  return markdown.slice(start, end < 0 ? undefined : end);
}

function parseTsv(text: string): Record<string, string>[] {
  const [header, ...rows] = text.trimEnd().split('\n');
  const columns = header!.split('\t');
  return rows.map((row) => {
    const cells = row.split('\t');
    expect(cells).toHaveLength(columns.length);
    return Object.fromEntries(columns.map((column, i) => [column, cells[i]!]));
  });
}

describe('writeSearchReport', () => {
  let runsRoot: string;
  beforeEach(() => {
    runsRoot = mkdtempSync(path.join(tmpdir(), 'labline-search-report-'));
  });
  afterEach(() => rmSync(runsRoot, { recursive: true, force: true }));

  test('writes every file into <runsRoot>/<campaign_id>/, creating it', async () => {
    const files = await writeSearchReport({ campaign: CAMPAIGN, runsRoot, status: searchStatus() });
    const dir = path.join(runsRoot, 'camp-lr-search');
    expect(files).toEqual({
      reportPath: path.join(dir, 'search-report.md'),
      trialsPath: path.join(dir, 'trials.tsv'),
      chartPath: path.join(dir, 'search-chart.svg'),
      jsonPath: path.join(dir, 'search.json'),
    });
    const svg = readFileSync(files.chartPath, 'utf8');
    expect(svg).toContain('<svg');
    expect(svg).toContain('val_acc per trial');
    // Whole trial numbers on the x axis: no tick such as 2.5 between trials.
    expect(svg).toMatch(/>6<\/text>/);
    expect(svg).not.toMatch(/>\d+\.5<\/text>/);
    expect(readFileSync(files.reportPath, 'utf8')).toContain('![val_acc per trial](search-chart.svg)');
  });

  test('trials.tsv has one row per trial with its fields, free text flattened and absent values empty', async () => {
    const status = searchStatus();
    const { trialsPath } = await writeSearchReport({ campaign: CAMPAIGN, runsRoot, status });
    const rows = parseTsv(readFileSync(trialsPath, 'utf8'));
    expect(Object.keys(rows[0]!)).toEqual(
      'n state parent_trial hypothesis files added removed seeds mean ci_low ci_high improvement p_value failure_class gpu_hours llm_usd branch commit reason'.split(
        ' ',
      ),
    );
    expect(rows.map((row) => row.n)).toEqual(['0', '1', '2', '3', '4', '5', '6']);
    expect(rows.map((row) => row.state)).toEqual(status.trials.map((t) => t.state));

    const first = rows[1]!;
    const estimate = status.trials[1]!.estimate!;
    expect(first).toMatchObject({
      parent_trial: '0',
      hypothesis: 'lower lr by ten times',
      files: 'train.py,model.py',
      added: '1',
      removed: '1',
      seeds: '3,4,5',
      branch: 'labline/camp-lr-search/trial-1',
      gpu_hours: '0.5',
      llm_usd: '0.02',
    });
    expect(Number(first.mean)).toBeCloseTo(0.76, 6);
    expect(Number(first.ci_low)).toBeCloseTo(estimate.lower!, 5);
    expect(Number(first.ci_high)).toBeCloseTo(estimate.upper!, 5);
    expect(Number(first.improvement)).toBeCloseTo(0.05, 6);
    expect(Number(first.p_value)).toBeGreaterThan(0);
    expect(Number(first.p_value)).toBeLessThan(0.05);
    // Floats rounded to 6 significant digits, so no float noise such as 0.7600000000000001 survives.
    expect(first.mean).toBe('0.76');
    expect(first.ci_low).toBe(String(Number(estimate.lower!.toPrecision(6))));

    expect(rows[5]).toMatchObject({ failure_class: 'out_of_memory', mean: '', improvement: '' });
    expect(rows[6]).toMatchObject({
      state: 'rejected',
      files: '',
      mean: '',
      ci_low: '',
      ci_high: '',
      improvement: '',
      p_value: '',
      reason: 'touches data.py, which is not editable',
    });
  });

  test('the chain lists the final incumbent’s ancestry oldest first and puts the superseded promotion apart', async () => {
    const { reportPath } = await writeSearchReport({ campaign: CAMPAIGN, runsRoot, status: searchStatus() });
    const report = readFileSync(reportPath, 'utf8');
    const chain = section(report, 'Chain of promoted changes');
    const [kept, superseded] = chain.split('### Promoted, later superseded');
    expect(kept).toContain('From the base (trial 0');
    const headings = [...kept!.matchAll(/^### (\d+)\. Trial (\d+)$/gm)].map((m) => [m[1], m[2]]);
    expect(headings).toEqual([
      ['1', '1'],
      ['2', '4'],
    ]);
    expect(kept).toContain('```diff\n' + DIFF(4).trimEnd() + '\n```');
    expect(kept).toContain('`labline/camp-lr-search/trial-4`');
    expect(kept).not.toContain('Trial 2');
    expect(superseded).toContain('Trial 2: hypothesis 2');
    expect(superseded).not.toMatch(/Trial [14]:/);
  });

  test('the summary, costs, failures and merge commands say what was spent and what to merge', async () => {
    const { reportPath } = await writeSearchReport({ campaign: CAMPAIGN, runsRoot, status: searchStatus() });
    const report = readFileSync(reportPath, 'utf8');
    expect(report.startsWith('# Learning-rate search\n')).toBe(true);
    expect(report).toContain(
      'It ran 6 trial(s) after the base: 3 promoted, 1 not better, 1 failed, 1 rejected or dropped',
    );
    expect(report).toContain('2.6 GPU hours of training, $0.12');
    expect(report).toContain('1.5 h of wall time');
    // Trials add up to 2.6 GPU hours and $0.12 over three promotions.
    expect(section(report, 'Costs')).toContain('| **total** |  | **2.6** | **0.12** |');
    expect(section(report, 'Costs')).toContain(
      'Cost per promoted improvement: 0.8667 GPU hours and $0.04 of the proposer',
    );
    const failures = section(report, 'Failures');
    expect(failures).toContain('### Trial 5: out_of_memory');
    expect(failures).toContain('log line 6\n');
    expect(failures).toContain('log line 15\n```');
    expect(failures).not.toContain('log line 5\n');
    const result = section(report, 'The result');
    expect(result).toContain('git merge labline/camp-lr-search/trial-4');
    expect(result).toContain(`git log --oneline ${'c0'.padEnd(40, '0')}..labline/camp-lr-search/trial-4`);
  });

  test('pipes in table cells are escaped so they cannot add columns', async () => {
    const { reportPath } = await writeSearchReport({ campaign: CAMPAIGN, runsRoot, status: searchStatus() });
    const table = section(readFileSync(reportPath, 'utf8'), 'Every trial')
      .split('\n')
      .filter((line) => line.startsWith('|'));
    expect(table.find((line) => line.startsWith('| 3 '))).toContain('worse \\| noisier');
    const columns = (line: string) => line.replace(/\\\|/g, '').split('|').length;
    for (const line of table) expect(columns(line)).toBe(columns(table[0]!));
  });

  test('search.json holds the campaign id and the whole status', async () => {
    const status = searchStatus();
    const { jsonPath } = await writeSearchReport({ campaign: CAMPAIGN, runsRoot, status });
    expect(JSON.parse(readFileSync(jsonPath, 'utf8'))).toEqual(
      JSON.parse(JSON.stringify({ campaign_id: 'camp-lr-search', status })),
    );
  });

  test('with no promotion the costs say so and the result is the base commit', async () => {
    const status: SearchStatus = {
      ...searchStatus(),
      incumbent: { trial: 0, commit: 'c0'.padEnd(40, '0') },
      trials: [
        trial(0, { state: 'promoted', parent_trial: 0, commit: 'c0'.padEnd(40, '0') }, BASE),
        trial(1, { state: 'not_better', parent_trial: 0 }, [0.69, 0.7, 0.71], BASE),
      ],
    };
    const { reportPath, chartPath } = await writeSearchReport({ campaign: CAMPAIGN, runsRoot, status });
    const report = readFileSync(reportPath, 'utf8');
    expect(section(report, 'Costs')).toContain('Cost per promoted improvement: no promotion.');
    expect(section(report, 'Chain of promoted changes')).toContain('No change was kept');
    expect(section(report, 'The result')).toContain('the base commit: no change was kept');
    expect(report).not.toContain('git merge');
    expect(readFileSync(chartPath, 'utf8')).toContain('<svg');
  });
});

describe('incumbentSteps', () => {
  test('follows the best kept mean in the goal’s direction, ignoring discarded trials', () => {
    const trials = searchStatus().trials;
    const steps = incumbentSteps(trials, 'max').map((step) => [step.n, Number(step.mean.toFixed(4))]);
    expect(steps).toEqual([
      [0, 0.71],
      [1, 0.76],
      [2, 0.78],
      [3, 0.78],
      [4, 0.81],
      [5, 0.81],
      [6, 0.81],
    ]);
    // Trial 0 is the first incumbent whatever state the workflow gave it.
    const base = { ...trials[0]!, state: 'not_better' as const };
    expect(incumbentSteps([base, ...trials.slice(1)], 'max')[0]?.n).toBe(0);
    expect(incumbentSteps(trials, 'min').map((step) => Number(step.mean.toFixed(4)))).toEqual(
      Array(7).fill(0.71),
    );
  });
});
