/**
 * Benchmark of search campaigns (src/workflows/search.ts) on the example repository
 * (examples/search/make-repo.js), on the embedded dev server and on the real Temporal dev server, side by side.
 *
 *   npx tsx bench/search.ts                                  (npm run bench:search; both servers)
 *   npx tsx bench/search.ts --trials 10 --control-trials 10 --embedded-only
 *
 * Flags: `--trials N` (default 30: the main search's `budget.max_trials`), `--control-trials N` (default 20),
 * `--seeds N` (default 3: `objective.seeds` of both searches), `--servers=embedded,temporal-cli` (the default;
 * `--embedded-only` = `--servers=embedded`), `--result=<file>` (default bench/results/search.json).
 *
 * On each server, with one server, worker and runs folder:
 * 1. The main search: the offline proposer, autonomous, the launch gate off, `--trials` trials at concurrency 2,
 *    each trial training `--seeds` fresh seeds as child experiments. Per trial that trained, its orchestration
 *    overhead: its wall time (the Trial's `proposed_at` → `ended_at`, i.e. from the proposal's arrival in the
 *    workflow to the decision) minus the training time of its longest seed (the seeds train in parallel, so the
 *    longest one is what the trial had to wait for); a seed's training time is its trainer process's own time,
 *    from the supervisor's record (exit.json `startedAt` → `endedAt`), as bench/pipeline.ts measures it. Then
 *    the improvement of the objective from the first incumbent (trial 0, the base) to the last, with a 95%
 *    Welch interval of the difference.
 * 2. The control search: a scripted proposer whose every proposal changes nothing the trainer reads, the same
 *    seeds, `min_delta` and `alpha`. Every promotion is then a false one; the false-promotion rate (promoted /
 *    trials that trained) must be at most `alpha`. Each proposal adds a new file (trainer/notes/control-<n>.md)
 *    rather than a comment in trainer/hyperparameters.js: a comment written against the base stops applying as
 *    soon as one control trial is (falsely) promoted, since the incumbent's file then differs, and the later
 *    control trials would be refused instead of measured. A new file applies to any incumbent.
 * Then the ratios embedded / real of the overhead and wall times.
 *
 * The server (`labline devserver` or `temporal server start-dev`, in memory) and the worker
 * (bench/pipeline-worker.ts, built like `labline worker`, production settings) each run in their own process;
 * this process is the client. Writes bench/results/search.json (or the `--result` file).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { ExitRecord, readRecord } from '../src/activities/training/local-attempt';
import { readCampaignFile } from '../src/client/campaigns';
import { searchCampaignFrom, submitSearch } from '../src/client/search';
import {
  ExperimentSpec,
  meanConfidenceInterval,
  sampleVariance,
  studentTQuantile,
  welchTTest,
  type MeanEstimate,
  type SearchCampaignSpec,
  type SearchStatus,
  type Trial,
  type TrialState,
} from '../src/experiment';
import type { SearchResult } from '../src/workflows';
import { ratio } from './comparison';
import {
  bundleLablineWorkflows,
  runFolder,
  withLablineStack,
  workflowSettings,
  type LablineStack,
} from './labline-stack';
import { selectServers, type ServerKind, type ServerTarget } from './stack';
import {
  loadAverages,
  machineInfo,
  resultHeader,
  round,
  runBenchmark,
  sourceState,
  stats,
  withTimeout,
  writeResult,
  type Stats,
} from './support';

const root = path.resolve(__dirname, '..');
const makeRepoScript = path.join(root, 'examples/search/make-repo.js');
const HYPERPARAMETERS = 'trainer/hyperparameters.js';
const CONTROL_NOTES = 'trainer/notes';

/** The value of `--name N` or `--name=N`, if given. */
function flag(name: string): string | undefined {
  const args = process.argv;
  const index = args.indexOf(`--${name}`);
  if (index >= 0) return args[index + 1];
  return args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

/** A positive whole number from `--name`, or `fallback`. */
function countFlag(name: string, fallback: number): number {
  const given = flag(name);
  if (given === undefined) return fallback;
  const n = Number(given);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} ${given}: give a positive whole number`);
  return n;
}

const resultFile = path.resolve(flag('result') ?? path.join(__dirname, 'results', 'search.json'));
const selection = selectServers();

const parameters = {
  servers: selection.targets.map((t) => t.kind),
  /** Both searches: the objective as examples/search/campaign.yaml sets it, but for the number of seeds. */
  objective: {
    metric: 'eval/accuracy',
    goal: 'max' as const,
    seeds: countFlag('seeds', 3),
    min_delta: 0.005,
    alpha: 0.05,
  },
  concurrency: 2,
  trialTimeLimit: '2m',
  main: { proposer: 'offline' as const, maxTrials: countFlag('trials', 30) },
  control: { proposer: 'scripted' as const, maxTrials: countFlag('control-trials', 20) },
  /** The watcher's poll interval: Labline's default. */
  trainingPollIntervalMs: 250,
  heartbeatTimeoutSeconds: 30,
  timeouts: {
    processStartMs: 60_000,
    processStopMs: 15_000,
    trainerCleanupMs: 30_000,
    /** Per trial of a search, on top of a minute: a bound, not an estimate. */
    searchPerTrialMs: 60_000,
    wholeRunMs: 60 * 60_000,
  },
};

// ---------------------------------------------------------------------------------------------------
// The example repository and the two search campaigns

/** A fresh example repository at `dir` (examples/search/make-repo.js). */
function makeSearchRepo(dir: string): void {
  execFileSync(process.execPath, [makeRepoScript, dir], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** The control's proposal n: a new file the trainer never reads, so the trial trains the incumbent's code. */
function noOpProposal(n: number): { hypothesis: string; diff: string } {
  const file = `${CONTROL_NOTES}/control-${n}.md`;
  return {
    hypothesis: `control trial ${n}: a note the trainer never reads changes nothing`,
    diff: [
      `diff --git a/${file} b/${file}`,
      'new file mode 100644',
      '--- /dev/null',
      `+++ b/${file}`,
      '@@ -0,0 +1 @@',
      `+Control trial ${n} of the search benchmark: this file changes nothing the trainer reads.`,
      '',
    ].join('\n'),
  };
}

/**
 * A search campaign file beside (not in) the repository, loaded as `labline campaign` loads it: the base is
 * the repository's experiment.yaml (its checked-out commit pinned at submit).
 */
function searchCampaign(
  folder: string,
  repo: string,
  id: string,
  search: { proposer: Record<string, unknown>; maxTrials: number; editable: string[] },
): SearchCampaignSpec {
  const file = path.join(folder, `${id}.yaml`);
  writeFileSync(
    file,
    toYaml({
      campaign_id: id,
      name: `bench ${id}`,
      base: path.join(repo, 'experiment.yaml'),
      search: {
        editable: search.editable,
        objective: parameters.objective,
        trial: { time_limit: parameters.trialTimeLimit },
        budget: { max_trials: search.maxTrials },
        concurrency: parameters.concurrency,
        // Nobody is asked anything: promotions are announced (on the worker's console).
        autonomy: 'autonomous',
        proposer: search.proposer,
      },
      approvals: { launch: { enabled: false } },
    }),
  );
  return searchCampaignFrom(readCampaignFile(file), file);
}

function mainCampaign(folder: string, repo: string): SearchCampaignSpec {
  return searchCampaign(folder, repo, 'camp-bench-search-main', {
    proposer: { kind: 'offline' },
    maxTrials: parameters.main.maxTrials,
    editable: [HYPERPARAMETERS],
  });
}

function controlCampaign(folder: string, repo: string): SearchCampaignSpec {
  const proposals = Array.from({ length: parameters.control.maxTrials }, (_, i) => noOpProposal(i + 1));
  writeFileSync(path.join(folder, 'control-proposals.yaml'), toYaml({ proposals }));
  return searchCampaign(folder, repo, 'camp-bench-search-control', {
    proposer: { kind: 'scripted', file: 'control-proposals.yaml' },
    maxTrials: parameters.control.maxTrials,
    editable: [HYPERPARAMETERS, `${CONTROL_NOTES}/*.md`],
  });
}

// ---------------------------------------------------------------------------------------------------
// One search, run and read back

/** Nearest-rank percentile, as `stats` computes its p50 and p95. */
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return round(sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN);
}

