/**
 * The chaos suite's counting (bench/chaos-tally.ts), on made-up records: each goal the CI chaos test asserts
 * can fail, so a run that passes it says something.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  readTrainerLog,
  stallsAfterRecoveries,
  tallyChaos,
  trainerStarts,
  type ExperimentOutcome,
} from '../../bench/chaos-tally';
import type { ExperimentStatus } from '../../src/experiment';

const at = '2026-01-01T00:00:00.000Z';
const line = (fields: Record<string, unknown>) => JSON.stringify({ at, ...fields });

function status(id: string, overrides: Partial<ExperimentStatus>): ExperimentStatus {
  return {
    experiment_id: id,
    name: id,
    stage: 'completed',
    stage_since: at,
    decisions: [],
    attempts: [],
    preemptions: 0,
    failures: 0,
    links: { run_dir: `/runs/${id}` },
    costs: { llm_usd: 0, llm_prompt_tokens: 0, llm_completion_tokens: 0, gpu_hours: 0 },
    ...overrides,
  };
}

test('duplicate launches, trainers ended by a signal or by SIGKILL, and lost approvals are each counted', () => {
  const runsRoot = mkdtempSync(path.join(tmpdir(), 'labline-chaos-tally-'));
  // exp-b's second start of the same key was killed by SIGKILL: its supervisor's exit.json says so.
  const killedDir = path.join(runsRoot, 'exp-b', 'attempts', 'exp-b-launch-1');
  mkdirSync(killedDir, { recursive: true });
  writeFileSync(
    path.join(killedDir, 'exit.json'),
    JSON.stringify({ exitCode: null, signal: 'SIGKILL', endedAt: at }),
  );
  const log = path.join(runsRoot, 'trainers.jsonl');
  const start = (pid: number, experiment: string, key: string) =>
    line({ event: 'start', pid, experiment, key, attempt: 1 });
  const end = (pid: number, experiment: string, key: string, code: number, signal: string | null) =>
    line({ event: 'end', pid, experiment, key, code, signal });
  writeFileSync(
    log,
    [
      start(101, 'exp-a', 'exp-a-launch-1'),
      end(101, 'exp-a', 'exp-a-launch-1', 0, null),
      start(102, 'exp-b', 'exp-b-launch-1'),
      end(102, 'exp-b', 'exp-b-launch-1', 143, 'SIGTERM'),
      start(103, 'exp-b', 'exp-b-launch-1'),
    ].join('\n') + '\n',
  );
  const approved = { gate: 'launch', by: 'chaos', at, source: 'api', outcome: 'approved' } as const;
  const outcomes: ExperimentOutcome[] = [
    {
      id: 'exp-a',
      submitted: true,
      status: status('exp-a', { decisions: [{ ...approved, request_id: 'r-a' }] }),
      approvalAccepted: 'r-a',
    },
    {
      id: 'exp-b',
      submitted: true,
      status: status('exp-b', { stage: 'training' }),
      approvalAccepted: 'r-b',
    },
  ];
  const starts = trainerStarts(readTrainerLog(log), runsRoot);
  expect(starts.map((s) => s.fate)).toEqual(['completed', 'signalled', 'killed']);

  const { figures } = tallyChaos({ outcomes, starts, stalls: [] });
  expect(figures).toMatchObject({
    completed: 1,
    stuck: 1,
    trainerStarts: 3,
    duplicateLaunches: 1,
    healthyTrainersKilled: 2,
    approvalsAccepted: 2,
    approvalsLost: 1,
  });
});

test('a stall runs from a recovery to the next change, and stops at the next fault when none came first', () => {
  const recoveries = [
    { fault: 1, kind: 'worker-kill', downAt: 1_000, upAt: 2_000 },
    { fault: 2, kind: 'server-kill', downAt: 10_000, upAt: 11_000 },
  ];
  const timelines = [
    { id: 'moves', submittedAt: 0, changes: [500, 5_000, 12_000] },
    { id: 'silent', submittedAt: 0, changes: [500] },
    { id: 'later', submittedAt: 3_000, changes: [3_000] },
  ];
  expect(stallsAfterRecoveries(recoveries, timelines, 20_000)).toEqual([
    { experiment: 'moves', fault: 1, kind: 'worker-kill', ms: 3_000, censored: false },
    { experiment: 'silent', fault: 1, kind: 'worker-kill', ms: 8_000, censored: true },
    { experiment: 'moves', fault: 2, kind: 'server-kill', ms: 1_000, censored: false },
    { experiment: 'silent', fault: 2, kind: 'server-kill', ms: 9_000, censored: true },
    { experiment: 'later', fault: 2, kind: 'server-kill', ms: 9_000, censored: true },
  ]);
});
