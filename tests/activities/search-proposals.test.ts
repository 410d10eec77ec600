import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createTwoFilesPatch } from 'diff';
import {
  checkProposal,
  commitTrial,
  editableContext,
  type CheckProposalInput,
} from '../../src/activities/search/proposal-checks';
import { makeRepo, type TestRepo } from '../support/git-repo';

const MODEL = Array.from({ length: 30 }, (_v, i) => `layer_${i} = ${i}`).join('\n') + '\n';
const TRAIN = 'import model\nLEARNING_RATE = 0.01\nEPOCHS = 10\n';
const EDITABLE = ['src/**/*.py'];
const LIMITS = { max_files: 3, max_changed_lines: 80, max_diff_bytes: 32_768 };

let repo: TestRepo;
let base: string;
beforeEach(() => {
  repo = makeRepo({
    'src/model.py': MODEL,
    'src/train.py': TRAIN,
    'src/.config.py': 'DEBUG = False\n',
    'data/prepare.py': 'SPLIT = 0.9\n',
    'README.md': '# trainer\n',
  });
  base = repo.git('rev-parse', 'HEAD');
});
afterEach(() => repo.remove());

/** The diff of writing `files` (and running `prepare`) in the test repository, which is then reset. */
function diffOf(files: Record<string, string>, options: { args?: string[]; prepare?: () => void } = {}) {
  repo.write(files);
  options.prepare?.();
  repo.git('add', '--all');
  // Not `repo.git`, which trims: a binary patch ends in a blank line it cannot lose.
  const diff = execFileSync('git', ['diff', '--cached', ...(options.args ?? [])], {
    cwd: repo.dir,
    encoding: 'utf8',
  });
  repo.git('reset', '--quiet', '--hard', 'HEAD');
  return diff;
}

const modelWith = (line: number, text: string) =>
  MODEL.replace(new RegExp(`^layer_${line} = ${line}$`, 'm'), text);

const check = (diff: string, extra: Partial<CheckProposalInput> = {}) =>
  checkProposal({
    repo: repo.dir,
    commit: base,
    diff,
    editable: EDITABLE,
    limits: LIMITS,
    knownHashes: [],
    ...extra,
  });

async function refusal(diff: string, extra: Partial<CheckProposalInput> = {}): Promise<string> {
  const verdict = await check(diff, extra);
  if (verdict.ok) throw new Error(`expected a refusal, got ${JSON.stringify(verdict.check)}`);
  return verdict.reason;
}

async function accepted(diff: string, extra: Partial<CheckProposalInput> = {}) {
  const verdict = await check(diff, extra);
  if (!verdict.ok) throw new Error(`expected the diff to pass, got: ${verdict.reason}`);
  return verdict.check;
}

