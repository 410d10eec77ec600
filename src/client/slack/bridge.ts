/**
 * The Slack endpoint behind `labline slack`: decision buttons (`block_actions`) and the `/labline` slash
 * command, turned into `decide` updates through the typed client API. A signed request is taken at most
 * once: a replay of the same bytes within Slack's five-minute window is answered and changes nothing.
 *
 * Built on @slack/bolt's HTTP receiver rather than node:http: Bolt verifies Slack's signature and the
 * 5-minute replay window (answering 401 with no body), buffers the raw body the signature covers,
 * acknowledges within Slack's 3 seconds while the listener goes on, parses `payload=` form posts and
 * routes actions and commands, posts to `response_url`, and checks the bot token with `auth.test` at
 * start. Those are the parts Slack is strict about, and Bolt is Slack's own reference for them; what is
 * left here is Labline's logic. Bolt's content-type handling is strict in the same way Slack is: a form
 * post whose Content-Type is not exactly `application/x-www-form-urlencoded` is refused with 400.
 */
import {
  App,
  HTTPReceiver,
  LogLevel,
  type BlockAction,
  type ButtonAction,
  type Context,
  type Logger,
} from '@slack/bolt';
import type { MessageMetadata } from '@slack/types';
import type { Client } from '@temporalio/client';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { SlackDirectory } from '../../activities/notify/slack-directory';
import {
  ACTION_ID_PREFIX,
  ButtonValue,
  decidedContent,
  decisionLine,
  escapeMrkdwn,
} from '../../activities/notify/slack-messages';
import type { SlackSettings } from '../../activities/notify/slack-settings';
import { campaignStatus, isCampaignId } from '../campaigns';
import { formatCampaignStatus, formatStatus } from '../cli-format';
import { experimentStatus } from '../experiments';
import { WorkflowNotFoundError } from '@temporalio/client';
import { parseSlashCommand, slashUsage } from './commands';
import { SeenRequests, slackRequestKey } from './seen-requests';
import { SlackDecisions, type SlackDecisionResult } from './decisions';

/** Options of {@link startSlackBridge}. */
export interface SlackBridgeOptions {
  /** Temporal client the decisions are signalled through. */
  client: Client;
  /** The `slack` section of the settings (port, host, path, command, approver map, API URL). */
  settings: SlackSettings;
  /** From SLACK_SIGNING_SECRET; verifies that requests come from Slack. */
  signingSecret: string;
  /** From SLACK_BOT_TOKEN; updates messages and looks up emails. */
  botToken: string;
  /** Port to listen on; default `settings.port` (0 picks a free one). */
  port?: number;
  /** Interface to listen on; default `settings.host`. */
  host?: string;
  /** Bolt's log level. Default WARN (a failed signature check is logged at WARN). */
  logLevel?: LogLevel;
  /** Bolt's logger; default Bolt's console logger. */
  logger?: Logger;
  /** Seconds a Slack user's email is remembered (for approvers known by email). Default 300. */
  emailCacheSeconds?: number;
  /**
   * Where the requests already taken are kept, so that a replay is refused after a restart too
   * (`labline slack` uses `<data_dir>/slack-requests.json`). Default: in memory only.
   */
  seenRequestsFile?: string;
}

