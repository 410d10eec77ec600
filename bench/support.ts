/**
 * What every benchmark needs: bounded waits, bounded concurrency, summary statistics, /proc readings, child
 * processes that are always killed at the end, the run's exit paths (time limit, signals) and the result
 * file's common fields. Nothing here loads Temporal or Labline, so a benchmark that measures its own
 * process (bench/wandb.ts) does not pay for them.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startTsProcess, type RunningProcess } from '../tests/support/processes';

const root = path.resolve(__dirname, '..');

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export const round = (value: number, digits = 1) => Number(value.toFixed(digits));

/** Rejects after `ms`; the losing promise's later rejection is swallowed so it cannot crash the run. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  promise.catch(() => undefined);
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `fn(0..count-1)` with at most `concurrency` calls in flight; results in index order. */
export async function pool<T>(
  count: number,
  concurrency: number,
  fn: (index: number) => Promise<T>,
): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const index = next++;
      results[index] = await fn(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  return results;
}

export interface Stats {
  n: number;
  mean: number;
  p50: number;
  p95: number;
  max: number;
  min: number;
}

/** Mean and nearest-rank percentiles, rounded to 0.1 ms (or whatever unit the values are in). */
export function stats(values: number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
  const mean = sorted.reduce((sum, v) => sum + v, 0) / sorted.length;
  return {
    n: sorted.length,
    mean: round(mean),
    p50: round(rank(50)),
    p95: round(rank(95)),
    max: round(sorted.at(-1) ?? NaN),
    min: round(sorted[0] ?? NaN),
  };
}

export const formatStats = (s: Stats) => `mean ${s.mean}, p50 ${s.p50}, p95 ${s.p95}, max ${s.max} ms`;

export const meanOf = (values: number[]) => round(values.reduce((sum, v) => sum + v, 0) / values.length);

/** Mean of every numeric field of `records`, by key (a key missing from a record counts as 0). */
export function meanByKey(records: Record<string, number>[]): Record<string, number> {
  const keys = [...new Set(records.flatMap((r) => Object.keys(r)))];
  return Object.fromEntries(keys.map((k) => [k, meanOf(records.map((r) => r[k] ?? 0))]));
}

/** Current and peak resident set size of a process, in MiB, from /proc/<pid>/status. */
export function memoryOf(pid: number): { rssMiB: number; peakRssMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: round(kib('VmRSS') / 1024), peakRssMiB: round(kib('VmHWM') / 1024) };
}

const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU seconds a process has used, from /proc/<pid>/stat (fields 14 and 15). */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces; the fields after its closing parenthesis do not.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

// ---------------------------------------------------------------------------------------------------
// Child processes: every one is tracked so that it is killed at the end, even on error or timeout

const children: RunningProcess[] = [];

export function spawnTracked(script: string, args: string[]): RunningProcess {
  const child = startTsProcess(script, args);
  children.push(child);
  return child;
}

export const hasExited = (p: RunningProcess) => p.child.exitCode !== null || p.child.signalCode !== null;

/** SIGTERM, so the process shuts down cleanly; SIGKILL if it has not exited within `graceMs`. */
export async function stopProcess(p: RunningProcess, graceMs: number): Promise<void> {
  if (hasExited(p)) return;
  const exited = new Promise<void>((resolve) => p.child.once('exit', () => resolve()));
  p.child.kill('SIGTERM');
  try {
    await withTimeout(exited, graceMs, `process ${p.child.pid} to exit`);
  } catch {
    await p.kill('SIGKILL');
  }
}

// Processes started by other means (the real Temporal server, through src/client/temporal-cli-server.ts):
// how to kill each at once.
const otherKills: (() => void)[] = [];

/** Has `killAllNow` also call `kill`, which must SIGKILL a process this module did not spawn, if alive. */
export function trackKill(kill: () => void): void {
  otherKills.push(kill);
}

export function killAllNow(): void {
  for (const p of children) if (!hasExited(p)) p.child.kill('SIGKILL');
  for (const kill of otherKills) kill();
}

/** Rejects when `p` exits, with the end of its output. */
export function exitOf(p: RunningProcess, name: string): Promise<never> {
  return new Promise((_, reject) =>
    p.child.once('exit', (code, signal) =>
      reject(new Error(`the ${name} exited (${signal ?? code}) during the run:\n${p.output().slice(-2000)}`)),
    ),
  );
}

// ---------------------------------------------------------------------------------------------------
// The run: however it ends, the children die and the process exits

/**
 * Runs a benchmark's `main` and exits: 0 when it resolves; 1 when it fails or the whole run exceeds
 * `wholeRunMs`; 130 on SIGINT or SIGTERM. On the last three every child is killed at once, then `cleanUp`
 * (bounded, and safe to call more than once) runs before the exit.
 */
export function runBenchmark(
  main: () => Promise<void>,
  options: { wholeRunMs: number; cleanUp?: () => Promise<void> },
): void {
  const exitAfterCleanUp = (code: number) => {
    killAllNow();
    void Promise.resolve(options.cleanUp?.()).finally(() => process.exit(code));
  };

  setTimeout(() => {
    console.error(`bench: the run exceeded ${options.wholeRunMs} ms; killing everything`);
    exitAfterCleanUp(1);
  }, options.wholeRunMs).unref();

  // `on`, not `once`: Ctrl-C reaches this process twice (from the terminal and relayed by tsx), and a second
  // signal without a handler would kill it in the middle of the clean-up. Clean-up runs only once anyway.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => exitAfterCleanUp(130));
  }

  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      exitAfterCleanUp(1);
    },
  );
}

// ---------------------------------------------------------------------------------------------------
// Result files: what was measured, where, and with what

/** The fields a result file starts with: the benchmark, when, and the Node and Temporal SDK versions. */
export function resultHeader(benchmark: string) {
  return { benchmark, date: new Date().toISOString(), node: process.version, temporalSdk: sdkVersion() };
}

function sdkVersion(): string {
  const pkg = path.join(root, 'node_modules/@temporalio/worker/package.json');
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}

/** The commit measured, and how many files under src/ differ from it (others' uncommitted work counts). */
export function sourceState(): { commit: string; uncommittedFilesUnderSrc: number } | string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8' });
    return {
      commit: git('rev-parse', 'HEAD').trim(),
      uncommittedFilesUnderSrc: git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).length,
    };
  } catch {
    return 'not a git checkout';
  }
}

export function machineInfo() {
  return {
    platform: `${os.platform()} ${os.release()}`,
    arch: os.arch(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    totalMemoryMiB: Math.round(os.totalmem() / 1024 / 1024),
  };
}

/** The 1, 5 and 15 minute load averages: other work on the machine skews latencies, these say how much. */
export const loadAverages = () => os.loadavg().map((l) => round(l, 2));

/** Writes the result file, prints the summary and says where the file is. */
export function writeResult(file: string, report: unknown, summary: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  console.log(summary);
  console.log(`wrote ${path.relative(root, file)}`);
}
