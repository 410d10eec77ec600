import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { pinExperimentCode } from '../../src/client/code-pinning';
import {
  preparedWorktree,
  removeWorktree,
  requirePinned,
  worktreeDirOf,
} from '../../src/activities/code/worktree';
import {
  describedLaunch,
  hashedData,
  pinnedCodeRecord,
  worktreeWorkingDirectory,
} from '../../src/activities/reproducibility/launch-capture';
import {
  readReproducibilityRecord,
  recordLaunchEnd,
  writeLaunchRecord,
} from '../../src/activities/reproducibility/record';
import { LaunchRejectedError, type TrainingState } from '../../src/activities/training/launcher';
import { LocalLauncher } from '../../src/activities/training/local';
import { ExperimentSpec, REPRODUCIBILITY_FILE } from '../../src/experiment';
import { makeRepo, trainerSource, type TestRepo } from '../support/git-repo';
import { cleanUp, tempDir, waitFor } from './local-processes';

let repo: TestRepo;
let runsRoot: string;
beforeEach(() => {
  repo = makeRepo({ 'trainer/train.js': trainerSource('main') });
  repo.git('checkout', '--quiet', '-b', 'feature/wide');
  repo.commit('wide', { 'trainer/train.js': trainerSource('wide') });
  repo.git('checkout', '--quiet', 'main');
  runsRoot = tempDir('labline-runs-');
});
afterEach(async () => {
  await cleanUp();
  repo.remove();
});

async function pinned(id: string, ref: string, extra: Record<string, unknown> = {}): Promise<ExperimentSpec> {
  const spec = ExperimentSpec.parse({
    experiment_id: id,
    name: id,
    hypothesis: 'branches differ',
    config: { seed: 3 },
    training: {
      command: process.execPath,
      args: ['train.js', '--seed=3'],
      working_directory: path.join(repo.dir, 'trainer'),
    },
    code: { repo: repo.dir, ref },
    ...extra,
  });
  return pinExperimentCode(spec, runsRoot);
}

const untilExited = (launcher: LocalLauncher, handle: Parameters<LocalLauncher['status']>[0]) =>
  waitFor<TrainingState>(
    async () => {
      const state = await launcher.status(handle);
      return state.phase === 'exited' ? state : undefined;
    },
    `${handle.key} to exit`,
    { timeoutMs: 20_000 },
  );

test('two branches of one repository train at once, each in its own worktree, without touching the checkout', async () => {
  const launcher = new LocalLauncher();
  const specs = [await pinned('exp-main', 'main'), await pinned('exp-wide', 'feature/wide')];
  const launched = await Promise.all(
    specs.map(async (spec) => {
      const runDir = path.join(runsRoot, spec.experiment_id);
      const code = requirePinned(spec.code!);
      const worktree = await preparedWorktree(runDir, code);
      return launcher.launch({
        experimentId: spec.experiment_id,
        attempt: 1,
        key: `${spec.experiment_id}-launch-1`,
        runDir,
        command: spec.training.command,
        args: spec.training.args,
        cwd: worktreeWorkingDirectory(worktree, code, spec.training.working_directory),
      });
    }),
  );
  for (const { handle } of launched)
    expect(await untilExited(launcher, handle)).toMatchObject({ exitCode: 0 });
  const ran = (id: string) => readFileSync(path.join(runsRoot, id, 'variant.txt'), 'utf8');
  expect(ran('exp-main')).toBe(
    `main ${path.join(worktreeDirOf(path.join(runsRoot, 'exp-main')), 'trainer')}`,
  );
  expect(ran('exp-wide')).toBe(
    `wide ${path.join(worktreeDirOf(path.join(runsRoot, 'exp-wide')), 'trainer')}`,
  );
  expect(repo.git('status', '--porcelain')).toBe('');
  expect(repo.git('rev-parse', '--abbrev-ref', 'HEAD')).toBe('main');
  expect(repo.git('worktree', 'list').split('\n')).toHaveLength(3);
});

test('the worktree is reused by later launches, remade when half made, and removed without a trace', async () => {
  const spec = await pinned('exp-reuse', 'main');
  const runDir = path.join(runsRoot, 'exp-reuse');
  const code = requirePinned(spec.code!);
  const first = await preparedWorktree(runDir, code);
  writeFileSync(path.join(first, 'trainer', 'scratch.txt'), 'kept between launches');
  expect(await preparedWorktree(runDir, code)).toBe(first);
  expect(existsSync(path.join(first, 'trainer', 'scratch.txt'))).toBe(true);

  // A launch that died between `git worktree add` and its marker leaves a worktree without one: remade.
  const marker = path.join(runDir, 'worktree.json');
  writeFileSync(marker, '{"half":');
  await preparedWorktree(runDir, code);
  expect(existsSync(path.join(first, 'trainer', 'scratch.txt'))).toBe(false);
  expect(JSON.parse(readFileSync(marker, 'utf8'))).toMatchObject({ commit: code.pinned.commit });

  await removeWorktree(runDir, repo.dir);
  await removeWorktree(runDir, repo.dir); // idempotent
  expect(existsSync(first)).toBe(false);
  expect(repo.git('worktree', 'list').split('\n')).toHaveLength(1);
});