describe('checkProposal', () => {
  it('passes a valid diff with its files, line counts, bytes and a hash, leaving the checkout alone', async () => {
    const diff = diffOf({
      'src/model.py': modelWith(10, 'layer_10 = 20'),
      'src/train.py': TRAIN + 'WARMUP = 5\n',
    });
    const result = await accepted(diff);
    expect(result).toEqual({
      files: ['src/model.py', 'src/train.py'],
      added: 2,
      removed: 1,
      bytes: Buffer.byteLength(diff),
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(repo.git('status', '--porcelain')).toBe('');
    expect(repo.git('rev-parse', 'HEAD')).toBe(base);
  });

  it('takes a diff whose final newline was lost (git alone calls it corrupt)', async () => {
    const diff = diffOf({ 'src/train.py': TRAIN + 'WARMUP = 5\n' });
    expect((await accepted(diff.trimEnd())).hash).toBe((await accepted(diff)).hash);
  });

  it('hashes the same change equally whatever its context, hunk positions or headers, and refuses it again', async () => {
    const edited = modelWith(10, 'layer_10 = 20');
    const plain = diffOf({ 'src/model.py': edited });
    // One line of context, and hunk headers five lines off: git finds the hunk all the same.
    const shifted = diffOf({ 'src/model.py': edited }, { args: ['-U1'] }).replace(
      /^@@ -(\d+),(\d+) \+(\d+),(\d+) @@/m,
      (_all, a: string, b: string, c: string, d: string) => `@@ -${+a + 5},${b} +${+c + 5},${d} @@`,
    );
    expect(shifted).not.toContain('layer_7 = 7');
    // Headers without a/ and b/, as jsdiff writes them by default: read with -p0.
    const bare = createTwoFilesPatch('src/model.py', 'src/model.py', MODEL, edited);
    const first = await accepted(plain);
    expect((await accepted(shifted)).hash).toBe(first.hash);
    expect(await accepted(bare)).toEqual({ ...first, bytes: Buffer.byteLength(bare) });

    // The same edit against a later incumbent whose file has moved the line down.
    const later = repo.commit('header', { 'src/model.py': `# header\n# more\n${MODEL}` });
    const moved = diffOf({ 'src/model.py': `# header\n# more\n${edited}` });
    expect((await accepted(moved, { commit: later })).hash).toBe(first.hash);

    expect(await refusal(shifted, { knownHashes: ['0'.repeat(64), first.hash] })).toMatch(
      /same change was proposed before .*propose a different edit/,
    );
    const other = await accepted(diffOf({ 'src/model.py': modelWith(10, 'layer_10 = 30') }), {
      commit: later,
    });
    expect(other.hash).not.toBe(first.hash);
  });

  it('refuses a diff touching a file outside the editable globs, naming that file', async () => {
    const diff = diffOf({ 'src/model.py': modelWith(3, 'layer_3 = 4'), 'data/prepare.py': 'SPLIT = 0.8\n' });
    const reason = await refusal(diff);
    expect(reason).toMatch(
      /changes data\/prepare\.py, which is not editable; change only files matching src\/\*\*\/\*\.py/,
    );
    expect(reason).not.toContain('src/model.py');
  });

  it('refuses a rename whose old name is not editable, though the new one is', async () => {
    const diff = diffOf({}, { prepare: () => repo.git('mv', 'data/prepare.py', 'src/prepare.py') });
    expect(diff).toContain('rename from data/prepare.py');
    expect(await refusal(diff)).toMatch(/changes data\/prepare\.py, which is not editable/);
  });

  it('accepts a new file inside the editable globs and refuses one outside', async () => {
    const inside = await accepted(diffOf({ 'src/extra/warmup.py': 'STEPS = 100\n' }));
    expect(inside).toMatchObject({ files: ['src/extra/warmup.py'], added: 1, removed: 0 });
    expect(await refusal(diffOf({ 'notes/warmup.py': 'STEPS = 100\n' }))).toMatch(
      /changes notes\/warmup\.py, which is not editable/,
    );
  });

  it('refuses binary changes and mode changes', async () => {
    const binary = diffOf({ 'src/weights.py': 'a\0b' }, { args: ['--binary'] });
    expect(await refusal(binary)).toMatch(/changes src\/weights\.py as binary/);
    const mode = diffOf({}, { prepare: () => chmodSync(path.join(repo.dir, 'src/train.py'), 0o755) });
    expect(await refusal(mode)).toMatch(/changes the mode of src\/train\.py \(100644 to 100755\)/);
    const link = diffOf({}, { prepare: () => symlinkSync('train.py', path.join(repo.dir, 'src/link.py')) });
    expect(await refusal(link)).toMatch(/creates src\/link\.py with mode 120000; create plain files only/);
  });

  it('refuses a diff whose context does not match the commit, with what git said', async () => {
    const diff = diffOf({ 'src/model.py': modelWith(10, 'layer_10 = 20') }).replace(
      '\n layer_9 = 9',
      '\n layer_9 = 99',
    );
    expect(await refusal(diff)).toMatch(
      new RegExp(
        `does not apply to commit ${base.slice(0, 12)} \\(git: .*src/model\\.py.*\\); write it against`,
      ),
    );
  });

  it('refuses text that is not a diff, with what git said', async () => {
    expect(await refusal('Make the learning rate bigger, it will help.')).toMatch(
      /does not parse as a unified diff \(git: .*No valid patches in input.*\); answer with a unified diff/,
    );
  });

  it('reads bare paths with -p0 when -p1 cannot even parse them', async () => {
    const bare = createTwoFilesPatch('README.md', 'README.md', '# trainer\n', '# trainer!\n');
    expect(await refusal(bare)).toMatch(/^the diff changes README\.md, which is not editable/);
  });

  it('refuses a diff over each limit, with the numbers', async () => {
    const two = diffOf({
      'src/model.py': modelWith(10, 'layer_10 = 20'),
      'src/train.py': TRAIN + 'WARMUP = 5\n',
    });
    expect(await refusal(two, { limits: { ...LIMITS, max_files: 1 } })).toMatch(
      /changes 2 files, more than max_files 1; change at most 1 \(it changes src\/model\.py, src\/train\.py\)/,
    );
    expect(await refusal(two, { limits: { ...LIMITS, max_changed_lines: 2 } })).toMatch(
      /changes 3 lines \(2 added, 1 removed\), more than max_changed_lines 2/,
    );
    expect(await refusal(two, { limits: { ...LIMITS, max_diff_bytes: 100 } })).toBe(
      `the diff is ${Buffer.byteLength(two)} bytes, more than max_diff_bytes 100; propose a smaller edit`,
    );
    await expect(
      check(two, { limits: { max_files: 2, max_changed_lines: 3, max_diff_bytes: two.length } }),
    ).resolves.toMatchObject({
      ok: true,
    });
  });

  it('refuses a diff that leaves every file as it was', async () => {
    const noop = [
      '--- a/src/train.py',
      '+++ b/src/train.py',
      '@@ -1,3 +1,3 @@',
      ' import model',
      '-LEARNING_RATE = 0.01',
      '+LEARNING_RATE = 0.01',
      ' EPOCHS = 10',
      '',
    ].join('\n');
    expect(await refusal(noop)).toMatch(/changes nothing/);
  });

  it('throws, rather than refusing the proposal, when the commit or the repository is missing', async () => {
    const diff = diffOf({ 'src/model.py': modelWith(10, 'layer_10 = 20') });
    await expect(check(diff, { commit: 'f'.repeat(40) })).rejects.toThrow(
      /commit f{40} is not in the repository/,
    );
    const missing = path.join(os.tmpdir(), 'labline-no-such-repository');
    await expect(check(diff, { repo: missing })).rejects.toThrow();
  });
});

describe('commitTrial', () => {
  const trial = (extra: Partial<Parameters<typeof commitTrial>[0]> = {}) =>
    commitTrial({
      repo: repo.dir,
      parentCommit: base,
      diff: diffOf({ 'src/model.py': modelWith(10, 'layer_10 = 20') }),
      branch: 'labline/camp-test/trial-1',
      message: 'trial 1: a wider layer 10',
      date: '2024-05-01T10:00:00.000Z',
      ...extra,
    });

  it('commits the change on a new branch without touching the working tree, index or HEAD', async () => {
    const { commit } = await trial();
    expect(repo.git('show', `${commit}:src/model.py`)).toContain('layer_10 = 20');
    expect(repo.git('rev-parse', `${commit}^`)).toBe(base);
    expect(repo.git('log', '-1', '--format=%an <%ae> %aI %cn %cI %s', commit)).toBe(
      'Labline search <search@labline.invalid> 2024-05-01T10:00:00+00:00 Labline search 2024-05-01T10:00:00+00:00 trial 1: a wider layer 10',
    );
    expect(repo.git('rev-parse', 'refs/heads/labline/camp-test/trial-1')).toBe(commit);
    expect(repo.git('status', '--porcelain')).toBe('');
    expect(repo.git('rev-parse', 'HEAD')).toBe(base);
    expect(repo.git('symbolic-ref', 'HEAD')).toBe('refs/heads/main');
  });

  it('makes the very same commit when retried, and keeps the branch', async () => {
    const first = await trial();
    expect(await trial()).toEqual(first);
  });

  it('refuses when the branch exists at another commit, saying how to fix it', async () => {
    repo.git('branch', 'labline/camp-test/trial-1', base);
    await expect(trial()).rejects.toThrow(
      /branch labline\/camp-test\/trial-1 already exists .* at [0-9a-f]{40}, not at the trial's commit .*delete it .*new campaign id/,
    );
    expect(repo.git('rev-parse', 'labline/camp-test/trial-1')).toBe(base);
  });

  it('refuses branch names git would not take as they are', async () => {
    await expect(trial({ branch: 'bad..name' })).rejects.toThrow(/"bad\.\.name" is not a valid branch name/);
    // check-ref-format --branch expands @{-1} to the previous branch: not a name of its own.
    repo.git('checkout', '--quiet', '-b', 'side');
    repo.git('checkout', '--quiet', 'main');
    await expect(trial({ branch: '@{-1}' })).rejects.toThrow(/is not a valid branch name/);
  });
});

describe('editableContext', () => {
  it('returns the editable text files, dot files included, and lists every tracked path', async () => {
    repo.commit('weights', { 'src/weights.py': 'a\0b' });
    const context = await editableContext({ repo: repo.dir, commit: 'HEAD', editable: EDITABLE });
    expect(context.files).toEqual([
      { path: 'src/.config.py', content: 'DEBUG = False\n' },
      { path: 'src/model.py', content: MODEL },
      { path: 'src/train.py', content: TRAIN },
    ]);
    expect(context.paths).toEqual([
      'README.md',
      'data/prepare.py',
      'src/.config.py',
      'src/model.py',
      'src/train.py',
      'src/weights.py',
    ]);
    expect(context.truncated).toBe(false);
  });

  it('leaves out files over maxBytes and says so', async () => {
    const maxBytes = 'DEBUG = False\n'.length + TRAIN.length;
    const context = await editableContext({ repo: repo.dir, commit: base, editable: EDITABLE, maxBytes });
    expect(context.files.map((file) => file.path)).toEqual(['src/.config.py', 'src/train.py']);
    expect(context.truncated).toBe(true);
  });

  it('lists at most 500 paths and says so', async () => {
    const many = Object.fromEntries(Array.from({ length: 500 }, (_v, i) => [`logs/${i}.txt`, `${i}\n`]));
    repo.commit('many', many);
    const context = await editableContext({ repo: repo.dir, commit: 'HEAD', editable: EDITABLE });
    expect(context.paths).toHaveLength(500);
    expect(context.files).toHaveLength(3);
    expect(context.truncated).toBe(true);
  });

  it('reads the commit, not the working tree', async () => {
    repo.write({ 'src/model.py': 'edited in the checkout\n' });
    const context = await editableContext({ repo: repo.dir, commit: base, editable: EDITABLE });
    expect(context.files.find((file) => file.path === 'src/model.py')?.content).toBe(MODEL);
  });

  it('throws when the folder is no repository with that commit', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'labline-empty-'));
    try {
      await expect(editableContext({ repo: dir, commit: 'HEAD', editable: EDITABLE })).rejects.toThrow(
        /commit HEAD is not in the repository .*no git repository/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
