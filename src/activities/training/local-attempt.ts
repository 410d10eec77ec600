import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { TrainingExitReason, type TrainingState } from './launcher';

/**
 * The on-disk record of one local launch, `<runDir>/attempts/<key>/`, and how to read where it is.
 *
 * Writers: the launcher creates the directory (the idempotency claim) and `launch.json`, and `cancel.json`
 * when asked to cancel; the supervisor (`local-supervisor.js`, which outlives any worker) writes
 * `supervisor.json`, `trainer.json`, `pid`, `train.log` and, last, `exit.json`. Every JSON file is written to
 * a temporary name and renamed, so a reader sees all of it or none of it. Readers here are synchronous: the
 * files are a few hundred bytes, and the launcher reads them inside its launch critical section.
 */

/** File names inside an attempt directory; `local-supervisor.js` uses the same names. */
export const ATTEMPT_FILES = {
  /** Who claimed the key (launcher); present from the moment the directory exists. */
  claim: 'claim.json',
  /** What was launched and when (launcher). */
  launch: 'launch.json',
  /** The supervisor's process identity (supervisor). */
  supervisor: 'supervisor.json',
  /** The trainer's process identity and process group (supervisor). */
  trainer: 'trainer.json',
  /** The trainer's pid as plain text, for people (`kill -TERM -$(cat pid)`). */
  pid: 'pid',
  /** How the trainer ended (supervisor); its presence means the run is over. */
  exit: 'exit.json',
  /** Labline asked for this run to stop (launcher). */
  cancel: 'cancel.json',
  /** The trainer's stdout and stderr. */
  log: 'train.log',
  /** The supervisor's own output: only its errors. */
  supervisorLog: 'supervisor.log',
} as const;

/** `<runDir>/attempts`: one directory per launch key. */
export function attemptsDirOf(runDir: string): string {
  return path.join(runDir, 'attempts');
}

/**
 * Beside the attempts, under names no launch key can have (keys never start with a dot): `.<key>.claim-<nonce>`,
 * a claim being prepared before it is renamed into place (gone once it is), and `.abandoned/`, where a dead
 * claim is moved when another launch takes its key over.
 */
export function preparedClaimDir(runDir: string, key: string, nonce: string): string {
  return path.join(attemptsDirOf(runDir), `.${key}.claim-${nonce}`);
}

/** `<runDir>/attempts/.abandoned`: see {@link preparedClaimDir}. */
export function abandonedClaimsDir(runDir: string): string {
  return path.join(attemptsDirOf(runDir), '.abandoned');
}

/** `<runDir>/attempts/<key>`. */
export function attemptDirFor(runDir: string, key: string): string {
  return path.join(attemptsDirOf(runDir), key);
}

/**
 * Who a process is, beyond its pid: pids are reused, so a pid file alone would, after a reboot, point at
 * some other program. On Linux the start time (clock ticks since boot) and the boot id pin it down.
 */
export const ProcessIdentity = z.object({
  pid: z.number().int().positive(),
  /** Field 22 of `/proc/<pid>/stat`, as text. */
  startTicks: z.string().optional(),
  /** `/proc/sys/kernel/random/boot_id` when the process was recorded. */
  bootId: z.string().optional(),
});
/** Who a process is, beyond its pid. */
export type ProcessIdentity = z.infer<typeof ProcessIdentity>;

/**
 * `claim.json`: the launcher that claimed the key. `nonce` tells this claim from a later one of the same key,
 * so that a supervisor started for a claim that was since taken over does nothing.
 */
export const ClaimRecord = ProcessIdentity.extend({
  hostname: z.string(),
  nonce: z.string(),
  claimedAt: z.string(),
});
/** `claim.json`. */
export type ClaimRecord = z.infer<typeof ClaimRecord>;

/** `supervisor.json`. */
export const SupervisorRecord = ProcessIdentity.extend({ startedAt: z.string() });
/** `supervisor.json`. */
export type SupervisorRecord = z.infer<typeof SupervisorRecord>;

/** `trainer.json`: the trainer leads its own process group, so `pgid` is its pid. */
export const TrainerRecord = ProcessIdentity.extend({
  pgid: z.number().int().positive(),
  startedAt: z.string(),
});
/** `trainer.json`. */
export type TrainerRecord = z.infer<typeof TrainerRecord>;

/** `exit.json`, written once by the supervisor when the trainer has ended (or could not start). */
export const ExitRecord = z.object({
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  /** Set when the supervisor knows why: `timeout`, `cancelled`, `spawn-failed`. */
  reason: TrainingExitReason.optional(),
  /** The spawn error, for `spawn-failed`. */
  error: z.string().optional(),
  startedAt: z.string().optional(),
  endedAt: z.string(),
});
/** `exit.json`. */
export type ExitRecord = z.infer<typeof ExitRecord>;

