import { z } from 'zod';

/**
 * The `type` of every `ApplicationFailure` Labline raises. Activities set it; workflows and retry policies
 * match on it. The wire value equals the key.
 */
export const FailureType = {
  /** The spec file does not parse or validate. Not retryable. */
  InvalidSpec: 'InvalidSpec',
  /** The Labline settings file does not validate, or a required secret is missing. Not retryable. */
  InvalidSettings: 'InvalidSettings',

  /** The training command could not be started (not found, not executable, run directory unwritable). Not retryable. */
  TrainingLaunchFailed: 'TrainingLaunchFailed',
  /** Training ran out of GPU or host memory. */
  TrainingOutOfMemory: 'TrainingOutOfMemory',
  /** Training diverged: NaN or infinite loss. */
  TrainingDiverged: 'TrainingDiverged',
  /** Training was preempted (scheduler, spot interruption, or the trainer's `LABLINE_PREEMPTED` marker). */
  TrainingPreempted: 'TrainingPreempted',
  /** Training hit its `resources.time_limit`. */
  TrainingTimedOut: 'TrainingTimedOut',
  /** Training exited with an error that fits no other type. */
  TrainingError: 'TrainingError',
  /** The training process vanished without an exit status (host rebooted, run directory removed). */
  TrainingProcessLost: 'TrainingProcessLost',

  /** The tracker refused the credentials (W&B 401). Not retryable. */
  TrackerAuthFailed: 'TrackerAuthFailed',
  /** The tracked run does not exist (W&B: a null run for entity/project/run id). Not retryable. */
  TrackerRunNotFound: 'TrackerRunNotFound',
  /** The tracker answered with something that does not parse. Not retryable. */
  TrackerMalformedResponse: 'TrackerMalformedResponse',
  /** The tracker answered with errors (W&B: GraphQL `errors` in a 200). Not retryable. */
  TrackerRequestFailed: 'TrackerRequestFailed',
  /** The tracker is rate limiting or unavailable (429, 5xx, network). Retryable. */
  TrackerUnavailable: 'TrackerUnavailable',

  /** The language model provider refused the credentials (401). Not retryable. */
  AgentAuthFailed: 'AgentAuthFailed',
  /** The provider rejected the request (400). Not retryable. */
  AgentBadRequest: 'AgentBadRequest',
  /** The model refused to answer. Not retryable. */
  AgentRefused: 'AgentRefused',
  /** The model's output does not fit its schema, even after one correction. Not retryable. */
  AgentOutputInvalid: 'AgentOutputInvalid',
  /** The provider is rate limiting, unavailable or too slow (429, 5xx, timeout). Retryable. */
  AgentUnavailable: 'AgentUnavailable',

  /** The notification service refused the credentials or the channel. Not retryable. */
  NotifierRejected: 'NotifierRejected',
  /** The notification service is rate limiting or unavailable. Retryable. */
  NotifierUnavailable: 'NotifierUnavailable',

  /** The launch gate rejected the experiment. */
  LaunchRejected: 'LaunchRejected',
  /** The publish gate rejected the report. */
  PublishRejected: 'PublishRejected',
  /** A person aborted the experiment at the failure or deliverables gate. */
  ExperimentAborted: 'ExperimentAborted',
  /** `budgets.max_training_attempts` attempts failed. */
  TrainingAttemptsExhausted: 'TrainingAttemptsExhausted',
  /** `budgets.max_preemption_restarts` restarts were used up and training was preempted again. */
  PreemptionRestartsExhausted: 'PreemptionRestartsExhausted',
  /** Continuing would exceed `budgets.llm_cost_usd` and the budget gate rejected it. */
  LlmBudgetExceeded: 'LlmBudgetExceeded',
} as const;
/** The `type` of an `ApplicationFailure` Labline raises. */
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

/**
 * Failure types that retrying cannot fix. Activities raise them with `ApplicationFailure.nonRetryable`;
 * retry policies can also list them in `nonRetryableErrorTypes`.
 */
export const NON_RETRYABLE_FAILURE_TYPES: readonly FailureType[] = [
  FailureType.InvalidSpec,
  FailureType.InvalidSettings,
  FailureType.TrainingLaunchFailed,
  FailureType.TrackerAuthFailed,
  FailureType.TrackerRunNotFound,
  FailureType.TrackerMalformedResponse,
  FailureType.TrackerRequestFailed,
  FailureType.AgentAuthFailed,
  FailureType.AgentBadRequest,
  FailureType.AgentRefused,
  FailureType.AgentOutputInvalid,
  FailureType.NotifierRejected,
];

