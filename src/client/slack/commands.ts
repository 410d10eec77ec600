/**
 * The `/labline` slash command's text: `approve <id> [comment]`, `reject <id> <reason>`, `status <id>`,
 * `help`. Parsing only; the endpoint carries them out.
 */
import { CAMPAIGN_ID_PATTERN, EXPERIMENT_ID_PATTERN } from '../../experiment';

/** A parsed `/labline` command, or the usage to show. */
export type SlashCommand =
  | { kind: 'approve'; experimentId: string; comment?: string }
  | { kind: 'reject'; experimentId: string; reason: string }
  | { kind: 'status'; experimentId: string }
  | { kind: 'help'; problem?: string };

/** How to use the command, for `help` and every mistake. */
export function slashUsage(command = '/labline'): string {
  return [
    `\`${command} approve <experiment-id> [comment]\` approves the gate the experiment waits at (a failure gate: retry; unmet deliverables: accept anyway)`,
    `\`${command} reject <experiment-id> <reason>\` rejects it (a failure or deliverables gate: abort); the reason is required`,
    `\`${command} status <experiment-id>\` shows its stage, what it waits for and who decided what`,
  ].join('\n');
}

export function parseSlashCommand(text: string): SlashCommand {
  // The comment or reason is kept as typed, spaces and line breaks included.
  const match = /^\s*(\S*)(?:\s+(\S+))?(?:\s+([\s\S]*))?$/.exec(text) ?? [];
  const [, verb = '', id, rest = ''] = match;
  const tail = rest.trim();
  const action = verb.toLowerCase();
  if (action === '' || action === 'help') return { kind: 'help' };
  if (!['approve', 'reject', 'status'].includes(action))
    return { kind: 'help', problem: `"${verb}" is not a Labline command.` };
  if (id === undefined) return { kind: 'help', problem: `\`${action}\` needs an experiment id.` };
  if (!EXPERIMENT_ID_PATTERN.test(id) && !CAMPAIGN_ID_PATTERN.test(id))
    return {
      kind: 'help',
      problem: `"${id}" is not an experiment or campaign id (they look like \`exp-lr-sweep-03\` or \`camp-lr-grid\`).`,
    };
  if (action === 'status') return { kind: 'status', experimentId: id };
  if (action === 'approve') return { kind: 'approve', experimentId: id, ...(tail ? { comment: tail } : {}) };
  if (!tail) return { kind: 'help', problem: '`reject` needs a reason after the experiment id.' };
  return { kind: 'reject', experimentId: id, reason: tail };
}
