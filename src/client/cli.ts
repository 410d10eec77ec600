/**
 * The `labline` command line. Each command lives beside the code it drives (see cli-registry.ts); this file
 * only assembles the one asked for, so that nothing else is loaded.
 */
import { Command } from 'commander';
import * as path from 'node:path';
import { readFileSync } from 'node:fs';
import { COMMANDS } from './cli-registry';
import { projectRoot } from './project-root';

export async function main(argv: string[]): Promise<void> {
  const program = new Command('labline')
    .description('Run ML research experiments as durable Temporal workflows.')
    .version(packageVersion(), '-V, --version', 'print the Labline version')
    .option(
      '--config <file>',
      'Labline settings file (default: labline.config.yaml here, or $LABLINE_CONFIG)',
    )
    .showHelpAfterError();
  const asked = COMMANDS[requestedCommand(argv.slice(2)) ?? ''];
  if (asked) {
    asked.load()(program);
  } else {
    // No command, `--help`, or one that does not exist: a listing is all that is needed, and commander
    // answers an unknown name with the closest one.
    for (const entry of Object.values(COMMANDS)) program.command(entry.usage).description(entry.summary);
  }
  await program.parseAsync(argv);
}

/** The command named in `args` (after `labline`): the first word that is not an option or its value. */
export function requestedCommand(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--config') {
      i += 1; // its value
      continue;
    }
    if (arg.startsWith('-')) continue;
    // `labline help status` is `labline status --help`.
    return arg === 'help' ? args[i + 1] : arg;
  }
  return undefined;
}

/** Labline's version, from its package.json: the nearest one above this file (it runs from src or dist). */
function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(projectRoot(), 'package.json'), 'utf8')) as { version: string })
    .version;
}
