/**
 * The reproducibility record (`runs/<id>/reproducibility.json`): what exactly ran, written by the launch
 * where training runs, so that `labline reproduce` can run it again and `labline diff` can say what differs
 * between two runs. Pure: the schema and the comparisons; capturing it is the launch's job.
 */
import { z } from 'zod';
import { CodePatch } from './code';

/** The record's format; a reader refuses a newer one rather than misread it. */
export const REPRODUCIBILITY_RECORD_VERSION = 1;

/** The file name of the record in the run directory. */
export const REPRODUCIBILITY_FILE = 'reproducibility.json';

/** The code that ran. */
export const RecordedCode = z.object({
  /** Absolute path of the repository (the checkout the commit came from). */
  repository: z.string().optional(),
  commit: z.string().optional(),
  branch: z.string().optional(),
  patch: CodePatch.optional(),
  /** Whether the tree trained was exactly the commit: pinned without a patch, or an unpinned clean checkout. */
  clean: z.boolean().optional(),
  /** Uncommitted files that were not trained (`dirty: allow`). */
  left_out: z.array(z.string()).optional(),
  /** Unpinned: files that differed from the commit in the tree that ran (the record cannot bring them back). */
  uncommitted: z.array(z.string()).optional(),
  /** Whether the launch trained a worktree of the pinned commit (`true`) or the working directory as it was. */
  pinned: z.boolean(),
  /** The worktree the launches ran in, when pinned. */
  worktree: z.string().optional(),
});
export type RecordedCode = z.infer<typeof RecordedCode>;

/** The spec and the command it resolved to. */
export const RecordedSpec = z.object({
  /** SHA-256 of the parsed spec as canonical JSON (keys sorted), see {@link canonicalJson}. */
  sha256: z.string(),
  /** The parsed spec itself (specs hold no secrets: validation refuses them). */
  spec: z.record(z.string(), z.unknown()),
  command: z.string(),
  args: z.array(z.string()),
  cwd: z.string(),
  /** Variables Labline and the spec set for the trainer, with their values (never secrets). */
  env: z.record(z.string(), z.string()),
  /** Names of secret variables the trainer inherited from the worker; their values are never recorded. */
  secret_env_names: z.array(z.string()),
});
export type RecordedSpec = z.infer<typeof RecordedSpec>;

/** One lockfile found in the code the trainer ran. */
export const RecordedLockfile = z.object({ path: z.string(), sha256: z.string() });
export type RecordedLockfile = z.infer<typeof RecordedLockfile>;

/** The machine and software the trainer ran on. */
export const RecordedEnvironment = z.object({
  os: z.object({ platform: z.string(), release: z.string(), arch: z.string() }),
  cpu: z.object({ model: z.string(), cores: z.number().int() }),
  /** GPU models from `nvidia-smi`; empty when it is missing or sees none. */
  gpus: z.array(z.string()),
  cuda_visible_devices: z.string().optional(),
  node: z.string(),
  /** The trainer's Python, when the command is Python: version and `pip freeze` (or why it failed). */
  python: z
    .object({
      executable: z.string(),
      version: z.string().optional(),
      packages: z.array(z.string()).optional(),
      packages_error: z.string().optional(),
    })
    .optional(),
  lockfiles: z.array(RecordedLockfile),
  /** The container image, when the command runs one (`docker run`, `podman run`, `apptainer run`). */
  container: z.object({ image: z.string(), digest: z.string().optional() }).optional(),
});
export type RecordedEnvironment = z.infer<typeof RecordedEnvironment>;

/** One data set, hashed at launch. */
export const RecordedData = z.object({
  name: z.string(),
  source: z.string(),
  kind: z.enum(['file', 'directory', 'wandb-artifact']),
  /** The file's SHA-256, the directory's manifest hash, or the artifact's digest. */
  sha256: z.string().optional(),
  bytes: z.number().optional(),
  files: z.number().int().optional(),
  /** A directory's manifest (`path  sha256` per file), relative to the run directory. */
  manifest: z.string().optional(),
  /** The W&B artifact's version (`v3`), for artifacts: what the alias written in the spec pointed at. */
  version: z.string().optional(),
  /** The W&B artifact's digest (its manifest's hash), for artifacts. */
  digest: z.string().optional(),
});
export type RecordedData = z.infer<typeof RecordedData>;

/** The seeds passed to the trainer, and whether it reported using them. */
export const RecordedRandomness = z.object({
  /** Every `seed` key of the config (`seed`, `data.seed`, `init_seed`…) with its value. */
  seeds: z.record(z.string(), z.unknown()),
  /**
   * Per seed key, whether the trainer's own `config.json` in the run directory records the same value;
   * `null` while it has written none.
   */
  reported_by_trainer: z.record(z.string(), z.boolean()).nullable(),
});
export type RecordedRandomness = z.infer<typeof RecordedRandomness>;

