/**
 * Live training progress in a terminal: a bar with step/total, the latest metrics, elapsed time and ETA, and
 * the trainer's last lines, redrawn in place. It reads the run directory itself (metrics.jsonl, the trainer's
 * log) twice a second, so what it shows does not wait for a heartbeat; where the run directory cannot be
 * read, it shows the progress the heartbeats carry.
 */
import * as path from 'node:path';
import { trainerLogPath } from '../activities/training/log-path';
import { tailLines } from '../activities/training/local';
import { RUN_FILES } from '../activities/tracking/local';
import type { ExperimentStatus, HyperparameterValue } from '../experiment';
import { formatDuration } from './cli-list';

/** The numbers one line of progress is made of. */
export interface ProgressSnapshot {
  launch: number;
  step?: number;
  /** Steps the run will take, when the spec says (see {@link totalStepsOf}). */
  total?: number;
  /** The latest row of metrics (name → value). */
  metrics: Record<string, number>;
  /** When the launch started, epoch ms. */
  startedAt: number;
  now: number;
}

/** The config keys that, as a positive whole number, give the run's length in steps. */
const TOTAL_STEP_KEYS = ['steps', 'max_steps', 'total_steps', 'num_steps'] as const;

/** The run's length in steps from the spec's config (`steps`, `max_steps`, `total_steps` or `num_steps`). */
export function totalStepsOf(config: Record<string, HyperparameterValue>): number | undefined {
  for (const key of TOTAL_STEP_KEYS) {
    const value = config[key];
    if (typeof value === 'number' && Number.isInteger(value) && value > 0) return value;
  }
  return undefined;
}

const BAR_WIDTH = 24;
/** The metrics shown beside the bar: the loss first, then evaluation metrics; at most this many. */
const SHOWN_METRICS = 3;

/** One line: `launch 1 [#########-----] 150/300 steps  train/loss 0.3120  eval/accuracy 0.9120  0m02s elapsed, ETA 2s`. */
export function formatProgressLine(snapshot: ProgressSnapshot): string {
  const { step, total } = snapshot;
  const elapsedMs = Math.max(0, snapshot.now - snapshot.startedAt);
  const parts = [`  launch ${snapshot.launch}`];
  if (step !== undefined && total !== undefined) {
    const done = Math.min(1, Math.max(0, step / total));
    const filled = Math.round(done * BAR_WIDTH);
    parts.push(`[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${step}/${total} steps`);
  } else {
    parts.push(step === undefined ? 'starting' : `step ${step}`);
  }
  for (const [name, value] of shownMetrics(snapshot.metrics)) parts.push(`${name} ${formatMetric(value)}`);
  let time = `${formatDuration(elapsedMs)} elapsed`;
  if (step !== undefined && total !== undefined && step > 0 && step < total) {
    time += `, ETA ${formatDuration((elapsedMs / step) * (total - step))}`;
  }
  parts.push(time);
  return parts.join('  ');
}

function shownMetrics(metrics: Record<string, number>): [string, number][] {
  const names = Object.keys(metrics).filter(
    (name) => !name.startsWith('_') && Number.isFinite(metrics[name]),
  );
  const rank = (name: string) =>
    /loss/.test(name) && name.startsWith('train') ? 0 : name.startsWith('eval') ? 1 : 2;
  return names
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
    .slice(0, SHOWN_METRICS)
    .map((name) => [name, metrics[name]!]);
}

function formatMetric(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(4);
}

/**
 * A few lines at the bottom of the terminal, redrawn in place; ordinary lines printed through it go above
 * them. Only for a terminal: on anything else, print lines as they come.
 */
export class LiveArea {
  private shown = 0;

  constructor(private readonly out: NodeJS.WritableStream & { columns?: number }) {}

  /** Replaces the area with `lines` (each cut to the terminal's width, so that none wraps). */
  render(lines: string[]): void {
    // A pseudo-terminal may report 0 columns: take that as unknown.
    const width = Math.max(20, (this.out.columns || 100) - 1);
    this.clear();
    for (const line of lines)
      this.out.write(`${line.length > width ? `${line.slice(0, width - 1)}…` : line}\n`);
    this.shown = lines.length;
  }

  /** Prints `line` above the area (the area is drawn again at the next render). */
  print(line: string): void {
    this.clear();
    this.out.write(`${line}\n`);
  }

