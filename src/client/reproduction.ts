/**
 * `labline reproduce`: a new experiment from a run's reproducibility record, with the same commit and patch,
 * the same resolved command and config, and the same data, checked before anything starts; and the records
 * `labline diff` compares.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import {
  CodeSpec,
  EXPERIMENT_ID_PATTERN,
  ExperimentSpec,
  isWandbArtifact,
  ResultsPayload,
  type RecordedData,
  type ReproducibilityRecord,
} from '../experiment';
import { gitMaybe } from '../activities/code/git';
import { hashDataSet } from '../activities/reproducibility/data-hashes';
import { readReproducibilityRecord } from '../activities/reproducibility/record';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { InvalidSpecError } from './spec-file';

/** A record that cannot be reproduced as asked: the message names what and the option that allows it. */
export class NotReproducibleError extends Error {
  override readonly name = 'NotReproducibleError';
}

/** The run directory of an experiment id or a run name (`exp-x.rerun-…`). */
export function runDirOf(runsRoot: string, idOrRunName: string): string {
  return path.join(runsRoot, idOrRunName);
}

/** Reads a run's record, or says why there is none and what to do. */
export async function recordOf(runsRoot: string, idOrRunName: string): Promise<ReproducibilityRecord> {
  const runDir = runDirOf(runsRoot, idOrRunName);
  const record = await readReproducibilityRecord(runDir);
  if (!record) {
    throw new NotReproducibleError(
      existsSync(runDir)
        ? `${idOrRunName} has no reproducibility record (${path.join(runDir, 'reproducibility.json')}): it was ` +
            'never launched, or ran before Labline wrote records. Run its spec again with `labline start --rerun`.'
        : `there is no run directory ${runDir}; check the id (\`labline list --all\`) and the settings' runs_root`,
    );
  }
  return record;
}

/** Options of {@link reproductionSpec}. */
export interface ReproductionOptions {
  runsRoot: string;
  /** The new experiment's id. Default: `<original>-repro-<n>`, the first that has no run directory. */
  id?: string;
  /** Reproduce although a data set's content changed (the record keeps both hashes). */
  allowDataChange?: boolean;
  /** Reproduce a run whose code was not pinned and not clean, training its commit without the lost changes. */
  allowCodeChange?: boolean;
  /** Compare the reproduction's metrics with the original's in its report (within `reproducibility.tolerance`). */
  compare?: boolean;
}

/**
 * The spec of a reproduction: the recorded spec, with its code pinned to the recorded commit and patch, its
 * data bound to the recorded hashes, a new id, and the original as its parent. Checks that the code and the
 * data can still be had, so that nothing starts when they cannot.
 * @throws NotReproducibleError naming each difference and the option that would allow it
 */
export async function reproductionSpec(
  record: ReproducibilityRecord,
  options: ReproductionOptions,
): Promise<ExperimentSpec> {
  const original = ExperimentSpec.parse(record.spec.spec);
  const code = await reproducedCode(record, options);
  const data = await reproducedData(record, options);
  const id = options.id ?? freeReproductionId(options.runsRoot, original.experiment_id);
  if (!EXPERIMENT_ID_PATTERN.test(id)) {
    throw new InvalidSpecError(
      `--id: "${id}" is not an experiment id; start with "exp-" and use 2 to 63 lowercase letters, digits and dashes`,
    );
  }
  const summary = options.compare ? await originalMetrics(options.runsRoot, record) : undefined;
  const input = {
    ...original,
    experiment_id: id,
    name: `${original.name} (reproduction)`.slice(0, 200),
    ...(code ? { code } : {}),
    data,
    parent: {
      experiment_id: original.experiment_id,
      modifications: [],
      rationale: `reproduction of ${record.run_name} from its reproducibility record`,
    },
    metadata: { ...original.metadata, tags: [...new Set([...original.metadata.tags, 'reproduction'])] },
    ...(summary
      ? {
          reproduction_of: {
            experiment_id: original.experiment_id,
            run_name: record.run_name,
            summary_metrics: summary,
          },
        }
      : { reproduction_of: undefined }),
  };
  return ExperimentSpec.parse(input);
}

/** The recorded code, checked: the commit is still in the repository and the patch still has its hash. */
async function reproducedCode(
  record: ReproducibilityRecord,
  options: ReproductionOptions,
): Promise<CodeSpec | undefined> {
  const recorded = record.code;
  if (!recorded.repository || !recorded.commit) {
    if (options.allowCodeChange) return undefined;
    throw new NotReproducibleError(
      `${record.run_name} did not run from a git repository, so its code cannot be brought back; ` +
        '--allow-code-change runs the working directory as it is now.',
    );
  }
  if (!recorded.pinned && recorded.clean !== true && !options.allowCodeChange) {
    const files = recorded.uncommitted?.slice(0, 10).join(', ') ?? 'unknown files';
    throw new NotReproducibleError(
      `${record.run_name} ran commit ${recorded.commit.slice(0, 12)} with uncommitted changes that were not ` +
        `recorded (${files}); --allow-code-change trains the commit without them. Add a \`code:\` section to ` +
        'specs so that changes are recorded as a patch.',
    );
  }
  const present = await gitMaybe(['cat-file', '-e', `${recorded.commit}^{commit}`], {
    cwd: recorded.repository,
  }).catch(() => undefined);
  if (present === undefined) {
    throw new NotReproducibleError(
      `commit ${recorded.commit} of ${record.run_name} is not in ${recorded.repository} any more (branch ` +
        'deleted or history rewritten?); fetch or restore it and try again.',
    );
  }
  const original = ExperimentSpec.parse(record.spec.spec);
  return CodeSpec.parse({
    ...(original.code ?? {}),
    repo: recorded.repository,
    ref: recorded.commit,
    pinned: {
      commit: recorded.commit,
      ...(recorded.branch ? { branch: recorded.branch } : {}),
      ...(recorded.patch ? { patch: recorded.patch } : {}),
    },
  });
}

