import type {
  AnalysisFacts,
  BaselineFacts,
  ExperimentSpec,
  ResultsPayload,
  ValidationReport,
} from '../../experiment';
import { formatNumber, formatNumberText, formatPercent, traceNumbers } from '../../experiment';
import { metricsInReadingOrder } from '../agents/offline-performance';
import type { AblationPlan, DocumentTable, PaperDraft } from '../agents/schemas';
import { documentTables } from './document-plan';
import type { LatexCurve } from './latex-figures';
import { latexCurvesPicture } from './latex-figures';
import {
  ablationsTable,
  baselinesTable,
  deliverablesTable,
  MAX_METRIC_ROWS,
  metricsTable,
} from './markdown-tables';
import { numberSources } from './report-markdown';

// The paper draft as LaTeX for the standard article class. The agent writes plain-text prose; everything
// LaTeX is produced here: special characters escaped, `code` set in typewriter type, "Figure 1" and
// "Table 2" turned into references, tables and figures as numbered floats in the order the writers were
// told, and an appendix with every number of the paper and the fact it came from.

/** A figure of the paper: its number, title and the sampled curves to draw. */
export interface PaperFigure {
  number: number;
  title: string;
  curves: LatexCurve[];
}

/** Everything the paper is written from. */
export interface PaperContent {
  spec: ExperimentSpec;
  draft: PaperDraft;
  analysis: AnalysisFacts;
  validation: ValidationReport | null;
  results: ResultsPayload;
  baselines: { facts: BaselineFacts } | null;
  ablations: AblationPlan | null;
  figures: readonly PaperFigure[];
  /** Who wrote the prose, for the byline, e.g. `gpt-4o-mini, prompt paper.v1+rules.v1`. */
  writtenBy: string;
}

const SPECIALS: Record<string, string> = {
  '\\': '\\textbackslash{}',
  '{': '\\{',
  '}': '\\}',
  $: '\\$',
  '&': '\\&',
  '#': '\\#',
  '%': '\\%',
  _: '\\_',
  '~': '\\textasciitilde{}',
  '^': '\\textasciicircum{}',
  '<': '\\textless{}',
  '>': '\\textgreater{}',
  '|': '\\textbar{}',
};

// Characters pdflatex cannot typeset from UTF-8 with the default fonts, as LaTeX.
const UNICODE: Record<string, string> = {
  '–': '--',
  '—': '---',
  '‘': '`',
  '’': "'",
  '“': '``',
  '”': "''",
  '…': '\\ldots{}',
  '−': '-',
  '≈': '$\\approx$',
  '≤': '$\\leq$',
  '≥': '$\\geq$',
  '±': '$\\pm$',
  '×': '$\\times$',
  '→': '$\\rightarrow$',
  '·': '$\\cdot$',
  μ: '$\\mu$',
  µ: '$\\mu$',
  '✅': 'yes',
  '❌': 'no',
  '⚠️': '',
  '⚠': '',
  '\u00a0': '~',
};

/**
 * Plain text as LaTeX: special characters escaped, typographic Unicode replaced, accented letters reduced
 * to their base letter and anything else outside ASCII dropped, so the text always compiles.
 */
export function latexEscape(text: string): string {
  let out = '';
  for (const char of text) {
    if (Object.hasOwn(SPECIALS, char)) out += SPECIALS[char];
    else if (Object.hasOwn(UNICODE, char)) out += UNICODE[char];
    else if (char.charCodeAt(0) < 128) out += char;
    else out += char.normalize('NFKD').replace(/[^\x20-\x7e]/g, '');
  }
  return out;
}

/**
 * Agent prose as LaTeX: `code` in typewriter type, **bold** in bold, single "Figure N" / "Table N" as
 * references to the numbered floats, everything else escaped.
 */
