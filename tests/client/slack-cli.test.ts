/**
 * `labline slack` as a user runs it: it refuses to start without its settings and secrets, and with them
 * it serves signed Slack requests until it is stopped.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { cliScript, startTsProcess, type RunningProcess } from '../support/processes';
import { defaultUsers, FakeSlack, sendSigned, startFakeSlack } from '../support/fake-slack';
import { startTestTemporal, type TestTemporal } from '../support/temporal';

const run = promisify(execFile);
const signingSecret = 'cli-signing-secret';

function settingsFile(slack: Record<string, unknown> | undefined): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'labline-slack-cli-'));
  const file = path.join(dir, 'labline.config.yaml');
  writeFileSync(file, JSON.stringify(slack ? { slack } : {}));
  return file;
}

/** Runs `labline slack` to its end; these runs must refuse before they connect to anything. */
async function refusal(file: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stderr: string }> {
  const clean = { ...process.env };
  delete clean.SLACK_SIGNING_SECRET;
  delete clean.SLACK_BOT_TOKEN;
  try {
    await run(process.execPath, [cliScript, '--config', file, 'slack'], {
      env: { ...clean, ...env },
      timeout: 30_000,
    });
    return { code: 0, stderr: '' };
  } catch (error) {
    const e = error as { code?: number; stderr?: string };
    return { code: e.code ?? -1, stderr: e.stderr ?? '' };
  }
}

test('labline slack refuses to start without a slack section, a signing secret or a bot token, naming what is missing', async () => {
  const none = await refusal(settingsFile(undefined), {});
  expect(none.code).toBe(2);
  expect(none.stderr).toMatch(/no `slack` section/);

  const file = settingsFile({ channel: 'C0APPROVALS' });
  const noSecret = await refusal(file, { SLACK_BOT_TOKEN: 'xoxb-fake' });
  expect(noSecret.code).toBe(2);
  expect(noSecret.stderr).toMatch(
    /SLACK_SIGNING_SECRET is not set: `labline slack` does not start without it/,
  );

  const noToken = await refusal(file, { SLACK_SIGNING_SECRET: signingSecret });
  expect(noToken.code).toBe(2);
  expect(noToken.stderr).toMatch(/SLACK_BOT_TOKEN is not set/);

  const badChannel = await refusal(settingsFile({ channel: '#ml-approvals' }), {});
  expect(badChannel.code).toBe(2);
  expect(badChannel.stderr).toMatch(/slack\.channel: is not a Slack channel id/);
});

describe('with its secrets', () => {
  let env: TestTemporal;
  let slack: FakeSlack;
  let cli: RunningProcess | undefined;
  beforeAll(async () => {
    env = await startTestTemporal();
    slack = await startFakeSlack();
  });
  afterAll(async () => {
    await cli?.kill('SIGKILL');
    await slack?.stop();
    await env?.stop();
  });

  test('labline slack checks the token, serves signed slash commands, and stops on SIGTERM', async () => {
    const file = settingsFile({ channel: 'C0APPROVALS', port: 0, api_url: slack.apiUrl });
    cli = startTsProcess(cliScript, ['--config', file, 'slack'], {
      SLACK_SIGNING_SECRET: signingSecret,
      SLACK_BOT_TOKEN: slack.token,
      TEMPORAL_ADDRESS: env.address,
      TEMPORAL_NAMESPACE: env.namespace,
    });
    const [, url] = await cli.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+\/slack\/events)/, 60_000);
    expect(slack.succeeded('auth.test')).toHaveLength(1);
    const body = slack.slashCommandBody('status exp-not-submitted', defaultUsers[0]!);
    expect((await sendSigned(url!, body, { signingSecret })).status).toBe(200);
    expect((await sendSigned(url!, body, { signingSecret: 'wrong' })).status).toBe(401);
    const [answer] = await slack.until(
      () =>
        slack.responsesTo(FakeSlack.responseId(body)).length && slack.responsesTo(FakeSlack.responseId(body)),
      'the status answer',
    );
    expect(answer!.body).toMatchObject({
      response_type: 'ephemeral',
      text: 'There is no experiment or campaign `exp-not-submitted`.',
    });
    const exited = new Promise<number | null>((resolve) => cli!.child.once('exit', (code) => resolve(code)));
    cli.child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
