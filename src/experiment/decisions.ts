import { z } from 'zod';
import { formatDuration } from './quantities';

/**
 * The points where an experiment waits for a person: `launch` (start training?), `failure` (a training
 * attempt failed: retry or abort?), `deliverables` (required deliverables not met: accept anyway, rerun or
 * abort?), `budget` (the LLM budget would be exceeded: continue?), `publish` (publish the report?).
 */
export const GateName = z.enum(['launch', 'publish', 'failure', 'deliverables', 'budget']);
/** The points where an experiment waits for a person. */
export type GateName = z.infer<typeof GateName>;

/** The two decision signals. Their wire names are `approve` and `reject`; both carry a {@link Decision}. */
export const DecisionSignal = z.enum(['approve', 'reject']);
/** The two decision signals. */
export type DecisionSignal = z.infer<typeof DecisionSignal>;

/**
 * A specific choice at a gate with more than two ways out. `retry` (failure gate) and `accept` / `rerun`
 * (deliverables gate) go with the `approve` signal; `abort` goes with `reject`.
 */
export const DecisionChoice = z.enum(['retry', 'abort', 'accept', 'rerun']);
/** A specific choice at a gate with more than two ways out. */
export type DecisionChoice = z.infer<typeof DecisionChoice>;

/** Where a signalled decision came from. */
export const DecisionChannel = z.enum(['cli', 'slack', 'github', 'api']);
/** Where a signalled decision came from. */
export type DecisionChannel = z.infer<typeof DecisionChannel>;

/**
 * The payload of the `approve` and `reject` signals. Without `choice`, `approve` means the gate's forward
 * way (launch/publish/budget: approved; failure: retry; deliverables: accept anyway) and `reject` means
 * stop (rejected; abort). `choice: rerun` with `approve` reruns training at the deliverables gate.
 */
export const Decision = z.strictObject({
  /** The gate decided. A decision for a gate that is not open is recorded and ignored. */
  gate: GateName,
  /** Who decides: CLI user (`--as` or the OS user), Slack user, or API caller. Checked against the approvers. */
  by: z.string().trim().min(1),
  /** Why, in the decider's words; shown in the status and reports. */
  comment: z.string().optional(),
  /** A specific choice at the failure or deliverables gate (see {@link DecisionChoice}). */
  choice: DecisionChoice.optional(),
  /** Where the decision came from. Default `"api"`. */
  source: DecisionChannel.default('api'),
});
/** The payload of the `approve` and `reject` signals. */
export type Decision = z.infer<typeof Decision>;
/** A {@link Decision} as a client sends it, before defaults. */
export type DecisionInput = z.input<typeof Decision>;

/**
 * The argument of the `decide` update: a decision bound to one opening of one gate. `opening` is the
 * gate's `waiting.opening`, which every request, reminder, Slack message and CLI prompt carries; a decision
 * for an earlier opening is refused, so a request answered late or replayed cannot decide a later one.
 */
export const DecideRequest = Decision.extend({
  /** Approve (the gate's forward way, or `choice`) or reject. */
  action: DecisionSignal,
  /** The opening of the gate this decision answers (`waiting.opening`). */
  opening: z.string().trim().min(1),
});
/** The argument of the `decide` update. */
export type DecideRequest = z.infer<typeof DecideRequest>;
/** A {@link DecideRequest} as a client sends it, before defaults. */
export type DecideRequestInput = z.input<typeof DecideRequest>;

/**
 * What a gate decided: `approved` / `rejected` (launch, publish, budget), `retry` / `abort` (failure),
 * `accept` / `rerun` / `abort` (deliverables).
 */
export const GateOutcome = z.enum(['approved', 'rejected', 'retry', 'abort', 'accept', 'rerun']);
/** What a gate decided. */
export type GateOutcome = z.infer<typeof GateOutcome>;

/** Where a recorded decision came from: a signal's channel, `auto` (gate disabled) or `timeout`. */
export const DecisionSource = z.enum(['cli', 'slack', 'github', 'api', 'auto', 'timeout']);
/** Where a recorded decision came from. */
export type DecisionSource = z.infer<typeof DecisionSource>;

