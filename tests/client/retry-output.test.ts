import type { ExperimentStatus } from '../../src/experiment';
import { describeChange } from '../../src/client/cli-experiments';
import { formatStatus } from '../../src/client/cli-format';

const validating: ExperimentStatus = {
  experiment_id: 'exp-a',
  name: 'A',
  stage: 'validation',
  stage_since: '2026-12-03T10:05:00.000Z',
  decisions: [],
  attempts: [],
  preemptions: 0,
  failures: 0,
  links: { run_dir: '/runs/exp-a' },
  costs: { llm_usd: 0, llm_prompt_tokens: 0, llm_completion_tokens: 0, gpu_hours: 0 },
};

const retrying = (failed: number): ExperimentStatus => ({
  ...validating,
  retrying: {
    activity: 'validateDeliverables',
    failed_attempts: failed,
    max_attempts: 8,
    failure_type: 'TrackerUnavailable',
    last_error: 'W&B Run at http://127.0.0.1:1/graphql answered HTTP 500: internal error',
    failed_at: '2026-12-03T10:05:01.000Z',
    next_attempt_at: '2026-12-03T10:05:03.000Z',
  },
});

test('`labline start` prints each failed attempt of a retried check once, with the error and the next attempt', () => {
  expect(describeChange(retrying(1), validating)).toEqual([
    '  retrying: validateDeliverables failed 1 of 8 attempts (TrackerUnavailable: W&B Run at ' +
      'http://127.0.0.1:1/graphql answered HTTP 500: internal error); next attempt at 2026-12-03T10:05:03.000Z',
  ]);
  expect(describeChange(retrying(1), retrying(1))).toEqual([]);
  expect(describeChange(retrying(2), retrying(1))[0]).toMatch(/failed 2 of 8 attempts/);
});

test('`labline status` shows the retry in its own line', () => {
  expect(formatStatus(retrying(3))).toMatch(
    /\n {2}retrying {3}validateDeliverables failed 3 of 8 attempts \(TrackerUnavailable: .*HTTP 500.*\); next attempt at 2026-12-03T10:05:03\.000Z\n/,
  );
  expect(formatStatus(validating)).not.toContain('retrying');
});
