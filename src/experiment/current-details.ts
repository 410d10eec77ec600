/**
 * The experiment's "current details" for the Temporal Web UI (markdown, shown on the workflow's page): the
 * stage, what it waits for and the question asked, an activity being retried and why, the latest launch, and
 * every decision so far. Pure.
 */
import { describeActivityRetry } from './retries';
import type { ExperimentStatus, Stage } from './status';

const stageSummaries: Record<Stage, string> = {
  registered: 'registered',
  launch_review: 'waiting for launch approval',
  training: 'training',
  validation: 'checking deliverables',
  analysis: 'analysing results',
  publish_review: 'waiting for publish approval',
  writing: 'writing the report',
  completed: 'completed',
  failed: 'failed',
  rejected: 'rejected',
  cancelled: 'cancelled',
};

/** `wandbRunUrl`: the W&B run the experiment logs to, known from the start (absent with the local tracker). */
export function experimentCurrentDetails(status: ExperimentStatus, wandbRunUrl?: string): string {
  const { waiting } = status;
  const latest = status.attempts.at(-1);
  const lines = [
    `**Stage:** ${stageSummaries[status.stage]}`,
    waiting ? `**Waiting for:** ${waiting.gate} decision since ${waiting.since}` : undefined,
    waiting ? `**Asked:** ${waiting.question}` : undefined,
    status.reason ? `**Reason:** ${status.reason}` : undefined,
    status.retrying ? `**Retrying:** ${describeActivityRetry(status.retrying)}` : undefined,
    latest?.queued ? `**Queued:** ${latest.queued}` : undefined,
    latest
      ? `**Launch ${latest.launch}:** ${latest.outcome ?? (latest.queued ? 'queued' : 'running')} on ${latest.launcher}` +
        (latest.resumed_from ? `, resumed from ${latest.resumed_from}` : '')
      : undefined,
    status.decisions.length
      ? '**Decisions:**\n' +
        status.decisions
          .map(
            (d) =>
              `- ${d.gate}: ${d.outcome ?? `ignored (${d.ignored})`} by ${d.by} at ${d.at}` +
              (d.comment ? ` (${d.comment})` : ''),
          )
          .join('\n')
      : undefined,
    `**Run directory:** ${status.links.run_dir}`,
    wandbRunUrl ? `**W&B run:** ${wandbRunUrl}` : undefined,
  ];
  return lines.filter((line) => line !== undefined).join('\n\n');
}