export function latexProse(text: string): string {
  const parts = text.split(/(`[^`\n]*`|\*\*[^*\n]+\*\*)/g);
  return parts
    .map((part) => {
      if (part.startsWith('`') && part.endsWith('`') && part.length >= 2)
        return `\\texttt{${latexEscape(part.slice(1, -1))}}`;
      if (part.startsWith('**') && part.endsWith('**') && part.length >= 4)
        return `\\textbf{${latexEscape(part.slice(2, -2))}}`;
      return latexEscape(part)
        .replace(/\bFigure (\d+)\b(?![.,]\d)/g, 'Figure~\\ref{fig:$1}')
        .replace(/\bTable (\d+)\b(?![.,]\d)/g, 'Table~\\ref{tab:$1}');
    })
    .join('');
}

/** Paragraphs (separated by blank lines) as LaTeX paragraphs. */
function paragraphs(text: string): string {
  return text
    .split(/\n\s*\n/)
    .map((paragraph) => latexProse(paragraph.trim().replace(/\s*\n\s*/g, ' ')))
    .filter((paragraph) => paragraph !== '')
    .join('\n\n');
}

function tabular(columns: string, header: readonly string[], rows: readonly (readonly string[])[]): string {
  return [
    `\\begin{tabular}{${columns}}`,
    '\\hline',
    `${header.map((cell) => `\\textbf{${cell}}`).join(' & ')} \\\\`,
    '\\hline',
    ...rows.map((row) => `${row.join(' & ')} \\\\`),
    '\\hline',
    '\\end{tabular}',
  ].join('\n');
}

function tt(text: string): string {
  return `\\texttt{${latexEscape(text)}}`;
}

function optional(value: number | null): string {
  return value === null ? '--' : formatNumber(value);
}

function latexValue(value: number | string | boolean | null): string {
  if (value === null) return 'unset';
  return latexEscape(typeof value === 'number' ? formatNumber(value) : String(value));
}

type Comparison = BaselineFacts['comparisons'][number];

function latexEstimate(estimate: Comparison['experiment']): string {
  if (!estimate) return '--';
  const interval =
    estimate.lower !== null && estimate.upper !== null
      ? ` [${formatNumber(estimate.lower)}, ${formatNumber(estimate.upper)}]`
      : '';
  return `${formatNumber(estimate.mean)}${interval} (n = ${estimate.n})`;
}

function latexTest(comparison: Comparison): string {
  if (comparison.welch?.p_value != null)
    return `Welch p = ${formatNumber(comparison.welch.p_value)}${comparison.hedges_g !== null ? `, g = ${formatNumber(comparison.hedges_g)}` : ''}`;
  if (comparison.prediction_interval)
    return `prediction interval [${formatNumber(comparison.prediction_interval.lower)}, ${formatNumber(comparison.prediction_interval.upper)}]`;
  return '--';
}

function tableBody(table: DocumentTable, content: PaperContent): string {
  switch (table.kind) {
    case 'metrics':
      return tabular(
        'llrrrr',
        ['Metric', 'Goal', 'Final', 'Final step', 'Best', 'Best step'],
        metricsInReadingOrder(content.analysis)
          .slice(0, MAX_METRIC_ROWS)
          .flatMap((metric) => {
            const facts = content.analysis.metrics[metric];
            if (!facts) return [];
            return [
              [
                tt(metric),
                facts.goal,
                optional(facts.final),
                optional(facts.final_step),
                optional(facts.best),
                optional(facts.best_step),
              ],
            ];
          }),
      );
    case 'deliverables':
      return tabular(
        'lllp{4.2cm}p{2.2cm}l',
        ['Deliverable', 'Type', 'Req.', 'Expected', 'Found', 'Met'],
        (content.validation?.results ?? []).map((result) => [
          tt(result.name),
          latexEscape(result.type.replaceAll('_', ' ')),
          result.required ? 'yes' : 'no',
          latexEscape(result.expected),
          latexEscape(formatNumberText(result.found)),
          result.passed ? 'yes' : 'no',
        ]),
      );
    case 'baselines': {
      // One column per baseline, one row per statistic: seven statistics do not fit across a page.
      const comparisons = content.baselines?.facts.comparisons ?? [];
      const width = Math.min(5, 9.5 / Math.max(1, comparisons.length)).toFixed(1);
      const row = (label: string, cell: (comparison: Comparison) => string) => [
        `\\textbf{${label}}`,
        ...comparisons.map(cell),
      ];
      return tabular(
        `l${comparisons.map(() => `p{${width}cm}`).join('')}`,
        ['', ...comparisons.map((comparison) => latexEscape(comparison.baseline))],
        [
          row('Metric', (comparison) => tt(comparison.metric)),
          row('Experiment', (comparison) => latexEstimate(comparison.experiment)),
          row('Baseline', (comparison) => latexEstimate(comparison.baseline_estimate)),
          row('Difference', (comparison) =>
            comparison.difference === null
              ? '--'
              : `${formatNumber(comparison.difference)}${comparison.relative_difference !== null ? ` (${latexEscape(formatPercent(comparison.relative_difference))})` : ''}`,
          ),
          row('Test', latexTest),
          row('Verdict', (comparison) => latexEscape(comparison.verdict.replaceAll('_', ' '))),
        ],
      );
    }
    case 'ablations':
      return tabular(
        'lp{4cm}p{6cm}',
        ['Follow-up', 'Changes', 'Rationale and expected effect'],
        (content.ablations?.proposals ?? []).map((proposal) => [
          tt(proposal.name),
          proposal.modifications
            .map(
              (change) =>
                `${tt(change.parameter)}: ${latexValue(change.from)} $\\rightarrow$ ${latexValue(change.to)}`,
            )
            .join('; '),
          `${latexProse(proposal.rationale)} Expected: ${latexProse(proposal.expected_effect)}`,
        ]),
      );
  }
}

function tableFloat(table: DocumentTable, content: PaperContent): string {
  return [
    '\\begin{table}[ht]',
    '\\centering\\small',
    `\\caption{${latexEscape(table.title)}.}`,
    `\\label{tab:${table.number}}`,
    tableBody(table, content),
    '\\end{table}',
  ].join('\n');
}

function figureFloat(figure: PaperFigure): string {
  return [
    '\\begin{figure}[ht]',
    '\\centering',
    latexCurvesPicture(figure.curves, latexEscape),
    `\\caption{Training curves: ${latexEscape(figure.title)}.}`,
    `\\label{fig:${figure.number}}`,
    '\\end{figure}',
  ].join('\n');
}

/** The prose and tables of the paper as plain text, for the numbers appendix (figures' axis labels aside). */
function tracedText(content: PaperContent): string {
  const { draft } = content;
  return [
    draft.title,
    draft.abstract,
    draft.introduction,
    draft.method,
    draft.results,
    draft.discussion,
    draft.conclusion,
  ].join('\n\n');
}

/** The tables as Markdown: the same numbers, formatted the same way, in text the tracer reads. */
function markdownTable(table: DocumentTable, content: PaperContent): string {
  switch (table.kind) {
    case 'metrics':
      return metricsTable(content.analysis);
    case 'deliverables':
      return deliverablesTable(content.validation);
    case 'baselines':
      return content.baselines ? baselinesTable(content.baselines.facts) : '';
    case 'ablations':
      return content.ablations ? ablationsTable(content.ablations) : '';
  }
}

function numbersAppendix(content: PaperContent, tables: readonly DocumentTable[]): string {
  const tableText = tables.map((table) => markdownTable(table, content)).join('\n\n');
  const traces = traceNumbers(`${tracedText(content)}\n\n${tableText}`, numberSources(content));
  const lines = [
    '\\section{Numbers in this paper}',
    'Every number of the text and tables above and the fact it comes from (a path into the facts: \\texttt{analysis} computed from the run history, \\texttt{validation} the deliverable checks, \\texttt{spec} the experiment spec, \\texttt{baselines} the baseline statistics). A number no fact backs is marked.',
  ];
  if (traces.length === 0) lines.push('', 'There are no numbers.');
  else
    lines.push(
      '\\begin{itemize}\\small',
      ...traces.map(
        (trace) =>
          `\\item ${latexEscape(trace.text)}: ${trace.source === null ? '\\textbf{not found in the facts}' : tt(trace.source)}`,
      ),
      '\\end{itemize}',
    );
  return lines.join('\n');
}

/**
 * The paper draft as a LaTeX document for `pdflatex` (article class, `color` package): title and byline,
 * abstract, introduction, method, results with every table and figure (numbered as the writer was told),
 * discussion, conclusion, and an appendix tracing each number to its fact.
 */
export function renderPaperLatex(content: PaperContent): string {
  const { draft } = content;
  const tables = documentTables({
    analysis: content.analysis,
    validation: content.validation,
    baselines: content.baselines?.facts ?? null,
    ablations: content.ablations,
  });
  return [
    '% Paper draft written by Labline from the results of one experiment.',
    '% Compile with: pdflatex paper.tex',
    '\\documentclass[11pt]{article}',
    '\\usepackage{color}',
    `\\title{${latexEscape(draft.title)}}`,
    `\\author{Labline draft for \\texttt{${latexEscape(content.spec.experiment_id)}}\\\\\\small written by ${latexEscape(content.writtenBy)}}`,
    '\\date{}',
    '\\begin{document}',
    '\\maketitle',
    '\\begin{abstract}',
    paragraphs(draft.abstract),
    '\\end{abstract}',
    '\\section{Introduction}',
    paragraphs(draft.introduction),
    '\\section{Method}',
    paragraphs(draft.method),
    '\\section{Results}',
    paragraphs(draft.results),
    ...tables.map((table) => tableFloat(table, content)),
    ...content.figures.map(figureFloat),
    '\\section{Discussion}',
    paragraphs(draft.discussion),
    '\\section{Conclusion}',
    paragraphs(draft.conclusion),
    '\\clearpage',
    '\\appendix',
    numbersAppendix(content, tables),
    '\\end{document}',
    '',
  ].join('\n');
}
