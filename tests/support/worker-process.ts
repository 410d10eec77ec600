/**
 * A worker in its own process, for crash tests: the conformance activities or Labline's own.
 * Usage: worker-process.ts <conformance|labline> <address> <namespace> <taskQueue> <dir> <bundle>
 * where <dir> is the activity log folder (conformance) or the runs root (labline).
 * LABLINE_TEST_SLOW_ACTIVITY=<name>:<ms> makes that activity wait (heartbeating) before it runs, so that a
 * test can kill the worker while it is in progress. LABLINE_TEST_GITHUB=<settings JSON> gives the Labline
 * activities a GitHub notebook, built and checked as a real worker does (token from GITHUB_TOKEN).
 */
import { Context } from '@temporalio/activity';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import * as path from 'node:path';
import { createLablineActivities } from '../../src/workers/activities';
import { createConformanceActivities } from '../devserver/activities';
import { githubNotebookOf } from '../../src/activities/notebook/github-worker';
import { GithubSettings } from '../../src/activities/notebook/github-settings';

async function run(): Promise<void> {
  const [kind, address, namespace, taskQueue, dir, bundle] = process.argv.slice(2);
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const github = process.env.LABLINE_TEST_GITHUB;
  const githubNotebook = github
    ? await githubNotebookOf(GithubSettings.parse(JSON.parse(github)))
    : undefined;
  const activities =
    kind === 'labline'
      ? createLablineActivities({
          runsRoot: dir!,
          gpuIds: [],
          slotsDir: path.join(dir!, '.gpu-slots'),
          killGraceSeconds: 1,
          githubNotebook,
        })
      : createConformanceActivities(dir!);
  const slow = process.env.LABLINE_TEST_SLOW_ACTIVITY?.split(':');
  if (slow)
    slowDown(
      activities as Record<string, (...args: unknown[]) => Promise<unknown>>,
      slow[0]!,
      Number(slow[1]),
    );
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

/** Makes `name` wait `ms` first, heartbeating so that the wait itself never times out. */
function slowDown(
  activities: Record<string, (...args: unknown[]) => Promise<unknown>>,
  name: string,
  ms: number,
) {
  const activity = activities[name];
  if (!activity) throw new Error(`LABLINE_TEST_SLOW_ACTIVITY: no activity ${name}`);
  activities[name] = async (...args: unknown[]) => {
    const ctx = Context.current();
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      ctx.heartbeat();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return activity(...args);
  };
}

run().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
