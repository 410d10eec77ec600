/**
 * A worker in its own process, for crash tests: the conformance activities or Labline's own.
 * Usage: worker-process.ts <conformance|labline> <address> <namespace> <taskQueue> <dir> <bundle>
 * where <dir> is the activity log folder (conformance) or the runs root (labline).
 */
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import * as path from 'node:path';
import { createLablineActivities } from '../../src/workers/activities';
import { createConformanceActivities } from '../devserver/activities';

async function run(): Promise<void> {
  const [kind, address, namespace, taskQueue, dir, bundle] = process.argv.slice(2);
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const activities =
    kind === 'labline'
      ? createLablineActivities({
          runsRoot: dir!,
          gpuIds: [],
          slotsDir: path.join(dir!, '.gpu-slots'),
          killGraceSeconds: 1,
        })
      : createConformanceActivities(dir!);
  const connection = await NativeConnection.connect({ address: address! });
  const worker = await Worker.create({
    connection,
    namespace: namespace!,
    taskQueue: taskQueue!,
    workflowBundle: { codePath: bundle! },
    activities,
  });
  console.log('worker ready');
  await worker.run();
  await connection.close();
}

run().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
