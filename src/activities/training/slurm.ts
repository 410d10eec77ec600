import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { parseMemorySize } from '../../experiment/quantities';
import {
  LaunchRejectedError,
  LaunchRequest,
  trainerInvocation,
  LauncherBusyError,
  TrainingState,
  type LaunchRequestInput,
  type LaunchResult,
  type Launcher,
  type TrainingHandle,
} from './launcher';
import {
  ProcessIdentity,
  attemptDirFor,
  identityOf,
  isErrno,
  isProcessAlive,
  readRecord,
  writeRecordAtomic,
} from './local-attempt';
import { tailLines } from './local';
import { readTrainingProgress } from './progress';
import { SlurmCli } from './slurm-cli';
import { isFinalSlurmState, trainingStateOf, type SlurmJobInfo } from './slurm-state';

/**
 * Runs training commands as Slurm batch jobs: one job per launch key, exactly once.
 *
 * Each launch keeps its records in `<runDir>/attempts/<key>/` (the run directory must be on a file system the
 * worker and the compute nodes share, as on any cluster):
 * - `slurm-job-name`: the job's name, `<key>.<token>`, written once before anything is submitted; the random
 *   token keeps a later experiment that reuses the id from adopting an old job of the same key.
 * - `submit.lock`: held while one process looks for the job and submits it.
 * - `slurm-job.json`: the job id and what was submitted; from then on every launch of the key adopts it.
 * - `slurm.log`: the job's stdout and stderr (`--output` and `--error`, appended across requeues).
 * - `slurm-exit.json`: how it ended, recorded once seen, so status still answers after Slurm forgot the job.
 *
 * Exactly once: a worker that dies after `sbatch` but before writing `slurm-job.json` leaves the lock behind;
 * the next launch of the key takes the lock over and first asks Slurm for a job of that name (`squeue
 * --states=all`, which includes finished jobs for `MinJobAge` seconds, then `sacct` when the cluster has
 * accounting), and adopts it. Only a retry later than both (`MinJobAge` is 300 s by default) could submit twice.
 *
 * Requeue: see {@link trainingStateOf}. A job Slurm requeues is reported as `preempted`; the workflow resumes
 * from the latest checkpoint in a new launch, and the requeued copy is cancelled.
 */

/** Options of {@link SlurmLauncher}; the `slurm` section of the Labline settings. */

/** Seconds before the time limit at which a Slurm job is warned with SIGUSR1 (`warningSignalSeconds`). */
export const DEFAULT_WARNING_SIGNAL_SECONDS = 120;
export interface SlurmLauncherOptions {
  /** `--partition`. Default: the cluster's default partition. */
  partition?: string;
  /** `--account`. Default: the user's default account. */
  account?: string;
  /** `--qos`. Default: the account's default QOS. */
  qos?: string;
  /**
   * How GPUs are requested: `gres` (`--gres=gpu[:type]:N`, every Slurm) or `gpus` (`--gpus=[type:]N`, Slurm 19.05+
   * with `select/cons_tres`). Default `gres`.
   */
  gpuOption?: 'gres' | 'gpus';
  /** GPU type to ask for (`a100` in `--gres=gpu:a100:2`). Default: any. */
  gpuType?: string;
  /**
   * Whether Slurm may requeue the job (`--requeue`) on preemption, node failure or `scontrol requeue`, or must
   * end it (`--no-requeue`: state PREEMPTED or NODE_FAIL). Either way Labline resumes from the latest
   * checkpoint in a new launch. Default `true`.
   */
  requeue?: boolean;
  /**
   * `true`: the job gets the worker's environment (`--export=ALL`) plus Labline's variables. `false`: only
   * Labline's variables, the spec's `training.env` and the worker's `WANDB_*` (`--export=<names>`), so the
   * command must be an absolute path (or add `--get-user-env` to `extraArgs`). Values always travel through
   * sbatch's environment, never on its command line. Default `true`.
   */
  exportWorkerEnvironment?: boolean;
  /** More sbatch options, one per element (`["--constraint=a100", "--exclusive"]`), passed as they are. */
  extraArgs?: string[];
  /**
   * Seconds before a job's time limit at which Slurm sends SIGUSR1 to the trainer (`--signal=B:USR1@<n>`), so
   * that it checkpoints and exits as preempted, and the experiment resumes in a new job. Only for launches
   * whose time limit is more than a minute longer than this (Slurm may signal a minute early). Default 120;
   * 0: never.
   */
  warningSignalSeconds?: number;
  /** Directory of Slurm's commands. Default: the worker's `PATH`. */
  binDir?: string;
  /** How long one Slurm command may take, ms. Default 30000. */
  commandTimeoutMs?: number;
  /** How long `cancel` waits for the job to end after `scancel`, ms. Default 60000. */
  cancelTimeoutMs?: number;
  /** How long `launch` waits for another process that is submitting the same key, ms. Default 60000. */
  adoptTimeoutMs?: number;
  /** Poll interval while waiting for a lock or a cancelled job, ms. Default 200. */
  pollIntervalMs?: number;
  /** Whose jobs to look among for a job to adopt. Default: the worker's user. */
  user?: string;
}

