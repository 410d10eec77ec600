/**
 * A conformance worker in its own process, for crash tests.
 * Usage: worker-process.ts <address> <namespace> <taskQueue> <activityLogDir>
 */
import { NativeConnection, Runtime, DefaultLogger, Worker } from '@temporalio/worker';
import { createConformanceActivities } from '../devserver/activities';

async function run(): Promise<void> {
  const [address, namespace, taskQueue, dir, bundle] = process.argv.slice(2);
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const connection = await NativeConnection.connect({ address: address! });
  const worker = await Worker.create({
    connection,
    namespace: namespace!,
    taskQueue: taskQueue!,
    workflowBundle: { codePath: bundle! },
    activities: createConformanceActivities(dir!),
  });
  console.log('worker ready');
  await worker.run();
  await connection.close();
}

run().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
