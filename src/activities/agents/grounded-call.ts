import type { z } from 'zod';
import type { AgentName, AnalysisReportRecord, LlmCallRecord, NumberSources } from '../../experiment';
import {
  checkGrounding,
  FailureType,
  markUnverifiedInOutput,
  outputTexts,
  UNVERIFIED_MARK,
} from '../../experiment';
import { agentPrompt } from './prompts';
import type { AgentCall, AgentProvider, AgentRequest, AgentResponse } from './provider';
import { AgentError } from './provider';

// One agent step: the call, the checks in code (content rules, then the grounding of every number), one
// revision with the list of problems when a check fails, and the record of what it cost and what it could
// not ground. Numbers still unverified after the revision are marked in the text; content that still fails
// its rules fails the step (AgentOutputInvalid), so the workflow asks a person.

/** The experiment's LLM budget as an agent step sees it. */
export interface AgentBudget {
  /** The experiment's budget in US dollars (`budgets.llm_cost_usd`). */
  limit_usd: number;
  /** What the experiment's agents spent so far, in US dollars. */
  spent_usd: number;
  /** Whether a person approved spending past the budget at the `budget` gate. */
  approved_over: boolean;
}

/** What every agent activity takes besides its own facts. */
export interface AgentStepInput {
  /** The experiment, for messages. */
  experimentId: string;
  /** The budget; a call that could exceed it is not made (the step answers `over_budget`). */
  budget: AgentBudget;
  /** Write with the offline rules instead of the model (the budget gate refused more spending). */
  offline?: boolean;
}

/** An agent step's result: its output with the record for the results, or why it did not call the model. */
export type AgentStep<Output> =
  | { status: 'completed'; output: Output; record: AnalysisReportRecord }
  | {
      status: 'over_budget';
      agent: AgentName;
      /** The most the next call could cost. */
      estimate_usd: number;
      /** Calls this step made (and paid for) before it stopped: a first answer before a revision. */
      calls: LlmCallRecord[];
    };

/** What an agent step does, besides calling the model. */
export interface GroundedTask<Schema extends z.ZodType> {
  agent: AgentName;
  /** The facts the agent works from (computed in code). */
  facts: unknown;
  /** The answer's schema. */
  schema: Schema;
  /** The computed values its numbers must stand for; may include values of its own answer (proposals). */
  sources: (output: z.infer<Schema>) => NumberSources;
  /** Rules beyond the schema, as problems in words (empty: none broken). */
  check?: (output: z.infer<Schema>) => string[];
  /** Keys whose values are not prose, left out of the grounding check and the marking. */
  skipKeys?: readonly string[];
  /** The record's title and summary. */
  title: (output: z.infer<Schema>) => string;
  summary: (output: z.infer<Schema>) => string;
}

/** The provider for a step: the model, or the offline rules when the step says so. */
export interface StepProviders {
  model: AgentProvider;
  offline: AgentProvider;
}

function callRecords(calls: readonly AgentCall[], revision: boolean): LlmCallRecord[] {
  return calls.map((call) => ({
    purpose: revision ? (call.purpose === 'answer' ? 'revision' : 'revision_schema_retry') : call.purpose,
    model: call.model,
    prompt_tokens: call.usage.promptTokens,
    completion_tokens: call.usage.completionTokens,
    cost_usd: call.costUsd,
  }));
}

function spent(calls: readonly LlmCallRecord[]): number {
  return calls.reduce((sum, call) => sum + call.cost_usd, 0);
}

/** A failed agent step: the provider's (or the checks') error, with every call the step paid for. */
export class AgentStepError extends Error {
  override readonly name = 'AgentStepError';

  constructor(
    readonly error: AgentError,
    readonly calls: LlmCallRecord[],
  ) {
    super(error.message, { cause: error });
  }
}

/**
 * Runs one agent step; see the module comment. `timeLeftMs` is asked before each call, so that the calls
 * end before the activity's start-to-close timeout.
 *
 * @throws AgentStepError with the provider's AgentError, or `AgentOutputInvalid` when the revised answer
 *   still breaks a rule
 */
