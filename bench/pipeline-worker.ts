/**
 * A Labline worker in its own process for bench/pipeline.ts (and bench/campaign.ts), so its RSS is its
 * own. Modelled on tests/support/labline-worker-process.ts, but built the way `labline worker` builds it
 * (`createLablineWorkers`: the labline, labline-gpu and labline-agents queues, the real local launcher and
 * tracker, the console notifier, the offline agent provider), with the pre-built workflow bundle.
 * SIGTERM shuts it down cleanly: the SDK's Runtime listens for it.
 *
 * Usage: pipeline-worker.ts <address> <namespace> <runsRoot> <dataDir> <workflowBundlePath> [<maxCachedWorkflows>]
 * (`worker.max_cached_workflows`; without it Labline's production default).
 */
import { NativeConnection } from '@temporalio/worker';
import { LablineSettings, type ResolvedSettings } from '../src/client/settings';
import { createLablineWorkers, installWorkerRuntime, runWorkers } from '../src/workers/worker';

async function run(): Promise<void> {
  const [address, namespace, runsRoot, dataDir, bundle, maxCached] = process.argv.slice(2);
  if (!address || !namespace || !runsRoot || !dataDir || !bundle) {
    throw new Error(
      'usage: pipeline-worker.ts <address> <namespace> <runsRoot> <dataDir> <bundle> [<maxCachedWorkflows>]',
    );
  }
  installWorkerRuntime('ERROR');
  // Production defaults for everything else; a short kill grace only matters if the bench cancels a run.
  const settings: ResolvedSettings = {
    ...LablineSettings.parse({
      training: { kill_grace_seconds: 1 },
      ...(maxCached === undefined ? {} : { worker: { max_cached_workflows: Number(maxCached) } }),
    }),
    runsRoot,
    dataDir,
  };
  const connection = await NativeConnection.connect({ address });
  const workers = await createLablineWorkers({
    connection,
    namespace,
    settings,
    workflowBundle: { codePath: bundle },
  });
  // The cache size decides how many parked experiments stay in memory; the bench records it.
  console.log(`worker ready maxCachedWorkflows=${workers[0]!.options.maxCachedWorkflows}`);
  await runWorkers(workers, new Promise<void>(() => undefined));
  await connection.close();
  console.log('worker stopped');
}

run().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
