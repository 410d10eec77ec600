/**
 * Shared by the local launcher and tracker tests: temporary run directories, the example trainer's command,
 * bounded waits, and cleanup that kills every process a test started, however it ended.
 * (Lives beside the tests rather than in tests/support because it is about local processes only.)
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isProcessAlive, type ProcessIdentity } from '../../src/activities/training/local-attempt';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const TRAINER = path.join(REPO_ROOT, 'examples', 'trainer', 'train.js');

const tempDirs: string[] = [];
const children: ChildProcess[] = [];

/** A fresh directory under the OS temp dir, removed (with every process started in it) by {@link cleanUp}. */
export function tempDir(prefix = 'labline-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** The command and args that run the example trainer with `args`. */
export function trainer(...args: string[]): { command: string; args: string[] } {
  return { command: process.execPath, args: [TRAINER, ...args] };
}

/** Polls `condition` every `intervalMs` until it returns a value other than `undefined`/`false`, or fails. */
export async function waitFor<T>(
  condition: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  { timeoutMs = 20_000, intervalMs = 20 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Lines of a JSON-lines file, parsed; `[]` when it does not exist. */
export function jsonLines(file: string): Record<string, unknown>[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** A JSON file, untyped: tests read back what the code under test wrote and check its shape themselves. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above
export function readJson(file: string): any {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/** Whether a process (or, with a negative id, a process group) exists. */
export function exists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether `pid` is running, not a zombie waiting for its parent to reap it. */
export function running(pid: number): boolean {
  if (!exists(pid)) return false;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

/** `spawn`, with the child killed by {@link cleanUp} if it is still running then. */
export function spawnTracked(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn(command, args, options);
  children.push(child);
  return child;
}

/** Starts a Node process running a TypeScript file through tsx; it is killed by {@link cleanUp}. */
export function spawnTs(file: string, args: string[], nodeArgs: string[] = []): ChildProcess {
  const child = spawn(process.execPath, [...nodeArgs, '--require', 'tsx/cjs', file, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return child;
}

/** Reads the JSON lines a child prints on stdout, one at a time (its stderr goes into errors). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- untyped like readJson: a child's output
export function jsonOutput(child: ChildProcess): { next: (timeoutMs?: number) => Promise<any> } {
  const lines: unknown[] = [];
  const waiting: ((value: unknown) => void)[] = [];
  let buffered = '';
  let stderr = '';
  let ended = false;
  const failures: ((error: Error) => void)[] = [];
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const line of parts) {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        continue; // not one of the fixture's result lines
      }
      const waiter = waiting.shift();
      failures.shift();
      if (waiter) waiter(value);
      else lines.push(value);
    }
  });
  child.once('exit', (code) => {
    ended = true;
    for (const fail of failures.splice(0)) fail(new Error(`exited with ${code}; stderr: ${stderr}`));
    waiting.splice(0);
  });
  return {
    next: (timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        if (lines.length > 0) return resolve(lines.shift());
        if (ended) return reject(new Error(`exited before printing JSON; stderr: ${stderr}`));
        const timer = setTimeout(
          () => reject(new Error(`no JSON line within ${timeoutMs} ms; stderr: ${stderr}`)),
          timeoutMs,
        );
        waiting.push((value) => {
          clearTimeout(timer);
          resolve(value);
        });
        failures.push((error) => {
          clearTimeout(timer);
          reject(error);
        });
      }),
  };
}

/** Waits for a child to exit; resolves with its exit code (or null and the signal). */
export function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/**
 * Every process recorded under `root`: supervisors and trainers (their records carry start times, so a pid
 * that was reused by an unrelated process since is left alone) and `*.identity.json` files a test wrote.
 */
function recordedProcesses(root: string): { identities: ProcessIdentity[]; groups: number[] } {
  const identities: ProcessIdentity[] = [];
  const groups: number[] = [];
  const visit = (dir: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) visit(file);
      else if (
        ['supervisor.json', 'trainer.json'].includes(entry.name) ||
        entry.name.endsWith('.identity.json')
      ) {
        try {
          const record = readJson(file) as ProcessIdentity & { pgid?: number };
          identities.push(record);
          if (record.pgid) groups.push(record.pgid);
        } catch {
          // half-written: its process is found through the other record
        }
      }
    }
  };
  visit(root);
  return { identities, groups };
}

/** Kills every process the test started (children, supervisors, trainer groups) and removes its temp dirs. */
export async function cleanUp(): Promise<void> {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  for (const dir of tempDirs.splice(0)) {
    const { identities, groups } = recordedProcesses(dir);
    const ours = identities.filter((identity) => isProcessAlive(identity));
    // A group whose leader is ours, or whose leader is gone while the group is not (our strays: the kernel
    // does not hand out a pid that is still a live group's id).
    for (const group of groups) {
      if (ours.some((identity) => identity.pid === group) || (!exists(group) && exists(-group))) kill(-group);
    }
    for (const identity of ours) kill(identity.pid);
    await waitFor(() => ours.every((identity) => !running(identity.pid)), 'the test processes to end', {
      timeoutMs: 5_000,
    }).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
