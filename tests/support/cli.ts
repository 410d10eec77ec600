/** Runs the `labline` command as a user would, and what it did. */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { cliScript } from './processes';

const run = promisify(execFile);
const repo = path.resolve(__dirname, '../..');

/** No configured Temporal: commands use a local server, as on a fresh machine. */
export const LOCAL_ENV = { TEMPORAL_ADDRESS: '', TEMPORAL_PROFILE: '', LABLINE_USER: 'ci' };

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `labline <args>` in `cwd` (default: the repository), its environment this one's plus `env`. */
export async function labline(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cliScript, ...args], {
      cwd: options.cwd ?? repo,
      env: { ...process.env, ...options.env },
      timeout: options.timeoutMs ?? 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
