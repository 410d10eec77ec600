/**
 * The search campaign's activities: the git work on the repository (context for the proposer, checks,
 * trial commits) on the GPU queue's hosts, the proposer on the agents queue, and the failure description
 * and report on the workflow queue.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { FailureType, redactSecrets } from '../../experiment';
import { AgentError, type AgentProvider } from '../agents/provider';
import { ATTEMPT_FILES, attemptsDirOf } from '../training/local-attempt';
import { SLURM_ATTEMPT_FILES } from '../training/slurm';
import { checkProposal, commitTrial, editableContext } from './proposal-checks';
import { propose, type ProposeInput, type ProposeResult } from './proposers';
import { writeSearchReport } from './report';

/** Lines of a failed trial's log the proposer and the report are given. */
const LOG_TAIL_LINES = 40;

export function createSearchActivities(deps: { provider: AgentProvider }) {
  return {
    searchContext: editableContext,

    checkTrialProposal: checkProposal,

    commitTrial,

    async proposeTrial(input: ProposeInput): Promise<ProposeResult> {
      try {
        return await propose(input, deps.provider);
      } catch (error) {
        if (!(error instanceof AgentError)) throw error;
        throw ApplicationFailure.create({
          type: error.failureType,
          message: error.message,
          nonRetryable: error.failureType !== FailureType.AgentUnavailable,
          nextRetryDelay: error.details.retryAfterMs,
        });
      }
    },

    /** The end of the trainer's log of a failed trial's last launch, secrets redacted. */
    async describeFailedTrial(input: {
      runsRoot: string;
      experimentId: string;
    }): Promise<{ logTail?: string }> {
      const attempts = attemptsDirOf(path.join(input.runsRoot, input.experimentId));
      const logs: { file: string; mtimeMs: number }[] = [];
      for (const key of await fs.readdir(attempts).catch(() => [] as string[])) {
        for (const name of [ATTEMPT_FILES.log, SLURM_ATTEMPT_FILES.log]) {
          const file = path.join(attempts, key, name);
          const stat = await fs.stat(file).catch(() => undefined);
          if (stat) logs.push({ file, mtimeMs: stat.mtimeMs });
        }
      }
      const latest = logs.sort((a, b) => b.mtimeMs - a.mtimeMs)[0];
      if (!latest) return {};
      const text = await fs.readFile(latest.file, 'utf8');
      return {
        logTail: redactSecrets(text.trimEnd().split('\n').slice(-LOG_TAIL_LINES).join('\n'), process.env),
      };
    },

    writeSearchReport,
  };
}

export type SearchActivities = ReturnType<typeof createSearchActivities>;
