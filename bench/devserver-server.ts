/**
 * The dev server alone in a process: only src/devserver is loaded, not the rest of the `labline` CLI,
 * so its RSS is the server's own footprint. SIGTERM or SIGINT stops it.
 * Usage: devserver-server.ts [<data file>]
 */
import { lablineSearchAttributes } from '../src/devserver/labline-search-attributes';
import { startDevServer } from '../src/devserver/server';

async function run(): Promise<void> {
  // Labline's search attributes, as `labline devserver` registers them: the listing benchmark filters on one.
  const server = await startDevServer({
    port: 0,
    db: process.argv[2],
    logLevel: 'warn',
    searchAttributes: lablineSearchAttributes,
  });
  console.log(`listening on ${server.address}`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.stop();
}

run().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
