import { z } from 'zod';
import { HyperparameterValue } from './config';
import type { MetricAggregate, ProbeResult, RunObservation } from './observation';
import { describeRunLiveness, readMetricValue, RunLiveness } from './observation';
import { withHint } from './spec-errors';

/**
 * A path inside the run directory (`checkpoints/final.json`): relative, with `/` separators, never leaving
 * the run directory through `..`.
 */
export const RunRelativePath = withHint(
  z
    .string()
    .min(1)
    .refine((path) => !/^([/\\]|[A-Za-z]:)/.test(path), 'must be relative to the run directory, not absolute')
    .refine((path) => !path.split(/[/\\]/).includes('..'), 'must stay inside the run directory (no "..")'),
  'write a path relative to the run directory, like "checkpoints/final.json"',
);

const DeliverableName = withHint(
  z.string().trim().min(1),
  'a short unique name, like "final_checkpoint"; reports and decisions refer to it',
);

const common = {
  /** Unique within the spec; reports, statuses and the deliverable gate refer to it. */
  name: DeliverableName,
  /** What the deliverable is for, in words; shown in reports. */
  description: z.string().optional(),
  /** Whether the experiment needs it to count as completed. Default `true`; optional ones are reported only. */
  required: z.boolean().default(true),
};

/** Either a file of the run directory or a tracked artifact; exactly one. */
const target = {
  /** A file, relative to the run directory. */
  path: RunRelativePath.optional(),
  /** A tracked artifact name, as the tracker names it (W&B: `model` or `model:v3`). */
  artifact: withHint(
    z.string().min(1),
    'an artifact name as the tracker shows it, like "model" or "model:v3"',
  ).optional(),
};

const TARGET_HINT = 'give `path: <file in the run directory>` or `artifact: <artifact name>`, not both';

function exactlyOneTarget(
  value: { path?: string | undefined; artifact?: string | undefined },
  ctx: z.RefinementCtx,
): void {
  const count = Number(value.path !== undefined) + Number(value.artifact !== undefined);
  if (count === 1) return;
  ctx.addIssue({
    code: 'custom',
    message: count === 0 ? 'needs `path` or `artifact`: what should exist' : 'has both `path` and `artifact`',
    path: [],
    params: { hint: TARGET_HINT },
  });
}

/** A file in the run directory, or a tracked artifact, exists. */
export const ExistsDeliverable = z
  .strictObject({ type: z.literal('exists'), ...common, ...target })
  .superRefine(exactlyOneTarget);
/** A file in the run directory, or a tracked artifact, exists. */
export type ExistsDeliverable = z.infer<typeof ExistsDeliverable>;

/** A checkpoint (file or artifact) exists and can be read back. */
export const ExistsAndLoadableDeliverable = z
  .strictObject({
    type: z.literal('exists_and_loadable'),
    ...common,
    ...target,
    /**
     * `json`: parses as JSON; `torch`: loads with `torch.load(..., weights_only=True)` in the trainer's own
     * Python (a file in the run directory); `any`: reads back completely (other binary checkpoints). Default
     * `json`.
     */
    format: withHint(
      z.enum(['json', 'torch', 'any']).default('json'),
      'use "json" for JSON checkpoints, "torch" for PyTorch checkpoints, "any" for other binary files',
    ),
  })
  .superRefine(exactlyOneTarget);
/** A checkpoint (file or artifact) exists and can be read back. */
export type ExistsAndLoadableDeliverable = z.infer<typeof ExistsAndLoadableDeliverable>;

/** The run recorded every one of the given keys. */
export const ContainsKeysDeliverable = z.strictObject({
  type: z.literal('contains_keys'),
  ...common,
  /** Keys that must be present; dotted keys (`eval.loss`) reach into nested values. */
  keys: z.array(z.string().min(1)).min(1),
  /** Where to look: the run `summary`, the `history` keys, or the recorded `config`. Default `summary`. */
  in: z.enum(['summary', 'history', 'config']).default('summary'),
});
/** The run recorded every one of the given keys. */
export type ContainsKeysDeliverable = z.infer<typeof ContainsKeysDeliverable>;

