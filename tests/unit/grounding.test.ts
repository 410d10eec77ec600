import {
  checkGrounding,
  documentReferences,
  markUnverified,
  markUnverifiedInOutput,
  numbersInText,
  outputTexts,
  UNVERIFIED_MARK,
} from '../../src/experiment';

const facts = {
  analysis: {
    metrics: { 'eval/accuracy': { final: 0.912345, best: 0.93, best_step: 1200 } },
    pairs: [{ relative_gap: -0.04567 }],
    rows: 1200,
  },
  spec: { hypothesis: 'at least 90% accuracy' },
};

describe('the grounding check', () => {
  test('a number equal to a fact, or rounded to the digits shown, is verified with its source', () => {
    const report = checkGrounding('Accuracy ended at 0.9123 (0.91 rounded), best 0.93 at step 1200.', facts);
    expect(report.unverified).toEqual([]);
    expect(report.verified).toEqual([
      { text: '0.9123', source: 'analysis.metrics["eval/accuracy"].final' },
      { text: '0.91', source: 'analysis.metrics["eval/accuracy"].final' },
      { text: '0.93', source: 'analysis.metrics["eval/accuracy"].best' },
      { text: '1200', source: 'analysis.metrics["eval/accuracy"].best_step' },
    ]);
  });

  test('a number that no fact stands for is unverified, even one rounding away', () => {
    const report = checkGrounding('Accuracy ended at 0.9124, or 0.92, after 1201 steps.', facts);
    expect(report.unverified).toEqual(['0.9124', '0.92', '1201']);
  });

  test('an integer written without a decimal point must match exactly', () => {
    expect(checkGrounding('Accuracy ended near 1.', facts).unverified).toEqual(['1']);
  });

  test('percentages stand for fractions and for numbers already in percent, sign aside', () => {
    const report = checkGrounding('Eval is 4.567% below train; the goal was 90%; the gap is -4.6%.', facts);
    expect(report.unverified).toEqual([]);
    expect(report.verified.map((trace) => trace.source)).toEqual([
      'analysis.pairs[0].relative_gap',
      'spec.hypothesis',
      'analysis.pairs[0].relative_gap',
    ]);
  });

  test('grouped thousands and the two ends of a range are numbers of the text', () => {
    expect(numbersInText('1,200 rows; accuracy 0.85-0.93').map((mention) => mention.text)).toEqual([
      '1,200',
      '0.85',
      '0.93',
    ]);
    expect(checkGrounding('1,200 rows; accuracy 0.85-0.93', facts).unverified).toEqual(['0.85']);
  });

  test('code, list markers and figure or table references are not numbers of the text', () => {
    const text = '1. See Figure 2 and Tables 1 and 3 for `exp-lr-03`.\n2. Table 1, 0.77 is new.';
    expect(numbersInText(text).map((mention) => mention.text)).toEqual(['0.77']);
    expect(documentReferences(text)).toEqual({ figures: [2], tables: [1, 3] });
  });

  test('unverified numbers are marked where they stand, once, and not inside code', () => {
    const marked = markUnverified('It hit 0.77, then 0.77 again; `0.77` is a name.', ['0.77']);
    expect(marked).toBe(
      `It hit 0.77 ${UNVERIFIED_MARK}, then 0.77 ${UNVERIFIED_MARK} again; \`0.77\` is a name.`,
    );
    expect(markUnverified(marked, ['0.77'])).toBe(marked);
  });

  test('structured outputs: every string is checked and marked, except under skipped keys', () => {
    const output = {
      summary: 'Reached 0.77.',
      proposals: [{ name: 'lr-0.77', rationale: 'Try 0.77.', to: 0.77 }],
    };
    expect(outputTexts(output, ['name']).map((entry) => entry.path)).toEqual([
      'summary',
      'proposals[0].rationale',
    ]);
    expect(markUnverifiedInOutput(output, ['0.77'], ['name'])).toEqual({
      summary: `Reached 0.77 ${UNVERIFIED_MARK}.`,
      proposals: [{ name: 'lr-0.77', rationale: `Try 0.77 ${UNVERIFIED_MARK}.`, to: 0.77 }],
    });
  });
});
