import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  captureEnvironment,
  containerImageOf,
  type CaptureEnvironmentOptions,
} from '../../src/activities/reproducibility/environment';
import { RecordedEnvironment } from '../../src/experiment/reproducibility';

const tempDirs: string[] = [];

afterEach(() => {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix = 'labline-env-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** Writes an executable `/bin/sh` script (a stand-in for a tool) and returns its path. */
function script(file: string, body: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

/** Writes `content` to `root/relative`, creating folders, and returns the content's SHA-256. */
function writeFile(root: string, relative: string, content: string): string {
  const file = path.join(root, relative);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return createHash('sha256').update(content).digest('hex');
}

/** Capture options for a plain Node trainer in a fresh directory, with a `PATH` that holds only `bin`. */
function optionsWith(
  overrides: Partial<CaptureEnvironmentOptions> & { bin?: string },
): CaptureEnvironmentOptions {
  const { bin = tempDir('labline-bin-'), ...rest } = overrides;
  const dir = tempDir();
  return {
    command: process.execPath,
    args: ['train.js'],
    cwd: dir,
    codeRoot: dir,
    env: { PATH: bin },
    ...rest,
  };
}

describe('captureEnvironment', () => {
  test('records this host: OS, first CPU model and core count, Node; no Python or container for a Node trainer', async () => {
    const environment = await captureEnvironment(optionsWith({}));

    expect(RecordedEnvironment.parse(environment)).toEqual(environment);
    expect(environment.os).toEqual({ platform: os.platform(), release: os.release(), arch: os.arch() });
    expect(environment.cpu).toEqual({ model: os.cpus()[0]?.model.trim(), cores: os.cpus().length });
    expect(environment.node).toBe(process.version);
    expect(environment).not.toHaveProperty('python');
    expect(environment).not.toHaveProperty('container');
    expect(environment).not.toHaveProperty('cuda_visible_devices');
  });

  test('records the real python3: its path on PATH, the version `python3 --version` prints, and its pip freeze sorted', async () => {
    const onPath = execFileSync('sh', ['-c', 'command -v python3'], { encoding: 'utf8' }).trim();
    const printed = execFileSync('python3', ['--version'], { encoding: 'utf8' });
    const frozen = execFileSync('python3', ['-m', 'pip', 'freeze'], { encoding: 'utf8' })
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '');

    const { python } = await captureEnvironment(optionsWith({ command: 'python3', env: process.env }));

    expect(python?.executable).toBe(path.resolve(onPath));
    expect(python?.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(printed).toContain(`Python ${python?.version}`);
    expect(python?.packages_error).toBeUndefined();
    expect(Array.isArray(python?.packages)).toBe(true);
    expect(python?.packages).toEqual([...frozen].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  });

  test('a Python path that does not exist gives packages_error naming it, not a throw', async () => {
    const bogus = path.join(tempDir(), 'venv', 'bin', 'python');

    const { python } = await captureEnvironment(optionsWith({ command: bogus, args: ['train.py'] }));

    expect(python).toEqual({
      executable: bogus,
      packages_error: `\`python -m pip freeze\` failed: ${bogus} does not exist`,
    });
  });

  test("a venv's python by absolute path: its own version and freeze, packages sorted by code unit", async () => {
    const venvPython = script(
      path.join(tempDir(), 'venv', 'bin', 'python'),
      `case "$*" in
  --version) echo "Python 3.10.4" ;;
  "-m pip freeze") printf 'zeta==1.0\\nAlpha==2.0\\nbeta @ file:///src/beta\\n' ;;
  *) echo "unexpected arguments: $*" >&2; exit 2 ;;
esac`,
    );

    const { python } = await captureEnvironment(optionsWith({ command: venvPython, args: ['train.py'] }));

    expect(python).toEqual({
      executable: venvPython,
      version: '3.10.4',
      packages: ['Alpha==2.0', 'beta @ file:///src/beta', 'zeta==1.0'],
    });
  });

  test('a python3.11 command is found on the trainer PATH, not the worker one', async () => {
    const bin = tempDir('labline-bin-');
    const interpreter = script(
      path.join(bin, 'python3.11'),
      `case "$*" in
  --version) echo "Python 3.11.2" ;;
  "-m pip freeze") echo "torch==2.3.0" ;;
esac`,
    );

    const { python } = await captureEnvironment(
      optionsWith({ bin, command: 'python3.11', args: ['-m', 'train'] }),
    );

    expect(python).toEqual({ executable: interpreter, version: '3.11.2', packages: ['torch==2.3.0'] });
  });

  test('a Python without pip gives packages_error with its message, and still its version', async () => {
    const interpreter = script(
      path.join(tempDir(), 'bin', 'python3'),
      `case "$*" in
  --version) echo "Python 3.9.1" ;;
  *) echo "$0: No module named pip" >&2; exit 1 ;;
esac`,
    );

    const { python } = await captureEnvironment(optionsWith({ command: interpreter }));

    expect(python).toEqual({
      executable: interpreter,
      version: '3.9.1',
      packages_error: `\`python3 -m pip freeze\` exited with code 1: ${interpreter}: No module named pip`,
    });
  });

  test('a pip freeze that outlives timeoutMs is killed and gives packages_error saying so', async () => {
    // `read` blocks on the open stdin pipe until the process is killed: no sleep, no grandchild.
    const interpreter = script(
      path.join(tempDir(), 'bin', 'python'),
      `case "$*" in
  --version) echo "Python 3.12.1" ;;
  *) read never ;;
esac`,
    );

    const { python } = await captureEnvironment(optionsWith({ command: interpreter, timeoutMs: 500 }));

    expect(python?.packages_error).toBe('`python -m pip freeze` timed out after 500 ms');
    expect(python?.packages).toBeUndefined();
  });

  test('`uv run` records the interpreter `uv python find` names and `uv pip freeze` run in cwd', async () => {
    const bin = tempDir('labline-bin-');
    const interpreter = script(path.join(tempDir(), '.venv', 'bin', 'python'), 'echo "Python 3.12.3"');
    script(
      path.join(bin, 'uv'),
      `case "$*" in
  "python find") echo "${interpreter}" ;;
  "pip freeze") echo "numpy==1.26.4"; echo "run-in==\${PWD##*/}" ;;
  *) exit 2 ;;
esac`,
    );
    const cwd = tempDir('labline-uv-project-');

    const { python } = await captureEnvironment(
      optionsWith({ bin, command: 'uv', args: ['run', 'train.py'], cwd }),
    );
    const notRun = await captureEnvironment(optionsWith({ bin, command: 'uv', args: ['sync'], cwd }));

    expect(python).toEqual({
      executable: interpreter,
      version: '3.12.3',
      packages: ['numpy==1.26.4', `run-in==${path.basename(cwd)}`],
    });
    expect(notRun).not.toHaveProperty('python');
  });

  test('gpus is empty when nvidia-smi is not on PATH, or when it fails', async () => {
    const bin = tempDir('labline-bin-');
    expect((await captureEnvironment(optionsWith({ bin }))).gpus).toEqual([]);

    script(path.join(bin, 'nvidia-smi'), `echo "NVIDIA-SMI has failed: no driver" >&2; exit 9`);
    expect((await captureEnvironment(optionsWith({ bin }))).gpus).toEqual([]);
  });

  test('gpus lists each model nvidia-smi prints for the name query, and CUDA_VISIBLE_DEVICES is kept', async () => {
    const bin = tempDir('labline-bin-');
    script(
      path.join(bin, 'nvidia-smi'),
      `[ "$*" = "--query-gpu=name --format=csv,noheader" ] || exit 2
printf 'NVIDIA A100-SXM4-80GB\\nNVIDIA H100 80GB HBM3\\n'`,
    );

    const environment = await captureEnvironment(
      optionsWith({ bin, env: { PATH: bin, CUDA_VISIBLE_DEVICES: '1,3' } }),
    );

    expect(environment.gpus).toEqual(['NVIDIA A100-SXM4-80GB', 'NVIDIA H100 80GB HBM3']);
    expect(environment.cuda_visible_devices).toBe('1,3');
  });

  test('lockfiles: found up to three folders deep with their SHA-256, sorted; dependency, hidden and deeper ones skipped', async () => {
    const root = tempDir('labline-code-');
    const expected = [
      { path: 'a/b/c/yarn.lock', sha256: writeFile(root, 'a/b/c/yarn.lock', 'yarn v1\n') },
      { path: 'environment.yml', sha256: writeFile(root, 'environment.yml', 'name: train\n') },
      { path: 'requirements-dev.txt', sha256: writeFile(root, 'requirements-dev.txt', 'pytest==8.2.0\n') },
      { path: 'requirements.txt', sha256: writeFile(root, 'requirements.txt', 'torch==2.3.0\n') },
      {
        path: 'web/package-lock.json',
        sha256: writeFile(root, 'web/package-lock.json', '{"lockfileVersion":3}'),
      },
      { path: 'worker/uv.lock', sha256: writeFile(root, 'worker/uv.lock', 'version = 1\n') },
    ];
    writeFile(root, 'node_modules/left-pad/package-lock.json', '{}');
    writeFile(root, '.venv/lib/requirements.txt', 'skipped\n');
    writeFile(root, 'venv/poetry.lock', 'skipped\n');
    writeFile(root, '__pycache__/uv.lock', 'skipped\n');
    writeFile(root, '.tox/py311/Pipfile.lock', 'skipped\n');
    writeFile(root, 'a/b/c/d/poetry.lock', 'too deep\n');
    writeFile(root, 'README.md', 'not a lockfile\n');
    writeFile(root, 'requirements.in', 'not a lockfile either\n');

    const { lockfiles } = await captureEnvironment(optionsWith({ codeRoot: root }));

    expect(lockfiles).toEqual(expected);
  });

  test('docker run: the image after the options, with the repo digest `docker image inspect` reports', async () => {
    const bin = tempDir('labline-bin-');
    script(
      path.join(bin, 'docker'),
      `[ "$*" = "image inspect --format {{index .RepoDigests 0}} pytorch/pytorch:2.3.0" ] || exit 1
echo "pytorch/pytorch@sha256:0123abcd"`,
    );

    const { container } = await captureEnvironment(
      optionsWith({
        bin,
        command: 'docker',
        args: [
          'run',
          '--rm',
          '--gpus',
          'all',
          '-v',
          '/data:/data',
          'pytorch/pytorch:2.3.0',
          'python',
          'train.py',
        ],
      }),
    );

    expect(container).toEqual({ image: 'pytorch/pytorch:2.3.0', digest: 'pytorch/pytorch@sha256:0123abcd' });
  });

  test('docker run: no digest when the image is not local (inspect fails) or docker is not on PATH', async () => {
    const bin = tempDir('labline-bin-');
    const args = ['run', 'trainer:dev', 'python', 'train.py'];
    const missingDocker = await captureEnvironment(optionsWith({ bin, command: 'docker', args }));
    script(path.join(bin, 'podman'), 'echo "Error: trainer:dev: image not known" >&2; exit 125');
    const notPulled = await captureEnvironment(optionsWith({ bin, command: 'podman', args }));

    expect(missingDocker.container).toEqual({ image: 'trainer:dev' });
    expect(notPulled.container).toEqual({ image: 'trainer:dev' });
  });

  test("apptainer exec: an image file's digest is the SHA-256 of its bytes; a URI has none", async () => {
    const cwd = tempDir();
    const imageSha256 = writeFile(cwd, 'images/train.sif', 'SIF image bytes');

    const fromFile = await captureEnvironment(
      optionsWith({
        cwd,
        command: 'apptainer',
        args: ['exec', '--nv', '-B', '/data', 'images/train.sif', 'python'],
      }),
    );
    const fromUri = await captureEnvironment(
      optionsWith({ cwd, command: 'singularity', args: ['run', 'docker://ubuntu:22.04'] }),
    );

    expect(fromFile.container).toEqual({ image: 'images/train.sif', digest: `sha256:${imageSha256}` });
    expect(fromUri.container).toEqual({ image: 'docker://ubuntu:22.04' });
  });
});

describe('containerImageOf', () => {
  test.each([
    ['docker', ['run', 'ubuntu'], { engine: 'docker', image: 'ubuntu' }],
    [
      'docker',
      [
        'run',
        '--rm',
        '-it',
        '-v',
        '/a:/b',
        '-e',
        'A=1',
        '--name',
        'x',
        '--gpus',
        'all',
        'img:1',
        'python',
        't.py',
      ],
      { engine: 'docker', image: 'img:1' },
    ],
    [
      'docker',
      ['run', '--gpus=all', '--env=A=1', '--shm-size=8g', 'img:2', '-v'],
      { engine: 'docker', image: 'img:2' },
    ],
    ['docker', ['run', '-itv', '/a:/b', 'img:3'], { engine: 'docker', image: 'img:3' }],
    ['docker', ['run', '-eA=1', 'img:4'], { engine: 'docker', image: 'img:4' }],
    [
      '/usr/bin/docker',
      [
        'run',
        '--network',
        'host',
        '-w',
        '/work',
        '-u',
        '1000',
        '--entrypoint',
        'python',
        'img:5',
        'train.py',
      ],
      { engine: 'docker', image: 'img:5' },
    ],
    [
      'podman',
      ['run', '--mount', 'type=bind,src=/d,dst=/d', '--platform', 'linux/amd64', '--user', 'me', 'img:6'],
      { engine: 'podman', image: 'img:6' },
    ],
    [
      'podman',
      ['container', 'run', '--volume', '/a:/b', '--workdir', '/w', 'img:7'],
      { engine: 'podman', image: 'img:7' },
    ],
    ['docker', ['run', '--', 'img:8', 'python'], { engine: 'docker', image: 'img:8' }],
    [
      'apptainer',
      ['exec', '--nv', '-B', '/data:/data', '--env', 'A=1', 'train.sif', 'python', 'train.py'],
      { engine: 'apptainer', image: 'train.sif' },
    ],
    [
      'singularity',
      ['run', '-e', '--bind=/d', '/images/t.sif'],
      { engine: 'singularity', image: '/images/t.sif' },
    ],
  ] as const)('%s %j runs %j', (command, args, expected) => {
    expect(containerImageOf(command, args)).toEqual(expected);
  });

  test.each([
    ['docker', ['build', '-t', 'img', '.']],
    ['docker', ['run', '--rm']],
    ['docker', []],
    ['apptainer', ['build', 'train.sif', 'train.def']],
    ['python3', ['run', 'img']],
  ] as const)('%s %j runs no container', (command, args) => {
    expect(containerImageOf(command, args)).toBeUndefined();
  });
});
