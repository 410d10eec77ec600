import { z } from 'zod';
import { SECRET_NAME } from './redaction';
import { CodeSpec, DataSpec, ReproducibilitySpec } from './code';
import { ReproductionOf } from './reproducibility';
import { MetricGoal } from './analysis';
import { HyperparameterConfig, HyperparameterValue } from './config';
import { Deliverables, RunRelativePath } from './deliverables';
import { DURATION_HINT, Duration, MEMORY_SIZE_HINT, MEMORY_SIZE_PATTERN } from './quantities';
import type { SpecError } from './spec-errors';
import { specErrorsFromIssues, withHint } from './spec-errors';
import { atMostBytes, encodedSpecSizeProblem, MAX_HYPOTHESIS_BYTES, MAX_LABEL_BYTES } from './spec-limits';

/** Pattern of experiment ids. The id becomes the Temporal workflow id, so the CLI and Slack can address it. */
export const EXPERIMENT_ID_PATTERN = /^exp-[a-z0-9][a-z0-9-]{1,62}$/;

/**
 * An experiment id: `exp-` then 2–63 lowercase letters, digits and dashes (`exp-lr-sweep-03`). It is the
 * workflow id of the experiment, unique among running and recent experiments.
 */
export const ExperimentId = withHint(
  z.string().regex(EXPERIMENT_ID_PATTERN, 'is not an experiment id'),
  'start with "exp-" and use 2 to 63 lowercase letters, digits and dashes, like "exp-lr-sweep-03"',
);
/** An experiment id such as `exp-lr-sweep-03`. */
export type ExperimentId = z.infer<typeof ExperimentId>;

const SpecDuration = withHint(Duration, DURATION_HINT);

/** Variables the launcher sets itself; a spec that set them would fight it. */
const RESERVED_ENV = new Map<string, string>([
  ['WANDB_RUN_ID', 'the launcher derives it from the experiment id so resumed attempts continue one run'],
  ['WANDB_RESUME', 'the launcher sets it so resumed attempts continue one run'],
  ['WANDB_PROJECT', 'set `tracker.project` instead'],
  ['WANDB_ENTITY', 'set `tracker.entity` instead'],
]);

/**
 * Environment variables for the training command. Values are stored in the workflow history, so keys that
 * look like secrets (`*_API_KEY`, `*_TOKEN`, `*_SECRET`, `PASSWORD`…) are refused: set those in the
 * worker's environment, which the training process inherits. `LABLINE_*` names are reserved.
 */
export const TrainingEnv = z.record(z.string(), z.string()).superRefine((env, ctx) => {
  for (const key of Object.keys(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      ctx.addIssue({
        code: 'custom',
        message: 'is not an environment variable name',
        path: [key],
        params: {
          hint: 'use letters, digits and underscores, not starting with a digit, like "OMP_NUM_THREADS"',
        },
      });
    } else if (SECRET_NAME.test(key)) {
      ctx.addIssue({
        code: 'custom',
        message:
          'looks like a secret; secrets must not be written in specs (they are stored in workflow history)',
        path: [key],
        params: {
          hint: `remove it here and export ${key} in the environment of the Labline worker; the training process inherits it`,
        },
      });
    } else if (key.startsWith('LABLINE_')) {
      ctx.addIssue({
        code: 'custom',
        message: 'is reserved for Labline',
        path: [key],
        params: { hint: 'LABLINE_* variables are set by the launcher; choose another name' },
      });
    } else if (RESERVED_ENV.has(key)) {
      ctx.addIssue({
        code: 'custom',
        message: 'is set by the launcher',
        path: [key],
        params: { hint: RESERVED_ENV.get(key) },
      });
    }
  }
});