test('the submit-time patch is applied in the worktree; a changed or missing patch refuses the launch', async () => {
  repo.write({ 'trainer/train.js': trainerSource('uncommitted') });
  const spec = await pinned('exp-patch', 'HEAD');
  const code = requirePinned(spec.code!);
  expect(code.pinned.patch?.files).toEqual(['trainer/train.js']);
  const worktree = await preparedWorktree(path.join(runsRoot, 'exp-patch'), code);
  expect(readFileSync(path.join(worktree, 'trainer', 'train.js'), 'utf8')).toContain('"uncommitted"');

  writeFileSync(code.pinned.patch!.path, 'tampered');
  await expect(preparedWorktree(path.join(runsRoot, 'exp-patch-2'), code)).rejects.toThrow(
    /changed since the experiment was submitted/,
  );
  await expect(
    preparedWorktree(path.join(runsRoot, 'exp-patch-3'), {
      ...code,
      pinned: { ...code.pinned, patch: { ...code.pinned.patch!, path: path.join(runsRoot, 'gone.patch') } },
    }),
  ).rejects.toBeInstanceOf(LaunchRejectedError);
});

test('a commit that is no longer in the repository, and an unpinned code section, refuse the launch', async () => {
  const spec = await pinned('exp-gone', 'main');
  const code = requirePinned(spec.code!);
  const missing = { ...code, pinned: { commit: 'f'.repeat(40) } };
  await expect(preparedWorktree(path.join(runsRoot, 'exp-gone'), missing)).rejects.toThrow(
    /commit f{40} is not in the repository/,
  );
  expect(() => requirePinned({ ...code, pinned: undefined })).toThrow(/never pinned to a commit/);
});

test('the record: code, resolved command, seeds, data hashes and secret names only; each launch merged by key', async () => {
  const dataDir = tempDir('labline-data-');
  writeFileSync(path.join(dataDir, 'train.csv'), 'x,y\n1,2\n');
  const spec = await pinned('exp-record', 'main', {
    data: { table: path.join(dataDir, 'train.csv') },
  });
  const runDir = path.join(runsRoot, 'exp-record');
  const code = requirePinned(spec.code!);
  const worktree = await preparedWorktree(runDir, code);
  const cwd = worktreeWorkingDirectory(worktree, code, spec.training.working_directory);
  const described = await describedLaunch({
    spec,
    runName: 'exp-record',
    command: spec.training.command,
    args: spec.training.args,
    cwd,
    env: { LABLINE_RUN_DIR: runDir, OMP_NUM_THREADS: '1' },
    trainerEnv: { PATH: process.env.PATH, HF_TOKEN: 'hf_secret_value_123456', OMP_NUM_THREADS: '1' },
    code: pinnedCodeRecord(code, worktree),
    data: await hashedData(spec.data, runDir),
  });
  const launch = {
    key: 'exp-record-launch-1',
    launch: 1,
    host: 'here',
    launcher: 'local',
    started_at: 'then',
  };
  await writeLaunchRecord(runDir, described, launch);
  await writeLaunchRecord(runDir, described, launch); // a retried launch: still one entry
  mkdirSync(runDir, { recursive: true });
  writeFileSync(path.join(runDir, 'config.json'), JSON.stringify({ seed: 3 }));
  await recordLaunchEnd(runDir, 'exp-record-launch-1', { endedAt: 'later', exitCode: 0 });

  const record = await readReproducibilityRecord(runDir);
  expect(record).toMatchObject({
    code: { pinned: true, commit: repo.git('rev-parse', 'main'), branch: 'main', clean: true, worktree },
    spec: { cwd, secret_env_names: ['HF_TOKEN'] },
    randomness: { seeds: { seed: 3 }, reported_by_trainer: { seed: true } },
    data: [{ name: 'table', kind: 'file', bytes: 8 }],
    launches: [{ key: 'exp-record-launch-1', ended_at: 'later', exit_code: 0 }],
  });
  expect(record!.spec.sha256).toMatch(/^[0-9a-f]{64}$/);
  expect(readFileSync(path.join(runDir, REPRODUCIBILITY_FILE), 'utf8')).not.toContain('hf_secret_value');

  // Data bound to a hash (as `labline reproduce` writes it) refuses other content before anything runs.
  writeFileSync(path.join(dataDir, 'train.csv'), 'x,y\n1,3\n');
  await expect(
    hashedData(
      { table: { source: path.join(dataDir, 'train.csv'), sha256: record!.data[0]!.sha256! } },
      runDir,
    ),
  ).rejects.toBeInstanceOf(LaunchRejectedError);
  await expect(hashedData({ gone: path.join(dataDir, 'nothing.csv') }, runDir)).rejects.toThrow(
    /Data set "gone" is missing/,
  );
});
