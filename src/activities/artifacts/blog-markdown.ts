import type {
  AnalysisFacts,
  BaselineFacts,
  ExperimentSpec,
  ResultsPayload,
  ValidationReport,
} from '../../experiment';
import { documentReferences, traceNumbers } from '../../experiment';
import { metricCode } from '../agents/offline-performance';
import type { AblationPlan, BlogPost, DocumentTable } from '../agents/schemas';
import { documentTables } from './document-plan';
import {
  ablationsTable,
  baselinesTable,
  deliverablesTable,
  metricsTable,
  numbersSection,
} from './markdown-tables';
import type { ReportChart } from './report-markdown';
import { numberSources } from './report-markdown';

// The blog post as Markdown: the agent's sections, each followed by the figures and tables it cites first,
// the ones no section cites at the end, and the numbers section that traces each number to its fact.

/** Everything the blog post is written from. */
export interface BlogContent {
  spec: ExperimentSpec;
  post: BlogPost;
  analysis: AnalysisFacts;
  validation: ValidationReport | null;
  results: ResultsPayload;
  baselines: { facts: BaselineFacts } | null;
  ablations: AblationPlan | null;
  /** The charts, numbered as the writer was told. */
  charts: readonly ReportChart[];
  /** Who wrote it, e.g. `gpt-4o-mini, prompt blog.v1+rules.v1`. */
  writtenBy: string;
}

function tableMarkdown(table: DocumentTable, content: BlogContent): string {
  const body = (() => {
    switch (table.kind) {
      case 'metrics':
        return metricsTable(content.analysis);
      case 'deliverables':
        return deliverablesTable(content.validation, content.results.deliverables_status);
      case 'baselines':
        return content.baselines ? baselinesTable(content.baselines.facts) : '';
      case 'ablations':
        return content.ablations ? ablationsTable(content.ablations) : '';
    }
  })();
  return `*Table ${table.number}: ${table.title}.*\n\n${body}`;
}

function chartMarkdown(chart: ReportChart): string {
  return `![Figure ${chart.number}: ${chart.title}](${chart.file})\n\n*Figure ${chart.number}: ${chart.title} (${chart.metrics.map(metricCode).join(', ')}).*`;
}

/**
 * The blog post: title, lead, the sections with each figure and table placed after the first section that
 * cites it (the rest under "Figures and tables"), a byline, and the numbers section.
 */
export function renderBlogMarkdown(content: BlogContent): string {
  const tables = documentTables({
    analysis: content.analysis,
    validation: content.validation,
    baselines: content.baselines?.facts ?? null,
    ablations: content.ablations,
  });
  const placedFigures = new Set<number>();
  const placedTables = new Set<number>();
  const parts = [`# ${content.post.title}`, `*${content.post.lead.replace(/\s*\n\s*/g, ' ')}*`];
  for (const section of content.post.sections) {
    parts.push(`## ${section.heading}`, section.body);
    const cited = documentReferences(section.body);
    for (const chart of content.charts)
      if (cited.figures.includes(chart.number) && !placedFigures.has(chart.number)) {
        placedFigures.add(chart.number);
        parts.push(chartMarkdown(chart));
      }
    for (const table of tables)
      if (cited.tables.includes(table.number) && !placedTables.has(table.number)) {
        placedTables.add(table.number);
        parts.push(tableMarkdown(table, content));
      }
  }
  const restCharts = content.charts.filter((chart) => !placedFigures.has(chart.number));
  const restTables = tables.filter((table) => !placedTables.has(table.number));
  if (restCharts.length > 0 || restTables.length > 0)
    parts.push(
      '## Figures and tables',
      ...restCharts.map(chartMarkdown),
      ...restTables.map((table) => tableMarkdown(table, content)),
    );
  parts.push(
    `*Written by ${content.writtenBy} from the results of \`${content.spec.experiment_id}\`; the full technical report is [report.md](report.md).*`,
  );
  const body = parts.join('\n\n');
  const traces = traceNumbers(body, numberSources(content));
  return `${body}\n\n${numbersSection('Numbers in this post', traces, 'above')}\n`;
}
