/**
 * The lab notebook: what an experiment's GitHub issue says. Pure rendering from the spec and the status, so
 * that the workflow passes data and the activity writes text; the hidden markers are how a retried activity
 * finds what an earlier attempt wrote.
 */
import { z } from 'zod';
import type { ExperimentSpec } from './spec';
import type { ExperimentStatus } from './status';
import type { ValidationReport } from './deliverables';
import { resolvedTrainingCommand } from './approval-details';
import type { HypothesisVerdict } from './verdict';
import type { VariantComparison } from './campaign';
import type { SearchStatus, Trial } from './search';

/** Something a person would want to be notified of: one comment per key. */
export const NotebookEvent = z.object({
  /** Unique within the experiment run, e.g. `launched/1`: the comment's marker. */
  key: z.string().min(1),
  /** One line, the comment's heading. */
  title: z.string().min(1),
  /** Markdown below the heading. */
  body: z.string().default(''),
});
/** Something a person would want to be notified of: one comment per key. */
export type NotebookEvent = z.infer<typeof NotebookEvent>;

/** How an experiment ended, as the issue's outcome label says. */
export const NotebookOutcome = z.enum([
  'supported',
  'refuted',
  'inconclusive',
  'failed',
  'rejected',
  'cancelled',
]);
/** How an experiment ended, as the issue's outcome label says. */
export type NotebookOutcome = z.infer<typeof NotebookOutcome>;

/** The outcome label of a completed experiment from its verdict, or of one that ended otherwise. */
export function notebookOutcome(stage: string, verdict: HypothesisVerdict | undefined): NotebookOutcome {
  if (stage === 'completed')
    return verdict === 'supported' ? 'supported' : verdict === 'not_supported' ? 'refuted' : 'inconclusive';
  if (stage === 'rejected' || stage === 'cancelled') return stage;
  return 'failed';
}

/** The hidden marker that names the experiment (run) an issue belongs to. */
export function issueMarker(runName: string): string {
  return `<!-- labline:experiment=${runName} -->`;
}

/** The run an issue belongs to, read from its marker; `undefined` for an issue Labline did not open. */
export function runNameOfIssue(body: string | null | undefined): string | undefined {
  return /<!-- labline:experiment=([A-Za-z0-9._:-]+) -->/.exec(body ?? '')?.[1];
}

/** The hidden marker of one event's comment. */
export function commentMarker(runName: string, key: string): string {
  return `<!-- labline:event=${runName}/${key} -->`;
}

const STATUS_START = '<!-- labline:status:start -->';
const STATUS_END = '<!-- labline:status:end -->';

/** `Experiment: <name> (<id>)`. */
export function issueTitle(spec: Pick<ExperimentSpec, 'name' | 'experiment_id'>, runName: string): string {
  return `Experiment: ${spec.name} (${runName === spec.experiment_id ? spec.experiment_id : runName})`;
}

