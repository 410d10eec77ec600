/**
 * The `slack` section of the Labline settings, and the two Slack secrets, which only ever come from the
 * environment. The worker's Slack notifier and the `labline slack` endpoint read both.
 */
import { z } from 'zod';

/** A Slack user id (`U…`, or `W…` on Enterprise Grid). */
export const SLACK_USER_ID_PATTERN = /^[UW][A-Z0-9]{2,}$/;

/** One Slack identity of a Labline approver: a Slack user id, or an email resolved through the Slack API. */
export const SlackIdentity = z
  .string()
  .trim()
  .refine(
    (value) => SLACK_USER_ID_PATTERN.test(value) || /^[^@\s]+@[^@\s]+$/.test(value),
    'is neither a Slack user id (like "U0ALICE01") nor an email',
  );

export const SlackSettings = z.strictObject({
  /**
   * Channel id approval requests are posted to, like `C0APPROVALS` (channel details in Slack show it).
   * An id, not a name: the notifier reads the channel's history to find its earlier posts.
   */
  channel: z
    .string()
    .trim()
    .regex(/^[CG][A-Z0-9]{2,}$/, 'is not a Slack channel id (like "C0APPROVALS"); names are not accepted'),
  /**
   * Labline approver names (as in specs' `approvals.<gate>.approvers`) → their Slack user id or email, or a
   * list of them. A gate approver may also be written as a Slack user id directly. Default `{}`.
   */
  approvers: z
    .record(z.string().trim().min(1), z.union([SlackIdentity, z.array(SlackIdentity).min(1)]))
    .default({}),
  /** Port of the `labline slack` endpoint. Default `3000`. */
  port: z.number().int().min(0).max(65_535).default(3000),
  /**
   * Interface the endpoint listens on. Default `127.0.0.1`: Slack only calls HTTPS URLs, so put a TLS
   * proxy or tunnel in front, or set `0.0.0.0` to listen on every interface.
   */
  host: z.string().trim().min(1).default('127.0.0.1'),
  /** Path of the Request URL for interactivity and the slash command. Default `/slack/events`. */
  path: z.string().startsWith('/').default('/slack/events'),
  /** The slash command the endpoint answers. Default `/labline`. */
  command: z.string().startsWith('/').default('/labline'),
  /** Slack Web API base URL, ending in `/`. Default `https://slack.com/api/` (tests point it at a fake). */
  api_url: z.url().endsWith('/').default('https://slack.com/api/'),
});
/** The `slack` section of the Labline settings. */
export type SlackSettings = z.infer<typeof SlackSettings>;

/** The environment variables that hold Slack's secrets. */
export const SLACK_ENV = { botToken: 'SLACK_BOT_TOKEN', signingSecret: 'SLACK_SIGNING_SECRET' } as const;

/** A Slack secret is missing from the environment; the message names the variable and the fix. */
export class SlackSecretMissingError extends Error {
  override readonly name = 'SlackSecretMissingError';
}

/**
 * The bot token (`xoxb-…`, env SLACK_BOT_TOKEN), which posts and updates messages.
 *
 * @throws SlackSecretMissingError when it is not set
 */
export function slackBotTokenFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const token = env[SLACK_ENV.botToken]?.trim();
  if (!token)
    throw new SlackSecretMissingError(
      `${SLACK_ENV.botToken} is not set, but the Labline settings have a \`slack\` section: export the bot ` +
        "token (xoxb-…, from your Slack app's OAuth & Permissions page) or remove the `slack` section.",
    );
  return token;
}

/**
 * The signing secret (env SLACK_SIGNING_SECRET), which proves that a request comes from Slack.
 *
 * @throws SlackSecretMissingError when it is not set
 */
export function slackSigningSecretFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const secret = env[SLACK_ENV.signingSecret]?.trim();
  if (!secret)
    throw new SlackSecretMissingError(
      `${SLACK_ENV.signingSecret} is not set: \`labline slack\` does not start without it, since it could ` +
        "not tell Slack's requests from anyone else's. Export the signing secret from your Slack app's " +
        'Basic Information page.',
    );
  return secret;
}
