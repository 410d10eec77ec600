/**
 * Campaigns: many experiments from one base spec — a grid or list of config overrides, seeds, or the
 * ablations another experiment's designer proposed — run with bounded concurrency and compared in code.
 * Pure: the campaign workflow derives child specs and the comparison from these functions.
 */
import { z } from 'zod';
import { compareWithBaseline, type BaselineFacts } from './baselines';
import { HyperparameterValue } from './config';
import { GateSpec, ExperimentSpec, type ExperimentSpecInput, type Modification } from './spec';
import { MetricGoal } from './analysis';
import { Deliverables } from './deliverables';
import { CodeSpec, PinnedCode } from './code';
import {
  hedgesG,
  meanConfidenceInterval,
  welchTTest,
  type MeanEstimate,
  type WelchTTestResult,
} from './statistics';

export const CAMPAIGN_ID_PATTERN = /^camp-[a-z0-9][a-z0-9-]{1,40}$/;

/** One named variant: config overrides applied to the base spec. */
export const VariantSpec = z.strictObject({
  /** Short name, used in child ids (`<campaign>-<name>-s<seed>`): lowercase letters, digits, dashes. */
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,23}$/, 'use lowercase letters, digits and dashes (at most 24)'),
  /** Config keys and their values for this variant. */
  overrides: z.record(z.string().min(1), HyperparameterValue).default({}),
  /** Why this variant is worth running. */
  rationale: z.string().optional(),
  /** The code this variant trains, for code variants (`variants.refs`): the ref and its pinned commit. */
  code: z.strictObject({ ref: z.string().min(1), pinned: PinnedCode.optional() }).optional(),
});
export type VariantSpec = z.infer<typeof VariantSpec>;

/**
 * One code variant: a branch, tag or commit of the base's repository, as written (`feature/gated-linear`),
 * or as the client pinned it when it submitted the campaign.
 */
export const CodeRef = z.union([
  z.string().trim().min(1),
  z.strictObject({ ref: z.string().trim().min(1), pinned: PinnedCode }),
]);
export type CodeRef = z.infer<typeof CodeRef>;

export const VariantsSpec = z
  .strictObject({
    /** Every combination of these values (a grid), named from the values. */
    grid: z.record(z.string().min(1), z.array(HyperparameterValue).min(1)).optional(),
    /** Variants written out. */
    list: z.array(VariantSpec).optional(),
    /** The ablations proposed by the ablation designer of this experiment; each waits for a person. */
    ablations_from: z.string().min(1).optional(),
    /**
     * Code variants: branches, tags or commits of the base's repository, each trained in its own worktree,
     * alone or combined with `grid` or `list` (every ref with every config variant). The first ref is the one
     * the others are compared with; with refs, `include_base` adds the config base to each ref.
     */
    refs: z.array(CodeRef).min(1).optional(),
  })
  .refine(
    (v) =>
      [v.grid, v.list, v.ablations_from].filter((x) => x !== undefined).length === (v.refs ? 0 : 1) ||
      (v.refs !== undefined &&
        v.ablations_from === undefined &&
        [v.grid, v.list].filter(Boolean).length === 1),
    {
      message: 'give exactly one of grid, list or ablations_from, or refs (alone, or with grid or list)',
    },
  )
  .refine((v) => new Set((v.refs ?? []).map(refNameOf)).size === (v.refs ?? []).length, {
    message: 'names the same ref twice',
    path: ['refs'],
  });

/** What every kind of campaign starts with: its id (also its workflow id), name and description. */
export const CAMPAIGN_HEAD = {
  $schema: z.string().optional(),
  /** The campaign id, also its workflow id. */
  campaign_id: z
    .string()
    .regex(CAMPAIGN_ID_PATTERN, 'must look like camp-<lowercase letters, digits, dashes>'),
  name: z.string().trim().min(1),
  description: z.string().default(''),
};

