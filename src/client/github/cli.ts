/**
 * `labline github`: takes decisions from GitHub comments until interrupted, as a webhook endpoint or, with
 * `--poll`, by reading new comments. Secrets come from GITHUB_TOKEN and GITHUB_WEBHOOK_SECRET; the
 * repository, approver logins, port, host and path from the settings' `github` section.
 */
import type { Command } from 'commander';
import * as path from 'node:path';
import { checkGithubAccess, createGithubClient } from '../../activities/notebook/github-client';
import { githubTokenFromEnv, githubWebhookSecretFromEnv } from '../../activities/notebook/github-settings';
import { commandSummary } from '../cli-registry';
import type { GlobalOptions } from '../cli-experiments';
import { connectClient, findTemporal } from '../connection';
import { loadSettings, SettingsError } from '../settings';
import { SeenRequests } from '../slack/seen-requests';
import { GithubDecisions } from './decisions';
import { GithubPoller } from './poll';
import { startGithubWebhook } from './webhook';

/** Deliveries and comments are remembered this long: GitHub redelivers on request, days later. */
const SEEN_FOR_MS = 30 * 24 * 3600 * 1000;

export function addGithubCommand(program: Command): void {
  program
    .command('github')
    .description(commandSummary('github'))
    .option(
      '--poll',
      'read new comments every github.poll_interval_seconds instead of listening for webhooks',
    )
    .option('--port <port>', 'port to listen on (default: github.port, 3001)', (value) => Number(value))
    .option('--host <host>', 'interface to listen on (default: github.host, 127.0.0.1)')
    .action(async (options: { poll?: boolean; port?: number; host?: string }) => {
      const settings = loadSettings(program.opts<GlobalOptions>().config);
      const github = settings.github;
      if (!github)
        throw new SettingsError(
          `${settings.file ?? 'The Labline settings'} have no \`github\` section: add one with at least ` +
            '`repo: owner/name` (see README "GitHub as the lab notebook").',
        );
      // Secrets are checked before anything connects: the endpoint never runs unverified.
      const secret = options.poll ? undefined : githubWebhookSecretFromEnv();
      const client = createGithubClient({ token: githubTokenFromEnv(), settings: github, retries: true });
      await checkGithubAccess(client, github.repo);
      const target = await findTemporal(settings);
      const { client: temporal, connection } = await connectClient(target);
      const decisions = new GithubDecisions({ client: temporal, github: client, settings: github });
      const seen = new SeenRequests(path.join(settings.dataDir, 'github-requests.json'), SEEN_FOR_MS);
      try {
        if (options.poll) {
          const poller = new GithubPoller({
            github: client,
            repo: github.repo,
            decisions,
            seen,
            log: console.log,
          });
          console.log(
            `Reading new comments on ${github.repo} every ${github.poll_interval_seconds} s (Temporal ${target.address}). Ctrl-C stops it.`,
          );
          await untilInterrupted(async () => {
            await poller.pollOnce().catch((error: unknown) => {
              console.error(
                `[labline github] poll failed, next try in ${github.poll_interval_seconds} s: ${(error as Error).message}`,
              );
            });
          }, github.poll_interval_seconds * 1000);
        } else {
          const webhook = await startGithubWebhook({
            decisions,
            secret: secret!,
            seen,
            port: options.port ?? github.port,
            host: options.host ?? github.host,
            path: github.path,
          });
          console.log(
            `GitHub webhook endpoint listening on ${webhook.url} (Temporal ${target.address}). Use its public HTTPS ` +
              'URL as the Payload URL of a repository webhook (content type application/json, the same secret, ' +
              'event "Issue comments"). Ctrl-C stops it.',
          );
          await untilInterrupted();
          await webhook.stop();
        }
      } finally {
        await connection.close();
      }
    });
}

/** Resolves on SIGINT or SIGTERM; runs `tick` every `intervalMs` meanwhile, one run at a time. */
function untilInterrupted(tick?: () => Promise<void>, intervalMs = 0): Promise<void> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const loop = async () => {
      if (stopped || !tick) return;
      await tick();
      if (!stopped) timer = setTimeout(() => void loop(), intervalMs);
    };
    const stop = () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    void loop();
  });
}
