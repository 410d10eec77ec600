/**
 * The `labline` command line. Each command lives beside the code it drives; this file only assembles them.
 */
import { Command } from 'commander';
import { addDevServerCommand } from '../devserver/cli';
import { addCampaignCommands } from './cli-campaign';
import { addExperimentCommands } from './cli-experiments';
import { addListCommand } from './cli-list';
import { addLogsCommand } from './cli-logs';
import { addServerCommand } from './cli-server';
import { addStartCommands } from './cli-start';
import { addValidateCommand } from './cli-validate';
import { addSlackCommand } from './slack/cli';

export async function main(argv: string[]): Promise<void> {
  const program = new Command('labline')
    .description('Run ML research experiments as durable Temporal workflows.')
    .version(packageVersion(), '-V, --version', 'print the Labline version')
    .option(
      '--config <file>',
      'Labline settings file (default: labline.config.yaml here, or $LABLINE_CONFIG)',
    )
    .showHelpAfterError();
  addStartCommands(program);
  addServerCommand(program);
  addExperimentCommands(program);
  addListCommand(program);
  addLogsCommand(program);
  addValidateCommand(program);
  addCampaignCommands(program);
  addSlackCommand(program);
  addDevServerCommand(program);
  await program.parseAsync(argv);
}

/** Labline's version, from its package.json. */
function packageVersion(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('../../package.json') as { version: string }).version;
}