export const CampaignSpec = z.strictObject({
  ...CAMPAIGN_HEAD,
  /** The experiment every variant modifies; its `experiment_id` is the children's parent. */
  base: z.unknown(),
  variants: VariantsSpec,
  /** Seeds per variant: a count (seeds 0…n−1) or the seeds themselves. Set as `config.seed`. Default 1. */
  seeds: z.union([z.number().int().positive(), z.array(z.number().int()).min(1)]).default(1),
  /** Experiments running at once (GPU slots the campaign may hold). Default 2. */
  concurrency: z.number().int().positive().default(2),
  /** Whether the base spec itself runs as a variant (`base`), to compare against. Default true. */
  include_base: z.boolean().default(true),
  /**
   * What every child must produce, in place of the base's deliverables. A comparison needs complete runs, not
   * each run at the base's target: a short variant may be meant to fall short of it, and would otherwise wait
   * at its deliverables gate. Default: the base's.
   */
  deliverables: Deliverables.optional(),
  /** The metric that ranks variants, read from each child's summary metrics. */
  primary_metric: z.strictObject({
    name: z.string().min(1),
    goal: MetricGoal,
  }),
  approvals: z
    .strictObject({
      /** One approval for the whole campaign before any child starts. */
      launch: GateSpec.prefault({}),
      /** Review of proposed ablations (approve, edit or drop each). */
      proposals: GateSpec.prefault({}),
      /** Children skip their own launch and publish gates: the campaign's launch approval stands for them. Default true. */
      delegate_children: z.boolean().default(true),
    })
    .prefault({}),
});
export type CampaignSpec = z.infer<typeof CampaignSpec>;
export type CampaignSpecInput = z.input<typeof CampaignSpec>;

/** A proposed follow-up experiment (from the ablation designer), as the campaign reviews it. */
export const AblationProposal = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,23}$/),
  modifications: z.array(
    z.object({ parameter: z.string(), from: HyperparameterValue.nullable(), to: HyperparameterValue }),
  ),
  rationale: z.string(),
  expected_effect: z.string().default(''),
});
export type AblationProposal = z.infer<typeof AblationProposal>;

/** A variant name made from grid values: `lr-0.1-bs-32` → safe for ids. */
function gridName(entries: [string, z.infer<typeof HyperparameterValue>][]): string {
  const text = entries
    .map(([key, value]) => `${key.split(/[/_.]/).pop()}-${String(value)}`)
    .join('-')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
  return text.slice(0, 24).replace(/-$/, '') || 'variant';
}

/** The ref a code variant names, as written. */
export function refNameOf(ref: CodeRef): string {
  return typeof ref === 'string' ? ref : ref.ref;
}

/** A variant name for a ref: its last path segment, safe for ids (`feature/gated-linear` → `gated-linear`). */
function refVariantName(ref: string): string {
  const text = (ref.split('/').pop() ?? ref)
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
  return text.slice(0, 24).replace(/-$/, '') || 'ref';
}

/**
 * The variant the others are compared with: `base`, or for code variants the first ref's (with the config
 * base when there is one).
 */
export function baseVariantOf(spec: CampaignSpec): string {
  return spec.variants.refs ? (variantsOf(spec)[0]?.name ?? 'base') : 'base';
}

/**
 * The variants of a grid or list, times the refs of code variants (proposals are reviewed first; see
 * {@link proposalVariants}).
 */
export function variantsOf(spec: CampaignSpec): VariantSpec[] {
  const configVariants = configVariantsOf(spec);
  const refs = spec.variants.refs;
  if (!refs) return uniquelyNamed(configVariants);
  const configs: VariantSpec[] = spec.variants.grid || spec.variants.list ? configVariants : [];
  if (configs.length === 0) configs.push({ name: 'base', overrides: {} });
  return uniquelyNamed(
    refs.flatMap((ref) =>
      configs.map((variant) => ({
        ...variant,
        name:
          variant.name === 'base'
            ? refVariantName(refNameOf(ref))
            : `${refVariantName(refNameOf(ref))}-${variant.name}`.slice(0, 24).replace(/-$/, ''),
        code: typeof ref === 'string' ? { ref } : { ref: ref.ref, pinned: ref.pinned },
      })),
    ),
  );
}

