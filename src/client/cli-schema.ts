/** `labline schema`: the JSON Schema of experiment specs, for editors. Needs no server, so it loads none. */
import type { Command } from 'commander';
import { experimentSpecJsonSchema } from '../experiment';
import { commandSummary } from './cli-registry';

export function addSchemaCommand(program: Command): void {
  program
    .command('schema')
    .description(commandSummary('schema'))
    .action(() => {
      console.log(JSON.stringify(experimentSpecJsonSchema(), null, 2));
    });
}
