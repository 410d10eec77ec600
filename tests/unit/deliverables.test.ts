import type { DeliverableInput, RunObservationInput, ValidationResult } from '../../src/experiment';
import { Deliverable, evaluateDeliverables, probesFor, RunObservation } from '../../src/experiment';

function deliverable(input: DeliverableInput): Deliverable {
  return Deliverable.parse(input);
}

function observe(input: Partial<RunObservationInput> = {}): RunObservation {
  return RunObservation.parse({ state: 'finished', ...input });
}

function judgeOne(input: DeliverableInput, observation: RunObservation): ValidationResult {
  const [result] = evaluateDeliverables([deliverable(input)], observation).results;
  if (!result) throw new Error('no result');
  return result;
}

describe('evaluateDeliverables: exists and exists_and_loadable', () => {
  const checkpoint = { name: 'ckpt', type: 'exists_and_loadable', path: 'checkpoints/final.json' } as const;

  test('a file found by the probe passes; a missing one fails with "missing"', () => {
    const present = observe({ probes: [{ name: 'metrics.jsonl', kind: 'file', exists: true }] });
    const absent = observe({ probes: [{ name: 'metrics.jsonl', kind: 'file', exists: false }] });
    const spec = { name: 'log', type: 'exists', path: 'metrics.jsonl' } as const;
    expect(judgeOne(spec, present)).toMatchObject({ passed: true, found: 'present' });
    expect(judgeOne(spec, absent)).toMatchObject({
      passed: false,
      found: 'missing',
      expected: 'file "metrics.jsonl" exists',
    });
  });

  test('a deleted artifact does not count as existing', () => {
    const observation = observe({
      probes: [{ name: 'model', kind: 'artifact', exists: true, state: 'DELETED' }],
    });
    expect(judgeOne({ name: 'm', type: 'exists', artifact: 'model' }, observation)).toMatchObject({
      passed: false,
      found: 'deleted',
    });
  });

  test('a checkpoint that exists but does not parse fails and quotes the parse error', () => {
    const observation = observe({
      probes: [
        {
          name: 'checkpoints/final.json',
          kind: 'file',
          exists: true,
          loadable: false,
          error: 'Unexpected end of JSON input',
        },
      ],
    });
    const result = judgeOne(checkpoint, observation);
    expect(result.passed).toBe(false);
    expect(result.found).toContain('Unexpected end of JSON input');
  });

  test('a checkpoint that exists and loads passes', () => {
    const observation = observe({
      probes: [{ name: 'checkpoints/final.json', kind: 'file', exists: true, loadable: true }],
    });
    expect(judgeOne(checkpoint, observation)).toMatchObject({
      passed: true,
      found: 'present, parses as JSON',
    });
  });

  test('what the activity did not probe fails as "not checked", naming probesFor', () => {
    const result = judgeOne(checkpoint, observe());
    expect(result).toMatchObject({ passed: false, found: 'not checked' });
    expect(result.message).toContain('probesFor');
  });
});

describe('evaluateDeliverables: contains_keys', () => {
  const observation = observe({
    summary: { accuracy: 0.91, eval: { loss: 0.3 } },
    history_keys: ['_step', 'train_loss'],
    config: { lr: 0.001 },
  });

  test('looks in the summary by default, reaching nested values with dotted keys', () => {
    expect(
      judgeOne({ name: 'k', type: 'contains_keys', keys: ['accuracy', 'eval.loss'] }, observation).passed,
    ).toBe(true);
  });

  test('lists the missing keys and what the run has instead', () => {
    const result = judgeOne({ name: 'k', type: 'contains_keys', keys: ['accuracy', 'f1'] }, observation);
    expect(result).toMatchObject({ passed: false, found: 'missing f1' });
    expect(result.message).toContain('it has accuracy, eval');
  });

  test('looks in history keys or config when asked', () => {
    expect(
      judgeOne({ name: 'h', type: 'contains_keys', keys: ['train_loss'], in: 'history' }, observation).passed,
    ).toBe(true);
    expect(
      judgeOne({ name: 'h', type: 'contains_keys', keys: ['accuracy'], in: 'history' }, observation).passed,
    ).toBe(false);
    expect(
      judgeOne({ name: 'c', type: 'contains_keys', keys: ['lr'], in: 'config' }, observation).passed,
    ).toBe(true);
  });
});