const withP90 = (values: number[]): Stats & { p90: number } => ({
  ...stats(values),
  p90: percentile(values, 90),
});

/** One seed's trainer process time (exit.json startedAt → endedAt), in ms; undefined when it never ran. */
function trainingMsOf(runsRoot: string, experimentId: string): number | undefined {
  const attemptsDir = path.join(runsRoot, experimentId, 'attempts');
  let attempts: string[];
  try {
    attempts = readdirSync(attemptsDir).filter((name) => !name.startsWith('.'));
  } catch {
    return undefined;
  }
  // One training attempt per trial seed (trialExperimentSpec sets max_training_attempts 1).
  const times = attempts.map((attempt) => {
    const exit = readRecord(path.join(attemptsDir, attempt, 'exit.json'), ExitRecord);
    return exit?.startedAt ? Date.parse(exit.endedAt) - Date.parse(exit.startedAt) : 0;
  });
  return times.reduce((sum, ms) => sum + ms, 0);
}

/** One trial that trained, as this benchmark sees it. */
interface TrialTiming {
  n: number;
  state: TrialState;
  /** proposed_at → ended_at (workflow clock). */
  wallMs: number;
  /** Per seed, in the trial's seed order: the trainer process's time. */
  trainingMsBySeed: (number | null)[];
  longestSeedMs: number;
  sumOfSeedsMs: number;
  /** wallMs − longestSeedMs. */
  overheadMs: number;
  mean?: number;
  improvement?: number;
  p_value?: number | null;
}