/** sbatch options Labline sets itself; in `extra_args` they would contradict it. */
const RESERVED_SBATCH_OPTIONS = [
  '--job-name',
  '-J',
  '--output',
  '-o',
  '--error',
  '-e',
  '--open-mode',
  '--export',
  '--parsable',
  '--chdir',
  '-D',
  '--wrap',
  '--array',
  '-a',
  '--requeue',
  '--no-requeue',
  '--wait',
  '-W',
  '--test-only',
];

/** One extra sbatch option, as one argument (`--constraint=a100`); never parsed by a shell. */
export const SbatchExtraArg = z
  .string()
  .regex(/^-/, 'is not an sbatch option (options start with "-", e.g. "--constraint=a100")')
  .refine(
    (arg) =>
      !RESERVED_SBATCH_OPTIONS.some(
        (reserved) =>
          arg === reserved ||
          arg.startsWith(`${reserved}=`) ||
          (/^-[a-zA-Z]$/.test(reserved) && arg.startsWith(reserved)),
      ),
    'is set by Labline itself (job name, output files, working directory, environment, requeue); remove it',
  );

const SlurmLauncherOptionsSchema = z.object({
  partition: z.string().min(1).optional(),
  account: z.string().min(1).optional(),
  qos: z.string().min(1).optional(),
  gpuOption: z.enum(['gres', 'gpus']).optional(),
  gpuType: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, 'is not a GPU type such as "a100"')
    .optional(),
  requeue: z.boolean().optional(),
  exportWorkerEnvironment: z.boolean().optional(),
  extraArgs: z.array(SbatchExtraArg).optional(),
  binDir: z.string().min(1).optional(),
  commandTimeoutMs: z.number().positive().optional(),
  cancelTimeoutMs: z.number().nonnegative().optional(),
  adoptTimeoutMs: z.number().nonnegative().optional(),
  pollIntervalMs: z.number().positive().optional(),
  user: z.string().min(1).optional(),
});

/** The batch script every job runs: it execs its arguments (the training command). */
const JOB_SCRIPT = path.join(__dirname, 'slurm-job.sh');

/** Variables that pick GPUs; the worker's own must not leak into a job Slurm gave other GPUs (or none). */
const GPU_VISIBILITY_VARIABLES = [
  'CUDA_VISIBLE_DEVICES',
  'GPU_DEVICE_ORDINAL',
  'ROCR_VISIBLE_DEVICES',
  'HIP_VISIBLE_DEVICES',
];

/** File names in a Slurm launch's attempt directory. */
export const SLURM_ATTEMPT_FILES = {
  jobName: 'slurm-job-name',
  lock: 'submit.lock',
  job: 'slurm-job.json',
  log: 'slurm.log',
  exit: 'slurm-exit.json',
} as const;

/** `slurm-job.json`: what was submitted. */
export const SlurmJobRecord = z.object({
  key: z.string(),
  jobId: z.string(),
  jobName: z.string(),
  experimentId: z.string(),
  attempt: z.number(),
  runDir: z.string(),
  command: z.string(),
  args: z.array(z.string()),
  cwd: z.string(),
  /** Labline's and the spec's variables (no worker variables, so no secrets). */
  env: z.record(z.string(), z.string()),
  sbatchArgs: z.array(z.string()),
  /** `true` when this record was written by a launch that found the job already submitted. */
  foundInSlurm: z.boolean(),
  submittedAt: z.string(),
  submittedBy: z.object({ pid: z.number(), hostname: z.string() }),
});
/** `slurm-job.json`: what was submitted. */
export type SlurmJobRecord = z.infer<typeof SlurmJobRecord>;

const LockRecord = ProcessIdentity.extend({ hostname: z.string(), acquiredAt: z.string() });

