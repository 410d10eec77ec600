import { z } from 'zod';

// Statistics for comparing runs (seeds, baselines). Implemented here rather than taken from a library so that
// workflow code can import it and every number an agent quotes is computed by code we test.

const LANCZOS = [
  676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
  -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** Natural logarithm of the gamma function for `x > 0` (Lanczos approximation, ~15 significant digits). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  const shifted = x - 1;
  let sum = 0.99999999999980993;
  LANCZOS.forEach((coefficient, i) => {
    sum += coefficient / (shifted + i + 1);
  });
  const t = shifted + LANCZOS.length - 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (shifted + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** Continued fraction of the incomplete beta function (modified Lentz), valid for x < (a+1)/(a+b+2). */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let result = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let step = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + step * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + step / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    result *= d * c;
    step = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + step * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + step / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    result *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return result;
}

/**
 * The regularized incomplete beta function I_x(a, b), for `0 <= x <= 1` and `a, b > 0`.
 *
 * @throws RangeError outside that domain
 */
export function regularizedIncompleteBeta(x: number, a: number, b: number): number {
  if (!(a > 0 && b > 0) || !(x >= 0 && x <= 1)) {
    throw new RangeError(
      `regularizedIncompleteBeta needs 0 <= x <= 1 and a, b > 0 (got x=${x}, a=${a}, b=${b})`,
    );
  }
  if (x === 0 || x === 1) return x;
  const logFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x);
  // The continued fraction converges fast on one side of the mean; use the symmetry I_x(a,b) = 1 - I_{1-x}(b,a).
  if (x < (a + 1) / (a + b + 2)) return (Math.exp(logFront) * betaContinuedFraction(x, a, b)) / a;
  return 1 - (Math.exp(logFront) * betaContinuedFraction(1 - x, b, a)) / b;
}

/**
 * Cumulative distribution function of Student's t distribution with `df` degrees of freedom (`df > 0`,
 * fractional allowed, as Welch's test produces).
 */
export function studentTCdf(t: number, df: number): number {
  if (!(df > 0)) throw new RangeError(`studentTCdf needs df > 0 (got ${df})`);
  if (Number.isNaN(t)) return Number.NaN;
  if (t === Number.POSITIVE_INFINITY) return 1;
  if (t === Number.NEGATIVE_INFINITY) return 0;
  const tail = 0.5 * regularizedIncompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t > 0 ? 1 - tail : tail;
}

/** The `p` quantile of Student's t distribution with `df` degrees of freedom, `0 < p < 1` (by bisection). */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`studentTQuantile needs 0 < p < 1 (got ${p})`);
  if (!(df > 0)) throw new RangeError(`studentTQuantile needs df > 0 (got ${df})`);
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let low = 0;
  let high = 1;
  while (studentTCdf(high, df) < p && high < 1e12) high *= 2;
  for (let i = 0; i < 200 && high - low > 1e-12 * Math.max(1, high); i++) {
    const middle = (low + high) / 2;
    if (studentTCdf(middle, df) < p) low = middle;
    else high = middle;
  }
  return (low + high) / 2;
}

function requireSample(values: readonly number[], minimum: number, what: string): void {
  if (values.length < minimum)
    throw new RangeError(`${what} needs at least ${minimum} values per sample (got ${values.length})`);
  if (!values.every(Number.isFinite)) throw new RangeError(`${what} needs finite values`);
}