  /** Removes the area: the cursor goes back up over its lines, erasing each. */
  clear(): void {
    if (this.shown === 0) return;
    this.out.write(`\u001b[${this.shown}A\u001b[0J`);
    this.shown = 0;
  }
}

/** How often the live display reads the run directory. */
const REFRESH_MS = 500;
/** The trainer's last lines shown under the bar. */
const LOG_LINES = 3;

/**
 * Keeps the live area in step with the experiment: while a launch runs, a progress line and the trainer's
 * last lines; nothing otherwise. `update` with each new status; `pause` before asking in the terminal.
 */
export class TrainingDisplay {
  private timer: NodeJS.Timeout | undefined;
  private status: ExperimentStatus | undefined;
  private refreshing = false;
  private seen: Record<string, number> = {};
  private seenLaunch: number | undefined;

  constructor(
    private readonly area: LiveArea,
    private readonly total: number | undefined,
  ) {}

  /** Prints a line above the live area. */
  print(line: string): void {
    this.area.print(line);
  }

  update(status: ExperimentStatus): void {
    this.status = status;
    const attempt = status.attempts.at(-1);
    const running =
      status.stage === 'training' && attempt !== undefined && !attempt.outcome && !status.waiting;
    if (!running) {
      this.pause();
      return;
    }
    this.timer ??= setInterval(() => void this.refresh(), REFRESH_MS);
    void this.refresh();
  }

  /** Stops redrawing and removes the area (until the next `update` of a running launch). */
  pause(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.area.clear();
  }

  private async refresh(): Promise<void> {
    const status = this.status;
    const attempt = status?.attempts.at(-1);
    if (!status || !attempt || this.refreshing) return;
    this.refreshing = true;
    try {
      const runDir = status.links.run_dir;
      const rows = await recentMetricRows(runDir);
      const row = rows.at(-1);
      // The run directory first (it is as fresh as the trainer writes it); the heartbeat's step and loss else.
      // Evaluation metrics come every few steps: each keeps its last value until a newer one comes.
      if (this.seenLaunch !== attempt.launch) this.seen = {};
      this.seenLaunch = attempt.launch;
      if (rows.length === 0 && attempt.loss !== undefined) this.seen['train/loss'] = attempt.loss;
      for (const recent of rows) {
        for (const [name, value] of Object.entries(recent))
          if (typeof value === 'number') this.seen[name] = value;
      }
      const step = typeof row?._step === 'number' ? row._step : attempt.step;
      const log = await tailLines(trainerLogPath(runDir, attempt), LOG_LINES).catch(() => '');
      if (!this.timer) return; // paused while reading
      this.area.render([
        formatProgressLine({
          launch: attempt.launch,
          ...(step !== undefined ? { step } : {}),
          ...(this.total !== undefined ? { total: this.total } : {}),
          metrics: this.seen,
          startedAt: Date.parse(attempt.started_at),
          now: Date.now(),
        }),
        ...log
          .split('\n')
          .map(asShown)
          .filter(Boolean)
          .map((line) => `    │ ${line}`),
      ]);
    } finally {
      this.refreshing = false;
    }
  }
}

/** The last rows of the run's metrics.jsonl (unreadable or partial lines skipped); none when it is not there. */
async function recentMetricRows(runDir: string): Promise<Record<string, unknown>[]> {
  const text = await tailLines(path.join(runDir, RUN_FILES.metrics), 100).catch(() => '');
  const rows: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    try {
      const row: unknown = JSON.parse(line);
      if (row && typeof row === 'object' && !Array.isArray(row)) rows.push(row as Record<string, unknown>);
    } catch {
      // A line the trainer is still writing.
    }
  }
  return rows;
}

/**
 * A trainer's line as a terminal would end up showing it, with nothing that moves the cursor: what follows its
 * last carriage return (a progress bar redrawn in place, like tqdm's), without escape sequences or other control
 * characters, tabs as spaces. The live area counts lines to redraw itself; these would break the count.
 */
export function asShown(line: string): string {
  const ESC = String.fromCharCode(27);
  const last = line.slice(line.lastIndexOf('\r') + 1);
  return last
    .replace(new RegExp(`${ESC}\\[[0-9;?]*[ -/]*[@-~]`, 'g'), '')
    .replace(/\t/g, '  ')
    .replace(/\p{Cc}/gu, '');
}
