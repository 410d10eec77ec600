/** What the notebook writes and reads, as pure functions: the status section, markers, outcomes, commands. */
import { parseGithubCommand } from '../../src/client/github/commands';
import {
  ExperimentSpec,
  issueBody,
  notebookOutcome,
  runNameOfIssue,
  statusSection,
  withStatusSection,
  type ExperimentStatus,
} from '../../src/experiment';
import { trainerSpec } from '../support/experiments';

const spec = ExperimentSpec.parse(trainerSpec('exp-unit-notebook'));
const status = (extra: Partial<ExperimentStatus> = {}): ExperimentStatus => ({
  experiment_id: spec.experiment_id,
  name: spec.name,
  stage: 'registered',
  stage_since: '2026-12-04T10:00:00.000Z',
  decisions: [],
  attempts: [],
  preemptions: 0,
  failures: 0,
  links: { run_dir: '/runs/exp-unit-notebook' },
  costs: { llm_usd: 0, llm_prompt_tokens: 0, llm_completion_tokens: 0, gpu_hours: 0 },
  ...extra,
});

test('the status section is replaced in place, the text a person added around it is kept, met deliverables are ticked', () => {
  const body = `${issueBody(spec, spec.experiment_id, status())}\n\nNotes a person added below.`;
  const later = withStatusSection(body, statusSection(status({ stage: 'training' })), ['accuracy']);
  expect(later).toContain('**Stage:** `training`');
  expect(later).not.toContain('**Stage:** `registered`');
  expect(later).toContain('- [x] `accuracy` (threshold)');
  expect(later).toContain('- [ ] `checkpoint` (exists_and_loadable)');
  expect(later.endsWith('Notes a person added below.')).toBe(true);
  expect(runNameOfIssue(later)).toBe('exp-unit-notebook');
  // A body whose section was deleted gets it back at the end.
  expect(withStatusSection('no section', statusSection(status()))).toMatch(
    /^no section\n\n<!-- labline:status:start -->/,
  );
});

test('a W&B run is linked from the status section; a local run directory is not', () => {
  expect(
    statusSection(status({ links: { run_dir: '/r', tracker_url: 'https://wandb.ai/lab/p/runs/x' } })),
  ).toContain('**W&B run:** https://wandb.ai/lab/p/runs/x');
  expect(statusSection(status())).not.toContain('W&B run');
});

test('a table cell cannot break the table: pipes and newlines in a decision comment are escaped', () => {
  const decided = status({
    decisions: [
      {
        gate: 'launch',
        by: 'alice',
        at: '2026-12-04T10:01:00.000Z',
        source: 'github',
        outcome: 'approved',
        comment: 'a | b\nc',
      },
    ],
  });
  expect(statusSection(decided)).toContain(
    '| launch | approved | alice (github) | 2026-12-04T10:01:00.000Z | a \\| b c |',
  );
});

test('the outcome label follows the verdict of a completed experiment, and the stage of one that ended otherwise', () => {
  expect(notebookOutcome('completed', 'supported')).toBe('supported');
  expect(notebookOutcome('completed', 'not_supported')).toBe('refuted');
  expect(notebookOutcome('completed', 'inconclusive')).toBe('inconclusive');
  expect(notebookOutcome('rejected', undefined)).toBe('rejected');
  expect(notebookOutcome('failed', 'supported')).toBe('failed');
});

test('/labline commands: approve with an optional comment, reject only with a reason, anything else explained', () => {
  expect(parseGithubCommand('/labline approve')).toEqual({ kind: 'decision', signal: 'approve' });
  expect(parseGithubCommand('/labline approve  ship it\nmore text')).toEqual({
    kind: 'decision',
    signal: 'approve',
    comment: 'ship it',
  });
  expect(parseGithubCommand('/LABLINE Reject too costly')).toEqual({
    kind: 'decision',
    signal: 'reject',
    comment: 'too costly',
  });
  expect(parseGithubCommand('/labline reject')).toMatchObject({
    kind: 'invalid',
    reason: expect.stringMatching(/needs a reason/),
  });
  expect(parseGithubCommand('/labline retry')).toMatchObject({
    kind: 'invalid',
    reason: expect.stringMatching(/not a command/),
  });
  expect(parseGithubCommand('Looks good. /labline approve')).toBeUndefined();
  expect(parseGithubCommand('/lablinex approve')).toBeUndefined();
});
