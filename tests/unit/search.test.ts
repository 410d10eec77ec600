/**
 * Search campaigns' decisions in code: the promotion rule, each kind of budget, failure classes, what the
 * proposer is shown, and the spec of one trial's seed.
 */
import {
  budgetReached,
  failureClassOf,
  HISTORY_DIFF_BYTES,
  HISTORY_TRIALS_WITH_DIFFS,
  promotionDecision,
  proposerHistory,
  SearchBudget,
  SearchCampaignSpec,
  trialExperimentSpec,
  trialSeeds,
  type SearchUsage,
  type Trial,
} from '../../src/experiment';

const objective = { goal: 'max' as const, min_delta: 0.01, alpha: 0.05 };

describe('promotionDecision', () => {
  it('promotes a clearly better trial with its improvement and a small p', () => {
    const decision = promotionDecision([0.9, 0.91, 0.89], [0.8, 0.81, 0.79], objective);
    expect(decision.promote).toBe(true);
    expect(decision.improvement).toBeCloseTo(0.1, 10);
    expect(decision.p_value).toBeLessThan(0.001);
    expect(decision.reason).toMatch(/^improves the mean by 0\.1, p = .* < 0\.05$/);
  });

  it('keeps the incumbent when the improvement is below min_delta, however significant', () => {
    const decision = promotionDecision([0.805, 0.806, 0.804], [0.8, 0.8001, 0.7999], objective);
    expect(decision.promote).toBe(false);
    expect(decision.p_value).toBeLessThan(0.05);
    expect(decision.reason).toMatch(/less than min_delta 0\.01/);
  });

  it('keeps the incumbent when a large but noisy improvement is not significant at alpha', () => {
    const decision = promotionDecision([0.95, 0.7, 0.99], [0.8, 0.81, 0.79], objective);
    expect(decision.improvement).toBeGreaterThan(0.01);
    expect(decision.p_value).toBeGreaterThan(0.05);
    expect(decision).toMatchObject({ promote: false });
    expect(decision.reason).toMatch(/is not below alpha 0\.05/);
  });

  it('reads the goal: lower is better for min', () => {
    const decision = promotionDecision([0.2, 0.21, 0.19], [0.3, 0.31, 0.29], { ...objective, goal: 'min' });
    expect(decision.promote).toBe(true);
    expect(decision.improvement).toBeCloseTo(0.1, 10);
    expect(
      promotionDecision([0.3, 0.31, 0.29], [0.2, 0.21, 0.19], { ...objective, goal: 'min' }).promote,
    ).toBe(false);
  });

  it('with one seed only the means decide; with no spread p is 0 or 1', () => {
    expect(promotionDecision([0.9], [0.8], objective)).toMatchObject({ promote: true, p_value: null });
    expect(promotionDecision([0.9, 0.9], [0.8, 0.8], objective)).toMatchObject({ promote: true, p_value: 0 });
    expect(promotionDecision([0.8, 0.8], [0.9, 0.9], objective)).toMatchObject({
      promote: false,
      p_value: 1,
    });
  });

  it('never promotes on missing values', () => {
    expect(promotionDecision([], [0.8], objective)).toMatchObject({
      promote: false,
      reason: 'no values to compare',
    });
  });
});

describe('budgetReached', () => {
  const used = (over: Partial<SearchUsage>): SearchUsage => ({
    trials: 0,
    gpu_hours: 0,
    llm_usd: 0,
    wall_seconds: 0,
    ...over,
  });
  const budget = SearchBudget.parse({ max_trials: 10, gpu_hours: 2, llm_usd: 5, wall_time: '1h' });

  it('allows another trial while every limit has room', () => {
    expect(budgetReached(budget, used({ trials: 9, gpu_hours: 1.9, llm_usd: 4.9, wall_seconds: 3599 }))).toBe(
      undefined,
    );
  });

  it.each([
    [{ trials: 10 }, 'max_trials reached (10 of 10)'],
    [{ gpu_hours: 2.5 }, 'gpu_hours reached (2.5000 of 2)'],
    [{ llm_usd: 5 }, 'llm_usd reached ($5.0000 of $5)'],
    [{ wall_seconds: 3600.4 }, 'wall_time reached (3600 s of 3600 s)'],
  ])('ends the search when %j is spent, saying which limit', (spent, reason) => {
    expect(budgetReached(budget, used(spent))).toBe(reason);
  });

  it('has no limit but the trials by default', () => {
    const defaults = SearchBudget.parse({});
    expect(defaults).toEqual({ max_trials: 20 });
    expect(budgetReached(defaults, used({ gpu_hours: 1e6, llm_usd: 1e6, wall_seconds: 1e9 }))).toBe(
      undefined,
    );
  });

  it('refuses a budget that could never allow a trial', () => {
    expect(() => SearchBudget.parse({ max_trials: 0 })).toThrow();
    expect(() => SearchBudget.parse({ wall_time: '0s' })).toThrow(/longer than 0s/);
    expect(() => SearchBudget.parse({ llm_usd: -1 })).toThrow();
  });
});

