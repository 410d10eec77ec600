/** The worker's GitHub notebook, built from the settings and checked before the worker takes any task. */
import { checkGithubAccess, createGithubClient } from './github-client';
import { GithubNotebook } from './github-notebook';
import { githubTokenFromEnv, type GithubSettings } from './github-settings';

/**
 * The notebook for the settings' `github` section, after checking the token (GITHUB_TOKEN) and the
 * repository.
 *
 * @throws GithubSecretMissingError or Error, whose message says what to fix
 */
export async function githubNotebookOf(
  settings: GithubSettings,
  options: { env?: NodeJS.ProcessEnv; webUi?: { url: string; namespace: string } } = {},
): Promise<GithubNotebook> {
  const client = createGithubClient({ token: githubTokenFromEnv(options.env), settings });
  await checkGithubAccess(client, settings.repo);
  return new GithubNotebook(client, settings, options.webUi);
}
