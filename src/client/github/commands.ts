/**
 * The decisions a GitHub comment can carry: `/labline approve [comment]` and `/labline reject <reason>`,
 * on the first line of the comment. Anything else is not a command and is left alone.
 */
import type { DecisionSignal } from '../../experiment';

/** A command read from a comment, or why it cannot be taken. */
export type GithubCommand =
  { kind: 'decision'; signal: DecisionSignal; comment?: string } | { kind: 'invalid'; reason: string };

/** The command on the comment's first line; `undefined` when the comment is not addressed to Labline. */
export function parseGithubCommand(body: string): GithubCommand | undefined {
  const firstLine = body.trim().split(/\r?\n/, 1)[0]?.trim() ?? '';
  const match = /^\/labline(?:\s+(\S+))?(?:\s+(.*))?$/i.exec(firstLine);
  if (!match) return undefined;
  const verb = match[1]?.toLowerCase();
  const rest = match[2]?.trim();
  if (verb === 'approve') return { kind: 'decision', signal: 'approve', ...(rest ? { comment: rest } : {}) };
  if (verb === 'reject') {
    if (!rest) return { kind: 'invalid', reason: 'A rejection needs a reason: `/labline reject <why>`.' };
    return { kind: 'decision', signal: 'reject', comment: rest };
  }
  return {
    kind: 'invalid',
    reason: `\`/labline ${verb ?? ''}\` is not a command here: use \`/labline approve [comment]\` or \`/labline reject <reason>\`.`,
  };
}
