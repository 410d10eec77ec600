/** How the CLI prints an experiment's status: a few aligned lines a person can scan. */
import { describeActivityRetry, type DecisionRecord, type ExperimentStatus } from '../experiment';
import type { CampaignStatus } from '../workflows';
import { trainerLogPath } from '../activities/training/log-path';

export function formatStatus(status: ExperimentStatus): string {
  const lines = [
    `${status.experiment_id}  ${status.name}`,
    `  stage      ${status.stage} (since ${status.stage_since})`,
  ];
  if (status.waiting) {
    const who = status.waiting.approvers.length ? status.waiting.approvers.join(', ') : 'anyone';
    lines.push(
      `  waiting    ${status.waiting.gate} decision by ${who}; reminders sent ${status.waiting.reminders_sent}; deadline ${status.waiting.deadline}` +
        (status.waiting.opening ? `; opening ${status.waiting.opening}` : ''),
    );
    lines.push(`             ${status.waiting.question.split('\n').join('\n             ')}`);
  }
  if (status.reason) lines.push(`  reason     ${status.reason}`);
  if (status.retrying) lines.push(`  retrying   ${describeActivityRetry(status.retrying)}`);
  for (const attempt of status.attempts) {
    const progress = attempt.step !== undefined ? ` step ${attempt.step}` : '';
    const resumed = attempt.resumed_from ? ` (resumed from ${attempt.resumed_from})` : '';
    lines.push(
      `  launch ${attempt.launch}   ${attempt.outcome ?? (attempt.queued ? 'queued' : 'running')}${progress}${resumed}${attempt.detail ? `: ${attempt.detail}` : ''}${!attempt.outcome && attempt.queued ? `: ${attempt.queued}` : ''}`,
    );
  }
  for (const decision of status.decisions) lines.push(`  decision   ${formatDecisionRecord(decision)}`);
  lines.push(`  run dir    ${status.links.run_dir}`);
  const latest = status.attempts.at(-1);
  if (latest)
    lines.push(
      `  log        ${trainerLogPath(status.links.run_dir, latest)} (labline logs ${status.experiment_id})`,
    );
  if (status.links.report) lines.push(`  report     ${status.links.report}`);
  if (status.links.tracker_url) lines.push(`  tracker    ${status.links.tracker_url}`);
  if (status.links.web_ui) lines.push(`  web ui     ${status.links.web_ui}`);
  if (status.links.github_issue) lines.push(`  github     ${status.links.github_issue}`);
  const { costs } = status;
  lines.push(
    `  costs      $${costs.llm_usd.toFixed(4)} LLM (${costs.llm_prompt_tokens}+${costs.llm_completion_tokens} tokens), ${costs.gpu_hours.toFixed(3)} GPU h`,
  );
  for (const report of status.analysis_reports ?? [])
    if (report.unverified_numbers?.length)
      lines.push(
        `  unverified ${report.agent}: ${report.unverified_numbers.join(', ')} (marked in its text)`,
      );
  return lines.join('\n');
}

/** One decision in a line: what it decided (or why it was ignored), by whom, when, and why. */
export function formatDecisionRecord(decision: DecisionRecord): string {
  return (
    `${decision.gate}: ${decision.outcome ?? `ignored (${decision.ignored})`} by ${decision.by} at ${decision.at}` +
    (decision.comment ? ` — ${decision.comment}` : '')
  );
}

/** `childGates`: the gates running children wait at (the campaign's status does not know them). */
export function formatCampaignStatus(
  status: CampaignStatus,
  childGates: ReadonlyMap<string, { gate: string; question: string }> = new Map(),
): string {
  const count = (state: string) => status.children.filter((c) => c.state === state).length;
  const lines = [
    `${status.campaign_id}  ${status.name}`,
    `  stage      ${status.stage}; children ${count('done')} done, ${count('running')} running, ${count('pending')} pending (at most ${status.concurrency} at once)`,
  ];
  if (status.waiting)
    lines.push(
      `  waiting    ${status.waiting.gate}: ${status.waiting.question}` +
        (status.waiting.opening ? ` (opening ${status.waiting.opening})` : ''),
    );
  for (const decision of status.decisions) lines.push(`  decision   ${formatDecisionRecord(decision)}`);
  for (const review of status.proposals) {
    const changes = review.proposal.modifications
      .map((m) => `${m.parameter} ${String(m.from)}→${String(m.to)}`)
      .join(', ');
    lines.push(
      `  proposal   ${review.proposal.name}: ${changes} — ${review.decision ?? 'awaiting review'}${review.by ? ` by ${review.by}` : ''}`,
    );
  }
  for (const child of status.children) {
    const waiting = childGates.get(child.experiment_id);
    const state = waiting
      ? `waiting for a ${waiting.gate} decision: ${waiting.question.split('\n')[0]}`
      : `${child.state}${child.end ? ` (${child.end})` : ''}`;
    lines.push(`  child      ${child.experiment_id}  ${state}`);
  }
  for (const row of status.comparison) {
    const ci =
      row.estimate && row.estimate.lower !== null
        ? ` [${row.estimate.lower.toPrecision(4)}, ${row.estimate.upper!.toPrecision(4)}]`
        : '';
    lines.push(
      `  rank ${row.rank ?? '-'}     ${row.variant}: ${row.estimate ? row.estimate.mean.toPrecision(4) : 'no value'}${ci}`,
    );
  }
  if (status.report) lines.push(`  report     ${status.report}`);
  if (status.reason) lines.push(`  reason     ${status.reason}`);
  return lines.join('\n');
}