/** Runs training commands as Slurm batch jobs; see the comment at the top of this file. */
export class SlurmLauncher implements Launcher {
  readonly kind = 'slurm' as const;
  private readonly cli: SlurmCli;
  private readonly cancelTimeoutMs: number;
  private readonly adoptTimeoutMs: number;
  private readonly pollIntervalMs: number;
  private readonly lockStaleMs: number;
  private readonly user: string;

  constructor(private readonly options: SlurmLauncherOptions = {}) {
    const parsed = SlurmLauncherOptionsSchema.safeParse(options);
    if (!parsed.success) {
      throw new Error(`Invalid Slurm launcher settings:\n${z.prettifyError(parsed.error)}`);
    }
    const commandTimeoutMs = options.commandTimeoutMs ?? 30_000;
    this.cli = new SlurmCli({ binDir: options.binDir, timeoutMs: commandTimeoutMs });
    this.cancelTimeoutMs = options.cancelTimeoutMs ?? 60_000;
    this.adoptTimeoutMs = options.adoptTimeoutMs ?? 60_000;
    this.pollIntervalMs = options.pollIntervalMs ?? 200;
    // A live holder submits within a few command timeouts; an older lock belongs to a process that died.
    this.lockStaleMs = Math.max(120_000, 4 * commandTimeoutMs);
    this.user = options.user ?? os.userInfo().username;
  }

  async launch(input: LaunchRequestInput): Promise<LaunchResult> {
    const parsed = LaunchRequest.safeParse(input);
    if (!parsed.success) {
      throw new LaunchRejectedError(`Invalid launch request:\n${z.prettifyError(parsed.error)}`);
    }
    const request = parsed.data;
    const attemptDir = attemptDirFor(request.runDir, request.key);
    fs.mkdirSync(attemptDir, { recursive: true });

    const deadline = Date.now() + this.adoptTimeoutMs;
    for (;;) {
      const recorded = this.readJobRecord(attemptDir);
      if (recorded) return { handle: this.handleOf(recorded, attemptDir), adopted: true };
      if (this.tryLock(attemptDir)) {
        try {
          return await this.findOrSubmit(request, attemptDir);
        } finally {
          fs.rmSync(path.join(attemptDir, SLURM_ATTEMPT_FILES.lock), { force: true });
        }
      }
      if (Date.now() > deadline) {
        throw new LauncherBusyError(
          `another process is submitting ${request.key} (${path.join(attemptDir, SLURM_ATTEMPT_FILES.lock)}); ` +
            'the launch will adopt its job when it retries',
        );
      }
      await sleep(this.pollIntervalMs);
    }
  }

  async status(handle: TrainingHandle): Promise<TrainingState> {
    const state = await this.currentState(handle);
    const progress = await readTrainingProgress(handle.runDir);
    return progress ? { ...state, progress } : state;
  }

  /** `scancel`, then waits (bounded) until Slurm reports the job ended, so its processes are gone. */
  async cancel(handle: TrainingHandle): Promise<void> {
    const jobId = this.jobIdOf(handle);
    if (!jobId || readRecord(path.join(handle.attemptDir, SLURM_ATTEMPT_FILES.exit), TrainingState)) return;
    await this.cli.cancel(jobId);
    const deadline = Date.now() + this.cancelTimeoutMs;
    for (;;) {
      const job = await this.cli.showJob(jobId);
      if (!job || isFinalSlurmState(job.state) || Date.now() > deadline) return;
      await sleep(this.pollIntervalMs);
    }
  }

  async logTail(handle: TrainingHandle, lines = 50): Promise<string> {
    return tailLines(path.join(handle.attemptDir, SLURM_ATTEMPT_FILES.log), lines);
  }

  /** Under the key's lock: adopt a job of this launch's name if Slurm has one, else submit it. */
  private async findOrSubmit(request: LaunchRequest, attemptDir: string): Promise<LaunchResult> {
    const recorded = this.readJobRecord(attemptDir);
    if (recorded) return { handle: this.handleOf(recorded, attemptDir), adopted: true };
    const jobName = this.jobNameOf(request.key, attemptDir);
    const submission = this.submissionOf(request, attemptDir, jobName);

    const existing = await this.findJob(jobName);
    const jobId = existing ?? (await this.cli.submit(submission.sbatchArgs, submission.env));
    const record: SlurmJobRecord = {
      key: request.key,
      jobId,
      jobName,
      experimentId: request.experimentId,
      attempt: request.attempt,
      runDir: request.runDir,
      command: request.command,
      args: submission.args,
      cwd: submission.cwd,
      env: submission.added,
      sbatchArgs: submission.sbatchArgs,
      foundInSlurm: existing !== undefined,
      submittedAt: new Date().toISOString(),
      submittedBy: { pid: process.pid, hostname: os.hostname() },
    };
    writeRecordAtomic(path.join(attemptDir, SLURM_ATTEMPT_FILES.job), record);
    return { handle: this.handleOf(record, attemptDir), adopted: existing !== undefined };
  }

