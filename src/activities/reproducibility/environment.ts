/**
 * The machine and software a trainer runs on, for `reproducibility.json`: OS, CPU, GPUs, Node, the trainer's
 * Python and its packages, the lockfiles in its code, and the container image it runs in. Every probe is
 * best effort: a missing or failing tool leaves its part empty (or says why in `packages_error`), because a
 * record with a gap is worth more than a launch refused for want of `nvidia-smi`.
 */
import { execFile, type ExecFileException } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RecordedEnvironment, RecordedLockfile } from '../../experiment/reproducibility';
import { sha256OfFile } from './data-hashes';

/** Options of {@link captureEnvironment}. */
export interface CaptureEnvironmentOptions {
  /** The trainer's command as the spec resolved it (`python3`, `.venv/bin/python`, `uv`, `docker`). */
  command: string;
  /** The trainer's arguments. */
  args: readonly string[];
  /** The trainer's working directory; tools run here, and relative commands and image paths resolve here. */
  cwd: string;
  /** The root of the code the trainer runs; lockfiles are looked for below it. */
  codeRoot: string;
  /** The trainer's environment: tools are found on its `PATH` and run with it. */
  env: NodeJS.ProcessEnv;
  /** Time limit of each tool call (`nvidia-smi`, `pip freeze`, `docker image inspect`), ms. Default 60000. */
  timeoutMs?: number;
}

/** The trainer's Python, as recorded. */
export type RecordedPython = NonNullable<RecordedEnvironment['python']>;

/** A container engine whose `run` a trainer command can be. */
export type ContainerEngine = 'docker' | 'podman' | 'apptainer' | 'singularity';

/** The container image a trainer command runs, and the engine that runs it. */
export interface ContainerImage {
  engine: ContainerEngine;
  /** The image as the command names it: `pytorch/pytorch:2.3.0`, or a path such as `images/train.sif`. */
  image: string;
}

/** How long a tool may run when `timeoutMs` is not given, ms. */
const DEFAULT_TOOL_TIMEOUT_MS = 60_000;

/** Output a tool may print before it counts as failed; `pip freeze` of a large environment is ~100 KiB. */
const TOOL_MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

/** Longest `packages_error` kept: one line, enough for the interpreter's own message. */
const MAX_REASON_LENGTH = 300;

/** `python`, `python3`, `python3.11`: the names a Python interpreter goes by. */
const PYTHON_NAME = /^python(\d+(\.\d+)*)?$/;

/** Lockfile names, besides `requirements*.txt`. */
const LOCKFILE_NAMES: ReadonlySet<string> = new Set([
  'uv.lock',
  'poetry.lock',
  'Pipfile.lock',
  'environment.yml',
  'environment.yaml',
  'package-lock.json',
  'pnpm-lock.yaml',
  'yarn.lock',
]);

/** Directories never searched for lockfiles: dependencies and tool state, not the project's own code. */
const SKIPPED_DIRS: ReadonlySet<string> = new Set(['.git', 'node_modules', '.venv', 'venv', '__pycache__']);

/** How deep below `codeRoot` lockfiles are looked for: files in `a/b/c/` count, `a/b/c/d/` does not. */
const LOCKFILE_MAX_DEPTH = 3;

/**
 * Captures the environment a trainer runs in. Never throws for a missing or failing tool; the tools it runs
 * (`nvidia-smi`, `<python> --version`, `<python> -m pip freeze`, `uv pip freeze`, `docker image inspect`) run
 * without a shell, in `cwd`, with `env`, each bounded by `timeoutMs`.
 */
export async function captureEnvironment(options: CaptureEnvironmentOptions): Promise<RecordedEnvironment> {
  const tools = new ToolRunner(options.env, options.cwd, options.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS);
  const [gpus, python, lockfiles, container] = await Promise.all([
    captureGpus(tools),
    capturePython(options.command, options.args, tools),
    findLockfiles(options.codeRoot),
    captureContainer(options.command, options.args, tools),
  ]);
  const cpus = os.cpus();
  const cudaVisibleDevices = options.env.CUDA_VISIBLE_DEVICES;
  return {
    os: { platform: os.platform(), release: os.release(), arch: os.arch() },
    cpu: { model: cpus[0]?.model.trim() ?? 'unknown', cores: cpus.length },
    gpus,
    ...(cudaVisibleDevices !== undefined ? { cuda_visible_devices: cudaVisibleDevices } : {}),
    node: process.version,
    ...(python ? { python } : {}),
    lockfiles,
    ...(container ? { container } : {}),
  };
}