const TRAINED: readonly TrialState[] = ['promoted', 'not_better', 'failed'];

function trialTiming(runsRoot: string, trial: Trial): TrialTiming {
  const bySeed = trial.experiment_ids.map((id) => trainingMsOf(runsRoot, id) ?? null);
  const known = bySeed.filter((ms): ms is number => ms !== null);
  const wallMs = Date.parse(trial.ended_at!) - Date.parse(trial.proposed_at);
  const longestSeedMs = known.length ? Math.max(...known) : 0;
  return {
    n: trial.n,
    state: trial.state,
    wallMs,
    trainingMsBySeed: bySeed,
    longestSeedMs,
    sumOfSeedsMs: known.reduce((sum, ms) => sum + ms, 0),
    overheadMs: wallMs - longestSeedMs,
    ...(trial.estimate ? { mean: round(trial.estimate.mean, 4) } : {}),
    ...(trial.versus
      ? {
          improvement: round(trial.versus.improvement, 4),
          p_value: trial.versus.p_value === null ? null : round(trial.versus.p_value, 4),
        }
      : {}),
  };
}

interface SearchRun {
  campaignId: string;
  result: SearchResult;
  status: SearchStatus;
  /** submitSearch → the workflow's result, this process's clock. */
  wallMs: number;
  /** 1-minute load average before and after: other work on the machine skews the timings. */
  loadAverage: [number, number];
}

async function runSearch(stack: LablineStack, campaign: SearchCampaignSpec): Promise<SearchRun> {
  const loadBefore = round(os.loadavg()[0]!, 2);
  const started = Date.now();
  const { handle } = await submitSearch({
    client: stack.client,
    campaign,
    settings: workflowSettings(
      stack.runsRoot,
      parameters.trainingPollIntervalMs,
      parameters.heartbeatTimeoutSeconds,
    ),
  });
  const trials = campaign.search.budget.max_trials;
  const result = await withTimeout(
    handle.result(),
    60_000 + trials * parameters.timeouts.searchPerTrialMs,
    `search ${campaign.campaign_id}`,
  );
  const wallMs = Date.now() - started;
  if (result.stage !== 'completed')
    throw new Error(`${campaign.campaign_id} ended ${result.stage}: ${result.end_reason ?? 'no reason'}`);
  // The search writes its whole status beside its runs (runs/<campaign>/search.json) before it ends.
  const written = JSON.parse(
    readFileSync(path.join(stack.runsRoot, campaign.campaign_id, 'search.json'), 'utf8'),
  ) as { status: SearchStatus };
  return {
    campaignId: campaign.campaign_id,
    result,
    status: written.status,
    wallMs,
    loadAverage: [loadBefore, round(os.loadavg()[0]!, 2)],
  };
}

