/**
 * A decision asked for in Slack, carried out: is the gate open (and, for a button, the same opening it was
 * posted for), may this Slack user decide there, then the signal through the client API, and what the
 * workflow made of it. Nothing is signalled unless the gate is open and the user is one of its approvers;
 * decisions on one experiment are taken one at a time, so a double click gives one decision.
 */
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import type {
  DecisionChoice,
  DecisionRecord,
  DecisionSignal,
  ExperimentStatus,
  GateName,
} from '../../experiment';
import type { SlackActor, SlackDirectory } from '../../activities/notify/slack-directory';
import { decide, experimentStatus } from '../experiments';

/** A decision someone asked for in Slack. */
export interface SlackDecisionRequest {
  experimentId: string;
  /** Who asked. */
  actor: SlackActor;
  signal: DecisionSignal;
  choice?: DecisionChoice;
  comment?: string;
  /** From a button: the gate it was posted for. Absent (slash command): the gate that is open. */
  gate?: GateName;
  /** From a button: the opening of the gate it was posted for (`waiting.since`). */
  since?: string;
}

/** What came of it. */
export type SlackDecisionResult =
  /** The workflow took the decision. */
  | { kind: 'decided'; record: DecisionRecord }
  /** Nothing was signalled: why, in words for the person who asked. */
  | { kind: 'refused'; reason: string }
  /** Signalled, but the workflow recorded it without effect (e.g. decided meanwhile from the CLI). */
  | { kind: 'ignored'; record: DecisionRecord };

export interface SlackDecisionsDeps {
  client: Client;
  directory: SlackDirectory;
  /** A Slack user's email (users.info), for approvers known by email. */
  emailOf: (userId: string) => Promise<string | undefined>;
}

export class SlackDecisions {
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(private readonly deps: SlackDecisionsDeps) {}

  /** Carries out one decision; decisions on the same experiment wait for each other. */
  async decide(request: SlackDecisionRequest): Promise<SlackDecisionResult> {
    return this.oneAtATime(request.experimentId, () => this.decideNow(request));
  }

  /** The experiment's status, or a sentence saying why there is none. */
  async status(experimentId: string): Promise<ExperimentStatus | { missing: string }> {
    try {
      return await experimentStatus(this.deps.client, experimentId);
    } catch (error) {
      if (error instanceof WorkflowNotFoundError)
        return { missing: `There is no experiment \`${experimentId}\`.` };
      throw error;
    }
  }

  private async decideNow(request: SlackDecisionRequest): Promise<SlackDecisionResult> {
    const { experimentId, actor } = request;
    const status = await this.status(experimentId);
    if ('missing' in status) return { kind: 'refused', reason: status.missing };
    const closed = whyNotOpen(status, request);
    if (closed) return { kind: 'refused', reason: closed };
    const waiting = status.waiting!;
    const allowed = await this.deps.directory.authorize(actor, waiting.approvers, this.deps.emailOf);
    if (!allowed.allowed) return { kind: 'refused', reason: `${allowed.reason} Nothing was changed.` };

    const before = status.decisions.length;
    await decide(this.deps.client, experimentId, request.signal, {
      gate: waiting.gate,
      by: allowed.by,
      source: 'slack',
      ...(request.choice ? { choice: request.choice } : {}),
      ...(request.comment ? { comment: request.comment } : {}),
    });
    // A query after a signal sees it: Temporal answers queries after the workflow task that takes the signal.
    const after = await experimentStatus(this.deps.client, experimentId);
    const record = after.decisions
      .slice(before)
      .find(
        (d) =>
          d.by === allowed.by &&
          d.gate === waiting.gate &&
          d.source === 'slack' &&
          d.signal === request.signal,
      );
    if (!record)
      return {
        kind: 'refused',
        reason: 'The decision was sent, but the experiment has not recorded it yet.',
      };
    return record.outcome ? { kind: 'decided', record } : { kind: 'ignored', record };
  }

  private async oneAtATime<T>(key: string, run: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(key) ?? Promise.resolve();
    const next = previous.then(run, run);
    this.queues.set(key, next);
    const forget = () => {
      if (this.queues.get(key) === next) this.queues.delete(key);
    };
    void next.then(forget, forget);
    return next;
  }
}

/** Why the decision cannot be taken now, or `undefined` when the gate it is for is open. */
function whyNotOpen(status: ExperimentStatus, request: SlackDecisionRequest): string | undefined {
  const { waiting } = status;
  const id = `\`${status.experiment_id}\``;
  const gate = request.gate ?? waiting?.gate;
  const lastDecided = gate
    ? [...status.decisions].reverse().find((d) => d.gate === gate && d.outcome !== undefined)
    : undefined;
  const already = lastDecided
    ? ` It was decided: ${lastDecided.outcome} by ${lastDecided.by} at ${lastDecided.at}.`
    : '';
  if (!waiting) return `${id} waits for no decision now (stage: ${status.stage}).${already}`;
  if (request.gate && request.gate !== waiting.gate)
    return `The ${request.gate} gate of ${id} is no longer open; it waits at the ${waiting.gate} gate now.${already}`;
  if (request.since && request.since !== waiting.since)
    return `This request is from an earlier opening of the ${waiting.gate} gate of ${id}, which was decided.${already} Use the latest request.`;
  return undefined;
}
