/**
 * A Labline worker (every activity, the shared workflow bundle) in its own process, for crash tests.
 * Usage: labline-worker-process.ts <address> <namespace> <taskQueue> <runsRoot> <bundle>
 */
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import * as path from 'node:path';
import { createLablineActivities } from '../../src/workers/activities';

async function run(): Promise<void> {
  const [address, namespace, taskQueue, runsRoot, bundle] = process.argv.slice(2);
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const connection = await NativeConnection.connect({ address: address! });
  const worker = await Worker.create({
    connection,
    namespace: namespace!,
    taskQueue: taskQueue!,
    workflowBundle: { codePath: bundle! },
    activities: createLablineActivities({
      runsRoot: runsRoot!,
      gpuIds: [],
      slotsDir: path.join(runsRoot!, '.gpu-slots'),
      killGraceSeconds: 1,
    }),
  });
  console.log('worker ready');
  await worker.run();
  await connection.close();
}

run().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
