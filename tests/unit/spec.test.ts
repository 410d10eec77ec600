import type { ExperimentSpecInput, SpecError } from '../../src/experiment';
import { ExperimentSpec, validateExperimentSpec } from '../../src/experiment';

const minimal: ExperimentSpecInput = {
  experiment_id: 'exp-minimal',
  name: 'Minimal',
  hypothesis: 'The trainer runs.',
  training: { command: 'node', args: ['train.js'] },
};

function errorsOf(input: unknown): SpecError[] {
  const result = validateExperimentSpec(input);
  if (result.ok) throw new Error('expected the spec to be invalid');
  return result.errors;
}

function withSpec(patch: Record<string, unknown>): Record<string, unknown> {
  return { ...minimal, ...patch };
}

describe('ExperimentSpec defaults', () => {
  const spec = ExperimentSpec.parse(minimal);

  test('every approval gate is on, open to anyone, with a 24h timeout that rejects and hourly reminders', () => {
    for (const gate of ['launch', 'publish', 'failure', 'deliverables', 'budget'] as const) {
      expect(spec.approvals[gate]).toEqual({
        enabled: true,
        approvers: [],
        escalation_approvers: [],
        reminder_interval: 3600,
        max_reminders: 3,
        timeout: 86_400,
        on_timeout: 'reject',
      });
    }
  });

  test('budgets default to 3 attempts, 5 preemption restarts and one dollar of LLM calls', () => {
    expect(spec.budgets).toEqual({ max_training_attempts: 3, max_preemption_restarts: 5, llm_cost_usd: 1 });
  });

  test('training defaults to the local launcher, 0 GPUs, 1 CPU, checkpoints/, resume through LABLINE_RESUME_FROM and a 30 minute stall timeout', () => {
    expect(spec.training).toEqual({
      command: 'node',
      args: ['train.js'],
      env: {},
      resources: { gpus: 0, cpus: 1 },
      launcher: 'local',
      checkpoint: { directory: 'checkpoints', resume: { env: 'LABLINE_RESUME_FROM' } },
      stall_timeout: 1800,
    });
  });

  test('the tracker is local and the pipeline runs the performance analysis and the report writer', () => {
    expect(spec.tracker).toEqual({ type: 'local' });
    expect(spec.analysis_pipeline).toEqual({
      analyses: ['performance'],
      writers: ['report'],
      metric_goals: {},
    });
    expect(spec.metadata).toEqual({ priority: 'normal', tags: [] });
    expect(spec.deliverables).toEqual([]);
  });

  test('a parsed spec parses again unchanged, also after a JSON round trip (as a workflow input travels)', () => {
    const full = ExperimentSpec.parse(
      withSpec({
        training: { command: 'node', resources: { time_limit: '1h30m', memory: '4G' } },
        approvals: {
          launch: {
            timeout: '2h',
            reminder_interval: '10m',
            on_timeout: 'escalate',
            escalation_approvers: ['lead'],
          },
        },
        deliverables: [{ name: 'acc', type: 'threshold', metric: 'accuracy', op: '>=', value: 0.9 }],
      }),
    );
    expect(full.training.resources.time_limit).toBe(5400);
    expect(full.approvals.launch.timeout).toBe(7200);
    expect(ExperimentSpec.parse(JSON.parse(JSON.stringify(full)))).toEqual(full);
  });
});