/** Comparison operators of threshold deliverables. `==` and `!=` compare exactly. */
export const ThresholdOp = z.enum(['>', '>=', '<', '<=', '==', '!=']);
/** Comparison operators of threshold deliverables. */
export type ThresholdOp = z.infer<typeof ThresholdOp>;

/**
 * Which value of a metric a threshold compares: `summary` (the run summary, W&B's last logged value unless
 * the trainer set it), `final` (last history value), `best_min` / `best_max` (minimum / maximum over the
 * history).
 */
export const MetricAggregateChoice = z.enum(['summary', 'final', 'best_min', 'best_max']);
/** Which value of a metric a threshold compares. */
export type MetricAggregateChoice = z.infer<typeof MetricAggregateChoice>;

/** A metric compares to a number: `eval_loss < 0.35`. A NaN or infinite metric never passes. */
export const ThresholdDeliverable = z.strictObject({
  type: z.literal('threshold'),
  ...common,
  /** The metric's key, e.g. `eval_loss`; dotted keys reach into nested summary values. */
  metric: z.string().min(1),
  /** The comparison. */
  op: withHint(
    ThresholdOp,
    'write the comparison as one of >, >=, <, <=, ==, != (quote it in YAML: op: ">=")',
  ),
  /** The number to compare with. */
  value: z.number(),
  /** Which value of the metric to compare. Default `summary`. */
  aggregate: MetricAggregateChoice.default('summary'),
});
/** A metric compares to a number. */
export type ThresholdDeliverable = z.infer<typeof ThresholdDeliverable>;

/** The run recorded the config values the spec expects (the trainer really used these hyperparameters). */
export const MatchesExpectedDeliverable = z.strictObject({
  type: z.literal('matches_expected'),
  ...common,
  /** Config key → expected value; dotted keys reach into nested config. */
  expected: z
    .record(z.string().min(1), HyperparameterValue)
    .refine((expected) => Object.keys(expected).length > 0, 'must name at least one config key'),
});
/** The run recorded the config values the spec expects. */
export type MatchesExpectedDeliverable = z.infer<typeof MatchesExpectedDeliverable>;

/** The run finished, its data synced, and its artifacts download. */
export const SyncedAndDownloadableDeliverable = z.strictObject({
  type: z.literal('synced_and_downloadable'),
  ...common,
  /** Artifact names that must download; omitted means every artifact the run logged. */
  artifacts: z.array(z.string().min(1)).optional(),
});
/** The run finished, its data synced, and its artifacts download. */
export type SyncedAndDownloadableDeliverable = z.infer<typeof SyncedAndDownloadableDeliverable>;

/** One thing an experiment must produce, checked against the tracked run after training. */
export const Deliverable = z.discriminatedUnion('type', [
  ExistsDeliverable,
  ExistsAndLoadableDeliverable,
  ContainsKeysDeliverable,
  ThresholdDeliverable,
  MatchesExpectedDeliverable,
  SyncedAndDownloadableDeliverable,
]);
/** One thing an experiment must produce, checked against the tracked run after training. */
export type Deliverable = z.infer<typeof Deliverable>;
/** A deliverable as a spec writes it, before defaults. */
export type DeliverableInput = z.input<typeof Deliverable>;
/** The kinds of deliverable. */
export type DeliverableType = Deliverable['type'];

/** A spec's deliverables: names unique. Default `[]`. */
export const Deliverables = z.array(Deliverable).superRefine((deliverables, ctx) => {
  const seen = new Map<string, number>();
  deliverables.forEach((deliverable, index) => {
    const first = seen.get(deliverable.name);
    if (first === undefined) {
      seen.set(deliverable.name, index);
      return;
    }
    ctx.addIssue({
      code: 'custom',
      message: `repeats the name "${deliverable.name}" of deliverables[${first}]`,
      path: [index, 'name'],
      params: { hint: 'give each deliverable its own name; reports and decisions refer to it' },
    });
  });
});

/** One file or artifact the validation activity must look at, and how closely. */
export const ProbeRequest = z.object({
  /** A file of the run directory or an artifact of the tracker. */
  kind: z.enum(['file', 'artifact']),
  /** The file path (relative to the run directory) or the artifact name. */
  name: z.string(),
  /** Read it back: `json` parses it as JSON, `any` reads it whole. Absent: only check it exists. */
  load: z.enum(['json', 'torch', 'any']).optional(),
  /** Download it (artifacts: the manifest) to check that it can be. */
  download: z.boolean().default(false),
});
/** One file or artifact the validation activity must look at. */
export type ProbeRequest = z.infer<typeof ProbeRequest>;

