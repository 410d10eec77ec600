/**
 * `labline trainer-path`: where the Python helper's package is in this installation of Labline, so that a
 * user who installed Labline from npm can `pip install "$(npx labline trainer-path)"`.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { commandSummary } from './cli-registry';
import { projectRoot } from './project-root';

/** The folder of the `labline-trainer` Python package (its pyproject.toml). */
export function trainerPackagePath(): string {
  const folder = path.join(projectRoot(), 'python');
  if (!existsSync(path.join(folder, 'pyproject.toml'))) {
    throw new Error(
      `This installation of Labline has no Python helper at ${folder}; reinstall Labline, or install the helper ` +
        'from a checkout of its repository (pip install ./python).',
    );
  }
  return folder;
}

export function addTrainerPathCommand(program: Command): void {
  program
    .command('trainer-path')
    .description(commandSummary('trainer-path'))
    .action(() => {
      console.log(trainerPackagePath());
    });
}
