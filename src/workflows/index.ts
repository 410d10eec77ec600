// Every workflow Labline runs, by name; workers bundle this module.
export { experimentWorkflow, approveSignal, rejectSignal, statusQuery } from './experiment';
export type { ExperimentInput, ExperimentResult } from './experiment';
export {
  campaignWorkflow,
  campaignApproveSignal,
  campaignRejectSignal,
  reviewProposalSignal,
  campaignStatusQuery,
} from './campaign';
export type { CampaignInput, CampaignResult, CampaignStatus } from './campaign';