/** Trials by state, trial 0 (the base) left out. */
function trialCounts(status: SearchStatus) {
  const proposed = status.trials.filter((t) => t.n > 0);
  const count = (state: TrialState) => proposed.filter((t) => t.state === state).length;
  return {
    proposed: proposed.length,
    trained: proposed.filter((t) => TRAINED.includes(t.state)).length,
    promoted: count('promoted'),
    notBetter: count('not_better'),
    failed: count('failed'),
    rejected: count('rejected'),
  };
}

/** What both searches report: counts, overhead and the time of each trial that trained. */
function timingsOf(runsRoot: string, run: SearchRun) {
  const timings = run.status.trials
    .filter((t) => t.n > 0 && TRAINED.includes(t.state) && t.ended_at)
    .map((t) => trialTiming(runsRoot, t));
  const base = run.status.trials[0];
  return {
    campaignId: run.campaignId,
    endReason: run.result.end_reason ?? null,
    wallMs: run.wallMs,
    loadAverage: run.loadAverage,
    trials: trialCounts(run.status),
    overheadMs: withP90(timings.map((t) => t.overheadMs)),
    trialWallMs: withP90(timings.map((t) => t.wallMs)),
    trainingMs: {
      longestSeed: withP90(timings.map((t) => t.longestSeedMs)),
      sumOfSeeds: withP90(timings.map((t) => t.sumOfSeedsMs)),
    },
    baseTrainingMsBySeed: base?.experiment_ids.map((id) => trainingMsOf(runsRoot, id) ?? null) ?? [],
    perTrial: timings,
    rejectedReasons: run.status.trials
      .filter((t) => t.state === 'rejected')
      .map((t) => `${t.n}: ${t.reason}`),
  };
}

// ---------------------------------------------------------------------------------------------------
// The improvement (main search) and the false promotions (control)

const estimateOf = (e: MeanEstimate) => ({
  n: e.n,
  mean: round(e.mean, 4),
  ci95: e.lower === null || e.upper === null ? null : [round(e.lower, 4), round(e.upper, 4)],
});

/**
 * The last incumbent against the first (trial 0): means, difference, and the 95% Welch interval of the
 * difference, difference ± t(0.975, Welch df) · √(s₁²/n₁ + s₀²/n₀), from Labline's own statistics (the df
 * from welchTTest, the variances from sampleVariance, the quantile from studentTQuantile).
 */
function improvementOf(status: SearchStatus) {
  const first = status.trials[0]!;
  const last = status.trials[status.incumbent.trial]!;
  const sign = status.objective.goal === 'max' ? 1 : -1;
  const common = {
    metric: status.objective.metric,
    goal: status.objective.goal,
    promotions: status.trials.filter((t) => t.n > 0 && t.state === 'promoted').length,
    firstIncumbent: {
      trial: first.n,
      values: first.values,
      ...estimateOf(meanConfidenceInterval(first.values)),
    },
    lastIncumbent: {
      trial: last.n,
      hypothesis: last.hypothesis,
      values: last.values,
      ...estimateOf(meanConfidenceInterval(last.values)),
    },
  };
  if (last.n === first.n)
    return { ...common, difference: 0, interval95: null, welch: null, note: 'no trial was promoted' };
  if (first.values.length < 2 || last.values.length < 2)
    return {
      ...common,
      difference: null,
      interval95: null,
      welch: null,
      note: 'fewer than two seeds a side',
    };
  const welch = welchTTest(last.values, first.values);
  const standardError = Math.sqrt(
    sampleVariance(last.values) / last.values.length + sampleVariance(first.values) / first.values.length,
  );
  const half = welch.df === null ? 0 : studentTQuantile(0.975, welch.df) * standardError;
  return {
    ...common,
    /** last − first, in the metric's units (positive is better for goal max). */
    difference: round(welch.difference, 4),
    improvement: round(sign * welch.difference, 4),
    interval95: [round(welch.difference - half, 4), round(welch.difference + half, 4)],
    welch: {
      t: welch.t === null ? null : round(welch.t, 3),
      df: welch.df === null ? null : round(welch.df, 2),
      pTwoSided: welch.p_value === null ? null : round(welch.p_value, 5),
    },
  };
}

