/**
 * `labline validate <spec> [--run entity/project/run_id] [--json]`: checks an existing run against a spec's
 * deliverables, without a workflow or a Temporal, and prints the ValidationReport. Exit code 0 when every
 * required deliverable is met, 1 when one is not, 2 on errors (a bad spec, a refused key, no such run).
 */
import type { Command } from 'commander';
import * as path from 'node:path';
import type { ExperimentSpec, ValidationReport } from '../experiment';
import { checkDeliverables, type DeliverablesCheck } from '../activities/tracking/deliverable-check';
import { LocalTracker } from '../activities/tracking/local';
import { runRefFor, type RunRef, type RunTracker } from '../activities/tracking/run-tracker';
import { WandbSettings } from '../activities/tracking/wandb-settings';
import { wandbTrackerFromSettings } from '../activities/tracking/wandb-worker';
import type { GlobalOptions } from './cli-experiments';
import { loadSettings, type ResolvedSettings } from './settings';
import { loadSpecFile } from './spec-file';

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
  const lines = [`Run ${report.run ?? '(unknown)'} (${check.state})`];
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

export function addValidateCommand(program: Command): void {
  program
    .command('validate <spec>')
    .description(
      "Check an existing run against the spec's deliverables, without starting a workflow. " +
        'Exit code 0: all required deliverables met; 1: some not met; 2: an error.',
    )
    .option(
      '--run <entity/project/run_id>',
      "the W&B run to check (default: the spec's tracker; W&B run id = the experiment id)",
    )
    .option('--json', 'print the ValidationReport as JSON')
    .action(async (specFile: string, options: { run?: string; json?: boolean }) => {
      const settings = loadSettings(program.opts<GlobalOptions>().config);
      const spec = loadSpecFile(specFile);
      const target = targetOf(spec, options.run, settings);
      try {
        const check = await checkDeliverables(target.tracker, target.ref, spec.deliverables, {
          ...(target.runDir !== undefined ? { runDir: target.runDir } : {}),
        });
        console.log(options.json ? JSON.stringify(check.report, null, 2) : formatValidation(check));
        process.exitCode = check.report.passed ? 0 : 1;
      } finally {
        await target.tracker.close?.();
      }
    });
}