/** `cancel.json`: Labline asked the run to stop. */
export const CancelRecord = z.object({ requestedAt: z.string() });
/** `cancel.json`. */
export type CancelRecord = z.infer<typeof CancelRecord>;

/** `launch.json`: what was launched. `env` holds only what Labline added, not the worker's environment. */
export const LaunchRecord = z.object({
  key: z.string(),
  experimentId: z.string(),
  attempt: z.number().int(),
  runDir: z.string(),
  command: z.string(),
  args: z.array(z.string()),
  cwd: z.string(),
  env: z.record(z.string(), z.string()),
  resources: z.object({
    gpus: z.number(),
    cpus: z.number(),
    memory: z.string().optional(),
    timeLimitSeconds: z.number().optional(),
  }),
  resumeFrom: z
    .object({ checkpointPath: z.string(), flag: z.string().optional(), envVar: z.string().optional() })
    .optional(),
  gpuIds: z.array(z.string()).optional(),
  supervisorPid: z.number().int().optional(),
  launchedAt: z.string(),
  launchedBy: z.object({ pid: z.number().int(), hostname: z.string() }),
});
/** `launch.json`. */
export type LaunchRecord = z.infer<typeof LaunchRecord>;

/**
 * Reads and parses one JSON record; `undefined` when the file does not exist.
 * @throws Error naming the file when it exists but is not what Labline wrote
 */