export async function runGroundedStep<Schema extends z.ZodType>(
  providers: StepProviders,
  task: GroundedTask<Schema>,
  input: AgentStepInput,
  timeLeftMs: () => number,
): Promise<AgentStep<z.infer<Schema>>> {
  const provider = input.offline ? providers.offline : providers.model;
  const prompt = agentPrompt(task.agent);
  const request: AgentRequest<Schema> = {
    agent: task.agent,
    instructions: prompt.text,
    facts: task.facts,
    schema: task.schema,
    promptVersion: prompt.version,
  };
  const calls: LlmCallRecord[] = [];
  const overBudget = (next: AgentRequest<Schema>): number | undefined => {
    const estimate = provider.estimate(next).usd;
    const { budget } = input;
    const exceeds = budget.spent_usd + spent(calls) + estimate > budget.limit_usd;
    return exceeds && !budget.approved_over && estimate > 0 ? estimate : undefined;
  };
  const call = async (next: AgentRequest<Schema>, revision: boolean) => {
    try {
      const response: AgentResponse<z.infer<Schema>> = await provider.call({
        ...next,
        timeoutMs: timeLeftMs(),
      });
      calls.push(...callRecords(response.calls, revision));
      return response;
    } catch (error) {
      if (!(error instanceof AgentError)) throw error;
      throw new AgentStepError(error, [...calls, ...callRecords(error.details.calls ?? [], revision)]);
    }
  };

  const firstEstimate = overBudget(request);
  if (firstEstimate !== undefined)
    return { status: 'over_budget', agent: task.agent, estimate_usd: firstEstimate, calls };

  const first = await call(request, false);
  let output = first.output;
  let problems = task.check?.(output) ?? [];
  let grounding = checkGrounding(
    outputTexts(output, task.skipKeys).map((entry) => entry.text),
    task.sources(output),
  );
  let note: string | undefined;

  if (problems.length > 0 || grounding.unverified.length > 0) {
    const revision: AgentRequest<Schema> = {
      ...request,
      revision: {
        previous: output,
        problems: [
          ...problems,
          ...(grounding.unverified.length > 0
            ? [
                `these numbers are not in the facts (exactly or rounded): ${grounding.unverified.join(', ')}. ` +
                  'Remove each one, or replace it with the number from the facts that you meant.',
              ]
            : []),
        ],
      },
    };
    const revisionEstimate = overBudget(revision);
    if (revisionEstimate !== undefined && problems.length > 0)
      return { status: 'over_budget', agent: task.agent, estimate_usd: revisionEstimate, calls };
    if (revisionEstimate !== undefined)
      note =
        'Not revised: a revision could exceed the LLM budget, so its unverified numbers are only marked.';
    else {
      const revised = await call(revision, true);
      output = revised.output;
      problems = task.check?.(output) ?? [];
      if (problems.length > 0)
        throw new AgentStepError(
          new AgentError(
            FailureType.AgentOutputInvalid,
            `the "${task.agent}" agent's answer still breaks its rules after one revision: ${problems.join('; ')}`,
          ),
          calls,
        );
      grounding = checkGrounding(
        outputTexts(output, task.skipKeys).map((entry) => entry.text),
        task.sources(output),
      );
    }
  }

  if (grounding.unverified.length > 0)
    output = markUnverifiedInOutput(output, grounding.unverified, task.skipKeys);
  const record: AnalysisReportRecord = {
    agent: task.agent,
    title: task.title(output),
    summary: task.summary(output),
    model: first.model,
    prompt_version: first.promptVersion,
    calls,
    cost_usd: spent(calls),
    verified_numbers: grounding.verified,
    unverified_numbers: grounding.unverified,
  };
  if (grounding.unverified.length > 0)
    note = `${note ? `${note} ` : ''}Numbers no computed value backs are marked ${UNVERIFIED_MARK}.`;
  if (input.offline)
    note = `${note ? `${note} ` : ''}Written by the offline rules: the budget gate stopped further model calls.`;
  if (note) record.note = note;
  return { status: 'completed', output, record };
}
