/**
 * `labline slack`: runs the Slack endpoint until interrupted. Secrets come from SLACK_SIGNING_SECRET and
 * SLACK_BOT_TOKEN; the channel, approver map, port and host from the settings' `slack` section.
 */
import type { Command } from 'commander';
import { commandSummary } from '../cli-registry';
import * as path from 'node:path';
import { slackBotTokenFromEnv, slackSigningSecretFromEnv } from '../../activities/notify/slack-settings';
import type { GlobalOptions } from '../cli-experiments';
import { connectClient, findTemporal } from '../connection';
import { loadSettings, SettingsError } from '../settings';
import { startSlackBridge } from './bridge';

export function addSlackCommand(program: Command): void {
  program
    .command('slack')
    .description(commandSummary('slack'))
    .option('--port <port>', 'port to listen on (default: slack.port, 3000)', (value) => Number(value))
    .option('--host <host>', 'interface to listen on (default: slack.host, 127.0.0.1)')
    .action(async (options: { port?: number; host?: string }) => {
      const settings = loadSettings(program.opts<GlobalOptions>().config);
      if (!settings.slack)
        throw new SettingsError(
          `${settings.file ?? 'The Labline settings'} have no \`slack\` section: add one with at least ` +
            '`channel: C…` (see README "Approvals in Slack").',
        );
      // Both secrets are checked before anything connects: the endpoint never runs unverified.
      const signingSecret = slackSigningSecretFromEnv();
      const botToken = slackBotTokenFromEnv();
      const target = await findTemporal(settings);
      const { client, connection } = await connectClient(target);
      try {
        const bridge = await startSlackBridge({
          client,
          settings: settings.slack,
          signingSecret,
          botToken,
          seenRequestsFile: path.join(settings.dataDir, 'slack-requests.json'),
          ...(options.port !== undefined ? { port: options.port } : {}),
          ...(options.host !== undefined ? { host: options.host } : {}),
        });
        console.log(
          `Slack endpoint listening on ${bridge.url} (Temporal ${target.address}). Use its public HTTPS URL ` +
            `as the Request URL of Interactivity and of the ${settings.slack.command} command. Ctrl-C stops it.`,
        );
        await untilInterrupted();
        await bridge.stop();
      } finally {
        await connection.close();
      }
    });
}

function untilInterrupted(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