/** What training needs from the machine that runs it. */
export const TrainingResources = z.strictObject({
  /** GPUs to reserve. Default `0`. */
  gpus: z.number().int().nonnegative().default(0),
  /** CPU cores to reserve. Default `1`. */
  cpus: z.number().int().positive().default(1),
  /** Memory to reserve, e.g. `"4G"` (binary units, as Slurm's `--mem`). Default: the launcher's default. */
  memory: withHint(
    z.string().regex(MEMORY_SIZE_PATTERN, 'is not a memory size'),
    MEMORY_SIZE_HINT,
  ).optional(),
  /**
   * Wall-clock limit of one training attempt, written `"2h"`, `"30m"`, `"90s"`; **seconds** once parsed.
   * Longer than 0s (the launcher refuses 0, so it is refused here, before anything runs). Default: no limit.
   */
  time_limit: SpecDuration.refine((seconds) => seconds > 0, {
    message: 'must be longer than 0s',
    params: { hint: 'remove time_limit for no limit, or write a duration like "2h"' },
  }).optional(),
});
/** What training needs from the machine that runs it. `time_limit` is in seconds. */
export type TrainingResources = z.infer<typeof TrainingResources>;

/**
 * How a resumed attempt tells the trainer where to resume from. On every attempt after a preemption (or a
 * retry) the launcher passes the absolute path of the checkpoint to resume from (inside `directory`): in
 * the environment variable `env` (and always in `LABLINE_RESUME_FROM`) and, when `flag` is set, as the two
 * extra arguments `<flag> <path>` after `args`. The first attempt gets neither.
 */
export const ResumeSpec = z.strictObject({
  /** Command-line flag followed by the checkpoint path, e.g. `"--resume-from"`. Default: no flag. */
  flag: withHint(
    z.string().regex(/^-{1,2}[A-Za-z0-9][\w-]*$/, 'is not a command-line flag'),
    'write the flag your trainer reads, like "--resume-from"',
  ).optional(),
  /** Environment variable holding the checkpoint path. Default `"LABLINE_RESUME_FROM"`. */
  env: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'is not an environment variable name')
    .default('LABLINE_RESUME_FROM'),
});
/** How a resumed attempt tells the trainer where to resume from. */
export type ResumeSpec = z.infer<typeof ResumeSpec>;

/** Where the trainer keeps checkpoints and how it is told to resume. */
export const CheckpointSpec = z.strictObject({
  /** Checkpoint directory, relative to the run directory. Default `"checkpoints"`. */
  directory: RunRelativePath.default('checkpoints'),
  /** How a resumed attempt is told where to resume. Default: environment variable `LABLINE_RESUME_FROM` only. */
  resume: ResumeSpec.prefault({}),
});
/** Where the trainer keeps checkpoints and how it is told to resume. */
export type CheckpointSpec = z.infer<typeof CheckpointSpec>;

/** Where training runs: `local` (a process on the worker's host) or `slurm` (a batch job). */
export const LauncherName = z.enum(['local', 'slurm']);
/** Where training runs. */
export type LauncherName = z.infer<typeof LauncherName>;

/** How to run training. */
export const TrainingSpec = z.strictObject({
  /** The program to run, e.g. `"python"` or `"node"`; looked up on the worker's `PATH`. */
  command: z.string().trim().min(1),
  /** Its arguments. Default `[]`. */
  args: z.array(z.string()).default([]),
  /**
   * Directory the command runs in. Relative paths are relative to the spec file's directory (the CLI makes
   * them absolute when it submits). Default: the run directory `runs/<experiment_id>/`.
   */
  working_directory: z.string().min(1).optional(),
  /** Extra environment variables; no secrets (see {@link TrainingEnv}). Default `{}`. */
  env: TrainingEnv.default({}),
  /** What to reserve. Default: 0 GPUs, 1 CPU, no memory or time limit. */
  resources: TrainingResources.prefault({}),
  /** Which launcher runs it. Default `"local"`. */
  launcher: LauncherName.default('local'),
  /** Checkpoints and resume. Default: `checkpoints/`, resume through `LABLINE_RESUME_FROM`. */
  checkpoint: CheckpointSpec.prefault({}),
  /**
   * How long the trainer may run without writing a new metric (`metrics.jsonl` in the run directory) before
   * it counts as hung: it is stopped and the failure gate opens with the class `hung`. Written like
   * `time_limit`; **seconds** once parsed. Default `"30m"`.
   */
  stall_timeout: SpecDuration.default(1800),
});
/** How to run training. */
export type TrainingSpec = z.infer<typeof TrainingSpec>;

