import type { HistoryRow } from '../../src/experiment';
import {
  AnalysisAccumulator,
  AnalysisFacts,
  computeAnalysis,
  metricGoalFromName,
} from '../../src/experiment';

/** Deterministic noise in [-1, 1) (a linear congruential generator), so curves are the same on every run. */
function noise(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_664_525 + 1_013_904_223) % 4_294_967_296;
    return (state / 4_294_967_296) * 2 - 1;
  };
}

/** Deterministic noise of mean 0 and standard deviation 1, bell-shaped (a sum of four uniform draws). */
function gaussian(seed: number): () => number {
  const uniform = noise(seed);
  return () => (uniform() + uniform() + uniform() + uniform()) * Math.sqrt(3 / 4);
}

function curve(steps: number, value: (step: number) => Record<string, number | string | null>): HistoryRow[] {
  return Array.from({ length: steps }, (_, step) => ({ _step: step, ...value(step) }));
}

describe('metricGoalFromName', () => {
  test.each([
    ['train_loss', 'min'],
    ['eval/loss', 'min'],
    ['val_error', 'min'],
    ['perplexity', 'min'],
    ['test_ppl', 'min'],
    ['rmse', 'min'],
    ['accuracy', 'max'],
    ['f1', 'max'],
    ['reward', 'max'],
    ['bleu', 'max'],
  ])('%s is %s-is-better', (metric, goal) => {
    expect(metricGoalFromName(metric)).toBe(goal);
  });
});

describe('computeAnalysis: per-metric facts', () => {
  const rows = curve(10, (step) => ({
    loss: [5, 4, 3, 2, 1.5, 1.2, 1.1, 1.0, 1.05, 1.02][step] ?? 0,
    accuracy: step / 10,
  }));
  const facts = computeAnalysis(rows);

  test('final, best and the step of best follow the goal guessed from the name', () => {
    expect(facts.metrics.loss).toMatchObject({
      goal: 'min',
      final: 1.02,
      final_step: 9,
      best: 1.0,
      best_step: 7,
      points: 10,
    });
    expect(facts.metrics.accuracy).toMatchObject({ goal: 'max', final: 0.9, best: 0.9, best_step: 9 });
  });

  test('a goal given in the options overrides the name', () => {
    const overridden = computeAnalysis(rows, { goals: { loss: 'max' } });
    expect(overridden.metrics.loss).toMatchObject({ goal: 'max', best: 5, best_step: 0 });
  });

  test('counts rows and the step range; skips _ keys and values that are not numbers', () => {
    const mixed = computeAnalysis([
      { _step: 3, _runtime: 1.2, loss: 1, note: 'x', hist: { _type: 'histogram' } },
      { _step: 7, loss: 0.5 },
    ]);
    expect(mixed.rows).toBe(2);
    expect([mixed.first_step, mixed.last_step]).toEqual([3, 7]);
    expect(Object.keys(mixed.metrics)).toEqual(['loss']);
  });

  test('rows without _step are numbered by position', () => {
    const facts = computeAnalysis([{ loss: 3 }, { loss: 1 }, { loss: 2 }]);
    expect(facts.metrics.loss).toMatchObject({ best_step: 1, final_step: 2 });
  });

  test('the result is plain JSON that parses with its schema (no NaN, no undefined)', () => {
    const diverged = computeAnalysis(
      curve(8, (step) => ({ loss: step < 5 ? 1 / (step + 1) : 'NaN', acc: 0.5 })),
    );
    expect(JSON.parse(JSON.stringify(diverged))).toEqual(diverged);
    expect(AnalysisFacts.parse(diverged)).toEqual(diverged);
  });
});

