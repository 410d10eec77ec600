import { TrackedRunFollower } from '../../src/activities/training/tracked-run-follower';
import { RunNotFoundError, type TrackedRunState } from '../../src/activities/tracking/run-tracker';

/** A tracker whose answers the test sets, and a clock the test moves. */
function scene() {
  let now = Date.parse('2026-01-01T00:00:00Z');
  let answer: TrackedRunState | Error = new RunNotFoundError('no run yet');
  let asked = 0;
  const tracker = {
    async runState(): Promise<TrackedRunState> {
      asked += 1;
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
  const follower = new TrackedRunFollower(
    tracker,
    { experimentId: 'exp-1', entity: 'acme', project: 'p', runId: 'exp-1' },
    { intervalMs: 30_000, stallTimeoutMs: 600_000, now: () => now },
  );
  return {
    follower,
    set: (value: TrackedRunState | Error) => (answer = value),
    advance: (ms: number) => (now += ms),
    asked: () => asked,
  };
}

test('asks the tracker at most once per interval, and records a failed question without throwing', async () => {
  const s = scene();
  expect(await s.follower.poll()).toMatchObject({ error: 'no run yet' });
  await s.follower.poll();
  expect(s.asked()).toBe(1);
  s.advance(30_000);
  s.set({ state: 'running', heartbeatAt: '2026-01-01T00:00:20.000Z' });
  expect(await s.follower.poll()).toEqual({
    state: 'running',
    heartbeatAt: '2026-01-01T00:00:20.000Z',
    checkedAt: '2026-01-01T00:00:30.000Z',
  });
  expect(s.asked()).toBe(2);
});

test('a run that heartbeat during the watch and then went silent past the timeout is stalled', async () => {
  const s = scene();
  s.set({ state: 'running', heartbeatAt: 'T1' });
  await s.follower.poll();
  s.advance(30_000);
  s.set({ state: 'running', heartbeatAt: 'T2' });
  await s.follower.poll();
  expect(s.follower.stallReason()).toBeUndefined();
  for (let i = 0; i < 19; i += 1) {
    s.advance(30_000);
    await s.follower.poll();
  }
  expect(s.follower.stallReason()).toBeUndefined();
  s.advance(30_000);
  await s.follower.poll();
  expect(s.follower.latest?.silentSeconds).toBe(600);
  expect(s.follower.stallReason()).toMatch(
    /W&B run acme\/p\/exp-1 stopped heartbeating \(last heartbeat T2, 600 s without a new one; W&B state running\)/,
  );
});

test('never stalled: a run never seen heartbeating, a run that finished, or a timeout of 0', async () => {
  const silent = scene();
  silent.set({ state: 'running', heartbeatAt: 'T1' });
  await silent.follower.poll();
  silent.advance(3_600_000);
  await silent.follower.poll();
  expect(silent.follower.stallReason()).toBeUndefined();

  const finished = scene();
  finished.set({ state: 'running', heartbeatAt: 'T1' });
  await finished.follower.poll();
  finished.advance(30_000);
  finished.set({ state: 'finished', heartbeatAt: 'T2' });
  await finished.follower.poll();
  finished.advance(3_600_000);
  await finished.follower.poll();
  expect(finished.follower.stallReason()).toBeUndefined();

  let now = 0;
  const heartbeats = ['T1', 'T2'];
  const off = new TrackedRunFollower(
    { runState: async () => ({ state: 'running', heartbeatAt: heartbeats.shift() ?? 'T2' }) },
    { experimentId: 'exp-1' },
    { intervalMs: 0, stallTimeoutMs: 0, now: () => now },
  );
  await off.poll();
  await off.poll();
  now += 3_600_000;
  expect(off.stallReason()).toBeUndefined();
});
