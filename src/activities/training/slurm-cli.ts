import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { LaunchRejectedError } from './launcher';
import type { SlurmJobInfo } from './slurm-state';

/**
 * Slurm's commands (`sbatch`, `squeue`, `scontrol`, `scancel`, `sacct`), run with `execFile` and an argument
 * array (no shell ever parses a value), and their output parsed. Only the text formats that have been stable
 * across Slurm releases are read: `squeue -O` with a separator, `scontrol show job -o` fields by name, and
 * `sacct --parsable2`; the JSON output's shape changes between Slurm versions.
 */

/** Options of {@link SlurmCli}. */
export interface SlurmCliOptions {
  /** Directory holding Slurm's commands. Default: looked up on the worker's `PATH`. */
  binDir?: string;
  /** How long one command may take before it is killed, ms. Default 30000. */
  timeoutMs?: number;
}

/** A Slurm command failed; `stderr` is what it said. */
export class SlurmCommandError extends Error {
  override readonly name = 'SlurmCommandError';
  constructor(
    readonly program: string,
    readonly exitCode: number | string | null,
    readonly stderr: string,
    message: string,
  ) {
    super(message);
  }
}

/** sbatch refusals that no retry can fix: the request does not fit the cluster or the account. */
const PERMANENT_SUBMIT_ERRORS =
  /Requested node configuration is not available|invalid partition|Invalid partition name|Invalid account|Invalid qos|Invalid generic resource|Invalid Trackable RESource|Memory specification can not be satisfied|Requested time limit is invalid|violates accounting\/QOS policy|Invalid feature specification|Requested partition configuration not available|unrecognized option|invalid option|Invalid --|Invalid job array|Invalid directory|Unable to open file|Invalid user id|Access\/permission denied/i;

/** The output of `scontrol show job` for a job the controller no longer (or never) knew. */
const UNKNOWN_JOB = /Invalid job id specified/i;

/** `squeue -O` fields read by {@link SlurmCli.findJobsByName}, separated by `|` (not allowed in job names here). */
const SQUEUE_FIELDS = ['JobID', 'Name', 'State', 'RestartCnt', 'SubmitTime'];

/** Slurm's commands for the launcher; each method is one command (two for the completion log). */
export class SlurmCli {
  private readonly timeoutMs: number;

