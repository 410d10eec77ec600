/**
 * The terminal question at a gate. It decides only on an explicit answer, and it goes away when the gate is
 * decided elsewhere (Slack, another terminal, the browser), saying by whom.
 */
import type { Client } from '@temporalio/client';
import { createInterface } from 'node:readline/promises';
import type { DecisionRecord, GateName } from '../experiment';
import { formatDecisionRecord } from './cli-format';
import { gatesOf } from './experiments';

export type Verdict = 'approve' | 'reject';

/** Where the question is asked; the process's terminal by default. */
export interface PromptIO {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** Whether a person can answer (a terminal). Without one the prompt says how to answer instead. */
  interactive: boolean;
}

const terminal = (): PromptIO => ({
  input: process.stdin,
  output: process.stdout,
  interactive: Boolean(process.stdin.isTTY),
});

/**
 * Asks `<gate>: approve? [y/N]` until the answer is yes or no (an empty answer asks again: nothing is decided
 * by pressing Enter). `undefined` when aborted or when the input ends.
 */
export async function askApproval(
  gate: GateName,
  io: PromptIO,
  signal?: AbortSignal,
): Promise<Verdict | undefined> {
  const rl = createInterface({ input: io.input, output: io.output, terminal: false });
  const closed = new Promise<undefined>((resolve) => rl.once('close', () => resolve(undefined)));
  try {
    for (;;) {
      const answer = await Promise.race([
        rl.question(`  ${gate}: approve? [y/N] `, { signal }),
        closed,
      ]).catch((error: unknown) => {
        if (signal?.aborted) return undefined;
        throw error;
      });
      if (answer === undefined) return undefined;
      const word = answer.trim().toLowerCase();
      if (word === 'y' || word === 'yes') return 'approve';
      if (word === 'n' || word === 'no') return 'reject';
      io.output.write(`  answer y (approve) or n (reject)${word ? `, not "${answer.trim()}"` : ''}\n`);
    }
  } finally {
    rl.close();
  }
}

/** How often the gate is looked at while the question waits. */
const DECIDED_ELSEWHERE_POLL_MS = 1000;

/**
 * Asks at the gate `waiting` of `workflowId` while watching it: if the opening closes first (decided from
 * Slack, another terminal or the browser), the question goes away and the decision taken is printed.
 * Without a terminal, prints how to answer and returns `undefined`.
 */
export async function askAtGate(
  client: Client,
  workflowId: string,
  waiting: { gate: GateName; opening?: string },
  options: { signal?: AbortSignal; io?: PromptIO; pollMs?: number } = {},
): Promise<Verdict | undefined> {
  const io = options.io ?? terminal();
  if (!io.interactive) {
    io.output.write(`  answer with: npx labline approve ${workflowId} (or reject), or rerun with --yes\n`);
    return undefined;
  }
  const stopAsking = new AbortController();
  const abortWith = () => stopAsking.abort();
  options.signal?.addEventListener('abort', abortWith, { once: true });
  const question = askApproval(waiting.gate, io, stopAsking.signal);
  const decidedElsewhere = watchOpening(client, workflowId, waiting, options.pollMs, stopAsking.signal);
  try {
    const first = await Promise.race([question.then((verdict) => ({ verdict })), decidedElsewhere]);
    if ('verdict' in first) return first.verdict;
    stopAsking.abort();
    io.output.write(
      first.decision
        ? `\n  decided elsewhere: ${formatDecisionRecord(first.decision)}\n`
        : `\n  the ${waiting.gate} gate closed without a decision here\n`,
    );
    return undefined;
  } finally {
    stopAsking.abort();
    options.signal?.removeEventListener('abort', abortWith);
    decidedElsewhere.catch(() => undefined);
  }
}

/** Resolves once the opening is no longer open, with the decision that closed it when there was one. */
async function watchOpening(
  client: Client,
  workflowId: string,
  waiting: { gate: GateName; opening?: string },
  pollMs = DECIDED_ELSEWHERE_POLL_MS,
  signal: AbortSignal,
): Promise<{ decision?: DecisionRecord }> {
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, pollMs));
    if (signal.aborted) return new Promise(() => undefined); // the question won: never settle
    // A failed look (the server restarting, no worker for a moment) leaves the question open: look again.
    const gates = await gatesOf(client, workflowId).catch(() => undefined);
    if (!gates) continue;
    const stillOpen =
      gates.waiting?.gate === waiting.gate &&
      (waiting.opening === undefined || gates.waiting.opening === waiting.opening);
    if (!stillOpen) {
      const decision = [...gates.decisions]
        .reverse()
        .find(
          (d) => d.gate === waiting.gate && (waiting.opening === undefined || d.opening === waiting.opening),
        );
      return decision ? { decision } : {};
    }
  }
}