/** How a training process ended, as far as deciding what to do next goes. */
export const TrainingExitOutcome = z.enum(['success', 'out_of_memory', 'diverged', 'preempted', 'error']);
/** How a training process ended. */
export type TrainingExitOutcome = z.infer<typeof TrainingExitOutcome>;

/** What the launcher knows about a finished training process. */
export const TrainingExit = z.object({
  /** Exit code; `null` when the process was killed by a signal (or the code is unknown). */
  exitCode: z.number().int().nullable(),
  /** The signal that ended it, e.g. `"SIGTERM"`; `null` when it exited by itself. */
  signal: z.string().nullable(),
  /** The last lines of its combined output (a few KiB is plenty). */
  logTail: z.string(),
});
/** What the launcher knows about a finished training process. */
export type TrainingExit = z.infer<typeof TrainingExit>;

/** An exit outcome with the reason in words and the log line that gave it away. */
export const TrainingExitDiagnosis = z.object({
  /** The outcome. */
  outcome: TrainingExitOutcome,
  /** Why, e.g. `exit code 1; the log reports CUDA out of memory`. */
  reason: z.string(),
  /** The log line that decided it, trimmed to 200 characters; absent when the exit status decided. */
  evidence: z.string().optional(),
  /** The trainer hit its time limit (outcome `error`; raise {@link FailureType.TrainingTimedOut}). */
  timed_out: z.boolean().default(false),
});
/** An exit outcome with the reason and evidence. */
export type TrainingExitDiagnosis = z.infer<typeof TrainingExitDiagnosis>;

/** Printed by Labline's example trainer (and any trainer that wants it) when it stops because it was preempted. */
export const PREEMPTION_MARKER = 'LABLINE_PREEMPTED';

interface LogPattern {
  kind: 'out_of_memory' | 'diverged' | 'preempted' | 'time_limit' | 'error';
  pattern: RegExp;
  says: string;
}

// Generic errors come first: on a tie (same position) a later, more specific pattern wins. They matter when a
// telling line (say, a startup message mentioning preemption) is followed by an unrelated crash.
const LOG_PATTERNS: readonly LogPattern[] = [
  { kind: 'error', pattern: /^Traceback \(most recent call last\)/m, says: 'a Python exception' },
  { kind: 'error', pattern: /^\s*(?:[\w.]+\.)?\w*(?:Error|Exception)(?::|$)/m, says: 'an exception' },
  { kind: 'error', pattern: /Segmentation fault|core dumped/, says: 'a crash' },
  {
    kind: 'out_of_memory',
    pattern: /CUDA out of memory|CUDA error: out of memory/i,
    says: 'CUDA out of memory',
  },
  {
    kind: 'out_of_memory',
    pattern: /OutOfMemoryError|CUBLAS_STATUS_ALLOC_FAILED/,
    says: 'an out-of-memory error',
  },
  { kind: 'out_of_memory', pattern: /RESOURCE_EXHAUSTED/, says: 'resources exhausted (out of memory)' },
  {
    kind: 'out_of_memory',
    pattern: /JavaScript heap out of memory/i,
    says: 'the JavaScript heap ran out of memory',
  },
  {
    kind: 'out_of_memory',
    pattern: /^\s*MemoryError\b|std::bad_alloc|Cannot allocate memory/m,
    says: 'out of host memory',
  },
  {
    kind: 'out_of_memory',
    pattern: /oom[-_ ]kill|Out of memory: Killed process|\bOUT_OF_MEMORY\b/i,
    says: 'the OOM killer stopped it',
  },
  {
    kind: 'diverged',
    pattern: /loss[^\n]{0,40}?(?<![a-z])(nan|-?inf|-?infinity)(?![a-z])/i,
    says: 'a NaN or infinite loss',
  },
  {
    kind: 'diverged',
    pattern: /non-?finite (loss|values?|gradients?)|nan (or inf )?(found|detected)|detected (a )?nan/i,
    says: 'non-finite values',
  },
  { kind: 'diverged', pattern: /FloatingPointError|\bdiverged\b/i, says: 'divergence' },
  {
    kind: 'time_limit',
    pattern: /DUE TO TIME LIMIT|time limit exceeded/i,
    says: 'the time limit was reached',
  },
  {
    kind: 'preempted',
    pattern: /DUE TO PREEMPTION|\b(?:was|been|being|job) preempted\b|spot (?:instance )?interruption/i,
    says: 'preemption',
  },
  {
    kind: 'preempted',
    pattern: /received SIGTERM|SIGTERM received|caught SIGTERM|(got|caught|received) signal 15\b/i,
    says: 'a SIGTERM',
  },
];

