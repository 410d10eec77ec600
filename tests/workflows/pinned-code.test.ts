/**
 * Experiments with a `code` section, end to end on a real server: they train a worktree of the pinned commit,
 * resume in that same worktree after a preemption or a killed worker, write the reproducibility record, and
 * remove the worktree at the end unless the spec keeps it.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { pinExperimentCode } from '../../src/client/code-pinning';
import { experimentHandle, experimentStatus, submitExperiment } from '../../src/client/experiments';
import { worktreeDirOf } from '../../src/activities/code/worktree';
import { ExperimentSpec, ResultsPayload, type ExperimentSpecInput } from '../../src/experiment';
import { makeRepo, type TestRepo } from '../support/git-repo';
import {
  experimentRig,
  trainerPath,
  trainerSpec,
  waitForStatus,
  startLablineWorkerProcess,
} from '../support/experiments';
import { recordHistory } from '../support/histories';
import type { RunningProcess } from '../support/processes';
import { startTestTemporal, withWorker, type TestTemporal } from '../support/temporal';

let env: TestTemporal;
const processes: RunningProcess[] = [];
let repo: TestRepo;
beforeAll(async () => {
  env = await startTestTemporal();
  repo = makeRepo({ 'trainer/train.js': readFileSync(trainerPath, 'utf8') });
});
afterAll(async () => {
  await Promise.all(processes.map((p) => p.kill()));
  repo?.remove();
  await env?.stop();
});

/** The example trainer, from the test repository, with the code pinned to `main`. */
function pinnedSpec(id: string, args: string[], extra: Partial<ExperimentSpecInput> = {}): ExperimentSpec {
  const base = trainerSpec(id, [], {
    approvals: { launch: { enabled: false }, publish: { enabled: false } },
    code: { repo: repo.dir, ref: 'main' },
    ...extra,
  });
  return ExperimentSpec.parse({
    ...base,
    training: {
      ...base.training,
      args: ['trainer/train.js', '--lr=0.5', '--seed=0', '--eval-every=10', '--checkpoint-every=10', ...args],
      working_directory: repo.dir,
    },
  });
}

const startsOf = (runDir: string) =>
  readFileSync(path.join(runDir, 'starts.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { pid: number; resumedFrom?: string });

test('a preempted pinned experiment resumes in the same worktree, records both launches and its data, and removes the worktree', async () => {
  const rig = experimentRig();
  const id = `exp-pinned-${process.pid}`;
  const dataFile = path.join(rig.runsRoot, 'moons.csv'); // outside the repository, as data usually is
  writeFileSync(dataFile, 'x,y,label\n0.1,0.2,1\n');
  const spec = await pinExperimentCode(
    pinnedSpec(id, ['--steps=60', '--preempt-at-step=30'], { data: { moons: dataFile } }),
    rig.runsRoot,
  );
  const runDir = path.join(rig.runsRoot, id);
  const status = await withWorker(env, { taskQueue: rig.taskQueue, activities: rig.activities }, async () => {
    await submitExperiment({ client: env.client, spec, settings: rig.settings });
    const result = await experimentHandle(env.client, id).result();
    expect(result.end_stage).toBe('completed');
    await recordHistory(env.client, id, 'experiment-pinned-code');
    return experimentStatus(env.client, id);
  });
  expect(status.attempts.map((a) => a.outcome)).toEqual(['preempted', 'success']);
  expect(startsOf(runDir)[1]!.resumedFrom).toContain(path.join(runDir, 'checkpoints'));

  const results = ResultsPayload.parse(JSON.parse(readFileSync(path.join(runDir, 'results.json'), 'utf8')));
  const record = results.reproducibility!;
  const worktree = worktreeDirOf(runDir);
  expect(record.code).toMatchObject({ pinned: true, commit: repo.git('rev-parse', 'main'), worktree });
  expect(record.launches.map((launch) => [launch.launch, launch.exit_code])).toEqual([
    [1, 143],
    [2, 0],
  ]);
  expect(record.spec.cwd).toBe(worktree);
  expect(record.data).toEqual([
    expect.objectContaining({
      name: 'moons',
      kind: 'file',
      sha256: createHash('sha256').update(readFileSync(dataFile)).digest('hex'),
    }),
  ]);
  expect(record.spec.args).toContain('--resume-from'); // the record is the last launch's command
  // The end of the experiment removed the worktree and git's note of it; the checkout is untouched.
  expect(existsSync(worktree)).toBe(false);
  expect(repo.git('worktree', 'list').split('\n')).toHaveLength(1);
  expect(repo.git('status', '--porcelain')).toBe('');
});

test('a worker killed while a pinned experiment trains: the next worker adopts the trainer in the kept worktree', async () => {
  const rig = experimentRig(2);
  const id = `exp-pinned-crash-${process.pid}`;
  const spec = await pinExperimentCode(
    pinnedSpec(id, ['--steps=150', '--step-delay-ms=20'], {
      code: { repo: repo.dir, ref: 'main', keep_worktree: true },
    }),
    rig.runsRoot,
  );
  const runDir = path.join(rig.runsRoot, id);
  const first = await startLablineWorkerProcess(env, rig, processes);
  await submitExperiment({ client: env.client, spec, settings: rig.settings });
  await waitForStatus(env.client, id, (s) => (s.attempts[0]?.step ?? 0) > 10);
  await first.kill('SIGKILL');

  const status = await withWorker(env, { taskQueue: rig.taskQueue, activities: rig.activities }, async () => {
    const result = await experimentHandle(env.client, id).result();
    expect(result.end_stage).toBe('completed');
    return experimentStatus(env.client, id);
  });
  expect(status.attempts.map((a) => a.outcome)).toEqual(['success']);
  expect(startsOf(runDir)).toHaveLength(1);
  const record = ResultsPayload.parse(
    JSON.parse(readFileSync(path.join(runDir, 'results.json'), 'utf8')),
  ).reproducibility!;
  expect(record.launches).toHaveLength(1);
  expect(record.launches[0]).toMatchObject({ exit_code: 0 });
  // keep_worktree: the worktree stays, at the pinned commit, for a person to look at.
  const worktree = worktreeDirOf(runDir);
  expect(readFileSync(path.join(worktree, 'trainer', 'train.js'), 'utf8')).toBe(
    readFileSync(trainerPath, 'utf8'),
  );
  expect(repo.git('worktree', 'list')).toContain(worktree);
});

test('a reproducibility record that cannot be written is logged; the launch and the experiment go on', async () => {
  const rig = experimentRig();
  const id = `exp-no-record-${process.pid}`;
  // A folder where the record's file would go: every write of the record fails.
  mkdirSync(path.join(rig.runsRoot, id, 'reproducibility.json'), { recursive: true });
  const spec = ExperimentSpec.parse(
    trainerSpec(id, [], { approvals: { launch: { enabled: false }, publish: { enabled: false } } }),
  );
  const status = await withWorker(env, { taskQueue: rig.taskQueue, activities: rig.activities }, async () => {
    await submitExperiment({ client: env.client, spec, settings: rig.settings });
    expect((await experimentHandle(env.client, id).result()).end_stage).toBe('completed');
    return experimentStatus(env.client, id);
  });
  expect(status.attempts.map((a) => [a.launch, a.outcome])).toEqual([[1, 'success']]);
});
