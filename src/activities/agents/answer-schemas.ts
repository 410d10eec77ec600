import { z } from 'zod';
import type {
  AnalysisFacts,
  BaselineFacts,
  ExperimentSpec,
  HyperparameterValue,
  HypothesisVerdict,
} from '../../experiment';
import {
  AblationPlan,
  AblationProposalOutput,
  BaselineInterpretation,
  BaselineReading,
  FindingKind,
  PerformanceAnalysis,
  PerformanceFinding,
  ProposedModification,
  ReportNarrative,
} from './schemas';

// The answer schema of each agent call, built from that call's facts. The schemas of `schemas.ts` say what
// an answer looks like; these also close every set the checks of `activities.ts` hold an answer to: the
// metrics a finding may be about (per kind), the baselines and the verdict computed for each, the config
// parameters and their current values, the verdict the deliverables decided. They go out as the strict JSON
// Schema of structured outputs, so a model cannot pick a value the checks would refuse (and pay for a
// revision that cannot fix it); the checks stay, for the offline rules and servers without strict mode.
//
// Each closed set is an `enum` or a `const`; a value tied to another (a baseline's verdict, a parameter's
// current value) makes one `anyOf` variant per member, led by its own `const`, so that the variants differ
// in their first key's value (OpenAI's requirement for `anyOf`). A set with no member leaves its array
// empty (`maxItems: 0`).

/** The metrics a performance finding of each kind may be about, as the analysis found them. */
export type FindingSubjects = Readonly<Record<FindingKind, readonly string[]>>;

/**
 * The metrics a finding of each kind may name: `result`, any metric of the analysis; an anomaly kind, the
 * metrics with that anomaly; `generalization_gap`, the eval metric of each pair with a gap beyond noise.
 */
export function findingSubjects(analysis: AnalysisFacts): FindingSubjects {
  const anomalous = (kind: FindingKind) =>
    analysis.anomalies.filter((anomaly) => anomaly.kind === kind).map((anomaly) => anomaly.metric);
  return {
    result: Object.keys(analysis.metrics),
    divergence: anomalous('divergence'),
    plateau: anomalous('plateau'),
    instability: anomalous('instability'),
    overfitting: anomalous('overfitting'),
    generalization_gap: analysis.pairs.filter((pair) => pair.generalization_gap).map((pair) => pair.eval),
  };
}

/** One schema of several: `undefined` for none, the schema itself for one, their union otherwise. */
function oneOf<Output>(variants: readonly z.ZodType<Output>[]): z.ZodType<Output> | undefined {
  const [first, second, ...rest] = variants;
  if (!first) return undefined;
  if (!second) return first;
  return z.union([first, second, ...rest]);
}

/** An array of `item`, or an array that must stay empty when the set it draws from has no member. */
function listOf<Output>(item: z.ZodType<Output> | undefined, empty: z.ZodType<Output>) {
  return item ? z.array(item) : z.array(empty).max(0);
}

/** Distinct values, in their first order: an enum lists each once. */
function distinct(values: readonly string[]): [string, ...string[]] | undefined {
  const [first, ...rest] = [...new Set(values)];
  return first === undefined ? undefined : [first, ...rest];
}

/** The performance analyst's answer for this analysis: findings only about what it found. */
export function performanceAnswer(analysis: AnalysisFacts): z.ZodType<PerformanceAnalysis> {
  const subjects = findingSubjects(analysis);
  const variants = FindingKind.options.flatMap((kind) => {
    const metrics = distinct(subjects[kind]);
    return metrics ? [PerformanceFinding.extend({ kind: z.literal(kind), metric: z.enum(metrics) })] : [];
  });
  return PerformanceAnalysis.extend({ findings: listOf(oneOf(variants), PerformanceFinding) });
}

/** The baseline comparator's answer for these comparisons: each reading with the verdict computed for it. */
export function baselinesAnswer(facts: BaselineFacts): z.ZodType<BaselineInterpretation> {
  const seen = new Set<string>();
  const variants = facts.comparisons.flatMap((comparison) => {
    if (seen.has(comparison.baseline)) return [];
    seen.add(comparison.baseline);
    return [
      BaselineReading.extend({
        baseline: z.literal(comparison.baseline),
        verdict: z.literal(comparison.verdict),
      }),
    ];
  });
  return BaselineInterpretation.extend({ comparisons: listOf(oneOf(variants), BaselineReading) });
}

/** A value of the same type as `value`. */
function sameType(value: HyperparameterValue) {
  if (typeof value === 'number') return z.number();
  if (typeof value === 'string') return z.string();
  return z.boolean();
}

/**
 * The ablation designer's answer for this spec: each modification names a parameter of its config, starts
 * from the parameter's value there and goes to a value of the same type.
 */
export function ablationsAnswer(spec: ExperimentSpec): z.ZodType<AblationPlan> {
  const variants = Object.entries(spec.config).map(([parameter, value]) =>
    ProposedModification.extend({
      parameter: z.literal(parameter),
      from: z.literal(value),
      to: sameType(value),
    }),
  );
  const modification = oneOf<z.infer<typeof ProposedModification>>(variants);
  // Without a parameter to change there is no valid proposal at all.
  const proposals = modification
    ? z.array(AblationProposalOutput.extend({ modifications: z.array(modification) }))
    : z.array(AblationProposalOutput).max(0);
  return AblationPlan.extend({ proposals });
}

/** The report writer's answer: the hypothesis verdict is the one the deliverables decided. */
export function reportAnswer(decided: HypothesisVerdict): z.ZodType<ReportNarrative> {
  return ReportNarrative.extend({
    hypothesis_outcome: ReportNarrative.shape.hypothesis_outcome.extend({ verdict: z.literal(decided) }),
  });
}