describe('computeAnalysis: divergence', () => {
  test('NaN values mean divergence at the first non-finite step, and final is null', () => {
    const facts = computeAnalysis(
      curve(10, (step) => ({ loss: step < 6 ? 2 - step * 0.1 : step === 6 ? 'Infinity' : 'NaN' })),
    );
    expect(facts.metrics.loss).toMatchObject({
      diverged: true,
      divergence_reason: 'non_finite',
      first_non_finite_step: 6,
      non_finite_points: 4,
      final: null,
      best: 1.5,
    });
    expect(facts.anomalies).toContainEqual(expect.objectContaining({ kind: 'divergence', metric: 'loss' }));
  });

  test('a loss that ends above twice its best has moved away from it', () => {
    const facts = computeAnalysis(
      curve(10, (step) => ({ loss: step < 5 ? 1 - step * 0.1 : 0.6 + (step - 4) * 0.3 })),
    );
    expect(facts.metrics.loss).toMatchObject({ diverged: true, divergence_reason: 'moved_away_from_best' });
  });

  test('an accuracy that collapses below half its best has moved away from it', () => {
    const facts = computeAnalysis(curve(10, (step) => ({ accuracy: step < 8 ? 0.1 * step : 0.2 })));
    expect(facts.metrics.accuracy?.divergence_reason).toBe('moved_away_from_best');
  });

  test('a healthy loss curve has not diverged', () => {
    const facts = computeAnalysis(curve(100, (step) => ({ loss: 2 * Math.exp(-step / 30) + 0.1 })));
    expect(facts.metrics.loss).toMatchObject({ diverged: false, divergence_reason: null });
  });

  test('a noisy minibatch loss ending above its luckiest batch but far below its start has not diverged', () => {
    // Final 0.3 is 6× the best batch (0.05) but most of the way down from 1.0.
    const losses = [1, 0.8, 0.6, 0.05, 0.4, 0.35, 0.3];
    const facts = computeAnalysis(curve(losses.length, (step) => ({ loss: losses[step]! })));
    expect(facts.metrics.loss).toMatchObject({ diverged: false, divergence_reason: null });
  });

  test('a loss that climbs back past halfway to where it started has diverged', () => {
    const losses = [1, 0.6, 0.2, 0.1, 0.3, 0.7, 0.9];
    const facts = computeAnalysis(curve(losses.length, (step) => ({ loss: losses[step]! })));
    expect(facts.metrics.loss?.divergence_reason).toBe('moved_away_from_best');
  });
});

describe('computeAnalysis: plateau', () => {
  test('a loss that stops improving over the last quarter of steps has plateaued, and that is an anomaly', () => {
    const facts = computeAnalysis(curve(200, (step) => ({ loss: step < 100 ? 2 - step * 0.015 : 0.5 })));
    expect(facts.metrics.loss?.plateau).toMatchObject({ plateaued: true, window_start_step: 150 });
    expect(facts.metrics.loss?.plateau?.relative_improvement).toBeCloseTo(0, 12);
    expect(facts.anomalies).toContainEqual(expect.objectContaining({ kind: 'plateau', metric: 'loss' }));
  });

  test('a loss still falling at the end has not plateaued', () => {
    const facts = computeAnalysis(curve(200, (step) => ({ loss: 2 - step * 0.005 })));
    expect(facts.metrics.loss?.plateau?.plateaued).toBe(false);
    expect(facts.metrics.loss?.plateau?.relative_improvement).toBeGreaterThan(0.1);
  });

  test('a metric that never improved is flat, not a plateau anomaly', () => {
    const facts = computeAnalysis(curve(50, () => ({ learning_rate: 0.001 })));
    expect(facts.metrics.learning_rate?.plateau?.plateaued).toBe(true);
    expect(facts.anomalies).toEqual([]);
  });

  test('too few points give no plateau statistics', () => {
    expect(computeAnalysis(curve(3, (step) => ({ loss: 3 - step }))).metrics.loss?.plateau).toBeNull();
  });
});

