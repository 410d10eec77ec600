import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { GpuSlots } from './gpu-slots';
import { readTrainingProgress } from './progress';
import {
  LaunchRejectedError,
  LaunchRequest,
  trainerInvocation,
  type LaunchRequestInput,
  type LaunchResult,
  type Launcher,
  type TrainingHandle,
  type TrainingState,
} from './launcher';
import {
  ATTEMPT_FILES,
  type CancelRecord,
  ClaimRecord,
  LaunchRecord,
  SupervisorRecord,
  TrainerRecord,
  attemptDirFor,
  attemptsDirOf,
  abandonedClaimsDir,
  preparedClaimDir,
  identityOf,
  isErrno,
  isProcessAlive,
  isProcessGroupAlive,
  readAttemptState,
  readRecord,
  writeRecordAtomic,
} from './local-attempt';

/** The supervisor script, run with plain `node` next to this file. */
const SUPERVISOR_SCRIPT = path.join(__dirname, 'local-supervisor.js');

/** Options of {@link LocalLauncher}; every one has a default. */
export interface LocalLauncherOptions {
  /**
   * This host's GPU ids (`["0", "1"]`). When set, each launch reserves `resources.gpus` of them and gets
   * them as `CUDA_VISIBLE_DEVICES` (an empty string for a launch that asked for none), and a launch asking
   * for more than the host has is rejected. When unset, GPUs are not managed: nothing is reserved and
   * `CUDA_VISIBLE_DEVICES` is whatever the worker's environment says. Default: unset.
   */
  gpuIds?: string[];
  /**
   * Host-level directory for GPU reservations; every worker on the host must use the same one.
   * Default `.labline/gpu-slots` under the working directory.
   */
  slotsDir?: string;
  /** Time between SIGTERM and SIGKILL when cancelling or at the time limit, ms. Default 30000. */
  killGraceMs?: number;
  /** How long `launch` waits for the trainer process to exist before returning without its pid, ms. Default 15000. */
  startTimeoutMs?: number;
  /** How long a launch that finds its key taken waits for the other launch's record, ms. Default 15000. */
  adoptTimeoutMs?: number;
  /** How long a claimed key may go without a supervisor before its run counts as lost, ms. Default 30000. */
  startupGraceMs?: number;
  /** The Node binary that runs the supervisor. Default: the one running this process. */
  nodePath?: string;
  /** Poll interval while waiting for a process to start or stop, ms. Default 25. */
  pollIntervalMs?: number;
}

const LocalLauncherOptionsSchema = z.object({
  gpuIds: z
    .array(z.string().regex(/^[A-Za-z0-9:_-]+$/, 'is not a GPU id such as "0" or "GPU-8f2c…"'))
    .refine((ids) => new Set(ids).size === ids.length, 'lists a GPU id twice')
    .optional(),
  slotsDir: z.string().min(1).optional(),
  killGraceMs: z.number().nonnegative().optional(),
  startTimeoutMs: z.number().nonnegative().optional(),
  adoptTimeoutMs: z.number().nonnegative().optional(),
  startupGraceMs: z.number().nonnegative().optional(),
  nodePath: z.string().min(1).optional(),
  pollIntervalMs: z.number().positive().optional(),
});

/**
 * Runs training commands as local processes that outlive the worker. See `local-attempt.ts` for the files
 * each launch leaves in `<runDir>/attempts/<key>/` and `local-supervisor.js` for the process that writes
 * them.
 */
export class LocalLauncher implements Launcher {
  readonly kind = 'local' as const;
  private readonly gpuSlots: GpuSlots | undefined;
  private readonly killGraceMs: number;
  private readonly startTimeoutMs: number;
  private readonly adoptTimeoutMs: number;
  private readonly startupGraceMs: number;
  private readonly nodePath: string;
  private readonly pollIntervalMs: number;

