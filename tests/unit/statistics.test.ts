import {
  cohensD,
  hedgesG,
  logGamma,
  mean,
  meanConfidenceInterval,
  regularizedIncompleteBeta,
  sampleVariance,
  studentTCdf,
  studentTQuantile,
  welchTTest,
} from '../../src/experiment';

// Reference values from SciPy 1.17 (scipy.stats.t, scipy.special.betainc, scipy.stats.ttest_ind).

describe('special functions', () => {
  test.each([
    [1, 0],
    [0.5, Math.log(Math.sqrt(Math.PI))],
    [10, Math.log(362_880)],
    [0.1, 2.252712651734206],
  ])('logGamma(%d)', (x, expected) => {
    expect(logGamma(x)).toBeCloseTo(expected, 12);
  });

  test.each([
    [0.3, 2.5, 0.5, 0.018927124071945658],
    [0.9, 10, 3, 0.889130022255],
    [0, 2, 3, 0],
    [1, 2, 3, 1],
  ])('regularizedIncompleteBeta(%d, %d, %d)', (x, a, b, expected) => {
    expect(regularizedIncompleteBeta(x, a, b)).toBeCloseTo(expected, 11);
  });

  test('regularizedIncompleteBeta refuses arguments outside its domain', () => {
    expect(() => regularizedIncompleteBeta(1.5, 1, 1)).toThrow(RangeError);
    expect(() => regularizedIncompleteBeta(0.5, 0, 1)).toThrow(RangeError);
  });
});

describe('Student t distribution', () => {
  test.each([
    [2.0, 10, 0.9633059826146299],
    [-1.5, 3.5, 0.10890909350767251],
    [0.3, 1, 0.5927735790777423],
    [4.2, 200, 0.9999799122425479],
    [0, 7, 0.5],
  ])('studentTCdf(%d, df=%d)', (t, df, expected) => {
    expect(studentTCdf(t, df)).toBeCloseTo(expected, 11);
  });

  test.each([
    [0.975, 1, 12.706204736174694],
    [0.975, 10, 2.228138851986274],
    [0.975, 30, 2.0422724563012378],
    [0.995, 4.5, 4.272823993011293],
    [0.025, 10, -2.228138851986274],
  ])('studentTQuantile(%d, df=%d)', (p, df, expected) => {
    expect(studentTQuantile(p, df)).toBeCloseTo(expected, 8);
  });
});

const a = [0.912, 0.905, 0.921, 0.918, 0.909];
const b = [0.887, 0.893, 0.899, 0.881];

describe('sample statistics', () => {
  test('mean and sample variance (n − 1)', () => {
    expect(mean([1, 2, 3, 4])).toBe(2.5);
    expect(sampleVariance([1, 2, 3, 4])).toBeCloseTo(5 / 3, 12);
  });

  test('refuse empty and non-finite samples', () => {
    expect(() => mean([])).toThrow(/at least 1/);
    expect(() => mean([1, Number.NaN])).toThrow(/finite/);
  });

  test('95% confidence interval of the mean uses the t distribution', () => {
    const estimate = meanConfidenceInterval(a);
    expect(estimate.n).toBe(5);
    expect(estimate.mean).toBeCloseTo(0.913, 12);
    expect(estimate.lower).toBeCloseTo(0.9049053410764565, 10);
    expect(estimate.upper).toBeCloseTo(0.9210946589235436, 10);
  });

  test('a wider level gives a wider interval', () => {
    const narrow = meanConfidenceInterval(a, 0.9);
    const wide = meanConfidenceInterval(a, 0.99);
    expect((wide.upper ?? 0) - (wide.lower ?? 0)).toBeGreaterThan((narrow.upper ?? 0) - (narrow.lower ?? 0));
  });

  test('one value has a mean but no interval', () => {
    expect(meanConfidenceInterval([0.9])).toEqual({
      n: 1,
      mean: 0.9,
      std: 0,
      level: 0.95,
      lower: null,
      upper: null,
    });
  });
});

describe('welchTTest', () => {
  test('matches scipy.stats.ttest_ind(equal_var=False)', () => {
    const result = welchTTest(a, b);
    expect(result.t).toBeCloseTo(4.744537732790426, 10);
    expect(result.df).toBeCloseTo(5.934184016118201, 10);
    expect(result.p_value).toBeCloseTo(0.003271317964725164, 10);
    expect(result.difference).toBeCloseTo(0.913 - 0.89, 12);
  });

  test('is symmetric: swapping the samples flips t and keeps p', () => {
    const forward = welchTTest(a, b);
    const backward = welchTTest(b, a);
    expect(backward.t).toBeCloseTo(-(forward.t ?? 0), 12);
    expect(backward.p_value).toBeCloseTo(forward.p_value ?? 0, 12);
  });

  test('two constant samples have no t statistic rather than an infinite one', () => {
    expect(welchTTest([1, 1, 1], [2, 2])).toEqual({
      mean_a: 1,
      mean_b: 2,
      difference: -1,
      t: null,
      df: null,
      p_value: null,
    });
  });

  test('needs two values per sample', () => {
    expect(() => welchTTest([1], [2, 3])).toThrow(/at least 2/);
  });
});

describe('effect sizes', () => {
  test("Cohen's d uses the pooled standard deviation", () => {
    expect(cohensD(a, b)).toBeCloseTo(3.252691193458103, 10);
  });

  test("Hedges' g applies the exact small-sample correction", () => {
    expect(hedgesG(a, b)).toBeCloseTo(2.8890497757910385, 10);
  });

  test('are null when both samples are constant', () => {
    expect(cohensD([1, 1], [1, 1])).toBeNull();
    expect(hedgesG([1, 1], [2, 2])).toBeNull();
  });
});
