/**
 * The CLI of search campaigns against a running search: `labline search status` (and `--json`), pause, resume,
 * stop and budget, and `labline review <campaign> trial-<n>` edit, approve and drop, with their refusals.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { readCampaignFile } from '../../src/client/campaigns';
import { searchCampaignFrom, submitSearch } from '../../src/client/search';
import type { SearchStatus } from '../../src/experiment';
import { labline } from '../support/cli';
import { experimentRig } from '../support/experiments';
import { HYPERPARAMETERS, makeSearchRepo, removeSearchRepos, waitForSearch } from '../support/search';
import { startTestTemporal, withWorker, type TestTemporal } from '../support/temporal';

let env: TestTemporal;
beforeAll(async () => {
  env = await startTestTemporal();
});
afterAll(async () => {
  removeSearchRepos();
  await env?.stop();
});

test('search status, pause, resume, budget and stop, and the review of a trial, from the command line', async () => {
  const rig = experimentRig();
  const repo = makeSearchRepo();
  const id = `camp-cli-search-${process.pid}`;
  writeFileSync(
    path.join(repo.folder, 'proposals.yaml'),
    toYaml({
      proposals: [
        { hypothesis: 'a tiny learning rate', diff: repo.edit(repo.content('0.05'), repo.content('0.001')) },
      ],
    }),
  );
  const file = path.join(repo.folder, `${id}.yaml`);
  writeFileSync(
    file,
    toYaml({
      campaign_id: id,
      name: 'search from the CLI',
      base: path.join(repo.dir, 'experiment.yaml'),
      search: {
        editable: [HYPERPARAMETERS],
        objective: { metric: 'eval/accuracy', goal: 'max', seeds: 1 },
        trial: { time_limit: '2m' },
        proposer: { kind: 'scripted', file: 'proposals.yaml' },
        autonomy: 'assisted',
      },
      approvals: { launch: { enabled: false } },
    }),
  );
  const campaign = searchCampaignFrom(readCampaignFile(file), file);
  const cli = (...args: string[]) =>
    labline(args, { env: { TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: env.namespace } });

  await withWorker(env, { taskQueue: rig.taskQueue, activities: rig.activities }, async () => {
    const { handle } = await submitSearch({ client: env.client, campaign, settings: rig.settings });
    await waitForSearch(env.client, id, (s) => s.waiting?.gate === 'launch');

    const shown = await cli('search', 'status', id);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^ {2}stage {6}searching$/m);
    expect(shown.stdout).toMatch(/^ {2}trial 1 {4}proposed: a tiny learning rate$/m);
    expect(shown.stdout).toMatch(/^ {2}waiting {4}launch decision/m);
    // The question's first lines: what to run, and the files it changes (the diff follows in the status).
    expect(shown.stdout).toMatch(/^ {13}Files: trainer\/hyperparameters\.js\n {13}--- a\/trainer/m);
    const json = JSON.parse((await cli('search', 'status', id, '--json')).stdout) as SearchStatus & {
      version: number;
    };
    expect(json).toMatchObject({ version: 1, kind: 'search', campaign_id: id, autonomy: 'assisted' });
    expect(json.trials.map((t) => t.state)).toEqual(['promoted', 'proposed']);

    // An edited diff that does not apply is refused, saying why; the proposal stays as it was.
    const stale = path.join(repo.folder, 'stale.diff');
    writeFileSync(stale, repo.edit(repo.content('0.3'), repo.content('0.4')));
    const edited = await cli('review', id, 'trial-1', 'edit', '--diff', stale, '--as', 'alice');
    expect(edited.code).not.toBe(0);
    expect(edited.stderr).toMatch(/edited diff is refused: the diff does not apply/);
    const other = await cli('review', id, 'trial-2', 'approve', '--as', 'alice');
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/trial 2 of .* does not wait for review/);

    // A budget that allows nothing is refused; a pause holds the search after the review.
    const zero = await cli('search', 'budget', id, '--max-trials', '0', '--as', 'alice');
    expect(zero.code).not.toBe(0);
    expect(zero.stderr).toMatch(/not a valid budget: budget\.max_trials/);
    expect(await cli('search', 'pause', id, '--as', 'alice')).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(new RegExp(`^pause recorded for ${id}`)),
    });
    expect((await cli('review', id, 'trial-1', 'drop', '--as', 'alice')).code).toBe(0);
    const paused = await waitForSearch(env.client, id, (s) => s.trials[1]?.state === 'dropped');
    expect(paused).toMatchObject({ paused: true, stage: 'searching' });

    expect((await cli('search', 'resume', id, '--as', 'alice')).code).toBe(0);
    const result = await handle.result();
    expect(result.end_reason).toMatch(/scripted proposals ran out after 1/);
    const late = await cli('search', 'stop', id, '--as', 'alice');
    expect(late.code).not.toBe(0);
    expect(late.stderr).toMatch(
      /refused the stop: the search has ended \(completed\); there is nothing to change/,
    );
  });
}, 120_000);