/** Control: every promotion is a false one. */
function falsePromotionsOf(status: SearchStatus) {
  const counts = trialCounts(status);
  const { alpha } = status.objective;
  const rate = counts.trained ? counts.promoted / counts.trained : NaN;
  const decided = status.trials.filter((t) => t.n > 0 && t.versus);
  const belowAlpha = decided.filter((t) => t.versus!.p_value !== null && t.versus!.p_value < alpha).length;
  return {
    alpha,
    minDelta: status.objective.min_delta,
    promoted: counts.promoted,
    trained: counts.trained,
    falsePromotionRate: round(rate, 4),
    atMostAlpha: rate <= alpha,
    /** The Welch test alone (p < alpha), whatever min_delta says: the test's own false-positive rate. */
    testRejections: belowAlpha,
    testFalsePositiveRate: decided.length ? round(belowAlpha / decided.length, 4) : null,
    promotedTrials: status.trials.filter((t) => t.n > 0 && t.state === 'promoted').map((t) => t.n),
    incumbentValues: status.trials[0]!.values,
  };
}

// ---------------------------------------------------------------------------------------------------
// One server

async function measureServer(target: ServerTarget, bundlePath: string, dir: string) {
  const label = target.kind;
  const folder = path.join(dir, label);
  mkdirSync(folder, { recursive: true });
  const repo = path.join(folder, 'repo');
  makeSearchRepo(repo);
  const main = mainCampaign(folder, repo);
  // As made now: the example (its trainer, its arguments) is edited by others between runs.
  const base = ExperimentSpec.parse(main.base);
  const repository = {
    trainingCommand: [base.training.command, ...base.training.args].join(' '),
    hyperparameters: readFileSync(path.join(repo, HYPERPARAMETERS), 'utf8'),
    deliverables: base.deliverables.map((d) => d.name),
  };
  const control = controlCampaign(folder, repo);
  const stackOptions = { dir, label, bundlePath, server: target, timeouts: parameters.timeouts };
  return await withLablineStack(stackOptions, async (stack) => {
    console.log(`${label}: main search, offline proposer, ${parameters.main.maxTrials} trials…`);
    const mainRun = await runSearch(stack, main);
    console.log(
      `${label}: main search done in ${round(mainRun.wallMs / 1000)} s (${mainRun.result.end_reason})`,
    );
    console.log(`${label}: control search, ${parameters.control.maxTrials} no-op proposals…`);
    const controlRun = await runSearch(stack, control);
    console.log(`${label}: control search done in ${round(controlRun.wallMs / 1000)} s`);
    return {
      server:
        target.kind === 'embedded'
          ? 'embedded: `labline devserver --port 0 --log-level warn`, in memory'
          : `real: \`${target.cli} server start-dev\`, in memory`,
      maxCachedWorkflows: stack.maxCachedWorkflows,
      repository,
      main: { ...timingsOf(stack.runsRoot, mainRun), improvement: improvementOf(mainRun.status) },
      control: {
        ...timingsOf(stack.runsRoot, controlRun),
        falsePromotions: falsePromotionsOf(controlRun.status),
      },
    };
  });
}

type ServerResult = Awaited<ReturnType<typeof measureServer>>;

// ---------------------------------------------------------------------------------------------------
// Run, compare, record, summarise

function compare(results: Partial<Record<ServerKind, ServerResult>>) {
  const e = results.embedded;
  const r = results['temporal-cli'];
  const of = (pick: (s: ServerResult) => number) => ratio(e && pick(e), r && pick(r));
  return {
    'main overhead p50 (embedded / real)': of((s) => s.main.overheadMs.p50),
    'main overhead p90 (embedded / real)': of((s) => s.main.overheadMs.p90),
    'main overhead mean (embedded / real)': of((s) => s.main.overheadMs.mean),
    'main trial wall p50 (embedded / real)': of((s) => s.main.trialWallMs.p50),
    'main search wall time (embedded / real)': of((s) => s.main.wallMs),
    'control overhead p50 (embedded / real)': of((s) => s.control.overheadMs.p50),
    'control overhead p90 (embedded / real)': of((s) => s.control.overheadMs.p90),
    'control search wall time (embedded / real)': of((s) => s.control.wallMs),
  };
}

/**
 * Whether both servers saw the same trials end the same way with the same means. They should: seeds, code and
 * proposals are the same, and the trainer is deterministic; a difference would point at the orchestration.
 */
