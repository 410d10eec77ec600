/**
 * `labline devserver`: runs the embedded Temporal-compatible server on its own until SIGINT or SIGTERM, or, with
 * `--repair`, repairs its data file and exits.
 */
import type { Command } from 'commander';
import { commandSummary } from '../client/cli-registry';
import { startDevServer, type LogLevel } from './server';
import { isSearchAttributeType, type SearchAttributeTypeName } from './search-attributes';
import { lablineSearchAttributes } from './labline-search-attributes';
import { repairDataFile } from './store';

const collect = (value: string, previous: string[]) => [...previous, value];

export function addDevServerCommand(program: Command): void {
  program
    .command('devserver')
    .description(commandSummary('devserver'))
    .option('--port <port>', 'TCP port to listen on (0 = any free port)', '7233')
    .option('--ip <ip>', 'interface to listen on', '127.0.0.1')
    .option(
      '--db <path>',
      'write-ahead log file or directory; without it the server keeps everything in memory',
    )
    .option('--namespace <name>', 'namespace to create besides "default" (repeatable)', collect, [])
    .option(
      '--search-attribute <name=type>',
      "custom search attribute to register, e.g. Team=Keyword (repeatable); Labline's own are always registered",
      collect,
      [],
    )
    .option('--retention <duration>', 'how long closed workflows are kept, e.g. 24h, 7d', '30d')
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .option(
      '--repair',
      'repair a damaged --db file and exit, without starting the server: keep the intact records before the first ' +
        'damaged one, move it and everything after it to <file>.corrupt-<time> beside it, and say what was kept and ' +
        'moved (stop any server using the file first)',
    )
    .action(
      async (options: {
        port: string;
        ip: string;
        db?: string;
        namespace: string[];
        searchAttribute: string[];
        logLevel: string;
        retention: string;
        repair?: boolean;
      }) => {
        if (options.repair) {
          if (!options.db) throw new Error('--repair needs --db <path>: the data file to repair.');
          // A one-off act on a file, not a mode of the server: it exits so that it is never left in a start script.
          console.log((await repairDataFile(options.db)).message);
          return;
        }
        const port = Number(options.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535) {
          throw new Error(`--port ${options.port} is not a TCP port: give a number from 0 to 65535.`);
        }
        if (!['debug', 'info', 'warn', 'error'].includes(options.logLevel)) {
          throw new Error(`--log-level ${options.logLevel} is not one of debug, info, warn, error.`);
        }
        const searchAttributes: Record<string, SearchAttributeTypeName> = { ...lablineSearchAttributes };
        for (const pair of options.searchAttribute) {
          const [name, type] = pair.split('=');
          if (!name || !type || !isSearchAttributeType(type)) {
            throw new Error(
              `--search-attribute ${pair}: write NAME=TYPE with TYPE one of Keyword, Text, Int, Double, Bool, Datetime, KeywordList.`,
            );
          }
          searchAttributes[name] = type;
        }
        const server = await startDevServer({
          port,
          ip: options.ip,
          db: options.db,
          namespaces: options.namespace,
          searchAttributes,
          logLevel: options.logLevel as LogLevel,
          retentionMs: parseRetention(options.retention),
        });
        console.log(
          `Temporal dev server (Labline) listening on ${server.address}${options.db ? `, data in ${options.db}` : ', in memory'}`,
        );
        await new Promise<void>((resolve) => {
          const stop = () => resolve();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
        await server.stop();
        console.log('Temporal dev server stopped');
      },
    );
}

/** `90m`, `24h`, `30d` in milliseconds. */
export function parseRetention(text: string): number {
  const match = /^(\d+)\s*(s|m|h|d)$/.exec(text.trim());
  if (!match) throw new Error(`--retention ${text}: write a number and a unit, like 90m, 24h or 7d.`);
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}
