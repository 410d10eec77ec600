/**
 * The GitHub notebook against a loopback GitHub with the real `@octokit/rest`: idempotent writes, rate
 * limits waited out or handed to Temporal, refusals that say how to fix them, the post's charts committed.
 */
import { ApplicationFailure } from '@temporalio/common';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { checkGithubAccess, createGithubClient } from '../../src/activities/notebook/github-client';
import { GithubNotebook, ISSUE_RECORD } from '../../src/activities/notebook/github-notebook';
import { GithubSettings } from '../../src/activities/notebook/github-settings';
import {
  ExperimentSpec,
  issueBody,
  issueTitle,
  statusSection,
  type ExperimentStatus,
} from '../../src/experiment';
import { FakeGithub } from '../support/fake-github';
import { trainerSpec } from '../support/experiments';

let github: FakeGithub;
let runDir: string;
beforeEach(async () => {
  github = await new FakeGithub().start();
  runDir = mkdtempSync(path.join(tmpdir(), 'labline-notebook-'));
});
afterEach(async () => {
  await github.stop();
  rmSync(runDir, { recursive: true, force: true });
});

const settingsFor = (extra: Record<string, unknown> = {}) =>
  GithubSettings.parse({
    repo: github.fullName,
    api_url: github.url,
    write_interval_ms: 0,
    rate_limit_wait_seconds: 3,
    ...extra,
  });
const notebookFor = (extra: Record<string, unknown> = {}, token = github.token) => {
  const settings = settingsFor(extra);
  return new GithubNotebook(createGithubClient({ token, settings }), settings);
};

const spec = ExperimentSpec.parse(trainerSpec('exp-notebook'));
const status = (stage: ExperimentStatus['stage'] = 'registered'): ExperimentStatus => ({
  experiment_id: spec.experiment_id,
  name: spec.name,
  stage,
  stage_since: '2026-12-04T10:00:00.000Z',
  decisions: [],
  attempts: [],
  preemptions: 0,
  failures: 0,
  links: { run_dir: runDir },
  costs: { llm_usd: 0, llm_prompt_tokens: 0, llm_completion_tokens: 0, gpu_hours: 0 },
});
const openInput = () => ({
  runName: spec.experiment_id,
  runDir,
  title: issueTitle(spec, spec.experiment_id),
  body: issueBody(spec, spec.experiment_id, status()),
  stage: 'registered',
  approvers: ['alice'],
  since: '2025-01-01T00:00:00Z',
});
const sectionAt = (stage: ExperimentStatus['stage']) => ({ section: statusSection(status(stage)), stage });

test('an issue opened by an attempt that died before recording it is found by its marker, not opened again', async () => {
  const notebook = notebookFor();
  const first = await notebook.open(openInput());
  expect(github.issues).toHaveLength(1);
  expect(github.issues[0]!.title).toBe('Experiment: test exp-notebook (exp-notebook)');
  expect(github.issues[0]!.labels).toEqual(['labline', 'stage:registered']);
  expect(github.issues[0]!.body).toContain('- [ ] `accuracy` (threshold)');

  // The record in the run directory is gone, as when the worker died between GitHub's answer and writing it.
  rmSync(path.join(runDir, ISSUE_RECORD));
  await expect(notebook.open(openInput())).resolves.toEqual(first);
  // With the record there, no lookup is needed at all.
  const calls = github.calls.length;
  await expect(notebook.open(openInput())).resolves.toEqual(first);
  expect(github.calls.length).toBe(calls);
  expect(github.issues).toHaveLength(1);
});

test('an event is commented once however often the update is retried; the stage label follows the stage', async () => {
  const notebook = notebookFor();
  const { number } = await notebook.open(openInput());
  const event = { key: 'launched/1', title: 'Launch 1 started', body: 'On `local`.' };
  await notebook.update({ runName: spec.experiment_id, issue: number, ...sectionAt('training'), event });
  await notebook.update({ runName: spec.experiment_id, issue: number, ...sectionAt('training'), event });
  const issue = github.issue(number);
  expect(issue.comments).toHaveLength(1);
  expect(issue.comments[0]!.body).toContain('### Launch 1 started');
  expect(issue.labels).toEqual(['labline', 'stage:training']);
  expect(issue.body).toContain('**Stage:** `training`');
  // Only the status section was rewritten: the configuration above it is as it was.
  expect(issue.body).toContain('### Configuration');
});