describe('failureClassOf', () => {
  it.each([
    ['training attempt budget exhausted (1 of 1 failed): launch 1 ended error: exit code 1', 'error'],
    ['launch 1 ended out_of_memory: the process was killed', 'out_of_memory'],
    ['launch 2 ended timed_out after 2m', 'timed_out'],
    ['deliverables not met: eval/accuracy missing', 'deliverables_not_met'],
    ['cancelled by alice', 'cancelled'],
    [undefined, 'error'],
  ])('classes %j as %s', (reason, kind) => {
    expect(failureClassOf(reason)).toBe(kind);
  });
});

function trialOf(n: number, over: Partial<Trial> = {}): Trial {
  return {
    n,
    hypothesis: `hypothesis ${n}`,
    diff: `diff ${n}`,
    state: 'not_better',
    parent_commit: 'a'.repeat(40),
    parent_trial: 0,
    seeds: trialSeeds(n, 2),
    experiment_ids: [],
    values: [],
    gpu_hours: 0,
    llm_usd: 0,
    proposed_at: '2026-12-04T00:00:00.000Z',
    ...over,
  };
}

describe('proposerHistory', () => {
  it('shows every proposed trial with its outcome, leaves out the base, and bounds long searches', () => {
    const trials = [
      trialOf(0, { state: 'promoted' }),
      ...Array.from({ length: HISTORY_TRIALS_WITH_DIFFS + 5 }, (_v, i) => trialOf(i + 1)),
    ];
    trials[45] = trialOf(45, {
      state: 'failed',
      diff: 'x'.repeat(HISTORY_DIFF_BYTES + 100),
      failure_class: 'error',
      log_tail: Array.from({ length: 30 }, (_v, i) => `line ${i}`).join('\n'),
      reason: 'seed 90 ended failed',
    });
    const history = proposerHistory(trials);
    expect(history.map((t) => t.n)).toEqual(trials.slice(1).map((t) => t.n));
    // The oldest five lose their diffs, never their hypothesis or outcome.
    expect(history.slice(0, 5).every((t) => t.diff === '' && t.hypothesis && t.state)).toBe(true);
    expect(history[5]!.diff).toBe('diff 6');
    const failed = history.at(-1)!;
    expect(failed.diff).toHaveLength(HISTORY_DIFF_BYTES + '\n[… cut]'.length);
    expect(failed.log_tail!.split('\n')).toEqual(Array.from({ length: 20 }, (_v, i) => `line ${i + 10}`));
    expect(failed).toMatchObject({ failure_class: 'error', reason: 'seed 90 ended failed' });
  });
});

describe('trialExperimentSpec', () => {
  const campaign = SearchCampaignSpec.parse({
    campaign_id: 'camp-moons',
    name: 'moons',
    base: {
      experiment_id: 'exp-moons',
      name: 'Moons',
      hypothesis: 'h',
      config: { seed: 0 },
      code: { repo: '/tmp/repo', pinned: { commit: 'a'.repeat(40), branch: 'main' } },
      training: { command: 'node', args: ['run.js'], resources: { time_limit: '1h' } },
      budgets: { max_training_attempts: 3 },
    },
    search: {
      editable: ['hp.js'],
      objective: { metric: 'eval/accuracy', goal: 'max' },
      trial: { time_limit: '5m' },
    },
  });

  it('trains the trial commit with the seed, the trial time limit, one attempt and no gates', () => {
    const spec = trialExperimentSpec(
      campaign,
      {
        n: 2,
        hypothesis: 'larger lr',
        commit: 'b'.repeat(40),
        branch: 'labline/camp-moons/trial-2',
        parent_commit: 'a'.repeat(40),
      },
      7,
      'exp-moons-t1-s3',
    );
    expect(spec.experiment_id).toBe('exp-moons-t2-s7');
    expect(spec.config.seed).toBe(7);
    expect(spec.code?.pinned).toEqual({ commit: 'b'.repeat(40), branch: 'labline/camp-moons/trial-2' });
    expect(spec.training.resources.time_limit).toBe(300);
    expect(spec.budgets.max_training_attempts).toBe(1);
    expect(Object.values(spec.approvals).every((gate) => !gate.enabled)).toBe(true);
    expect(spec.parent).toMatchObject({
      experiment_id: 'exp-moons-t1-s3',
      modifications: [
        { parameter: 'seed', from: 0, to: 7 },
        { parameter: 'code.commit', from: 'a'.repeat(40), to: 'b'.repeat(40) },
      ],
    });
    expect(spec.metadata.tags).toContain('camp-moons');
  });

  it('refuses a trial that was never committed', () => {
    expect(() =>
      trialExperimentSpec(campaign, { n: 1, hypothesis: 'h', parent_commit: 'a'.repeat(40) }, 2, 'exp-moons'),
    ).toThrow(/needs the base code and a commit/);
  });
});