/**
 * The container image a trainer command runs: the first positional argument after `docker run`,
 * `podman run` (or `… container run`), `apptainer run|exec` or `singularity run|exec`, skipping options and
 * the values of those that take one. `undefined` when the command runs no container.
 */
export function containerImageOf(command: string, args: readonly string[]): ContainerImage | undefined {
  const engine = path.basename(command);
  if (engine === 'docker' || engine === 'podman') {
    const rest =
      args[0] === 'run' ? args.slice(1) : args[0] === 'container' && args[1] === 'run' ? args.slice(2) : [];
    const image = firstPositional(rest, OCI_RUN_OPTIONS);
    return image === undefined ? undefined : { engine, image };
  }
  if (engine === 'apptainer' || engine === 'singularity') {
    const rest = args[0] === 'run' || args[0] === 'exec' ? args.slice(1) : [];
    const image = firstPositional(rest, APPTAINER_RUN_OPTIONS);
    return image === undefined ? undefined : { engine, image };
  }
  return undefined;
}

/** The options of a command that take a value, long (without `--`) and short (one letter). */
interface OptionsWithValues {
  long: ReadonlySet<string>;
  short: ReadonlySet<string>;
}

/** Option names written as one whitespace-separated list, which stays readable under Prettier. */
function optionNames(names: string): ReadonlySet<string> {
  return new Set(names.trim().split(/\s+/));
}

/** `docker run` and `podman run` options that take a value (`docker run --help`, `podman run --help`). */
const OCI_RUN_OPTIONS: OptionsWithValues = {
  long: optionNames(`
    add-host annotation arch attach authfile blkio-weight blkio-weight-device cap-add cap-drop cert-dir
    cgroup-conf cgroup-parent cgroupns cgroups chrootdirs cidfile conmon-pidfile cpu-period cpu-quota
    cpu-rt-period cpu-rt-runtime cpu-shares cpus cpuset-cpus cpuset-mems creds decryption-key detach-keys
    device device-cgroup-rule device-read-bps device-read-iops device-write-bps device-write-iops dns
    dns-option dns-search domainname entrypoint env env-file env-merge expose gidmap gpus group-add
    group-entry health-cmd health-interval health-retries health-start-interval health-start-period
    health-timeout hostname hostuser image-volume init-path ip ip6 ipc isolation kernel-memory label
    label-file link link-local-ip log-driver log-opt mac-address memory memory-reservation memory-swap
    memory-swappiness mount name net net-alias network network-alias oom-score-adj os passwd-entry
    personality pid pidfile pids-limit platform pod pod-id-file preserve-fds publish pull rdt-class
    requires restart retry retry-delay runtime sdnotify seccomp-policy secret security-opt shm-size
    shm-size-systemd stop-signal stop-timeout storage-opt subgidname subuidname sysctl timeout tmpfs tz
    uidmap ulimit umask unsetenv user userns uts variant volume volume-driver volumes-from workdir
  `),
  short: optionNames('a c e h l m p u v w'),
};

/** `apptainer run|exec` (and `singularity`) options that take a value; its `-e`, `-u`, `-w` are flags. */
const APPTAINER_RUN_OPTIONS: OptionsWithValues = {
  long: optionNames(`
    add-caps app apply-cgroups bind blkio-weight blkio-weight-device cdi-dirs cpu-shares cpus cpuset-cpus
    cpuset-mems cwd device dns drop-caps env env-file fusemount home hostname memory memory-reservation
    memory-swap mount network network-args overlay pem-path pids-limit pwd scratch security workdir
  `),
  short: optionNames('B H o S W'),
};

/**
 * The first argument that is neither an option nor an option's value. `--opt=value` carries its value; in a
 * cluster of short options (`-it`, `-itv /a:/b`) the first that takes a value takes the rest of the cluster,
 * or the next argument when it ends the cluster, as Docker's flag parser does.
 */
function firstPositional(args: readonly string[], options: OptionsWithValues): string | undefined {
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index] ?? '';
    if (arg === '--') return args[index + 1];
    if (arg.startsWith('--')) {
      if (!arg.includes('=') && options.long.has(arg.slice(2))) index += 1;
    } else if (arg.startsWith('-') && arg.length > 1) {
      const valueAt = [...arg.slice(1)].findIndex((letter) => options.short.has(letter));
      if (valueAt === arg.length - 2) index += 1;
    } else {
      return arg;
    }
  }
  return undefined;
}

