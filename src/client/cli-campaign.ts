/** CLI commands for campaigns and genealogy: `campaign`, `review`, `lineage`. */
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import { commandSummary } from './cli-registry';
import type { CampaignStatus } from '../workflows';
import { decideOrExplain, defaultApprover, pause, withClient, workflowSettingsOf } from './cli-experiments';
import { askAtGate } from './prompt';
import { parseServerChoice, serverOptionHelp, unattendedDecision, withLocalRuntime } from './cli-start';
import { formatCampaignStatus } from './cli-format';
import {
  campaignStatus,
  gatesOfRunningChildren,
  isSearchCampaign,
  loadCampaignFile,
  readCampaignFile,
  reviewProposal,
  submitCampaign,
  type ChildGates,
} from './campaigns';
import { formatLineage, lineage } from './lineage';
import { webUiWorkflowUrl, type Waiting } from '../experiment';
import { jsonOutput } from './json-output';
import { reviewSearchProposal, runSearchCampaign } from './cli-search';
import { searchCampaignFrom } from './search';

/**
 * Polls the campaign's status (and the gates of its running children) until it ends, printing changes,
 * approving or asking at its gates; stops (rejecting) once `signal` is aborted.
 */
async function followCampaign(
  client: Client,
  campaignId: string,
  answer: (status: CampaignStatus, childGates: ChildGates) => Promise<void>,
  options: { signal: AbortSignal; json?: boolean },
): Promise<CampaignStatus> {
  const { signal } = options;
  let previous = '';
  for (;;) {
    signal.throwIfAborted();
    const status = await campaignStatus(client, campaignId);
    const childGates = await gatesOfRunningChildren(client, status);
    const summary = options.json
      ? jsonOutput({ ...status, waiting_children: Object.fromEntries(childGates) }, 'line')
      : formatCampaignStatus(status, childGates);
    if (summary !== previous) console.log(summary);
    previous = summary;
    if (['completed', 'rejected', 'cancelled'].includes(status.stage)) return status;
    await answer(status, childGates);
    await pause(1000, signal);
  }
}

export function addCampaignCommands(program: Command): void {
  program
    .command('campaign <spec>')
    .description(commandSummary('campaign'))
    .option(
      '--yes',
      "approve the campaign's launch and publish reviews without asking; a child's failed attempt or unmet " +
        'deliverables then end that child instead (as with `start --yes`)',
    )
    .option(
      '--accept-unmet',
      "accept a child's unmet deliverables without asking (its result is partial_success)",
    )
    .option('--as <user>', 'who approves; default: $LABLINE_USER or the OS user')
    .option('--server <kind>', serverOptionHelp, 'auto')
    .option(
      '--json',
      "print each change as one line of JSON: the campaign's status as `status --json` prints it, plus " +
        '`waiting_children` (child id → the gate it waits at)',
    )
    .action(
      async (
        file: string,
        options: { yes?: boolean; acceptUnmet?: boolean; as?: string; server?: string; json?: boolean },
      ) => {
        if (isSearchCampaign(readCampaignFile(file))) {
          return runSearchCampaign(program, searchCampaignFrom(readCampaignFile(file), file), options);
        }
        const campaign = loadCampaignFile(file);
        const server = parseServerChoice(options.server);
        // With --json, stdout holds JSON lines only; what a person reads goes to stderr.
        const say = (line: string) => (options.json ? console.error(line) : console.log(line));
        await withLocalRuntime(
          program,
          { server, command: 'campaign', log: say },
          async ({ client, settings, target, signal }) => {
            await submitCampaign({
              client,
              campaign,
              settings: workflowSettingsOf(settings),
            });
            if (target.uiUrl)
              say(
                `Temporal Web UI: ${webUiWorkflowUrl(target.uiUrl, target.namespace, campaign.campaign_id)}`,
              );
            const approver = options.as ?? defaultApprover();
            const asked = new Set<string>();
            /** Decides (or asks about) one open gate of the campaign or of a child, once per opening. */
            const answerGate = async (workflowId: string, waiting: Waiting) => {
              const key = `${workflowId}/${waiting.opening ?? waiting.since}`;
              if (asked.has(key)) return;
              asked.add(key);
              const unattended = unattendedDecision(waiting.gate, options);
              const verdict =
                unattended?.action ??
                (await askAtGate(client, workflowId, waiting, {
                  signal,
                  // With --json the question goes to stderr too: stdout holds JSON lines only.
                  ...(options.json
                    ? {
                        io: {
                          input: process.stdin,
                          output: process.stderr,
                          interactive: Boolean(process.stdin.isTTY),
                        },
                      }
                    : {}),
                }));
              if (!verdict) return;
              if (workflowId !== campaign.campaign_id) say(`  ${workflowId}:`);
              await decideOrExplain(
                client,
                workflowId,
                verdict,
                {
                  gate: waiting.gate,
                  opening: waiting.opening,
                  by: approver,
                  source: 'cli',
                  comment: unattended?.comment,
                },
                say,
              );
            };
            const final = await followCampaign(
              client,
              campaign.campaign_id,
              async (status, childGates) => {
                // Proposals are reviewed first (`labline review`): the launch gate asks about the reviewed plan.
                if (status.waiting && !status.proposals.some((p) => !p.decision)) {
                  await answerGate(campaign.campaign_id, status.waiting);
                }
                for (const [childId, waiting] of childGates) await answerGate(childId, waiting);
              },
              { signal, json: options.json },
            );
            if (final.stage !== 'completed') process.exitCode = 1;
          },
        );
      },
    );

  program
    .command('review <campaign> <proposal> <action>')
    .description(commandSummary('review'))
    .option('--set <parameter=value...>', 'with edit: the new target value of a modified parameter')
    .option('--diff <file>', "with edit, for a search's trial-<n>: the unified diff to run instead")
    .option('--hypothesis <text>', "with edit, for a search's trial-<n>: the new hypothesis")
    .option('--as <user>', 'who reviews; default: $LABLINE_USER or the OS user')
    .option(
      '--json',
      'print the review sent as JSON: {"campaign", "proposal", "action", "by", "modifications"}',
    )
    .action(
      async (
        campaignId: string,
        proposal: string,
        action: string,
        options: { set?: string[]; diff?: string; hypothesis?: string; as?: string; json?: boolean },
      ) => {
        if (!['approve', 'drop', 'edit'].includes(action))
          throw new Error(`action must be approve, drop or edit (got ${action})`);
        if (/^trial-\d+$/.test(proposal)) {
          return reviewSearchProposal(program, campaignId, proposal, action, options);
        }
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
          const review = {
            name: proposal,
            action: action as 'approve' | 'drop' | 'edit',
            by: options.as ?? defaultApprover(),
            modifications: action === 'edit' ? modifications : undefined,
          };
          await reviewProposal(client, campaignId, review);
          console.log(
            options.json
              ? jsonOutput({
                  campaign: campaignId,
                  proposal,
                  action,
                  by: review.by,
                  modifications: review.modifications ?? null,
                })
              : `${action} recorded for ${proposal}`,
          );
        });
      },
    );

  program
    .command('lineage <id>')
    .description(commandSummary('lineage'))
    .option('--json', 'print the tree as JSON')
    .action(async (id: string, options: { json?: boolean }) => {
      await withClient(program, async (client) => {
        const { root, target } = await lineage(client, id);
        console.log(options.json ? jsonOutput(root) : formatLineage(root, target));
      });
    });
}
