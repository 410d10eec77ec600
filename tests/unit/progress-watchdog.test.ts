import { ProgressWatchdog } from '../../src/activities/training/progress-watchdog';

test('a trainer that keeps writing metrics is never hung; one silent for the stall timeout is', () => {
  const watchdog = new ProgressWatchdog(60_000, 0);
  expect(watchdog.observe(undefined, 0)).toBeUndefined();
  expect(watchdog.observe({ step: 1 }, 50_000)).toBeUndefined();
  expect(watchdog.observe({ step: 2 }, 100_000)).toBeUndefined();
  expect(watchdog.observe({ step: 2 }, 159_999)).toBeUndefined();
  expect(watchdog.observe({ step: 2 }, 160_000)).toMatch(
    /no new metric for 1m while the training process ran \(training.stall_timeout is 1m\); stopped as hung/,
  );
});

test('a trainer that never writes a metric counts as hung after the timeout from the start of watching', () => {
  const watchdog = new ProgressWatchdog(1_000, 5_000);
  expect(watchdog.observe(undefined, 5_500)).toBeUndefined();
  expect(watchdog.observe(undefined, 6_000)).toMatch(/stopped as hung/);
});

test('the same step logged again with a new time is a new metric; a stall timeout of 0 never fires', () => {
  const watchdog = new ProgressWatchdog(1_000, 0);
  watchdog.observe({ step: 5, updatedAt: '2026-12-03T10:00:00Z' }, 0);
  expect(watchdog.observe({ step: 5, updatedAt: '2026-12-03T10:00:01Z' }, 900)).toBeUndefined();
  expect(watchdog.observe({ step: 5, updatedAt: '2026-12-03T10:00:01Z' }, 1_800)).toBeUndefined();
  const never = new ProgressWatchdog(0, 0);
  expect(never.observe({ step: 1 }, 0)).toBeUndefined();
  expect(never.observe({ step: 1 }, 1e9)).toBeUndefined();
});
