/**
 * A decision asked for in Slack, carried out: is the gate open (and, for a button, the same opening it was
 * posted for), may this Slack user decide there, then the `decide` update through the client API, which
 * returns the decision recorded or the workflow's refusal. A slash command is bound to the opening open when
 * it arrives; a request id derived from the signed request makes a replay change nothing. Decisions on one
 * experiment or campaign are taken one at a time, so a double click gives one decision.
 */
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { DecisionChoice, DecisionRecord, DecisionSignal, GateName } from '../../experiment';
import type { SlackActor, SlackDirectory } from '../../activities/notify/slack-directory';
import type { GatesView } from '../../workflows';
import { decide, DecisionRefused, gatesOf } from '../experiments';

/** A decision someone asked for in Slack. */
export interface SlackDecisionRequest {
  /** The experiment or campaign. */
  experimentId: string;
  /** Who asked. */
  actor: SlackActor;
  signal: DecisionSignal;
  choice?: DecisionChoice;
  comment?: string;
  /** From a button: the gate it was posted for. Absent (slash command): the gate that is open. */
  gate?: GateName;
  /** From a button: the opening of the gate it was posted for. Absent (slash command): the current one. */
  opening?: string;
  /** From a button posted before openings existed: when the gate opened (`waiting.since`). */
  since?: string;
  /** Idempotency key of the Slack request (see `slackRequestKey`): taken at most once. */
  requestId?: string;
}

/** What came of it. */
export type SlackDecisionResult =
  /** The workflow took the decision. */
  | { kind: 'decided'; record: DecisionRecord }
  /** Nothing was recorded: why, in words for the person who asked. */
  | { kind: 'refused'; reason: string };

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

  /** The open gate and the decisions so far, or a sentence saying why there are none. */
  private async gates(experimentId: string): Promise<GatesView | { missing: string }> {
    try {
      return await gatesOf(this.deps.client, experimentId);
    } catch (error) {
      if (error instanceof WorkflowNotFoundError)
        return { missing: `There is no experiment or campaign \`${experimentId}\`.` };
      throw error;
    }
  }

  private async decideNow(request: SlackDecisionRequest): Promise<SlackDecisionResult> {
    const { experimentId, actor } = request;
    const gates = await this.gates(experimentId);
    if ('missing' in gates) return { kind: 'refused', reason: gates.missing };
    const closed = whyNotOpen(experimentId, gates, request);
    if (closed) return { kind: 'refused', reason: closed };
    const waiting = gates.waiting!;
    const allowed = await this.deps.directory.authorize(actor, waiting.approvers, this.deps.emailOf);
    if (!allowed.allowed) return { kind: 'refused', reason: `${allowed.reason} Nothing was changed.` };
    try {
      const record = await decide(this.deps.client, experimentId, request.signal, {
        gate: waiting.gate,
        // A button answers the opening it was posted for; a slash command the one open when it arrived.
        opening: request.opening ?? waiting.opening,
        by: allowed.by,
        source: 'slack',
        ...(request.choice ? { choice: request.choice } : {}),
        ...(request.comment ? { comment: request.comment } : {}),
        ...(request.requestId ? { requestId: request.requestId } : {}),
      });
      return { kind: 'decided', record };
    } catch (error) {
      if (error instanceof DecisionRefused)
        return { kind: 'refused', reason: `${capitalize(error.reason)}. Nothing was changed.` };
      throw error;
    }
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

const capitalize = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

/** Why the decision cannot be taken now, or `undefined` when the gate it is for is open. */
function whyNotOpen(
  experimentId: string,
  gates: GatesView,
  request: SlackDecisionRequest,
): string | undefined {
  const { waiting } = gates;
  const id = `\`${experimentId}\``;
  const gate = request.gate ?? waiting?.gate;
  const lastDecided = gate
    ? [...gates.decisions].reverse().find((d) => d.gate === gate && d.outcome !== undefined)
    : undefined;
  const already = lastDecided
    ? ` It was decided: ${lastDecided.outcome} by ${lastDecided.by} at ${lastDecided.at}.`
    : '';
  if (!waiting) return `${id} waits for no decision now.${already}`;
  if (request.gate && request.gate !== waiting.gate)
    return `The ${request.gate} gate of ${id} is no longer open; it waits at the ${waiting.gate} gate now.${already}`;
  const earlier =
    (request.opening !== undefined && request.opening !== waiting.opening) ||
    (request.opening === undefined && request.since !== undefined && request.since !== waiting.since);
  if (earlier)
    return `This request is from an earlier opening of the ${waiting.gate} gate of ${id}, which was decided.${already} Use the latest request.`;
  return undefined;
}
