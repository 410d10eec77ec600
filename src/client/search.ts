/**
 * The typed client API for search campaigns: load a campaign file with a `search` section, submit it (its
 * base's code pinned to a commit), read its status, control it (pause, resume, stop, budget) and edit the
 * proposal that waits for review.
 */
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import * as path from 'node:path';
import { z } from 'zod';
import {
  ExperimentSpec,
  SearchCampaignSpec,
  type SearchControl,
  type SearchStatus,
  type Trial,
  type TrialEdit,
  type WorkflowSettingsInput,
} from '../experiment';
import { controlSearchUpdate, editTrialUpdate, searchStatusQuery, searchWorkflow } from '../workflows';
import { pinnedCode } from './code-pinning';
import { InvalidSpecError, loadSpecFile } from './spec-file';
import { needingWorker } from './worker-presence';
import { requireLablineId } from './ids';

export type SearchHandle = WorkflowHandle<typeof searchWorkflow>;

/**
 * A search campaign from its parsed file: `base` (a spec file, relative to the campaign file) loaded and
 * validated, and a scripted proposer's file made absolute.
 *
 * @throws InvalidSpecError naming each problem with its place in the file
 */
export function searchCampaignFrom(raw: unknown, file: string): SearchCampaignSpec {
  const parsed = SearchCampaignSpec.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  - ${i.path.join('.') || '(top level)'}: ${i.message}`);
    throw new InvalidSpecError(`${file} is not a valid search campaign:\n${problems.join('\n')}`);
  }
  const campaign = parsed.data;
  const dir = path.dirname(path.resolve(file));
  if (typeof campaign.base !== 'string')
    throw new InvalidSpecError(
      `${file}: base must be the path of an experiment spec file, relative to the campaign file.`,
    );
  const base = loadSpecFile(path.resolve(dir, campaign.base));
  if (!base.code)
    throw new InvalidSpecError(
      `${file}: the base ${campaign.base} has no code section; a search edits the code, so the base needs one ` +
        '(code: { ref: HEAD }, in the repository that holds the training code).',
    );
  campaign.base = base;
  if (campaign.search.proposer.kind === 'scripted')
    campaign.search.proposer = { kind: 'scripted', file: path.resolve(dir, campaign.search.proposer.file) };
  return campaign;
}

/**
 * Starts the search (or finds it running) after pinning its base's code. Uncommitted changes are refused:
 * every trial is a commit on top of the base's, so the base must be one.
 */
export async function submitSearch(options: {
  client: Client;
  campaign: SearchCampaignSpec;
  settings: WorkflowSettingsInput & { task_queues?: { workflow?: string } };
}): Promise<{ handle: SearchHandle; alreadyRunning: boolean }> {
  const { client, settings } = options;
  const checked = SearchCampaignSpec.safeParse(options.campaign);
  if (!checked.success)
    throw new InvalidSpecError(
      `Invalid search campaign; nothing was started:\n${z.prettifyError(checked.error)}`,
    );
  const campaign = checked.data;
  const base = ExperimentSpec.parse(campaign.base);
  const code = base.code?.pinned
    ? base.code
    : await pinnedCode(
        { ...(base.code ?? {}), dirty: 'refuse', ref: base.code?.ref ?? 'HEAD', keep_worktree: false },
        {
          experimentId: campaign.campaign_id,
          runsRoot: settings.runs_root,
          workingDirectory: base.training.working_directory,
        },
      );
  if (code.pinned?.patch)
    throw new InvalidSpecError(
      `${campaign.campaign_id}: the base has uncommitted changes; commit them first: every trial is a commit on top of the base commit.`,
    );
  const pinned = { ...campaign, base: { ...base, code } };
  try {
    const handle = await client.workflow.start(searchWorkflow, {
      workflowId: campaign.campaign_id,
      taskQueue: settings.task_queues?.workflow ?? 'labline',
      args: [{ campaign: pinned, settings }],
      searchAttributes: { LablineStage: ['registered'], LablineCampaign: [campaign.campaign_id] },
      staticSummary: `Search: ${campaign.name}`,
      memo: { name: campaign.name, kind: 'search' },
    });
    return { handle, alreadyRunning: false };
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError)
      return {
        handle: client.workflow.getHandle<typeof searchWorkflow>(campaign.campaign_id),
        alreadyRunning: true,
      };
    throw error;
  }
}

export async function searchStatus(client: Client, campaignId: string): Promise<SearchStatus> {
  requireLablineId(campaignId);
  return needingWorker(client, campaignId, () =>
    client.workflow.getHandle<typeof searchWorkflow>(campaignId).query(searchStatusQuery),
  );
}

/** Pauses, resumes, stops or re-budgets the search; returns what it has spent. */
export async function controlSearch(
  client: Client,
  campaignId: string,
  control: SearchControl,
): Promise<SearchStatus['usage']> {
  return searchUpdate(client, campaignId, control.action, (handle) =>
    handle.executeUpdate(controlSearchUpdate, { args: [control] }),
  );
}

/** Replaces the diff (and hypothesis) of the proposal waiting for review; refused when it fails the checks. */
export async function editTrial(client: Client, campaignId: string, edit: TrialEdit): Promise<Trial> {
  return searchUpdate(client, campaignId, `edit of trial ${edit.trial}`, (handle) =>
    handle.executeUpdate(editTrialUpdate, { args: [edit] }),
  );
}

/** A search refused an update: nothing changed. The message is the search's reason. */
export class SearchUpdateRefused extends Error {
  constructor(
    readonly campaignId: string,
    readonly what: string,
    readonly reason: string,
  ) {
    super(`${campaignId} refused the ${what}: ${reason}. Nothing changed.`);
    this.name = 'SearchUpdateRefused';
  }
}

/** An update of a search, waiting for a worker as decisions do; a refusal carries the search's reason. */
async function searchUpdate<T>(
  client: Client,
  campaignId: string,
  what: string,
  update: (handle: WorkflowHandle<typeof searchWorkflow>) => Promise<T>,
): Promise<T> {
  requireLablineId(campaignId);
  try {
    return await needingWorker(client, campaignId, () =>
      update(client.workflow.getHandle<typeof searchWorkflow>(campaignId)),
    );
  } catch (error) {
    if (error instanceof WorkflowUpdateFailedError)
      throw new SearchUpdateRefused(campaignId, what, error.cause?.message ?? error.message);
    // A closed workflow takes no update, and the server says "not found" for it: say that it ended.
    if (error instanceof WorkflowNotFoundError) {
      const closed = await client.workflow
        .getHandle(campaignId)
        .describe()
        .catch(() => undefined);
      if (closed && closed.status.name !== 'RUNNING')
        throw new SearchUpdateRefused(
          campaignId,
          what,
          `the search has ended (${closed.status.name.toLowerCase()}); there is nothing to change`,
        );
    }
    throw error;
  }
}
