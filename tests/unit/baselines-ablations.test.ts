import {
  ablationSpec,
  compareWithBaseline,
  ExperimentSpec,
  validateExperimentSpec,
  welchTTest,
  type BaselineSample,
} from '../../src/experiment';

const sample = (values: number[], source = 'spec'): BaselineSample => ({
  values,
  sources: values.map(() => source),
  missing: [],
});

describe('compareWithBaseline', () => {
  test('with seeds on both sides, Welch decides: a clear improvement is "better" for a max metric', () => {
    const facts = compareWithBaseline({
      baseline: 'logreg',
      metric: 'eval/accuracy',
      goal: 'max',
      experiment: sample([0.91, 0.92, 0.93]),
      baselineSample: sample([0.84, 0.85, 0.86]),
    });
    expect(facts.welch).toEqual(welchTTest([0.91, 0.92, 0.93], [0.84, 0.85, 0.86]));
    expect(facts.welch!.p_value!).toBeLessThan(0.05);
    expect(facts.difference).toBeCloseTo(0.07, 12);
    expect(facts.relative_difference).toBeCloseTo(0.07 / 0.85, 12);
    expect(facts.hedges_g).toBeGreaterThan(4);
    expect(facts.verdict).toBe('better');
    expect(facts.experiment).toMatchObject({ n: 3, level: 0.95 });
  });

  test('for a min metric, the same improvement in the numbers is "worse"', () => {
    const facts = compareWithBaseline({
      baseline: 'b',
      metric: 'eval/loss',
      goal: 'min',
      experiment: sample([0.91, 0.92, 0.93]),
      baselineSample: sample([0.84, 0.85, 0.86]),
    });
    expect(facts.verdict).toBe('worse');
  });

  test('overlapping noisy seeds are "no_significant_difference"', () => {
    const facts = compareWithBaseline({
      baseline: 'b',
      metric: 'acc',
      goal: 'max',
      experiment: sample([0.8, 0.9, 0.85]),
      baselineSample: sample([0.82, 0.88, 0.84]),
    });
    expect(facts.verdict).toBe('no_significant_difference');
  });

  test('one run against seeds: the prediction interval decides, and Welch is not computed', () => {
    const inside = compareWithBaseline({
      baseline: 'b',
      metric: 'acc',
      goal: 'max',
      experiment: sample([0.86], 'this run'),
      baselineSample: sample([0.84, 0.85, 0.86]),
    });
    expect(inside.welch).toBeNull();
    expect(inside.prediction_interval!.lower).toBeLessThan(0.84);
    expect(inside.verdict).toBe('no_significant_difference');
    expect(inside.standardized_difference).toBeCloseTo(1, 12);
    const outside = compareWithBaseline({
      baseline: 'b',
      metric: 'acc',
      goal: 'max',
      experiment: sample([0.95], 'this run'),
      baselineSample: sample([0.84, 0.85, 0.86]),
    });
    expect(outside.verdict).toBe('better');
  });

  test('a single baseline value, or no value of ours, is "insufficient_data"', () => {
    expect(
      compareWithBaseline({
        baseline: 'b',
        metric: 'acc',
        goal: 'max',
        experiment: sample([0.9]),
        baselineSample: sample([0.8]),
      }),
    ).toMatchObject({ verdict: 'insufficient_data', difference: expect.closeTo(0.1, 12) });
    expect(
      compareWithBaseline({
        baseline: 'b',
        metric: 'acc',
        goal: 'max',
        experiment: sample([]),
        baselineSample: sample([0.8, 0.9]),
      }),
    ).toMatchObject({ verdict: 'insufficient_data', difference: null });
  });
});

const parent = ExperimentSpec.parse({
  experiment_id: 'exp-parent-01',
  name: 'parent',
  hypothesis: 'h',
  config: { learning_rate: 0.5, steps: 300, optimizer: 'sgd' },
  training: { command: 'node', args: ['train.js'] },
});

describe('ablationSpec: proposals as spec modifications', () => {
  test('a valid proposal gives a child spec with the change and its genealogy, valid against the spec schema', () => {
    const result = ablationSpec(parent, {
      name: 'lower-lr',
      modifications: [{ parameter: 'learning_rate', from: 0.5, to: 0.25 }],
      rationale: 'the loss diverged',
    });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.spec.config).toEqual({ learning_rate: 0.25, steps: 300, optimizer: 'sgd' });
    expect(result.spec.parent).toEqual({
      experiment_id: 'exp-parent-01',
      modifications: [{ parameter: 'learning_rate', from: 0.5, to: 0.25 }],
      rationale: 'the loss diverged',
    });
    expect(result.spec.experiment_id).toBe('exp-parent-01-lower-lr');
    expect(validateExperimentSpec(result.spec).ok).toBe(true);
  });

  test('unknown parameters, wrong from values, type changes, no-ops and bad names are named problems', () => {
    const result = ablationSpec(parent, {
      name: 'Bad Name',
      modifications: [
        { parameter: 'dropout', from: null, to: 0.1 },
        { parameter: 'learning_rate', from: 0.1, to: 'fast' },
        { parameter: 'steps', from: 300, to: 300 },
      ],
      rationale: '',
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toEqual([
      expect.stringMatching(/name must be 1 to 24 lowercase/),
      expect.stringMatching(
        /dropout is not a parameter of the spec's config \(it has learning_rate, steps, optimizer\)/,
      ),
      expect.stringMatching(/learning_rate is 0.5 in the spec, not 0.1/),
      expect.stringMatching(/learning_rate is a number in the spec; "fast" is a string/),
      expect.stringMatching(/steps is already 300/),
    ]);
  });

  test('a proposal that changes nothing is refused', () => {
    const result = ablationSpec(parent, { name: 'noop', modifications: [], rationale: 'r' });
    expect(result).toEqual({ ok: false, problems: ['proposal "noop": changes no parameter'] });
  });
});