/** Where the trainer's metrics and artifacts are tracked: files in the run directory, or a W&B project. */
export const TrackerSpec = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('local') }),
  z.strictObject({
    type: z.literal('wandb'),
    /** W&B entity (user or team) that owns the project. */
    entity: z.string().trim().min(1),
    /** W&B project. */
    project: z.string().trim().min(1),
  }),
]);
/** Where the trainer's metrics and artifacts are tracked. */
export type TrackerSpec = z.infer<typeof TrackerSpec>;

/** What happens when nobody decides at a gate within its timeout. */
export const TimeoutAction = z.enum(['reject', 'approve', 'escalate']);
/** What happens when nobody decides at a gate within its timeout. */
export type TimeoutAction = z.infer<typeof TimeoutAction>;

/**
 * One approval gate. While it is open the workflow waits for an `approve` or `reject` signal, reminding the
 * approvers every `reminder_interval` (at most `max_reminders` times). After `timeout` it applies
 * `on_timeout`: `reject` and `approve` decide as if signalled (recorded with source `timeout`); `escalate`
 * notifies `escalation_approvers`, lets them decide too, and waits one more `timeout`, after which it
 * rejects. A gate with `enabled: false` is approved at once (recorded with source `auto`).
 */
export const GateSpec = z
  .strictObject({
    /** Whether a person must decide. Default `true`. */
    enabled: z.boolean().default(true),
    /** Who may decide (CLI user, Slack user name or id). Default `[]`: anyone. */
    approvers: z.array(z.string().trim().min(1)).default([]),
    /** Who is asked, and may decide, after an `escalate` timeout. Default `[]`. */
    escalation_approvers: z.array(z.string().trim().min(1)).default([]),
    /** Time between reminders, e.g. `"1h"`; **seconds** once parsed. Default `"1h"`. */
    reminder_interval: SpecDuration.prefault('1h').refine((seconds) => seconds > 0, 'must be longer than 0s'),
    /** Reminders sent at most. Default `3`; `0` sends none. */
    max_reminders: z.number().int().nonnegative().default(3),
    /** How long to wait for a decision, e.g. `"24h"`; **seconds** once parsed. Default `"24h"`. */
    timeout: SpecDuration.prefault('24h').refine((seconds) => seconds > 0, 'must be longer than 0s'),
    /** What a timeout does. Default `"reject"`. */
    on_timeout: TimeoutAction.default('reject'),
  })
  .superRefine((gate, ctx) => {
    if (gate.on_timeout === 'escalate' && gate.escalation_approvers.length === 0) {
      ctx.addIssue({
        code: 'custom',
        message: 'on_timeout is "escalate" but nobody is listed to escalate to',
        path: ['escalation_approvers'],
        params: {
          hint: 'list who to escalate to, like escalation_approvers: [lead], or choose on_timeout: reject',
        },
      });
    }
  });
/** One approval gate. Durations are in seconds. */
export type GateSpec = z.infer<typeof GateSpec>;

/**
 * The approval gates. Every gate is on by default: a person approves the launch, decides after a failed
 * attempt (retry or abort), decides when deliverables are not met (accept anyway, rerun, abort), approves
 * exceeding the LLM budget, and approves publishing.
 */
export const ApprovalsSpec = z.strictObject({
  /** Before training starts. */
  launch: GateSpec.prefault({}),
  /** Before reports are written and published. */
  publish: GateSpec.prefault({}),
  /** After a training attempt fails for a reason other than preemption: retry or abort. */
  failure: GateSpec.prefault({}),
  /** When required deliverables are not met: accept anyway, rerun, or abort. */
  deliverables: GateSpec.prefault({}),
  /** When LLM spending would exceed `budgets.llm_cost_usd`: approve to continue, reject to stop the agents. */
  budget: GateSpec.prefault({}),
});
/** The approval gates. */
export type ApprovalsSpec = z.infer<typeof ApprovalsSpec>;

/** Limits that end or pause an experiment. */
export const BudgetsSpec = z.strictObject({
  /** Training attempts in all (first launch plus retries after failures; preemption restarts not counted). Default `3`. */
  max_training_attempts: z.number().int().positive().default(3),
  /** Automatic restarts after preemption, without asking anyone. Default `5`. */
  max_preemption_restarts: z.number().int().nonnegative().default(5),
  /** LLM spending in US dollars before the budget gate opens. Default `1.0`. */
  llm_cost_usd: z.number().nonnegative().default(1),
});
/** Limits that end or pause an experiment. */
export type BudgetsSpec = z.infer<typeof BudgetsSpec>;

