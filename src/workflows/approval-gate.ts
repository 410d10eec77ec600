/**
 * A human decision inside a workflow: ask, remind on durable timers, escalate, and apply the gate's
 * timeout action. Decisions arrive as the `decide` update, bound to one opening of one gate, and are judged
 * by `decisionOutcome` from the domain layer; the update's validator refuses what cannot take effect before
 * anything enters history. Workflows started before decisions were updates still take the old signals.
 */
import {
  CancellationScope,
  condition,
  currentUpdateInfo,
  defineQuery,
  defineSignal,
  defineUpdate,
  isCancellation,
  log,
  patched,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import {
  DecideRequest,
  Decision,
  GateName as GateNames,
  decisionOutcome,
  gateDisabledDecision,
  judgeDecision,
  rejectionOutcome,
  timeoutDecision,
  type DecisionRecord,
  type DecisionSignal,
  type GateName,
  type OpenGate,
  type GateOutcome,
  type ApprovalDetails,
  type GateSpec,
  type Waiting,
} from '../experiment';

/** Decides the open gate; returns the recorded decision, or is refused with the reason. Experiments and campaigns. */
export const decideUpdate = defineUpdate<DecisionRecord, [DecideRequest]>('decide');
/** The open gate (with its opening) and the decisions so far. Experiments and campaigns. */
export const gatesQuery = defineQuery<GatesView>('gates');
/** Decisions of workflows started before the `decide` update; newer workflows record them as ignored. */
export const approveSignal = defineSignal<[unknown]>('approve');
export const rejectSignal = defineSignal<[unknown]>('reject');

/** What `gatesQuery` answers. */
export interface GatesView {
  waiting?: Waiting;
  decisions: DecisionRecord[];
}

/**
 * Since this patch decisions are taken by the `decide` update only; the `approve` and `reject` signals are
 * recorded as ignored with a pointer to the update. Workflows started before it keep taking the signals.
 */
export const DECISIONS_BY_UPDATE_PATCH = 'labline-decisions-by-update';

/** Workflow time in epoch milliseconds (the sandbox makes `Date` deterministic). */
const nowMs = () => new Date().getTime();

/** What asking a person looks like from the workflow: the notifier activities. */
export interface GateMessenger {
  request(gate: GateName, waiting: Waiting, round: number): Promise<void>;
  remind(gate: GateName, waiting: Waiting, round: number): Promise<void>;
  /** `waiting` is the gate as it was when it closed (its `since` finds the request to update). */
  decided(gate: GateName, record: DecisionRecord, round: number, waiting: Waiting): Promise<void>;
}

/**
 * Since this patch, notifications never hold a gate up: requests and reminders run beside the wait (a
 * notifier that is down or rate limited retries while the gate can still be decided from the CLI), are
 * cancelled once the gate is decided, and the "decided" update runs beside what follows. Older histories
 * awaited each notification in turn; `patched` keeps them replaying that way.
 */
export const NOTIFICATIONS_IN_BACKGROUND_PATCH = 'labline-gate-notifications-in-background';

/**
 * Since this patch the gate a workflow waits at is also in its memo (`waiting`: the gate's name, removed once
 * it is decided), which visibility returns with every listing: `labline list` shows it for thousands of
 * experiments without asking each one. Older histories have no such memo changes.
 */
export const WAITING_IN_MEMO_PATCH = 'labline-waiting-in-memo';

/** The notifications of one opening of a gate. */
class GateNotices {
  private readonly inFlight: { scope: CancellationScope; done: Promise<void> }[] = [];

  constructor(
    private readonly inBackground: boolean,
    private readonly context: { gate: GateName; round: number },
    private readonly finished: Promise<void>[],
  ) {}

  /** Sends a request or a reminder: in the background since the patch, awaited before it. */
  async send(kind: string, notify: () => Promise<void>): Promise<void> {
    if (!this.inBackground) return notify();
    const scope = new CancellationScope();
    const done = scope.run(notify).catch((error: unknown) => this.warn(kind, error));
    this.inFlight.push({ scope, done });
  }

  /** A decided gate needs no more requests or reminders: cancels those still retrying, waits until they stop. */
  async settle(): Promise<void> {
    if (!this.inBackground) return;
    for (const notice of this.inFlight) notice.scope.cancel();
    await Promise.all(this.inFlight.map((notice) => notice.done));
  }

  /** Sends the "decided" update: in the background since the patch (see {@link ApprovalGates.flush}). */
  async finish(notify: () => Promise<void>): Promise<void> {
    if (!this.inBackground) return notify();
    this.finished.push(notify().catch((error: unknown) => this.warn('decided', error)));
  }

  private warn(kind: string, error: unknown): void {
    if (isCancellation(error)) return;
    log.warn('approval notification failed; the gate can still be decided from the CLI', {
      ...this.context,
      notification: kind,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

/** Open gates and the decisions taken at them; the workflow's `status` reads `waiting` and `decisions`. */
export class ApprovalGates {
  readonly decisions: DecisionRecord[] = [];
  waiting: Waiting | undefined;
  /** Whether this workflow records its open gate in the memo; decided at the first gate. */
  private waitingInMemo: boolean | undefined;
  private pending: DecisionRecord | undefined;
  private rounds = 0;
  private readonly finishedNotices: Promise<void>[] = [];

  constructor(
    private readonly messenger: GateMessenger,
    private readonly onWaitingChange: () => void,
  ) {}

  /** Handles an `approve` or `reject` signal; ignored decisions are recorded with why. */
  receive(signal: DecisionSignal, decision: Decision): void {
    const record = judgeDecision({
      signal,
      decision,
      at: new Date().toISOString(),
      open: this.openGate(),
      previous: this.lastTaken(decision.gate),
    });
    this.decisions.push(record);
    if (record.outcome && !this.pending) this.pending = record;
  }

  /**
   * Why a `decide` request cannot take effect now, or `undefined` when it can: a malformed request, a gate
   * that is not open, an opening that is not the current one, a request id already taken, an approver who
   * is not allowed, a choice that does not fit. The update's validator: nothing refused enters history.
   */
  refusal(payload: unknown, requestId: string | undefined): string | undefined {
    const parsed = DecideRequest.safeParse(payload);
    if (!parsed.success)
      return `malformed decision: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'decision'}: ${i.message}`).join('; ')}`;
    const request = parsed.data;
    const taken =
      requestId === undefined ? undefined : this.decisions.find((d) => d.request_id === requestId);
    if (taken) return `request ${requestId} was already taken: ${describeRecord(taken)}`;
    const open = this.openGate();
    if (open?.gate === request.gate && request.opening !== this.waiting?.opening)
      return (
        `opening ${request.opening} of the ${request.gate} gate is not the current one (${this.waiting?.opening}): ` +
        'the request it answers was decided earlier; decide the current opening instead'
      );
    const judged = decisionOutcome({
      signal: request.action,
      decision: request,
      at: '',
      open,
      previous: this.lastTaken(request.gate),
    });
    if ('refused' in judged) return judged.refused;
    return undefined;
  }

  /** Takes a `decide` request that {@link refusal} let through; returns the record the status shows. */
  take(request: DecideRequest, requestId: string | undefined): DecisionRecord {
    const record: DecisionRecord = {
      ...judgeDecision({
        signal: request.action,
        decision: request,
        at: new Date().toISOString(),
        open: this.openGate(),
        previous: this.lastTaken(request.gate),
      }),
      opening: request.opening,
      ...(requestId === undefined ? {} : { request_id: requestId }),
    };
    this.decisions.push(record);
    if (record.outcome && !this.pending) this.pending = record;
    return record;
  }

  /** Records a signalled decision as ignored: since {@link DECISIONS_BY_UPDATE_PATCH} only the update decides. */
  receiveRetiredSignal(signal: DecisionSignal, payload: unknown): void {
    const raw = (payload ?? {}) as { gate?: unknown; by?: unknown };
    const gate = GateNames.safeParse(raw.gate);
    this.decisions.push({
      gate: gate.success ? gate.data : (this.waiting?.gate ?? 'launch'),
      by: typeof raw.by === 'string' && raw.by.trim() ? raw.by : 'unknown',
      at: new Date().toISOString(),
      source: 'api',
      signal,
      ignored:
        'decisions are taken with the `decide` update since this experiment started; the signal changed ' +
        'nothing. Use `labline approve`/`labline reject` or the client API (decide) of this Labline version.',
    });
  }

  /** The gate open for decisions now, or `undefined` once one has been taken and not yet applied. */
  private openGate(): OpenGate | undefined {
    if (!this.waiting || this.pending) return undefined;
    return { gate: this.waiting.gate, approvers: this.waiting.approvers };
  }

  private lastTaken(gate: GateName): DecisionRecord | undefined {
    return [...this.decisions].reverse().find((d) => d.gate === gate && d.outcome);
  }

  /** Records a decision that could not be parsed, so the status says why nothing happened. */
  receiveMalformed(signal: DecisionSignal, gate: GateName, by: string, problem: string): void {
    this.decisions.push({
      gate,
      by,
      at: new Date().toISOString(),
      source: 'api',
      signal,
      ignored: `malformed decision: ${problem}`,
    });
  }

  /**
   * Waits for the "decided" updates still being sent, so that the experiment's last message is updated
   * before the workflow ends. Bounded by the notify activities' own timeouts.
   */
  async flush(): Promise<void> {
    await Promise.all(this.finishedNotices);
  }

  /** Puts the gate waited at (or none) in the memo, for workflows started since {@link WAITING_IN_MEMO_PATCH}. */
  private showInMemo(gate: GateName | undefined): void {
    this.waitingInMemo ??= patched(WAITING_IN_MEMO_PATCH);
    if (this.waitingInMemo) upsertMemo({ waiting: gate ?? null });
  }

  /**
   * Waits for the gate's decision, with reminders, escalation and the timeout action of its spec.
   *
   * @param details what is to be approved, field by field, for rich notifications
   */
  async decide(
    gate: GateName,
    spec: GateSpec,
    question: string,
    details?: ApprovalDetails,
  ): Promise<GateOutcome> {
    const round = ++this.rounds;
    if (!spec.enabled) {
      const record = gateDisabledDecision(gate, new Date().toISOString());
      this.decisions.push(record);
      return record.outcome!;
    }
    // Decided once per opening, so that a replay takes the same branch for the whole gate.
    const notices = new GateNotices(
      patched(NOTIFICATIONS_IN_BACKGROUND_PATCH),
      { gate, round },
      this.finishedNotices,
    );
    const openedAt = nowMs();
    let deadline = openedAt + spec.timeout * 1000;
    this.waiting = {
      gate,
      question,
      since: new Date(openedAt).toISOString(),
      // Unique within the workflow's runs: the run id tells a campaign's runs apart after continue-as-new.
      opening: `${workflowInfo().runId.slice(0, 8)}-${gate}-${round}`,
      approvers: [...spec.approvers],
      reminders_sent: 0,
      escalated: false,
      deadline: new Date(deadline).toISOString(),
      ...(details ? { details } : {}),
    };
    this.pending = undefined;
    this.onWaitingChange();
    this.showInMemo(gate);
    const opened = this.waiting;
    await notices.send('request', () => this.messenger.request(gate, opened, round));
    // Every wait is bounded: by the next reminder or the deadline, whichever comes first.
    for (;;) {
      const now = nowMs();
      const waiting = this.waiting;
      const nextReminder =
        waiting.reminders_sent < spec.max_reminders
          ? openedAt + (waiting.reminders_sent + 1) * spec.reminder_interval * 1000
          : Infinity;
      const wakeAt = Math.min(nextReminder, deadline);
      const decided = await condition(() => this.pending !== undefined, Math.max(1, wakeAt - now));
      if (decided) break;
      if (nowMs() < deadline) {
        waiting.reminders_sent += 1;
        this.onWaitingChange();
        await notices.send('reminder', () => this.messenger.remind(gate, waiting, round));
        continue;
      }
      if (spec.on_timeout === 'escalate' && !waiting.escalated) {
        waiting.escalated = true;
        waiting.approvers = [...spec.approvers, ...spec.escalation_approvers];
        deadline = nowMs() + spec.timeout * 1000;
        waiting.deadline = new Date(deadline).toISOString();
        this.onWaitingChange();
        await notices.send('escalation', () => this.messenger.request(gate, waiting, round));
        continue;
      }
      const action = spec.on_timeout === 'approve' ? 'approve' : 'reject';
      const waited = (nowMs() - openedAt) / 1000;
      this.pending = timeoutDecision(gate, action, new Date().toISOString(), waited);
      this.decisions.push(this.pending);
      break;
    }
    const record = this.pending!;
    this.waiting = undefined;
    this.pending = undefined;
    this.onWaitingChange();
    this.showInMemo(undefined);
    await notices.settle();
    await notices.finish(() => this.messenger.decided(gate, record, round, opened));
    return record.outcome ?? rejectionOutcome(gate);
  }
}

/** A decision in a sentence, for a refusal that points at it. */
function describeRecord(record: DecisionRecord): string {
  const what = record.outcome
    ? `${record.outcome} at the ${record.gate} gate`
    : `ignored (${record.ignored})`;
  return `${what} by ${record.by} at ${record.at}`;
}

/**
 * Wires a workflow's decisions to its gates, the same way for experiments and campaigns: the `decide`
 * update (validated, so a refusal never enters history), the `gates` query, and the signals of workflows
 * started before the update.
 */
export function acceptDecisions(gates: ApprovalGates): void {
  const byUpdate = patched(DECISIONS_BY_UPDATE_PATCH);
  const onSignal = (signal: DecisionSignal) => (payload: unknown) => {
    if (byUpdate) return gates.receiveRetiredSignal(signal, payload);
    const parsed = Decision.safeParse(payload);
    if (parsed.success) return gates.receive(signal, parsed.data);
    const raw = (payload ?? {}) as { gate?: unknown; by?: unknown };
    const gate = GateNames.safeParse(raw.gate);
    gates.receiveMalformed(
      signal,
      gate.success ? gate.data : 'launch',
      typeof raw.by === 'string' ? raw.by : 'unknown',
      parsed.error.issues.map((i) => `${i.path.join('.') || 'decision'}: ${i.message}`).join('; '),
    );
  };
  setHandler(approveSignal, onSignal('approve'));
  setHandler(rejectSignal, onSignal('reject'));
  setHandler(decideUpdate, (request) => gates.take(DecideRequest.parse(request), currentUpdateInfo()?.id), {
    validator: (request) => {
      const refused = gates.refusal(request, currentUpdateInfo()?.id);
      if (refused) throw new Error(refused);
    },
  });
  setHandler(gatesQuery, () => ({ waiting: gates.waiting, decisions: gates.decisions }));
}