  /** @throws Error naming each invalid option */
  constructor(options: LocalLauncherOptions = {}) {
    const parsed = LocalLauncherOptionsSchema.safeParse(options);
    if (!parsed.success) {
      throw new Error(`Invalid local launcher settings:\n${z.prettifyError(parsed.error)}`);
    }
    this.killGraceMs = options.killGraceMs ?? 30_000;
    this.startTimeoutMs = options.startTimeoutMs ?? 15_000;
    this.adoptTimeoutMs = options.adoptTimeoutMs ?? 15_000;
    this.startupGraceMs = options.startupGraceMs ?? 30_000;
    this.nodePath = options.nodePath ?? process.execPath;
    this.pollIntervalMs = options.pollIntervalMs ?? 25;
    this.gpuSlots =
      options.gpuIds === undefined
        ? undefined
        : new GpuSlots({
            gpuIds: options.gpuIds,
            dir: path.resolve(options.slotsDir ?? path.join('.labline', 'gpu-slots')),
            isHeld: (reservation) =>
              readAttemptState(reservation.attemptDir, { startupGraceMs: this.startupGraceMs }).phase !==
              'exited',
          });
  }

  async launch(input: LaunchRequestInput): Promise<LaunchResult> {
    const parsed = LaunchRequest.safeParse(input);
    if (!parsed.success) {
      throw new LaunchRejectedError(`Invalid launch request:\n${z.prettifyError(parsed.error)}`);
    }
    const request = parsed.data;
    if (this.gpuSlots && request.resources.gpus > this.gpuSlots.total) {
      throw new LaunchRejectedError(
        `${request.key} asks for ${request.resources.gpus} GPU(s) but this host has ${this.gpuSlots.total} ` +
          `(gpuIds in the launcher settings). Lower training.resources.gpus in the spec or run it on a larger host.`,
      );
    }
    const attemptDir = attemptDirFor(request.runDir, request.key);
    fs.mkdirSync(attemptsDirOf(request.runDir), { recursive: true });

    const deadline = Date.now() + this.adoptTimeoutMs;
    for (;;) {
      const claim = this.claim(request.runDir, attemptDir);
      if (claim) return { handle: await this.start(request, attemptDir, claim), adopted: false };
      // Taken: by an earlier attempt (adopt it) or by a launch still writing its record (wait for it).
      const adopted = await this.waitForLaunchRecord(attemptDir, deadline);
      if (adopted !== 'vanished') return { handle: adopted, adopted: true };
      // The other launch gave its claim back (no free GPUs) or died before starting anything: claim it ourselves.
    }
  }

  async status(handle: TrainingHandle): Promise<TrainingState> {
    const state = readAttemptState(handle.attemptDir, { startupGraceMs: this.startupGraceMs });
    if (state.phase === 'exited') this.gpuSlots?.release(handle.key);
    const progress = await readTrainingProgress(handle.runDir);
    return progress ? { ...state, progress } : state;
  }

  async cancel(handle: TrainingHandle): Promise<void> {
    const { attemptDir } = handle;
    const file = (name: string): string => path.join(attemptDir, name);
    if (!fs.existsSync(attemptDir)) {
      this.gpuSlots?.release(handle.key);
      return;
    }
    if (readAttemptState(attemptDir, { startupGraceMs: this.startupGraceMs }).phase !== 'exited') {
      if (!fs.existsSync(file(ATTEMPT_FILES.cancel))) {
        const record: CancelRecord = { requestedAt: new Date().toISOString() };
        writeRecordAtomic(file(ATTEMPT_FILES.cancel), record);
      }
      await this.stopProcesses(attemptDir);
    }
    this.gpuSlots?.release(handle.key);
  }

  async logTail(handle: TrainingHandle, lines = 50): Promise<string> {
    return tailLines(path.join(handle.attemptDir, ATTEMPT_FILES.log), lines);
  }

  /**
   * Creates the attempt directory with its `claim.json`; only one launch of a key, in any process, succeeds.
   * The directory is prepared aside and renamed into place, so it never exists without saying who claimed it:
   * a claim whose launcher died before starting anything can then be told from one still being launched.
   */
  private claim(runDir: string, attemptDir: string): ClaimRecord | undefined {
    const record: ClaimRecord = {
      ...identityOf(process.pid),
      hostname: os.hostname(),
      nonce: randomUUID(),
      claimedAt: new Date().toISOString(),
    };
    const prepared = preparedClaimDir(runDir, path.basename(attemptDir), record.nonce);
    fs.mkdirSync(prepared);
    try {
      writeRecordAtomic(path.join(prepared, ATTEMPT_FILES.claim), record);
      // rename(2) onto an existing directory fails unless it is empty; an empty one is a claim made by a
      // Labline from before claim.json, whose launcher died before starting anything (it would have a file).
      fs.renameSync(prepared, attemptDir);
      return record;
    } catch (error) {
      fs.rmSync(prepared, { recursive: true, force: true });
      if (isErrno(error, 'ENOTEMPTY') || isErrno(error, 'EEXIST')) return undefined;
      throw error;
    }
  }