/** Analyses that can run after validation. */
export const AnalysisName = z.enum(['performance', 'baselines', 'ablations']);
/** Analyses that can run after validation. */
export type AnalysisName = z.infer<typeof AnalysisName>;

/** Documents that can be written after the publish review. */
export const WriterName = z.enum(['report', 'blog', 'paper']);
/** Documents that can be written after the publish review. */
export type WriterName = z.infer<typeof WriterName>;

/** Every analysis and writing agent, by the name the pipeline, the prompts and the settings use. */
export const AgentName = z.enum([...AnalysisName.options, ...WriterName.options]);
/** An analysis or writing agent. */
export type AgentName = z.infer<typeof AgentName>;

/** Which analyses and writers run. */
export const AnalysisPipelineSpec = z.strictObject({
  /** Analysis agents, in order. Default `["performance"]`. */
  analyses: z.array(AnalysisName).default(['performance']),
  /** Writing agents, in order. Default `["report"]`. */
  writers: z.array(WriterName).default(['report']),
  /**
   * Whether lower or higher is better, per metric, where the name does not say (names with loss, error,
   * perplexity… are lower-is-better; others higher). Default `{}`.
   */
  metric_goals: z.record(z.string().min(1), MetricGoal).default({}),
  /**
   * The summary metric that stands for the experiment's outcome: recorded in the `LablinePrimaryMetric`
   * search attribute at completion (campaigns rank by it; `labline lineage` shows it). Default: none.
   */
  primary_metric: z.string().min(1).optional(),
});
/** Which analyses and writers run. */
export type AnalysisPipelineSpec = z.infer<typeof AnalysisPipelineSpec>;

const SEARCH_ATTRIBUTE_HINT =
  'use a short name: it becomes a search attribute to filter runs by, and Temporal caps those at 2 KiB';

/** Bookkeeping about the experiment. */
export const MetadataSpec = z.strictObject({
  /** When the spec was written, ISO 8601 with offset, e.g. `"2026-01-05T09:30:00Z"`. */
  created_at: withHint(
    z.iso.datetime({ offset: true, error: 'is not an ISO 8601 date and time' }),
    'write it like "2026-01-05T09:30:00Z"',
  ).optional(),
  /** Scheduling priority. Default `"normal"`. */
  priority: z.enum(['low', 'normal', 'high']).default('normal'),
  /** Free-form labels. Default `[]`. */
  tags: z.array(z.string().trim().min(1)).default([]),
  /** Who runs the experiment; the `LablineResearcher` search attribute. At most 200 bytes. */
  researcher: z
    .string()
    .trim()
    .min(1)
    .superRefine(atMostBytes(MAX_LABEL_BYTES, SEARCH_ATTRIBUTE_HINT))
    .optional(),
  /** Which project it belongs to; the `LablineProject` search attribute. At most 200 bytes. */
  project: z
    .string()
    .trim()
    .min(1)
    .superRefine(atMostBytes(MAX_LABEL_BYTES, SEARCH_ATTRIBUTE_HINT))
    .optional(),
});
/** Bookkeeping about the experiment. */
export type MetadataSpec = z.infer<typeof MetadataSpec>;

/** One hyperparameter change relative to the parent experiment. */
export const Modification = z.strictObject({
  /** The config key changed. */
  parameter: z.string().trim().min(1),
  /** Its value in the parent; `null` when the parent did not set it. */
  from: HyperparameterValue.nullable(),
  /** Its value here. */
  to: HyperparameterValue,
});
/** One hyperparameter change relative to the parent experiment. */
export type Modification = z.infer<typeof Modification>;

/** Where an experiment comes from: the experiment it modifies, what changed and why. */
export const ParentSpec = z.strictObject({
  /** The parent's experiment id; the `LablineParent` search attribute. */
  experiment_id: ExperimentId,
  /** What changed. Default `[]`. */
  modifications: z.array(Modification).default([]),
  /** Why this follow-up was run. */
  rationale: z.string().trim().min(1),
});
/** Where an experiment comes from. */
export type ParentSpec = z.infer<typeof ParentSpec>;

