import { z } from 'zod';
import type { ValidationReport, ValidationResult } from './deliverables';

/**
 * What the run says about the hypothesis: `supported` (every metric threshold the spec set was met),
 * `not_supported` (a required one was missed), `inconclusive` (nothing tested it: no threshold deliverable,
 * or no validation).
 */
export const HypothesisVerdict = z.enum(['supported', 'not_supported', 'inconclusive']);
/** What the run says about the hypothesis. */
export type HypothesisVerdict = z.infer<typeof HypothesisVerdict>;

/**
 * The threshold deliverables that test the hypothesis: the required ones, or every threshold when none is
 * required. Existence checks only say that the run produced its outputs, so they do not count.
 */
export function hypothesisThresholds(validation: ValidationReport): ValidationResult[] {
  const thresholds = validation.results.filter((result) => result.type === 'threshold');
  const required = thresholds.filter((result) => result.required);
  return required.length > 0 ? required : thresholds;
}

/**
 * The hypothesis verdict, decided in code from the validation report: `not_supported` when a threshold of
 * {@link hypothesisThresholds} was missed, `supported` when there are some and all were met, else
 * `inconclusive` (also without a validation report). Writers explain it; they do not decide it.
 */
export function hypothesisVerdict(validation: ValidationReport | null): HypothesisVerdict {
  if (!validation) return 'inconclusive';
  const thresholds = hypothesisThresholds(validation);
  if (thresholds.some((result) => !result.passed)) return 'not_supported';
  return thresholds.length > 0 ? 'supported' : 'inconclusive';
}
