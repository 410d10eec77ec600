import type { AnalysisFacts, BaselineFacts, ValidationReport } from '../../experiment';
import type { AblationPlan, DocumentFigure, DocumentTable } from '../agents/schemas';
import { metricGroup } from './charts';

// The figures and tables of an experiment's documents, numbered before anything is written: the writers are
// told "Figure 1 is the loss curves, Table 2 the deliverables" and cite them, and the renderers number them
// the same way. Derived from the facts alone (no I/O), so the agents' worker and the report writer agree.

/** Charts at most, as `renderTrainingCharts` draws by default. */
export const MAX_FIGURES = 20;

/**
 * One figure per metric group (train and eval sides of a quantity together) that has a finite value, in the
 * order of the analysis (metric names sorted), numbered from 1.
 */
export function documentFigures(analysis: AnalysisFacts): DocumentFigure[] {
  const groups = new Map<string, string[]>();
  for (const [metric, facts] of Object.entries(analysis.metrics)) {
    if (facts.best === null) continue;
    const group = metricGroup(metric);
    groups.set(group, [...(groups.get(group) ?? []), metric]);
  }
  return [...groups]
    .slice(0, MAX_FIGURES)
    .map(([title, metrics], index) => ({ number: index + 1, title, metrics }));
}

/** What the tables are made from. */
export interface DocumentTableSources {
  analysis: AnalysisFacts;
  validation: ValidationReport | null;
  baselines: BaselineFacts | null;
  ablations: AblationPlan | null;
}

/**
 * The tables, numbered from 1 in this order, each only when it has rows: key metrics, deliverables, the
 * comparison with baselines, the proposed follow-up experiments.
 */
export function documentTables(sources: DocumentTableSources): DocumentTable[] {
  const tables: Omit<DocumentTable, 'number'>[] = [];
  if (Object.keys(sources.analysis.metrics).length > 0)
    tables.push({ kind: 'metrics', title: 'Key metrics: final and best values' });
  if (sources.validation && sources.validation.results.length > 0)
    tables.push({
      kind: 'deliverables',
      title: 'Deliverables: what the spec asked for and what the run holds',
    });
  if (sources.baselines && sources.baselines.comparisons.length > 0)
    tables.push({ kind: 'baselines', title: 'Comparison with baselines' });
  if (sources.ablations && sources.ablations.proposals.length > 0)
    tables.push({ kind: 'ablations', title: 'Proposed follow-up experiments' });
  return tables.map((table, index) => ({ ...table, number: index + 1 }));
}

/** The number of the table of a kind, if there is one. */
export function tableNumber(
  tables: readonly DocumentTable[],
  kind: DocumentTable['kind'],
): number | undefined {
  return tables.find((table) => table.kind === kind)?.number;
}