/** A running endpoint. */
export interface SlackBridge {
  /** `http://host:port/path`: the Request URL to put (behind HTTPS) in the Slack app's settings. */
  url: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * Starts the endpoint. Refuses to start without a signing secret or bot token, and when `auth.test`
 * rejects the token.
 */
export async function startSlackBridge(options: SlackBridgeOptions): Promise<SlackBridge> {
  const { settings } = options;
  if (!options.signingSecret)
    throw new Error('The Slack endpoint needs a signing secret (SLACK_SIGNING_SECRET) to verify requests.');
  if (!options.botToken) throw new Error('The Slack endpoint needs the bot token (SLACK_BOT_TOKEN).');
  const logging = {
    logLevel: options.logLevel ?? LogLevel.WARN,
    ...(options.logger ? { logger: options.logger } : {}),
  };
  // Bolt's own receiver, built here only to hand each listener the signed request's signature and
  // timestamp: they identify the request, so a replay of it is recognised.
  const receiver = new HTTPReceiver({
    signingSecret: options.signingSecret,
    endpoints: settings.path,
    ...logging,
    customPropertiesExtractor: (request) => ({
      slackRequestKey: slackRequestKey(
        String(request.headers['x-slack-signature'] ?? ''),
        String(request.headers['x-slack-request-timestamp'] ?? ''),
      ),
    }),
  });
  const app = new App({
    receiver,
    token: options.botToken,
    // auth.test runs in init() below, so a bad token stops the start with Slack's error.
    deferInitialization: true,
    ...logging,
    clientOptions: { slackApiUrl: settings.api_url, timeout: 10_000, retryConfig: { retries: 2 } },
  });
  try {
    await app.init();
  } catch (error) {
    throw new Error(
      `Slack refused the bot token (auth.test at ${settings.api_url}): ${(error as Error).message}. ` +
        'Check SLACK_BOT_TOKEN (a bot token, xoxb-…) and that the app is installed in the workspace.',
      { cause: error },
    );
  }

  const directory = new SlackDirectory(settings.approvers);
  const emails = new Map<string, { email: string | undefined; at: number }>();
  const emailOf = async (userId: string): Promise<string | undefined> => {
    const cached = emails.get(userId);
    if (cached && Date.now() - cached.at < (options.emailCacheSeconds ?? 300) * 1000) return cached.email;
    const { user } = await app.client.users.info({ user: userId });
    const email = user?.profile?.email;
    emails.set(userId, { email, at: Date.now() });
    return email;
  };
  const decisions = new SlackDecisions({ client: options.client, directory, emailOf });
  const seen = new SeenRequests(options.seenRequestsFile);
  /** The request's key the first time it is taken; `undefined` for a replay. */
  const firstTime = (context: Context): string | undefined => {
    const key = context.slackRequestKey as string;
    return seen.claim(key) ? key : undefined;
  };
  const replayAnswer = 'This request was already received; a repeat of it changes nothing.';

  app.action<BlockAction<ButtonAction>>(
    { type: 'block_actions', action_id: new RegExp(`^${ACTION_ID_PREFIX}`) },
    async ({ ack, body, action, respond, client, logger, context }) => {
      await ack();
      const requestKey = firstTime(context);
      if (!requestKey) {
        await respond({ response_type: 'ephemeral', replace_original: false, text: replayAnswer });
        return;
      }
      const value = parseButtonValue(action.value);
      if (!value) {
        await respond({
          response_type: 'ephemeral',
          replace_original: false,
          text: 'This button is not a Labline decision.',
        });
        return;
      }
      let result: SlackDecisionResult;
      try {
        result = await decisions.decide({
          experimentId: value.experiment_id,
          gate: value.gate,
          since: value.since,
          ...(value.opening ? { opening: value.opening } : {}),
          requestId: `slack-${requestKey}`,
          signal: value.signal,
          ...(value.choice ? { choice: value.choice } : {}),
          actor: { id: body.user.id, name: body.user.username || body.user.name },
        });
      } catch (error) {
        logger.error(`Slack decision on ${value.experiment_id} failed`, error);
        await respond({
          response_type: 'ephemeral',
          replace_original: false,
          text: trouble(value.experiment_id, error),
        });
        return;
      }
      if (result.kind !== 'decided') {
        await respond({ response_type: 'ephemeral', replace_original: false, text: explain(result) });
        return;
      }
      const channel = (body.container.channel_id as string | undefined) ?? body.channel?.id;
      const ts = (body.container.message_ts as string | undefined) ?? body.message?.ts;
      if (!channel || !ts) return;
      const message = body.message ?? { type: 'message' as const, ts };
      const content = decidedContent(
        (message.blocks as Parameters<typeof decidedContent>[0] | undefined) ?? [],
        message.text ?? `${value.gate} of ${value.experiment_id}`,
        result.record,
        `<@${body.user.id}>`,
      );
      try {
        await client.chat.update({
          channel,
          ts,
          text: content.text,
          blocks: content.blocks,
          // The notifier finds its posts by metadata; keep it when Slack sent it along.
          ...(message.metadata ? { metadata: message.metadata as MessageMetadata } : {}),
        });
      } catch (error) {
        logger.warn(`could not update the request message of ${value.experiment_id}`, error);
        await respond({
          response_type: 'ephemeral',
          replace_original: false,
          text: `Decided, but the message could not be updated (${(error as Error).message}); Labline updates it when Slack lets it.`,
        });
      }
    },
  );

  app.command(settings.command, async ({ ack, command, respond, logger, context }) => {
    await ack();
    const requestKey = firstTime(context);
    if (!requestKey) {
      await respond({ response_type: 'ephemeral', text: replayAnswer });
      return;
    }
    const parsed = parseSlashCommand(command.text);
    const actor = { id: command.user_id, name: command.user_name };
    if (parsed.kind === 'help') {
      await respond({
        response_type: 'ephemeral',
        text: `${parsed.problem ? `${parsed.problem}\n` : ''}${slashUsage(settings.command)}`,
      });
      return;
    }
    try {
      if (parsed.kind === 'status') {
        const text = await statusText(options.client, parsed.experimentId);
        await respond({ response_type: 'ephemeral', text });
        return;
      }
      const result = await decisions.decide({
        experimentId: parsed.experimentId,
        signal: parsed.kind,
        actor,
        requestId: `slack-${requestKey}`,
        ...(parsed.kind === 'approve'
          ? parsed.comment !== undefined
            ? { comment: parsed.comment }
            : {}
          : { comment: parsed.reason }),
      });
      if (result.kind === 'decided') {
        const line = decisionLine(result.record, `<@${actor.id}>`);
        await respond({
          response_type: 'in_channel',
          text: `${line.emoji} ${result.record.gate} gate of \`${parsed.experimentId}\`: ${line.text}`,
        });
      } else await respond({ response_type: 'ephemeral', text: explain(result) });
    } catch (error) {
      logger.error(`Slack command on ${parsed.experimentId} failed`, error);
      await respond({ response_type: 'ephemeral', text: trouble(parsed.experimentId, error) });
    }
  });

  const server = (await app.start({
    port: options.port ?? settings.port,
    host: options.host ?? settings.host,
  })) as Server;
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}${settings.path}`,
    port: address.port,
    stop: () => app.stop() as Promise<void>,
  };
}

function parseButtonValue(raw: string | undefined): ButtonValue | undefined {
  if (raw === undefined) return undefined;
  try {
    const parsed = ButtonValue.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function explain(result: Exclude<SlackDecisionResult, { kind: 'decided' }>): string {
  return result.reason;
}

/** The status of an experiment or a campaign, as the CLI prints it, or why there is none. */
async function statusText(client: Client, id: string): Promise<string> {
  try {
    const text = isCampaignId(id)
      ? formatCampaignStatus(await campaignStatus(client, id))
      : formatStatus(await experimentStatus(client, id));
    return `\`\`\`${escapeMrkdwn(text)}\`\`\``;
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return `There is no experiment or campaign \`${id}\`.`;
    throw error;
  }
}

function trouble(experimentId: string, error: unknown): string {
  return (
    `Labline could not carry this out for \`${experimentId}\`: ${error instanceof Error ? error.message : String(error)}. ` +
    `Check with \`/labline status ${experimentId}\` before trying again.`
  );
}