/** The shell's "Killed" after SIGKILL: on a training host, almost always the kernel's OOM killer. */
const OOM_KILLED: LogPattern = {
  kind: 'out_of_memory',
  pattern: /^\s*Killed\b/m,
  says: '"Killed" after SIGKILL, most likely the kernel\'s OOM killer',
};

function evidenceLine(text: string, index: number): string {
  const start = text.lastIndexOf('\n', index) + 1;
  const end = text.indexOf('\n', index);
  const line = text.slice(start, end === -1 ? undefined : end).trim();
  return line.length > 200 ? `${line.slice(0, 197)}…` : line;
}

function describeExit(exit: TrainingExit): string {
  if (exit.signal) return `killed by ${exit.signal}`;
  return exit.exitCode === null ? 'exit status unknown' : `exit code ${exit.exitCode}`;
}

/**
 * Explains how a training process ended, from its exit status and the tail of its log.
 *
 * Rules, in order: the `LABLINE_PREEMPTED` marker means preempted whatever the status; exit code 0 means
 * success; otherwise the *last* telling line of the log decides (out of memory, NaN/inf loss, preemption,
 * time limit, an exception; the shell's `Killed` after SIGKILL/137 counts as out of memory), since the final
 * error is the cause; without one, SIGTERM/143 means preemption (what schedulers send), anything else is an
 * error. An exception logged by a process that a signal ended did not end it, so it is not counted then.
 */
export function diagnoseTrainingExit(exit: TrainingExit): TrainingExitDiagnosis {
  const status = describeExit(exit);
  const markerAt = exit.logTail.lastIndexOf(PREEMPTION_MARKER);
  if (markerAt !== -1)
    return {
      outcome: 'preempted',
      reason: `${status}; the trainer printed ${PREEMPTION_MARKER}`,
      evidence: evidenceLine(exit.logTail, markerAt),
      timed_out: false,
    };
  if (exit.exitCode === 0 && !exit.signal)
    return { outcome: 'success', reason: 'exit code 0', timed_out: false };

  // A process ended by a signal was stopped from outside: an exception it logged earlier did not end it.
  const killed = exit.signal === 'SIGKILL' || exit.exitCode === 137;
  const bySignal = exit.signal !== null || exit.exitCode === 137 || exit.exitCode === 143;
  const patterns = [
    ...LOG_PATTERNS.filter((pattern) => !bySignal || pattern.kind !== 'error'),
    ...(killed ? [OOM_KILLED] : []),
  ];
  let last: { pattern: LogPattern; index: number } | undefined;
  for (const pattern of patterns) {
    const flags = pattern.pattern.flags.includes('g') ? pattern.pattern.flags : `${pattern.pattern.flags}g`;
    for (const match of exit.logTail.matchAll(new RegExp(pattern.pattern.source, flags))) {
      if (!last || match.index >= last.index) last = { pattern, index: match.index };
    }
  }
  if (last) {
    const evidence = evidenceLine(exit.logTail, last.index);
    const reason = `${status}; the log reports ${last.pattern.says}`;
    if (last.pattern.kind === 'time_limit') return { outcome: 'error', reason, evidence, timed_out: true };
    if (last.pattern.kind !== 'error')
      return { outcome: last.pattern.kind, reason, evidence, timed_out: false };
    return { outcome: 'error', reason, evidence, timed_out: false };
  }
  if (exit.signal === 'SIGTERM' || exit.exitCode === 143)
    return {
      outcome: 'preempted',
      reason: `${status}: terminated by SIGTERM, as schedulers preempt`,
      timed_out: false,
    };
  return { outcome: 'error', reason: status, timed_out: false };
}

/**
 * Classifies how a training process ended: `success`, `out_of_memory`, `diverged`, `preempted` or `error`.
 * See {@link diagnoseTrainingExit} for the rules and for the reason in words.
 */
export function classifyTrainingExit(exit: TrainingExit): TrainingExitOutcome {
  return diagnoseTrainingExit(exit).outcome;
}

/** The failure type an activity raises for an exit diagnosis; `undefined` for success. */
export function failureTypeForExit(
  diagnosis: Pick<TrainingExitDiagnosis, 'outcome' | 'timed_out'>,
): FailureType | undefined {
  if (diagnosis.timed_out) return FailureType.TrainingTimedOut;
  switch (diagnosis.outcome) {
    case 'success':
      return undefined;
    case 'out_of_memory':
      return FailureType.TrainingOutOfMemory;
    case 'diverged':
      return FailureType.TrainingDiverged;
    case 'preempted':
      return FailureType.TrainingPreempted;
    case 'error':
      return FailureType.TrainingError;
  }
}
