/**
 * A Labline worker: one process serving the workflow, GPU and agent task queues (or some of them). The GPU
 * queue's activity concurrency is the host's GPU slots, so no more trainings run than there are GPUs.
 */
import {
  DefaultLogger,
  Runtime,
  Worker,
  type NativeConnection,
  type WorkerOptions,
} from '@temporalio/worker';
import type { ResolvedSettings } from '../client/settings';
import { createLablineActivities } from './activities';
import * as path from 'node:path';
import type { Notifier } from '../activities/notify/notifier';
import { checkWandbKey, wandbTrackerFromSettings } from '../activities/tracking/wandb-worker';
import { githubNotebookOf } from '../activities/notebook/github-worker';
import { AgentsSettings, agentProviderFromSettings } from '../activities/agents/agent-settings';

export type QueueRole = 'workflow' | 'gpu' | 'agents';

export interface LablineWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  settings: ResolvedSettings;
  /** Which queues this process serves. Default: all three. */
  roles?: QueueRole[];
  /** Pre-bundled workflow code (tests); default: bundle `src/workflows` at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  activities?: ReturnType<typeof createLablineActivities>;
  /** Where approval requests go; default: the worker's log. */
  notifier?: Notifier;
  /** The Temporal Web UI's base URL, linked from approval requests when the server has a UI. */
  webUiUrl?: string;
}

/**
 * Installs the SDK runtime with a logger at `level` (default WARN, or $LABLINE_LOG_LEVEL), so a CLI run shows
 * Labline's own progress rather than every worker state change. Call before creating workers.
 */
export function installWorkerRuntime(level = process.env.LABLINE_LOG_LEVEL ?? 'WARN'): void {
  try {
    Runtime.install({ logger: new DefaultLogger(level.toUpperCase() as 'WARN') });
  } catch {
    // Already installed in this process (a second command in tests).
  }
}

/**
 * Activity slots of the GPU task queue: this host's GPU slots (`training.max_concurrent` when it lists none),
 * so no more local trainings run than there are GPUs, plus `slurm.max_jobs` when Slurm is set up, since Slurm
 * jobs run on the cluster's GPUs (local launches stay bounded by the GPU reservations of the local launcher).
 */
export function gpuQueueConcurrency(settings: Pick<ResolvedSettings, 'gpus' | 'training' | 'slurm'>): number {
  return (settings.gpus.ids.length || settings.training.max_concurrent) + (settings.slurm?.max_jobs ?? 0);
}

/** Creates the workers; run them with `runWorkers`. */
export async function createLablineWorkers(options: LablineWorkerOptions): Promise<Worker[]> {
  const { settings } = options;
  const roles = options.roles ?? ['workflow', 'gpu', 'agents'];
  // W&B (settings `wandb`, or WANDB_API_KEY set): a missing or refused key stops the worker here, not mid-run.
  const wandbTracker = options.activities ? undefined : wandbTrackerFromSettings(settings.wandb);
  if (wandbTracker && (settings.wandb?.check_key_at_start ?? true)) await checkWandbKey(wandbTracker);
  // GitHub (settings `github`): a missing or refused token, or an unknown repository, stops the worker here.
  const githubNotebook =
    // The workflow queue writes issues; the GPU queue, where the code lives, pushes a search's branch.
    options.activities || !settings.github || !(roles.includes('workflow') || roles.includes('gpu'))
      ? undefined
      : await githubNotebookOf(settings.github, {
          ...(options.webUiUrl ? { webUi: { url: options.webUiUrl, namespace: options.namespace } } : {}),
        });
  const activities =
    options.activities ??
    createLablineActivities({
      runsRoot: settings.runsRoot,
      gpuIds: settings.gpus.ids,
      slotsDir: path.join(settings.dataDir, 'gpu-slots'),
      killGraceSeconds: settings.training.kill_grace_seconds,
      notifier: options.notifier,
      slack: settings.slack,
      githubNotebook,
      wandb: settings.wandb,
      wandbTracker,
      slurm: settings.slurm,
      webUi: options.webUiUrl ? { url: options.webUiUrl, namespace: options.namespace } : undefined,
      // Only a worker that answers agents needs the model's key; it fails here, at start, without one.
      agentProvider: roles.includes('agents')
        ? agentProviderFromSettings(settings.agents ?? AgentsSettings.parse({}))
        : undefined,
    });
  const common = { connection: options.connection, namespace: options.namespace, activities };
  const workers: Worker[] = [];
  if (roles.includes('workflow')) {
    workers.push(
      await Worker.create({
        ...common,
        taskQueue: settings.task_queues.workflow,
        maxCachedWorkflows: settings.worker.max_cached_workflows,
        ...(options.workflowBundle
          ? { workflowBundle: options.workflowBundle }
          : { workflowsPath: require.resolve('../workflows') }),
      }),
    );
  }
  if (roles.includes('gpu')) {
    workers.push(
      await Worker.create({
        ...common,
        taskQueue: settings.task_queues.gpu,
        // The SDK sends heartbeats at most every 80% of the heartbeat timeout (24 s by default): training
        // progress reaches `status` and the Web UI this often instead.
        maxHeartbeatThrottleInterval: `${settings.training.progress_interval_seconds} seconds`,
        maxConcurrentActivityTaskExecutions: gpuQueueConcurrency(settings),
      }),
    );
  }
  if (roles.includes('agents')) {
    workers.push(
      await Worker.create({
        ...common,
        taskQueue: settings.task_queues.agents,
        maxConcurrentActivityTaskExecutions: 4,
      }),
    );
  }
  return workers;
}

/** Runs workers until `stop` resolves (or one of them fails), then shuts them all down. */
export async function runWorkers(workers: Worker[], stop: Promise<void>): Promise<void> {
  const running = workers.map((worker) => worker.run());
  await Promise.race([stop, ...running]);
  for (const worker of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
  await Promise.allSettled(running);
  await Promise.all(running);
}
