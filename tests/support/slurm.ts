/**
 * A real single-node Slurm for the Slurm launcher's tests: the cluster `scripts/slurm/setup.sh` configures
 * (partition `labline`, fake GPUs). When Slurm is installed but not running, the tests start it with that
 * script (as root). Without Slurm the tests are skipped, each file showing one skipped test that names why;
 * with `LABLINE_REQUIRE_SLURM=1` (as in `.ci/run`) they fail instead, and the script also installs Slurm.
 */
import { execFile, spawnSync } from 'node:child_process';
import path from 'node:path';

const SETUP_SCRIPT = path.resolve(__dirname, '..', '..', 'scripts', 'slurm', 'setup.sh');

/** The partition the setup script creates (`LABLINE_SLURM_PARTITION`, default `labline`). */
export const TEST_PARTITION = process.env.LABLINE_SLURM_PARTITION ?? 'labline';

/** Whether Slurm tests must run (CI): then a missing Slurm fails them rather than skipping them. */
export const slurmRequired = process.env.LABLINE_REQUIRE_SLURM === '1';

type Availability = { available: true } | { available: false; reason: string };
let availability: Availability | undefined;

function nodeIsUp(): boolean {
  const sinfo = spawnSync('sinfo', ['--noheader', '--Node', '--nodes=localhost', '--format=%T'], {
    encoding: 'utf8',
    timeout: 15_000,
  });
  return sinfo.status === 0 && /^(idle|mixed|allocated|completing)/m.test(sinfo.stdout);
}

function onPath(program: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', program]).status === 0;
}

/**
 * Whether a Slurm cluster answers, starting it first if it is installed but down (and installing it, when
 * Slurm tests are required). Synchronous, so that test files can decide at load time; memoized per process.
 */
export function slurmAvailability(): Availability {
  if (availability) return availability;
  availability = probe();
  return availability;
}

function probe(): Availability {
  if (onPath('sinfo') && nodeIsUp()) return { available: true };
  const installed = onPath('sbatch') && onPath('slurmctld');
  if (!installed && !slurmRequired) {
    return {
      available: false,
      reason:
        'Slurm is not installed (no sbatch/slurmctld on PATH); run `sudo scripts/slurm/setup.sh` to install and ' +
        'start a single-node cluster, or set LABLINE_REQUIRE_SLURM=1 to make this a failure',
    };
  }
  if (process.getuid?.() !== 0) {
    return {
      available: false,
      reason: 'Slurm is not running and only root can start it: run `sudo scripts/slurm/setup.sh`',
    };
  }
  const setup = spawnSync('bash', [SETUP_SCRIPT], { encoding: 'utf8', timeout: 10 * 60_000 });
  if (setup.status === 0 && nodeIsUp()) return { available: true };
  const said =
    setup.error?.message ??
    `${setup.stdout ?? ''}${setup.stderr ?? ''}`.trim().split('\n').slice(-5).join(' | ');
  return {
    available: false,
    reason: `scripts/slurm/setup.sh could not start Slurm (exit ${String(setup.status)}): ${said}`,
  };
}

/**
 * `describe` for tests that need Slurm. Without it: one skipped test whose name says why (or, with
 * LABLINE_REQUIRE_SLURM=1, one failing test saying the same).
 */
export function describeWithSlurm(name: string, body: () => void): void {
  const slurm = slurmAvailability();
  if (slurm.available) {
    describe(name, body);
  } else if (slurmRequired) {
    describe(name, () => {
      test('a Slurm cluster is available (LABLINE_REQUIRE_SLURM=1)', () => {
        throw new Error(slurm.reason);
      });
    });
  } else {
    // Jest prints no names for a file whose tests are all skipped; the warning says why in every run.
    console.warn(`${name}: skipped, ${slurm.reason}`);
    describe(name, () => {
      test.skip(`needs Slurm: ${slurm.reason}`, () => undefined);
    });
  }
}

/** Runs a Slurm command (test side: requeue, release, inspect); rejects with what it printed. */
export function slurmCommand(program: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(program, args, { encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${program} ${args.join(' ')}: ${stderr || error.message}`));
      else resolve(stdout);
    });
  });
}

/** `scontrol show job` as key → value (first occurrence), for assertions. */
export async function jobFields(jobId: string): Promise<Record<string, string>> {
  const line = await slurmCommand('scontrol', ['--oneliner', 'show', 'job', jobId]);
  const fields: Record<string, string> = {};
  for (const match of line.matchAll(/(?:^|\s)([A-Za-z:/]+)=(\S*)/g)) {
    const [, key, value] = match;
    if (key && !(key in fields)) fields[key] = value ?? '';
  }
  return fields;
}

/** Ids of the jobs named `name`, in every state Slurm still remembers. */
export async function jobsNamed(name: string): Promise<string[]> {
  const out = await slurmCommand('squeue', ['--noheader', '--states=all', `--name=${name}`, '--format=%i']);
  return out
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
}
