/**
 * Writing and reading `runs/<id>/reproducibility.json`. The launch activity writes it where training runs,
 * before the trainer starts (so a run that crashes still says what ran), and the watcher adds each launch's
 * end. Every write replaces the whole file atomically; the launches are merged by key, so a retried launch
 * rewrites its own entry instead of adding one.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import {
  REPRODUCIBILITY_FILE,
  REPRODUCIBILITY_RECORD_VERSION,
  ReproducibilityRecord,
  seedsOfConfig,
  type RecordedCode,
  type RecordedLaunch,
} from '../../experiment';
import { writeFileAtomic } from '../atomic-file';
import { changedFiles, gitMaybe, lablineExclusions } from '../code/git';

/** The record of a run, or undefined when it has none (runs from before records, or not launched yet). */
export async function readReproducibilityRecord(runDir: string): Promise<ReproducibilityRecord | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path.join(runDir, REPRODUCIBILITY_FILE), 'utf8');
  } catch {
    return undefined;
  }
  const parsed = ReproducibilityRecord.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new Error(
      `${path.join(runDir, REPRODUCIBILITY_FILE)} is not a reproducibility record Labline can read ` +
        `(version ${REPRODUCIBILITY_RECORD_VERSION}): ${parsed.error.issues[0]?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}

/** Writes the record with this launch in it, replacing an earlier entry of the same key. */
export async function writeLaunchRecord(
  runDir: string,
  record: Omit<ReproducibilityRecord, 'launches' | 'version'>,
  launch: RecordedLaunch,
): Promise<ReproducibilityRecord> {
  const earlier = await readReproducibilityRecord(runDir).catch(() => undefined);
  const launches = (earlier?.launches ?? []).filter((entry) => entry.key !== launch.key);
  const written: ReproducibilityRecord = {
    version: REPRODUCIBILITY_RECORD_VERSION,
    ...record,
    launches: [...launches, launch].sort((a, b) => a.launch - b.launch),
  };
  await fs.mkdir(runDir, { recursive: true });
  await writeFileAtomic(path.join(runDir, REPRODUCIBILITY_FILE), `${JSON.stringify(written, null, 2)}\n`);
  return written;
}

/**
 * Adds how a launch ended, and whether the trainer's `config.json` records the seeds it was given. Does
 * nothing for a run without a record.
 */
export async function recordLaunchEnd(
  runDir: string,
  key: string,
  end: { endedAt?: string; exitCode: number | null; attemptDir?: string },
): Promise<void> {
  const record = await readReproducibilityRecord(runDir).catch(() => undefined);
  const launch = record?.launches.find((entry) => entry.key === key);
  if (!record || !launch) return;
  launch.ended_at = end.endedAt ?? new Date().toISOString();
  launch.exit_code = end.exitCode;
  const node = end.attemptDir ? await nodeFacts(end.attemptDir) : undefined;
  if (node) {
    // A Slurm job: its node, not the worker that submitted it, is where the trainer ran.
    if (node.host) launch.host = node.host;
    if (node.gpus.length > 0) record.environment.gpus = node.gpus;
    if (node.cudaVisibleDevices) record.environment.cuda_visible_devices = node.cudaVisibleDevices;
  }
  record.randomness.reported_by_trainer = await seedsReported(runDir, record.randomness.seeds);
  await writeFileAtomic(path.join(runDir, REPRODUCIBILITY_FILE), `${JSON.stringify(record, null, 2)}\n`);
}

/** What the Slurm job script wrote about its node (`node.txt`, `key=value` lines); undefined without one. */
async function nodeFacts(
  attemptDir: string,
): Promise<{ host?: string; gpus: string[]; cudaVisibleDevices?: string } | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path.join(attemptDir, 'node.txt'), 'utf8');
  } catch {
    return undefined;
  }
  const pairs = text
    .split('\n')
    .map((line) => /^([a-z_]+)=(.*)$/.exec(line.trim()))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => [match[1]!, match[2]!.trim()] as const);
  const first = (name: string) => pairs.find(([key, value]) => key === name && value)?.[1];
  return {
    ...(first('host') ? { host: first('host') } : {}),
    gpus: pairs.filter(([key, value]) => key === 'gpu' && value).map(([, value]) => value),
    ...(first('cuda_visible_devices') ? { cudaVisibleDevices: first('cuda_visible_devices') } : {}),
  };
}

/** Per seed key, whether the trainer's `config.json` holds the value it was given; null without one. */
async function seedsReported(
  runDir: string,
  seeds: Record<string, unknown>,
): Promise<Record<string, boolean> | null> {
  let used: Record<string, unknown>;
  try {
    used = JSON.parse(await fs.readFile(path.join(runDir, 'config.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
  const reported = seedsOfConfig(used);
  return Object.fromEntries(Object.entries(seeds).map(([key, value]) => [key, reported[key] === value]));
}

/**
 * What can be said of code that was not pinned: the repository holding the working directory, its commit
 * and branch, and whether its tree was clean (the run folder aside). Nothing when it is not in a repository.
 */
export async function unpinnedCode(workingDirectory: string, runsRoot: string): Promise<RecordedCode> {
  const top = (
    await gitMaybe(['rev-parse', '--show-toplevel'], { cwd: workingDirectory }).catch(() => undefined)
  )?.trim();
  if (!top) return { pinned: false };
  const commit = (await gitMaybe(['rev-parse', '--verify', '--quiet', 'HEAD'], { cwd: top }))?.trim();
  const branch = (await gitMaybe(['symbolic-ref', '--quiet', '--short', 'HEAD'], { cwd: top }))?.trim();
  const excluded = lablineExclusions(top, runsRoot);
  const status = await gitMaybe(
    ['status', '--porcelain=v1', '-z', '--untracked-files=all', '--', '.', ...excluded],
    {
      cwd: top,
    },
  );
  const dirty = status === undefined ? undefined : changedFiles(status);
  return {
    pinned: false,
    repository: top,
    ...(commit ? { commit } : {}),
    ...(branch ? { branch } : {}),
    ...(dirty ? { clean: dirty.length === 0 } : {}),
    ...(dirty && dirty.length > 0 ? { uncommitted: dirty } : {}),
  };
}