  /**
   * What became of a claim without a supervisor or `launch.json`. Its launcher spawns the supervisor right
   * after claiming and the supervisor records itself first thing, so once the startup grace has passed and
   * its launcher is gone (or ran on another host, where this one cannot look), nothing will start for it:
   * `dead`. `dying` while the launcher, on this host, is gone but the grace has not passed.
   */
  private claimFate(attemptDir: string): 'dead' | 'dying' | 'pending' {
    let claimedAt: number;
    try {
      claimedAt = fs.statSync(attemptDir).mtimeMs;
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return 'pending'; // given back: the caller sees it vanish
      throw error;
    }
    const claim = readRecord(path.join(attemptDir, ATTEMPT_FILES.claim), ClaimRecord);
    // The claim's own time when it has one: the folder's changes with every file written into it.
    if (claim) claimedAt = Date.parse(claim.claimedAt);
    const launcherGone = claim === undefined || claim.hostname !== os.hostname() || !isProcessAlive(claim);
    if (Date.now() - claimedAt < this.startupGraceMs)
      return launcherGone && claim !== undefined ? 'dying' : 'pending';
    return launcherGone ? 'dead' : 'pending';
  }

  /**
   * Moves a dead claim to `.abandoned/` so its key can be claimed again. Rename is atomic: of two launches
   * taking over the same claim, one moves it and the other finds it gone, and both go back to claiming.
   */
  private abandonClaim(runDir: string, attemptDir: string): void {
    const abandoned = abandonedClaimsDir(runDir);
    fs.mkdirSync(abandoned, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    try {
      fs.renameSync(attemptDir, path.join(abandoned, `${path.basename(attemptDir)}.${stamp}.${process.pid}`));
    } catch (error) {
      if (!isErrno(error, 'ENOENT')) throw error;
    }
  }

  /**
   * Reserves GPUs, starts the supervisor and records the launch, for a key this process has just claimed.
   * Everything up to `launch.json` is synchronous: no other code of this process runs in between. A worker
   * killed before the spawn leaves a dead claim, which the next launch of the key takes over; one killed
   * after it leaves a supervisor, which the next launch adopts.
   */
  private async start(
    request: LaunchRequest,
    attemptDir: string,
    claim: ClaimRecord,
  ): Promise<TrainingHandle> {
    let gpuIds: string[] | undefined;
    try {
      gpuIds = this.gpuSlots?.reserve(request.key, attemptDir, request.resources.gpus);
    } catch (error) {
      fs.rmSync(attemptDir, { recursive: true, force: true }); // give the claim back: nothing was started
      throw error;
    }

    const { args, env: added, cwd } = trainerInvocation(request);
    if (gpuIds) added.CUDA_VISIBLE_DEVICES = gpuIds.join(',');

    const supervisorLog = fs.openSync(path.join(attemptDir, ATTEMPT_FILES.supervisorLog), 'a');
    let supervisorPid: number | undefined;
    try {
      const supervisor = spawn(
        this.nodePath,
        [
          SUPERVISOR_SCRIPT,
          JSON.stringify({
            attemptDir,
            claim: claim.nonce,
            command: request.command,
            args,
            cwd,
            killGraceMs: this.killGraceMs,
            timeLimitSeconds: request.resources.timeLimitSeconds,
          }),
        ],
        {
          env: { ...inheritedEnv(), ...added },
          stdio: ['ignore', supervisorLog, supervisorLog],
          // setsid(): its own session, so neither a signal to the worker's group nor the worker's death reaches it.
          detached: true,
        },
      );
      supervisor.on('error', () => {
        // Reported below through the missing pid; the listener keeps the error from crashing the worker.
      });
      supervisor.unref();
      supervisorPid = supervisor.pid;
    } finally {
      fs.closeSync(supervisorLog);
    }
    if (supervisorPid === undefined) {
      if (this.gpuSlots) this.gpuSlots.release(request.key);
      fs.rmSync(attemptDir, { recursive: true, force: true });
      throw new Error(
        `Could not start the Labline supervisor with ${this.nodePath}; check the launcher's nodePath`,
      );
    }

    const record: LaunchRecord = {
      key: request.key,
      experimentId: request.experimentId,
      attempt: request.attempt,
      runDir: request.runDir,
      command: request.command,
      args,
      cwd,
      env: added,
      resources: request.resources,
      ...(request.resumeFrom ? { resumeFrom: request.resumeFrom } : {}),
      ...(gpuIds ? { gpuIds } : {}),
      supervisorPid,
      launchedAt: new Date().toISOString(),
      launchedBy: { pid: process.pid, hostname: os.hostname() },
    };
    writeRecordAtomic(path.join(attemptDir, ATTEMPT_FILES.launch), record);

    const trainer = await this.waitForTrainer(attemptDir);
    return this.handleOf(request.key, request.runDir, attemptDir, trainer?.pid, gpuIds);
  }

  /** Waits until the supervisor has started the trainer (or the launch ended without one). */
  private async waitForTrainer(attemptDir: string): Promise<TrainerRecord | undefined> {
    const deadline = Date.now() + this.startTimeoutMs;
    for (;;) {
      const trainer = readRecord(path.join(attemptDir, ATTEMPT_FILES.trainer), TrainerRecord);
      if (trainer) return trainer;
      const state = readAttemptState(attemptDir, { startupGraceMs: this.startupGraceMs });
      if (state.phase === 'exited' || Date.now() > deadline) return undefined;
      await sleep(this.pollIntervalMs);
    }
  }

  /** The handle of an existing launch, once its `launch.json` exists; `'vanished'` if its claim was given back. */
  private async waitForLaunchRecord(
    attemptDir: string,
    deadline: number,
  ): Promise<TrainingHandle | 'vanished'> {
    for (;;) {
      const launch = readRecord(path.join(attemptDir, ATTEMPT_FILES.launch), LaunchRecord);
      if (launch) {
        const trainer = await this.waitForTrainer(attemptDir);
        return this.handleOf(launch.key, launch.runDir, attemptDir, trainer?.pid, launch.gpuIds);
      }
      if (!fs.existsSync(attemptDir)) return 'vanished';
      // Its launcher died after starting the supervisor but before writing launch.json (a worker SIGKILLed
      // inside `spawn`): the supervisor outlives it and records itself first thing, so its record is the
      // launch. Waiting for launch.json instead would end at the deadline with no trainer in the handle, and
      // never when the launch activity's own timeout is shorter than the deadline: it would retry forever.
      if (readRecord(path.join(attemptDir, ATTEMPT_FILES.supervisor), SupervisorRecord)) {
        const trainer = await this.waitForTrainer(attemptDir);
        // A live launcher may have written it meanwhile: its GPUs are then known too.
        const late = readRecord(path.join(attemptDir, ATTEMPT_FILES.launch), LaunchRecord);
        const runDir = path.dirname(path.dirname(attemptDir));
        return this.handleOf(path.basename(attemptDir), runDir, attemptDir, trainer?.pid, late?.gpuIds);
      }
      const fate = this.claimFate(attemptDir);
      if (fate === 'dead') {
        // Its launcher died between claiming and starting the supervisor (bench/chaos.ts found it on the real
        // server: the experiment ended "lost" and waited for a person). Nothing runs for it: launch afresh.
        this.abandonClaim(path.dirname(path.dirname(attemptDir)), attemptDir);
        return 'vanished';
      }
      // A claim whose launcher is gone is worth waiting out past the deadline: it is taken over at the grace.
      if (Date.now() > deadline && fate !== 'dying') {
        // Its launcher may still be starting it; status reports it lost if nothing starts within the grace.
        const runDir = path.dirname(path.dirname(attemptDir));
        return this.handleOf(path.basename(attemptDir), runDir, attemptDir, undefined, undefined);
      }
      await sleep(this.pollIntervalMs);
    }
  }

  private handleOf(
    key: string,
    runDir: string,
    attemptDir: string,
    pid: number | undefined,
    gpuIds: string[] | undefined,
  ): TrainingHandle {
    return {
      launcher: 'local',
      key,
      runDir,
      attemptDir,
      ...(pid !== undefined ? { pid } : {}),
      ...(gpuIds ? { gpuIds } : {}),
    };
  }

  /**
   * SIGTERM to the trainer's group (through the supervisor when it is alive, so that it also knows not to
   * start a trainer it has not started yet), SIGKILL to whatever is left after the grace period.
   */
  private async stopProcesses(attemptDir: string): Promise<void> {
    const file = (name: string): string => path.join(attemptDir, name);
    const supervisor = readRecord(file(ATTEMPT_FILES.supervisor), SupervisorRecord);
    const supervisorAlive = supervisor !== undefined && isProcessAlive(supervisor);
    if (supervisorAlive) signal(supervisor.pid, 'SIGTERM');
    const trainerNow = readRecord(file(ATTEMPT_FILES.trainer), TrainerRecord);
    if (!supervisorAlive && trainerNow && isProcessAlive(trainerNow)) signal(-trainerNow.pgid, 'SIGTERM');

    const gone = (): boolean => {
      const trainer = readRecord(file(ATTEMPT_FILES.trainer), TrainerRecord);
      if (trainer) return !isProcessGroupAlive(trainer.pgid) || !isProcessAlive(trainer);
      // Not started: the supervisor ends without starting it once it has seen the SIGTERM.
      return !supervisorAlive || fs.existsSync(file(ATTEMPT_FILES.exit)) || !isProcessAlive(supervisor);
    };
    if (await this.waitUntil(gone, this.killGraceMs)) {
      // The leader is gone; members of its group that ignored SIGTERM are not.
      const trainer = readRecord(file(ATTEMPT_FILES.trainer), TrainerRecord);
      if (trainer && isProcessGroupAlive(trainer.pgid)) signal(-trainer.pgid, 'SIGKILL');
    } else {
      const trainer = readRecord(file(ATTEMPT_FILES.trainer), TrainerRecord);
      if (trainer) signal(-trainer.pgid, 'SIGKILL');
      if (supervisor && !trainer) signal(supervisor.pid, 'SIGKILL');
    }
    const trainer = readRecord(file(ATTEMPT_FILES.trainer), TrainerRecord);
    await this.waitUntil(() => trainer === undefined || !isProcessGroupAlive(trainer.pgid), 5_000);
    // Let the supervisor record the exit, so status reports the exit code rather than "cancelled, code unknown".
    if (supervisorAlive) {
      await this.waitUntil(
        () => fs.existsSync(file(ATTEMPT_FILES.exit)) || !isProcessAlive(supervisor),
        5_000,
      );
    }
  }

  private async waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (condition()) return true;
      if (Date.now() >= deadline) return false;
      await sleep(Math.min(this.pollIntervalMs, Math.max(1, deadline - Date.now())));
    }
  }
}

/** The worker's environment without `undefined` entries. */
function inheritedEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) if (value !== undefined) env[name] = value;
  return env;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if (!isErrno(error, 'ESRCH')) throw error;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The last `count` lines of a file, reading only its end. Empty when the file does not exist. */
export async function tailLines(file: string, count: number): Promise<string> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, 'r');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return '';
    throw error;
  }
  try {
    const { size } = await handle.stat();
    // Grow a window from the end until it holds `count` line breaks; 8 MiB bounds it for huge lines.
    for (let window = 16 * 1024; ; window *= 4) {
      const length = Math.min(window, size, 8 * 1024 * 1024);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      const text = buffer.toString('utf8');
      const lines = text.replace(/\n$/, '').split('\n');
      if (lines.length > count || length === size || length === 8 * 1024 * 1024) {
        return lines.slice(-count).join('\n');
      }
    }
  } finally {
    await handle.close();
  }
}