export function readRecord<T>(file: string, schema: z.ZodType<T>): T | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(
      `${file} is not valid JSON (${String(error)}); it was edited by hand or the disk is full`,
      {
        cause: error,
      },
    );
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new Error(`${file} is not a Labline record: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}

/** Writes JSON to `file` through a temporary name and a rename, so readers never see half of it. */
export function writeRecordAtomic(file: string, value: unknown): void {
  const temp = `${file}.${process.pid}.${Date.now()}.tmp`;
  fs.writeFileSync(temp, `${JSON.stringify(value, null, 2)}\n`);
  fs.renameSync(temp, file);
}

/** Whether `error` is a Node system error with this code. */
export function isErrno(error: unknown, code: string): boolean {
  // Duck-typed: `instanceof Error` is false for errors made in another realm (a vm context, Jest's sandbox).
  return typeof error === 'object' && error !== null && (error as NodeJS.ErrnoException).code === code;
}

function readBootId(): string | undefined {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** State letter and start ticks from `/proc/<pid>/stat`; undefined without procfs. */
function readProcStat(pid: number): { state: string; startTicks: string } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces; fields after it are space-separated,
  // starting with field 3 (state). Field 22 (starttime) is therefore index 19 after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const startTicks = fields[19];
  if (state === undefined || startTicks === undefined) return undefined;
  return { state, startTicks };
}

/** The identity of a running process, for records; on systems without procfs only the pid. */
export function identityOf(pid: number): ProcessIdentity {
  const stat = readProcStat(pid);
  const bootId = readBootId();
  return { pid, ...(stat ? { startTicks: stat.startTicks } : {}), ...(bootId ? { bootId } : {}) };
}

/**
 * Whether the recorded process still runs: the pid exists, is not a zombie, and (where procfs says) is the
 * same process that was recorded, not a later one that got the same pid.
 */
export function isProcessAlive(identity: ProcessIdentity): boolean {
  if (identity.bootId !== undefined) {
    const bootId = readBootId();
    if (bootId !== undefined && bootId !== identity.bootId) return false;
  }
  try {
    process.kill(identity.pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to someone else; only a reused pid can look like that here.
    if (!isErrno(error, 'EPERM')) return false;
  }
  const stat = readProcStat(identity.pid);
  if (stat === undefined) return true;
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return identity.startTicks === undefined || identity.startTicks === stat.startTicks;
}

/** Whether any process of the group `pgid` is left (a trainer's data-loader children, for instance). */
export function isProcessGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return isErrno(error, 'EPERM');
  }
}

/** Options of {@link readAttemptState}. */
export interface ReadAttemptStateOptions {
  /**
   * How long a claimed attempt may go without a supervisor before it counts as lost (its launcher died
   * between claiming the key and starting the supervisor). Milliseconds; default 30000.
   */
  startupGraceMs?: number;
  /** The current time, for tests. Default `Date.now()`. */
  now?: number;
}

/**
 * Where the launch recorded in `attemptDir` is, from its files and the liveness of its processes. Progress
 * is not included (it comes from the run's metrics). Never throws for a missing directory: that is a run
 * that was `lost`.
 */
export function readAttemptState(attemptDir: string, options: ReadAttemptStateOptions = {}): TrainingState {
  const file = (name: string): string => path.join(attemptDir, name);
  let claimedAt: number;
  try {
    claimedAt = fs.statSync(attemptDir).mtimeMs;
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) throw error;
    return { phase: 'exited', exitCode: null, reason: 'lost', detail: `${attemptDir} does not exist` };
  }
  const cancel = readRecord(file(ATTEMPT_FILES.cancel), CancelRecord);
  const cancelled = cancel !== undefined;
  const fromExit = (exit: ExitRecord): TrainingState => ({
    phase: 'exited',
    exitCode: exit.exitCode,
    signal: exit.signal,
    // A cancel that arrived after the run had ended on its own does not make it a cancelled run.
    ...(exit.reason
      ? { reason: exit.reason }
      : cancel && cancel.requestedAt <= exit.endedAt
        ? { reason: 'cancelled' as const }
        : {}),
    ...(exit.error ? { detail: exit.error } : {}),
    ...(exit.startedAt ? { startedAt: exit.startedAt } : {}),
    endedAt: exit.endedAt,
  });

  const exit = readRecord(file(ATTEMPT_FILES.exit), ExitRecord);
  if (exit) return fromExit(exit);
  const trainer = readRecord(file(ATTEMPT_FILES.trainer), TrainerRecord);
  const supervisor = readRecord(file(ATTEMPT_FILES.supervisor), SupervisorRecord);
  if (trainer && isProcessAlive(trainer)) return { phase: 'running', startedAt: trainer.startedAt };
  if (supervisor && isProcessAlive(supervisor)) {
    return trainer
      ? {
          phase: 'running',
          startedAt: trainer.startedAt,
          detail: 'the trainer ended; its exit is being recorded',
        }
      : { phase: 'pending', detail: 'the supervisor is starting the trainer' };
  }
  // Nothing of it runs. The supervisor may have written exit.json and quit between the reads above.
  const lateExit = readRecord(file(ATTEMPT_FILES.exit), ExitRecord);
  if (lateExit) return fromExit(lateExit);
  if (cancelled) {
    return {
      phase: 'exited',
      exitCode: null,
      signal: null,
      reason: 'cancelled',
      detail: 'cancelled before it exited',
    };
  }
  if (trainer) {
    return {
      phase: 'exited',
      exitCode: null,
      signal: null,
      reason: 'lost',
      startedAt: trainer.startedAt,
      detail:
        'the trainer is gone and its exit was not recorded (its supervisor was killed or the machine restarted); ' +
        'see train.log',
    };
  }
  const launch = readRecord(file(ATTEMPT_FILES.launch), LaunchRecord);
  if (supervisor === undefined) {
    // A supervisor that has not written its record yet is known by the pid its launcher recorded.
    if (launch?.supervisorPid !== undefined && isProcessAlive({ pid: launch.supervisorPid })) {
      return { phase: 'pending', detail: 'the supervisor is starting' };
    }
    const since = launch ? Date.parse(launch.launchedAt) : claimedAt;
    if ((options.now ?? Date.now()) - since < (options.startupGraceMs ?? 30_000)) {
      return { phase: 'pending', detail: 'starting' };
    }
  }
  return {
    phase: 'exited',
    exitCode: null,
    signal: null,
    reason: 'lost',
    detail: 'the launch was interrupted before the trainer started (its worker died while launching)',
  };
}

/** One launch found in a run directory. */
export interface AttemptEntry {
  key: string;
  attemptDir: string;
  /** From `launch.json`, else the directory's modification time; ISO 8601. */
  launchedAt: string;
  launch?: LaunchRecord;
}

/** Every launch recorded under `<runDir>/attempts`, oldest first. */
export function listAttempts(runDir: string): AttemptEntry[] {
  let names: string[];
  try {
    names = fs.readdirSync(attemptsDirOf(runDir));
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return [];
    throw error;
  }
  const entries: AttemptEntry[] = [];
  for (const key of names) {
    if (key.startsWith('.')) continue; // a claim being prepared, or .abandoned
    const attemptDir = attemptDirFor(runDir, key);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(attemptDir);
    } catch {
      continue;
    }
    if (!stat.isDirectory()) continue;
    const launch = readRecord(path.join(attemptDir, ATTEMPT_FILES.launch), LaunchRecord);
    entries.push({
      key,
      attemptDir,
      launchedAt: launch?.launchedAt ?? stat.mtime.toISOString(),
      ...(launch ? { launch } : {}),
    });
  }
  return entries.sort((a, b) => a.launchedAt.localeCompare(b.launchedAt) || a.key.localeCompare(b.key));
}