/**
 * A baseline the experiment is compared with (analysis `baselines`): values of one metric, one per seed,
 * written here or read from earlier experiments' results (`runs/<id>/results.json`, summary metric
 * `metric`). Statistics are computed in code; the baseline comparator interprets them.
 */
export const BaselineSpec = z
  .strictObject({
    /** Name shown in reports, e.g. `"logistic regression"`. */
    name: z.string().trim().min(1),
    /** The metric compared, as the run logs it, e.g. `"eval/accuracy"`. */
    metric: z.string().trim().min(1),
    /** The baseline's values of `metric`, one per seed. */
    values: z.array(z.number().finite()).min(1).optional(),
    /** Earlier experiments whose final `metric` counts as one baseline value each. */
    experiments: z.array(ExperimentId).min(1).optional(),
  })
  .refine((baseline) => baseline.values !== undefined || baseline.experiments !== undefined, {
    message: 'gives neither values nor experiments',
    params: {
      hint: 'list the values per seed (values: [0.84, 0.86]) or earlier experiment ids (experiments: [exp-…])',
    },
  });
/** A baseline the experiment is compared with. */
export type BaselineSpec = z.infer<typeof BaselineSpec>;

const NUL_HINT =
  'remove it: a process cannot receive a NUL byte in its command, arguments, environment or working ' +
  'directory (config values reach the arguments through ${config.KEY}), so no text in a spec may hold one';

/**
 * Where NUL bytes sit in a spec: the path of every string (and key) holding one, and the 1-based character.
 * The launcher hands the command, arguments, environment and working directory to the operating system,
 * which cannot represent a NUL (Node throws, and the launch supervisor died of it), so specs are refused
 * at validation instead.
 */
function nulBytesIn(value: unknown): { path: PropertyKey[]; at: number; inKey: boolean }[] {
  const found: { path: PropertyKey[]; at: number; inKey: boolean }[] = [];
  const visited = new Set<object>();
  const visit = (node: unknown, path: PropertyKey[]): void => {
    if (typeof node === 'string') {
      const index = node.indexOf('\u0000');
      if (index >= 0) found.push({ path, at: index + 1, inKey: false });
      return;
    }
    if (typeof node !== 'object' || node === null || visited.has(node)) return;
    visited.add(node);
    if (Array.isArray(node)) {
      node.forEach((item, index) => visit(item, [...path, index]));
      return;
    }
    for (const [key, item] of Object.entries(node)) {
      const index = key.indexOf('\u0000');
      if (index >= 0) found.push({ path: [...path, key], at: index + 1, inKey: true });
      else visit(item, [...path, key]);
    }
  };
  visit(value, []);
  return found;
}

/**
 * An experiment as a researcher writes it (YAML or JSON, snake_case keys). Unknown keys are errors, so
 * typos are caught. Durations are written as `"2h"` and parsed to seconds; the parsed spec is itself a
 * valid input, so parsing it again (as the workflow does at its boundary) changes nothing.
 */