  constructor(private readonly options: SlurmCliOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /**
   * Submits a batch job; returns its id. `args` are sbatch's options, the script and the script's arguments.
   * @throws LaunchRejectedError when sbatch refuses the job for good (no such partition, too many GPUs…)
   * @throws SlurmCommandError when it failed otherwise (controller unreachable: retry)
   */
  async submit(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
    let stdout: string;
    try {
      ({ stdout } = await this.run('sbatch', ['--parsable', ...args], env));
    } catch (error) {
      if (error instanceof SlurmCommandError && PERMANENT_SUBMIT_ERRORS.test(error.stderr)) {
        throw new LaunchRejectedError(
          `Slurm refused the job: ${error.message}. Check training.resources in the spec (GPUs, CPUs, memory, ` +
            'time limit) against the cluster, and the slurm section of the Labline settings (partition, ' +
            'account, qos, extra_args).',
        );
      }
      throw error;
    }
    // `--parsable`: "<job id>" or "<job id>;<cluster>".
    const jobId = stdout.trim().split('\n').at(-1)?.split(';')[0]?.trim() ?? '';
    if (!/^\d+$/.test(jobId)) {
      throw new SlurmCommandError('sbatch', 0, stdout, `sbatch printed no job id: ${JSON.stringify(stdout)}`);
    }
    return jobId;
  }

  /** Jobs of `user` named `name`, in any state the controller still remembers, oldest first. */
  async findJobsByName(
    name: string,
    user: string,
  ): Promise<{ jobId: string; state: string; restarts: number }[]> {
    const { stdout } = await this.run('squeue', [
      '--noheader',
      '--states=all',
      `--user=${user}`,
      `--name=${name}`,
      `--Format=${SQUEUE_FIELDS.map((field) => `${field}:|`).join(',')}`,
    ]);
    const jobs: { jobId: string; state: string; restarts: number }[] = [];
    for (const line of stdout.split('\n')) {
      const [jobId, jobName, state, restarts] = line.split('|').map((field) => field.trim());
      // squeue matches names exactly; the check guards against a Slurm that would not.
      if (!jobId || !/^\d+$/.test(jobId) || jobName !== name || !state) continue;
      jobs.push({ jobId, state: baseState(state), restarts: Number(restarts) || 0 });
    }
    return jobs.sort((a, b) => Number(a.jobId) - Number(b.jobId));
  }

  /** The job as the controller knows it; `undefined` once it has forgotten it (after `MinJobAge`). */
  async showJob(jobId: string): Promise<SlurmJobInfo | undefined> {
    let stdout: string;
    try {
      ({ stdout } = await this.run('scontrol', ['--oneliner', 'show', 'job', jobId]));
    } catch (error) {
      if (error instanceof SlurmCommandError && UNKNOWN_JOB.test(error.stderr)) return undefined;
      throw error;
    }
    const line = stdout.split('\n').find((text) => text.startsWith(`JobId=${jobId} `));
    return line === undefined ? undefined : parseScontrolJob(jobId, line);
  }

  /**
   * The job from Slurm's accounting (`sacct`); `undefined` when accounting does not know it, and `'unavailable'`
   * when the cluster keeps no accounting (no slurmdbd: "Slurm accounting storage is disabled").
   */
  async accountingJob(jobId: string): Promise<SlurmJobInfo | undefined | 'unavailable'> {
    let stdout: string;
    try {
      ({ stdout } = await this.run('sacct', [
        '--noheader',
        '--parsable2',
        '--allocations',
        `--jobs=${jobId}`,
        '--format=JobID,State,ExitCode,Start,End',
      ]));
    } catch (error) {
      if (error instanceof SlurmCommandError && /accounting storage is disabled|slurmdbd/i.test(error.stderr))
        return 'unavailable';
      throw error;
    }
    if (/accounting storage is disabled/i.test(stdout)) return 'unavailable';
    const line = stdout.split('\n').find((text) => text.split('|')[0] === jobId);
    if (line === undefined) return undefined;
    const [, state, exitCode, start, end] = line.split('|');
    return {
      jobId,
      state: baseState(state ?? ''),
      ...exitCodeOf(exitCode),
      ...timesOf(start, end),
      source: 'sacct',
    };
  }

  /** Jobs named `name` in accounting; `'unavailable'` without accounting. */
  async accountingJobsByName(name: string, user: string): Promise<string[] | 'unavailable'> {
    let stdout: string;
    try {
      ({ stdout } = await this.run('sacct', [
        '--noheader',
        '--parsable2',
        '--allocations',
        `--user=${user}`,
        `--name=${name}`,
        '--starttime=now-30days',
        '--format=JobID,JobName',
      ]));
    } catch (error) {
      if (error instanceof SlurmCommandError && /accounting storage is disabled|slurmdbd/i.test(error.stderr))
        return 'unavailable';
      throw error;
    }
    if (/accounting storage is disabled/i.test(stdout)) return 'unavailable';
    return stdout
      .split('\n')
      .map((line) => line.split('|'))
      .filter(([jobId, jobName]) => jobId !== undefined && /^\d+$/.test(jobId) && jobName === name)
      .map(([jobId]) => jobId as string);
  }

  /**
   * The job's last line in the `jobcomp/filetxt` completion log (`JobCompLoc`), when the cluster writes one and
   * this host can read it; `undefined` otherwise.
   */
  async completionLogJob(jobId: string): Promise<SlurmJobInfo | undefined> {
    const config = await this.run('scontrol', ['show', 'config']).catch(() => undefined);
    const type = /^JobCompType\s*=\s*(\S+)/m.exec(config?.stdout ?? '')?.[1];
    const file = /^JobCompLoc\s*=\s*(\S+)/m.exec(config?.stdout ?? '')?.[1];
    if (type !== 'jobcomp/filetxt' || !file || !path.isAbsolute(file)) return undefined;
    const text = await fs.readFile(file, 'utf8').catch(() => '');
    const line = text
      .split('\n')
      .filter((entry) => entry.startsWith(`JobId=${jobId} `))
      .at(-1);
    if (line === undefined) return undefined;
    const info = parseScontrolJob(jobId, line);
    return { ...info, source: 'jobcomp' };
  }

  /** `scancel`; a job that already ended is not an error. */
  async cancel(jobId: string): Promise<void> {
    try {
      await this.run('scancel', [jobId]);
    } catch (error) {
      if (
        error instanceof SlurmCommandError &&
        /already completing or completed|Invalid job id|Job has already finished/i.test(error.stderr)
      )
        return;
      throw error;
    }
  }

  /** Runs one command; rejects with a {@link SlurmCommandError} naming it, its exit and what it printed. */
  run(
    program: string,
    args: string[],
    env: NodeJS.ProcessEnv = process.env,
  ): Promise<{ stdout: string; stderr: string }> {
    const file = this.options.binDir ? path.join(this.options.binDir, program) : program;
    return new Promise((resolve, reject) => {
      execFile(
        file,
        args,
        { env, timeout: this.timeoutMs, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
        (error, stdout, stderr) => {
          if (!error) {
            resolve({ stdout, stderr });
            return;
          }
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') {
            reject(
              new LaunchRejectedError(
                `${program} was not found (${file}): install Slurm's client commands on this worker, or set ` +
                  'slurm.bin_dir in the Labline settings to the directory that holds them',
              ),
            );
            return;
          }
          const said = stderr.trim() || stdout.trim() || error.message;
          const why = error.killed ? `timed out after ${this.timeoutMs} ms` : `exited with ${String(code)}`;
          reject(
            new SlurmCommandError(
              program,
              code ?? null,
              `${stderr}\n${stdout}`,
              `${program} ${why}: ${said}`,
            ),
          );
        },
      );
    });
  }
}

/** `RUNNING`, `CANCELLED by 0`, `COMPLETING+`… → the state's name alone. */
function baseState(state: string): string {
  return (state.trim().split(/[\s+]/)[0] ?? '').toUpperCase();
}

/**
 * One `scontrol show job -o` line (or a jobcomp line, which uses the same `Key=Value` form). Values that may
 * hold spaces (paths, comments) come after the fields read here, and the first occurrence of a key wins.
 */
export function parseScontrolJob(jobId: string, line: string): SlurmJobInfo {
  const field = (key: string): string | undefined => new RegExp(`(?:^|\\s)${key}=(\\S*)`).exec(line)?.[1];
  const restarts = Number(field('Restarts'));
  return {
    jobId,
    state: baseState(field('JobState') ?? ''),
    ...(field('Reason') ? { reason: field('Reason') } : {}),
    ...exitCodeOf(field('ExitCode')),
    ...(Number.isFinite(restarts) ? { restarts } : {}),
    ...timesOf(field('StartTime'), field('EndTime')),
    source: 'scontrol',
  };
}

/** `ExitCode=<code>:<signal>`. */
function exitCodeOf(text: string | undefined): Pick<SlurmJobInfo, 'exitCode' | 'exitSignal'> {
  const match = /^(\d+):(\d+)$/.exec(text ?? '');
  if (!match) return {};
  return { exitCode: Number(match[1]), exitSignal: Number(match[2]) };
}

/** Slurm prints local times without a zone (`2024-05-01T10:00:00`); `Unknown`/`None` when there is none. */
function timesOf(
  start: string | undefined,
  end: string | undefined,
): Pick<SlurmJobInfo, 'startTime' | 'endTime'> {
  const iso = (text: string | undefined): string | undefined => {
    if (!text || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/.test(text)) return undefined;
    const date = new Date(text);
    return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
  };
  const startTime = iso(start);
  const endTime = iso(end);
  return { ...(startTime ? { startTime } : {}), ...(endTime ? { endTime } : {}) };
}
