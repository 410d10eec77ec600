import type { DecisionContext, DecisionInput, DecisionRecord } from '../../src/experiment';
import {
  approvalOutcome,
  Decision,
  DecisionRecord as DecisionRecordSchema,
  gateDisabledDecision,
  isApprover,
  judgeDecision,
  rejectionOutcome,
  requestedOutcome,
  timeoutDecision,
} from '../../src/experiment';

const at = '2026-01-05T10:00:00.000Z';

function judge(
  signal: DecisionContext['signal'],
  decision: DecisionInput,
  open: DecisionContext['open'],
  previous?: DecisionRecord,
): DecisionRecord {
  return judgeDecision({ signal, decision: Decision.parse(decision), at, open, previous });
}

describe('Decision payload', () => {
  test('carries gate, by and comment; the source defaults to api', () => {
    expect(Decision.parse({ gate: 'launch', by: 'alice', comment: 'go' })).toEqual({
      gate: 'launch',
      by: 'alice',
      comment: 'go',
      source: 'api',
    });
  });

  test('refuses an unknown gate, an empty decider and unknown keys', () => {
    expect(Decision.safeParse({ gate: 'deploy', by: 'alice' }).success).toBe(false);
    expect(Decision.safeParse({ gate: 'launch', by: ' ' }).success).toBe(false);
    expect(Decision.safeParse({ gate: 'launch', by: 'alice', approve: true }).success).toBe(false);
  });
});

describe('gate outcomes', () => {
  test.each([
    ['launch', 'approved', 'rejected'],
    ['publish', 'approved', 'rejected'],
    ['budget', 'approved', 'rejected'],
    ['failure', 'retry', 'abort'],
    ['deliverables', 'accept', 'abort'],
  ] as const)('approving the %s gate means %s, rejecting it means %s', (gate, approve, reject) => {
    expect(approvalOutcome(gate)).toBe(approve);
    expect(rejectionOutcome(gate)).toBe(reject);
    expect(requestedOutcome('approve', { gate })).toEqual({ outcome: approve });
    expect(requestedOutcome('reject', { gate })).toEqual({ outcome: reject });
  });

  test('rerun is approved with a choice at the deliverables gate', () => {
    expect(requestedOutcome('approve', { gate: 'deliverables', choice: 'rerun' })).toEqual({
      outcome: 'rerun',
    });
  });

  test.each([
    ['reject', 'deliverables', 'rerun'],
    ['approve', 'failure', 'abort'],
    ['approve', 'launch', 'retry'],
    ['approve', 'failure', 'accept'],
  ] as const)('%s at the %s gate with choice %s is refused with why', (signal, gate, choice) => {
    expect(requestedOutcome(signal, { gate, choice })).toEqual({ invalid: expect.stringContaining(gate) });
  });
});

describe('isApprover', () => {
  test('an empty list lets anyone decide', () => {
    expect(isApprover('mallory', [])).toBe(true);
  });

  test('matches names ignoring case and a leading @', () => {
    expect(isApprover('@Alice', ['alice'])).toBe(true);
    expect(isApprover('bob', ['alice'])).toBe(false);
  });
});

describe('judgeDecision', () => {
  const launchOpen = { gate: 'launch', approvers: ['alice'] } as const;

  test('an approver deciding the open gate takes effect, with who, when, comment and source', () => {
    const record = judge(
      'approve',
      { gate: 'launch', by: 'alice', comment: 'looks good', source: 'slack' },
      launchOpen,
    );
    expect(record).toEqual({
      gate: 'launch',
      by: 'alice',
      at,
      source: 'slack',
      signal: 'approve',
      outcome: 'approved',
      comment: 'looks good',
    });
    expect(DecisionRecordSchema.parse(record)).toEqual(record);
  });

  test('someone not among the approvers is ignored, and the record says who may decide', () => {
    const record = judge('approve', { gate: 'launch', by: 'mallory' }, launchOpen);
    expect(record.outcome).toBeUndefined();
    expect(record.ignored).toBe('mallory is not an approver of the launch gate (alice)');
  });

  test('a decision for a gate that is not open is ignored, naming the open gate', () => {
    const record = judge('reject', { gate: 'publish', by: 'alice' }, launchOpen);
    expect(record.ignored).toBe('the publish gate is not open; the experiment waits at the launch gate');
  });

  test('a decision while nothing is awaited is ignored', () => {
    expect(judge('approve', { gate: 'launch', by: 'alice' }, undefined).ignored).toBe(
      'the launch gate is not open; the experiment waits for no decision',
    );
  });

  test('a repeat after the gate was decided is ignored, citing the earlier decision', () => {
    const first = judge('approve', { gate: 'launch', by: 'alice' }, launchOpen);
    const repeat = judge('reject', { gate: 'launch', by: 'alice' }, undefined, first);
    expect(repeat.ignored).toBe(`the launch gate was already decided: approved by alice at ${at}`);
  });

  test('a choice that does not fit is ignored with the reason', () => {
    const record = judge(
      'reject',
      { gate: 'deliverables', by: 'alice', choice: 'rerun' },
      { gate: 'deliverables', approvers: [] },
    );
    expect(record).toMatchObject({
      choice: 'rerun',
      ignored: expect.stringContaining('does not go with reject'),
    });
  });

  test('rerun at the deliverables gate takes effect', () => {
    const record = judge(
      'approve',
      { gate: 'deliverables', by: 'bob', choice: 'rerun' },
      { gate: 'deliverables', approvers: [] },
    );
    expect(record.outcome).toBe('rerun');
  });
});

describe('automatic decisions', () => {
  test('a disabled gate is approved automatically, recorded as auto by labline', () => {
    expect(gateDisabledDecision('failure', at)).toEqual({
      gate: 'failure',
      by: 'labline',
      at,
      source: 'auto',
      outcome: 'retry',
      comment: 'approved automatically: approvals.failure.enabled is false',
    });
  });

  test('a timeout decides by the action, recorded as timeout with how long it waited', () => {
    expect(timeoutDecision('launch', 'reject', at, 86_400)).toMatchObject({
      source: 'timeout',
      outcome: 'rejected',
      comment: expect.stringContaining('within 1d'),
    });
    expect(timeoutDecision('deliverables', 'approve', at, 60).outcome).toBe('accept');
  });

  test('a record has either an outcome or a reason it was ignored, never both or neither', () => {
    const base = { gate: 'launch', by: 'a', at, source: 'cli' };
    expect(DecisionRecordSchema.safeParse({ ...base, outcome: 'approved', ignored: 'x' }).success).toBe(
      false,
    );
    expect(DecisionRecordSchema.safeParse(base).success).toBe(false);
  });
});
