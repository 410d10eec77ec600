// Every workflow Labline runs, by name; workers bundle this module.
export { experimentWorkflow, statusQuery } from './experiment';
export { approveSignal, decideUpdate, gatesQuery, rejectSignal, type GatesView } from './approval-gate';
export type { ExperimentInput, ExperimentResult } from './experiment';
export { campaignWorkflow, reviewProposalSignal, campaignStatusQuery } from './campaign';
export type { CampaignInput, CampaignResult, CampaignStatus } from './campaign';
export { searchWorkflow, searchStatusQuery, controlSearchUpdate, editTrialUpdate } from './search';
export type { SearchInput, SearchResult, SearchControlRecord } from './search';
