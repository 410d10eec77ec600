/**
 * `labline validate <spec> [--run entity/project/run_id] [--json]`: checks an existing run against a spec's
 * deliverables, without a workflow or a Temporal, and prints the ValidationReport. Exit code 0 when every
 * required deliverable is met, 1 when one is not, 2 on errors (a bad spec, a refused key, no such run, a
 * tracker still unavailable after the retries of the settings' `validation` section). With `--json` the output
 * is always one JSON document: the report, or `{ "error": … }`.
 */
import type { Command } from 'commander';
import { commandSummary } from './cli-registry';
import { setTimeout as sleep } from 'node:timers/promises';
import * as path from 'node:path';
import {
  describeRunLiveness,
  FailureType,
  formatSeconds,
  nextAttempt,
  type Deliverable,
  type ExperimentSpec,
  type ValidationReport,
  type ValidationRetrySettings,
} from '../experiment';
import { checkDeliverables, type DeliverablesCheck } from '../activities/tracking/deliverable-check';
import { LocalTracker } from '../activities/tracking/local';
import { runRefFor, type RunRef, type RunTracker } from '../activities/tracking/run-tracker';
import { TrackerError } from '../activities/tracking/tracker-errors';
import { WandbSettings } from '../activities/tracking/wandb-settings';
import { wandbTrackerFromSettings } from '../activities/tracking/wandb-worker';
import type { GlobalOptions } from './cli-experiments';
import { loadSettings, SettingsError, type ResolvedSettings } from './settings';
import { InvalidSpecError, loadSpecFile } from './spec-file';
import { jsonOutput } from './json-output';

/** A W&B run path as people write it. */
export interface WandbRunPath {
  entity: string;
  project: string;
  runId: string;
}

/**
 * Reads `entity/project/run_id`, `entity/project/runs/run_id`, or a run's web URL
 * (`https://wandb.ai/entity/project/runs/run_id`).
 * @throws Error saying what the path should look like
 */