/** The issue body when it is opened: what the experiment is, then its status section. */
export function issueBody(spec: ExperimentSpec, runName: string, status: ExperimentStatus): string {
  const pinned = spec.code?.pinned;
  const lines = [
    issueMarker(runName),
    `**Hypothesis.** ${spec.hypothesis}`,
    ...(spec.research_question ? ['', `**Research question.** ${spec.research_question}`] : []),
    ...(spec.description ? ['', spec.description] : []),
    '',
    '### Configuration',
    '',
    '```',
    `$ ${resolvedTrainingCommand(spec.training, spec.config)}`,
    '```',
    '',
    table(
      ['Setting', 'Value'],
      [
        ...Object.entries(spec.config).map(([key, value]) => [`\`${key}\``, `\`${JSON.stringify(value)}\``]),
        ['launcher', spec.training.launcher],
        [
          'resources',
          `${spec.training.resources.gpus} GPU(s), ${spec.training.resources.cpus} CPU(s)` +
            (spec.training.resources.time_limit ? `, ${spec.training.resources.time_limit} s limit` : ''),
        ],
        ...(pinned
          ? [['code', `\`${pinned.commit.slice(0, 12)}\`${pinned.branch ? ` on \`${pinned.branch}\`` : ''}`]]
          : []),
        ['tracker', spec.tracker.type],
      ],
    ),
    '',
    '### Deliverables',
    '',
    ...(spec.deliverables.length
      ? spec.deliverables.map(
          (d) => `- [ ] \`${d.name}\` (${d.type}${d.required === false ? ', optional' : ''})`,
        )
      : ['_None declared._']),
    '',
    statusSection(status),
  ];
  return lines.join('\n');
}

/**
 * The body with its status section replaced by `section` (a body without one gets it appended), and the
 * checklist items named in `ticks` (`- [ ] \`name\``) ticked.
 */
export function withStatusSection(body: string, section: string, ticks: readonly string[] = []): string {
  let updated = body;
  for (const name of ticks) updated = updated.replace(`- [ ] \`${name}\``, `- [x] \`${name}\``);
  const start = updated.indexOf(STATUS_START);
  const end = updated.indexOf(STATUS_END);
  if (start < 0 || end < start) return `${updated}\n\n${section}`;
  return updated.slice(0, start) + section + updated.slice(end + STATUS_END.length);
}

/** The deliverables that passed, to tick in the checklist. */
export function passedDeliverables(report: ValidationReport): string[] {
  return report.results.filter((result) => result.passed).map((result) => result.name);
}

/** The part of an experiment issue's body rewritten on every stage change. */
export function statusSection(status: ExperimentStatus): string {
  const lines = [
    STATUS_START,
    '### Status',
    '',
    `**Stage:** \`${status.stage}\` since ${status.stage_since}`,
  ];
  if (status.waiting)
    lines.push(
      '',
      `**Waiting for:** the ${status.waiting.gate} gate, since ${status.waiting.since}` +
        (status.waiting.approvers.length ? ` (approvers: ${status.waiting.approvers.join(', ')})` : '') +
        ` — ${status.waiting.question.split('\n')[0]}`,
      '',
      'Answer with a comment `/labline approve [comment]` or `/labline reject <reason>`.',
    );
  if (status.reason) lines.push('', `**Reason:** ${status.reason}`);
  const decided = status.decisions.filter((d) => d.outcome !== undefined);
  if (decided.length)
    lines.push(
      '',
      '#### Decisions',
      '',
      table(
        ['Gate', 'Outcome', 'By', 'When', 'Comment'],
        decided.map((d) => [d.gate, d.outcome ?? '', `${d.by} (${d.source})`, d.at, d.comment ?? '']),
      ),
    );
  if (status.attempts.length)
    lines.push(
      '',
      '#### Attempts',
      '',
      table(
        ['Launch', 'Started', 'Ended', 'Outcome'],
        status.attempts.map((a) => [
          String(a.launch),
          a.started_at,
          a.ended_at ?? '',
          a.outcome ? `${a.outcome}${a.detail ? `: ${a.detail}` : ''}` : (a.queued ?? 'running'),
        ]),
      ),
    );
  if (status.links.tracker_url?.startsWith('http'))
    lines.push('', `**W&B run:** ${status.links.tracker_url}`);
  const { costs } = status;
  lines.push(
    '',
    `**Costs:** ${costs.gpu_hours.toFixed(3)} GPU hours, $${costs.llm_usd.toFixed(4)} of LLM calls`,
    STATUS_END,
  );
  return lines.join('\n');
}

/** The comment that reports a deliverables check: one row per deliverable. */
export function deliverablesComment(report: ValidationReport): string {
  return table(
    ['Deliverable', 'Required', 'Expected', 'Found', 'Passed'],
    report.results.map((r) => [
      `\`${r.name}\``,
      r.required ? 'yes' : 'no',
      r.expected,
      r.found,
      r.passed ? 'yes' : '**no**',
    ]),
  );
}

/** A Markdown table; pipes and newlines in cells are escaped so a value cannot break the layout. */
function table(header: string[], rows: string[][]): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${row.map(cell).join(' | ')} |`),
  ].join('\n');
}

/** What a campaign's tracking issue shows: its stage, gate, children and comparison. */
export interface CampaignNotebookView {
  stage: string;
  waiting?: { gate: string; since: string; approvers: string[]; question: string } | undefined;
  children: {
    experiment_id: string;
    variant: string;
    seed: number;
    state: string;
    end?: string | undefined;
  }[];
  comparison: VariantComparison[];
  reason?: string | undefined;
}

/** `Campaign: <name> (<id>)`. */
export function campaignIssueTitle(campaign: { campaign_id: string; name: string }): string {
  return `Campaign: ${campaign.name} (${campaign.campaign_id})`;
}

/** The tracking issue's body when it is opened. */
export function campaignIssueBody(
  campaign: { campaign_id: string; description?: string | undefined },
  view: CampaignNotebookView,
): string {
  return [
    issueMarker(campaign.campaign_id),
    ...(campaign.description ? [campaign.description, ''] : []),
    'Each experiment of the campaign has an issue of its own; this one tracks them together.',
    '',
    campaignStatusSection(view),
  ].join('\n');
}

/** The tracking issue's status section: stage, gate, the children as a task list, the comparison. */
export function campaignStatusSection(view: CampaignNotebookView): string {
  const lines = [STATUS_START, '### Status', '', `**Stage:** \`${view.stage}\``];
  if (view.waiting)
    lines.push(
      '',
      `**Waiting for:** the ${view.waiting.gate} gate, since ${view.waiting.since}` +
        (view.waiting.approvers.length ? ` (approvers: ${view.waiting.approvers.join(', ')})` : '') +
        ` — ${view.waiting.question.split('\n')[0]}`,
      '',
      'Answer with a comment `/labline approve [comment]` or `/labline reject <reason>`.',
    );
  if (view.reason) lines.push('', `**Reason:** ${view.reason}`);
  if (view.children.length)
    lines.push(
      '',
      '#### Experiments',
      '',
      ...view.children.map(
        (child) =>
          `- [${child.state === 'done' ? 'x' : ' '}] \`${child.experiment_id}\` (${child.variant}, seed ${child.seed}): ` +
          (child.state === 'done' ? (child.end ?? 'done') : child.state),
      ),
    );
  if (view.comparison.length)
    lines.push(
      '',
      '#### Comparison',
      '',
      table(
        ['Rank', 'Variant', 'n', 'Mean', '95% CI', 'p vs base', 'Failed'],
        view.comparison.map((row) => [
          row.rank === null ? '—' : String(row.rank),
          `\`${row.variant}\``,
          String(row.values.length),
          figure(row.estimate?.mean),
          row.estimate && row.estimate.lower !== null
            ? `[${figure(row.estimate.lower)}, ${figure(row.estimate.upper)}]`
            : '—',
          figure(row.vs_base?.p_value),
          String(row.failed),
        ]),
      ),
    );
  lines.push(STATUS_END);
  return lines.join('\n');
}