/** One launch of the trainer. */
export const RecordedLaunch = z.object({
  key: z.string(),
  launch: z.number().int(),
  host: z.string(),
  launcher: z.string(),
  slurm_job_id: z.string().optional(),
  started_at: z.string(),
  ended_at: z.string().optional(),
  exit_code: z.number().int().nullable().optional(),
});
export type RecordedLaunch = z.infer<typeof RecordedLaunch>;

/** The reproducibility record of one run. */
export const ReproducibilityRecord = z.object({
  version: z.literal(REPRODUCIBILITY_RECORD_VERSION),
  experiment_id: z.string(),
  /** The run's name: the experiment id, or `<id>.rerun-<time>` for a rerun. */
  run_name: z.string(),
  code: RecordedCode,
  spec: RecordedSpec,
  environment: RecordedEnvironment,
  randomness: RecordedRandomness,
  data: z.array(RecordedData),
  /** Where it ran: one entry per launch, in order. */
  launches: z.array(RecordedLaunch),
});
export type ReproducibilityRecord = z.infer<typeof ReproducibilityRecord>;

/** JSON with object keys sorted at every level: the same value always gives the same text (and hash). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item !== null && typeof item === 'object' && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : item,
  );
}

/** Every config key whose last segment names a seed (`seed`, `data.seed`, `init_seed`), with its value. */
export function seedsOfConfig(config: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(config).filter(([key]) => /(^|_)seed$/i.test(key.split(/[./]/).pop() ?? '')),
  );
}

/** One thing that differs between two records: where, and the two values as text (absent: not recorded). */
export interface RecordDifference {
  section: 'code' | 'spec' | 'config' | 'environment' | 'packages' | 'lockfiles' | 'data' | 'randomness';
  item: string;
  a?: string;
  b?: string;
}

/** What differs between two records, section by section, in a stable order. Equal records give `[]`. */
export function recordDifferences(a: ReproducibilityRecord, b: ReproducibilityRecord): RecordDifference[] {
  const found: RecordDifference[] = [];
  const compare = (section: RecordDifference['section'], item: string, x: unknown, y: unknown): void => {
    const left = shown(x);
    const right = shown(y);
    if (left !== right)
      found.push({
        section,
        item,
        ...(left === undefined ? {} : { a: left }),
        ...(right === undefined ? {} : { b: right }),
      });
  };
  const codeA = a.code;
  const codeB = b.code;
  compare('code', 'repository', codeA.repository, codeB.repository);
  compare('code', 'commit', codeA.commit, codeB.commit);
  compare('code', 'branch', codeA.branch, codeB.branch);
  compare('code', 'patch', codeA.patch?.sha256, codeB.patch?.sha256);
  compare('code', 'clean', codeA.clean, codeB.clean);
  compare('code', 'pinned', codeA.pinned, codeB.pinned);

  compare(
    'spec',
    'command',
    [a.spec.command, ...a.spec.args].join(' '),
    [b.spec.command, ...b.spec.args].join(' '),
  );
  const envA = withoutRunNames(a.spec.env);
  const envB = withoutRunNames(b.spec.env);
  for (const key of unionOfKeys(envA, envB)) compare('spec', `env ${key}`, envA[key], envB[key]);
  const configA = (a.spec.spec.config ?? {}) as Record<string, unknown>;
  const configB = (b.spec.spec.config ?? {}) as Record<string, unknown>;
  for (const key of unionOfKeys(configA, configB)) compare('config', key, configA[key], configB[key]);

  const envOf = (record: ReproducibilityRecord) => record.environment;
  compare('environment', 'os', osText(envOf(a)), osText(envOf(b)));
  compare(
    'environment',
    'cpu',
    `${envOf(a).cpu.model} × ${envOf(a).cpu.cores}`,
    `${envOf(b).cpu.model} × ${envOf(b).cpu.cores}`,
  );
  compare('environment', 'gpus', envOf(a).gpus.join(', ') || 'none', envOf(b).gpus.join(', ') || 'none');
  compare('environment', 'node', envOf(a).node, envOf(b).node);
  compare('environment', 'python', envOf(a).python?.version, envOf(b).python?.version);
  compare(
    'environment',
    'container',
    envOf(a).container?.digest ?? envOf(a).container?.image,
    envOf(b).container?.digest ?? envOf(b).container?.image,
  );
  const packagesA = packageVersions(envOf(a).python?.packages ?? []);
  const packagesB = packageVersions(envOf(b).python?.packages ?? []);
  for (const name of unionOfKeys(packagesA, packagesB))
    compare('packages', name, packagesA[name], packagesB[name]);
  const locksA = Object.fromEntries(envOf(a).lockfiles.map((lock) => [lock.path, lock.sha256]));
  const locksB = Object.fromEntries(envOf(b).lockfiles.map((lock) => [lock.path, lock.sha256]));
  for (const file of unionOfKeys(locksA, locksB))
    compare('lockfiles', file, shortHash(locksA[file]), shortHash(locksB[file]));

  const dataA = Object.fromEntries(a.data.map((entry) => [entry.name, entry]));
  const dataB = Object.fromEntries(b.data.map((entry) => [entry.name, entry]));
  for (const name of unionOfKeys(dataA, dataB)) {
    compare('data', name, dataText(dataA[name]), dataText(dataB[name]));
  }
  // The seeds themselves are config keys (compared above); what the trainer reported of them is not.
  const reportedA = a.randomness.reported_by_trainer ?? {};
  const reportedB = b.randomness.reported_by_trainer ?? {};
  for (const key of unionOfKeys(reportedA, reportedB)) {
    compare('randomness', `${key} used by the trainer`, reportedA[key], reportedB[key]);
  }
  return found;
}

