import {
  ExperimentSpec,
  trackedRunOf,
  wandbAppUrlFor,
  wandbRunIdFor,
  wandbRunUrl,
} from '../../src/experiment';

describe('W&B run of an experiment', () => {
  test('the run id is the experiment id, and W&B-reserved characters never get through', () => {
    expect(wandbRunIdFor('exp-lr-sweep-03')).toBe('exp-lr-sweep-03');
    expect(wandbRunIdFor("exp-a/b:c;d,e#f?g'h i")).toBe('exp-a-b-c-d-e-f-g-h-i');
  });

  test('the app URL is derived from the API URL as wandb does', () => {
    expect(wandbAppUrlFor('https://api.wandb.ai')).toBe('https://wandb.ai');
    expect(wandbAppUrlFor('https://api.wandb.ai/')).toBe('https://wandb.ai');
    expect(wandbAppUrlFor('https://api.acme.example')).toBe('https://app.acme.example');
    expect(wandbAppUrlFor('https://wandb.acme.internal:8080')).toBe('https://wandb.acme.internal:8080');
  });

  test('run URLs encode entity and project', () => {
    expect(wandbRunUrl('https://wandb.ai/', 'acme ml', 'p', 'exp-1')).toBe(
      'https://wandb.ai/acme%20ml/p/runs/exp-1',
    );
  });

  test('a W&B-tracked spec gets the run id, URL and trainer environment before anything runs', () => {
    const spec = ExperimentSpec.parse({
      experiment_id: 'exp-wandb-1',
      name: 'n',
      hypothesis: 'h',
      training: { command: 'python' },
      tracker: { type: 'wandb', entity: 'acme-ml', project: 'llm' },
    });
    expect(trackedRunOf(spec.tracker, spec.experiment_id)).toEqual({
      tracker: 'wandb',
      entity: 'acme-ml',
      project: 'llm',
      runId: 'exp-wandb-1',
      url: 'https://wandb.ai/acme-ml/llm/runs/exp-wandb-1',
      env: {
        WANDB_RUN_ID: 'exp-wandb-1',
        WANDB_RESUME: 'allow',
        WANDB_PROJECT: 'llm',
        WANDB_ENTITY: 'acme-ml',
      },
    });
    const server = trackedRunOf(spec.tracker, spec.experiment_id, {
      base_url: 'https://wandb.acme.internal/',
    });
    expect(server?.url).toBe('https://wandb.acme.internal/acme-ml/llm/runs/exp-wandb-1');
    expect(server?.env.WANDB_BASE_URL).toBe('https://wandb.acme.internal');
  });

  test('a locally tracked spec has no tracked run', () => {
    expect(trackedRunOf({ type: 'local' }, 'exp-local-1')).toBeUndefined();
  });
});