/** What the validation activity must gather so that {@link evaluateDeliverables} can decide every deliverable. */
export const ProbePlan = z.object({
  /** Files and artifacts to look at, each once. */
  probes: z.array(ProbeRequest),
  /** Also list every artifact the run logged (into `artifact_names`) and probe each with `download: true`. */
  all_artifacts: z.boolean(),
  /** Metrics whose history aggregates (final, min, max) must be computed into `aggregates`. */
  metric_aggregates: z.array(z.string()),
});
/** What the validation activity must gather for a set of deliverables. */
export type ProbePlan = z.infer<typeof ProbePlan>;

/**
 * Says what the validation activity must gather for these deliverables: which files and artifacts to probe
 * (and whether to load or download them), whether to list all artifacts, and which metrics need history
 * aggregates. Thresholds on `summary` need no history at all.
 */
export function probesFor(deliverables: readonly Deliverable[]): ProbePlan {
  const probes = new Map<string, ProbeRequest>();
  const request = (kind: ProbeRequest['kind'], name: string, extra: Partial<ProbeRequest>): void => {
    const key = `${kind}\u0000${name}`;
    const existing = probes.get(key) ?? { kind, name, download: false };
    // JSON loading also proves the file reads back whole, so it subsumes `any`.
    const load = existing.load === 'json' || extra.load === 'json' ? 'json' : (existing.load ?? extra.load);
    const merged: ProbeRequest = { kind, name, download: existing.download || (extra.download ?? false) };
    if (load) merged.load = load;
    probes.set(key, merged);
  };
  let allArtifacts = false;
  const metrics = new Set<string>();
  for (const deliverable of deliverables) {
    switch (deliverable.type) {
      case 'exists':
      case 'exists_and_loadable': {
        const load = deliverable.type === 'exists_and_loadable' ? { load: deliverable.format } : {};
        if (deliverable.path !== undefined) request('file', deliverable.path, load);
        if (deliverable.artifact !== undefined) request('artifact', deliverable.artifact, load);
        break;
      }
      case 'threshold':
        if (deliverable.aggregate !== 'summary') metrics.add(deliverable.metric);
        break;
      case 'synced_and_downloadable':
        if (deliverable.artifacts === undefined) allArtifacts = true;
        else for (const artifact of deliverable.artifacts) request('artifact', artifact, { download: true });
        break;
      case 'contains_keys':
      case 'matches_expected':
        break;
    }
  }
  return { probes: [...probes.values()], all_artifacts: allArtifacts, metric_aggregates: [...metrics] };
}

/** The verdict on one deliverable, with what was expected and what was found, both readable by people. */
export const ValidationResult = z.object({
  /** The deliverable's name. */
  name: z.string(),
  /** The deliverable's type. */
  type: z.enum([
    'exists',
    'exists_and_loadable',
    'contains_keys',
    'threshold',
    'matches_expected',
    'synced_and_downloadable',
  ]),
  /** Whether the deliverable is required. */
  required: z.boolean(),
  /** Whether it was met. */
  passed: z.boolean(),
  /** What the spec asks for, e.g. `eval_loss (summary) < 0.35`. */
  expected: z.string(),
  /** What the run holds, e.g. `0.3127`, `missing`. */
  found: z.string(),
  /** One sentence for reports and approval requests, including what to look at when it failed. */
  message: z.string(),
});
/** The verdict on one deliverable. */
export type ValidationResult = z.infer<typeof ValidationResult>;

/** The verdicts on all deliverables of a spec against one run. */
export const ValidationReport = z.object({
  /** True when every required deliverable passed (optional ones do not count). */
  passed: z.boolean(),
  /** One result per deliverable, in spec order. */
  results: z.array(ValidationResult),
  /** Where the run can be found (from the observation), so every verdict traces back to it. */
  run: z.string().optional(),
  /** The run's state, last heartbeat and whether it went stale, when the tracker judges that (W&B). */
  run_state: RunLiveness.optional(),
});
/** The verdicts on all deliverables of a spec against one run. */
export type ValidationReport = z.infer<typeof ValidationReport>;

