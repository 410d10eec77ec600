import {
  baseVariantOf,
  CampaignSpec,
  canonicalJson,
  childSpec,
  ExperimentSpec,
  recordDifferences,
  reproductionChecks,
  seedsOfConfig,
  validateExperimentSpec,
  variantsOf,
  type ReproducibilityRecord,
} from '../../src/experiment';

const COMMIT_A = 'a'.repeat(40);
const COMMIT_B = 'b'.repeat(40);

const baseSpec = {
  experiment_id: 'exp-code',
  name: 'code',
  hypothesis: 'it trains',
  config: { seed: 0, steps: 10 },
  training: { command: 'node', args: ['train.js'], working_directory: '/repo' },
};

describe('the spec: code, data and reproducibility sections', () => {
  test('a code section gets its defaults: HEAD, snapshot, worktree removed', () => {
    const spec = ExperimentSpec.parse({ ...baseSpec, code: {} });
    expect(spec.code).toEqual({ ref: 'HEAD', dirty: 'snapshot', keep_worktree: false });
    expect(spec.data).toEqual({});
    expect(spec.reproducibility).toEqual({ tolerance: {} });
  });

  test('bad code, data and tolerance entries are refused with their paths and hints', () => {
    const result = validateExperimentSpec({
      ...baseSpec,
      code: { dirty: 'sometimes', pinned: { commit: 'abc' } },
      data: { 'bad name!': 'x.csv', digits: { source: 'digits.npz', sha256: 'nope' } },
      reproducibility: { tolerance: { 'eval/accuracy': -1 } },
    });
    expect(result.ok).toBe(false);
    const paths = result.ok ? [] : result.errors.map((error) => error.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'code.dirty',
        'code.pinned.commit',
        'data["bad name!"]',
        'data.digits.sha256',
        'reproducibility.tolerance["eval/accuracy"]',
      ]),
    );
  });
});

describe('code-variant campaigns', () => {
  const campaign = (variants: Record<string, unknown>) =>
    CampaignSpec.parse({
      campaign_id: 'camp-code',
      name: 'code variants',
      base: { ...baseSpec, code: { repo: '/repo' } },
      variants,
      primary_metric: { name: 'eval/accuracy', goal: 'max' },
    });

  test('one variant per ref, named after its last segment; the first is the base', () => {
    const spec = campaign({ refs: ['main', 'feature/gated-linear', 'feature/hybrid'] });
    expect(variantsOf(spec).map((v) => [v.name, v.code?.ref])).toEqual([
      ['main', 'main'],
      ['gated-linear', 'feature/gated-linear'],
      ['hybrid', 'feature/hybrid'],
    ]);
    expect(baseVariantOf(spec)).toBe('main');
  });

  test('refs combine with a config grid: every ref with every config variant', () => {
    const spec = campaign({ refs: ['main', 'feature/wide'], grid: { steps: [10, 20] } });
    expect(variantsOf(spec).map((v) => v.name)).toEqual([
      'main',
      'main-steps-10',
      'main-steps-20',
      'wide',
      'wide-steps-10',
      'wide-steps-20',
    ]);
  });

  test('a child of a pinned ref trains that commit, keeping the base code section', () => {
    const spec = campaign({
      refs: [
        { ref: 'main', pinned: { commit: COMMIT_A, branch: 'main' } },
        { ref: 'feature/wide', pinned: { commit: COMMIT_B, branch: 'feature/wide' } },
      ],
    });
    const wide = variantsOf(spec)[1]!;
    const child = childSpec(spec, wide, 0);
    expect(child.code).toMatchObject({ repo: '/repo', ref: 'feature/wide', pinned: { commit: COMMIT_B } });
    expect(child.experiment_id).toBe('exp-code-wide-s0');
  });

  test('refs with ablations_from, or the same ref twice, are refused', () => {
    expect(() => campaign({ refs: ['main'], ablations_from: 'exp-x' })).toThrow(/refs/);
    expect(() => campaign({ refs: ['main', 'main'] })).toThrow(/same ref twice/);
  });
});

