/**
 * A search campaign's notebook on GitHub: its tracking issue follows the trials, and its final branch is
 * pushed and proposed as a draft pull request with the chain of promoted changes.
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { GithubNotebook } from '../../src/activities/notebook/github-notebook';
import { submitSearch } from '../../src/client/search';
import { FakeGithub } from '../support/fake-github';
import { githubRig } from '../support/github-rig';
import { recordHistory } from '../support/histories';
import { makeSearchRepo, removeSearchRepos, searchCampaignOf, searchObjective } from '../support/search';
import { startTestTemporal, withWorker, type TestTemporal } from '../support/temporal';

let env: TestTemporal;
beforeAll(async () => {
  env = await startTestTemporal();
});
afterAll(async () => {
  removeSearchRepos();
  await env?.stop();
});

test('a search keeps a tracking issue and opens a draft pull request from its final branch, once', async () => {
  const repo = makeSearchRepo();
  const remote = path.join(repo.folder, 'origin.git');
  execFileSync('git', ['init', '--quiet', '--bare', remote]);
  repo.git('remote', 'add', 'origin', remote);
  const github = await new FakeGithub({ gitDir: remote }).start();
  try {
    const { rig, activities, workflowSettings, settings, client } = githubRig(github);
    const better = repo.content('0.5');
    const campaign = searchCampaignOf(
      repo,
      `camp-github-search-${process.pid}`,
      { objective: searchObjective(3) },
      [
        {
          hypothesis: 'a larger learning rate trains further',
          diff: repo.edit(repo.content('0.05'), better),
        },
        { hypothesis: 'a comment changes nothing', diff: repo.edit(better, `${better}// a comment\n`) },
      ],
    );
    const result = await withWorker(env, { taskQueue: rig.taskQueue, activities }, async () => {
      const { handle } = await submitSearch({ client: env.client, campaign, settings: workflowSettings });
      return handle.result();
    });
    expect(result.incumbent.trial).toBe(1);
    const branch = `labline/${campaign.campaign_id}/trial-1`;

    // The branch reached the remote, and one draft pull request proposes it.
    expect(execFileSync('git', ['-C', remote, 'rev-parse', branch], { encoding: 'utf8' }).trim()).toBe(
      repo.git('rev-parse', branch),
    );
    expect(github.pulls).toHaveLength(1);
    const [pull] = github.pulls;
    expect(pull).toMatchObject({ head: branch, draft: true, title: `Search ${campaign.name}: trial 1` });
    expect(pull!.body).toMatch(
      /\| 1 \| a larger learning rate trains further \| [0-9.]+ \| improves the mean by [^|]+ \| `[0-9a-f]{12}` \|/,
    );
    expect(pull!.body).not.toContain('a comment changes nothing');
    // A retried attempt (the push done, the answer lost) finds the pull request instead of opening another.
    const again = await new GithubNotebook(client, settings).openDraftPullRequest({
      runName: campaign.campaign_id,
      repoDir: repo.dir,
      branch,
      title: 'again',
      body: 'again',
    });
    expect(again.url).toBe(`${github.htmlUrl()}/pull/${pull!.number}`);
    expect(github.pulls).toHaveLength(1);

    const tracking = github.issues.find((issue) => issue.title.startsWith('Campaign:'))!;
    expect(tracking.state).toBe('closed');
    expect(tracking.labels).toContain('completed');
    expect(tracking.body).toMatch(/\*\*Incumbent:\*\* trial 1 on `labline\//);
    expect(tracking.body).toMatch(/\| 2 \| a comment changes nothing \| not_better \|/);
    const titles = tracking.comments.map((c) => /^### (.*)$/m.exec(c.body)?.[1]);
    expect(titles).toEqual(['New incumbent: trial 1', 'Draft pull request opened', 'Completed: completed']);
    expect(tracking.comments[1]!.body).toContain(`${github.htmlUrl()}/pull/`);
    // Every trial's experiments have issues of their own: the base and two trials, three seeds each.
    expect(github.issues.filter((issue) => issue.title.startsWith('Experiment:'))).toHaveLength(9);
    await recordHistory(env.client, campaign.campaign_id, 'search-github-pull-request');
  } finally {
    await github.stop();
  }
}, 240_000);