/** A value by key, or by dotted path into nested objects when no key has the dotted name itself. */
function lookup(record: Readonly<Record<string, unknown>>, key: string): unknown {
  if (Object.hasOwn(record, key)) return record[key];
  let current: unknown = record;
  for (const part of key.split('.')) {
    if (typeof current !== 'object' || current === null || !Object.hasOwn(current, part)) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'number') return String(value);
  const text = JSON.stringify(value) ?? typeof value;
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}

function someKeys(keys: readonly string[]): string {
  if (keys.length === 0) return 'no keys';
  const shown = keys.slice(0, 10).join(', ');
  return keys.length > 10 ? `${shown} … (${keys.length} in all)` : shown;
}

function compare(found: number, op: ThresholdOp, value: number): boolean {
  switch (op) {
    case '>':
      return found > value;
    case '>=':
      return found >= value;
    case '<':
      return found < value;
    case '<=':
      return found <= value;
    case '==':
      return found === value;
    case '!=':
      return found !== value;
  }
}

function findProbe(
  observation: RunObservation,
  kind: ProbeResult['kind'],
  name: string,
): ProbeResult | undefined {
  return observation.probes.find((probe) => probe.kind === kind && probe.name === name);
}

function describeTarget(deliverable: ExistsDeliverable | ExistsAndLoadableDeliverable): {
  kind: ProbeResult['kind'];
  name: string;
  label: string;
} {
  return deliverable.path !== undefined
    ? { kind: 'file', name: deliverable.path, label: `file "${deliverable.path}"` }
    : {
        kind: 'artifact',
        name: deliverable.artifact ?? '',
        label: `artifact "${deliverable.artifact ?? ''}"`,
      };
}

type Verdict = Pick<ValidationResult, 'passed' | 'expected' | 'found' | 'message'>;

const NOT_PROBED =
  'the validation activity did not look for it; it must probe everything probesFor(deliverables) lists';

function judgeExists(deliverable: ExistsDeliverable, observation: RunObservation): Verdict {
  const target = describeTarget(deliverable);
  const expected = `${target.label} exists`;
  const probe = findProbe(observation, target.kind, target.name);
  if (!probe)
    return { passed: false, expected, found: 'not checked', message: `${target.label}: ${NOT_PROBED}` };
  const deleted = probe.state?.toUpperCase() === 'DELETED';
  const passed = probe.exists && !deleted;
  const found = passed ? 'present' : deleted ? 'deleted' : 'missing';
  return {
    passed,
    expected,
    found,
    message: passed
      ? `${target.label} is present`
      : `${target.label} is ${found}${probe.error ? ` (${probe.error})` : ''}; check that the trainer writes it`,
  };
}

const LOADED_AS: Record<ExistsAndLoadableDeliverable['format'], string> = {
  json: 'parses as JSON',
  torch: "loads with torch.load (weights only) in the trainer's Python",
  any: 'reads back completely',
};
const NOT_LOADED_AS: Record<ExistsAndLoadableDeliverable['format'], string> = {
  json: 'does not parse as JSON',
  torch: 'does not load with torch.load',
  any: 'does not read back',
};

function judgeLoadable(deliverable: ExistsAndLoadableDeliverable, observation: RunObservation): Verdict {
  const target = describeTarget(deliverable);
  const how = LOADED_AS[deliverable.format];
  const expected = `${target.label} exists and ${how}`;
  const probe = findProbe(observation, target.kind, target.name);
  if (!probe)
    return { passed: false, expected, found: 'not checked', message: `${target.label}: ${NOT_PROBED}` };
  if (!probe.exists || probe.state?.toUpperCase() === 'DELETED')
    return {
      passed: false,
      expected,
      found: 'missing',
      message: `${target.label} is missing; check that the trainer writes its checkpoint there`,
    };
  if (probe.loadable === undefined)
    return {
      passed: false,
      expected,
      found: 'present, not loaded',
      message: `${target.label}: ${NOT_PROBED}`,
    };
  if (!probe.loadable)
    return {
      passed: false,
      expected,
      found: `present but unreadable${probe.error ? `: ${probe.error}` : ''}`,
      message: `${target.label} is present but ${NOT_LOADED_AS[deliverable.format]}${probe.error ? `: ${probe.error}` : ''}`,
    };
  return {
    passed: true,
    expected,
    found: `present, ${how}`,
    message: `${target.label} is present and ${how}`,
  };
}