export const ExperimentSpec = z
  .strictObject({
    /** Editors' JSON Schema reference; ignored. */
    $schema: z.string().optional(),
    /** The experiment id, also the workflow id. */
    experiment_id: ExperimentId,
    /** Short human name, shown in the Web UI summary and reports. At most 200 bytes. */
    name: z
      .string()
      .trim()
      .min(1)
      .superRefine(
        atMostBytes(
          MAX_LABEL_BYTES,
          'shorten it and put the details in description: the name is the summary Temporal shows for the run, ' +
            'which Temporal caps at 400 bytes (a rerun adds its run name)',
        ),
      ),
    /** What the experiment does. Default `""`. */
    description: z.string().default(''),
    /** The claim the experiment tests. At most 16 KiB. */
    hypothesis: z
      .string()
      .trim()
      .min(1)
      .superRefine(
        atMostBytes(
          MAX_HYPOTHESIS_BYTES,
          'state the claim in a paragraph and put the background in description: the hypothesis goes into ' +
            "the run's details in Temporal, which Temporal caps at 20,000 bytes",
        ),
      ),
    /** The question it answers. Default `""`. */
    research_question: z.string().default(''),
    /** Training hyperparameters. Default `{}`. */
    config: HyperparameterConfig.default({}),
    /** What the run must produce; names unique. Default `[]`. */
    deliverables: Deliverables.default([]),
    /** Which analyses and writers run. Default: performance analysis, technical report. */
    analysis_pipeline: AnalysisPipelineSpec.prefault({}),
    /** Bookkeeping. Default: priority normal, no tags. */
    metadata: MetadataSpec.prefault({}),
    /** How to run training. */
    training: TrainingSpec,
    /** Where metrics are tracked. Default `{ type: local }`. */
    tracker: TrackerSpec.default({ type: 'local' }),
    /** The code to train, pinned to a commit when submitted. Default: none (the working directory as it is). */
    code: CodeSpec.optional(),
    /** The data sets it reads, hashed into the reproducibility record. Default `{}`. */
    data: DataSpec.default({}),
    /** How close `labline reproduce --compare` must come. Default: no tolerance (exact). */
    reproducibility: ReproducibilitySpec.prefault({}),
    /** Set by `labline reproduce --compare`: the run this one reproduces; the report checks the tolerance. */
    reproduction_of: ReproductionOf.optional(),
    /** Approval gates. Default: every gate on, anyone approves, 24h timeout, reject on timeout. */
    approvals: ApprovalsSpec.prefault({}),
    /** Limits. Default: 3 attempts, 5 preemption restarts, $1 of LLM calls. */
    budgets: BudgetsSpec.prefault({}),
    /** Genealogy, when this experiment modifies another. */
    parent: ParentSpec.optional(),
    /** Baselines for the `baselines` analysis; names unique. Default: none. */
    baselines: z
      .array(BaselineSpec)
      .min(1)
      .refine((list) => new Set(list.map((baseline) => baseline.name)).size === list.length, {
        message: 'has two baselines with the same name',
        params: { hint: 'give each baseline its own name' },
      })
      .optional(),
  })
  .superRefine((spec, ctx) => {
    if (spec.parent?.experiment_id === spec.experiment_id) {
      ctx.addIssue({
        code: 'custom',
        message: 'names the experiment itself as its parent',
        path: ['parent', 'experiment_id'],
        params: { hint: 'give the id of the experiment this one modifies, or remove `parent`' },
      });
    }
  })
  // Runs even when other fields are invalid (`when`), so that every problem is reported in one pass.
  .superRefine(
    (spec, ctx) => {
      for (const { path, at, inKey } of nulBytesIn(spec)) {
        ctx.addIssue({
          code: 'custom',
          message: `${inKey ? 'the key ' : ''}contains a NUL byte (\\0) at character ${at}`,
          path,
          params: { hint: NUL_HINT },
        });
      }
    },
    { when: () => true },
  );
/** A parsed experiment spec: defaults filled in, durations in seconds. */
export type ExperimentSpec = z.infer<typeof ExperimentSpec>;
/** An experiment spec as written, before defaults and parsing. */
export type ExperimentSpecInput = z.input<typeof ExperimentSpec>;

/** The outcome of validating a spec: the parsed spec, or every problem found. */
export type SpecValidationResult = { ok: true; spec: ExperimentSpec } | { ok: false; errors: SpecError[] };

/**
 * Validates a spec that is already data (an API call, a workflow input), with the same errors as
 * `parseExperimentSpec` (in `spec-file`) but without file positions. A valid spec also fits Temporal: its
 * encoded size is checked (see `MAX_ENCODED_SPEC_BYTES`).
 */
export function validateExperimentSpec(input: unknown): SpecValidationResult {
  const parsed = ExperimentSpec.safeParse(input);
  if (!parsed.success) {
    return { ok: false, errors: specErrorsFromIssues(parsed.error.issues, ExperimentSpec, input) };
  }
  const tooLarge = encodedSpecSizeProblem(parsed.data);
  return tooLarge ? { ok: false, errors: [tooLarge] } : { ok: true, spec: parsed.data };
}

/**
 * The JSON Schema (draft 2020-12) of spec files as users write them (durations as strings, fields with
 * defaults optional), for editors and `labline schema`.
 */
export function experimentSpecJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ExperimentSpec, { io: 'input', unrepresentable: 'any' });
  return {
    ...schema,
    title: 'Labline experiment spec',
    description:
      'An ML experiment for Labline: hypothesis, training command, deliverables, approvals and budgets.',
  };
}