describe('computeAnalysis: instability, against the noise of the curve itself', () => {
  /** A minibatch loss: falls fast, then flat, with noise far larger than the trend over the last two thirds. */
  const minibatchLoss = (random: () => number) => (step: number) =>
    0.2 + 0.3 * Math.exp(-step / 20) + 0.08 * random();

  test('a decreasing curve with ordinary minibatch noise is not unstable, nor is a smooth one', () => {
    const random = gaussian(7);
    const loss = minibatchLoss(random);
    const facts = computeAnalysis(
      curve(300, (step) => ({ noisy_loss: loss(step), smooth_loss: 2 * Math.exp(-step / 100) })),
    );
    // The noise dominates the spread of the values, which is what a rule comparing the two mistook for
    // instability; measured against the curve's own noise, nothing stands out.
    expect(facts.anomalies.filter((anomaly) => anomaly.kind === 'instability')).toEqual([]);
    expect(facts.metrics.noisy_loss?.unstable).toBe(false);
    expect(facts.metrics.noisy_loss?.std).toBeLessThan(0.15);
    expect(facts.metrics.noisy_loss?.noise_std).toBeCloseTo(0.08, 1);
    expect(facts.metrics.noisy_loss?.spikes).toBe(0);
    expect(facts.metrics.noisy_loss?.largest_spike).toBeLessThan(8);
    expect(facts.metrics.smooth_loss).toMatchObject({ unstable: false, spikes: 0, largest_spike: 0 });
  });

  test('loss spikes far above the noise make the curve unstable, with the largest spike and its step', () => {
    const random = gaussian(7);
    const loss = minibatchLoss(random);
    const spikes: Record<number, number> = { 120: 0.9, 210: 1.4 };
    const facts = computeAnalysis(curve(300, (step) => ({ loss: loss(step) + (spikes[step] ?? 0) })));
    expect(facts.metrics.loss).toMatchObject({ unstable: true, spikes: 2, largest_spike_step: 210 });
    expect(facts.metrics.loss?.largest_spike).toBeGreaterThan(10);
    expect(facts.anomalies).toContainEqual(expect.objectContaining({ kind: 'instability', metric: 'loss' }));
  });

  test('a curve that starts to swing ever wider is unstable', () => {
    const random = gaussian(11);
    const facts = computeAnalysis(
      curve(300, (step) => ({
        loss: 1 / (1 + step / 30) + 0.01 * random() + (step > 200 ? 0.01 * (step - 200) * (step % 2) : 0),
      })),
    );
    expect(facts.metrics.loss?.unstable).toBe(true);
    expect(facts.metrics.loss?.largest_spike_step).toBeGreaterThan(250);
  });

  test('an accuracy that climbs on a small eval set, in steps of 1/256, is not unstable', () => {
    const random = gaussian(5);
    const facts = computeAnalysis(
      curve(60, (step) => ({
        'eval/accuracy': Math.round(256 * (0.95 - 0.4 * Math.exp(-step / 8) + 0.004 * random())) / 256,
      })),
    );
    expect(facts.metrics['eval/accuracy']?.unstable).toBe(false);
  });
});

describe('computeAnalysis: improvement and plateaus, against noise', () => {
  test('a loss that fell 10% and ends at its best improved, even where its flat end is noise', () => {
    const random = gaussian(7);
    const values = Array.from(
      { length: 200 },
      (_, step) => 0.9 + 0.1 * Math.exp(-step / 15) + 0.004 * random(),
    );
    values[199] = Math.min(...values) - 0.001;
    const facts = computeAnalysis(values.map((loss, step) => ({ _step: step, loss })));
    const loss = facts.metrics.loss!;
    expect(loss.goal).toBe('min');
    expect([loss.final_step, loss.best_step]).toEqual([199, 199]);
    expect(loss.improvement).toBeGreaterThan(0.09);
    expect(loss.improvement).toBeLessThan(0.13);
    // Its last quarter is flat: the difference between its first and last part is noise, here slightly
    // negative, which must not read as a worsening.
    expect(loss.plateau).toMatchObject({ plateaued: true, within_noise: true });
    expect(loss.plateau?.relative_improvement).toBeLessThan(0);
  });

  test('the plateau anomaly says "levelled off" for a change within noise, never "improved -0.2%"', () => {
    const random = gaussian(7);
    const values = Array.from(
      { length: 200 },
      (_, step) => 0.9 + 0.1 * Math.exp(-step / 15) + 0.004 * random(),
    );
    values[199] = Math.min(...values) - 0.001;
    const facts = computeAnalysis(values.map((loss, step) => ({ _step: step, loss })));
    const plateau = facts.anomalies.find((anomaly) => anomaly.kind === 'plateau');
    expect(plateau?.message).toMatch(
      /^loss levelled off from step 150: its change to the end, -0\.\d+%, is within its noise$/,
    );
    expect(plateau?.message).not.toMatch(/improved -/);
  });

  test('a metric that really got worse over its last quarter is beyond the noise', () => {
    const random = gaussian(3);
    const facts = computeAnalysis(
      curve(200, (step) => ({ loss: (step < 150 ? 1 : 1 + 0.004 * (step - 150)) + 0.002 * random() })),
    );
    expect(facts.metrics.loss?.plateau?.within_noise).toBe(false);
    expect(facts.metrics.loss?.plateau?.relative_improvement).toBeLessThan(-0.05);
  });
});