function judgeContainsKeys(deliverable: ContainsKeysDeliverable, observation: RunObservation): Verdict {
  const where = deliverable.in;
  const expected = `${where} has ${deliverable.keys.join(', ')}`;
  const present = (key: string): boolean =>
    where === 'history'
      ? observation.history_keys.includes(key)
      : lookup(where === 'summary' ? observation.summary : observation.config, key) !== undefined;
  const missing = deliverable.keys.filter((key) => !present(key));
  if (missing.length === 0)
    return {
      passed: true,
      expected,
      found: `all ${deliverable.keys.length} present`,
      message: `the run ${where} has ${deliverable.keys.join(', ')}`,
    };
  const available =
    where === 'history'
      ? observation.history_keys
      : Object.keys(where === 'summary' ? observation.summary : observation.config);
  return {
    passed: false,
    expected,
    found: `missing ${missing.join(', ')}`,
    message: `the run ${where} lacks ${missing.join(', ')}; it has ${someKeys(available)}`,
  };
}

/** The metric value a threshold compares, or why there is none. */
function thresholdInput(
  deliverable: ThresholdDeliverable,
  observation: RunObservation,
): { value: number } | { missing: string } {
  const { metric } = deliverable;
  if (deliverable.aggregate === 'summary') {
    const raw = lookup(observation.summary, metric);
    if (raw === undefined)
      return { missing: `not in the summary; the summary has ${someKeys(Object.keys(observation.summary))}` };
    const value = readMetricValue(raw);
    return value === undefined ? { missing: `${show(raw)}, which is not a number` } : { value };
  }
  const aggregate: MetricAggregate | undefined = observation.aggregates[metric];
  if (!aggregate) return { missing: `its history aggregate was not computed (${NOT_PROBED})` };
  if (aggregate.count === 0) return { missing: 'never logged in the history' };
  const value =
    deliverable.aggregate === 'final'
      ? aggregate.final
      : deliverable.aggregate === 'best_min'
        ? aggregate.min
        : aggregate.max;
  if (value === null)
    return {
      missing:
        deliverable.aggregate === 'final'
          ? 'its last logged value is NaN or infinite'
          : 'no finite value was logged',
    };
  return { value };
}

function judgeThreshold(deliverable: ThresholdDeliverable, observation: RunObservation): Verdict {
  const label = `${deliverable.metric} (${deliverable.aggregate.replace('_', ' ')})`;
  const expected = `${label} ${deliverable.op} ${deliverable.value}`;
  const input = thresholdInput(deliverable, observation);
  if ('missing' in input)
    return {
      passed: false,
      expected,
      found: 'no value',
      message: `${deliverable.metric} is ${input.missing}`,
    };
  const found = show(input.value);
  // NaN != x is true in JavaScript; a non-finite metric must never pass a threshold.
  const passed = Number.isFinite(input.value) && compare(input.value, deliverable.op, deliverable.value);
  return {
    passed,
    expected,
    found,
    message: passed
      ? `${label} = ${found}, ${deliverable.op} ${deliverable.value} as required`
      : Number.isFinite(input.value)
        ? `${label} = ${found}, but the spec needs ${deliverable.op} ${deliverable.value}`
        : `${label} = ${found}: the metric is not finite (the run may have diverged)`,
  };
}

function sameConfigValue(found: unknown, expected: HyperparameterValue): boolean {
  if (found === expected) return true;
  // Trainers often record CLI args as strings ("0.001"); equal numbers are the same setting.
  const asNumber = (value: unknown): number | undefined =>
    typeof value === 'number'
      ? value
      : typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))
        ? Number(value)
        : undefined;
  const a = asNumber(found);
  const b = asNumber(expected);
  return a !== undefined && a === b && (typeof found === 'number' || typeof expected === 'number');
}