function sameOutcomes(results: Partial<Record<ServerKind, ServerResult>>): boolean | 'not measured' {
  const e = results.embedded;
  const r = results['temporal-cli'];
  if (!e || !r) return 'not measured';
  const outcomes = (s: ServerResult) =>
    JSON.stringify([...s.main.perTrial, ...s.control.perTrial].map((t) => [t.n, t.state, t.mean, t.p_value]));
  return outcomes(e) === outcomes(r);
}

const seconds = (ms: number) => `${round(ms / 1000, 1)} s`;

function summary(
  results: Partial<Record<ServerKind, ServerResult>>,
  comparison: Record<string, number | null>,
  sameOutcomesOnBothServers: boolean | 'not measured',
) {
  const { seeds, alpha, min_delta } = parameters.objective;
  const lines = [
    `Search campaigns on the example repository: ${seeds} seeds per trial, concurrency ${parameters.concurrency}, ` +
      `min_delta ${min_delta}, alpha ${alpha}; overhead = trial wall (proposed_at → ended_at) − longest seed's trainer time`,
  ];
  for (const [kind, s] of Object.entries(results)) {
    const m = s.main;
    const c = s.control;
    const imp = m.improvement;
    lines.push(
      `  ${kind}:`,
      `    main (offline, budget ${parameters.main.maxTrials} trials, ended: ${m.endReason}):`,
      `      ${m.trials.proposed} proposed, ${m.trials.trained} trained, ${m.trials.promoted} ` +
        `promoted, ${m.trials.notBetter} not better, ${m.trials.failed} failed, ${m.trials.rejected} rejected in ` +
        `${seconds(m.wallMs)}; overhead per trial p50 ${m.overheadMs.p50} ms, p90 ${m.overheadMs.p90} ms ` +
        `(trial wall p50 ${m.trialWallMs.p50} ms, longest seed p50 ${m.trainingMs.longestSeed.p50} ms)`,
      `      improvement: trial 0 ${imp.firstIncumbent.mean} → trial ${imp.lastIncumbent.trial} ` +
        `${imp.lastIncumbent.mean}: ${imp.difference ?? 'n/a'}` +
        (imp.interval95 ? ` (95% Welch interval ${imp.interval95[0]} … ${imp.interval95[1]})` : ''),
      `    control (${parameters.control.maxTrials} no-op proposals): ${c.falsePromotions.promoted} of ` +
        `${c.falsePromotions.trained} promoted = ${c.falsePromotions.falsePromotionRate} ` +
        `(${c.falsePromotions.atMostAlpha ? '≤' : 'ABOVE'} alpha ${alpha}; Welch p < alpha in ` +
        `${c.falsePromotions.testRejections}); overhead p50 ${c.overheadMs.p50} ms, p90 ${c.overheadMs.p90} ms, ` +
        `wall ${seconds(c.wallMs)}`,
      `    load average (1 min) main ${m.loadAverage.join(' → ')}, control ${c.loadAverage.join(' → ')}`,
    );
  }
  for (const [name, value] of Object.entries(comparison)) lines.push(`  ${name}: ${value ?? 'not measured'}`);
  lines.push(`  same trial outcomes on both servers: ${sameOutcomesOnBothServers}`);
  return lines.join('\n');
}

/** The temporary folder of this run (bundle, repositories, runs), removed by `cleanUp`. */
const { dir, cleanUp } = runFolder('labline-bench-search-', parameters.timeouts.trainerCleanupMs);

