import { WorkflowFailedError } from '@temporalio/client';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  ExperimentSpec,
  ResultsPayload,
  type ExperimentSpecInput,
  type ExperimentStatus,
} from '../../src/experiment';
import {
  submitExperiment,
  experimentHandle,
  decide,
  DecisionRefused,
  gatesOf,
  cancelExperiment,
  listExperiments,
} from '../../src/client/experiments';
import { historyText, recordHistory } from '../support/histories';
import { startTestTemporal, withWorker, type TestTemporal } from '../support/temporal';
import {
  decideWhenWaiting,
  experimentRig,
  readJsonLines,
  runExperiment,
  trainerSpec,
  waitForStatus,
  type ExperimentRig,
} from '../support/experiments';

let env: TestTemporal;
beforeAll(async () => {
  env = await startTestTemporal();
});
afterAll(async () => env?.stop());

let counter = 0;
const labels = new Map<string, string>();
const newId = (label: string) => {
  const id = `exp-${label}-${process.pid}-${++counter}-${Date.now() % 100000}`;
  labels.set(id, label);
  return id;
};

/** Records the scenario's history for the replay suite (see tests/support/histories.ts). */
const recordScenario = (id: string) => recordHistory(env.client, id, `experiment-${labels.get(id) ?? id}`);

const run = <T>(rig: ExperimentRig, input: ExperimentSpecInput, drive: (id: string) => Promise<T>) =>
  runExperiment(env, rig, input, drive, recordScenario);

const readLines = readJsonLines;

test('happy path: approved at both gates, the experiment completes with its report and results', async () => {
  const rig = experimentRig();
  const id = newId('happy');
  const { result, status } = await run(rig, trainerSpec(id), async () => {
    await decideWhenWaiting(env.client, id, 'launch', 'approve');
    await decideWhenWaiting(env.client, id, 'publish', 'approve', { comment: 'looks right' });
    return experimentHandle(env.client, id).result();
  });
  expect(ResultsPayload.parse(result).status).toBe('completed');
  expect(result.deliverables_status).toEqual({ curves: 'met', accuracy: 'met', checkpoint: 'met' });
  const runDir = path.join(rig.runsRoot, id);
  expect(existsSync(path.join(runDir, 'report.md'))).toBe(true);
  expect(
    ResultsPayload.parse(JSON.parse(readFileSync(path.join(runDir, 'results.json'), 'utf8'))).experiment_id,
  ).toBe(id);
  expect(result.decisions.map((d) => [d.gate, d.outcome, d.by])).toEqual([
    ['launch', 'approved', 'alice'],
    ['publish', 'approved', 'alice'],
  ]);
  expect(status.stage).toBe('completed');
  expect(status.links.report).toBe(path.join(runDir, 'report.md'));
  const description = await env.client.workflow.getHandle(id).describe();
  expect(description.searchAttributes.LablineStage).toEqual(['completed']);
  expect(description.searchAttributes.LablineProject).toEqual(['tests']);
  expect(await description.staticSummary()).toBe(`test ${id}`);
  expect(rig.notifier.requests.map((m) => m.gate)).toEqual(['launch', 'publish']);
});