function judgeMatchesExpected(deliverable: MatchesExpectedDeliverable, observation: RunObservation): Verdict {
  const entries = Object.entries(deliverable.expected);
  const expected = entries.map(([key, value]) => `${key} = ${show(value)}`).join(', ');
  const mismatches = entries
    .map(([key, value]) => ({ key, value, found: lookup(observation.config, key) }))
    .filter(({ value, found }) => !sameConfigValue(found, value));
  if (mismatches.length === 0)
    return {
      passed: true,
      expected,
      found: expected,
      message: `the run config matches ${entries.length === 1 ? 'the expected value' : `all ${entries.length} expected values`}`,
    };
  const found = mismatches.map(({ key, found: value }) => `${key} = ${show(value)}`).join(', ');
  return {
    passed: false,
    expected,
    found,
    message: `the run config differs: ${mismatches
      .map(({ key, value, found: actual }) => `${key} is ${show(actual)}, expected ${show(value)}`)
      .join('; ')}`,
  };
}

function judgeSynced(deliverable: SyncedAndDownloadableDeliverable, observation: RunObservation): Verdict {
  const names =
    deliverable.artifacts ??
    observation.artifact_names ??
    observation.probes.filter((probe) => probe.kind === 'artifact').map((probe) => probe.name);
  const expected = `run finished and synced; ${
    deliverable.artifacts === undefined ? 'every artifact' : `artifacts ${names.join(', ')}`
  } committed and downloadable`;
  const problems: string[] = [];
  if (observation.liveness?.stale) problems.push(`run is ${describeRunLiveness(observation.liveness)}`);
  else if (observation.state !== 'finished') problems.push(`run is ${observation.state}, not finished`);
  if (observation.synced === false) problems.push('run data has not finished syncing');
  if (deliverable.artifacts === undefined && observation.artifact_names === undefined)
    problems.push(`the list of logged artifacts was not gathered (${NOT_PROBED})`);
  for (const name of names) {
    const probe = findProbe(observation, 'artifact', name);
    if (!probe) problems.push(`artifact "${name}" was not checked`);
    else if (!probe.exists) problems.push(`artifact "${name}" is missing`);
    else if (probe.state !== undefined && probe.state.toUpperCase() !== 'COMMITTED')
      problems.push(`artifact "${name}" is ${probe.state}, not COMMITTED`);
    else if (probe.downloadable !== true)
      problems.push(`artifact "${name}" does not download${probe.error ? ` (${probe.error})` : ''}`);
  }
  if (problems.length === 0) {
    const found = `finished; ${names.length} artifact(s) downloadable`;
    return {
      passed: true,
      expected,
      found,
      message: `the run finished, synced, and ${names.length} artifact(s) download`,
    };
  }
  return { passed: false, expected, found: problems.join('; '), message: problems.join('; ') };
}

function judge(deliverable: Deliverable, observation: RunObservation): Verdict {
  switch (deliverable.type) {
    case 'exists':
      return judgeExists(deliverable, observation);
    case 'exists_and_loadable':
      return judgeLoadable(deliverable, observation);
    case 'contains_keys':
      return judgeContainsKeys(deliverable, observation);
    case 'threshold':
      return judgeThreshold(deliverable, observation);
    case 'matches_expected':
      return judgeMatchesExpected(deliverable, observation);
    case 'synced_and_downloadable':
      return judgeSynced(deliverable, observation);
  }
}

/**
 * Decides every deliverable against what was observed of the run. Pure: the activity gathers the
 * observation (see {@link probesFor}); this only compares. Anything the observation lacks counts as not met,
 * with a message saying what was not gathered.
 */
export function evaluateDeliverables(
  deliverables: readonly Deliverable[],
  observation: RunObservation,
): ValidationReport {
  const results = deliverables.map((deliverable): ValidationResult => ({
    name: deliverable.name,
    type: deliverable.type,
    required: deliverable.required,
    ...judge(deliverable, observation),
  }));
  const report: ValidationReport = {
    passed: results.every((result) => result.passed || !result.required),
    results,
  };
  if (observation.run !== undefined) report.run = observation.run;
  if (observation.liveness !== undefined) report.run_state = observation.liveness;
  return report;
}
