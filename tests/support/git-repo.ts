/** Real git repositories in temporary folders, for the tests of pinned code, worktrees and records. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A fixed identity: commits need one, and the machine's git may have none. */
const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Labline test',
  GIT_AUTHOR_EMAIL: 'test@labline.invalid',
  GIT_COMMITTER_NAME: 'Labline test',
  GIT_COMMITTER_EMAIL: 'test@labline.invalid',
};

export interface TestRepo {
  dir: string;
  /** Runs git in the repository and returns its output, trimmed. */
  git(...args: string[]): string;
  /** Writes files (path relative to the repository → content). */
  write(files: Record<string, string>): void;
  /** Writes the files and commits them with `message`; returns the commit id. */
  commit(message: string, files?: Record<string, string>): string;
  remove(): void;
}

/** A new repository on branch `main` with one commit of `files`. */
export function makeRepo(files: Record<string, string>, prefix = 'labline-repo-'): TestRepo {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const git = (...args: string[]): string =>
    execFileSync('git', args, { cwd: dir, env: { ...process.env, ...GIT_ENV }, encoding: 'utf8' }).trim();
  const write = (contents: Record<string, string>): void => {
    for (const [file, content] of Object.entries(contents)) {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      writeFileSync(path.join(dir, file), content);
    }
  };
  const commit = (message: string, contents: Record<string, string> = {}): string => {
    write(contents);
    git('add', '--all');
    git('commit', '--quiet', '--allow-empty', '--message', message);
    return git('rev-parse', 'HEAD');
  };
  git('init', '--quiet', '--initial-branch=main');
  commit('first', files);
  return { dir, git, write, commit, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A Node trainer for tests: writes `config.json` (with the seed it got), one metric (`eval/accuracy`: a tenth of
 * the length of `VARIANT`) to `metrics.jsonl` and `summary.json`, and `variant.txt`
 * with the text of `VARIANT` in its own source, so that a test can tell which branch ran.
 */
export function trainerSource(variant: string): string {
  return [
    "const fs = require('node:fs');",
    "const path = require('node:path');",
    `const VARIANT = ${JSON.stringify(variant)};`,
    'const dir = process.env.LABLINE_RUN_DIR;',
    "const seed = Number((process.argv.find((a) => a.startsWith('--seed=')) || '--seed=0').slice(7));",
    "fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ seed }));",
    "fs.writeFileSync(path.join(dir, 'variant.txt'), VARIANT + ' ' + process.cwd());",
    "const row = { _step: 1, 'eval/accuracy': VARIANT.length / 10 };",
    "fs.appendFileSync(path.join(dir, 'metrics.jsonl'), JSON.stringify(row) + '\\n');",
    "fs.writeFileSync(path.join(dir, 'summary.json'), JSON.stringify(row));",
  ].join('\n');
}