function configVariantsOf(spec: CampaignSpec): VariantSpec[] {
  const variants: VariantSpec[] = spec.include_base ? [{ name: 'base', overrides: {} }] : [];
  if (spec.variants.list) variants.push(...spec.variants.list);
  if (spec.variants.grid) {
    let combos: [string, z.infer<typeof HyperparameterValue>][][] = [[]];
    for (const [key, values] of Object.entries(spec.variants.grid)) {
      combos = combos.flatMap((combo) =>
        values.map((value) => [...combo, [key, value] as [string, typeof value]]),
      );
    }
    for (const combo of combos)
      variants.push({ name: gridName(combo), overrides: Object.fromEntries(combo) });
  }
  return variants;
}

/** Names made unique with a counter, in order: `lr-0.1`, `lr-0.1-2`. */
function uniquelyNamed(variants: VariantSpec[]): VariantSpec[] {
  const names = new Set<string>();
  for (const variant of variants) {
    let name = variant.name;
    for (let i = 2; names.has(name); i++) name = `${variant.name.slice(0, 21)}-${i}`;
    variant.name = name;
    names.add(name);
  }
  return variants;
}

/** Approved (possibly edited) proposals as variants. */
export function proposalVariants(proposals: AblationProposal[]): VariantSpec[] {
  return proposals.map((p) => ({
    name: p.name,
    overrides: Object.fromEntries(p.modifications.map((m) => [m.parameter, m.to])),
    rationale: p.rationale,
  }));
}

export function seedsOf(spec: CampaignSpec): number[] {
  return typeof spec.seeds === 'number' ? Array.from({ length: spec.seeds }, (_v, i) => i) : spec.seeds;
}

/** The child experiment's id: derived from the campaign id, so a retried start never duplicates it. */
export function childExperimentId(campaignId: string, variant: string, seed: number): string {
  return `exp-${campaignId.replace(/^camp-/, '')}-${variant}-s${seed}`;
}

/**
 * The spec of one child: the base with the variant's overrides and the seed in `config` (the launch fills
 * `${config.KEY}` placeholders in the training arguments from it, and `matches_expected` deliverables expect
 * the overridden values), the genealogy recorded, and (when delegated) the launch and publish gates off —
 * the campaign's own approval stands for them.
 */
export function childSpec(campaign: CampaignSpec, variant: VariantSpec, seed: number): ExperimentSpec {
  const base = ExperimentSpec.parse(campaign.base);
  const config = { ...base.config, ...variant.overrides, seed };
  const modifications: Modification[] = Object.entries({ ...variant.overrides, seed }).map(
    ([parameter, to]) => ({
      parameter,
      from: base.config[parameter] ?? null,
      to,
    }),
  );
  const input: ExperimentSpecInput = {
    ...base,
    experiment_id: childExperimentId(campaign.campaign_id, variant.name, seed),
    name: `${base.name} — ${variant.name}, seed ${seed}`,
    config,
    deliverables: (campaign.deliverables ?? base.deliverables).map((deliverable) =>
      deliverable.type === 'matches_expected'
        ? { ...deliverable, expected: { ...deliverable.expected, ...pick(deliverable.expected, config) } }
        : deliverable,
    ),
    parent: {
      experiment_id: base.experiment_id,
      modifications,
      rationale:
        variant.rationale ?? `campaign ${campaign.campaign_id}: variant ${variant.name}, seed ${seed}`,
    },
    ...(variant.code
      ? { code: { ...CodeSpec.parse(base.code ?? {}), ref: variant.code.ref, pinned: variant.code.pinned } }
      : {}),
    metadata: { ...base.metadata, tags: [...base.metadata.tags, campaign.campaign_id] },
    approvals: campaign.approvals.delegate_children
      ? {
          ...base.approvals,
          launch: { ...base.approvals.launch, enabled: false },
          publish: { ...base.approvals.publish, enabled: false },
        }
      : base.approvals,
    analysis_pipeline: { ...base.analysis_pipeline, primary_metric: campaign.primary_metric.name },
  };
  return ExperimentSpec.parse(input);
}

/** The entries of `values` for the keys `expected` names: a variant's overrides are what its run should show. */
function pick(
  expected: Record<string, unknown>,
  values: Record<string, z.infer<typeof HyperparameterValue>>,
) {
  return Object.fromEntries(
    Object.keys(expected)
      .filter((key) => key in values)
      .map((key) => [key, values[key]!]),
  );
}