describe('computeAnalysis: train/eval pairs', () => {
  test.each([
    ['train_loss', 'eval_loss', 'loss'],
    ['train/loss', 'eval/loss', 'loss'],
    ['loss', 'val_loss', 'loss'],
    ['train_accuracy', 'validation_accuracy', 'accuracy'],
    ['loss_train', 'loss_val', 'loss'],
  ])('pairs %s with %s and computes the final gap', (train, evalName, base) => {
    const facts = computeAnalysis([
      { _step: 0, [train]: 1.0, [evalName]: 1.2 },
      { _step: 1, [train]: 0.5, [evalName]: 0.8 },
    ]);
    expect(facts.pairs).toEqual([expect.objectContaining({ base, train, eval: evalName, gap: 0.8 - 0.5 })]);
    expect(facts.pairs[0]?.relative_gap).toBeCloseTo(0.6, 12);
  });

  test('prefers the validation metric over the test metric for the same train metric', () => {
    const facts = computeAnalysis([{ _step: 0, train_loss: 1, test_loss: 2, val_loss: 1.5 }]);
    expect(facts.pairs.map((pair) => pair.eval)).toEqual(['val_loss']);
  });

  test('eval rising from its best while train keeps falling is overfitting', () => {
    const facts = computeAnalysis(
      curve(100, (step) => ({
        train_loss: 2 * Math.exp(-step / 20),
        eval_loss: 0.5 + 0.0002 * (step - 40) ** 2,
      })),
    );
    const [pair] = facts.pairs;
    expect(pair).toMatchObject({ overfitting: true });
    expect(pair?.eval_worsening_since_best).toBeCloseTo((0.5 + 0.0002 * 59 ** 2 - 0.5) / 0.5, 12);
    expect(pair?.train_improvement_since_eval_best).toBeGreaterThan(0);
    expect(facts.anomalies).toContainEqual(
      expect.objectContaining({ kind: 'overfitting', metric: 'eval_loss' }),
    );
  });

  test('eval and train both falling is not overfitting', () => {
    const facts = computeAnalysis(
      curve(100, (step) => ({ train_loss: 2 * Math.exp(-step / 20), eval_loss: 2.2 * Math.exp(-step / 25) })),
    );
    expect(facts.pairs[0]?.overfitting).toBe(false);
  });
});

