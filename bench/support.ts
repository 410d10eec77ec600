/**
 * Small helpers for benchmarks: bounded waits, bounded concurrency, summary statistics, /proc readings and
 * child processes that are always killed at the end. (bench/devserver.ts predates this file and keeps its
 * own copies.)
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startTsProcess, type RunningProcess } from '../tests/support/processes';

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

export function killAllNow(): void {
  for (const p of children) if (!hasExited(p)) p.child.kill('SIGKILL');
}

/** Rejects when `p` exits, with the end of its output. */
export function exitOf(p: RunningProcess, name: string): Promise<never> {
  return new Promise((_, reject) =>
    p.child.once('exit', (code, signal) =>
      reject(new Error(`the ${name} exited (${signal ?? code}) during the run:\n${p.output().slice(-2000)}`)),
    ),
  );
}
