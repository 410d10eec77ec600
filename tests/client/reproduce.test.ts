/**
 * Code variants, `labline diff` and `labline reproduce`, as a user runs them: the example repository with three
 * branches (examples/branches/make-repo.js) run as one campaign, two of its runs compared, one reproduced; and
 * a reproduction refused because its data changed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { reproductionSpec } from '../../src/client/reproduction';
import { ExperimentSpec, ResultsPayload } from '../../src/experiment';
import { labline, LOCAL_ENV } from '../support/cli';
import { makeRepo, trainerSource } from '../support/git-repo';
import { testServerKind } from '../support/temporal-cli';

const repoRoot = path.resolve(__dirname, '../..');
const server = testServerKind();

const results = (dir: string, id: string) =>
  ResultsPayload.parse(JSON.parse(readFileSync(path.join(dir, 'runs', id, 'results.json'), 'utf8')));

test(`three branches run as one campaign, side by side; diff names what differs; reproduce --compare matches (${server})`, async () => {
  const dir = path.join(mkdtempSync(path.join(tmpdir(), 'labline-branches-')), 'moons');
  execFileSync(process.execPath, [path.join(repoRoot, 'examples/branches/make-repo.js'), dir]);

  const campaign = await labline(['campaign', 'campaign.yaml', '--yes', '--server', server], {
    cwd: dir,
    env: LOCAL_ENV,
    timeoutMs: 240_000,
  });
  expect({ code: campaign.code, stderr: campaign.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
  expect(campaign.stdout).toMatch(/stage {6}completed; children 6 done/);
  // Each branch trained its own code: the hidden layer its trainer defines.
  const hidden = (id: string) =>
    (JSON.parse(readFileSync(path.join(dir, 'runs', id, 'config.json'), 'utf8')) as { hidden_units: number })
      .hidden_units;
  expect(['main', 'wide', 'narrow'].map((v) => hidden(`exp-moons-branches-${v}-s0`))).toEqual([16, 64, 4]);
  const report = readFileSync(path.join(dir, 'runs/camp-moons-branches/campaign-report.md'), 'utf8');
  expect(report).toMatch(
    /\| `wide` \| feature\/wide \| `[0-9a-f]{12}` \| \[1 file changed.*\]\(diffs\/wide\.diff\) \|/,
  );
  expect(readFileSync(path.join(dir, 'runs/camp-moons-branches/diffs/wide.diff'), 'utf8')).toContain(
    "+  hidden: { kind: 'int', default: 64",
  );
  // Every worktree was removed with its experiment; the checkout is as the script left it.
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8' }).trim();
  expect(git('worktree', 'list').split('\n')).toHaveLength(1);
  expect(git('status', '--porcelain')).toBe('');

  const diff = await labline(['diff', 'exp-moons-branches-main-s0', 'exp-moons-branches-wide-s1'], {
    cwd: dir,
    env: LOCAL_ENV,
  });
  expect(diff.code).toBe(0);
  expect(diff.stdout).toMatch(/^code\n {2}diff +1 file changed, 1 insertion\(\+\), 1 deletion\(-\)$/m);
  expect(diff.stdout).toMatch(/^ {2}branch +main {2}→ {2}feature\/wide$/m);
  expect(diff.stdout).toMatch(/^config\n {2}seed +0 {2}→ {2}1$/m);
  expect(diff.stdout).not.toMatch(/^environment$/m); // same machine, same run

  const original = 'exp-moons-branches-wide-s0';
  const reproduce = await labline(
    ['reproduce', original, '--compare', '--yes', '--quiet', '--server', server],
    {
      cwd: dir,
      env: LOCAL_ENV,
      timeoutMs: 120_000,
    },
  );
  expect({ code: reproduce.code, stderr: reproduce.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
  expect(reproduce.stdout).toMatch(
    /Reproducing exp-moons-branches-wide-s0 as exp-moons-branches-wide-s0-repro-1/,
  );
  expect(reproduce.stdout).toMatch(/Reproduced: every compared metric is within its tolerance/);
  const copy = results(dir, `${original}-repro-1`);
  expect(copy.reproducibility?.code.commit).toBe(results(dir, original).reproducibility?.code.commit);
  expect(copy.reproduction).toEqual([expect.objectContaining({ metric: 'eval/accuracy', within: true })]);
  expect(hidden(`${original}-repro-1`)).toBe(64);
  expect(readFileSync(path.join(dir, 'runs', `${original}-repro-1`, 'report.md'), 'utf8')).toMatch(
    /### Reproduction\n\nEvery compared metric is within its tolerance of the original\./,
  );

  // On the server that ran them: status --json carries the record, lineage names each run's commit.
  expect(
    await labline(['server', '--detach', '--server', server], { cwd: dir, env: LOCAL_ENV }),
  ).toMatchObject({
    code: 0,
  });
  try {
    const status = await labline(['status', `${original}-repro-1`, '--json'], { cwd: dir, env: LOCAL_ENV });
    expect(JSON.parse(status.stdout)).toMatchObject({
      reproducibility: { code: { commit: copy.reproducibility!.code.commit, branch: 'feature/wide' } },
    });
    const tree = await labline(['lineage', original], { cwd: dir, env: LOCAL_ENV });
    const commit = copy.reproducibility!.code.commit!.slice(0, 12);
    expect(tree.stdout).toMatch(new RegExp(`└─ ${original}-repro-1 {2}completed .* feature/wide@${commit}`));
  } finally {
    await labline(['server', 'stop'], { cwd: dir, env: LOCAL_ENV });
  }
}, 400_000);

test(`reproduce refuses, before starting anything, when a data file changed; --allow-data-change runs it (${server})`, async () => {
  const repo = makeRepo({
    'train.js': trainerSource('data'),
    'experiment.yaml': [
      'experiment_id: exp-data-check',
      'name: data check',
      'hypothesis: the data decides',
      'config: { seed: 1 }',
      'code: {}',
      'data: { table: ../table.csv }',
      `training: { command: ${JSON.stringify(process.execPath)}, args: [train.js, --seed=1] }`,
      'approvals: { launch: { enabled: false }, publish: { enabled: false } }',
    ].join('\n'),
  });
  const table = path.join(path.dirname(repo.dir), 'table.csv');
  writeFileSync(table, 'x\n1\n');
  try {
    const first = await labline(['start', 'experiment.yaml', '--yes', '--quiet', '--server', server], {
      cwd: repo.dir,
      env: LOCAL_ENV,
      timeoutMs: 120_000,
    });
    expect({ code: first.code, stderr: first.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    expect(first.stdout).toMatch(/^Code: commit [0-9a-f]{12} \(main\)$/m);
    const recorded = results(repo.dir, 'exp-data-check').reproducibility!;
    expect(recorded.data).toEqual([expect.objectContaining({ name: 'table', source: table, kind: 'file' })]);

    writeFileSync(table, 'x\n2\n');
    const refused = await labline(['reproduce', 'exp-data-check', '--yes', '--server', server], {
      cwd: repo.dir,
      env: LOCAL_ENV,
    });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/the data of exp-data-check changed since it ran; nothing was started:/);
    expect(refused.stderr).toMatch(/table \(.*table\.csv\): SHA-256 was [0-9a-f]{12}…, is [0-9a-f]{12}…/);
    expect(refused.stderr).toMatch(/--allow-data-change/);
    expect(readdirSync(path.join(repo.dir, 'runs')).filter((name) => name.includes('repro'))).toEqual([]);

    const allowed = await labline(
      ['reproduce', 'exp-data-check', '--allow-data-change', '--yes', '--quiet', '--server', server],
      { cwd: repo.dir, env: LOCAL_ENV, timeoutMs: 120_000 },
    );
    expect({ code: allowed.code, stderr: allowed.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    const again = results(repo.dir, 'exp-data-check-repro-1').reproducibility!;
    expect(again.data[0]!.sha256).not.toBe(recorded.data[0]!.sha256);
    expect(existsSync(path.join(repo.dir, 'runs', 'exp-data-check-repro-1', 'worktree'))).toBe(false);
  } finally {
    repo.remove();
  }
}, 300_000);

test('a reproduction pins a W&B artifact to the version its alias named when the original ran', async () => {
  const runsRoot = mkdtempSync(path.join(tmpdir(), 'labline-repro-wandb-'));
  const original = ExperimentSpec.parse({
    experiment_id: 'exp-wandb-data',
    name: 'w&b data',
    hypothesis: 'the tokenizer is the one it was',
    training: { command: 'python', args: ['train.py'], working_directory: runsRoot },
    data: { tok: 'wandb-artifact:acme/nlp/tokenizer:latest' },
  });
  const spec = await reproductionSpec(
    {
      version: 1,
      experiment_id: original.experiment_id,
      run_name: original.experiment_id,
      code: { pinned: false },
      spec: {
        sha256: '',
        spec: original,
        command: 'python',
        args: [],
        cwd: runsRoot,
        env: {},
        secret_env_names: [],
      },
      environment: {
        os: { platform: 'linux', release: '', arch: 'x64' },
        cpu: { model: '', cores: 1 },
        gpus: [],
        node: '',
        lockfiles: [],
      },
      randomness: { seeds: {}, reported_by_trainer: null },
      data: [
        {
          name: 'tok',
          source: 'wandb-artifact:acme/nlp/tokenizer:latest',
          kind: 'wandb-artifact',
          version: 'v3',
          digest: 'd'.repeat(32),
        },
      ],
      launches: [],
    },
    { runsRoot, allowCodeChange: true },
  );
  expect(spec.data).toEqual({ tok: 'wandb-artifact:acme/nlp/tokenizer:v3' });
  expect(spec.experiment_id).toBe('exp-wandb-data-repro-1');
  expect(spec.parent).toMatchObject({ experiment_id: 'exp-wandb-data' });
});
