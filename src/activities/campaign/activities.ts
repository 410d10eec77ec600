/** Campaign activities: read the proposals to review, and write the campaign report. */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { AblationProposal, FailureType, type AblationProposal as Proposal } from '../../experiment';
import type { NotifyActivities } from '../notify/activities';
import type { RunTracker } from '../tracking/run-tracker';
import { writeCampaignReport, type CampaignReportInput } from './report';

/** Where the ablation designer leaves its proposals: `<runs_root>/<experiment-id>/ablations.json`. */
export const ABLATIONS_FILE = 'ablations.json';

export function createCampaignActivities(deps: { tracker: RunTracker }) {
  return {
    async loadAblationProposals(input: { experimentId: string; runsRoot: string }): Promise<Proposal[]> {
      const file = path.join(input.runsRoot, input.experimentId, ABLATIONS_FILE);
      const text = await fs.readFile(file, 'utf8').catch(() => undefined);
      if (text === undefined) {
        throw ApplicationFailure.nonRetryable(
          `${input.experimentId} has no proposed ablations (${file} is missing): run it with analysis_pipeline.analyses including "ablations" first`,
          FailureType.InvalidSpec,
        );
      }
      const parsed = z.object({ proposals: z.array(AblationProposal) }).safeParse(JSON.parse(text));
      if (!parsed.success) {
        throw ApplicationFailure.nonRetryable(
          `${file} is not a list of proposals: ${parsed.error.message}`,
          FailureType.InvalidSpec,
        );
      }
      return parsed.data.proposals;
    },

    async writeCampaignReport(input: CampaignReportInput) {
      const written = await writeCampaignReport(input, deps.tracker);
      return { reportPath: written.reportPath, resultsPath: written.resultsPath };
    },
  };
}

export type CampaignActivities = ReturnType<typeof createCampaignActivities> & NotifyActivities;