describe('ExperimentSpec rules', () => {
  test.each(['exp-ab', 'exp-lr-sweep-03', `exp-${'a'.repeat(63)}`])('accepts the experiment id %j', (id) => {
    expect(validateExperimentSpec(withSpec({ experiment_id: id })).ok).toBe(true);
  });

  test.each([
    'exp-a',
    'exp-Upper',
    'experiment-1',
    'exp--leading-dash',
    'exp_underscore',
    `exp-${'a'.repeat(64)}`,
  ])('refuses the experiment id %j with an example in the hint', (id) => {
    const [error] = errorsOf(withSpec({ experiment_id: id }));
    expect(error).toMatchObject({ path: 'experiment_id', hint: expect.stringContaining('exp-lr-sweep-03') });
  });

  test('a misspelled key is an error at any depth, with the key it was probably meant to be', () => {
    const errors = errorsOf(withSpec({ training: { comand: 'node', command: 'node' } }));
    expect(errors).toEqual([
      expect.objectContaining({
        path: 'training.comand',
        problem: 'is not a known key',
        hint: expect.stringContaining('did you mean "command"?'),
      }),
    ]);
  });

  test.each([
    'WANDB_API_KEY',
    'HF_TOKEN',
    'AWS_SECRET_ACCESS_KEY',
    'DB_PASSWORD',
    'OPENAI_APIKEY',
    'SLACK_SIGNING_SECRET',
  ])('refuses the secret-looking env key %s and says to set it on the worker', (key) => {
    const errors = errorsOf(withSpec({ training: { command: 'node', env: { [key]: 'x' } } }));
    expect(errors).toEqual([
      expect.objectContaining({
        path: `training.env.${key}`,
        problem: expect.stringContaining('looks like a secret'),
        hint: expect.stringContaining('environment of the Labline worker'),
      }),
    ]);
  });

  test.each(['TOKENIZERS_PARALLELISM', 'MAX_TOKENS', 'OMP_NUM_THREADS', 'KEY_SIZE'])(
    'accepts the ordinary env key %s',
    (key) => {
      expect(
        validateExperimentSpec(withSpec({ training: { command: 'node', env: { [key]: '1' } } })).ok,
      ).toBe(true);
    },
  );

  test('refuses env keys the launcher sets itself, pointing to the spec field to use instead', () => {
    const errors = errorsOf(
      withSpec({ training: { command: 'node', env: { LABLINE_RESUME_FROM: 'x', WANDB_PROJECT: 'p' } } }),
    );
    expect(errors.map((error) => [error.path, error.hint])).toEqual([
      ['training.env.LABLINE_RESUME_FROM', expect.stringContaining('set by the launcher')],
      ['training.env.WANDB_PROJECT', 'set `tracker.project` instead'],
    ]);
  });

  test('escalating on timeout needs someone to escalate to', () => {
    const errors = errorsOf(withSpec({ approvals: { publish: { on_timeout: 'escalate' } } }));
    expect(errors).toEqual([expect.objectContaining({ path: 'approvals.publish.escalation_approvers' })]);
  });

  test('a gate timeout of zero is refused, since it would decide before anyone could', () => {
    const errors = errorsOf(withSpec({ approvals: { launch: { timeout: '0s' } } }));
    expect(errors).toEqual([expect.objectContaining({ path: 'approvals.launch.timeout' })]);
  });

  test.each([0, '0s', '0h'])(
    'a training time limit of %j is refused at validation, not at launch, with how to write no limit',
    (limit) => {
      const errors = errorsOf(withSpec({ training: { command: 'node', resources: { time_limit: limit } } }));
      expect(errors).toEqual([
        expect.objectContaining({
          path: 'training.resources.time_limit',
          problem: 'must be longer than 0s',
          hint: expect.stringContaining('remove time_limit'),
        }),
      ]);
    },
  );

  test.each([
    ['approvals.launch.timeout', { approvals: { launch: { timeout: '99999999999w' } } }],
    ['approvals.failure.reminder_interval', { approvals: { failure: { reminder_interval: 1e13 } } }],
    ['training.resources.time_limit', { training: { command: 'node', resources: { time_limit: '3651d' } } }],
  ])('a duration past ten years (%s) is refused with the field and the maximum', (path, patch) => {
    expect(errorsOf(withSpec(patch))).toEqual([
      expect.objectContaining({
        path,
        problem: 'must be at most 3650d (about 10 years)',
        hint: expect.stringContaining('Temporal'),
      }),
    ]);
  });

  test.each([
    ['training.command', { command: 'no\u0000de' }],
    ['training.args[1]', { command: 'node', args: ['train.js', '--lr=0.1\u0000'] }],
    ['training.env.OMP_NUM_THREADS', { command: 'node', env: { OMP_NUM_THREADS: '4\u0000' } }],
    ['training.working_directory', { command: 'node', working_directory: 'exp\u0000/' }],
  ])('a NUL byte in %s is refused at validation, with where it is', (path, training) => {
    expect(errorsOf(withSpec({ training }))).toEqual([
      expect.objectContaining({
        path,
        problem: expect.stringMatching(/^contains a NUL byte \(\\0\) at character \d+$/),
        hint: expect.stringContaining('remove it'),
      }),
    ]);
  });

  test('a NUL byte anywhere else is refused too: config values become arguments through ${config.KEY}', () => {
    const errors = errorsOf(withSpec({ config: { optimizer: 'adam\u0000w', 'a\u0000b': 1 } }));
    expect(errors.map((error) => error.path)).toEqual(['config.optimizer', 'config["a\\u0000b"]']);
  });

  test('an experiment cannot be its own parent', () => {
    const errors = errorsOf(
      withSpec({ parent: { experiment_id: 'exp-minimal', rationale: 'loop', modifications: [] } }),
    );
    expect(errors).toEqual([expect.objectContaining({ path: 'parent.experiment_id' })]);
  });

  test('genealogy records modifications with the parent value, which may be absent (null)', () => {
    const spec = ExperimentSpec.parse(
      withSpec({
        parent: {
          experiment_id: 'exp-base',
          rationale: 'warmup helped in the paper',
          modifications: [{ parameter: 'warmup_steps', from: null, to: 500 }],
        },
      }),
    );
    expect(spec.parent?.modifications).toEqual([{ parameter: 'warmup_steps', from: null, to: 500 }]);
  });

  test('a tracker without a type says which types exist', () => {
    const errors = errorsOf(withSpec({ tracker: { entity: 'acme' } }));
    expect(errors).toEqual([
      expect.objectContaining({ path: 'tracker.type', problem: 'is required: one of "local", "wandb"' }),
    ]);
  });

  test('a hyperparameter that is a list is refused with the allowed types', () => {
    const errors = errorsOf(withSpec({ config: { layers: [64, 64] } }));
    expect(errors).toEqual([
      expect.objectContaining({
        path: 'config.layers',
        problem: 'must be a number, a string or a boolean (true or false), not a list',
      }),
    ]);
  });

  test('a wandb tracker needs entity and project', () => {
    const errors = errorsOf(withSpec({ tracker: { type: 'wandb', entity: 'acme' } }));
    expect(errors).toEqual([expect.objectContaining({ path: 'tracker.project', problem: 'is required' })]);
  });

  test('the checkpoint directory must stay inside the run directory', () => {
    for (const directory of ['/tmp/ckpt', '../elsewhere', 'a/../../b']) {
      const errors = errorsOf(withSpec({ training: { command: 'node', checkpoint: { directory } } }));
      expect(errors).toEqual([expect.objectContaining({ path: 'training.checkpoint.directory' })]);
    }
  });

  test('a resume flag must look like a command-line flag', () => {
    expect(
      validateExperimentSpec(
        withSpec({ training: { command: 'node', checkpoint: { resume: { flag: '--resume-from' } } } }),
      ).ok,
    ).toBe(true);
    const errors = errorsOf(
      withSpec({ training: { command: 'node', checkpoint: { resume: { flag: 'resume' } } } }),
    );
    expect(errors).toEqual([expect.objectContaining({ path: 'training.checkpoint.resume.flag' })]);
  });
});