/** GPU models from `nvidia-smi`, one per GPU; empty when it is not on `PATH` or fails. */
async function captureGpus(tools: ToolRunner): Promise<string[]> {
  const nvidiaSmi = tools.resolve('nvidia-smi');
  if (nvidiaSmi === undefined) return [];
  const result = await tools.run(nvidiaSmi, ['--query-gpu=name', '--format=csv,noheader']);
  return result.ok ? linesOf(result.stdout) : [];
}

/** The trainer's Python, when the command is a Python interpreter or `uv run`; otherwise `undefined`. */
async function capturePython(
  command: string,
  args: readonly string[],
  tools: ToolRunner,
): Promise<RecordedPython | undefined> {
  const name = path.basename(command);
  if (PYTHON_NAME.test(name)) {
    const executable = tools.resolve(command);
    if (executable === undefined) return { executable: command, packages_error: `${command} is not on PATH` };
    const [version, freeze] = await Promise.all([
      pythonVersion(executable, tools),
      tools.run(executable, ['-m', 'pip', 'freeze']),
    ]);
    return { executable, ...version, ...packagesOf(freeze) };
  }
  if (name === 'uv' && args[0] === 'run') {
    const uv = tools.resolve(command);
    if (uv === undefined) return { executable: command, packages_error: `${command} is not on PATH` };
    // `uv run` runs the project environment's interpreter; `uv python find` names it (in cwd, as the trainer
    // will see it). When it cannot, the record keeps uv itself as the executable, without a version.
    const [found, freeze] = await Promise.all([
      tools.run(uv, ['python', 'find']),
      tools.run(uv, ['pip', 'freeze']),
    ]);
    const interpreter = found.ok ? linesOf(found.stdout)[0] : undefined;
    const version = interpreter === undefined ? {} : await pythonVersion(interpreter, tools);
    return { executable: interpreter ?? uv, ...version, ...packagesOf(freeze) };
  }
  return undefined;
}

/** `{ version: "3.11.2" }` from `<python> --version`, or `{}` when it fails. */
async function pythonVersion(executable: string, tools: ToolRunner): Promise<{ version?: string }> {
  const result = await tools.run(executable, ['--version']);
  if (!result.ok) return {};
  // Python 2 printed its version on stderr, Python 3 prints it on stdout.
  const version = /Python\s+(\S+)/.exec(`${result.stdout}\n${result.stderr}`)?.[1];
  return version === undefined ? {} : { version };
}

/** The sorted lines of a `pip freeze`, or why it failed. */
function packagesOf(freeze: ToolResult): Pick<RecordedPython, 'packages' | 'packages_error'> {
  return freeze.ok
    ? { packages: linesOf(freeze.stdout).sort(byCodeUnits) }
    : { packages_error: freeze.reason };
}

/**
 * Lockfiles below `codeRoot`, with their SHA-256, sorted by path. Dependency and tool folders and hidden
 * folders are skipped, and symlinked folders are not followed, so the walk stays inside the project's code.
 */
async function findLockfiles(codeRoot: string): Promise<RecordedLockfile[]> {
  const found: string[] = [];
  const pending: { relative: string; depth: number }[] = [{ relative: '', depth: 0 }];
  for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
    let dirents: fs.Dirent[];
    try {
      dirents = await fs.promises.readdir(path.join(codeRoot, dir.relative), { withFileTypes: true });
    } catch {
      // Unreadable or vanished: the record lists what could be read; a folder is not worth a failed launch.
      continue;
    }
    for (const dirent of dirents) {
      const relative = dir.relative === '' ? dirent.name : `${dir.relative}/${dirent.name}`;
      if (dirent.isDirectory()) {
        const skipped = SKIPPED_DIRS.has(dirent.name) || dirent.name.startsWith('.');
        if (!skipped && dir.depth < LOCKFILE_MAX_DEPTH) pending.push({ relative, depth: dir.depth + 1 });
      } else if (dirent.isFile() && isLockfileName(dirent.name)) {
        found.push(relative);
      }
    }
  }
  const lockfiles: RecordedLockfile[] = [];
  for (const relative of found.sort(byCodeUnits)) {
    try {
      lockfiles.push({ path: relative, sha256: await sha256OfFile(path.join(codeRoot, relative)) });
    } catch {
      // Removed or unreadable between listing and hashing: left out, like any file it cannot read.
    }
  }
  return lockfiles;
}

function isLockfileName(name: string): boolean {
  return LOCKFILE_NAMES.has(name) || /^requirements.*\.txt$/.test(name);
}

