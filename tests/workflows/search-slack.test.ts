/**
 * An assisted search decided from Slack: each proposal's request shows the diff and is approved or dropped
 * with its buttons, and so is a promotion; the real SlackNotifier posts to a fake Slack and the `labline
 * slack` endpoint receives the signed clicks.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { readCampaignFile } from '../../src/client/campaigns';
import { searchCampaignFrom, searchStatus, submitSearch } from '../../src/client/search';
import { defaultUsers, FakeSlack, type FakeMessage, type FakeSlackUser } from '../support/fake-slack';
import { HYPERPARAMETERS, makeSearchRepo, removeSearchRepos } from '../support/search';
import { startSlackRig, type SlackRig } from '../support/slack-rig';
import { startTestTemporal, withWorker, type TestTemporal } from '../support/temporal';

const [alice] = defaultUsers as [FakeSlackUser];

let env: TestTemporal;
let s: SlackRig;
beforeAll(async () => {
  env = await startTestTemporal();
  s = await startSlackRig(env);
});
afterAll(async () => {
  await s?.stop();
  removeSearchRepos();
  await env?.stop();
});

const blocksText = (m: FakeMessage) => JSON.stringify(m.blocks);

test('an assisted search from Slack: a proposal approved, its promotion rejected, the next proposal dropped', async () => {
  const repo = makeSearchRepo();
  const id = `camp-slack-search-${process.pid}`;
  const wider = repo.content('0.05').replace('hidden: 4,', 'hidden: 8,');
  writeFileSync(
    path.join(repo.folder, 'proposals.yaml'),
    toYaml({
      proposals: [
        { hypothesis: 'a larger learning rate', diff: repo.edit(repo.content('0.05'), repo.content('0.5')) },
        { hypothesis: 'a wider hidden layer', diff: repo.edit(repo.content('0.05'), wider) },
      ],
    }),
  );
  const file = path.join(repo.folder, `${id}.yaml`);
  writeFileSync(
    file,
    toYaml({
      campaign_id: id,
      name: 'search decided in Slack',
      base: path.join(repo.dir, 'experiment.yaml'),
      search: {
        editable: [HYPERPARAMETERS],
        objective: { metric: 'eval/accuracy', goal: 'max', seeds: 3, min_delta: 0.01 },
        trial: { time_limit: '2m' },
        proposer: { kind: 'scripted', file: 'proposals.yaml' },
        autonomy: 'assisted',
      },
      approvals: {
        launch: { enabled: false },
        proposals: { approvers: ['alice'] },
        promotions: { approvers: ['alice'] },
      },
    }),
  );
  const campaign = searchCampaignFrom(readCampaignFile(file), file);
  const launchRequests = () =>
    s.slack.topLevel().filter((m) => {
      const payload = FakeSlack.payload(m);
      return payload.experiment_id === id && payload.gate === 'launch' && payload.kind === 'request';
    });

  await withWorker(env, { taskQueue: s.rig.taskQueue, activities: s.rig.activities }, async () => {
    const { handle } = await submitSearch({ client: env.client, campaign, settings: s.rig.settings });

    const first = await s.slack.until(() => launchRequests()[0], 'the request for trial 1');
    expect(blocksText(first)).toContain('run trial 1? a larger learning rate');
    expect(blocksText(first)).toContain('+  lr: 0.5,');
    expect((await s.click(first, 'labline_approve', alice)).status).toBe(200);

    const promotion = await s.request(id, 'publish');
    expect(blocksText(promotion)).toContain('make trial 1 the incumbent?');
    expect((await s.click(promotion, 'labline_reject', alice)).status).toBe(200);

    const second = await s.slack.until(() => launchRequests()[1], 'the request for trial 2');
    expect(blocksText(second)).toContain('run trial 2? a wider hidden layer');
    expect((await s.click(second, 'labline_reject', alice)).status).toBe(200);

    const result = await handle.result();
    expect(result).toMatchObject({ stage: 'completed', incumbent: { trial: 0 } });
    const status = await searchStatus(env.client, id);
    expect(status.trials.map((trial) => [trial.n, trial.state])).toEqual([
      [0, 'promoted'],
      [1, 'not_better'],
      [2, 'dropped'],
    ]);
    expect(status.trials[1]!.reason).toMatch(/the promotion was rejected/);
    expect(
      status.decisions.filter((d) => d.source === 'slack').map((d) => [d.gate, d.outcome, d.by]),
    ).toEqual([
      ['launch', 'approved', 'alice'],
      ['publish', 'rejected', 'alice'],
      ['launch', 'rejected', 'alice'],
    ]);
  });
}, 180_000);