/** The name automatic decisions are recorded under. */
export const AUTOMATIC_DECIDER = 'labline';

/**
 * One decision as the status and the result record it, including decisions that changed nothing: those
 * carry `ignored` (why) instead of `outcome`.
 */
export const DecisionRecord = z
  .object({
    /** The gate. */
    gate: GateName,
    /** Who decided; `labline` for automatic decisions. */
    by: z.string(),
    /** When, ISO 8601 (workflow time). */
    at: z.iso.datetime({ offset: true }),
    /** Where it came from. */
    source: DecisionSource,
    /** The signal received; absent for automatic decisions. */
    signal: DecisionSignal.optional(),
    /** The choice asked for, if any. */
    choice: DecisionChoice.optional(),
    /** What the gate decided; absent when the decision was ignored. */
    outcome: GateOutcome.optional(),
    /** The decider's comment, or why an automatic decision was taken. */
    comment: z.string().optional(),
    /** Why the decision changed nothing: gate not open, already decided, not an approver, invalid choice. */
    ignored: z.string().optional(),
    /** The opening of the gate it answered (`waiting.opening`); decisions taken by update carry it. */
    opening: z.string().optional(),
    /** The update's id: a request is taken at most once, however often it is sent. */
    request_id: z.string().optional(),
  })
  .refine((record) => (record.outcome === undefined) !== (record.ignored === undefined), {
    message: 'a decision record has either an outcome or a reason it was ignored',
  });
/** One decision as the status and the result record it. */
export type DecisionRecord = z.infer<typeof DecisionRecord>;

const FORWARD: Record<GateName, GateOutcome> = {
  launch: 'approved',
  publish: 'approved',
  budget: 'approved',
  failure: 'retry',
  deliverables: 'accept',
};

const STOP: Record<GateName, GateOutcome> = {
  launch: 'rejected',
  publish: 'rejected',
  budget: 'rejected',
  failure: 'abort',
  deliverables: 'abort',
};

/** Choices each gate accepts with each signal. */
const CHOICES: Record<GateName, Record<DecisionSignal, readonly DecisionChoice[]>> = {
  launch: { approve: [], reject: [] },
  publish: { approve: [], reject: [] },
  budget: { approve: [], reject: [] },
  failure: { approve: ['retry'], reject: ['abort'] },
  deliverables: { approve: ['accept', 'rerun'], reject: ['abort'] },
};

/** The outcome of approving a gate without a choice; also what a disabled gate and `on_timeout: approve` do. */
export function approvalOutcome(gate: GateName): GateOutcome {
  return FORWARD[gate];
}

/** The outcome of rejecting a gate; also what `on_timeout: reject` and an expired escalation do. */
export function rejectionOutcome(gate: GateName): GateOutcome {
  return STOP[gate];
}

/**
 * The outcome a signal asks for at its gate, or why the choice does not fit (e.g. `rerun` with `reject`,
 * or any choice at the launch gate).
 */
export function requestedOutcome(
  signal: DecisionSignal,
  decision: Pick<Decision, 'gate' | 'choice'>,
): { outcome: GateOutcome } | { invalid: string } {
  const allowed = CHOICES[decision.gate][signal];
  if (decision.choice === undefined)
    return { outcome: signal === 'approve' ? FORWARD[decision.gate] : STOP[decision.gate] };
  if (allowed.includes(decision.choice)) return { outcome: decision.choice };
  return {
    invalid:
      allowed.length === 0
        ? `the ${decision.gate} gate takes no choice, only approve or reject`
        : `choice "${decision.choice}" does not go with ${signal} at the ${decision.gate} gate (it takes ${allowed.join(' or ')})`,
  };
}

function normalizeName(name: string): string {
  return name.trim().replace(/^@/, '').toLowerCase();
}

