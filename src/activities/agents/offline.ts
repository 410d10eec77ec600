import { z } from 'zod';
import { FailureType, type AgentName } from '../../experiment';
import { writeAblationPlan } from './offline-ablations';
import { writeBaselineInterpretation } from './offline-baselines';
import { writePerformanceAnalysis } from './offline-performance';
import { writeReportNarrative } from './offline-report';
import { writeBlogPost, writePaperDraft } from './offline-writers';
import type { AgentCostEstimate, AgentProvider, AgentRequest, AgentResponse } from './provider';
import { AgentError } from './provider';
import { AblationFacts, BaselineAgentFacts, PerformanceFacts, ReportFacts, WriterFacts } from './schemas';

/** The `model` the offline provider reports. */
export const OFFLINE_MODEL = 'offline';

function parseFacts<Schema extends z.ZodType>(
  agent: string,
  schema: Schema,
  facts: unknown,
): z.output<Schema> {
  const parsed = schema.safeParse(facts);
  if (parsed.success) return parsed.data;
  throw new AgentError(
    FailureType.AgentBadRequest,
    `the facts given to the offline "${agent}" agent do not fit its facts schema:\n${z.prettifyError(parsed.error)}`,
  );
}

/** The agents written by rules, by name; each takes its facts (unparsed) and returns its output. */
const OFFLINE_WRITERS: Readonly<Record<AgentName, (facts: unknown) => unknown>> = {
  performance: (facts) => writePerformanceAnalysis(parseFacts('performance', PerformanceFacts, facts)),
  baselines: (facts) => writeBaselineInterpretation(parseFacts('baselines', BaselineAgentFacts, facts)),
  ablations: (facts) => writeAblationPlan(parseFacts('ablations', AblationFacts, facts)),
  report: (facts) => writeReportNarrative(parseFacts('report', ReportFacts, facts)),
  blog: (facts) => writeBlogPost(parseFacts('blog', WriterFacts, facts)),
  paper: (facts) => writePaperDraft(parseFacts('paper', WriterFacts, facts)),
};

/**
 * Agents the offline provider can answer, each with its facts schema: `performance` (`PerformanceFacts`),
 * `baselines` (`BaselineAgentFacts`), `ablations` (`AblationFacts`), `report` (`ReportFacts`), `blog` and
 * `paper` (`WriterFacts`).
 */
export const OFFLINE_AGENTS: readonly string[] = Object.keys(OFFLINE_WRITERS);

/**
 * The provider used when no model is configured: it writes the analysis and the report narrative from the
 * computed facts by fixed rules, without any LLM. Same facts, same text; zero tokens, zero cost; every
 * number it writes is a fact (formatted as `src/experiment/grounding.ts` does). It ignores `instructions`: its rules are
 * the offline version of the prompts, and `promptVersion` is echoed as given.
 */
export class OfflineAgentProvider implements AgentProvider {
  async call<Schema extends z.ZodType>(
    request: AgentRequest<Schema>,
  ): Promise<AgentResponse<z.infer<Schema>>> {
    const writer = Object.hasOwn(OFFLINE_WRITERS, request.agent)
      ? OFFLINE_WRITERS[request.agent as AgentName]
      : undefined;
    if (!writer)
      throw new AgentError(
        FailureType.AgentBadRequest,
        `the offline provider has no "${request.agent}" agent; it writes ${OFFLINE_AGENTS.slice(0, -1).join(', ')} and ${OFFLINE_AGENTS.at(-1) ?? ''}. ` +
          'Configure a model in the Labline settings for other agents, or remove the agent from analysis_pipeline.',
      );
    // Parse with the caller's schema as any provider must: a caller asking for another shape learns it here.
    const parsed = request.schema.safeParse(writer(request.facts));
    if (!parsed.success)
      throw new AgentError(
        FailureType.AgentOutputInvalid,
        `the offline "${request.agent}" agent's output does not fit the requested schema:\n${z.prettifyError(parsed.error)}`,
      );
    return {
      output: parsed.data,
      usage: { promptTokens: 0, completionTokens: 0 },
      costUsd: 0,
      calls: [],
      model: OFFLINE_MODEL,
      promptVersion: request.promptVersion,
    };
  }

  /** Offline calls cost nothing. */
  estimate(): AgentCostEstimate {
    return { promptTokens: 0, maxCompletionTokens: 0, usd: 0 };
  }
}
