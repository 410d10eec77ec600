/** The typed client API for campaigns: load a campaign file, submit it, read its status, review proposals. */
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { CampaignSpec, type Waiting, type WorkflowSettingsInput } from '../experiment';
import {
  campaignStatusQuery,
  campaignWorkflow,
  reviewProposalSignal,
  type CampaignStatus,
} from '../workflows';
import { pinCampaignCode } from './code-pinning';
import { InvalidSpecError, loadSpecFile } from './spec-file';
import { needingWorker } from './worker-presence';
import { gatesOf } from './experiments';
import { requireLablineId } from './ids';

export type CampaignHandle = WorkflowHandle<typeof campaignWorkflow>;

/**
 * Loads a campaign file (YAML or JSON). `base` is an experiment spec inline or the path of a spec file
 * (relative to the campaign file); either way it is validated like any spec.
 */
export function loadCampaignFile(file: string): CampaignSpec {
  const raw = readCampaignFile(file);
  const parsed = CampaignSpec.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  - ${i.path.join('.') || '(top level)'}: ${i.message}`);
    throw new InvalidSpecError(`${file} is not a valid campaign:\n${problems.join('\n')}`);
  }
  const campaign = parsed.data;
  if (typeof campaign.base !== 'string') {
    throw new InvalidSpecError(
      `${file}: base must be the path of an experiment spec file, relative to the campaign file.`,
    );
  }
  campaign.base = loadSpecFile(path.resolve(path.dirname(path.resolve(file)), campaign.base));
  return campaign;
}

/** A campaign file's YAML or JSON, unvalidated. @throws InvalidSpecError when it cannot be read or parsed */
export function readCampaignFile(file: string): unknown {
  try {
    return parseYaml(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new InvalidSpecError(`Cannot read campaign file ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** Whether a campaign file's content is a search campaign (a `search` section instead of `variants`). */
export function isSearchCampaign(raw: unknown): boolean {
  return typeof raw === 'object' && raw !== null && 'search' in raw;
}

export async function submitCampaign(options: {
  client: Client;
  campaign: CampaignSpec;
  settings: WorkflowSettingsInput & { task_queues?: { workflow?: string } };
}): Promise<{ handle: CampaignHandle; alreadyRunning: boolean }> {
  const { client, settings } = options;
  const checked = CampaignSpec.safeParse(options.campaign);
  if (!checked.success) {
    throw new InvalidSpecError(
      `Invalid campaign spec; nothing was started:\n${z.prettifyError(checked.error)}`,
    );
  }
  // Every ref of code variants becomes a commit before anything starts.
  const campaign = await pinCampaignCode(checked.data, settings.runs_root);
  try {
    const handle = await client.workflow.start(campaignWorkflow, {
      workflowId: campaign.campaign_id,
      taskQueue: settings.task_queues?.workflow ?? 'labline',
      args: [{ campaign, settings }],
      searchAttributes: { LablineStage: ['registered'], LablineCampaign: [campaign.campaign_id] },
      staticSummary: `Campaign: ${campaign.name}`,
      memo: { name: campaign.name },
    });
    return { handle, alreadyRunning: false };
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) {
      return {
        handle: client.workflow.getHandle<typeof campaignWorkflow>(campaign.campaign_id),
        alreadyRunning: true,
      };
    }
    throw error;
  }
}

export const isCampaignId = (id: string) => id.startsWith('camp-');

export async function campaignStatus(client: Client, campaignId: string): Promise<CampaignStatus> {
  requireLablineId(campaignId);
  return needingWorker(client, campaignId, () =>
    client.workflow.getHandle<typeof campaignWorkflow>(campaignId).query(campaignStatusQuery),
  );
}

export async function reviewProposal(
  client: Client,
  campaignId: string,
  review: { name: string; action: 'approve' | 'drop' | 'edit'; by: string; modifications?: unknown },
): Promise<void> {
  await client.workflow.getHandle(campaignId).signal(reviewProposalSignal, review);
}

/** The gates a campaign's running children wait at, by child id: the campaign itself does not know them. */
export type ChildGates = Map<string, Waiting>;

export async function gatesOfRunningChildren(client: Client, status: CampaignStatus): Promise<ChildGates> {
  const gates: ChildGates = new Map();
  for (const child of status.children.filter((c) => c.state === 'running')) {
    // A child that has not run its first task yet cannot answer; it waits at nothing.
    const view = await gatesOf(client, child.experiment_id).catch(() => undefined);
    if (view?.waiting) gates.set(child.experiment_id, view.waiting);
  }
  return gates;
}
