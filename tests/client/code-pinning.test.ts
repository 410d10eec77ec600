import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MAX_PATCH_BYTES, pinCampaignCode, pinExperimentCode } from '../../src/client/code-pinning';
import { CampaignSpec, ExperimentSpec, type ExperimentSpecInput } from '../../src/experiment';
import { makeRepo, type TestRepo } from '../support/git-repo';

let repo: TestRepo;
let runsRoot: string;
beforeEach(() => {
  repo = makeRepo({ 'train.js': 'console.log("main")\n', 'src/model.js': 'module.exports = 1;\n' });
  runsRoot = path.join(repo.dir, 'runs'); // inside the repository, as the default settings have it
});
afterEach(() => repo.remove());

const spec = (code: ExperimentSpecInput['code'] = {}, workingDirectory = repo.dir): ExperimentSpec =>
  ExperimentSpec.parse({
    experiment_id: 'exp-pin',
    name: 'pin',
    hypothesis: 'it pins',
    training: { command: 'node', args: ['train.js'], working_directory: workingDirectory },
    code: { repo: repo.dir, ...code },
  });

test('a clean checkout pins HEAD to its commit and branch, with no patch', async () => {
  const pinned = await pinExperimentCode(spec(), runsRoot);
  expect(pinned.code?.pinned).toEqual({ commit: repo.git('rev-parse', 'HEAD'), branch: 'main' });
  expect(pinned.code?.repo).toBe(repo.dir);
});

test('a branch name pins to its commit, not to the checked-out one', async () => {
  repo.git('checkout', '--quiet', '-b', 'feature/x');
  const feature = repo.commit('feature', { 'train.js': 'console.log("feature")\n' });
  repo.git('checkout', '--quiet', 'main');
  // Uncommitted changes in the checkout belong to main, not to the branch pinned.
  repo.write({ 'train.js': 'console.log("dirty main")\n' });
  const pinned = await pinExperimentCode(spec({ ref: 'feature/x', dirty: 'refuse' }), runsRoot);
  expect(pinned.code?.pinned).toEqual({ commit: feature, branch: 'feature/x' });
});

test('a spec without a code section, or already pinned, is left as it is', async () => {
  const plain = ExperimentSpec.parse({ ...spec(), code: undefined });
  expect(await pinExperimentCode(plain, runsRoot)).toBe(plain);
  const once = await pinExperimentCode(spec(), runsRoot);
  repo.commit('later', { 'later.txt': 'x' });
  expect((await pinExperimentCode(once, runsRoot)).code?.pinned?.commit).toBe(once.code?.pinned?.commit);
});

test('an unknown ref, a folder outside git and a working directory outside the repository are refused', async () => {
  await expect(pinExperimentCode(spec({ ref: 'no-such-branch' }), runsRoot)).rejects.toThrow(
    /code\.ref: "no-such-branch" names no branch, tag or commit/,
  );
  const outside = mkdtempSync(path.join(os.tmpdir(), 'labline-not-git-'));
  try {
    await expect(pinExperimentCode(spec({ repo: outside }, outside), runsRoot)).rejects.toThrow(
      /code\.repo: .* is not inside a git repository/,
    );
    await expect(pinExperimentCode(spec({}, outside), runsRoot)).rejects.toThrow(
      /training\.working_directory: .* is outside the repository/,
    );
  } finally {
    rmSync(outside, { recursive: true, force: true });
  }
});

test('dirty: refuse names the changed files and writes nothing', async () => {
  repo.write({ 'train.js': 'console.log("changed")\n', 'notes/new.txt': 'untracked' });
  await expect(pinExperimentCode(spec({ dirty: 'refuse' }), runsRoot)).rejects.toThrow(
    /uncommitted changes; nothing was submitted:\n {2}train\.js\n {2}notes\/new\.txt/,
  );
  expect(existsSync(runsRoot)).toBe(false);
});