describe('computeAnalysis: generalization gap, like with like', () => {
  /** The same loss curve, seen through noisy minibatches every step and a low-noise full evaluation every 20. */
  const sameCurve = (step: number) => 0.3 + 0.5 * Math.exp(-step / 80);

  test('train and eval that differ only by noise have no gap, though the last minibatch says 21%', () => {
    const random = gaussian(1);
    const facts = computeAnalysis(
      curve(401, (step) => ({
        train_loss: sameCurve(step) + 0.06 * random(),
        ...(step % 20 === 0 ? { eval_loss: sameCurve(step) + 0.003 * random() } : {}),
      })),
    );
    const pair = facts.pairs[0]!;
    // The trap: the last minibatch is a lucky one, 21% below the full evaluation.
    expect((pair.eval_final! - pair.train_final!) / pair.train_final!).toBeGreaterThan(0.2);
    expect(pair.train_mean).toBeCloseTo(sameCurve(400), 1);
    expect(pair.window_start_step).toBeGreaterThan(350);
    expect(Math.abs(pair.gap!)).toBeLessThan(3 * pair.gap_noise!);
    expect(pair.generalization_gap).toBe(false);
    expect(facts.metrics.train_loss?.unstable).toBe(false);
  });

  test('an overfitting pair, eval rising while train keeps falling, has a gap beyond the noise', () => {
    const random = gaussian(2);
    const facts = computeAnalysis(
      curve(401, (step) => ({
        train_loss: 2 / (1 + step / 20) + 0.05 * random(),
        ...(step % 20 === 0
          ? {
              eval_loss:
                (step < 160 ? 0.5 + 1.5 / (1 + step / 20) : 0.67 + 0.001 * (step - 160)) + 0.005 * random(),
            }
          : {}),
      })),
    );
    const pair = facts.pairs[0]!;
    expect(pair).toMatchObject({ overfitting: true, generalization_gap: true });
    expect(pair.relative_gap).toBeGreaterThan(1);
    expect(pair.gap).toBeGreaterThan(10 * pair.gap_noise!);
  });

  test('eval better than train (regularisation on the train side) is not a gap', () => {
    const facts = computeAnalysis(
      curve(100, (step) => ({ train_loss: 1 + Math.exp(-step / 20), eval_loss: 0.5 + Math.exp(-step / 20) })),
    );
    expect(facts.pairs[0]?.gap).toBeLessThan(0);
    expect(facts.pairs[0]?.generalization_gap).toBe(false);
  });
});

describe('AnalysisAccumulator', () => {
  test('keeps bounded memory over a long history while exact facts still cover every row', () => {
    const accumulator = new AnalysisAccumulator({ max_points_per_metric: 64 });
    const steps = 200_000;
    for (let step = 0; step < steps; step++) {
      accumulator.add({ _step: step, loss: 1 + 1000 / (step + 1), accuracy: step / steps, lr: 0.001 });
    }
    expect(accumulator.retainedPoints).toBeLessThanOrEqual(3 * 2 * 64);
    const facts = accumulator.result();
    expect(facts.metrics.loss).toMatchObject({
      points: steps,
      first: 1001,
      final: 1 + 1000 / steps,
      best_step: steps - 1,
    });
    expect(facts.metrics.loss?.plateau?.window_start_step).toBeGreaterThanOrEqual(
      0.75 * steps - 2 * (steps / 64),
    );
  });

  test('streaming in pieces, with results taken along the way, equals one pass', () => {
    const random = noise(3);
    const rows = curve(500, (step) => ({
      train_loss: Math.exp(-step / 100) + 0.05 * random(),
      eval_loss: Math.exp(-step / 120),
    }));
    const accumulator = new AnalysisAccumulator({ max_points_per_metric: 16 });
    rows.forEach((row, index) => {
      accumulator.add(row);
      if (index % 97 === 0) accumulator.result();
    });
    expect(accumulator.result()).toEqual(computeAnalysis(rows, { max_points_per_metric: 16 }));
  });

  test('tracks at most max_metrics metrics and lists the ignored ones', () => {
    const facts = computeAnalysis([{ _step: 0, a: 1, b: 2, c: 3 }], { max_metrics: 2 });
    expect(Object.keys(facts.metrics)).toEqual(['a', 'b']);
    expect(facts.ignored_metrics).toEqual(['c']);
  });

  test('analyses only the listed metrics when given', () => {
    const facts = computeAnalysis([{ _step: 0, a: 1, b: 2 }], { metrics: ['b'] });
    expect(Object.keys(facts.metrics)).toEqual(['b']);
    expect(facts.ignored_metrics).toEqual([]);
  });

  test('refuses invalid options with the field named', () => {
    expect(() => new AnalysisAccumulator({ plateau_window: 2 })).toThrow(/plateau_window/);
  });
});
