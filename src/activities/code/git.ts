/**
 * Running git: the client pins code with it and launches make worktrees with it. Always `execFile` (no shell:
 * refs and paths come from specs) and always with prompts off, so a credential helper can never hang a launch.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';

/** A git command that failed: the arguments, the exit and git's own words. */
export class GitError extends Error {
  override readonly name = 'GitError';
  constructor(
    readonly args: readonly string[],
    readonly stderr: string,
    readonly exitCode: number | null,
  ) {
    super(
      `git ${args.join(' ')} failed${exitCode === null ? '' : ` (exit ${exitCode})`}: ${stderr.trim() || 'no message'}`,
    );
  }
}

/** Options of {@link git}. */
export interface GitOptions {
  /** Directory git runs in. */
  cwd: string;
  /** Extra environment (a temporary index, for example), on top of the process's. */
  env?: Record<string, string>;
  /** Output limit in bytes. Default 64 MiB (a patch of binary files can be large). */
  maxBuffer?: number;
}

/** Runs `git <args>` in `options.cwd` and returns its standard output. @throws GitError */
export async function git(args: readonly string[], options: GitOptions): Promise<string> {
  return (await gitBytes(args, options)).toString('utf8');
}

/** {@link git}, with the output as bytes: patches must reach the file exactly as git wrote them. */
export function gitBytes(args: readonly string[], options: GitOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      [...args],
      {
        cwd: options.cwd,
        env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_OPTIONAL_LOCKS: '0', ...options.env },
        maxBuffer: options.maxBuffer ?? 64 * 1024 * 1024,
        encoding: 'buffer',
      },
      (error, stdout, stderr) => {
        if (error) {
          const code = typeof error.code === 'number' ? error.code : null;
          const words = stderr.length > 0 ? stderr.toString('utf8') : error.message;
          reject(new GitError(args, words, code));
        } else resolve(stdout);
      },
    );
  });
}

/** Like {@link git}, but `undefined` instead of an error when git exits non-zero (a ref that does not exist). */
export async function gitMaybe(args: readonly string[], options: GitOptions): Promise<string | undefined> {
  try {
    return await git(args, options);
  } catch (error) {
    if (error instanceof GitError && error.exitCode !== null) return undefined;
    throw error;
  }
}

/** The files `git status` lists (NUL-separated porcelain), relative to the repository; renames by new name. */
export function changedFiles(porcelainZ: string): string[] {
  const entries = porcelainZ.split('\0').filter((entry) => entry.length > 0);
  const files: string[] = [];
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    files.push(entry.slice(3));
    // A rename or copy is followed by its source path as a separate entry.
    if (entry[0] === 'R' || entry[0] === 'C') i++;
  }
  return files;
}

/**
 * Pathspecs that leave Labline's own folders out of `git status` and `git add` when they lie inside the
 * repository: the run folder (runs, worktrees, patches) and every `.labline` data folder (the embedded
 * server's database changes while git reads it). They are not the experiment's code.
 */
export function lablineExclusions(repository: string, runsRoot: string): string[] {
  const excluded = [':(exclude,glob)**/.labline/**'];
  const relative = path.relative(repository, path.resolve(runsRoot));
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) return excluded;
  return [...excluded, `:(exclude)${relative.split(path.sep).join('/')}`];
}
