/**
 * `labline start` as a person at a terminal sees it: run in a pseudo-terminal (util-linux `script`), with
 * keys typed into it. Progress is a live bar there; the question at a gate asks again on an empty answer.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { cliScript } from '../support/processes';
import { testServerKind } from '../support/temporal-cli';

const repo = path.resolve(__dirname, '../..');
const serverKind = testServerKind();
const hasScript = existsSync('/usr/bin/script');
const ESC = String.fromCharCode(27);

/** `labline <args>` in a 140-column pseudo-terminal; its output (as the terminal got it) goes to a file. */
function inTerminal(args: string[]): { child: ChildProcess; output: () => string; cwd: string } {
  const cwd = mkdtempSync(path.join(tmpdir(), 'labline-tty-'));
  symlinkSync(path.join(repo, 'examples'), path.join(cwd, 'examples'));
  const file = path.join(cwd, 'terminal.out');
  const command = `stty cols 140; exec ${process.execPath} ${cliScript} ${args.join(' ')}`;
  const child = spawn('script', ['-qfec', command, file], {
    cwd,
    env: { ...process.env, TEMPORAL_ADDRESS: '', TEMPORAL_PROFILE: '', LABLINE_USER: 'ci' },
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  return { child, cwd, output: () => (existsSync(file) ? readFileSync(file, 'utf8') : '') };
}

async function until(what: string, check: () => boolean, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

const count = (text: string, part: string) => text.split(part).length - 1;

(hasScript ? describe : describe.skip)(`labline start in a terminal (${serverKind})`, () => {
  test('asks approve? [y/N] again on an empty answer, then shows training as a live bar with the log', async () => {
    const run = inTerminal(['start', 'examples/quickstart.yaml', '--server', serverKind]);
    try {
      await until('the launch question', () => count(run.output(), 'launch: approve? [y/N]') === 1);
      run.child.stdin!.write('\r');
      await until('the question again', () => count(run.output(), 'launch: approve? [y/N]') === 2);
      run.child.stdin!.write('y\r');
      await until('the publish question', () => run.output().includes('publish: approve? [y/N]'));
      run.child.stdin!.write('yes\r');
      expect(await exited(run.child)).toBe(0);
    } finally {
      run.child.kill();
    }
    const output = run.output();
    expect(output).toContain('answer y (approve) or n (reject)');
    expect(output).toMatch(/launch: approved by ci/);
    // The bar, redrawn in place (cursor up, erase), with the trainer's own lines under it.
    expect(output).toMatch(
      / {2}launch 1 {2}\[[#-]{24}\] \d+\/300 steps {2}train\/loss \d\.\d{4}.* elapsed, ETA \d+s/,
    );
    expect(output).toMatch(new RegExp(`${ESC}\\[\\d+A${ESC}\\[0J {2}launch 1 `));
    expect(output).toMatch(/ {4}│ step \d+: train\/loss/);
    expect(output).toContain('Experiment completed. Report:');
  }, 180_000);

  test('--quiet shows stages and the result, and no progress', async () => {
    const run = inTerminal(['start', 'examples/quickstart.yaml', '--yes', '--quiet', '--server', serverKind]);
    try {
      expect(await exited(run.child)).toBe(0);
    } finally {
      run.child.kill();
    }
    const output = run.output();
    expect(output).toContain('exp-quickstart: training');
    expect(output).toContain('launch 1: success at step 300');
    expect(output).not.toMatch(/steps {2}train\/loss|step \d+ loss/);
    expect(output).not.toContain(`${ESC}[`);
  }, 180_000);
});
