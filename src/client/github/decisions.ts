/**
 * A decision asked for in a GitHub comment, carried out: the comment is a command, on an experiment issue
 * Labline opened, by someone allowed to decide the gate that is open (an approver by their login in the
 * settings' `github.approvers`, or, at a gate anyone may decide, anyone with write access to the
 * repository); then the `decide` update, as from the CLI and Slack. The comment id is the update id, so a
 * comment taken twice (a redelivered webhook, a poll after a restart) decides once. Every command gets a
 * reply comment: what was recorded, or why nothing changed.
 */
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { runNameOfIssue, type DecisionRecord } from '../../experiment';
import { splitRepo, type GithubClient } from '../../activities/notebook/github-client';
import type { GithubSettings } from '../../activities/notebook/github-settings';
import { decide, DecisionRefused, gatesOf } from '../experiments';
import { parseGithubCommand } from './commands';

/** An issue comment, as the webhook payload and the REST API both give it. */
export interface GithubComment {
  id: number;
  body: string;
  login: string;
  /** `User`, `Bot` or `Organization`: comments by bots (Labline's own replies among them) are ignored. */
  userType: string;
  issue: { number: number; body: string | null };
}

/** What came of a comment. */
export type GithubDecisionResult =
  | { kind: 'ignored'; reason: string }
  | { kind: 'decided'; record: DecisionRecord }
  | { kind: 'refused'; reason: string };

export interface GithubDecisionsDeps {
  client: Client;
  github: GithubClient;
  settings: GithubSettings;
}

export class GithubDecisions {
  private readonly owner: string;
  private readonly repo: string;
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(private readonly deps: GithubDecisionsDeps) {
    [this.owner, this.repo] = splitRepo(deps.settings.repo);
  }

  /** Takes one comment; comments on the same experiment are taken one at a time. */
  async handle(comment: GithubComment): Promise<GithubDecisionResult> {
    if (comment.userType === 'Bot') return { kind: 'ignored', reason: 'a comment by a bot' };
    const command = parseGithubCommand(comment.body);
    if (!command) return { kind: 'ignored', reason: 'not a /labline command' };
    const experimentId = runNameOfIssue(comment.issue.body);
    if (!experimentId)
      return { kind: 'ignored', reason: `issue #${comment.issue.number} is not an experiment issue` };
    const previous = this.queues.get(experimentId) ?? Promise.resolve();
    const next = previous.then(
      () => this.decideNow(experimentId, comment, command),
      () => this.decideNow(experimentId, comment, command),
    );
    this.queues.set(experimentId, next);
    void next.finally(() => {
      if (this.queues.get(experimentId) === next) this.queues.delete(experimentId);
    });
    const result = await next;
    await this.reply(comment, result);
    return result;
  }

  private async decideNow(
    experimentId: string,
    comment: GithubComment,
    command: NonNullable<ReturnType<typeof parseGithubCommand>>,
  ): Promise<GithubDecisionResult> {
    if (command.kind === 'invalid')
      return { kind: 'refused', reason: `${command.reason} Nothing was changed.` };
    let waiting;
    try {
      waiting = (await gatesOf(this.deps.client, experimentId)).waiting;
    } catch (error) {
      if (error instanceof WorkflowNotFoundError)
        return { kind: 'refused', reason: `There is no experiment \`${experimentId}\` on this Temporal.` };
      throw error;
    }
    if (!waiting)
      return {
        kind: 'refused',
        reason: `\`${experimentId}\` waits for no decision now. Nothing was changed.`,
      };
    const by = await this.authorize(comment.login, waiting.approvers);
    if ('refused' in by) return { kind: 'refused', reason: `${by.refused} Nothing was changed.` };
    try {
      const record = await decide(this.deps.client, experimentId, command.signal, {
        gate: waiting.gate,
        opening: waiting.opening,
        by: by.name,
        source: 'github',
        ...(command.comment ? { comment: command.comment } : {}),
        requestId: `github-comment-${comment.id}`,
      });
      return { kind: 'decided', record };
    } catch (error) {
      if (error instanceof DecisionRefused)
        return { kind: 'refused', reason: `${error.reason}. Nothing was changed.` };
      throw error;
    }
  }

  /** The Labline name the decision is recorded under, or why this login may not decide. */
  private async authorize(
    login: string,
    approvers: readonly string[],
  ): Promise<{ name: string } | { refused: string }> {
    const byLogin = Object.entries(this.deps.settings.approvers);
    const named = byLogin.find(
      ([, approverLogin]) => approverLogin.toLowerCase() === login.toLowerCase(),
    )?.[0];
    if (approvers.length > 0) {
      if (named && approvers.includes(named)) return { name: named };
      const unmapped = approvers.filter((name) => this.deps.settings.approvers[name] === undefined);
      return {
        refused:
          `@${login} is not an approver of this gate; it may be decided by ${approvers.join(', ')}.` +
          (unmapped.length
            ? ` (${unmapped.join(', ')} ha${unmapped.length === 1 ? 's' : 've'} no login in the Labline settings' github.approvers.)`
            : ''),
      };
    }
    const { data } = await this.deps.github.rest.repos.getCollaboratorPermissionLevel({
      owner: this.owner,
      repo: this.repo,
      username: login,
    });
    if (data.permission === 'admin' || data.permission === 'write' || data.permission === 'maintain')
      return { name: named ?? login };
    return {
      refused: `@${login} has ${data.permission} access to ${this.deps.settings.repo}; deciding takes write access.`,
    };
  }

  private async reply(comment: GithubComment, result: GithubDecisionResult): Promise<void> {
    if (result.kind === 'ignored') return;
    const text =
      result.kind === 'decided'
        ? `Recorded: the ${result.record.gate} gate ${result.record.outcome ?? 'ignored'} by ${result.record.by} at ${result.record.at}.`
        : `Not taken: ${result.reason}`;
    await this.deps.github.rest.issues.createComment({
      owner: this.owner,
      repo: this.repo,
      issue_number: comment.issue.number,
      body: `<!-- labline:reply=${comment.id} -->\n@${comment.login} ${text}`,
    });
  }
}
