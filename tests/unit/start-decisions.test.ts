import { rerunName } from '../../src/client/experiments';
import { startExitCode, unattendedDecision } from '../../src/client/cli-start';

describe('what `labline start` decides without asking', () => {
  test('--yes approves the launch and publish reviews only', () => {
    for (const gate of ['launch', 'publish'] as const)
      expect(unattendedDecision(gate, { yes: true })).toEqual({
        action: 'approve',
        comment: 'approved with --yes',
      });
  });

  test('--yes ends the run at a failed attempt, unmet deliverables or the LLM budget, accepting nothing', () => {
    for (const gate of ['failure', 'deliverables', 'budget'] as const) {
      const decision = unattendedDecision(gate, { yes: true });
      expect(decision?.action).toBe('reject');
      expect(decision?.comment).toMatch(
        new RegExp(`--yes approves the launch and publish reviews only, so the ${gate} gate ends the run`),
      );
    }
    expect(unattendedDecision('deliverables', { yes: true })?.comment).toMatch(/use --accept-unmet/);
  });

  test('--accept-unmet accepts unmet deliverables, with or without --yes, and nothing else', () => {
    expect(unattendedDecision('deliverables', { acceptUnmet: true })).toEqual({
      action: 'approve',
      comment: 'accepted with --accept-unmet',
    });
    expect(unattendedDecision('deliverables', { yes: true, acceptUnmet: true })?.action).toBe('approve');
    expect(unattendedDecision('failure', { acceptUnmet: true })).toBeUndefined();
    expect(unattendedDecision('launch', {})).toBeUndefined();
  });

  test('the exit code is 0 only when the experiment completed with every required deliverable met', () => {
    expect(startExitCode('completed', 'completed')).toBe(0);
    expect(startExitCode('completed', 'partial_success')).toBe(1);
    expect(startExitCode('completed', 'failed')).toBe(1);
    expect(startExitCode('failed', undefined)).toBe(1);
    expect(startExitCode('rejected', undefined)).toBe(1);
  });
});

test("a rerun's name carries the experiment id and the UTC second it started, and is a valid launch key stem", () => {
  const name = rerunName('exp-quickstart', new Date('2026-12-03T14:05:02.123Z'));
  expect(name).toBe('exp-quickstart.rerun-20261203T140502Z');
  expect(`${name}-launch-1`).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/);
});
