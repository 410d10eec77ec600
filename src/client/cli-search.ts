/**
 * CLI of search campaigns: `labline campaign <file>` runs one when the file has a `search` section;
 * `labline search status|pause|resume|stop|budget <campaign>` inspects and steers it; `labline review
 * <campaign> trial-<n> approve|drop|edit` decides its proposals.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import {
  SearchControl,
  webUiWorkflowUrl,
  type SearchCampaignSpec,
  type SearchStatus,
  type Trial,
  type Waiting,
} from '../experiment';
import { commandSummary } from './cli-registry';
import { decideOrExplain, defaultApprover, pause, withClient, workflowSettingsOf } from './cli-experiments';
import { formatDecisionRecord } from './cli-format';
import { parseServerChoice, unattendedDecision, withLocalRuntime } from './cli-start';
import { jsonOutput } from './json-output';
import { askAtGate } from './prompt';
import { controlSearch, editTrial, searchStatus, submitSearch } from './search';

const ENDED = ['completed', 'rejected', 'failed', 'cancelled'];

/** Options of `labline campaign` that a search takes too. */
export interface SearchRunOptions {
  yes?: boolean;
  as?: string;
  server?: string;
  json?: boolean;
}

/** `labline campaign <file>` for a search: submit, follow, answer its gates; exit 1 unless it completed. */
export async function runSearchCampaign(
  program: Command,
  campaign: SearchCampaignSpec,
  options: SearchRunOptions,
): Promise<void> {
  const say = (line: string) => (options.json ? console.error(line) : console.log(line));
  await withLocalRuntime(
    program,
    { server: parseServerChoice(options.server), command: 'campaign', log: say },
    async ({ client, settings, target, signal }) => {
      await submitSearch({ client, campaign, settings: workflowSettingsOf(settings) });
      if (target.uiUrl)
        say(`Temporal Web UI: ${webUiWorkflowUrl(target.uiUrl, target.namespace, campaign.campaign_id)}`);
      const asked = new Set<string>();
      const answer = async (waiting: Waiting) => {
        const key = waiting.opening ?? waiting.since;
        if (asked.has(key)) return;
        asked.add(key);
        const unattended = unattendedDecision(waiting.gate, options);
        const verdict =
          unattended?.action ?? (await askAtGate(client, campaign.campaign_id, waiting, { signal }));
        if (!verdict) return;
        await decideOrExplain(
          client,
          campaign.campaign_id,
          verdict,
          {
            gate: waiting.gate,
            opening: waiting.opening,
            by: options.as ?? defaultApprover(),
            source: 'cli',
            comment: unattended?.comment,
          },
          say,
        );
      };
      let previous = '';
      for (;;) {
        signal.throwIfAborted();
        const status = await searchStatus(client, campaign.campaign_id);
        const summary = options.json ? jsonOutput(status, 'line') : formatSearchStatus(status);
        if (summary !== previous) console.log(summary);
        previous = summary;
        if (ENDED.includes(status.stage)) {
          if (status.stage !== 'completed') process.exitCode = 1;
          return;
        }
        if (status.waiting) await answer(status.waiting);
        await pause(1000, signal);
      }
    },
  );
}

/** A search's status in a few lines: incumbent, trials, budget used, and what waits. */
export function formatSearchStatus(status: SearchStatus): string {
  const count = (state: Trial['state']) => status.trials.filter((t) => t.state === state).length;
  const { usage, budget } = status;
  const incumbent = status.trials[status.incumbent.trial];
  const lines = [
    `${status.campaign_id}  ${status.name}  (search, ${status.autonomy})`,
    `  stage      ${status.stage}${status.paused ? ' (paused)' : ''}`,
    `  incumbent  trial ${status.incumbent.trial} at ${status.incumbent.branch ?? status.incumbent.commit.slice(0, 12)}` +
      (incumbent?.estimate
        ? `: ${status.objective.metric} ${formatNumber(incumbent.estimate.mean)} over ${incumbent.values.length} seed(s)`
        : ''),
    `  trials     ${usage.trials} of ${budget.max_trials}: ${count('promoted') - (status.trials.length ? 1 : 0)} promoted, ` +
      `${count('not_better')} not better, ${count('failed')} failed, ${count('rejected') + count('dropped')} rejected or dropped, ` +
      `${count('running') + count('deciding')} running`,
    `  budget     ${usage.gpu_hours.toFixed(3)}${budget.gpu_hours ? ` of ${budget.gpu_hours}` : ''} GPU h, ` +
      `$${usage.llm_usd.toFixed(4)}${budget.llm_usd ? ` of $${budget.llm_usd}` : ''} LLM, ` +
      `${Math.round(usage.wall_seconds)} s${budget.wall_time ? ` of ${budget.wall_time} s` : ''} wall`,
  ];
  for (const trial of status.trials.slice(-5).filter((t) => t.n > 0))
    lines.push(
      `  trial ${trial.n}`.padEnd(13) +
        `${trial.state}${trial.estimate ? ` ${formatNumber(trial.estimate.mean)}` : ''}: ${trial.hypothesis.slice(0, 100)}` +
        (trial.reason && trial.state !== 'running' ? ` (${trial.reason.slice(0, 120)})` : ''),
    );
  if (status.waiting) {
    lines.push(`  waiting    ${status.waiting.gate} decision (opening ${status.waiting.opening ?? '?'})`);
    const question = status.waiting.question.split('\n').filter((line) => line.trim());
    lines.push(`             ${question.slice(0, 3).join('\n             ')}`);
  }
  if (status.end_reason) lines.push(`  ended      ${status.end_reason}`);
  for (const decision of status.decisions.slice(-3))
    lines.push(`  decision   ${formatDecisionRecord(decision)}`);
  if (status.report) lines.push(`  report     ${status.report}`);
  return lines.join('\n');
}