/**
 * The data entries bound to the recorded hashes (the launch refuses other content), after checking that the
 * data still hashes the same here.
 */
async function reproducedData(
  record: ReproducibilityRecord,
  options: ReproductionOptions,
): Promise<ExperimentSpec['data']> {
  const changed: string[] = [];
  const data: ExperimentSpec['data'] = {};
  // Directory manifests of this check are not any run's record: they go to a scratch folder.
  const scratch = await mkdtemp(path.join(tmpdir(), 'labline-reproduce-'));
  try {
    for (const entry of record.data) {
      await checkDataSet(entry, { scratch, runsRoot: options.runsRoot, changed });
      data[entry.name] = reproducedSource(entry, options.allowDataChange === true);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  if (changed.length > 0 && !options.allowDataChange) {
    throw new NotReproducibleError(
      `the data of ${record.run_name} changed since it ran; nothing was started:\n` +
        changed.map((line) => `  ${line}`).join('\n') +
        '\nRestore the data, or reproduce with --allow-data-change (the new record keeps the new hashes).',
    );
  }
  return data;
}

/**
 * A data entry of the reproduction: a file or folder bound to its recorded hash (the launch refuses other
 * content), a W&B artifact pinned to the version its alias named then.
 */
function reproducedSource(entry: RecordedData, allowChange: boolean): ExperimentSpec['data'][string] {
  if (entry.kind === 'wandb-artifact') {
    return entry.version ? entry.source.replace(/:[^:/]+$/, `:${entry.version}`) : entry.source;
  }
  return allowChange || !entry.sha256 ? entry.source : { source: entry.source, sha256: entry.sha256 };
}

/** Adds to `changed` how a data set differs from its record now (missing, or other content). */
async function checkDataSet(
  entry: RecordedData,
  where: { scratch: string; runsRoot: string; changed: string[] },
): Promise<void> {
  if (entry.kind === 'wandb-artifact' || isWandbArtifact(entry.source)) return;
  const now = await hashDataSet({
    name: entry.name,
    source: entry.source,
    runDir: where.scratch,
    cacheFile: path.join(where.runsRoot, '.labline-data-hashes.json'),
  }).catch((error: unknown) => ({ error: error instanceof Error ? error.message : String(error) }));
  if ('error' in now) where.changed.push(`${entry.name}: ${now.error}`);
  else if (now.sha256 !== entry.sha256) where.changed.push(dataChange(entry, now));
}

function dataChange(recorded: RecordedData, now: RecordedData): string {
  return (
    `${recorded.name} (${recorded.source}): SHA-256 was ${recorded.sha256?.slice(0, 12) ?? '?'}…, ` +
    `is ${now.sha256?.slice(0, 12) ?? '?'}…` +
    (recorded.bytes !== undefined && now.bytes !== undefined && recorded.bytes !== now.bytes
      ? ` (${recorded.bytes} → ${now.bytes} bytes)`
      : '')
  );
}

/** `<id>-repro-1`, `-2`…: the first without a run directory, shortened to fit the id pattern. */
export function freeReproductionId(runsRoot: string, originalId: string): string {
  for (let n = 1; n < 1000; n++) {
    const suffix = `-repro-${n}`;
    const id = `${originalId.slice(0, 67 - suffix.length).replace(/-$/, '')}${suffix}`;
    if (!existsSync(path.join(runsRoot, id))) return id;
  }
  throw new NotReproducibleError(`${originalId} has 999 reproductions already; give one an id with --id`);
}

/** The original's numeric summary metrics, from its results.json. */
async function originalMetrics(
  runsRoot: string,
  record: ReproducibilityRecord,
): Promise<Record<string, number>> {
  const file = path.join(runsRoot, record.run_name, 'results.json');
  let results: ResultsPayload;
  try {
    results = ResultsPayload.parse(JSON.parse(await readFile(file, 'utf8')));
  } catch (error) {
    throw new NotReproducibleError(
      `--compare needs the original's results (${file}): ${error instanceof Error ? error.message : String(error)}. ` +
        'Reproduce without --compare, or let the original finish first.',
    );
  }
  return Object.fromEntries(
    Object.entries(results.summary_metrics).filter(
      (entry): entry is [string, number] => typeof entry[1] === 'number' && Number.isFinite(entry[1]),
    ),
  );
}
