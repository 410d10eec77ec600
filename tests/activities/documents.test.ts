import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  AblationProposal,
  compareWithBaseline,
  computeAnalysis,
  ExperimentSpec,
  type HistoryRow,
  type ValidationReport,
} from '../../src/experiment';
import { createAgentActivities } from '../../src/activities/agents/activities';
import { OfflineAgentProvider } from '../../src/activities/agents/offline';
import type { AblationPlan, BlogPost, PaperDraft } from '../../src/activities/agents/schemas';
import { latexEscape, latexProse } from '../../src/activities/artifacts/paper-latex';
import { writeReport, type WriteReportInput } from '../../src/activities/artifacts/report';

/** Whether pdflatex is installed (Debian: texlive-latex-base); without it the paper is checked structurally. */
const pdflatex = spawnSync('pdflatex', ['--version'], { encoding: 'utf8' }).status === 0;

function history(): HistoryRow[] {
  return Array.from({ length: 300 }, (_, step) => ({
    _step: step,
    'train/loss': 2 / (1 + step / 20),
    'eval/loss': step < 150 ? 2.1 / (1 + step / 20) : 0.2 + (step - 150) * 0.002,
    'eval/accuracy': 0.9 - 0.8 / (1 + step / 20),
  }));
}

const spec = ExperimentSpec.parse({
  experiment_id: 'exp-docs-01',
  name: 'Two moons & a small MLP (50% width_test)',
  hypothesis: 'A 16-unit MLP reaches at least 0.85 accuracy on held-out data.',
  research_question: 'How fast does a small MLP learn?',
  config: { learning_rate: 0.5, steps: 300, seed: 0, hidden_units: 16 },
  training: { command: 'node', args: ['train.js'] },
  baselines: [{ name: 'logistic regression', metric: 'eval/accuracy', values: [0.84, 0.85, 0.86] }],
});
const analysis = computeAnalysis(history(), { goals: { 'eval/accuracy': 'max' } });
const validation: ValidationReport = {
  passed: true,
  results: [
    {
      name: 'accuracy',
      type: 'threshold',
      required: true,
      passed: true,
      expected: 'eval/accuracy (summary) >= 0.85',
      found: '0.8498',
      message: 'met',
    },
  ],
};
const baselineFacts = {
  comparisons: [
    compareWithBaseline({
      baseline: 'logistic regression',
      metric: 'eval/accuracy',
      goal: 'max',
      experiment: { values: [analysis.metrics['eval/accuracy']!.final!], sources: ['this run'], missing: [] },
      baselineSample: { values: [0.84, 0.85, 0.86], sources: ['spec', 'spec', 'spec'], missing: [] },
    }),
  ],
};

/** Every agent's output, written by the offline rules through the agent activities. */
async function agentOutputs() {
  const agents = createAgentActivities({ provider: new OfflineAgentProvider() });
  const common = {
    experimentId: spec.experiment_id,
    budget: { limit_usd: 1, spent_usd: 0, approved_over: false },
  };
  const done = <T>(step: { status: string; output?: T }): T => {
    if (step.status !== 'completed') throw new Error('expected a completed step');
    return step.output as T;
  };
  const performance = done(await agents.analyzePerformance({ ...common, analysis }));
  const interpretation = done(await agents.compareBaselines({ ...common, spec, baselines: baselineFacts }));
  const ablations: AblationPlan = done(
    await agents.designAblations({ ...common, spec, analysis, validation, performance }),
  );
  const writerInput = {
    ...common,
    spec,
    analysis,
    validation,
    performance,
    baselines: { facts: baselineFacts, interpretation },
    ablations,
  };
  return {
    performance,
    interpretation,
    ablations,
    narrative: done(await agents.writeReportNarrative(writerInput)),
    blog: done<BlogPost>(await agents.writeBlogPost(writerInput)),
    paper: done<PaperDraft>(await agents.writePaperDraft(writerInput)),
  };
}

