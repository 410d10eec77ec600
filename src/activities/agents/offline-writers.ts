import type { HypothesisVerdict } from '../../experiment';
import { writeReportNarrative } from './offline-report';
import type { BlogPost, PaperDraft, WriterFacts } from './schemas';

// The blog and paper writers without a model: the report narrative (written by rules from the same facts)
// arranged for each audience, with the figures and tables cited by number. Every number comes from the
// narrative, which passes the grounding check, or from the facts.

const VERDICT_HEADLINES: Record<HypothesisVerdict, string> = {
  supported: 'the hypothesis held',
  not_supported: 'the hypothesis did not hold',
  inconclusive: 'an open question',
};

function tableOf(facts: WriterFacts, kind: WriterFacts['tables'][number]['kind']): string | undefined {
  const table = facts.tables.find((candidate) => candidate.kind === kind);
  return table ? `Table ${table.number}` : undefined;
}

function baselinesParagraph(facts: WriterFacts): string {
  if (!facts.baselines) return '';
  const table = tableOf(facts, 'baselines');
  return [
    facts.baselines.interpretation.summary,
    ...facts.baselines.interpretation.comparisons.map((reading) => reading.interpretation),
    table ? `${table} has every statistic.` : '',
  ]
    .filter(Boolean)
    .join(' ');
}

function nextSteps(facts: WriterFacts): string {
  const table = tableOf(facts, 'ablations');
  if (facts.ablations && facts.ablations.proposals.length > 0)
    return `${facts.ablations.summary}${table ? ` ${table} lists them with their rationale.` : ''}`;
  const recommendations = facts.performance?.recommendations ?? [];
  return recommendations.length > 0
    ? `Next: ${recommendations.slice(0, 3).join('; ')}.`
    : 'Next: repeat the run with other seeds before drawing conclusions.';
}

function paragraphs(...parts: string[]): string {
  return parts.filter((part) => part.trim() !== '').join('\n\n');
}

/** The blog post by rules: what was tested, what happened, what stood out, how it compares, what next. */
export function writeBlogPost(facts: WriterFacts): BlogPost {
  const narrative = writeReportNarrative(facts);
  const question = facts.experiment.research_question.trim();
  const sections = [
    {
      heading: 'What we tested',
      body: paragraphs(
        `We set out to test one claim: ${facts.experiment.hypothesis.trim()}`,
        question ? `The question behind it: ${question}` : '',
      ),
    },
    {
      heading: 'What happened',
      // The narrative's results cite the tables and figures (see `citationSentence`).
      body: paragraphs(narrative.hypothesis_outcome.explanation, narrative.results),
    },
    { heading: 'What stood out', body: narrative.analysis },
  ];
  const baselines = baselinesParagraph(facts);
  if (baselines) sections.push({ heading: 'How it compares', body: baselines });
  sections.push({ heading: 'What next', body: nextSteps(facts) });
  return {
    title: `${facts.experiment.name}: ${VERDICT_HEADLINES[facts.verdict]}`,
    lead: narrative.summary,
    sections,
  };
}

/** The paper draft by rules, section by section from the report narrative and the facts. */
export function writePaperDraft(facts: WriterFacts): PaperDraft {
  const narrative = writeReportNarrative(facts);
  const description = facts.experiment.research_question.trim();
  const deliverables = tableOf(facts, 'deliverables');
  return {
    title: facts.experiment.name,
    abstract: `${narrative.summary} ${narrative.hypothesis_outcome.explanation}`,
    introduction: paragraphs(
      `This report tests the hypothesis that ${facts.experiment.hypothesis.trim().replace(/^./, (c) => c.toLowerCase())}`,
      description ? `It addresses the question: ${description}` : '',
    ),
    method: paragraphs(
      'The experiment ran one training job with the hyperparameters of its spec and checked the tracked run against the deliverables the spec declared.',
      deliverables ? `${deliverables} lists each deliverable with what was expected and what was found.` : '',
      'Curve statistics (final and best values, plateaus, instability, divergence and overfitting) were computed in code from the logged history.',
    ),
    results: narrative.results,
    discussion: paragraphs(narrative.analysis, baselinesParagraph(facts)),
    conclusion: paragraphs(narrative.hypothesis_outcome.explanation, nextSteps(facts)),
  };
}