export function parseWandbRunPath(text: string): WandbRunPath {
  let value = text.trim();
  if (/^https?:\/\//i.test(value)) value = new URL(value).pathname;
  const parts = value
    .split('/')
    .filter((part) => part !== '')
    .map((part) => decodeURIComponent(part));
  const [entity, project, third, fourth] = parts;
  const runId = parts.length === 4 && third === 'runs' ? fourth : parts.length === 3 ? third : undefined;
  if (!entity || !project || !runId) {
    throw new Error(
      `--run "${text}" is not a W&B run; write entity/project/run_id (or paste the run's URL), ` +
        'like acme-ml/llm-finetune/exp-lr-sweep-03',
    );
  }
  return { entity, project, runId };
}

/** The tracker and run ref `validate` reads: `--run` (W&B), else the spec's tracker. */
function targetOf(
  spec: ExperimentSpec,
  run: string | undefined,
  settings: ResolvedSettings,
): { tracker: RunTracker & { close?: () => Promise<void> }; ref: RunRef; runDir?: string } {
  const wandb = (): RunTracker & { close(): Promise<void> } =>
    // A `validate` run names W&B explicitly, so the key is required even without a settings section.
    wandbTrackerFromSettings(settings.wandb ?? WandbSettings.parse({}))!;
  if (run !== undefined) {
    const where = parseWandbRunPath(run);
    return {
      tracker: wandb(),
      ref: {
        experimentId: spec.experiment_id,
        entity: where.entity,
        project: where.project,
        runId: where.runId,
      },
    };
  }
  if (spec.tracker.type === 'wandb') {
    return { tracker: wandb(), ref: runRefFor(spec.tracker, spec.experiment_id) };
  }
  const runDir = path.join(settings.runsRoot, spec.experiment_id);
  return {
    tracker: new LocalTracker({ runsRoot: settings.runsRoot }),
    ref: runRefFor(spec.tracker, spec.experiment_id, runDir),
    runDir,
  };
}

/** The report for people: one line per deliverable, then the verdict. */
export function formatValidation(check: DeliverablesCheck): string {
  const { report } = check;
  const state = report.run_state ? describeRunLiveness(report.run_state) : check.state;
  const lines = [`Run ${report.run ?? '(unknown)'} (${state})`];
  const width = Math.max(...report.results.map((r) => r.name.length), 4);
  for (const result of report.results) {
    const mark = result.passed ? 'pass' : result.required ? 'FAIL' : 'miss';
    lines.push(
      `  ${mark}  ${result.name.padEnd(width)}  ${result.type}${result.required ? '' : ' (optional)'}: ${result.message}`,
    );
    if (!result.passed && !result.message.includes(result.found)) {
      lines.push(`        expected ${result.expected}; found ${result.found}`);
    }
  }
  lines.push(verdict(report));
  return lines.join('\n');
}

function verdict(report: ValidationReport): string {
  const required = report.results.filter((r) => r.required);
  const unmet = required.filter((r) => !r.passed);
  if (report.results.length === 0) return 'The spec declares no deliverables.';
  return unmet.length === 0
    ? `All ${required.length} required deliverable(s) met.`
    : `${unmet.length} of ${required.length} required deliverable(s) not met: ${unmet.map((r) => r.name).join(', ')}.`;
}

/** The check failed: its last error, after how many attempts, and why retrying stopped when it did. */
export class ValidationFailed extends Error {
  override readonly name = 'ValidationFailed';
  constructor(
    readonly error: Error,
    readonly attempts: number,
    readonly gaveUp?: string,
  ) {
    super(gaveUp ? `${error.message}. Gave up: ${gaveUp}.` : error.message, { cause: error });
  }
}

/**
 * Checks the deliverables, retrying while the tracker is unavailable (429, 5xx, timeouts, network) as the
 * settings' `validation` section allows, after the tracker's `Retry-After` when it gave one. Each retry is
 * announced through `log`.
 * @throws ValidationFailed with the last error, when it is not retryable or the retries are used up
 */
export async function checkWithRetries(
  target: { tracker: RunTracker; ref: RunRef; runDir?: string },
  deliverables: readonly Deliverable[],
  retries: ValidationRetrySettings,
  log: (line: string) => void,
): Promise<DeliverablesCheck> {
  const firstStartedAtMs = Date.now();
  for (let attempts = 1; ; attempts += 1) {
    try {
      return await checkDeliverables(target.tracker, target.ref, deliverables, {
        ...(target.runDir !== undefined ? { runDir: target.runDir } : {}),
      });
    } catch (error) {
      if (!(error instanceof Error)) throw error;
      if (!(error instanceof TrackerError) || error.failureType !== FailureType.TrackerUnavailable) {
        throw new ValidationFailed(error, attempts);
      }
      const next = nextAttempt(retries, {
        attempts,
        firstStartedAtMs,
        nowMs: Date.now(),
        retryAfterMs: error.retryAfterMs,
      });
      if (!next.retry) throw new ValidationFailed(error, attempts, next.reason);
      log(error.message);
      log(
        `  attempt ${attempts} of ${retries.max_attempts} failed; trying again in ${formatSeconds(next.delayMs)} s` +
          (next.asked ? ', as the server asked (Retry-After)' : ''),
      );
      await sleep(next.delayMs);
    }
  }
}

/** What `--json` prints when validation could not run: the error's type, its words, and the attempts made. */
export function validationErrorDocument(error: unknown): {
  error: { type: string; message: string; status?: number; attempts?: number };
} {
  const failed = error instanceof ValidationFailed ? error : undefined;
  const cause = failed?.error ?? error;
  const failureType = (cause as { failureType?: unknown } | undefined)?.failureType;
  const type =
    typeof failureType === 'string'
      ? failureType
      : cause instanceof SettingsError
        ? FailureType.InvalidSettings
        : cause instanceof InvalidSpecError
          ? FailureType.InvalidSpec
          : 'Unexpected';
  const status = cause instanceof TrackerError ? cause.status : undefined;
  return {
    error: {
      type,
      message: error instanceof Error ? error.message : String(error),
      ...(status !== undefined ? { status } : {}),
      ...(failed ? { attempts: failed.attempts } : {}),
    },
  };
}

export function addValidateCommand(program: Command): void {
  program
    .command('validate <spec>')
    .description(commandSummary('validate'))
    .option(
      '--run <entity/project/run_id>',
      "the W&B run to check (default: the spec's tracker; W&B run id = the experiment id)",
    )
    .option('--json', 'print the ValidationReport as JSON (an error as {"error": {type, message, …}})')
    .action(async (specFile: string, options: { run?: string; json?: boolean }) => {
      try {
        const settings = loadSettings(program.opts<GlobalOptions>().config);
        const spec = loadSpecFile(specFile);
        const target = targetOf(spec, options.run, settings);
        try {
          const check = await checkWithRetries(target, spec.deliverables, settings.validation, (line) =>
            console.error(line),
          );
          console.log(options.json ? jsonOutput(check.report) : formatValidation(check));
          process.exitCode = check.report.passed ? 0 : 1;
        } finally {
          await target.tracker.close?.();
        }
      } catch (error) {
        if (!options.json) throw error;
        // Scripts read stdout as JSON whatever happened; the exit code still tells an error (2).
        console.log(jsonOutput(validationErrorDocument(error)));
        process.exitCode = 2;
      }
    });
}
