/**
 * `labline logs <id>`: the trainer's output of a launch (local or Slurm), printed or followed. The files are
 * read where the worker wrote them, so this runs on a machine that sees the run directory.
 */
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import { commandSummary } from './cli-registry';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { trainerLogPath } from '../activities/training/log-path';
import { finalStages, type ExperimentStatus, type TrainingAttempt } from '../experiment';
import { pause, withClient } from './cli-experiments';
import { experimentStatus } from './experiments';

interface LogsOptions {
  attempt?: string;
  follow?: boolean;
}

/** How often `-f` reads the file for new output, and asks the experiment whether the launch has ended. */
const FOLLOW_READ_MS = 250;
const FOLLOW_STATUS_MS = 2000;

export function addLogsCommand(program: Command): void {
  program
    .command('logs <id>')
    .description(commandSummary('logs'))
    .option('--attempt <n>', 'the launch to show: 1 for the first (default: the latest)')
    .option(
      '-f, --follow',
      'keep printing new output until the launch ends; without --attempt, go on with the launches that follow it ' +
        '(after a preemption) until training is over',
    )
    .action(async (id: string, options: LogsOptions) => {
      await withClient(program, async (client) => {
        const status = await experimentStatus(client, id);
        const attempt = pickAttempt(status, options.attempt);
        if (!options.follow) {
          printFrom(logOf(status, attempt), 0);
          return;
        }
        await follow(client, status, attempt, { pinned: options.attempt !== undefined });
      });
    });
}

/** The launch asked for; `undefined` in `n` means the latest. */
export function pickAttempt(status: ExperimentStatus, n: string | undefined): TrainingAttempt {
  const { attempts, experiment_id: id } = status;
  if (attempts.length === 0) {
    throw new Error(
      `${id} has not launched training yet (it is at ${status.stage}); there is no output to show.`,
    );
  }
  if (n === undefined) return attempts.at(-1)!;
  const launch = Number(n);
  const attempt = attempts.find((candidate) => candidate.launch === launch);
  if (!attempt) {
    throw new Error(
      `--attempt ${n}: ${id} has launch${attempts.length === 1 ? '' : 'es'} ` +
        `${attempts.map((a) => a.launch).join(', ')}; give one of those.`,
    );
  }
  return attempt;
}

function logOf(status: ExperimentStatus, attempt: TrainingAttempt): string {
  return trainerLogPath(status.links.run_dir, attempt);
}

/** Says, once per file, that it is not there (yet). */
const reportedMissing = new Set<string>();
function reportMissing(file: string): void {
  if (reportedMissing.has(file)) return;
  reportedMissing.add(file);
  console.error(
    `${file} does not exist (yet): the trainer has written nothing, or the run directory is on another machine.`,
  );
}

/** Prints the file from byte `offset` on; returns the offset after what was printed. */
function printFrom(file: string, offset: number): number {
  if (!existsSync(file)) {
    reportMissing(file);
    return offset;
  }
  const size = statSync(file).size;
  if (size <= offset) return size < offset ? 0 : offset; // truncated: start over
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.alloc(64 * 1024);
    let position = offset;
    while (position < size) {
      const read = readSync(fd, chunk, 0, Math.min(chunk.length, size - position), position);
      if (read === 0) break;
      process.stdout.write(chunk.subarray(0, read));
      position += read;
    }
    return position;
  } finally {
    closeSync(fd);
  }
}

/**
 * Prints new output as it comes until the launch has ended and everything it wrote is printed; unless the
 * launch was pinned, then goes on with the next launch while the experiment is still training.
 */
async function follow(
  client: Client,
  initial: ExperimentStatus,
  first: TrainingAttempt,
  options: { pinned: boolean },
): Promise<void> {
  let status = initial;
  let attempt = first;
  let offset = 0;
  let statusAt = Date.now();
  for (;;) {
    offset = printFrom(logOf(status, attempt), offset);
    if (Date.now() - statusAt >= FOLLOW_STATUS_MS) {
      status = await experimentStatus(client, status.experiment_id);
      statusAt = Date.now();
    }
    const current = status.attempts.find((candidate) => candidate.launch === attempt.launch) ?? attempt;
    if (current.outcome !== undefined || finalStages.includes(status.stage)) {
      offset = printFrom(logOf(status, attempt), offset); // what it wrote last
      const next = status.attempts.find((candidate) => candidate.launch === attempt.launch + 1);
      if (!options.pinned && next) {
        console.log(
          `\n── launch ${next.launch}${next.resumed_from ? ` (resumed from ${next.resumed_from})` : ''} ──`,
        );
        attempt = next;
        offset = 0;
        continue;
      }
      if (options.pinned || status.stage !== 'training' || status.waiting) {
        const waiting = status.waiting
          ? `; ${status.experiment_id} waits for a ${status.waiting.gate} decision`
          : '';
        console.error(`── launch ${attempt.launch} ended: ${current.outcome ?? status.stage}${waiting} ──`);
        return;
      }
    }
    await pause(FOLLOW_READ_MS);
  }
}