/** Fills `${config.KEY}` placeholders in training arguments from the spec's config. */
export function renderTrainingArgs(args: readonly string[], config: Record<string, unknown>): string[] {
  return args.map((arg) =>
    arg.replace(/\$\{config\.([A-Za-z0-9_./-]+)\}/g, (match, key: string) =>
      key in config ? String(config[key]) : match,
    ),
  );
}

/** One child's outcome, as the comparison needs it. */
export const ChildOutcome = z.object({
  experiment_id: z.string(),
  variant: z.string(),
  seed: z.number(),
  /** completed, failed, rejected, cancelled, or `error` when the child workflow itself failed. */
  end: z.string(),
  /** The primary metric from the child's summary; null when it has none. */
  metric: z.number().nullable(),
  reason: z.string().optional(),
});
export type ChildOutcome = z.infer<typeof ChildOutcome>;

export interface VariantComparison {
  variant: string;
  /** Primary-metric values of the children that produced one. */
  values: number[];
  estimate: MeanEstimate | null;
  /** Against the base variant, when both have two or more values. */
  vs_base: (WelchTTestResult & { hedges_g: number | null }) | null;
  failed: number;
  rank: number | null;
}

/**
 * Per variant: mean and 95% confidence interval over seeds, Welch's t-test against the base, effect size
 * (Hedges' g), and the ranking by the primary metric (variants without values are unranked).
 */
export function compareVariants(
  outcomes: readonly ChildOutcome[],
  goal: MetricGoal,
  baseVariant = 'base',
): VariantComparison[] {
  const names = [...new Set(outcomes.map((o) => o.variant))];
  const valuesOf = (name: string) =>
    outcomes
      .filter((o) => o.variant === name && o.metric !== null && Number.isFinite(o.metric))
      .map((o) => o.metric!);
  const baseValues = valuesOf(baseVariant);
  const rows: VariantComparison[] = names.map((variant) => {
    const values = valuesOf(variant);
    const vsBase =
      variant !== baseVariant && values.length >= 2 && baseValues.length >= 2
        ? { ...welchTTest(values, baseValues), hedges_g: hedgesG(values, baseValues) }
        : null;
    return {
      variant,
      values,
      estimate: values.length ? meanConfidenceInterval(values) : null,
      vs_base: vsBase,
      failed: outcomes.filter((o) => o.variant === variant && o.end !== 'completed').length,
      rank: null,
    };
  });
  const ranked = rows
    .filter((r) => r.estimate)
    .sort((a, b) =>
      goal === 'max' ? b.estimate!.mean - a.estimate!.mean : a.estimate!.mean - b.estimate!.mean,
    );
  ranked.forEach((row, index) => (row.rank = index + 1));
  return rows.sort((a, b) => (a.rank ?? Infinity) - (b.rank ?? Infinity));
}

/**
 * The comparisons the comparator agent interprets: each variant's primary-metric values against the base
 * variant's, with the same statistics computed in code as for an experiment's baselines. Empty without a
 * base variant with values.
 */
export function campaignBaselineFacts(
  outcomes: readonly ChildOutcome[],
  metric: { name: string; goal: MetricGoal },
  baseVariant = 'base',
): BaselineFacts {
  const sample = (variant: string) => {
    const rows = outcomes.filter((o) => o.variant === variant);
    const valued = rows.filter((o) => o.metric !== null && Number.isFinite(o.metric));
    return {
      values: valued.map((o) => o.metric!),
      sources: valued.map((o) => o.experiment_id),
      missing: rows.filter((o) => !valued.includes(o)).map((o) => `${o.experiment_id} ended ${o.end}`),
    };
  };
  const base = sample(baseVariant);
  if (base.values.length === 0) return { comparisons: [] };
  const variants = [...new Set(outcomes.map((o) => o.variant))].filter((v) => v !== baseVariant);
  return {
    comparisons: variants.map((variant) =>
      compareWithBaseline({
        baseline: `${baseVariant} (vs ${variant})`,
        metric: metric.name,
        goal: metric.goal,
        experiment: sample(variant),
        baselineSample: base,
      }),
    ),
  };
}