/** Whether `by` may decide, given the gate's approvers (empty: anyone). Case and a leading `@` do not matter. */
export function isApprover(by: string, approvers: readonly string[]): boolean {
  if (approvers.length === 0) return true;
  const who = normalizeName(by);
  return approvers.some((approver) => normalizeName(approver) === who);
}

/** The gate a workflow is waiting at, with who may decide there now. */
export interface OpenGate {
  /** The gate. */
  gate: GateName;
  /** Who may decide (the gate's approvers, plus its escalation approvers once escalated); empty: anyone. */
  approvers: readonly string[];
}

/** Everything {@link judgeDecision} needs; all plain data, so the workflow can call it deterministically. */
export interface DecisionContext {
  /** The signal received. */
  signal: DecisionSignal;
  /** Its payload, parsed with {@link Decision}. */
  decision: Decision;
  /** Workflow time of arrival, ISO 8601. */
  at: string;
  /** The gate the workflow waits at, or `undefined` when it waits at none. */
  open: OpenGate | undefined;
  /** The last decision that took effect at the signalled gate, if any, to explain repeats. */
  previous?: DecisionRecord | undefined;
}

/**
 * Why a decision cannot take effect, or its outcome: refused when its gate is not the open one (including a
 * repeat after the gate was decided), when the decider is not an approver, or when its choice does not fit
 * the gate and signal.
 */
export function decisionOutcome(context: DecisionContext): { outcome: GateOutcome } | { refused: string } {
  const { signal, decision, open, previous } = context;
  if (open?.gate !== decision.gate) {
    if (previous?.outcome !== undefined)
      return {
        refused: `the ${decision.gate} gate was already decided: ${previous.outcome} by ${previous.by} at ${previous.at}`,
      };
    return {
      refused: open
        ? `the ${decision.gate} gate is not open; the experiment waits at the ${open.gate} gate`
        : `the ${decision.gate} gate is not open; the experiment waits for no decision`,
    };
  }
  if (!isApprover(decision.by, open.approvers))
    return {
      refused: `${decision.by} is not an approver of the ${decision.gate} gate (${open.approvers.join(', ')})`,
    };
  const requested = requestedOutcome(signal, decision);
  return 'invalid' in requested ? { refused: requested.invalid } : requested;
}

/**
 * Records a signalled decision, deciding whether it takes effect (see {@link decisionOutcome}): an ignored
 * one carries the reason instead of an outcome.
 */
export function judgeDecision(context: DecisionContext): DecisionRecord {
  const { signal, decision, at } = context;
  const record: DecisionRecord = {
    gate: decision.gate,
    by: decision.by,
    at,
    source: decision.source,
    signal,
  };
  if (decision.choice !== undefined) record.choice = decision.choice;
  if (decision.comment !== undefined) record.comment = decision.comment;
  const judged = decisionOutcome(context);
  return 'refused' in judged
    ? { ...record, ignored: judged.refused }
    : { ...record, outcome: judged.outcome };
}

/** Records the automatic approval of a gate that the spec turned off (`approvals.<gate>.enabled: false`). */
export function gateDisabledDecision(gate: GateName, at: string): DecisionRecord {
  return {
    gate,
    by: AUTOMATIC_DECIDER,
    at,
    source: 'auto',
    outcome: FORWARD[gate],
    comment: `approved automatically: approvals.${gate}.enabled is false`,
  };
}

/**
 * Records what a gate's timeout decided: `approve` (its `on_timeout: approve`) or `reject` (`on_timeout:
 * reject`, or the end of an escalation).
 *
 * @param waitedSeconds how long the gate was open, for the comment
 */
export function timeoutDecision(
  gate: GateName,
  action: DecisionSignal,
  at: string,
  waitedSeconds: number,
): DecisionRecord {
  return {
    gate,
    by: AUTOMATIC_DECIDER,
    at,
    source: 'timeout',
    outcome: action === 'approve' ? FORWARD[gate] : STOP[gate],
    comment: `nobody decided within ${formatDuration(waitedSeconds)}; ${action === 'approve' ? 'approved' : 'rejected'} by the gate's on_timeout`,
  };
}