test('the gate an experiment waits at is in its memo while it waits, and visibility lists it', async () => {
  const rig = experimentRig();
  const id = newId('memo');
  const memoOf = async () => (await env.client.workflow.getHandle(id).describe()).memo ?? {};
  const { result } = await run(rig, trainerSpec(id), async () => {
    await waitForStatus(env.client, id, (s) => s.waiting?.gate === 'launch');
    expect(await memoOf()).toMatchObject({ waiting: 'launch' });
    // Visibility catches up with the memo shortly after (at once on the embedded server).
    let listed: string | undefined;
    for (let i = 0; i < 100 && listed !== 'launch'; i++) {
      listed = (await listExperiments(env.client, { limit: 1000 })).find(
        (row) => row.experimentId === id,
      )?.waitingFor;
      if (listed !== 'launch') await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(listed).toBe('launch');
    await decideWhenWaiting(env.client, id, 'launch', 'reject');
    return experimentHandle(env.client, id).result();
  });
  expect(result.end_stage).toBe('rejected');
  expect(await memoOf()).not.toHaveProperty('waiting');
});

test('an experiment cancelled while a gate is open is not listed as waiting', async () => {
  const rig = experimentRig();
  const id = newId('memocancel');
  const spec = ExperimentSpec.parse(trainerSpec(id));
  await withWorker(env, { taskQueue: rig.taskQueue, activities: rig.activities }, async () => {
    await submitExperiment({ client: env.client, spec, settings: rig.settings });
    await waitForStatus(env.client, id, (s) => s.waiting?.gate === 'launch');
    await cancelExperiment(env.client, id);
    await expect(experimentHandle(env.client, id).result()).rejects.toThrow();
  });
  let row: Awaited<ReturnType<typeof listExperiments>>[number] | undefined;
  for (let i = 0; i < 100 && row?.status !== 'CANCELLED'; i++) {
    row = (await listExperiments(env.client, { limit: 1000 })).find((r) => r.experimentId === id);
    if (row?.status !== 'CANCELLED') await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect(row).toMatchObject({ status: 'CANCELLED' });
  expect(row?.waitingFor).toBeUndefined();
});

test('rejected at launch: the experiment ends rejected and no training process starts', async () => {
  const rig = experimentRig();
  const id = newId('reject');
  const { result } = await run(rig, trainerSpec(id), async () => {
    await decideWhenWaiting(env.client, id, 'launch', 'reject', { comment: 'not now' });
    return experimentHandle(env.client, id).result();
  });
  expect(result.end_stage).toBe('rejected');
  expect(result.reason).toBe('launch rejected');
  expect(existsSync(path.join(rig.runsRoot, id))).toBe(false);
});

test('a decision that cannot take effect is refused with the reason, and nothing enters the record', async () => {
  const rig = experimentRig();
  const id = newId('authz');
  const refusal = (promise: Promise<unknown>) =>
    promise.then(
      () => 'taken',
      (error: unknown) => (error instanceof DecisionRefused ? error.reason : `unexpected: ${String(error)}`),
    );
  const { status } = await run(rig, trainerSpec(id), async () => {
    const atLaunch = await waitForStatus(env.client, id, (s) => s.waiting?.gate === 'launch');
    const launchOpening = atLaunch.waiting!.opening!;
    expect(launchOpening).toMatch(/-launch-1$/);
    expect(
      await refusal(decide(env.client, id, 'approve', { gate: 'launch', by: 'mallory', source: 'api' })),
    ).toMatch(/mallory is not an approver/);
    expect(
      await refusal(decide(env.client, id, 'approve', { gate: 'publish', by: 'alice', source: 'api' })),
    ).toMatch(/publish gate is not open; the experiment waits at the launch gate/);
    expect(
      await refusal(
        decide(env.client, id, 'approve', { gate: 'launch', by: 'alice', opening: 'elsewhere-launch-1' }),
      ),
    ).toMatch(/opening elsewhere-launch-1 of the launch gate is not the current one/);
    expect(await gatesOf(env.client, id)).toEqual({ waiting: atLaunch.waiting, decisions: [] });

    const rejected = await decide(env.client, id, 'reject', {
      gate: 'launch',
      by: 'alice',
      opening: launchOpening,
      requestId: 'req-1',
    });
    expect(rejected).toMatchObject({ outcome: 'rejected', opening: launchOpening, request_id: 'req-1' });
    // The same request again (a replay) returns what it recorded the first time and takes nothing new.
    expect(
      await decide(env.client, id, 'approve', { gate: 'launch', by: 'alice', requestId: 'req-1' }),
    ).toEqual(rejected);
    await experimentHandle(env.client, id).result();
  });
  expect(status.stage).toBe('rejected');
  expect(status.decisions).toHaveLength(1);
  expect(status.decisions[0]).toMatchObject({ outcome: 'rejected', by: 'alice', request_id: 'req-1' });
  // Refused requests leave no trace in the history either: only the accepted update is there.
  const events = (await experimentHandle(env.client, id).fetchHistory()).events ?? [];
  const updateEvents = events.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
  expect(updateEvents).toHaveLength(1);
});

test('approval timeout: reminders at the interval, then the configured action', async () => {
  const rig = experimentRig();
  const id = newId('timeout');
  const spec = trainerSpec(id, [], {
    approvals: { launch: { reminder_interval: '1s', max_reminders: 2, timeout: '3s', on_timeout: 'reject' } },
  });
  const { result } = await run(rig, spec, async () => experimentHandle(env.client, id).result());
  expect(result.end_stage).toBe('rejected');
  expect(rig.notifier.reminders.map((m) => m.waiting.reminders_sent)).toEqual([1, 2]);
  const timeout = result.decisions.at(-1)!;
  expect(timeout).toMatchObject({ gate: 'launch', source: 'timeout', outcome: 'rejected' });
});

test('approval timeout with on_timeout approve launches by itself', async () => {
  const rig = experimentRig();
  const id = newId('autoapprove');
  const spec = trainerSpec(id, [], {
    approvals: {
      launch: { reminder_interval: '1s', max_reminders: 0, timeout: '1s', on_timeout: 'approve' },
      publish: { enabled: false },
    },
  });
  const { result } = await run(rig, spec, async () => experimentHandle(env.client, id).result());
  expect(result.end_stage).toBe('completed');
  expect(result.decisions.map((d) => [d.gate, d.source])).toEqual([
    ['launch', 'timeout'],
    ['publish', 'auto'],
  ]);
});

const noGates = { launch: { enabled: false }, publish: { enabled: false } };

test('a trainer crash opens the failure gate; retry then succeeds', async () => {
  const rig = experimentRig();
  const id = newId('crash');
  const spec = trainerSpec(id, ['--crash-at-step=25', '--crash-attempts=1'], {
    approvals: { ...noGates, failure: { approvers: ['alice'] } },
  });
  const { result, status } = await run(rig, spec, async () => {
    const waiting = await decideWhenWaiting(env.client, id, 'failure', 'approve', { choice: 'retry' });
    expect(waiting.waiting!.question).toMatch(/launch 1 ended error/);
    return experimentHandle(env.client, id).result();
  });
  expect(result.end_stage).toBe('completed');
  expect(status.attempts.map((a) => a.outcome)).toEqual(['error', 'success']);
  expect(status.failures).toBe(1);
});

test('secrets a trainer prints reach neither the status, the failure gate nor the history', async () => {
  const rig = experimentRig();
  const id = newId('secrets');
  const key = 'wandb-secret-value-0123456789abcdef';
  const leaky = [
    "console.log('WANDB_API_KEY=' + process.env.WANDB_API_KEY);",
    // Assembled at run time: the key is in what the trainer prints, not in the spec (whose command is history).
    "console.error('Error: bad request with key ' + ['sk', 'proj', 'AbCdEfGhIjKlMnOpQrStUvWx1234'].join('-'));",
    'process.exit(1);',
  ].join(' ');
  const spec: ExperimentSpecInput = {
    ...trainerSpec(id, [], { approvals: { ...noGates, failure: { approvers: ['alice'] } } }),
    training: { command: process.execPath, args: ['-e', leaky] },
  };
  const previous = process.env.WANDB_API_KEY;
  process.env.WANDB_API_KEY = key;
  try {
    const { status } = await run(rig, spec, async () => {
      const waiting = await decideWhenWaiting(env.client, id, 'failure', 'reject');
      expect(waiting.waiting!.question).toContain('[redacted WANDB_API_KEY]');
      expect(waiting.waiting!.question).toContain('[redacted openai-key]');
      return experimentHandle(env.client, id).result();
    });
    const history = await historyText(env.client, id);
    // The history's payloads are decoded: the failure gate's question (redacted) is there to be searched.
    expect(history).toContain('[redacted WANDB_API_KEY]');
    for (const text of [JSON.stringify(status), history]) {
      expect(text).not.toContain(key);
      expect(text).not.toContain('sk-proj-AbCdEfGh');
    }
  } finally {
    if (previous === undefined) delete process.env.WANDB_API_KEY;
    else process.env.WANDB_API_KEY = previous;
  }
});

test('a trainer that stops writing metrics is stopped as hung after its stall timeout, and the failure gate says so', async () => {
  const rig = experimentRig();
  const id = newId('hung');
  const hangs = [
    "require('fs').appendFileSync(process.env.LABLINE_RUN_DIR + '/metrics.jsonl',",
    "JSON.stringify({ _step: 1, 'train/loss': 0.5, _timestamp: Date.now() / 1000 }) + '\\n');",
    'setInterval(() => {}, 1000);',
  ].join(' ');
  const spec: ExperimentSpecInput = {
    ...trainerSpec(id, [], { approvals: { ...noGates, failure: { approvers: ['alice'] } } }),
    training: { command: process.execPath, args: ['-e', hangs], stall_timeout: '2s' },
  };
  const { status } = await run(rig, spec, async () => {
    const waiting = await decideWhenWaiting(env.client, id, 'failure', 'reject');
    expect(waiting.waiting!.question).toMatch(
      /launch 1 ended hung: no new metric for .* \(training.stall_timeout is 2s\); stopped as hung/,
    );
    expect(waiting.waiting!.details?.error_class).toBe('hung');
    return experimentHandle(env.client, id).result();
  });
  expect(status.attempts.map((a) => a.outcome)).toEqual(['hung']);
  expect(status.stage).toBe('failed');
});

test('the attempt budget exhausted ends the experiment failed, with the reason in the status', async () => {
  const rig = experimentRig();
  const id = newId('budget');
  const spec = trainerSpec(id, ['--crash-at-step=5'], {
    approvals: noGates,
    budgets: { max_training_attempts: 2, max_preemption_restarts: 0 },
  });
  const { result, status } = await run(rig, spec, async () => {
    await decideWhenWaiting(env.client, id, 'failure', 'approve');
    return experimentHandle(env.client, id).result();
  });
  expect(result.end_stage).toBe('failed');
  expect(status.stage).toBe('failed');
  expect(status.reason).toMatch(/attempt budget exhausted \(2 of 2 failed\)/);
});

test('preemption resumes from the checkpoint with no human asked', async () => {
  const rig = experimentRig();
  const id = newId('preempt');
  const spec = trainerSpec(id, ['--preempt-at-step=30'], { approvals: noGates });
  const { result, status } = await run(rig, spec, async () => experimentHandle(env.client, id).result());
  expect(result.end_stage).toBe('completed');
  const starts = readLines(path.join(rig.runsRoot, id, 'starts.jsonl'));
  expect(starts.map((s) => s.startStep)).toEqual([0, 30]);
  expect(status.preemptions).toBe(1);
  expect(status.attempts.map((a) => a.outcome)).toEqual(['preempted', 'success']);
  expect(status.attempts[1]!.resumed_from).toMatch(/checkpoints\/latest\.json$/);
  expect(result.decisions).toEqual([
    expect.objectContaining({ gate: 'launch', source: 'auto' }),
    expect.objectContaining({ gate: 'publish', source: 'auto' }),
  ]);
});

test('a threshold not met opens the deliverables gate: accept gives partial success', async () => {
  const rig = experimentRig();
  const id = newId('accept');
  const spec = trainerSpec(id, [], { approvals: noGates });
  (spec.deliverables as { value?: number }[])[1]!.value = 1.5;
  const { result } = await run(rig, spec, async () => {
    const waiting = await decideWhenWaiting(env.client, id, 'deliverables', 'approve', { choice: 'accept' });
    expect(waiting.waiting!.question).toMatch(/accuracy/);
    return experimentHandle(env.client, id).result();
  });
  expect(result.status).toBe('partial_success');
  expect(result.deliverables_status.accuracy).toBe('accepted_anyway');
});

test('a threshold not met opens the deliverables gate: abort fails the experiment', async () => {
  const rig = experimentRig();
  const id = newId('abort');
  const spec = trainerSpec(id, [], { approvals: noGates });
  (spec.deliverables as { value?: number }[])[1]!.value = 1.5;
  const { result } = await run(rig, spec, async () => {
    await decideWhenWaiting(env.client, id, 'deliverables', 'reject');
    return experimentHandle(env.client, id).result();
  });
  expect(result.end_stage).toBe('failed');
  expect(result.status).toBe('failed');
  expect(result.deliverables_status.accuracy).toBe('not_met');
});

test('cancelling an experiment whose trainer ignores SIGTERM kills it after the grace period and ends cancelled', async () => {
  // A heartbeat timeout shorter than the kill grace and the waits after it: a watcher that stopped the
  // trainer itself, without heartbeating, timed out and the experiment ended failed instead of cancelled.
  const rig = experimentRig(1);
  const id = newId('cancel-stubborn');
  const stubborn = [
    "process.on('SIGTERM', () => {});",
    "require('fs').appendFileSync(process.env.LABLINE_RUN_DIR + '/starts.jsonl', JSON.stringify({ pid: process.pid }) + '\\n');",
    'setInterval(() => {}, 1000);',
  ].join(' ');
  const spec: ExperimentSpecInput = {
    ...trainerSpec(id, [], { approvals: noGates }),
    training: { command: process.execPath, args: ['-e', stubborn] },
  };
  await expectCancelledOnceTraining(rig, spec, () => existsSync(path.join(rig.runsRoot, id, 'starts.jsonl')));
});

test('cancelling the experiment stops the training process and ends it cancelled', async () => {
  const rig = experimentRig();
  const id = newId('cancel');
  const spec = trainerSpec(id, ['--steps=100000', '--step-delay-ms=20'], { approvals: noGates });
  await expectCancelledOnceTraining(rig, spec, (s) => (s.attempts[0]?.step ?? 0) > 0);
});

/**
 * Runs `input`, cancels the experiment once `training` says its trainer runs, and checks that it ended
 * cancelled with its trainer process gone.
 */
async function expectCancelledOnceTraining(
  rig: ExperimentRig,
  input: ExperimentSpecInput,
  training: (status: ExperimentStatus) => boolean,
): Promise<void> {
  const id = input.experiment_id;
  const { result: error, status } = await run(rig, input, async () => {
    await waitForStatus(env.client, id, training);
    await cancelExperiment(env.client, id);
    return env.client.workflow
      .getHandle(id)
      .result()
      .catch((e: unknown) => e);
  });
  expect(error).toBeInstanceOf(WorkflowFailedError);
  expect(status.stage).toBe('cancelled');
  const started = readLines(path.join(rig.runsRoot, id, 'starts.jsonl'))[0]!;
  expect(() => process.kill(started.pid as number, 0)).toThrow();
  expect((await env.client.workflow.getHandle(id).describe()).status.name).toBe('CANCELLED');
}
