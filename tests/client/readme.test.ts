/**
 * The README is the front door: every command it shows must run as written. Its `npx labline` lines run here,
 * in order, in a fresh folder (as on a fresh machine), against a `labline server` as the README says.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { labline as runLabline, LOCAL_ENV } from '../support/cli';
import { testServerKind } from '../support/temporal-cli';

const run = promisify(execFile);
const repo = path.resolve(__dirname, '../..');
const readme = readFileSync(path.join(repo, 'README.md'), 'utf8');

/** The lines of the README's ```sh blocks, without their comments. */
function shellLines(): string[] {
  const blocks = [...readme.matchAll(/^```sh\n([\s\S]*?)^```/gm)].map((match) => match[1]!);
  return blocks
    .flatMap((block) => block.split('\n'))
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter(Boolean);
}

/**
 * What each README command is expected to do when run in order on a fresh folder. A command the README gains
 * must be added here: the test fails on one it does not know.
 */
const expected: Record<string, { code: number; output: RegExp }> = {
  'start examples/quickstart.yaml --yes': { code: 0, output: /Report: .*runs\/exp-quickstart\/report\.md/ },
  list: { code: 0, output: /^exp-quickstart\s+experiment\s+completed/m },
  'status exp-quickstart': { code: 0, output: /stage {6}completed/ },
  'logs exp-quickstart -f': { code: 0, output: /^step 300: train\/loss/m },
  // It waits for nothing once it has completed: the answer says so, and records nothing.
  'approve exp-quickstart': {
    code: 2,
    output: /exp-quickstart waits for no decision now; nothing was recorded/,
  },
  'start examples/quickstart.yaml --rerun --yes': {
    code: 0,
    output: /Submitted exp-quickstart as exp-quickstart\.rerun-/,
  },
  'campaign examples/campaign.yaml --yes': { code: 0, output: /stage {6}completed; children 9 done/ },
  'node examples/branches/make-repo.js moons': { code: 0, output: /made .*moons with branches main/ },
  'campaign moons/campaign.yaml --yes': { code: 0, output: /stage {6}completed; children 6 done/ },
  'diff exp-moons-branches-main-s0 exp-moons-branches-wide-s0': {
    code: 0,
    output: /^ {2}branch +main {2}→ {2}feature\/wide$/m,
  },
  'node examples/search/make-repo.js moons-search': {
    code: 0,
    output: /made .*moons-search: a search may edit trainer\/hyperparameters\.js/,
  },
  'campaign moons-search/campaign.yaml --yes': {
    code: 0,
    output: /stage {6}completed\n {2}incumbent {2}trial \d+ at .*\n {2}trials {5}8 of 8: /,
  },
  'reproduce exp-moons-branches-wide-s0 --compare --yes': {
    code: 0,
    output: /Reproduced: every compared metric is within its tolerance/,
  },
};

/** `labline <args>` in `cwd`, its output as one text. */
async function labline(args: string[], cwd: string): Promise<{ code: number; output: string }> {
  const result = await runLabline(args, { cwd, env: LOCAL_ENV, timeoutMs: 240_000 });
  return { code: result.code, output: result.stdout + result.stderr };
}

/** A README line: `npx labline …` through the CLI, `node examples/…` (the example scripts) with Node. */
async function readmeCommand(command: string, cwd: string): Promise<{ code: number; output: string }> {
  if (!command.startsWith('node ')) return labline(command.split(/\s+/), cwd);
  const [, ...args] = command.split(/\s+/);
  try {
    const { stdout, stderr } = await run(process.execPath, args, { cwd, timeout: 60_000 });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, output: (failed.stdout ?? '') + (failed.stderr ?? '') };
  }
}

test('every npm script the README runs exists', () => {
  const scripts = Object.keys(
    (JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as { scripts: object }).scripts,
  );
  const named = shellLines()
    .filter((line) => line.startsWith('npm '))
    .map((line) => /^npm (?:run )?(\S+)/.exec(line)![1]!)
    .filter((name) => name !== 'ci');
  expect(named.length).toBeGreaterThan(0);
  for (const name of named) expect(scripts).toContain(name);
});

test('every `npx labline <command>` the README mentions is a command', async () => {
  const help = (await labline(['--help'], repo)).output;
  const commands = new Set([...help.matchAll(/^ {2}([a-z-]+)\b/gm)].map((match) => match[1]!));
  const mentioned = new Set([...readme.matchAll(/npx labline ([a-z-]+)/g)].map((match) => match[1]!));
  for (const command of mentioned)
    expect({ command, known: commands.has(command) }).toEqual({ command, known: true });
});

test(`the README's commands run as written, in order, on a fresh folder (${testServerKind()})`, async () => {
  const cwd = mkdtempSync(path.join(tmpdir(), 'labline-readme-'));
  symlinkSync(path.join(repo, 'examples'), path.join(cwd, 'examples'));
  const up = await labline(['server', '--detach', '--server', testServerKind()], cwd);
  expect(up).toMatchObject({ code: 0 });
  try {
    const commands = shellLines()
      .filter((line) => line.startsWith('npx labline ') || line.startsWith('node examples/'))
      .map((line) => line.replace(/^npx labline /, ''));
    expect(commands.length).toBeGreaterThan(3);
    for (const command of commands) {
      const want = expected[command];
      expect({ command, known: want !== undefined }).toEqual({ command, known: true });
      const result = await readmeCommand(command, cwd);
      expect({ command, code: result.code, output: result.output }).toEqual({
        command,
        code: want!.code,
        output: expect.stringMatching(want!.output),
      });
    }
  } finally {
    await labline(['server', 'stop'], cwd);
  }
}, 600_000);
