/**
 * `labline github` as a user runs it: it refuses to start without its settings, secrets or a token GitHub
 * accepts, and with them it serves signed webhook deliveries (or polls) until it is stopped.
 */
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { issueMarker } from '../../src/experiment';
import { FakeGithub } from '../support/fake-github';
import { cliScript, startTsProcess, type RunningProcess } from '../support/processes';
import { startTestTemporal, type TestTemporal } from '../support/temporal';

const run = promisify(execFile);
const secret = 'cli-webhook-secret';
let github: FakeGithub;
beforeAll(async () => {
  github = await new FakeGithub().start();
});
afterAll(async () => github?.stop());

function settingsFile(section: Record<string, unknown> | undefined): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'labline-github-cli-'));
  const file = path.join(dir, 'labline.config.yaml');
  writeFileSync(file, JSON.stringify(section ? { github: section } : {}));
  return file;
}

/** Runs `labline github` to its end; these runs must refuse before they connect to Temporal. */
async function refusal(file: string, env: NodeJS.ProcessEnv, args: string[] = []) {
  const clean = { ...process.env };
  delete clean.GITHUB_TOKEN;
  delete clean.GITHUB_WEBHOOK_SECRET;
  try {
    await run(process.execPath, [cliScript, '--config', file, 'github', ...args], {
      env: { ...clean, TEMPORAL_ADDRESS: '127.0.0.1:1', ...env },
      timeout: 30_000,
    });
    return { code: 0, stderr: '' };
  } catch (error) {
    const e = error as { code?: number; stderr?: string };
    return { code: e.code ?? -1, stderr: e.stderr ?? '' };
  }
}

test('labline github refuses to start without a github section, its webhook secret, its token, or a token GitHub accepts', async () => {
  const none = await refusal(settingsFile(undefined), {});
  expect(none.code).toBe(2);
  expect(none.stderr).toMatch(/no `github` section/);

  const file = settingsFile({ repo: github.fullName, api_url: github.url });
  const noSecret = await refusal(file, { GITHUB_TOKEN: github.token });
  expect(noSecret.code).toBe(2);
  expect(noSecret.stderr).toMatch(/GITHUB_WEBHOOK_SECRET is not set.*--poll/s);

  const noToken = await refusal(file, {}, ['--poll']);
  expect(noToken.code).toBe(2);
  expect(noToken.stderr).toMatch(/GITHUB_TOKEN is not set/);

  const refused = await refusal(file, { GITHUB_TOKEN: 'ghp_revoked' }, ['--poll']);
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toMatch(/GitHub refused GITHUB_TOKEN \(401\)/);

  const badRepo = await refusal(settingsFile({ repo: 'not a repo' }), {});
  expect(badRepo.code).toBe(2);
  expect(badRepo.stderr).toMatch(/github\.repo: is not `owner\/name`/);
});

describe('with its secrets', () => {
  let env: TestTemporal;
  let cli: RunningProcess | undefined;
  beforeAll(async () => {
    env = await startTestTemporal();
  });
  afterAll(async () => {
    await cli?.kill('SIGKILL');
    await env?.stop();
  });

  test('labline github serves signed deliveries, answers a command on an unknown experiment, and stops on SIGTERM', async () => {
    const file = settingsFile({ repo: github.fullName, api_url: github.url, port: 0, write_interval_ms: 0 });
    cli = startTsProcess(cliScript, ['--config', file, 'github'], {
      GITHUB_TOKEN: github.token,
      GITHUB_WEBHOOK_SECRET: secret,
      TEMPORAL_ADDRESS: env.address,
      TEMPORAL_NAMESPACE: env.namespace,
    });
    const [, url] = await cli.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+\/github\/webhook)/, 60_000);
    github.issues.push({
      number: 1,
      title: 'Experiment: gone (exp-not-submitted)',
      body: issueMarker('exp-not-submitted'),
      state: 'open',
      state_reason: null,
      labels: [],
      assignees: [],
      user: github.login,
      updated_at: new Date().toISOString(),
      comments: [],
    });
    const comment = github.addComment(1, 'alice-gh', '/labline approve');
    const body = JSON.stringify({
      action: 'created',
      issue: github.issueJson(github.issue(1)),
      comment: github.commentJson(comment),
    });
    const headers = (signatureSecret: string) => ({
      'content-type': 'application/json',
      'x-github-event': 'issue_comment',
      'x-github-delivery': 'cli-delivery-1',
      'x-hub-signature-256': `sha256=${createHmac('sha256', signatureSecret).update(body).digest('hex')}`,
    });
    expect((await fetch(url!, { method: 'POST', headers: headers('wrong'), body })).status).toBe(401);
    const answered = await fetch(url!, { method: 'POST', headers: headers(secret), body });
    expect(answered.status).toBe(200);
    expect(await answered.text()).toBe('refused');
    expect(github.issue(1).comments.at(-1)!.body).toContain(
      'Not taken: There is no experiment `exp-not-submitted` on this Temporal.',
    );
    const exited = new Promise<number | null>((resolve) => cli!.child.once('exit', (code) => resolve(code)));
    cli.child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