/**
 * The run's own names (run directory, experiment id, launch key, checkpoint folder) differ between any two
 * runs, and the config's variables repeat the config (compared on its own): not news.
 */
function withoutRunNames(env: Record<string, string>): Record<string, string> {
  const ignored = new Set([
    'LABLINE_RUN_DIR',
    'LABLINE_EXPERIMENT_ID',
    'LABLINE_LAUNCH_KEY',
    'LABLINE_ATTEMPT',
    'LABLINE_CHECKPOINT_DIR',
    'LABLINE_CONFIG',
    'LABLINE_SEED',
    'WANDB_RUN_ID',
    'WANDB_NAME',
  ]);
  return Object.fromEntries(Object.entries(env).filter(([key]) => !ignored.has(key)));
}

function unionOfKeys(...objects: Record<string, unknown>[]): string[] {
  return [...new Set(objects.flatMap((object) => Object.keys(object)))].sort();
}

function shown(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

const shortHash = (hash: string | undefined) => (hash === undefined ? undefined : `${hash.slice(0, 12)}…`);

function osText(environment: RecordedEnvironment): string {
  return `${environment.os.platform} ${environment.os.release} ${environment.os.arch}`;
}

/** `pip freeze` lines as name → version (`torch==2.13.0`, `pkg @ file://…` kept whole). */
function packageVersions(lines: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    lines
      .filter((line) => line.trim() && !line.startsWith('#'))
      .map((line) => {
        const match = /^([A-Za-z0-9._-]+)\s*(?:==|@)\s*(.+)$/.exec(line.trim());
        return match ? [match[1]!.toLowerCase(), match[2]!] : [line.trim(), line.trim()];
      }),
  );
}

function dataText(entry: RecordedData | undefined): string | undefined {
  if (!entry) return undefined;
  const what = entry.sha256
    ? `sha256 ${entry.sha256.slice(0, 12)}…`
    : entry.digest
      ? `version ${entry.version ?? '?'}, digest ${entry.digest.slice(0, 12)}…`
      : entry.version
        ? `version ${entry.version}`
        : 'not hashed';
  return `${entry.source} (${what})`;
}

/** Set by `labline reproduce --compare`: the run a reproduction reproduces, and its values to compare with. */
export const ReproductionOf = z.strictObject({
  /** The original experiment. */
  experiment_id: z.string().min(1),
  /** Its run name (the experiment id, or a rerun's name). */
  run_name: z.string().min(1),
  /** The original's values of the compared metrics. */
  summary_metrics: z.record(z.string(), z.number()),
});
export type ReproductionOf = z.infer<typeof ReproductionOf>;

/** One compared metric of a reproduction. */
export const ReproductionCheck = z.object({
  metric: z.string(),
  original: z.number(),
  /** Null when the reproduction did not produce it. */
  reproduced: z.number().nullable(),
  /** `reproduced − original`. */
  difference: z.number().nullable(),
  tolerance: z.number(),
  within: z.boolean(),
});
export type ReproductionCheck = z.infer<typeof ReproductionCheck>;

/**
 * Whether a reproduction came within tolerance, per metric: every metric with a tolerance and the primary
 * metric (exact, without one), that the original has.
 */
export function reproductionChecks(
  original: ReproductionOf,
  tolerance: Record<string, number>,
  primaryMetric: string | undefined,
  summary: Record<string, unknown>,
): ReproductionCheck[] {
  const metrics = [...new Set([...(primaryMetric ? [primaryMetric] : []), ...Object.keys(tolerance)])];
  return metrics
    .filter((metric) => typeof original.summary_metrics[metric] === 'number')
    .map((metric) => {
      const before = original.summary_metrics[metric]!;
      const value = summary[metric];
      const reproduced = typeof value === 'number' && Number.isFinite(value) ? value : null;
      const difference = reproduced === null ? null : reproduced - before;
      const allowed = tolerance[metric] ?? 0;
      // A hair of floating-point slack, so that a tolerance written in decimal is not missed by rounding.
      const within = difference !== null && Math.abs(difference) <= allowed + 1e-12;
      return { metric, original: before, reproduced, difference, tolerance: allowed, within };
    });
}
