/** How the CLI prints an experiment's status: a few aligned lines a person can scan. */
import type { ExperimentStatus } from '../experiment';

export function formatStatus(status: ExperimentStatus): string {
  const lines = [
    `${status.experiment_id}  ${status.name}`,
    `  stage      ${status.stage} (since ${status.stage_since})`,
  ];
  if (status.waiting) {
    const who = status.waiting.approvers.length ? status.waiting.approvers.join(', ') : 'anyone';
    lines.push(
      `  waiting    ${status.waiting.gate} decision by ${who}; reminders sent ${status.waiting.reminders_sent}; deadline ${status.waiting.deadline}`,
    );
    lines.push(`             ${status.waiting.question.split('\n').join('\n             ')}`);
  }
  if (status.reason) lines.push(`  reason     ${status.reason}`);
  for (const attempt of status.attempts) {
    const progress = attempt.step !== undefined ? ` step ${attempt.step}` : '';
    const resumed = attempt.resumed_from ? ` (resumed from ${attempt.resumed_from})` : '';
    lines.push(
      `  launch ${attempt.launch}   ${attempt.outcome ?? 'running'}${progress}${resumed}${attempt.detail ? `: ${attempt.detail}` : ''}`,
    );
  }
  for (const decision of status.decisions) {
    lines.push(
      `  decision   ${decision.gate}: ${decision.outcome ?? `ignored (${decision.ignored})`} by ${decision.by} at ${decision.at}${decision.comment ? ` — ${decision.comment}` : ''}`,
    );
  }
  lines.push(`  run dir    ${status.links.run_dir}`);
  if (status.links.report) lines.push(`  report     ${status.links.report}`);
  if (status.links.tracker_url) lines.push(`  tracker    ${status.links.tracker_url}`);
  const { costs } = status;
  lines.push(
    `  costs      $${costs.llm_usd.toFixed(4)} LLM (${costs.llm_prompt_tokens}+${costs.llm_completion_tokens} tokens), ${costs.gpu_hours.toFixed(3)} GPU h`,
  );
  return lines.join('\n');
}
