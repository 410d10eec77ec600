/**
 * The `labline` command line. Each command lives beside the code it drives; this file only assembles them.
 */
import { Command } from 'commander';
import { addDevServerCommand } from '../devserver/cli';

export async function main(argv: string[]): Promise<void> {
  const program = new Command('labline')
    .description('Run ML research experiments as durable Temporal workflows.')
    .showHelpAfterError();
  addDevServerCommand(program);
  await program.parseAsync(argv);
}
