/**
 * A benchmark worker in its own process, so its RSS and CPU time are its own (modelled on
 * tests/support/worker-process.ts). SIGTERM shuts it down cleanly: the SDK's Runtime listens for it.
 * Usage: devserver-worker.ts <address> <namespace> <taskQueue> <workflowBundlePath> <maxCachedWorkflows>
 */
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createBenchActivities } from './devserver-activities';

async function run(): Promise<void> {
  const [address, namespace, taskQueue, bundle, maxCached] = process.argv.slice(2);
  if (!address || !namespace || !taskQueue || !bundle || !maxCached) {
    throw new Error(
      'usage: devserver-worker.ts <address> <namespace> <taskQueue> <bundle> <maxCachedWorkflows>',
    );
  }
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const connection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue,
    workflowBundle: { codePath: bundle },
    activities: createBenchActivities(),
    // Explicit, so every open workflow stays cached whatever the machine's heap size: the memory
    // measurement is then of a worker that holds all of them, as a real one would.
    maxCachedWorkflows: Number(maxCached),
    shutdownGraceTime: '2s',
  });
  console.log('worker ready');
  await worker.run();
  await connection.close();
  console.log('worker stopped');
}

run().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
