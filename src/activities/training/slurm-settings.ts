/**
 * The `slurm` section of the Labline settings. With it, a worker registers the Slurm launcher, so specs with
 * `training.launcher: slurm` submit batch jobs from this worker's host (it needs Slurm's client commands and
 * a run directory on a file system the compute nodes share).
 */
import { z } from 'zod';
import { SbatchExtraArg, type SlurmLauncherOptions } from './slurm';

/** The `slurm` section of the Labline settings. Every option has a default. */
export const SlurmSettings = z.strictObject({
  /** `--partition`. Default: the cluster's default partition. */
  partition: z.string().min(1).optional(),
  /** `--account`. Default: the user's default account. */
  account: z.string().min(1).optional(),
  /** `--qos`. Default: the account's default QOS. */
  qos: z.string().min(1).optional(),
  /** How GPUs are asked for: `gres` (`--gres=gpu:N`) or `gpus` (`--gpus=N`). Default `gres`. */
  gpu_option: z.enum(['gres', 'gpus']).default('gres'),
  /** GPU type (`a100` → `--gres=gpu:a100:N`). Default: any. */
  gpu_type: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, 'is not a GPU type such as "a100"')
    .optional(),
  /**
   * `true`: `--requeue` (Slurm may requeue the job on preemption or node failure, and `scontrol requeue` works);
   * `false`: `--no-requeue` (such a job ends PREEMPTED or NODE_FAIL). Either way Labline resumes it from the
   * latest checkpoint in a new launch, within the spec's `budgets.max_preemption_restarts`. Default `true`.
   */
  requeue: z.boolean().default(true),
  /**
   * `true`: the job gets the worker's environment (`--export=ALL`); `false`: only Labline's variables, the
   * spec's `training.env` and the worker's `WANDB_*` (then give `training.command` as an absolute path, or add
   * `--get-user-env` to `extra_args`). Default `true`.
   */
  export_worker_environment: z.boolean().default(true),
  /**
   * Seconds before a job's time limit at which Slurm sends the trainer SIGUSR1 (`--signal=B:USR1@<n>`): a
   * trainer that follows the contract checkpoints and exits as preempted, and the experiment resumes in a new
   * job. Only for launches whose `time_limit` is more than a minute longer (Slurm may signal up to a minute
   * early). Default 120; `0`: never.
   */
  warning_signal_seconds: z.number().int().nonnegative().max(65535).default(120),
  /** More sbatch options, one per element, e.g. `["--constraint=a100", "--exclusive"]`. Default `[]`. */
  extra_args: z.array(SbatchExtraArg).default([]),
  /** Directory of `sbatch`, `squeue`, `scontrol`, `scancel`, `sacct`. Default: the worker's `PATH`. */
  bin_dir: z.string().min(1).optional(),
  /** Seconds one Slurm command may take. Default 30. */
  command_timeout_seconds: z.number().positive().default(30),
  /** Seconds `cancel` waits for a job to end after `scancel`. Default 60. */
  cancel_timeout_seconds: z.number().nonnegative().default(60),
  /**
   * Slurm jobs this worker watches at once. They use the cluster's GPUs, not this host's, so this adds to the
   * GPU task queue's concurrency (the host's GPU slots, or `training.max_concurrent`). Default 50.
   */
  max_jobs: z.number().int().positive().default(50),
});
/** The `slurm` section of the Labline settings, defaults filled in. */
export type SlurmSettings = z.infer<typeof SlurmSettings>;

/** The launcher's options from the settings. */
export function slurmLauncherOptionsOf(settings: SlurmSettings): SlurmLauncherOptions {
  return {
    partition: settings.partition,
    account: settings.account,
    qos: settings.qos,
    gpuOption: settings.gpu_option,
    gpuType: settings.gpu_type,
    requeue: settings.requeue,
    exportWorkerEnvironment: settings.export_worker_environment,
    extraArgs: settings.extra_args,
    warningSignalSeconds: settings.warning_signal_seconds,
    binDir: settings.bin_dir,
    commandTimeoutMs: settings.command_timeout_seconds * 1000,
    cancelTimeoutMs: settings.cancel_timeout_seconds * 1000,
  };
}
