import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { loadCampaignFile } from '../../src/client/campaigns';
import { childSpec, variantsOf } from '../../src/experiment';

const example = path.resolve(__dirname, '../../examples/campaign.yaml');

test("a campaign's deliverables replace the base's in every child, with the variant's values expected", () => {
  const campaign = loadCampaignFile(example);
  const [fifty] = variantsOf(campaign);
  const child = childSpec(campaign, fifty!, 2);
  expect(child.deliverables.map((d) => d.name)).toEqual([
    'metrics_logged',
    'final_checkpoint',
    'config_recorded',
    'run_synced',
  ]);
  expect(child.deliverables.find((d) => d.name === 'config_recorded')).toMatchObject({
    expected: { steps: 50, learning_rate: 0.5, seed: 2 },
  });
});

test("without its own deliverables a campaign's children keep the base's", () => {
  const text = readFileSync(example, 'utf8')
    .replace(/^deliverables:\n(?: {2}.*\n)+/m, '')
    .replace('base: quickstart.yaml', `base: ${path.join(path.dirname(example), 'quickstart.yaml')}`);
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'labline-campaign-')), 'campaign.yaml');
  writeFileSync(file, text);
  const campaign = loadCampaignFile(file);
  expect(campaign.deliverables).toBeUndefined();
  const child = childSpec(campaign, variantsOf(campaign)[0]!, 0);
  expect(child.deliverables.map((d) => d.name)).toContain('eval_accuracy');
});