describe('specs that validate fit Temporal', () => {
  test('a spec whose encoded size passes 512 KiB is refused, pointing at the field that makes it so', () => {
    const errors = errorsOf(withSpec({ description: 'lorem ipsum '.repeat(50_000) }));
    expect(errors).toEqual([
      {
        path: 'description',
        problem: expect.stringMatching(
          /^holds 586 KiB of the 58\d(\.\d)? KiB the spec takes once encoded; a spec may take at most 512 KiB$/,
        ),
        hint: expect.stringContaining('files the trainer reads'),
      },
    ]);
  });

  test('a spec just under the limit is accepted', () => {
    expect(validateExperimentSpec(withSpec({ description: 'x'.repeat(500 * 1024) })).ok).toBe(true);
  });

  test.each([
    ['name', 201, 200],
    ['hypothesis', 16 * 1024 + 1, 16 * 1024],
  ])('%s is refused past its limit in bytes, with why the limit exists', (field, tooLong, longest) => {
    expect(validateExperimentSpec(withSpec({ [field]: 'é'.repeat(longest / 2) })).ok).toBe(true);
    expect(errorsOf(withSpec({ [field]: 'x'.repeat(tooLong) }))).toEqual([
      expect.objectContaining({
        path: field,
        problem: expect.stringMatching(/^is [\d.]+ K?i?B long; at most [\d.]+ K?i?B is allowed$/),
        hint: expect.stringContaining('Temporal'),
      }),
    ]);
  });

  test('a hypothesis of about 1 MiB of repeated text is refused at validation', () => {
    const errors = errorsOf(withSpec({ hypothesis: 'the model learns. '.repeat(60_000) }));
    expect(errors.map((error) => error.path)).toEqual(['hypothesis']);
  });

  test.each(['researcher', 'project'])('metadata.%s, a search attribute, is at most 200 bytes', (field) => {
    expect(errorsOf(withSpec({ metadata: { [field]: 'r'.repeat(201) } }))).toEqual([
      expect.objectContaining({
        path: `metadata.${field}`,
        hint: expect.stringContaining('search attribute'),
      }),
    ]);
  });
});

