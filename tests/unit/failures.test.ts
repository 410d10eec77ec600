import type { TrainingExit } from '../../src/experiment';
import {
  classifyTrainingExit,
  diagnoseTrainingExit,
  FailureType,
  failureTypeForExit,
  NON_RETRYABLE_FAILURE_TYPES,
} from '../../src/experiment';

function exit(exitCode: number | null, logTail = '', signal: string | null = null): TrainingExit {
  return { exitCode, signal, logTail };
}

describe('FailureType', () => {
  test('each wire value equals its key, so workflows can match on either', () => {
    for (const [key, value] of Object.entries(FailureType)) expect(value).toBe(key);
  });

  test('non-retryable types are failure types, and training outcomes a retry can fix are not among them', () => {
    const all = new Set<string>(Object.values(FailureType));
    for (const type of NON_RETRYABLE_FAILURE_TYPES) expect(all.has(type)).toBe(true);
    expect(NON_RETRYABLE_FAILURE_TYPES).not.toContain(FailureType.TrainingPreempted);
    expect(NON_RETRYABLE_FAILURE_TYPES).not.toContain(FailureType.TrackerUnavailable);
  });
});

describe('classifyTrainingExit', () => {
  test.each<[string, TrainingExit, ReturnType<typeof classifyTrainingExit>]>([
    ['exit 0', exit(0, 'step 100 loss 0.2\ndone'), 'success'],
    ['exit 0 with the preemption marker', exit(0, 'step 40\nLABLINE_PREEMPTED at step 40'), 'preempted'],
    [
      'the preemption marker with exit 1',
      exit(1, 'LABLINE_PREEMPTED\nTraceback (most recent call last):'),
      'preempted',
    ],
    [
      'a CUDA OOM traceback',
      exit(
        1,
        'Traceback (most recent call last):\n  File "train.py"\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB',
      ),
      'out_of_memory',
    ],
    [
      'a Node heap OOM',
      exit(134, 'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory'),
      'out_of_memory',
    ],
    ['SIGKILL with "Killed" from the shell', exit(137, 'step 10\nKilled'), 'out_of_memory'],
    ['SIGKILL by signal with "Killed"', exit(null, 'Killed', 'SIGKILL'), 'out_of_memory'],
    ['SIGKILL without a hint', exit(137, 'step 10'), 'error'],
    ['a NaN loss', exit(1, 'step 30 loss=nan\nValueError: Loss is NaN, stopping'), 'diverged'],
    ['an infinite train_loss', exit(1, 'step 30 train_loss: inf'), 'diverged'],
    ['exit 143 (SIGTERM)', exit(143, 'step 10'), 'preempted'],
    ['SIGTERM by signal', exit(null, '', 'SIGTERM'), 'preempted'],
    [
      'Slurm preemption',
      exit(1, 'slurmstepd: error: *** JOB 42 ON gpu1 CANCELLED AT 2026-01-05T10:00:00 DUE TO PREEMPTION ***'),
      'preempted',
    ],
    [
      'Slurm time limit, even with SIGTERM',
      exit(
        143,
        'slurmstepd: error: *** JOB 42 ON gpu1 CANCELLED AT 2026-01-05T10:00:00 DUE TO TIME LIMIT ***',
      ),
      'error',
    ],
    ['a plain Python exception', exit(1, 'Traceback (most recent call last):\nKeyError: "labels"'), 'error'],
    [
      'a crash after an earlier, recovered NaN warning',
      exit(
        1,
        'warning: loss is nan, skipping batch\nstep 90\nTraceback (most recent call last):\nRuntimeError: shape mismatch',
      ),
      'error',
    ],
    [
      'a crash after a startup line about preemption',
      exit(1, 'job was preempted before; resuming from step 50\nAssertionError: bad batch'),
      'error',
    ],
    ['an unknown status', exit(null, ''), 'error'],
    [
      'SIGTERM after an exception the trainer logged and survived',
      exit(143, 'ValueError: bad sample, skipped\nstep 50'),
      'preempted',
    ],
  ])('%s', (_, trainingExit, outcome) => {
    expect(classifyTrainingExit(trainingExit)).toBe(outcome);
  });

  // What examples/trainer/train.js prints when told to misbehave.
  test.each<[string, TrainingExit, ReturnType<typeof classifyTrainingExit>]>([
    ['its divergence', exit(3, 'train.js: diverged at step 5: train/loss is NaN (lr 500000)'), 'diverged'],
    [
      'its crash',
      exit(1, 'Error: Simulated crash at step 120 (--crash-at-step)\n    at main (train.js:479:13)'),
      'error',
    ],
    [
      'its SIGTERM handling',
      exit(143, 'Received SIGTERM: checkpoint written at step 80; exiting with code 143'),
      'preempted',
    ],
    [
      'its simulated preemption',
      exit(143, 'LABLINE_PREEMPTED simulated step=100: checkpoint written'),
      'preempted',
    ],
  ])('the example trainer: %s', (_, trainingExit, outcome) => {
    expect(classifyTrainingExit(trainingExit)).toBe(outcome);
  });

  test('the last telling line decides: an OOM after a NaN warning is out of memory', () => {
    expect(classifyTrainingExit(exit(1, 'loss: nan\nRuntimeError: CUDA out of memory'))).toBe(
      'out_of_memory',
    );
  });
});

describe('diagnoseTrainingExit', () => {
  test('gives the reason in words and the log line that decided it', () => {
    expect(
      diagnoseTrainingExit(exit(1, 'epoch 3\nRuntimeError: CUDA out of memory. Tried to allocate 20 MiB\n')),
    ).toEqual({
      outcome: 'out_of_memory',
      reason: 'exit code 1; the log reports CUDA out of memory',
      evidence: 'RuntimeError: CUDA out of memory. Tried to allocate 20 MiB',
      timed_out: false,
    });
  });

  test('flags a time limit so the activity raises TrainingTimedOut', () => {
    const diagnosis = diagnoseTrainingExit(exit(1, '*** JOB 7 CANCELLED AT now DUE TO TIME LIMIT ***'));
    expect(diagnosis).toMatchObject({ outcome: 'error', timed_out: true });
    expect(failureTypeForExit(diagnosis)).toBe(FailureType.TrainingTimedOut);
  });

  test('cuts long evidence lines to 200 characters', () => {
    const diagnosis = diagnoseTrainingExit(exit(1, `RuntimeError: CUDA out of memory ${'x'.repeat(500)}`));
    expect(diagnosis.evidence).toHaveLength(198);
  });
});

describe('failureTypeForExit', () => {
  test.each([
    ['out_of_memory', FailureType.TrainingOutOfMemory],
    ['diverged', FailureType.TrainingDiverged],
    ['preempted', FailureType.TrainingPreempted],
    ['error', FailureType.TrainingError],
    ['success', undefined],
  ] as const)('%s → %s', (outcome, type) => {
    expect(failureTypeForExit({ outcome, timed_out: false })).toBe(type);
  });
});
