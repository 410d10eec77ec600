/**
 * The proposers of search campaigns: a model behind an OpenAI-compatible API, the offline rules, or a script
 * of proposals. Each answers one proposal for trial n, or says it has none left; a refusal or an answer that
 * does not fit the schema is an outcome of the trial, not a failure of the search.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { FailureType, TrialProposal, type SearchSpec, type TrialSummary } from '../../experiment';
import { PROMPTS_DIR } from '../agents/prompts';
import { AgentError, type AgentProvider } from '../agents/provider';
import { offlineProposal } from './offline-proposer';

/** The proposer prompt's file; a new wording is a new file and version. */
export const PROPOSER_PROMPT_FILE = 'proposer.v1.md';

/** What the proposer of trial n is given. */
export interface ProposeInput {
  proposer: SearchSpec['proposer'];
  n: number;
  objective: SearchSpec['objective'];
  limits: SearchSpec['limits'];
  /** The incumbent's editable files and the repository's file list (not needed by scripted proposers). */
  context?: { files: { path: string; content: string }[]; paths: string[] };
  history: TrialSummary[];
  /** The previous answer for this trial and why it was refused: the proposer answers once more. */
  feedback?: { previous: TrialProposal; problem: string };
  /** Longest wait for a model, in milliseconds. */
  timeoutMs?: number;
}

/** A proposal, or why there is none, with what the model cost. */
export type ProposeResult =
  | { kind: 'proposal'; proposal: TrialProposal; llm_usd: number; model: string }
  /** The proposer answered nothing usable for this trial (a refusal, an invalid answer). */
  | { kind: 'no_answer'; reason: string; llm_usd: number }
  /** The proposer has no more proposals: the search ends. */
  | { kind: 'exhausted'; reason: string; llm_usd: number };

/** A script of proposals: trial n takes the n-th; `revision` answers when it is sent back. */
export const ScriptedProposals = z.strictObject({
  proposals: z.array(TrialProposal.extend({ revision: TrialProposal.optional() })),
});

/**
 * One proposal for trial `input.n`.
 *
 * @throws AgentError of type `AgentUnavailable` (retryable), or of a type that retrying cannot fix when the
 *   model's settings are wrong (refused key, bad request): the search ends with it
 */
export async function propose(input: ProposeInput, provider: AgentProvider): Promise<ProposeResult> {
  switch (input.proposer.kind) {
    case 'scripted':
      return scriptedProposal(input.proposer.file, input.n, input.feedback !== undefined);
    case 'offline': {
      const proposal = offlineProposal({
        files: input.context?.files ?? [],
        n: input.n,
        earlierDiffs: input.history.map((trial) => trial.diff),
      });
      return proposal
        ? { kind: 'proposal', proposal, llm_usd: 0, model: 'offline' }
        : {
            kind: 'exhausted',
            reason: 'the offline proposer has tried every constant of the editable files',
            llm_usd: 0,
          };
    }
    case 'openai':
      return modelProposal(input, provider);
  }
}

function scriptedProposal(file: string, n: number, sentBack: boolean): ProposeResult {
  let script: z.infer<typeof ScriptedProposals>;
  try {
    script = ScriptedProposals.parse(parseYaml(readFileSync(file, 'utf8')));
  } catch (error) {
    throw new AgentError(
      FailureType.InvalidSpec,
      `the scripted proposals ${file} cannot be read as { proposals: [{ hypothesis, diff, revision? }] }: ${(error as Error).message}`,
    );
  }
  const entry = script.proposals[n - 1];
  if (!entry)
    return {
      kind: 'exhausted',
      reason: `the scripted proposals ran out after ${script.proposals.length}`,
      llm_usd: 0,
    };
  // A script cannot learn from feedback; it answers its revision when it has one, else the same again.
  const proposal = sentBack && entry.revision ? entry.revision : entry;
  return {
    kind: 'proposal',
    proposal: { hypothesis: proposal.hypothesis, diff: proposal.diff },
    llm_usd: 0,
    model: 'scripted',
  };
}

let promptText: string | undefined;
function proposerPrompt(): string {
  promptText ??= readFileSync(path.join(PROMPTS_DIR, PROPOSER_PROMPT_FILE), 'utf8').trim();
  return promptText;
}

async function modelProposal(input: ProposeInput, provider: AgentProvider): Promise<ProposeResult> {
  const facts = {
    objective: input.objective,
    files: input.context?.files ?? [],
    repository: input.context?.paths ?? [],
    limits: input.limits,
    trials: input.history,
    ...(input.feedback ? { feedback: input.feedback } : {}),
  };
  try {
    const answer = await provider.call({
      agent: 'proposer',
      instructions: proposerPrompt(),
      facts,
      schema: TrialProposal,
      promptVersion: PROPOSER_PROMPT_FILE.replace(/\.md$/, ''),
      ...(input.timeoutMs ? { timeoutMs: input.timeoutMs } : {}),
    });
    return { kind: 'proposal', proposal: answer.output, llm_usd: answer.costUsd, model: answer.model };
  } catch (error) {
    if (!(error instanceof AgentError)) throw error;
    const paid = (error.details.calls ?? []).reduce((sum, call) => sum + call.costUsd, 0);
    if (
      error.failureType === FailureType.AgentRefused ||
      error.failureType === FailureType.AgentOutputInvalid
    )
      return {
        kind: 'no_answer',
        reason: `the model gave no usable proposal: ${error.message}`,
        llm_usd: paid,
      };
    throw error;
  }
}