describe('deliverables in a spec', () => {
  test('names must be unique; the error points at the repeat and names the first', () => {
    const errors = errorsOf(
      withSpec({
        deliverables: [
          { name: 'ckpt', type: 'exists', path: 'a.json' },
          { name: 'ckpt', type: 'exists', path: 'b.json' },
        ],
      }),
    );
    expect(errors).toEqual([
      expect.objectContaining({
        path: 'deliverables[1].name',
        problem: expect.stringContaining('deliverables[0]'),
      }),
    ]);
  });

  test.each([
    [{}, 'needs `path` or `artifact`'],
    [{ path: 'a.json', artifact: 'model' }, 'has both `path` and `artifact`'],
  ])('an exists deliverable names exactly one target (%j)', (target, problem) => {
    const errors = errorsOf(withSpec({ deliverables: [{ name: 'x', type: 'exists', ...target }] }));
    expect(errors).toEqual([
      expect.objectContaining({ path: 'deliverables[0]', problem: expect.stringContaining(problem) }),
    ]);
  });

  test('an unknown deliverable type lists the known ones and suggests the closest', () => {
    const errors = errorsOf(withSpec({ deliverables: [{ name: 'x', type: 'treshold' }] }));
    expect(errors).toEqual([
      expect.objectContaining({
        path: 'deliverables[0].type',
        problem: expect.stringContaining('"synced_and_downloadable"'),
        hint: 'did you mean "threshold"?',
      }),
    ]);
  });

  test('deliverable defaults: required, JSON loading, summary keys and summary thresholds', () => {
    const spec = ExperimentSpec.parse(
      withSpec({
        deliverables: [
          { name: 'a', type: 'exists_and_loadable', path: 'checkpoints/final.json' },
          { name: 'b', type: 'contains_keys', keys: ['accuracy'] },
          { name: 'c', type: 'threshold', metric: 'loss', op: '<', value: 1 },
        ],
      }),
    );
    expect(spec.deliverables).toEqual([
      {
        name: 'a',
        type: 'exists_and_loadable',
        required: true,
        path: 'checkpoints/final.json',
        format: 'json',
      },
      { name: 'b', type: 'contains_keys', required: true, keys: ['accuracy'], in: 'summary' },
      {
        name: 'c',
        type: 'threshold',
        required: true,
        metric: 'loss',
        op: '<',
        value: 1,
        aggregate: 'summary',
      },
    ]);
  });
});
