import { MetricAggregatesAccumulator, readMetricValue } from '../../src/experiment';

describe('readMetricValue', () => {
  test.each([
    [0.25, 0.25],
    ['NaN', Number.NaN],
    ['nan', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['-inf', Number.NEGATIVE_INFINITY],
  ])('reads %j as %d', (raw, value) => {
    expect(readMetricValue(raw)).toBe(value);
  });

  test.each([null, '0.5', true, { _type: 'histogram' }, [1]])('does not read %j as a metric', (raw) => {
    expect(readMetricValue(raw)).toBeUndefined();
  });
});

describe('MetricAggregatesAccumulator', () => {
  test('computes count, final, min and max of the chosen metrics only', () => {
    const accumulator = new MetricAggregatesAccumulator(['loss']);
    for (const [step, loss] of [2.0, 0.5, 0.8].entries())
      accumulator.add({ _step: step, loss, accuracy: 0.5 });
    expect(accumulator.result()).toEqual({ loss: { count: 3, final: 0.8, min: 0.5, max: 2, non_finite: 0 } });
  });

  test('a NaN last value makes final null while min and max stay over finite values', () => {
    const accumulator = new MetricAggregatesAccumulator(['loss']);
    accumulator.add({ loss: 1.5 });
    accumulator.add({ loss: 'NaN' });
    expect(accumulator.result().loss).toEqual({ count: 2, final: null, min: 1.5, max: 1.5, non_finite: 1 });
  });

  test('a metric that never appears reports count 0 and nulls', () => {
    const accumulator = new MetricAggregatesAccumulator(['f1']);
    accumulator.add({ loss: 1 });
    expect(accumulator.result().f1).toEqual({ count: 0, final: null, min: null, max: null, non_finite: 0 });
  });

  test('results are copies: adding rows later does not change an earlier result', () => {
    const accumulator = new MetricAggregatesAccumulator(['loss']);
    accumulator.add({ loss: 1 });
    const before = accumulator.result();
    accumulator.add({ loss: 0.1 });
    expect(before.loss?.min).toBe(1);
    expect(accumulator.result().loss?.min).toBe(0.1);
  });
});