let runDir: string;
beforeEach(() => {
  runDir = mkdtempSync(path.join(tmpdir(), 'labline-docs-'));
});
afterEach(() => rmSync(runDir, { recursive: true, force: true }));

async function documents(edit: (outputs: Awaited<ReturnType<typeof agentOutputs>>) => void = () => {}) {
  const outputs = await agentOutputs();
  edit(outputs);
  const input: WriteReportInput = {
    runDir,
    spec,
    validation,
    analysis,
    narrative: outputs.narrative,
    performance: outputs.performance,
    results: {
      experiment_id: spec.experiment_id,
      status: 'completed',
      completed_at: '2026-01-05T10:00:00Z',
      duration_seconds: 120,
      deliverables_status: { accuracy: 'met' },
      summary_metrics: {},
      validation_results: validation,
      artifacts: [],
      analysis_reports: [],
      decisions: [],
      costs: { llm_usd: 0.0123, llm_prompt_tokens: 1000, llm_completion_tokens: 500, gpu_hours: 0 },
    },
    history: history(),
    baselines: { facts: baselineFacts, interpretation: outputs.interpretation },
    ablations: outputs.ablations,
    blog: { draft: outputs.blog, model: 'gpt-4o-mini', promptVersion: 'blog.v1+rules.v1' },
    paper: { draft: outputs.paper, model: 'gpt-4o-mini', promptVersion: 'paper.v1+rules.v1' },
  };
  return { outputs, written: await writeReport(input) };
}

function compile(dir: string): { status: number | null; log: string } {
  // Twice, as LaTeX resolves references on the second run.
  let result = spawnSync('pdflatex', ['-interaction=nonstopmode', '-halt-on-error', 'paper.tex'], {
    cwd: dir,
    encoding: 'utf8',
  });
  if (result.status === 0)
    result = spawnSync('pdflatex', ['-interaction=nonstopmode', '-halt-on-error', 'paper.tex'], {
      cwd: dir,
      encoding: 'utf8',
    });
  return { status: result.status, log: result.stdout };
}

