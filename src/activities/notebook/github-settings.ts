/**
 * The `github` section of the Labline settings, and GitHub's two secrets, which only ever come from the
 * environment. The worker's notebook activities and the `labline github` endpoint read both.
 */
import { z } from 'zod';

/** A GitHub login: letters, digits and single hyphens, at most 39 characters. */
export const GithubLogin = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$/, 'is not a GitHub login (like "octocat")');

export const GithubSettings = z.strictObject({
  /** The repository experiment issues go to, `owner/name`. */
  repo: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'is not `owner/name`'),
  /**
   * REST API base URL. Default `https://api.github.com`; GitHub Enterprise Server: `https://<host>/api/v3`.
   * Tests point it at a fake.
   */
  api_url: z.url({ protocol: /^https?$/ }).default('https://api.github.com'),
  /** Labels every experiment issue carries, besides `stage:<stage>` and the outcome. Default `["labline"]`. */
  labels: z.array(z.string().trim().min(1).max(50)).default(['labline']),
  /**
   * Labline approver names (as in specs' `approvals.<gate>.approvers`) → their GitHub login. Decisions by
   * `/labline approve` comments are taken from these logins only (or, for a gate anyone may decide, from
   * anyone with write access to the repository). Default `{}`.
   */
  approvers: z.record(z.string().trim().min(1), GithubLogin).default({}),
  /** Assign the experiment issue to the launch gate's approvers that have a login in `approvers`. Default false. */
  assignees_from_approvers: z.boolean().default(false),
  /**
   * Where the experiment post goes when the experiment completes: `comment` (the report is the issue's
   * closing comment) or `file` (the report is committed to `posts_branch` and the closing comment links it).
   * Charts go to `posts_branch` either way, since GitHub does not show SVG attachments. Default `comment`.
   */
  post: z.enum(['comment', 'file']).default('comment'),
  /** Branch the posts and their charts are committed to; created from the default branch. Default `labline/posts`. */
  posts_branch: z.string().trim().min(1).default('labline/posts'),
  /**
   * The git remote a search campaign's final branch is pushed to before its draft pull request is opened; it
   * must point at `repo`, and git must push there without a prompt. Default `origin`.
   */
  push_remote: z.string().trim().min(1).default('origin'),
  /**
   * Milliseconds between two writes (GitHub asks integrations to wait a second between POST, PATCH and PUT
   * requests to avoid secondary rate limits). Default 1000; tests set 0.
   */
  write_interval_ms: z.number().int().nonnegative().default(1000),
  /**
   * A rate limit whose Retry-After is at most this many seconds is waited out inside the call; a longer one
   * fails the activity attempt, which Temporal retries after the Retry-After. Default 10.
   */
  rate_limit_wait_seconds: z.number().nonnegative().default(10),
  /** Port of the `labline github` webhook endpoint. Default `3001`. */
  port: z.number().int().min(0).max(65_535).default(3001),
  /** Interface the endpoint listens on. Default `127.0.0.1`: put a TLS proxy or tunnel in front. */
  host: z.string().trim().min(1).default('127.0.0.1'),
  /** Path of the webhook URL. Default `/github/webhook`. */
  path: z.string().startsWith('/').default('/github/webhook'),
  /** `labline github --poll`: seconds between two reads of new issue comments. Default 30. */
  poll_interval_seconds: z.number().positive().default(30),
});
/** The `github` section of the Labline settings. */
export type GithubSettings = z.infer<typeof GithubSettings>;

/** The environment variables that hold GitHub's secrets. */
export const GITHUB_ENV = { token: 'GITHUB_TOKEN', webhookSecret: 'GITHUB_WEBHOOK_SECRET' } as const;

/** A GitHub secret is missing from the environment; the message names the variable and the fix. */
export class GithubSecretMissingError extends Error {
  override readonly name = 'GithubSecretMissingError';
}

/**
 * The token (env GITHUB_TOKEN): a fine-grained or classic personal access token, or a GitHub App
 * installation token, allowed to write issues (and contents and pull requests for posts and searches).
 *
 * @throws GithubSecretMissingError when it is not set
 */
export function githubTokenFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const token = env[GITHUB_ENV.token]?.trim();
  if (!token)
    throw new GithubSecretMissingError(
      `${GITHUB_ENV.token} is not set, but the Labline settings have a \`github\` section: export a token ` +
        'with Issues, Contents and Pull requests write access to the repository, or remove the `github` section.',
    );
  return token;
}

/**
 * The webhook secret (env GITHUB_WEBHOOK_SECRET), which proves that a delivery comes from GitHub.
 *
 * @throws GithubSecretMissingError when it is not set
 */
export function githubWebhookSecretFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const secret = env[GITHUB_ENV.webhookSecret]?.trim();
  if (!secret)
    throw new GithubSecretMissingError(
      `${GITHUB_ENV.webhookSecret} is not set: \`labline github\` does not listen for webhooks without it, since ` +
        "it could not tell GitHub's deliveries from anyone else's. Set the same secret on the repository's " +
        'webhook, or run `labline github --poll`, which needs no public URL and no secret.',
    );
  return secret;
}
