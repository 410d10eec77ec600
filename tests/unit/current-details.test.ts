import {
  experimentCurrentDetails,
  launchApprovalDetails,
  resolvedTrainingCommand,
  TrainingSpec,
  webUiListUrl,
  webUiWorkflowUrl,
  type ExperimentStatus,
} from '../../src/experiment';

const training = TrainingSpec.parse({
  command: 'node',
  args: ['train.js', '--steps=${config.steps}', '--lr=${config.lr}', '--tag=${config.missing}'],
});

const status: ExperimentStatus = {
  experiment_id: 'exp-a',
  name: 'A',
  stage: 'launch_review',
  stage_since: '2026-12-03T10:00:00.000Z',
  decisions: [],
  attempts: [],
  preemptions: 0,
  failures: 0,
  links: { run_dir: '/runs/exp-a' },
  costs: { llm_usd: 0, llm_prompt_tokens: 0, llm_completion_tokens: 0, gpu_hours: 0 },
  waiting: {
    gate: 'launch',
    question: 'launch `node train.js --steps=300` on local',
    since: '2026-12-03T10:00:01.000Z',
    approvers: [],
    reminders_sent: 0,
    escalated: false,
    deadline: '2026-12-04T10:00:01.000Z',
  },
};

describe('what a person is shown of a launch', () => {
  test('the command has its ${config.KEY} placeholders filled from the config; unknown keys stay as written', () => {
    expect(resolvedTrainingCommand(training, { steps: 300, lr: 0.01 })).toBe(
      'node train.js --steps=300 --lr=0.01 --tag=${config.missing}',
    );
    expect(launchApprovalDetails(training, { steps: 300, lr: 0.01 }).command).toBe(
      'node train.js --steps=300 --lr=0.01 --tag=${config.missing}',
    );
  });
});

describe('the current details the Temporal Web UI shows', () => {
  test('at a gate: the stage, what it waits for since when, and the question with the resolved command', () => {
    const details = experimentCurrentDetails(status);
    expect(details).toContain('**Stage:** waiting for launch approval');
    expect(details).toContain('**Waiting for:** launch decision since 2026-12-03T10:00:01.000Z');
    expect(details).toContain('**Asked:** launch `node train.js --steps=300` on local');
    expect(details).not.toContain('**Decisions:**');
    expect(details).not.toContain('W&B run');
  });

  test('after a decision: every decision with who and when; the latest launch and the W&B run', () => {
    const details = experimentCurrentDetails(
      {
        ...status,
        stage: 'training',
        waiting: undefined,
        decisions: [
          {
            gate: 'launch',
            by: 'alice',
            at: '2026-12-03T10:00:05.000Z',
            source: 'cli',
            outcome: 'approved',
            comment: 'go',
          },
        ],
        attempts: [{ launch: 1, key: 'k', launcher: 'local', started_at: '2026-12-03T10:00:06.000Z' }],
      },
      'https://wandb.ai/e/p/runs/exp-a',
    );
    expect(details).toContain('**Stage:** training');
    expect(details).not.toContain('**Waiting for:**');
    expect(details).toContain('**Launch 1:** running on local');
    expect(details).toContain('- launch: approved by alice at 2026-12-03T10:00:05.000Z (go)');
    expect(details).toContain('**W&B run:** https://wandb.ai/e/p/runs/exp-a');
  });

  test('while an activity is retried: its failed attempts of the allowed, the last error and the next attempt', () => {
    const details = experimentCurrentDetails({
      ...status,
      stage: 'validation',
      waiting: undefined,
      retrying: {
        activity: 'validateDeliverables',
        failed_attempts: 2,
        max_attempts: 8,
        failure_type: 'TrackerUnavailable',
        last_error: 'W&B Run at http://127.0.0.1:1/graphql answered HTTP 500: internal error',
        failed_at: '2026-12-03T10:05:00.000Z',
        next_attempt_at: '2026-12-03T10:05:02.000Z',
        give_up_at: '2026-12-03T10:19:58.000Z',
      },
    });
    expect(details).toContain('**Stage:** checking deliverables');
    expect(details).toContain(
      '**Retrying:** validateDeliverables failed 2 of 8 attempts (TrackerUnavailable: W&B Run at ' +
        'http://127.0.0.1:1/graphql answered HTTP 500: internal error); next attempt at ' +
        '2026-12-03T10:05:02.000Z, giving up at 2026-12-03T10:19:58.000Z',
    );
  });
});

describe('Temporal Web UI links', () => {
  test('a workflow page and a filtered list, with the parts escaped', () => {
    expect(webUiWorkflowUrl('http://127.0.0.1:8233/', 'default', 'exp-a')).toBe(
      'http://127.0.0.1:8233/namespaces/default/workflows/exp-a',
    );
    expect(webUiListUrl('http://127.0.0.1:8233', 'default', 'LablineStage="launch_review"')).toBe(
      'http://127.0.0.1:8233/namespaces/default/workflows?query=LablineStage%3D%22launch_review%22',
    );
  });
});