async function main(): Promise<void> {
  const loadAtStart = loadAverages();
  const started = Date.now();
  try {
    console.log('bundling workflow code…');
    const bundlePath = await bundleLablineWorkflows(dir);
    const results: Partial<Record<ServerKind, ServerResult>> = {};
    for (const target of selection.targets)
      results[target.kind] = await measureServer(target, bundlePath, dir);
    const comparison = compare(results);
    const sameOutcomesOnBothServers = sameOutcomes(results);
    const report = {
      ...resultHeader('search'),
      source: sourceState(),
      machine: {
        ...machineInfo(),
        loadAverageAtStart: loadAtStart,
        loadAverageAtEnd: loadAverages(),
      },
      temporalCli: selection.temporalCliVersion ?? null,
      wholeRunMs: Date.now() - started,
      parameters: {
        ...parameters,
        repository:
          'made by examples/search/make-repo.js for each server: trainer/run.js runs examples/trainer/train.js ' +
          "with trainer/hyperparameters.js; the base is the repository's experiment.yaml (servers.<kind>." +
          'repository: its training command, hyperparameters and deliverables as made in this run)',
        main: {
          ...parameters.main,
          editable: [HYPERPARAMETERS],
          autonomy: 'autonomous',
          approvals: { launch: { enabled: false } },
        },
        control: {
          ...parameters.control,
          editable: [HYPERPARAMETERS, `${CONTROL_NOTES}/*.md`],
          autonomy: 'autonomous',
          approvals: { launch: { enabled: false } },
          proposal: `creates ${CONTROL_NOTES}/control-<n>.md (one line), which nothing reads`,
        },
        topology:
          'per server: the server process (in memory, 127.0.0.1), one bench/pipeline-worker.ts process ' +
          '(createLablineWorkers with production settings: labline, labline-gpu with 4 activity slots (no GPU ' +
          'ids), labline-agents queues; local launcher, console notifier, offline agents) and the client in ' +
          'this process. Both searches run one after the other on the same server and worker, main first.',
      },
      definitions: {
        trialWallMs:
          "the Trial's proposed_at → ended_at (workflow time): from the moment the proposal reached the " +
          'workflow (after the proposer answered) through the checks, the commit, the seeds as child ' +
          'experiments, to the decision. The proposer call before it (searchContext, proposeTrial) is not in it.',
        trainingMs:
          "a seed's trainer process time, exit.json startedAt → endedAt (the supervisor's record); per trial " +
          'the longest seed (they train in parallel) and the sum of the seeds.',
        overheadMs:
          "per trial that trained (promoted, not_better or failed): trialWallMs − the longest seed's trainingMs. " +
          "It holds the search's own activities (check, commit), each child experiment's start, code " +
          'worktree, launch, watcher, validation and end, the waits for GPU-queue slots and for CPU (all six ' +
          'trainers of two trials share two cores), and the decision.',
        improvement:
          'the last incumbent against the first (trial 0, the base): difference of means (last − first), and ' +
          'its 95% interval difference ± t(0.975, Welch–Satterthwaite df) × √(s_last²/n + s_first²/n).',
        falsePromotionRate:
          'control search: promoted trials / trials that trained; every proposal is a no-op, so each promotion ' +
          'is false. testFalsePositiveRate: trials whose one-sided Welch p was below alpha / decided trials, ' +
          'whatever min_delta said.',
        percentiles: 'nearest rank',
      },
      servers: results,
      comparison,
      sameOutcomesOnBothServers,
      notes: [
        'Each trial trains fresh seeds (trial n: n·seeds … n·seeds+seeds−1), so the control measures the ' +
          'promotion rule as the search applies it, seed luck included.',
        'Control trials are compared with the same incumbent values (trial 0, until a false promotion), so ' +
          'their promotions are not independent: an unlucky base makes several likely at once. With 20 trials ' +
          'a rate of at most 0.05 means at most one promotion.',
        'The offline proposer scales one constant of trainer/hyperparameters.js per trial by one of six factors ' +
          "and skips an edit whose new line an earlier diff already added, on whatever incumbent; the check's " +
          'duplicate hash (added and removed lines, no context, no parent commit) would refuse it too. With the ' +
          "example's three constants it can run out before the trial budget (endReason, trials.proposed): a " +
          'promotion adds only the new values of the promoted constant, never the earlier edits of the others ' +
          'on top of it.',
        'Seeds, code and proposals are the same on both servers and the trainer is deterministic, so both ' +
          'servers measure the same trial outcomes (sameOutcomesOnBothServers): the improvement and the ' +
          'false-promotion rate are one realisation, not two; only the timings differ.',
        'The machine is shared with other work: loadAverageAtStart and loadAverageAtEnd say how much.',
      ],
    };
    writeResult(resultFile, report, summary(results, comparison, sameOutcomesOnBothServers));
  } finally {
    await cleanUp();
  }
}

runBenchmark(main, { wholeRunMs: parameters.timeouts.wholeRunMs, cleanUp });
