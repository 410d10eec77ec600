/**
 * A Temporal server of the suite's kind (embedded or the real dev server) on a data file of its own, in a
 * separate process, for tests that kill or stop it and start it again on the same port and data.
 */
import {
  findTemporalCli,
  startTemporalCliServer,
  type TemporalCliServer,
} from '../../src/client/temporal-cli-server';
import { cliScript, startTsProcess, type RunningProcess } from './processes';
import { testSearchAttributes } from './search-attributes';
import { testServerKind } from './temporal-cli';

export interface OwnServer {
  address: string;
  port: number;
  /** Kills it at once (SIGKILL), as a crash or an outage would. */
  kill(): Promise<void>;
}

const running: { kill(): Promise<void> }[] = [];

/** Starts a server on `db` (a file path; the real server's SQLite file gets `.sqlite` appended), port 0: any. */
export async function startOwnServer(db: string, port = 0): Promise<OwnServer> {
  if (testServerKind() === 'temporal-cli') {
    const server: TemporalCliServer = await startTemporalCliServer({
      cli: findTemporalCli()!,
      port: port || undefined,
      uiPort: false,
      dbFile: `${db}.sqlite`,
      searchAttributes: testSearchAttributes,
    });
    running.push(server);
    return { address: server.address, port: Number(server.address.split(':')[1]), kill: () => server.kill() };
  }
  const server: RunningProcess = startTsProcess(cliScript, [
    'devserver',
    '--port',
    String(port),
    '--db',
    db,
    '--log-level',
    'warn',
  ]);
  running.push({ kill: () => server.kill('SIGKILL') });
  const match = await server.waitFor(/listening on 127\.0\.0\.1:(\d+)/);
  return {
    address: `127.0.0.1:${match[1]}`,
    port: Number(match[1]),
    kill: () => server.kill('SIGKILL'),
  };
}

/** Kills every server this module started; for `afterAll`. */
export async function killOwnServers(): Promise<void> {
  await Promise.all(running.splice(0).map((server) => server.kill()));
}
