/**
 * `labline list`: experiments and campaigns from visibility (running first, then the most recently closed), as aligned columns for people or as
 * versioned JSON for scripts.
 */
import type { Command } from 'commander';
import { commandSummary } from './cli-registry';
import { Stage } from '../experiment';
import { withClient } from './cli-experiments';
import { JSON_VERSION } from './json-output';
import { listExperiments, type ExperimentListing } from './experiments';

/** Without `--all`, experiments closed longer ago than this are left out. */
const RECENT_DAYS = 7;

export function addListCommand(program: Command): void {
  program
    .command('list')
    .description(commandSummary('list'))
    .option('--stage <stage>', `only those at this stage (${Stage.options.join(', ')})`)
    .option('--limit <n>', 'at most this many', '50')
    .option('--all', `also those closed more than ${RECENT_DAYS} days ago`)
    .option('--json', `print {"version": ${JSON_VERSION}, "experiments": [...]} (see docs/cli.md)`)
    .action(async (options: { stage?: string; limit: string; all?: boolean; json?: boolean }) => {
      const stage = parseStage(options.stage);
      const limit = parseLimit(options.limit);
      const now = new Date();
      const closedAfter = options.all ? undefined : new Date(now.getTime() - RECENT_DAYS * 86_400_000);
      await withClient(program, async (client) => {
        const rows = await listExperiments(client, { stage, limit, closedAfter });
        if (options.json) {
          console.log(JSON.stringify(listingJson(rows, now), null, 2));
          return;
        }
        if (rows.length === 0) {
          console.log(
            options.all
              ? 'no experiments'
              : `no experiments running or closed in the last ${RECENT_DAYS} days (--all for older ones)`,
          );
          return;
        }
        console.log(formatListing(rows, now, { color: useColor() }));
      });
    });
}

function parseStage(value: string | undefined): Stage | undefined {
  if (value === undefined) return undefined;
  const parsed = Stage.safeParse(value);
  if (!parsed.success) throw new Error(`--stage ${value}: use one of ${Stage.options.join(', ')}.`);
  return parsed.data;
}

function parseLimit(value: string): number {
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 1)
    throw new Error(`--limit ${value}: give a whole number of at least 1.`);
  return limit;
}

/** Colour only for a person at a terminal, and never when NO_COLOR is set (https://no-color.org). */
function useColor(): boolean {
  return Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
}

/** `list --json`: one object per row, times in ISO 8601, durations in seconds. */
export function listingJson(rows: ExperimentListing[], now: Date) {
  return {
    version: JSON_VERSION,
    experiments: rows.map((row) => ({
      id: row.experimentId,
      kind: row.kind,
      name: row.name ?? null,
      stage: row.stage,
      status: row.status.toLowerCase(),
      started: row.startTime.toISOString(),
      closed: row.closeTime?.toISOString() ?? null,
      duration_seconds: Math.round(durationMs(row, now) / 1000),
      primary_metric: row.primaryMetric ?? null,
      waiting_for: row.waitingFor ?? null,
    })),
  };
}

const COLUMNS = ['ID', 'KIND', 'STAGE', 'STARTED', 'DURATION', 'PRIMARY', 'WAITING FOR'] as const;

/** Aligned columns under a header; the stage in colour when `color` is set. */
export function formatListing(rows: ExperimentListing[], now: Date, options: { color: boolean }): string {
  const cells = rows.map((row) => [
    row.experimentId,
    row.kind,
    row.stage,
    formatStarted(row.startTime, now),
    formatDuration(durationMs(row, now)),
    row.primaryMetric === undefined ? '' : formatMetric(row.primaryMetric),
    row.waitingFor ? `${row.waitingFor} decision` : '',
  ]);
  const widths = COLUMNS.map((title, column) =>
    Math.max(title.length, ...cells.map((row) => row[column]!.length)),
  );
  const line = (values: readonly string[], paint?: (column: number, text: string) => string) =>
    values
      .map((value, column) => {
        const padded = column === values.length - 1 ? value : value.padEnd(widths[column]!);
        return paint ? paint(column, padded) : padded;
      })
      .join('  ')
      .trimEnd();
  const stageColumn = COLUMNS.indexOf('STAGE');
  return [
    line(COLUMNS),
    ...cells.map((values) =>
      line(values, (column, text) => (options.color && column === stageColumn ? colourStage(text) : text)),
    ),
  ].join('\n');
}

function durationMs(row: ExperimentListing, now: Date): number {
  return (row.closeTime ?? now).getTime() - row.startTime.getTime();
}

/** Today's as a time of day, older ones as a date: what a person scanning the list needs. */
function formatStarted(started: Date, now: Date): string {
  const iso = started.toISOString();
  return iso.slice(0, 10) === now.toISOString().slice(0, 10) ? `${iso.slice(11, 16)} UTC` : iso.slice(0, 10);
}

export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, '0')}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h${String(minutes % 60).padStart(2, '0')}m`;
  return `${Math.floor(hours / 24)}d${String(hours % 24).padStart(2, '0')}h`;
}

function formatMetric(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toPrecision(4);
}

const ANSI = { green: 32, red: 31, yellow: 33, cyan: 36, dim: 2 } as const;

function colourStage(text: string): string {
  const stage = text.trim();
  const code =
    stage === 'completed'
      ? ANSI.green
      : stage === 'failed'
        ? ANSI.red
        : stage.endsWith('_review')
          ? ANSI.yellow
          : stage === 'rejected' || stage === 'cancelled'
            ? ANSI.dim
            : ANSI.cyan;
  return `\u001b[${code}m${text}\u001b[0m`;
}