test('a secondary rate limit with a short Retry-After is waited out inside the call', async () => {
  github.fail(
    'POST /repos/*/*/issues',
    403,
    { message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.' },
    { 'retry-after': '1' },
  );
  const started = Date.now();
  await notebookFor().open(openInput());
  expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  expect(github.issues).toHaveLength(1);
  expect(github.calls.filter((c) => c.method === 'POST').map((c) => c.status)).toEqual([403, 201]);
});

test('a long rate limit fails the attempt with the Retry-After as next retry delay; a refused token is not retried', async () => {
  github.fail(
    'POST /repos/*/*/issues',
    403,
    { message: 'You have exceeded a secondary rate limit.' },
    { 'retry-after': '120' },
  );
  const limited = await notebookFor()
    .open(openInput())
    .catch((error: unknown) => error);
  expect(limited).toBeInstanceOf(ApplicationFailure);
  expect((limited as ApplicationFailure).nonRetryable).toBe(false);
  expect((limited as ApplicationFailure).nextRetryDelay).toBe('120s');
  expect(github.issues).toHaveLength(0);

  const refused = await notebookFor({}, 'ghp_wrong')
    .open(openInput())
    .catch((error: unknown) => error);
  expect(refused).toBeInstanceOf(ApplicationFailure);
  expect((refused as ApplicationFailure).nonRetryable).toBe(true);
  expect((refused as ApplicationFailure).message).toMatch(/GITHUB_TOKEN was refused/);
});

test('a worker start checks the token and the repository, with messages that say what to fix', async () => {
  const settings = settingsFor();
  await expect(
    checkGithubAccess(createGithubClient({ token: github.token, settings }), settings.repo),
  ).resolves.toEqual({
    login: 'labline-bot',
  });
  await expect(
    checkGithubAccess(createGithubClient({ token: 'ghp_wrong', settings }), settings.repo),
  ).rejects.toThrow(/refused GITHUB_TOKEN \(401\).*Create a new token/);
  await expect(
    checkGithubAccess(createGithubClient({ token: github.token, settings }), 'lab/elsewhere'),
  ).rejects.toThrow(/no repository lab\/elsewhere.*github\.repo/);
});

test.each(['comment', 'file'] as const)(
  'closing with post: %s commits the charts to the posts branch, links them, labels the outcome and closes',
  async (post) => {
    const notebook = notebookFor({ post });
    const { number } = await notebook.open(openInput());
    mkdirSync(path.join(runDir, 'charts'));
    writeFileSync(path.join(runDir, 'charts', 'loss.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    writeFileSync(path.join(runDir, 'report.md'), '# Report\n\n![Figure 1: loss](charts/loss.svg)\n');
    const input = {
      runName: spec.experiment_id,
      runDir,
      issue: number,
      ...sectionAt('completed'),
      outcome: 'supported',
      reportPath: path.join(runDir, 'report.md'),
    };
    await notebook.close(input);
    await notebook.close(input);
    const issue = github.issue(number);
    expect(issue.state).toBe('closed');
    expect(issue.state_reason).toBe('completed');
    expect([...issue.labels].sort()).toEqual(['labline', 'stage:completed', 'supported']);
    expect(issue.comments).toHaveLength(1);
    const chartUrl = `${github.htmlUrl()}/blob/labline/posts/posts/exp-notebook/charts/loss.svg?raw=true`;
    expect(github.files.has('labline/posts:posts/exp-notebook/charts/loss.svg')).toBe(true);
    if (post === 'comment') expect(issue.comments[0]!.body).toContain(`![Figure 1: loss](${chartUrl})`);
    else {
      expect(issue.comments[0]!.body).toContain('/blob/labline/posts/posts/exp-notebook/report.md');
      const committed = github.files.get('labline/posts:posts/exp-notebook/report.md')!;
      expect(Buffer.from(committed.content, 'base64').toString()).toContain(chartUrl);
    }
    // The second close changed no file: contents already there are not committed again.
    expect(github.writes().filter((c) => c.method === 'PUT')).toHaveLength(post === 'comment' ? 1 : 2);
  },
);

test('assignees_from_approvers assigns the launch approvers that have a login; others are left out', async () => {
  const notebook = notebookFor({ approvers: { alice: 'alice-gh' }, assignees_from_approvers: true });
  await notebook.open({ ...openInput(), approvers: ['alice', 'bob'] });
  expect(github.issues[0]!.assignees).toEqual(['alice-gh']);
});

test("with the worker's Web UI, the issue links the run's page under its marker, and is still found by it", async () => {
  const settings = settingsFor();
  const notebook = new GithubNotebook(createGithubClient({ token: github.token, settings }), settings, {
    url: 'http://127.0.0.1:8233',
    namespace: 'default',
  });
  await notebook.open(openInput());
  const [marker, link] = github.issues[0]!.body.split('\n');
  expect(marker).toBe('<!-- labline:experiment=exp-notebook -->');
  expect(link).toBe('**Temporal Web UI:** http://127.0.0.1:8233/namespaces/default/workflows/exp-notebook');
  rmSync(path.join(runDir, ISSUE_RECORD));
  await notebook.open(openInput());
  expect(github.issues).toHaveLength(1);
});
