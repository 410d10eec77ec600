/** CLI commands for campaigns and genealogy: `campaign`, `review`, `lineage`. */
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import type { CampaignStatus } from '../workflows';
import { decideOrExplain, defaultApprover, pause, withClient, workflowSettingsOf } from './cli-experiments';
import { askAtGate } from './prompt';
import { parseServerChoice, serverOptionHelp, withLocalRuntime } from './cli-start';
import { formatCampaignStatus } from './cli-format';
import { campaignStatus, loadCampaignFile, reviewProposal, submitCampaign } from './campaigns';
import { formatLineage, lineage } from './lineage';
import { webUiWorkflowUrl } from '../experiment';

/**
 * Polls the campaign's status until it ends, printing changes, approving or asking at its gate; stops
 * (rejecting) once `signal` is aborted.
 */
async function followCampaign(
  client: Client,
  campaignId: string,
  answer: (status: CampaignStatus) => Promise<void>,
  signal: AbortSignal,
): Promise<CampaignStatus> {
  let previous = '';
  for (;;) {
    signal.throwIfAborted();
    const status = await campaignStatus(client, campaignId);
    const summary = formatCampaignStatus(status);
    if (summary !== previous) console.log(summary);
    previous = summary;
    if (['completed', 'rejected', 'cancelled'].includes(status.stage)) return status;
    await answer(status);
    await pause(1000, signal);
  }
}

export function addCampaignCommands(program: Command): void {
  program
    .command('campaign <spec>')
    .description('Run a campaign (variants × seeds, or reviewed ablations) end to end, like start.')
    .option('--yes', 'approve the campaign launch without asking')
    .option('--as <user>', 'who approves; default: $LABLINE_USER or the OS user')
    .option('--server <kind>', serverOptionHelp, 'auto')
    .action(async (file: string, options: { yes?: boolean; as?: string; server?: string }) => {
      const campaign = loadCampaignFile(file);
      const server = parseServerChoice(options.server);
      await withLocalRuntime(
        program,
        { server, command: 'campaign' },
        async ({ client, settings, target, signal }) => {
          await submitCampaign({
            client,
            campaign,
            settings: workflowSettingsOf(settings),
          });
          if (target.uiUrl)
            console.log(
              `Temporal Web UI: ${webUiWorkflowUrl(target.uiUrl, target.namespace, campaign.campaign_id)}`,
            );
          const approver = options.as ?? defaultApprover();
          const asked = new Set<string>();
          const final = await followCampaign(
            client,
            campaign.campaign_id,
            async (status) => {
              const waiting = status.waiting;
              const key = waiting?.opening ?? waiting?.since;
              if (!waiting || !key || asked.has(key) || status.proposals.some((p) => !p.decision)) return;
              asked.add(key);
              const verdict = options.yes
                ? 'approve'
                : await askAtGate(client, campaign.campaign_id, waiting, { signal });
              if (verdict)
                await decideOrExplain(client, campaign.campaign_id, verdict, {
                  gate: waiting.gate,
                  opening: waiting.opening,
                  by: approver,
                  source: 'cli',
                });
            },
            signal,
          );
          if (final.stage !== 'completed') process.exitCode = 1;
        },
      );
    });

  program
    .command('review <campaign> <proposal> <action>')
    .description('Review a proposed ablation of a campaign: approve, drop, or edit (with --set).')
    .option('--set <parameter=value...>', 'with edit: the new target value of a modified parameter')
    .option('--as <user>', 'who reviews; default: $LABLINE_USER or the OS user')
    .action(
      async (
        campaignId: string,
        proposal: string,
        action: string,
        options: { set?: string[]; as?: string },
      ) => {
        if (!['approve', 'drop', 'edit'].includes(action))
          throw new Error(`action must be approve, drop or edit (got ${action})`);
        await withClient(program, async (client) => {
          const status = await campaignStatus(client, campaignId);
          const entry = status.proposals.find((p) => p.proposal.name === proposal);
          if (!entry)
            throw new Error(
              `${campaignId} has no proposal named ${proposal}; it has: ${status.proposals.map((p) => p.proposal.name).join(', ')}`,
            );
          const overrides = new Map<string, string | number>(
            (options.set ?? []).map((pair): [string, string | number] => {
              const [key = '', value = ''] = pair.split('=');
              return [key, value !== '' && !Number.isNaN(Number(value)) ? Number(value) : value];
            }),
          );
          const modifications = entry.proposal.modifications.map((m) =>
            overrides.has(m.parameter) ? { ...m, to: overrides.get(m.parameter)! } : m,
          );
          await reviewProposal(client, campaignId, {
            name: proposal,
            action: action as 'approve' | 'drop' | 'edit',
            by: options.as ?? defaultApprover(),
            modifications: action === 'edit' ? modifications : undefined,
          });
          console.log(`${action} recorded for ${proposal}`);
        });
      },
    );

  program
    .command('lineage <id>')
    .description(
      "Print the tree of an experiment's ancestors and descendants, with outcome and primary metric.",
    )
    .option('--json', 'print the tree as JSON')
    .action(async (id: string, options: { json?: boolean }) => {
      await withClient(program, async (client) => {
        const { root, target } = await lineage(client, id);
        console.log(options.json ? JSON.stringify(root, null, 2) : formatLineage(root, target));
      });
    });
}