describe('the documents', () => {
  test('report.md has the baseline comparison and the proposed follow-ups, tables and figures numbered', async () => {
    const { written } = await documents();
    const report = readFileSync(written.reportPath, 'utf8');
    expect(report).toContain('## Comparison with baselines');
    expect(report).toContain('*Table 3: Comparison with baselines.*');
    expect(report).toContain('## Proposed follow-up experiments');
    expect(report).toContain('*Table 4: Proposed follow-up experiments.*');
    expect(report).toMatch(/!\[Figure 1: accuracy\]\(charts\/accuracy\.svg\)/);
    expect(report).toContain('Table 1 lists the final and best value of each metric');
    expect(report.split('## Numbers in this report')[1]).not.toContain('not found in the facts');
  });

  test('blog.md places each figure and table after the section that cites it and traces every number', async () => {
    const { written, outputs } = await documents();
    const blog = readFileSync(written.blogPath!, 'utf8');
    expect(blog.startsWith(`# ${outputs.blog.title}\n`)).toBe(true);
    const happened = blog.indexOf('## What happened');
    const stoodOut = blog.indexOf('## What stood out');
    const chart = blog.indexOf('![Figure 1: accuracy](charts/accuracy.svg)');
    const table = blog.indexOf('*Table 1: Key metrics: final and best values.*');
    expect(happened).toBeGreaterThan(0);
    expect(chart).toBeGreaterThan(happened);
    expect(chart).toBeLessThan(stoodOut);
    expect(table).toBeGreaterThan(happened);
    expect(table).toBeLessThan(stoodOut);
    expect(blog).toContain('`gpt-4o-mini` (prompt `blog.v1+rules.v1`)');
    const numbers = blog.split('## Numbers in this post')[1]!;
    expect(numbers).toContain('| 0.8498 | `analysis.metrics["eval/accuracy"].final` |');
    expect(numbers).not.toContain('not found in the facts');
  });

  test('an unverified number in a writer’s text is listed as not found in the numbers section', async () => {
    const { written } = await documents(({ blog }) => {
      blog.lead = `${blog.lead} It beat the baseline by 0.777 [unverified].`;
    });
    const numbers = readFileSync(written.blogPath!, 'utf8').split('## Numbers in this post')[1]!;
    expect(numbers).toContain('| 0.777 | **not found in the facts** |');
  });

  test('ablations.json holds the proposals in the shape campaigns read', async () => {
    const { written, outputs } = await documents();
    const file = JSON.parse(readFileSync(written.ablationsPath!, 'utf8')) as { proposals: unknown[] };
    expect(file.proposals.map((proposal) => AblationProposal.parse(proposal))).toEqual(
      outputs.ablations.proposals,
    );
    expect(written.artifacts.map((artifact) => artifact.name)).toEqual(
      expect.arrayContaining(['report.md', 'blog.md', 'paper.tex', 'ablations.json', 'results.json']),
    );
  });

  test('paper.tex is an article with every table and figure labelled, cited and traced', async () => {
    const { written } = await documents();
    const tex = readFileSync(written.paperPath!, 'utf8');
    expect(tex).toMatch(/^% Paper draft[\s\S]*\\documentclass\[11pt\]\{article\}/);
    expect(tex).toContain('\\title{Two moons \\& a small MLP (50\\% width\\_test)}');
    for (const label of ['fig:1', 'fig:2', 'tab:1', 'tab:2', 'tab:3', 'tab:4'])
      expect(tex).toContain(`\\label{${label}}`);
    const refs = [...tex.matchAll(/\\ref\{([^}]+)\}/g)].map((match) => match[1]);
    expect(refs.length).toBeGreaterThan(2);
    for (const ref of refs) expect(tex).toContain(`\\label{${ref}}`);
    expect(tex).toContain('\\section{Numbers in this paper}');
    expect(tex).not.toContain('not found in the facts');
    expect(tex.trimEnd().endsWith('\\end{document}')).toBe(true);
  });

  (pdflatex ? test : test.skip)('paper.tex compiles with pdflatex, references resolved', async () => {
    const { written } = await documents();
    const { status, log } = compile(runDir);
    expect({ status, tail: status === 0 ? '' : log.slice(-2000) }).toEqual({ status: 0, tail: '' });
    expect(existsSync(path.join(runDir, 'paper.pdf'))).toBe(true);
    expect(log).not.toMatch(/undefined references|Reference .* undefined/);
    expect(written.paperPath).toBe(path.join(runDir, 'paper.tex'));
  });

  (pdflatex ? test : test.skip)('prose with LaTeX specials and Unicode still compiles', async () => {
    await documents(({ paper }) => {
      paper.discussion =
        'Costs & gains: 50% of $ # _ { } ~ ^ \\ < > | — “quoted” ≈ ≤ ≥ ± × → é ü ✓ 🙂 `a_b` **bold**';
      paper.title = 'Title with \\input{/etc/passwd} and $x^2$';
    });
    const { status, log } = compile(runDir);
    expect({ status, tail: status === 0 ? '' : log.slice(-2000) }).toEqual({ status: 0, tail: '' });
  });

  test('escaping: specials are escaped, code is typewriter, single figure and table mentions are references', () => {
    expect(latexEscape('a_b & 50% $x$ {y} ~ ^ \\')).toBe(
      'a\\_b \\& 50\\% \\$x\\$ \\{y\\} \\textasciitilde{} \\textasciicircum{} \\textbackslash{}',
    );
    expect(latexProse('See Figure 2 and `eval/loss` in Table 1, 0.5.')).toBe(
      'See Figure~\\ref{fig:2} and \\texttt{eval/loss} in Table~\\ref{tab:1}, 0.5.',
    );
  });
});