describe('evaluateDeliverables: threshold', () => {
  const observation = observe({
    summary: { eval_loss: 0.3127, accuracy: 0.9132, diverged_loss: 'NaN', note: 'fine' },
    aggregates: {
      eval_loss: { count: 300, final: 0.3127, min: 0.2981, max: 2.3 },
      train_loss: { count: 300, final: null, min: 0.2, max: 2.1, non_finite: 3 },
    },
  });

  test.each([
    ['>=', 0.9, true],
    ['>', 0.9132, false],
    ['<=', 0.9132, true],
    ['<', 0.95, true],
    ['==', 0.9132, true],
    ['!=', 0.9132, false],
  ] as const)('accuracy (0.9132 in the summary) %s %d is %s', (op, value, passed) => {
    expect(
      judgeOne({ name: 't', type: 'threshold', metric: 'accuracy', op, value }, observation).passed,
    ).toBe(passed);
  });

  test('reports expected and found in words a reviewer can check', () => {
    expect(
      judgeOne({ name: 't', type: 'threshold', metric: 'eval_loss', op: '<', value: 0.3 }, observation),
    ).toEqual({
      name: 't',
      type: 'threshold',
      required: true,
      passed: false,
      expected: 'eval_loss (summary) < 0.3',
      found: '0.3127',
      message: 'eval_loss (summary) = 0.3127, but the spec needs < 0.3',
    });
  });

  test('compares the best or final value from history aggregates when asked', () => {
    const best = {
      name: 't',
      type: 'threshold',
      metric: 'eval_loss',
      op: '<',
      value: 0.3,
      aggregate: 'best_min',
    } as const;
    expect(judgeOne(best, observation)).toMatchObject({
      passed: true,
      found: '0.2981',
      expected: 'eval_loss (best min) < 0.3',
    });
    expect(judgeOne({ ...best, aggregate: 'best_max' }, observation)).toMatchObject({
      passed: false,
      found: '2.3',
    });
  });

  test('a non-finite metric never passes, not even with != (NaN != x is true in JavaScript)', () => {
    const result = judgeOne(
      { name: 't', type: 'threshold', metric: 'diverged_loss', op: '!=', value: 0 },
      observation,
    );
    expect(result).toMatchObject({ passed: false, found: 'NaN' });
    expect(result.message).toContain('not finite');
  });

  test('a final history value that was NaN fails and says so', () => {
    const result = judgeOne(
      { name: 't', type: 'threshold', metric: 'train_loss', op: '<', value: 1, aggregate: 'final' },
      observation,
    );
    expect(result).toMatchObject({ passed: false, found: 'no value' });
    expect(result.message).toContain('NaN or infinite');
  });

  test('a metric missing from the summary fails and lists what the summary has', () => {
    const result = judgeOne({ name: 't', type: 'threshold', metric: 'f1', op: '>', value: 0.5 }, observation);
    expect(result.passed).toBe(false);
    expect(result.message).toBe(
      'f1 is not in the summary; the summary has eval_loss, accuracy, diverged_loss, note',
    );
  });

  test('a summary value that is not a number fails', () => {
    const result = judgeOne(
      { name: 't', type: 'threshold', metric: 'note', op: '>', value: 0.5 },
      observation,
    );
    expect(result.passed).toBe(false);
    expect(result.message).toContain('not a number');
  });
});

describe('evaluateDeliverables: matches_expected', () => {
  const observation = observe({
    config: { lr: 0.001, batch_size: '32', optimizer: { name: 'adam' }, amp: true },
  });

  test('passes when every expected value is recorded, also numbers recorded as strings and nested keys', () => {
    const result = judgeOne(
      {
        name: 'cfg',
        type: 'matches_expected',
        expected: { lr: 0.001, batch_size: 32, 'optimizer.name': 'adam', amp: true },
      },
      observation,
    );
    expect(result.passed).toBe(true);
  });

  test('names each mismatch with the recorded and the expected value', () => {
    const result = judgeOne(
      { name: 'cfg', type: 'matches_expected', expected: { lr: 0.01, seed: 1, amp: 'true' } },
      observation,
    );
    expect(result).toMatchObject({ passed: false, found: 'lr = 0.001, seed = nothing, amp = true' });
    expect(result.message).toBe(
      'the run config differs: lr is 0.001, expected 0.01; seed is nothing, expected 1; amp is true, expected "true"',
    );
  });
});

