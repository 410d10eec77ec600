/**
 * The GitHub REST client: `@octokit/rest` with the throttling plugin (writes spaced as GitHub asks, short
 * Retry-After waits taken inside the call) and, outside activities, the retry plugin.
 *
 * Retries belong to Temporal inside activities (STYLE 3): there the retry plugin is off, and a rate limit
 * longer than `rate_limit_wait_seconds` becomes a retryable failure whose `nextRetryDelay` is GitHub's
 * Retry-After (or the primary limit's reset). Refusals (a bad token, a missing permission, an unknown
 * repository, a validation error) are not retried, and say how to fix them.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { Octokit } from '@octokit/rest';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import Bottleneck from 'bottleneck';
import { FailureType } from '../../experiment';
import type { GithubSettings } from './github-settings';

const LablineOctokit = Octokit.plugin(throttling, retry);
/** The Octokit Labline uses: REST endpoints, throttling, retries. */
export type GithubClient = InstanceType<typeof LablineOctokit>;

/** Options of {@link createGithubClient}. */
export interface GithubClientOptions {
  token: string;
  settings: Pick<GithubSettings, 'api_url' | 'write_interval_ms' | 'rate_limit_wait_seconds'>;
  /** Whether the client retries 5xx answers by itself. Default `false`: inside activities Temporal retries. */
  retries?: boolean;
  /** Milliseconds before one call is abandoned. Default 15 000. */
  timeoutMs?: number;
}

/** Builds a client; every client gets its own write queue, so tests and workers do not share limits. */
export function createGithubClient(options: GithubClientOptions): GithubClient {
  const waitUpTo = options.settings.rate_limit_wait_seconds;
  const spacing = { maxConcurrent: 1, minTime: options.settings.write_interval_ms };
  // A limit is waited out inside the call once, when it is short; otherwise the error reaches the caller.
  const waitIfShort = (retryAfter: number, _options: unknown, _octokit: unknown, retryCount: number) =>
    retryAfter <= waitUpTo && retryCount < 1;
  return new LablineOctokit({
    auth: options.token,
    baseUrl: options.settings.api_url.replace(/\/+$/, ''),
    userAgent: 'labline',
    request: { timeout: options.timeoutMs ?? 15_000 },
    log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
    throttle: {
      onRateLimit: waitIfShort,
      onSecondaryRateLimit: waitIfShort,
      write: new Bottleneck.Group(spacing),
      notifications: new Bottleneck.Group(spacing),
    },
    retry: options.retries ? { retries: 2 } : { enabled: false },
  });
}

/** An HTTP error from Octokit (`RequestError`): its status and the response's headers and message. */
interface GithubRequestError {
  status: number;
  message: string;
  response?: { headers?: Record<string, string | number | undefined>; data?: unknown };
}

function isRequestError(error: unknown): error is GithubRequestError {
  return (
    typeof (error as { status?: unknown } | null)?.status === 'number' &&
    (error as { name?: unknown }).name === 'HttpError'
  );
}

/** Seconds GitHub asks to wait: Retry-After, else the primary limit's reset; `undefined` when neither. */
export function githubRetryAfterSeconds(error: unknown, nowMs = Date.now()): number | undefined {
  if (!isRequestError(error)) return undefined;
  const headers = error.response?.headers ?? {};
  const retryAfter = Number(headers['retry-after']);
  if (Number.isFinite(retryAfter) && retryAfter >= 0) return retryAfter;
  if (String(headers['x-ratelimit-remaining']) === '0') {
    const reset = Number(headers['x-ratelimit-reset']);
    if (Number.isFinite(reset)) return Math.max(1, Math.ceil(reset - nowMs / 1000) + 1);
  }
  if (/secondary rate/i.test(error.message)) return 60;
  return undefined;
}

/** What to do about a refusal, by HTTP status. */
const FIXES: Record<number, string> = {
  401: 'GITHUB_TOKEN was refused: check that it is current (not expired or revoked)',
  403: 'the token may not do this: give it Issues, Contents and Pull requests write access to the repository',
  404: 'the repository (settings github.repo) or the issue does not exist, or the token cannot see it',
  410: 'issues are disabled on the repository; enable them or choose another github.repo',
  422: 'GitHub rejected the request as invalid; report this as a Labline bug',
};

/**
 * Sorts an Octokit error into a retryable or non-retryable activity failure: rate limits → retry after
 * GitHub's wait; network errors and 5xx → retry with Temporal's backoff; refusals → not retried, with the fix.
 */
export function githubFailure(error: unknown, call: string): unknown {
  if (!isRequestError(error)) {
    const message = error instanceof Error ? error.message : String(error);
    return ApplicationFailure.retryable(
      `GitHub did not answer ${call}: ${message}; retrying`,
      FailureType.NotifierUnavailable,
    );
  }
  const wait = githubRetryAfterSeconds(error);
  if ((error.status === 403 || error.status === 429) && wait !== undefined) {
    return ApplicationFailure.create({
      type: FailureType.NotifierUnavailable,
      message: `GitHub rate limited ${call}; retrying after ${wait}s as it asks`,
      nextRetryDelay: `${Math.max(1, wait)}s`,
    });
  }
  if (error.status >= 500 || error.status === 408 || error.status === 0) {
    return ApplicationFailure.retryable(
      `GitHub answered ${call} with HTTP ${error.status}; retrying`,
      FailureType.NotifierUnavailable,
    );
  }
  return ApplicationFailure.nonRetryable(
    `GitHub refused ${call} (HTTP ${error.status}: ${error.message}): ${FIXES[error.status] ?? 'see the message'}.`,
    FailureType.NotifierRejected,
  );
}

/**
 * Checks the token and the repository when a worker or the endpoint starts, so a refused token or a missing
 * permission is found before the first experiment needs it.
 *
 * @throws Error whose message says what to fix
 */
export async function checkGithubAccess(client: GithubClient, repo: string): Promise<{ login: string }> {
  const [owner, name] = splitRepo(repo);
  let login: string;
  try {
    login = (await client.rest.users.getAuthenticated()).data.login;
  } catch (error) {
    if (isRequestError(error) && error.status === 403) {
      // A GitHub App installation token cannot read /user; the repository check below is what matters.
      login = 'github-app';
    } else
      throw new Error(
        isRequestError(error) && error.status === 401
          ? 'GitHub refused GITHUB_TOKEN (401): it is wrong, expired or revoked. Create a new token and export it.'
          : `Could not reach GitHub at the configured api_url: ${(error as Error).message}`,
        { cause: error },
      );
  }
  try {
    const { data } = await client.rest.repos.get({ owner, repo: name });
    if (data.has_issues === false)
      throw new Error(`Issues are disabled on ${repo}; enable them in the repository's settings.`);
    if (data.permissions && !data.permissions.push && !data.permissions.triage)
      throw new Error(
        `${login} may read ${repo} but not write its issues: give the token Issues write access (or triage).`,
      );
  } catch (error) {
    if (isRequestError(error) && error.status === 404)
      throw new Error(
        `GitHub has no repository ${repo} that the token can see: check github.repo in the Labline settings ` +
          'and that the token is allowed on it.',
        { cause: error },
      );
    throw error;
  }
  return { login };
}

/** `owner/name` → `[owner, name]`. */
export function splitRepo(repo: string): [string, string] {
  const [owner = '', name = ''] = repo.split('/');
  return [owner, name];
}