/**
 * The container image and its digest: the repo digest Docker or Podman reports for a local image
 * (`name@sha256:…`, absent when the image is not pulled yet or has none), or `sha256:<hex>` of an Apptainer
 * image file.
 */
async function captureContainer(
  command: string,
  args: readonly string[],
  tools: ToolRunner,
): Promise<RecordedEnvironment['container']> {
  const container = containerImageOf(command, args);
  if (container === undefined) return undefined;
  const { engine, image } = container;
  if (engine === 'docker' || engine === 'podman') {
    const executable = tools.resolve(command);
    if (executable === undefined) return { image };
    const result = await tools.run(executable, [
      'image',
      'inspect',
      '--format',
      '{{index .RepoDigests 0}}',
      image,
    ]);
    const digest = result.ok ? linesOf(result.stdout)[0] : undefined;
    return digest === undefined || digest === '<no value>' ? { image } : { image, digest };
  }
  // Apptainer images may be a file (`train.sif`), a sandbox folder or a URI (`docker://…`); only a file has
  // bytes to hash.
  const file = path.resolve(tools.cwd, image);
  try {
    if (!(await fs.promises.stat(file)).isFile()) return { image };
    return { image, digest: `sha256:${await sha256OfFile(file)}` };
  } catch {
    return { image };
  }
}

/** What a tool call gave: its output, or a one-line reason it failed. */
type ToolResult = { ok: true; stdout: string; stderr: string } | { ok: false; reason: string };

/** Runs tools as the trainer would find and run them: with its `PATH`, environment and working directory. */
class ToolRunner {
  constructor(
    private readonly env: NodeJS.ProcessEnv,
    readonly cwd: string,
    private readonly timeoutMs: number,
  ) {}

  /**
   * The absolute path of `command`: resolved against `cwd` when it names a path (has a `/`), else the first
   * executable file of that name on the environment's `PATH`; `undefined` when there is none.
   */
  resolve(command: string): string | undefined {
    if (command.includes('/')) return path.resolve(this.cwd, command);
    for (const dir of (this.env.PATH ?? '').split(path.delimiter)) {
      if (dir === '') continue;
      const candidate = path.resolve(this.cwd, dir, command);
      try {
        fs.accessSync(candidate, fs.constants.X_OK);
        if (fs.statSync(candidate).isFile()) return candidate;
      } catch {
        // Not here: try the next directory.
      }
    }
    return undefined;
  }

  /**
   * Runs `executable` without a shell. At the time limit the child is killed and its pipes are closed: a
   * wrapper script (a pyenv shim, a conda activation) may have started a grandchild that holds stdout, and
   * waiting for that pipe to close would keep the call running past its limit.
   */
  run(executable: string, args: readonly string[]): Promise<ToolResult> {
    const shown = [path.basename(executable), ...args].join(' ');
    return new Promise((resolve) => {
      let timedOut = false;
      const child = execFile(
        executable,
        args,
        { cwd: this.cwd, env: this.env, encoding: 'utf8', maxBuffer: TOOL_MAX_OUTPUT_BYTES },
        (error, stdout, stderr) => {
          clearTimeout(timer);
          if (error === null) resolve({ ok: true, stdout, stderr });
          else if (timedOut)
            resolve({ ok: false, reason: `\`${shown}\` timed out after ${this.timeoutMs} ms` });
          else resolve({ ok: false, reason: failureReason(shown, error, stderr) });
        },
      );
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
        child.stdout?.destroy();
        child.stderr?.destroy();
      }, this.timeoutMs);
    });
  }
}

/** One line saying why a tool failed: not found, not executable, or its exit and first line of stderr. */
function failureReason(shown: string, error: ExecFileException, stderr: string): string {
  const firstStderrLine = linesOf(stderr)[0];
  let reason: string;
  if (error.code === 'ENOENT')
    reason = `\`${shown}\` failed: ${error.path ?? 'the executable'} does not exist`;
  else if (error.code === 'EACCES')
    reason = `\`${shown}\` failed: ${error.path ?? 'the executable'} is not executable`;
  else if (typeof error.code === 'number')
    reason = `\`${shown}\` exited with code ${error.code}${firstStderrLine ? `: ${firstStderrLine}` : ''}`;
  else reason = `\`${shown}\` failed: ${firstStderrLine ?? error.message.split('\n')[0]}`;
  return reason.length > MAX_REASON_LENGTH ? `${reason.slice(0, MAX_REASON_LENGTH - 1)}…` : reason;
}

/** The non-empty lines of a tool's output, trimmed. */
function linesOf(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
}

/** Code-unit order: the same on every host, whatever its locale. */
function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