describe('evaluateDeliverables: synced_and_downloadable', () => {
  const committed = { kind: 'artifact', exists: true, downloadable: true, state: 'COMMITTED' } as const;

  test('passes when the run finished and every logged artifact is committed and downloads', () => {
    const observation = observe({
      artifact_names: ['model:v0', 'metrics:v0'],
      probes: [
        { name: 'model:v0', ...committed },
        { name: 'metrics:v0', ...committed },
      ],
    });
    expect(judgeOne({ name: 's', type: 'synced_and_downloadable' }, observation)).toMatchObject({
      passed: true,
      found: 'finished; 2 artifact(s) downloadable',
    });
  });

  test('fails on a crashed run, an unsynced run, a pending artifact and a failed download, naming each', () => {
    const observation = observe({
      state: 'crashed',
      synced: false,
      probes: [
        { name: 'model', ...committed, state: 'PENDING' },
        { name: 'data', ...committed, downloadable: false, error: 'HTTP 403' },
      ],
    });
    const result = judgeOne(
      { name: 's', type: 'synced_and_downloadable', artifacts: ['model', 'data'] },
      observation,
    );
    expect(result.passed).toBe(false);
    expect(result.found).toBe(
      'run is crashed, not finished; run data has not finished syncing; artifact "model" is PENDING, not COMMITTED; artifact "data" does not download (HTTP 403)',
    );
  });

  test('when all artifacts are meant but their list was not gathered, it fails rather than passing vacuously', () => {
    expect(judgeOne({ name: 's', type: 'synced_and_downloadable' }, observe()).passed).toBe(false);
  });
});

describe('ValidationReport', () => {
  test('passes when every required deliverable passes, whatever the optional ones do; keeps spec order and the run', () => {
    const observation = observe({ run: 'runs/exp-x', summary: { accuracy: 0.5 } });
    const report = evaluateDeliverables(
      [
        deliverable({ name: 'has_acc', type: 'contains_keys', keys: ['accuracy'] }),
        deliverable({
          name: 'stretch',
          type: 'threshold',
          metric: 'accuracy',
          op: '>',
          value: 0.99,
          required: false,
        }),
      ],
      observation,
    );
    expect(report.passed).toBe(true);
    expect(report.run).toBe('runs/exp-x');
    expect(report.results.map((result) => [result.name, result.passed])).toEqual([
      ['has_acc', true],
      ['stretch', false],
    ]);
  });

  test('fails when a required deliverable fails', () => {
    const report = evaluateDeliverables(
      [deliverable({ name: 'acc', type: 'threshold', metric: 'accuracy', op: '>', value: 0.99 })],
      observe({ summary: { accuracy: 0.5 } }),
    );
    expect(report.passed).toBe(false);
  });
});

describe('probesFor', () => {
  test('asks for each file and artifact once, with the strictest load and any download', () => {
    const plan = probesFor(
      [
        { name: 'a', type: 'exists', path: 'checkpoints/final.json' },
        { name: 'b', type: 'exists_and_loadable', path: 'checkpoints/final.json', format: 'any' },
        { name: 'c', type: 'exists_and_loadable', path: 'checkpoints/final.json' },
        { name: 'd', type: 'exists', artifact: 'model' },
        { name: 'e', type: 'synced_and_downloadable', artifacts: ['model'] },
      ].map((input) => deliverable(input as DeliverableInput)),
    );
    expect(plan).toEqual({
      probes: [
        { kind: 'file', name: 'checkpoints/final.json', load: 'json', download: false },
        { kind: 'artifact', name: 'model', download: true },
      ],
      all_artifacts: false,
      metric_aggregates: [],
    });
  });

  test('asks for history aggregates only for thresholds that are not on the summary', () => {
    const plan = probesFor([
      deliverable({
        name: 'a',
        type: 'threshold',
        metric: 'eval_loss',
        op: '<',
        value: 1,
        aggregate: 'best_min',
      }),
      deliverable({ name: 'b', type: 'threshold', metric: 'accuracy', op: '>', value: 0.5 }),
      deliverable({
        name: 'c',
        type: 'threshold',
        metric: 'eval_loss',
        op: '<',
        value: 2,
        aggregate: 'final',
      }),
    ]);
    expect(plan.metric_aggregates).toEqual(['eval_loss']);
  });

  test('asks for every artifact when synced_and_downloadable names none', () => {
    expect(probesFor([deliverable({ name: 's', type: 'synced_and_downloadable' })]).all_artifacts).toBe(true);
  });
});
