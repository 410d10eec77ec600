/**
 * `labline reproduce <id>` (a new experiment from a run's record, run like `start`) and `labline diff <a> <b>`
 * (what differs between two runs' records). Both read the records in the settings' runs_root, so they run on a
 * machine that sees the run directories.
 */
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { gitMaybe } from '../activities/code/git';
import {
  recordDifferences,
  ResultsPayload,
  type RecordDifference,
  type ReproducibilityRecord,
  type ReproductionCheck,
} from '../experiment';
import { commandSummary } from './cli-registry';
import { runExperimentLocally, serverOptionHelp, type StartOptions } from './cli-start';
import type { GlobalOptions } from './cli-experiments';
import { jsonOutput } from './json-output';
import { recordOf, reproductionSpec } from './reproduction';
import { loadSettings } from './settings';

interface ReproduceOptions extends StartOptions {
  id?: string;
  compare?: boolean;
  allowDataChange?: boolean;
  allowCodeChange?: boolean;
}

export function addReproduceCommands(program: Command): void {
  program
    .command('reproduce <id>')
    .description(commandSummary('reproduce'))
    .option('--id <new-id>', 'the new experiment id (default: <id>-repro-<n>, the first not yet used)')
    .option(
      '--compare',
      "compare the reproduction's metrics with the original's (the primary metric and every metric of the " +
        "spec's reproducibility.tolerance) in its report; exit code 1 when one is outside its tolerance",
    )
    .option('--allow-data-change', "reproduce although a data set's content changed since the original ran")
    .option(
      '--allow-code-change',
      'reproduce a run whose code was not pinned (no git repository, or uncommitted changes that were not ' +
        'recorded): train its commit, or the working directory, as they are now',
    )
    .option('--yes', 'approve the launch and publish reviews without asking (as `start --yes`)')
    .option('--accept-unmet', 'accept unmet deliverables without asking')
    .option('--as <user>', 'who approves; default: $LABLINE_USER or the OS user')
    .option('--server <kind>', serverOptionHelp, 'auto')
    .option('--quiet', 'print stage changes, questions and the result only')
    .action(async (id: string, options: ReproduceOptions) => {
      const settings = loadSettings(program.opts<GlobalOptions>().config);
      const record = await recordOf(settings.runsRoot, id);
      // Checked before anything starts: code and data that cannot be had start nothing.
      const spec = await reproductionSpec(record, {
        runsRoot: settings.runsRoot,
        id: options.id,
        allowDataChange: options.allowDataChange,
        allowCodeChange: options.allowCodeChange,
        compare: options.compare,
      });
      console.log(
        `Reproducing ${record.run_name} as ${spec.experiment_id}: commit ` +
          `${spec.code?.pinned?.commit.slice(0, 12) ?? '(working directory)'}` +
          `${spec.code?.pinned?.patch ? ' with its recorded patch' : ''}, ${Object.keys(spec.data).length} data set(s).`,
      );
      await runExperimentLocally(program, spec, options, 'reproduce');
      if (!options.compare) return;
      const checks = await reproductionChecksOf(path.join(settings.runsRoot, spec.experiment_id));
      if (checks === undefined) {
        console.log('No comparison: the reproduction did not complete.');
        return;
      }
      for (const line of formatChecks(checks)) console.log(line);
      if (checks.some((check) => !check.within)) process.exitCode = 1;
    });

  program
    .command('diff <id-a> <id-b>')
    .description(commandSummary('diff'))
    .option('--json', 'print the differences as JSON')
    .action(async (a: string, b: string, options: { json?: boolean }) => {
      const settings = loadSettings(program.opts<GlobalOptions>().config);
      const [left, right] = [await recordOf(settings.runsRoot, a), await recordOf(settings.runsRoot, b)];
      const differences = recordDifferences(left, right);
      const diffStat = await codeDiffStat(left, right);
      if (options.json) {
        console.log(
          jsonOutput({ a: left.run_name, b: right.run_name, differences, code_diff_stat: diffStat ?? null }),
        );
        return;
      }
      for (const line of formatDifferences(left, right, differences, diffStat)) console.log(line);
    });
}

/** `git diff --shortstat` between the two commits, when both ran from one repository and they differ. */
async function codeDiffStat(a: ReproducibilityRecord, b: ReproducibilityRecord): Promise<string | undefined> {
  const repository = a.code.repository;
  if (!repository || repository !== b.code.repository || !a.code.commit || !b.code.commit) return undefined;
  if (a.code.commit === b.code.commit) return undefined;
  const stat = await gitMaybe(['diff', '--shortstat', a.code.commit, b.code.commit], {
    cwd: repository,
  }).catch(() => undefined);
  return stat?.trim() || undefined;
}

/** The differences, grouped by section, as `labline diff` prints them. */
export function formatDifferences(
  a: ReproducibilityRecord,
  b: ReproducibilityRecord,
  differences: readonly RecordDifference[],
  diffStat: string | undefined,
): string[] {
  const lines = [`${a.run_name}  →  ${b.run_name}`];
  if (differences.length === 0) {
    lines.push('The records agree: same code, command, config, environment and data.');
    return lines;
  }
  const width = Math.min(28, Math.max(...differences.map((difference) => difference.item.length)));
  let section = '';
  for (const difference of differences) {
    if (difference.section !== section) {
      section = difference.section;
      lines.push('', section);
      if (section === 'code' && diffStat) lines.push(`  ${'diff'.padEnd(width)}  ${diffStat}`);
    }
    lines.push(
      `  ${difference.item.padEnd(width)}  ${difference.a ?? '(none)'}  →  ${difference.b ?? '(none)'}`,
    );
  }
  return lines;
}

/** The reproduction checks of a finished reproduction, from its results.json; undefined without one. */
async function reproductionChecksOf(runDir: string): Promise<ReproductionCheck[] | undefined> {
  try {
    const results = ResultsPayload.parse(
      JSON.parse(await readFile(path.join(runDir, 'results.json'), 'utf8')),
    );
    return results.reproduction;
  } catch {
    return undefined;
  }
}

/** One line per compared metric. */
export function formatChecks(checks: readonly ReproductionCheck[]): string[] {
  if (checks.length === 0)
    return [
      'Nothing to compare: the original has none of the compared metrics (primary metric, tolerances).',
    ];
  return [
    checks.every((check) => check.within)
      ? 'Reproduced: every compared metric is within its tolerance.'
      : 'Not reproduced: some metrics are outside their tolerance.',
    ...checks.map(
      (check) =>
        `  ${check.within ? 'ok ' : 'OUT'}  ${check.metric}: original ${check.original}, reproduced ` +
        `${check.reproduced ?? 'missing'}` +
        (check.difference === null ? '' : ` (difference ${check.difference}, tolerance ${check.tolerance})`),
    ),
  ];
}