test('dirty: snapshot records tracked and untracked changes as a patch that applies to the commit', async () => {
  repo.git('add', 'src/model.js'); // something staged, to show the user's index is left alone
  repo.write({ 'train.js': 'console.log("changed")\n', 'extra/new.txt': 'untracked\n' });
  const stagedBefore = repo.git('diff', '--cached', '--name-only');
  const pinned = await pinExperimentCode(spec(), runsRoot);
  const patch = pinned.code!.pinned!.patch!;
  expect(patch.files.sort()).toEqual(['extra/new.txt', 'train.js']);
  const bytes = readFileSync(patch.path);
  expect(createHash('sha256').update(bytes).digest('hex')).toBe(patch.sha256);
  expect(patch.path).toBe(path.join(runsRoot, 'exp-pin', 'code', `${patch.sha256}.patch`));
  expect(repo.git('diff', '--cached', '--name-only')).toBe(stagedBefore);

  // The patch on a clean copy of the commit gives the tree the researcher had.
  const copy = makeRepo({}, 'labline-copy-');
  try {
    copy.git('fetch', '--quiet', repo.dir, 'main');
    copy.git('checkout', '--quiet', pinned.code!.pinned!.commit);
    copy.git('apply', patch.path);
    expect(readFileSync(path.join(copy.dir, 'train.js'), 'utf8')).toBe('console.log("changed")\n');
    expect(readFileSync(path.join(copy.dir, 'extra/new.txt'), 'utf8')).toBe('untracked\n');
  } finally {
    copy.remove();
  }
});

test("the runs folder and Labline's data folder inside the repository are not part of the patch", async () => {
  repo.write({
    'runs/exp-old/metrics.jsonl': '{}\n',
    '.labline/temporal.db': 'database',
    'train.js': 'console.log("changed")\n',
  });
  const pinned = await pinExperimentCode(spec(), runsRoot);
  expect(pinned.code!.pinned!.patch!.files).toEqual(['train.js']);
});

test('dirty: allow trains the commit and records what was left out', async () => {
  repo.write({ 'train.js': 'console.log("changed")\n' });
  const pinned = await pinExperimentCode(spec({ dirty: 'allow' }), runsRoot);
  expect(pinned.code?.pinned).toMatchObject({ left_out: ['train.js'] });
  expect(pinned.code?.pinned?.patch).toBeUndefined();
});

test('uncommitted changes larger than the limit are refused, pointing at data:', async () => {
  writeFileSync(path.join(repo.dir, 'big.bin'), Buffer.alloc(MAX_PATCH_BYTES + 1024, 1));
  await expect(pinExperimentCode(spec(), runsRoot)).rejects.toThrow(
    /more than 16 MiB.*declare them under `data:`/s,
  );
  expect(
    existsSync(path.join(runsRoot, 'exp-pin', 'code')) && readdirSync(path.join(runsRoot, 'exp-pin', 'code')),
  ).toBeFalsy();
});

test('a campaign pins every ref to its commit, and the base', async () => {
  repo.git('branch', 'feature/wide');
  repo.git('checkout', '--quiet', 'feature/wide');
  const wide = repo.commit('wide', { 'train.js': 'console.log("wide")\n' });
  repo.git('checkout', '--quiet', 'main');
  const campaign = CampaignSpec.parse({
    campaign_id: 'camp-pin',
    name: 'pin',
    base: { ...spec(), code: undefined },
    variants: { refs: ['main', 'feature/wide'] },
    primary_metric: { name: 'eval/accuracy', goal: 'max' },
  });
  const pinned = await pinCampaignCode(campaign, runsRoot);
  expect(pinned.variants.refs).toEqual([
    { ref: 'main', pinned: { commit: repo.git('rev-parse', 'main'), branch: 'main' } },
    { ref: 'feature/wide', pinned: { commit: wide, branch: 'feature/wide' } },
  ]);
  expect(ExperimentSpec.parse(pinned.base).code?.repo).toBe(repo.dir);
});
