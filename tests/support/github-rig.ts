/** An experiment rig whose activities keep the notebook on a fake GitHub, and settings that ask for it. */
import * as path from 'node:path';
import { createGithubClient } from '../../src/activities/notebook/github-client';
import { GithubNotebook } from '../../src/activities/notebook/github-notebook';
import { GithubSettings } from '../../src/activities/notebook/github-settings';
import { createLablineActivities } from '../../src/workers/activities';
import { experimentRig } from './experiments';
import type { FakeGithub } from './fake-github';

/** The `github` settings for `github`: writes not spaced, short rate limits waited out. */
export function fakeGithubSettings(github: FakeGithub, extra: Record<string, unknown> = {}) {
  return {
    repo: github.fullName,
    api_url: github.url,
    write_interval_ms: 0,
    rate_limit_wait_seconds: 3,
    ...extra,
  };
}

export function githubRig(github: FakeGithub, extra: Record<string, unknown> = {}) {
  const rig = experimentRig(3);
  const settings = GithubSettings.parse(fakeGithubSettings(github, extra));
  const client = createGithubClient({ token: github.token, settings });
  const activities = createLablineActivities({
    runsRoot: rig.runsRoot,
    gpuIds: [],
    slotsDir: path.join(rig.runsRoot, '.gpu-slots'),
    killGraceSeconds: 1,
    notifier: rig.notifier,
    githubNotebook: new GithubNotebook(client, settings),
  });
  const workflowSettings = { ...rig.settings, activity_heartbeat_timeout_seconds: 3, github_notebook: true };
  return { rig, activities, workflowSettings, settings, client };
}
