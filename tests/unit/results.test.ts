import type { ValidationReport } from '../../src/experiment';
import { deliverablesStatus, ResultsPayload, resultsStatus, summaryMetricsFrom } from '../../src/experiment';

const report: ValidationReport = {
  passed: false,
  results: [
    { name: 'ckpt', type: 'exists', required: true, passed: true, expected: '', found: '', message: '' },
    { name: 'acc', type: 'threshold', required: true, passed: false, expected: '', found: '', message: '' },
    {
      name: 'stretch',
      type: 'threshold',
      required: false,
      passed: false,
      expected: '',
      found: '',
      message: '',
    },
  ],
};

describe('deliverablesStatus', () => {
  test('marks passed deliverables met and failed ones not met', () => {
    expect(deliverablesStatus(report, false)).toEqual({ ckpt: 'met', acc: 'not_met', stretch: 'not_met' });
  });

  test('after an accept at the deliverables gate, failed required ones are accepted anyway; optional ones stay not met', () => {
    expect(deliverablesStatus(report, true)).toEqual({
      ckpt: 'met',
      acc: 'accepted_anyway',
      stretch: 'not_met',
    });
  });
});

describe('resultsStatus', () => {
  test('completed when required deliverables pass, partial success when accepted anyway, failed otherwise', () => {
    expect(resultsStatus({ ...report, passed: true }, false)).toBe('completed');
    expect(resultsStatus(report, true)).toBe('partial_success');
    expect(resultsStatus(report, false)).toBe('failed');
  });
});

describe('summaryMetricsFrom', () => {
  test('keeps scalars, flattens nested values to dotted keys, drops _wandb and lists', () => {
    expect(
      summaryMetricsFrom({
        accuracy: 0.91,
        _step: 299,
        model: 'mlp',
        best: null,
        eval: { loss: 0.3, extra: { f1: 0.8 } },
        _wandb: { runtime: 1843 },
        confusion: [1, 2],
      }),
    ).toEqual({
      accuracy: 0.91,
      _step: 299,
      model: 'mlp',
      best: null,
      'eval.loss': 0.3,
      'eval.extra.f1': 0.8,
    });
  });

  test('writes non-finite numbers as strings, which JSON can carry', () => {
    expect(summaryMetricsFrom({ loss: Number.NaN })).toEqual({ loss: 'NaN' });
  });
});

describe('ResultsPayload', () => {
  const payload = {
    experiment_id: 'exp-quickstart',
    status: 'completed',
    completed_at: '2026-01-05T10:00:00Z',
    duration_seconds: 312.5,
    deliverables_status: { ckpt: 'met' },
    summary_metrics: { accuracy: 0.93 },
    validation_results: { passed: true, results: [] },
    artifacts: [{ name: 'report.md', kind: 'report', path: 'runs/exp-quickstart/report.md' }],
    analysis_reports: [{ agent: 'performance', title: 'Performance', summary: 'Converged.' }],
    decisions: [
      {
        gate: 'launch',
        by: 'alice',
        at: '2026-01-05T09:55:00Z',
        source: 'cli',
        signal: 'approve',
        outcome: 'approved',
      },
    ],
    costs: {},
  };

  test('parses a complete payload, with costs defaulting to zero', () => {
    expect(ResultsPayload.parse(payload).costs).toEqual({
      llm_usd: 0,
      llm_prompt_tokens: 0,
      llm_completion_tokens: 0,
      gpu_hours: 0,
    });
  });

  test('allows no validation results when the experiment ended before validation', () => {
    expect(ResultsPayload.safeParse({ ...payload, status: 'failed', validation_results: null }).success).toBe(
      true,
    );
  });

  test('an artifact needs a path or a uri', () => {
    expect(ResultsPayload.safeParse({ ...payload, artifacts: [{ name: 'x', kind: 'file' }] }).success).toBe(
      false,
    );
  });

  test('refuses statuses outside completed, failed, partial_success', () => {
    expect(ResultsPayload.safeParse({ ...payload, status: 'rejected' }).success).toBe(false);
  });
});
