/**
 * W&B validation benchmark: how long checking deliverables against a W&B run takes, and how much memory it
 * holds, for runs of 1k, 100k and 1M history rows served by the fake W&B (in its own process).
 *
 * - `checks`: contains_keys (history and summary), thresholds on `summary` and `final`, matches_expected,
 *   an artifact that must exist: answered from the run's summary and `historyKeys`, so their cost must not
 *   grow with the history.
 * - `history scan`: a `best_min` threshold, which needs every logged value of its metric: streamed a page
 *   at a time, so time grows with the rows and memory does not.
 *
 * Run: `npx tsx bench/wandb.ts`. Writes bench/results/wandb.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Deliverables, type Deliverable } from '../src/experiment';
import { checkDeliverables } from '../src/activities/tracking/deliverable-check';
import { WandbTracker } from '../src/activities/tracking/wandb';
import { killAllNow, round, spawnTracked, stats, stopProcess } from './support';
import { BENCH_RUNS } from './wandb-server';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const REPEATS = { checks: 7, scan: 3 };
const PAGE_SIZE = 1000;

const checks: Deliverable[] = Deliverables.parse([
  { name: 'curves', type: 'contains_keys', keys: ['train_loss', 'eval_loss'], in: 'history' },
  { name: 'summary-keys', type: 'contains_keys', keys: ['accuracy'] },
  { name: 'accuracy', type: 'threshold', metric: 'accuracy', op: '>=', value: 0.9 },
  { name: 'final-loss', type: 'threshold', metric: 'train_loss', op: '<', value: 2, aggregate: 'final' },
  { name: 'config', type: 'matches_expected', expected: { learning_rate: 0.0003 } },
  { name: 'model', type: 'exists', artifact: 'model-a1b2c3d4' },
]);
const scan: Deliverable[] = Deliverables.parse([
  { name: 'best-eval', type: 'threshold', metric: 'eval_loss', op: '<', value: 2, aggregate: 'best_min' },
]);

interface Measurement {
  ms: ReturnType<typeof stats>;
  requests: Record<string, number>;
  passed: boolean;
  /** Largest heap growth over the baseline seen during the runs (sampled every 5 ms, after a GC), MiB. */
  peakHeapGrowthMiB: number;
  /** Largest resident set size of the benchmark process seen during the runs, MiB. */
  peakRssMiB: number;
}

async function measure(
  tracker: WandbTracker,
  url: string,
  runId: string,
  deliverables: Deliverable[],
  repeats: number,
): Promise<Measurement> {
  const times: number[] = [];
  let requests: Record<string, number> = {};
  let passed = true;
  gc();
  const baseline = process.memoryUsage().heapUsed;
  let peakHeap = 0;
  let peakRss = 0;
  const sample = () => {
    const usage = process.memoryUsage();
    peakHeap = Math.max(peakHeap, usage.heapUsed - baseline);
    peakRss = Math.max(peakRss, usage.rss);
  };
  const sampler = setInterval(sample, 5);
  try {
    for (let i = 0; i < repeats; i += 1) {
      await fetch(`${url}/__fake/reset`, { method: 'POST' });
      const started = performance.now();
      const { report } = await checkDeliverables(
        tracker,
        { experimentId: runId, entity: 'acme-ml', project: 'llm-finetune', runId },
        deliverables,
      );
      times.push(performance.now() - started);
      sample();
      passed &&= report.passed;
      const operations = (await (await fetch(`${url}/__fake/operations`)).json()) as string[];
      requests = {};
      for (const op of operations) requests[op] = (requests[op] ?? 0) + 1;
    }
  } finally {
    clearInterval(sampler);
  }
  return {
    ms: stats(times),
    requests,
    passed,
    peakHeapGrowthMiB: round(peakHeap / 1048576),
    peakRssMiB: round(peakRss / 1048576),
  };
}

function commit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const server = spawnTracked(path.join(__dirname, 'wandb-server.ts'), []);
  const [, url, key] = (await server.waitFor(/FAKE_WANDB (\S+) (\S+)/, 60_000)) as unknown as [
    string,
    string,
    string,
  ];
  const tracker = new WandbTracker({ baseUrl: url, apiKey: key, historyPageSize: PAGE_SIZE });
  const results: Record<string, unknown>[] = [];
  try {
    // Warm up the JIT and the connection pool, so the first size is not charged for them.
    await measure(tracker, url, 'bench-1k', [...checks, ...scan], 3);
    for (const [runId, rows] of Object.entries(BENCH_RUNS)) {
      const constant = await measure(tracker, url, runId, checks, REPEATS.checks);
      const scanned = await measure(tracker, url, runId, scan, REPEATS.scan);
      const row = {
        historyRows: rows,
        checks: constant,
        historyScan: { ...scanned, rowsPerSecond: Math.round(rows / (scanned.ms.p50 / 1000)) },
      };
      results.push(row);
      console.log(
        `${String(rows).padStart(8)} rows: checks p50 ${constant.ms.p50} ms (${JSON.stringify(constant.requests)}), ` +
          `peak heap +${constant.peakHeapGrowthMiB} MiB; best_min scan p50 ${scanned.ms.p50} ms, ` +
          `${row.historyScan.rowsPerSecond} rows/s, ${scanned.requests.SampledHistoryPage ?? 0} pages, ` +
          `peak heap +${scanned.peakHeapGrowthMiB} MiB, peak RSS ${scanned.peakRssMiB} MiB`,
      );
    }
  } finally {
    await tracker.close();
    await stopProcess(server, 5000);
    killAllNow();
  }
  const requestSets = results.map((r) => JSON.stringify((r.checks as Measurement).requests));
  const output = {
    benchmark: 'wandb',
    date: new Date().toISOString(),
    node: process.version,
    source: { commit: commit() },
    machine: {
      platform: `${os.platform()} ${os.release()}`,
      arch: os.arch(),
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      totalMemoryMiB: Math.round(os.totalmem() / 1048576),
    },
    parameters: {
      historyPageSize: PAGE_SIZE,
      repeats: REPEATS,
      checks: checks.map((d) => `${d.name} (${d.type})`),
      historyScan: scan.map((d) => `${d.name} (${d.type}, best_min)`),
      fake: 'tests/support/fake-wandb.ts in a child process on 127.0.0.1; histories generated lazily',
    },
    results,
    conclusions: {
      checksRequestsIndependentOfHistoryLength: new Set(requestSets).size === 1,
      checksP50MsByRows: Object.fromEntries(
        results.map((r) => [r.historyRows, (r.checks as Measurement).ms.p50]),
      ),
      scanP50MsByRows: Object.fromEntries(
        results.map((r) => [r.historyRows, (r.historyScan as Measurement).ms.p50]),
      ),
      scanPeakHeapGrowthMiBByRows: Object.fromEntries(
        results.map((r) => [r.historyRows, (r.historyScan as Measurement).peakHeapGrowthMiB]),
      ),
    },
  };
  const file = path.join(__dirname, 'results', 'wandb.json');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(output, null, 2)}\n`);
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}

main().catch((error: unknown) => {
  killAllNow();
  console.error(error);
  process.exitCode = 1;
});