const formatNumber = (value: number) => Number(value.toPrecision(4)).toString();

export function addSearchCommands(program: Command): void {
  program
    .command('search <action> <campaign>')
    .description(commandSummary('search'))
    .option('--json', 'print the result as JSON (status: the whole status; the others: the budget used)')
    .option('--as <user>', 'who acts; default: $LABLINE_USER or the OS user')
    .option('--reason <text>', 'with stop: why, recorded with the stop')
    .option('--max-trials <n>', 'with budget: the new maximum of trials', Number)
    .option('--gpu-hours <h>', 'with budget: the new GPU-hour limit', Number)
    .option('--llm-usd <usd>', 'with budget: the new limit of LLM dollars', Number)
    .option('--wall-time <duration>', 'with budget: the new wall-time limit, like "8h"')
    .action(
      async (
        action: string,
        campaignId: string,
        options: {
          json?: boolean;
          as?: string;
          reason?: string;
          maxTrials?: number;
          gpuHours?: number;
          llmUsd?: number;
          wallTime?: string;
        },
      ) => {
        if (!['status', 'pause', 'resume', 'stop', 'budget'].includes(action))
          throw new Error(`action must be status, pause, resume, stop or budget (got ${action})`);
        await withClient(program, async (client) => {
          if (action === 'status') {
            const status = await searchStatus(client, campaignId);
            console.log(options.json ? jsonOutput(status) : formatSearchStatus(status));
            return;
          }
          const by = options.as ?? defaultApprover();
          const budget = {
            ...(options.maxTrials !== undefined ? { max_trials: options.maxTrials } : {}),
            ...(options.gpuHours !== undefined ? { gpu_hours: options.gpuHours } : {}),
            ...(options.llmUsd !== undefined ? { llm_usd: options.llmUsd } : {}),
            ...(options.wallTime !== undefined ? { wall_time: options.wallTime } : {}),
          };
          if (action === 'budget' && Object.keys(budget).length === 0)
            throw new Error('budget needs at least one of --max-trials, --gpu-hours, --llm-usd, --wall-time');
          const parsed = SearchControl.safeParse({
            action,
            by,
            ...(action === 'stop' && options.reason ? { reason: options.reason } : {}),
            ...(action === 'budget' ? { budget } : {}),
          });
          if (!parsed.success)
            throw new Error(
              `not a valid ${action}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
            );
          const usage = await controlSearch(client, campaignId, parsed.data);
          console.log(
            options.json
              ? jsonOutput({ campaign: campaignId, action, by, usage })
              : `${action} recorded for ${campaignId}; used so far: ${usage.trials} trial(s), ${usage.gpu_hours.toFixed(3)} GPU h, $${usage.llm_usd.toFixed(4)}`,
          );
        });
      },
    );
}

/**
 * `labline review <campaign> trial-<n> approve|drop|edit` for a search: approve and drop decide the proposal
 * gate; edit replaces the proposal's diff with `--diff <file>` (checked again) and leaves the gate open.
 */
export async function reviewSearchProposal(
  program: Command,
  campaignId: string,
  proposal: string,
  action: string,
  options: { diff?: string; hypothesis?: string; as?: string; json?: boolean },
): Promise<void> {
  const n = Number(/^(?:trial-)?(\d+)$/.exec(proposal)?.[1]);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`name the proposal as trial-<n>, like trial-3 (got ${proposal})`);
  await withClient(program, async (client) => {
    const status = await searchStatus(client, campaignId);
    const by = options.as ?? defaultApprover();
    if (action === 'edit') {
      if (!options.diff) throw new Error('edit needs --diff <file>: the unified diff to run instead');
      const trial = await editTrial(client, campaignId, {
        trial: n,
        diff: readFileSync(options.diff, 'utf8'),
        ...(options.hypothesis ? { hypothesis: options.hypothesis } : {}),
        by,
      });
      console.log(
        options.json
          ? jsonOutput({ campaign: campaignId, trial: n, action, by, files: trial.check?.files ?? [] })
          : `trial ${n} edited (${trial.check?.files.join(', ') ?? ''}); approve or drop it to go on`,
      );
      return;
    }
    const waiting = status.waiting;
    const open = status.trials.find((t) => t.n === n && t.state === 'proposed');
    if (!waiting || waiting.gate !== 'launch' || !open)
      throw new Error(
        `trial ${n} of ${campaignId} does not wait for review${waiting ? ` (the ${waiting.gate} gate is open)` : ''}`,
      );
    const record = await decideOrExplain(
      client,
      campaignId,
      action === 'approve' ? 'approve' : 'reject',
      { gate: 'launch', opening: waiting.opening, by, source: 'cli' },
      options.json ? () => undefined : undefined,
    );
    if (options.json)
      console.log(jsonOutput({ campaign: campaignId, trial: n, action, by, decision: record ?? null }));
    if (!record) process.exitCode = 1;
  });
}