/** A number to four significant digits, or `—`. */
function figure(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value)
    ? '—'
    : String(Number(value.toPrecision(4)));
}

/** The search campaign's tracking issue body when it is opened. */
export function searchIssueBody(
  campaign: { campaign_id: string; description?: string | undefined },
  status: SearchStatus,
): string {
  return [
    issueMarker(campaign.campaign_id),
    ...(campaign.description ? [campaign.description, ''] : []),
    'A search campaign: each trial is a proposed code change, trained as experiments of their own and kept ' +
      'only when it beats the incumbent significantly.',
    '',
    searchStatusSection(status),
  ].join('\n');
}

/** The search's status section: stage, gate, incumbent and every trial with its outcome. */
export function searchStatusSection(status: SearchStatus): string {
  const lines = [
    STATUS_START,
    '### Status',
    '',
    `**Stage:** \`${status.stage}\`${status.paused ? ' (paused)' : ''}`,
    '',
    `**Incumbent:** trial ${status.incumbent.trial}` +
      (status.incumbent.branch ? ` on \`${status.incumbent.branch}\`` : '') +
      (status.incumbent.commit ? ` (\`${status.incumbent.commit.slice(0, 12)}\`)` : ''),
  ];
  if (status.waiting)
    lines.push(
      '',
      `**Waiting for:** the ${status.waiting.gate} gate, since ${status.waiting.since} — ` +
        status.waiting.question.split('\n')[0],
      '',
      'Answer with a comment `/labline approve [comment]` or `/labline reject <reason>`.',
    );
  if (status.end_reason) lines.push('', `**Ended because:** ${status.end_reason}`);
  if (status.trials.length)
    lines.push(
      '',
      '#### Trials',
      '',
      table(
        ['Trial', 'Hypothesis', 'State', 'Mean', 'vs incumbent'],
        status.trials.map((trial) => [
          String(trial.n),
          trial.hypothesis,
          trial.state,
          figure(trial.estimate?.mean),
          trial.versus?.reason ?? trial.reason ?? '',
        ]),
      ),
    );
  lines.push(
    '',
    `**Usage:** ${status.usage.trials} trial(s) of ${status.budget.max_trials}, ${status.usage.gpu_hours.toFixed(3)} GPU hours, $${status.usage.llm_usd.toFixed(4)} of LLM calls`,
    STATUS_END,
  );
  return lines.join('\n');
}

/** The draft pull request of a search's final branch: the chain of promoted changes and their effects. */
export function searchPullRequestBody(
  campaign: { campaign_id: string; name: string },
  status: SearchStatus,
): string {
  const chain: Trial[] = [];
  for (let trial = status.trials[status.incumbent.trial]; trial && trial.n > 0;) {
    chain.unshift(trial);
    trial = status.trials[trial.parent_trial];
  }
  const base = status.trials[0];
  return [
    issueMarker(campaign.campaign_id),
    `The result of the search campaign \`${campaign.campaign_id}\` (${campaign.name}): ${chain.length} promoted ` +
      `change(s) on top of \`${(base?.commit ?? status.trials[0]?.parent_commit ?? '').slice(0, 12)}\`, each kept ` +
      `because it beat the incumbent of its time on \`${status.objective.metric}\` (${status.objective.goal}).`,
    '',
    table(
      ['Trial', 'Change', 'Mean', 'Effect', 'Commit'],
      [
        ['0', 'the base', figure(base?.estimate?.mean), '', `\`${(base?.commit ?? '').slice(0, 12)}\``],
        ...chain.map((trial) => [
          String(trial.n),
          trial.hypothesis,
          figure(trial.estimate?.mean),
          trial.versus?.reason ?? '',
          `\`${(trial.commit ?? '').slice(0, 12)}\``,
        ]),
      ],
    ),
    '',
    'Opened as a draft by Labline: review the diff before merging.',
  ].join('\n');
}