function record(overrides: Partial<ReproducibilityRecord> = {}): ReproducibilityRecord {
  return {
    version: 1,
    experiment_id: 'exp-a',
    run_name: 'exp-a',
    code: { pinned: true, repository: '/repo', commit: COMMIT_A, branch: 'main', clean: true },
    spec: {
      sha256: 'f'.repeat(64),
      spec: { config: { seed: 0, lr: 0.1 } },
      command: 'python',
      args: ['train.py'],
      cwd: '/runs/exp-a/worktree',
      env: { LABLINE_RUN_DIR: '/runs/exp-a', OMP_NUM_THREADS: '1' },
      secret_env_names: [],
    },
    environment: {
      os: { platform: 'linux', release: '6.1', arch: 'x64' },
      cpu: { model: 'EPYC', cores: 2 },
      gpus: [],
      node: 'v20.0.0',
      python: {
        executable: '/usr/bin/python3',
        version: '3.11.2',
        packages: ['numpy==1.26.4', 'torch==2.13.0'],
      },
      lockfiles: [{ path: 'requirements.txt', sha256: '1'.repeat(64) }],
    },
    randomness: { seeds: { seed: 0 }, reported_by_trainer: { seed: true } },
    data: [{ name: 'digits', source: '/data/digits.npz', kind: 'file', sha256: '2'.repeat(64), bytes: 10 }],
    launches: [],
    ...overrides,
  };
}

describe('recordDifferences (labline diff)', () => {
  test('equal records differ in nothing, whatever their run names', () => {
    const b = record({ run_name: 'exp-b', experiment_id: 'exp-b' });
    b.spec.env.LABLINE_RUN_DIR = '/runs/exp-b';
    expect(recordDifferences(record(), b)).toEqual([]);
  });

  test('code, config, packages, lockfiles and data differences are named by section', () => {
    const b = record({
      code: { pinned: true, repository: '/repo', commit: COMMIT_B, branch: 'feature/x', clean: true },
      data: [{ name: 'digits', source: '/data/digits.npz', kind: 'file', sha256: '3'.repeat(64) }],
    });
    b.spec.spec = { config: { seed: 0, lr: 0.2 } };
    b.environment.python!.packages = ['numpy==2.0.0', 'torch==2.13.0', 'scipy==1.13.0'];
    b.environment.lockfiles = [{ path: 'requirements.txt', sha256: '4'.repeat(64) }];
    const found = recordDifferences(record(), b);
    expect(found).toEqual(
      expect.arrayContaining([
        { section: 'code', item: 'commit', a: COMMIT_A, b: COMMIT_B },
        { section: 'code', item: 'branch', a: 'main', b: 'feature/x' },
        { section: 'config', item: 'lr', a: '0.1', b: '0.2' },
        { section: 'packages', item: 'numpy', a: '1.26.4', b: '2.0.0' },
        { section: 'packages', item: 'scipy', b: '1.13.0' },
        expect.objectContaining({ section: 'lockfiles', item: 'requirements.txt' }),
        expect.objectContaining({ section: 'data', item: 'digits' }),
      ]),
    );
    expect(found.some((d) => d.item === 'torch')).toBe(false);
  });
});

describe('reproductionChecks', () => {
  const original = {
    experiment_id: 'exp-a',
    run_name: 'exp-a',
    summary_metrics: { 'eval/accuracy': 0.9, loss: 0.3 },
  };

  test('the primary metric without a tolerance must match exactly; tolerances allow a difference', () => {
    const checks = reproductionChecks(original, { loss: 0.05 }, 'eval/accuracy', {
      'eval/accuracy': 0.9,
      loss: 0.34,
    });
    expect(checks).toEqual([
      { metric: 'eval/accuracy', original: 0.9, reproduced: 0.9, difference: 0, tolerance: 0, within: true },
      expect.objectContaining({ metric: 'loss', tolerance: 0.05, within: true }),
    ]);
  });

  test('outside the tolerance, or missing, is not reproduced', () => {
    const checks = reproductionChecks(original, { 'eval/accuracy': 0.01 }, 'eval/accuracy', {
      'eval/accuracy': 0.88,
    });
    expect(checks).toEqual([expect.objectContaining({ metric: 'eval/accuracy', within: false })]);
    expect(reproductionChecks(original, { loss: 1 }, undefined, {})).toEqual([
      expect.objectContaining({ metric: 'loss', reproduced: null, within: false }),
    ]);
  });
});

test('canonicalJson sorts keys at every level, so equal specs hash equally', () => {
  expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: 3 } })).toBe(
    '{"a":{"c":3,"d":[2,{"y":2,"z":1}]},"b":1}',
  );
});

test('seedsOfConfig finds every seed key and nothing else', () => {
  expect(
    seedsOfConfig({ seed: 1, 'data.seed': 2, init_seed: 3, steps: 4, seeds_note: 'x', lr: 0.1 }),
  ).toEqual({
    seed: 1,
    'data.seed': 2,
    init_seed: 3,
  });
});