/** Arithmetic mean. */
export function mean(values: readonly number[]): number {
  requireSample(values, 1, 'mean');
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

/** Sample variance (divides by n − 1). */
export function sampleVariance(values: readonly number[]): number {
  requireSample(values, 2, 'sampleVariance');
  const center = mean(values);
  return values.reduce((sum, value) => sum + (value - center) ** 2, 0) / (values.length - 1);
}

/** A sample mean with its confidence interval from the t distribution. */
export const MeanEstimate = z.object({
  /** Sample size. */
  n: z.number().int().positive(),
  /** Sample mean. */
  mean: z.number(),
  /** Sample standard deviation (n − 1); 0 for a single value. */
  std: z.number().nonnegative(),
  /** Confidence level, e.g. 0.95. */
  level: z.number(),
  /** Lower bound of the interval; `null` with a single value. */
  lower: z.number().nullable(),
  /** Upper bound of the interval; `null` with a single value. */
  upper: z.number().nullable(),
});
/** A sample mean with its confidence interval. */
export type MeanEstimate = z.infer<typeof MeanEstimate>;

/**
 * Mean and confidence interval (default 95%) over values such as one metric across seeds:
 * mean ± t(1−(1−level)/2, n−1) · s/√n. With one value the interval is unknown (`null` bounds).
 */
export function meanConfidenceInterval(values: readonly number[], level = 0.95): MeanEstimate {
  if (!(level > 0 && level < 1)) throw new RangeError(`level must be between 0 and 1 (got ${level})`);
  const center = mean(values);
  if (values.length < 2) return { n: values.length, mean: center, std: 0, level, lower: null, upper: null };
  const std = Math.sqrt(sampleVariance(values));
  const half = studentTQuantile(1 - (1 - level) / 2, values.length - 1) * (std / Math.sqrt(values.length));
  return { n: values.length, mean: center, std, level, lower: center - half, upper: center + half };
}

/** The result of Welch's two-sample t-test. */
export const WelchTTestResult = z.object({
  /** Mean of the first sample. */
  mean_a: z.number(),
  /** Mean of the second sample. */
  mean_b: z.number(),
  /** `mean_a − mean_b`. */
  difference: z.number(),
  /** The t statistic; `null` when both samples have zero variance. */
  t: z.number().nullable(),
  /** Welch–Satterthwaite degrees of freedom; `null` when both samples have zero variance. */
  df: z.number().nullable(),
  /** Two-sided p-value; `null` when both samples have zero variance. */
  p_value: z.number().nullable(),
});
/** The result of Welch's two-sample t-test. */
export type WelchTTestResult = z.infer<typeof WelchTTestResult>;

/**
 * Welch's t-test (unequal variances) of the difference in means between two samples, two-sided.
 *
 * @throws RangeError when a sample has fewer than 2 values or a non-finite value
 */
export function welchTTest(a: readonly number[], b: readonly number[]): WelchTTestResult {
  requireSample(a, 2, 'welchTTest');
  requireSample(b, 2, 'welchTTest');
  const meanA = mean(a);
  const meanB = mean(b);
  const errorA = sampleVariance(a) / a.length;
  const errorB = sampleVariance(b) / b.length;
  const base = { mean_a: meanA, mean_b: meanB, difference: meanA - meanB };
  const standardError = Math.sqrt(errorA + errorB);
  if (standardError === 0) return { ...base, t: null, df: null, p_value: null };
  const t = (meanA - meanB) / standardError;
  const df = (errorA + errorB) ** 2 / (errorA ** 2 / (a.length - 1) + errorB ** 2 / (b.length - 1));
  const pValue = Math.min(1, 2 * studentTCdf(-Math.abs(t), df));
  return { ...base, t, df, p_value: pValue };
}

/**
 * Cohen's d: difference in means over the pooled standard deviation. `null` when the pooled standard
 * deviation is zero.
 */
export function cohensD(a: readonly number[], b: readonly number[]): number | null {
  requireSample(a, 2, 'cohensD');
  requireSample(b, 2, 'cohensD');
  const pooled = Math.sqrt(
    ((a.length - 1) * sampleVariance(a) + (b.length - 1) * sampleVariance(b)) / (a.length + b.length - 2),
  );
  return pooled === 0 ? null : (mean(a) - mean(b)) / pooled;
}

/**
 * Hedges' g: Cohen's d with the exact small-sample correction
 * J = Γ(df/2) / (√(df/2) · Γ((df−1)/2)), df = n_a + n_b − 2. Prefer it for a handful of seeds.
 */
export function hedgesG(a: readonly number[], b: readonly number[]): number | null {
  const d = cohensD(a, b);
  if (d === null) return null;
  const df = a.length + b.length - 2;
  if (df < 2) return null;
  const correction = Math.exp(logGamma(df / 2) - logGamma((df - 1) / 2)) / Math.sqrt(df / 2);
  return d * correction;
}