  /** A job of this name that an earlier launch submitted: the controller's memory first, then accounting. */
  private async findJob(jobName: string): Promise<string | undefined> {
    const queued = await this.cli.findJobsByName(jobName, this.user);
    if (queued[0]) return queued[0].jobId;
    const accounted = await this.cli.accountingJobsByName(jobName, this.user);
    return accounted === 'unavailable' ? undefined : accounted[0];
  }

  /** sbatch's arguments and environment for a launch; values travel in the environment, never in a shell. */
  private submissionOf(
    request: LaunchRequest,
    attemptDir: string,
    jobName: string,
  ): {
    sbatchArgs: string[];
    env: NodeJS.ProcessEnv;
    added: Record<string, string>;
    args: string[];
    cwd: string;
  } {
    const { args, env: added, cwd } = trainerInvocation(request);

    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const name of GPU_VISIBILITY_VARIABLES) delete env[name];
    Object.assign(env, added);
    const exported =
      this.options.exportWorkerEnvironment === false
        ? [...Object.keys(added), ...Object.keys(env).filter((name) => name.startsWith('WANDB_'))]
        : ['ALL'];

    // `%` starts a filename pattern in --output/--error (`%j`…); `%%` is a literal percent sign.
    const log = path.join(attemptDir, SLURM_ATTEMPT_FILES.log).replaceAll('%', '%%');
    const { resources } = request;
    const sbatchArgs = [
      `--job-name=${jobName}`,
      `--chdir=${cwd}`,
      `--output=${log}`,
      `--error=${log}`,
      // A requeued job appends to the first run's log instead of truncating it.
      '--open-mode=append',
      `--export=${[...new Set(exported)].join(',')}`,
      this.options.requeue === false ? '--no-requeue' : '--requeue',
      '--nodes=1',
      '--ntasks=1',
      `--cpus-per-task=${resources.cpus}`,
      ...(resources.memory ? [`--mem=${slurmMemory(resources.memory)}`] : []),
      // Slurm's limits are whole minutes; a limit in seconds is rounded up.
      ...(resources.timeLimitSeconds
        ? [`--time=${Math.max(1, Math.ceil(resources.timeLimitSeconds / 60))}`]
        : []),
      ...this.warningSignalArgument(resources.timeLimitSeconds),
      ...(resources.gpus > 0 ? [this.gpuArgument(resources.gpus)] : []),
      ...(this.options.partition ? [`--partition=${this.options.partition}`] : []),
      ...(this.options.account ? [`--account=${this.options.account}`] : []),
      ...(this.options.qos ? [`--qos=${this.options.qos}`] : []),
      ...(this.options.extraArgs ?? []),
      JOB_SCRIPT,
      request.command,
      ...args,
    ];
    return { sbatchArgs, env, added, args, cwd };
  }

  /**
   * `--signal=B:USR1@<n>`: to the batch shell, which `exec`s the trainer (slurm-job.sh), so the trainer gets
   * it. Slurm may send it up to a minute early (`sbatch --signal`), so not for a limit within a minute of the
   * warning: the signal would come at once, and again in every resumed job.
   */
  private warningSignalArgument(timeLimitSeconds: number | undefined): string[] {
    const warning = this.options.warningSignalSeconds ?? DEFAULT_WARNING_SIGNAL_SECONDS;
    if (warning <= 0 || timeLimitSeconds === undefined || timeLimitSeconds <= warning + 60) return [];
    return [`--signal=B:USR1@${Math.round(warning)}`];
  }

  private gpuArgument(count: number): string {
    const type = this.options.gpuType;
    return this.options.gpuOption === 'gpus'
      ? `--gpus=${type ? `${type}:` : ''}${count}`
      : `--gres=gpu:${type ? `${type}:` : ''}${count}`;
  }

  /** The job's name, created once per attempt directory (see the file comment for the token). */
  private jobNameOf(key: string, attemptDir: string): string {
    const file = path.join(attemptDir, SLURM_ATTEMPT_FILES.jobName);
    try {
      fs.writeFileSync(file, `${key}.${randomBytes(4).toString('hex')}\n`, { flag: 'wx' });
    } catch (error) {
      if (!isErrno(error, 'EEXIST')) throw error;
    }
    const name = fs.readFileSync(file, 'utf8').trim();
    if (!name.startsWith(`${key}.`)) {
      throw new Error(`${file} holds "${name}", not a job name for ${key}; it was edited by hand: delete it`);
    }
    return name;
  }

  private async currentState(handle: TrainingHandle): Promise<TrainingState> {
    const exitFile = path.join(handle.attemptDir, SLURM_ATTEMPT_FILES.exit);
    const recorded = readRecord(exitFile, TrainingState);
    if (recorded) return recorded;
    const jobId = this.jobIdOf(handle);
    if (!jobId) {
      return {
        phase: 'exited',
        exitCode: null,
        reason: 'lost',
        detail: `no Slurm job id is recorded for ${handle.key} in ${handle.attemptDir}`,
      };
    }
    const job = await this.lookUp(jobId);
    if (!job) {
      return {
        phase: 'exited',
        exitCode: null,
        reason: 'lost',
        detail:
          `Slurm no longer knows job ${jobId} (it forgets finished jobs after MinJobAge, and this cluster has no ` +
          `accounting or completion log this host can read); its output is in ${path.join(handle.attemptDir, SLURM_ATTEMPT_FILES.log)}`,
      };
    }
    const state = trainingStateOf(job);
    if (state.phase === 'exited') {
      // A requeued copy waits in the queue (or has started): it must not run the trainer next to the relaunch.
      if (!isFinalSlurmState(job.state)) await this.cli.cancel(jobId);
      writeRecordAtomic(exitFile, state);
    }
    return state;
  }

  /** The job from the controller, else accounting, else the completion log. */
  private async lookUp(jobId: string): Promise<SlurmJobInfo | undefined> {
    const shown = await this.cli.showJob(jobId);
    if (shown) return shown;
    const accounted = await this.cli.accountingJob(jobId);
    if (accounted !== 'unavailable' && accounted) return accounted;
    return this.cli.completionLogJob(jobId);
  }

  /** Takes the key's submit lock, breaking one whose holder died; `false` while a live process holds it. */
  private tryLock(attemptDir: string): boolean {
    const file = path.join(attemptDir, SLURM_ATTEMPT_FILES.lock);
    const record = {
      ...identityOf(process.pid),
      hostname: os.hostname(),
      acquiredAt: new Date().toISOString(),
    };
    try {
      fs.writeFileSync(file, JSON.stringify(record), { flag: 'wx' });
      return true;
    } catch (error) {
      if (!isErrno(error, 'EEXIST')) throw error;
    }
    let holder: z.infer<typeof LockRecord> | undefined;
    try {
      holder = readRecord(file, LockRecord);
    } catch {
      // Half-written by a process that died while creating it: judged by age below.
    }
    let ageMs: number;
    try {
      ageMs = Date.now() - fs.statSync(file).mtimeMs;
    } catch {
      return false; // released meanwhile: the caller looks again
    }
    const deadHere = holder !== undefined && holder.hostname === os.hostname() && !isProcessAlive(holder);
    if (deadHere || ageMs > this.lockStaleMs) fs.rmSync(file, { force: true });
    return false;
  }

  private readJobRecord(attemptDir: string): SlurmJobRecord | undefined {
    return readRecord(path.join(attemptDir, SLURM_ATTEMPT_FILES.job), SlurmJobRecord);
  }

  private jobIdOf(handle: TrainingHandle): string | undefined {
    return handle.jobId ?? this.readJobRecord(handle.attemptDir)?.jobId;
  }

  private handleOf(record: SlurmJobRecord, attemptDir: string): TrainingHandle {
    return { launcher: 'slurm', key: record.key, runDir: record.runDir, attemptDir, jobId: record.jobId };
  }
}

/** A spec memory size as `--mem` takes it: whole units (`16G`), or MiB for fractions (`1.5G` → `1536M`). */
export function slurmMemory(size: string): string {
  const whole = /^(\d+)\s*([KMGT])(?:i?B)?$/i.exec(size.trim());
  if (whole) return `${whole[1]}${whole[2]!.toUpperCase()}`;
  return `${Math.ceil(parseMemorySize(size) / 1024 ** 2)}M`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
