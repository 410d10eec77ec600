/**
 * The Labline that bench/pipeline.ts and bench/campaign.ts measure: a server process (the embedded
 * `labline devserver`, or the real `temporal server start-dev`), a bench/pipeline-worker.ts process (built
 * like `labline worker`) and a client in the benchmark's process; experiments that train the example trainer
 * (examples/trainer/train.js); and the run's temporary folder, whose clean-up also stops trainers left running.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalLauncher } from '../src/activities/training/local';
import type { ExperimentSpecInput, WorkflowSettingsInput } from '../src/experiment';
import { cliScript } from '../tests/support/processes';
import {
  bundleWorkflows,
  startEmbeddedServer,
  startRealServer,
  withServerAndWorker,
  type Server,
  type ServerTarget,
  type Stack,
} from './stack';
import { killAllNow, withTimeout } from './support';

const root = path.resolve(__dirname, '..');
const workerScript = path.join(__dirname, 'pipeline-worker.ts');
const trainerPath = path.join(root, 'examples/trainer/train.js');
const namespace = 'default';

// ---------------------------------------------------------------------------------------------------
// The stack: a server process, a worker process and a client in this process, stopped together

export interface LablineStack extends Stack {
  runsRoot: string;
  maxCachedWorkflows: number;
}

export interface LablineStackOptions {
  /** The run's folder; this stack's runs and worker data go under `dir/label`. */
  dir: string;
  label: string;
  bundlePath: string;
  /** Default: the embedded server. Either way in memory: these benchmarks measure the pipeline, not storage. */
  server?: ServerTarget;
  /** The worker's `worker.max_cached_workflows`; default: Labline's production default. */
  maxCachedWorkflows?: number;
  timeouts: { processStartMs: number; processStopMs: number };
}

function startServer(target: ServerTarget, timeouts: LablineStackOptions['timeouts']): Promise<Server> {
  if (target.kind === 'temporal-cli')
    return startRealServer(target.cli, { processStartMs: timeouts.processStartMs });
  return startEmbeddedServer(cliScript, ['devserver', '--port', '0', '--log-level', 'warn'], timeouts);
}

/** A fresh server, worker and runs folder under `dir/label`; every process is stopped afterwards. */
export async function withLablineStack<T>(
  options: LablineStackOptions,
  fn: (stack: LablineStack) => Promise<T>,
): Promise<T> {
  const { dir, label, bundlePath, timeouts } = options;
  const runsRoot = path.join(dir, label, 'runs');
  const dataDir = path.join(dir, label, 'data');
  mkdirSync(runsRoot, { recursive: true });
  mkdirSync(dataDir, { recursive: true });
  const maxCached = options.maxCachedWorkflows === undefined ? [] : [String(options.maxCachedWorkflows)];
  return await withServerAndWorker(
    {
      startServer: () => startServer(options.server ?? { kind: 'embedded' }, timeouts),
      worker: {
        script: workerScript,
        args: (address) => [address, namespace, runsRoot, dataDir, bundlePath, ...maxCached],
        ready: /worker ready maxCachedWorkflows=(\d+)/,
      },
      namespace,
      timeouts,
    },
    (stack) => fn({ ...stack, runsRoot, maxCachedWorkflows: Number(stack.workerReady[1]) }),
  );
}

/** Labline's workflows (src/workflows), bundled into `dir` for the worker. */
export const bundleLablineWorkflows = (dir: string) =>
  bundleWorkflows(require.resolve('../src/workflows'), dir);

// ---------------------------------------------------------------------------------------------------
// Experiments and settings

/**
 * An experiment that trains the example trainer with `args` (after the script) and checks its curves,
 * accuracy and checkpoint; no approvals given, so the spec's defaults apply.
 */
export function exampleTrainerExperiment(options: {
  id: string;
  hypothesis: string;
  config: Record<string, number>;
  args: string[];
}): ExperimentSpecInput {
  const { id, hypothesis, config, args } = options;
  return {
    experiment_id: id,
    name: `bench ${id}`,
    hypothesis,
    config,
    training: {
      command: process.execPath,
      args: [trainerPath, ...args],
      working_directory: root,
      checkpoint: { directory: 'checkpoints', resume: { flag: '--resume-from' } },
    },
    deliverables: [
      { name: 'curves', type: 'contains_keys', keys: ['train/loss', 'eval/accuracy'], in: 'history' },
      { name: 'accuracy', type: 'threshold', metric: 'eval/accuracy', op: '>=', value: 0.7 },
      { name: 'checkpoint', type: 'exists_and_loadable', path: 'checkpoints/latest.json' },
    ],
    metadata: { project: 'bench', researcher: 'bench' },
  };
}

export function workflowSettings(
  runsRoot: string,
  pollIntervalMs: number,
  heartbeatTimeoutSeconds: number,
): WorkflowSettingsInput {
  return {
    runs_root: runsRoot,
    training_heartbeat_timeout_seconds: heartbeatTimeoutSeconds,
    training_poll_interval_ms: pollIntervalMs,
  };
}

// ---------------------------------------------------------------------------------------------------
// The run's temporary folder and its clean-up

/**
 * A temporary folder for this run (bundle, runs, server data), made now, and its clean-up: kills the server
 * and worker, cancels any training still running (its supervisor is detached, so killing the worker does
 * not reach it) and removes the folder. The clean-up is bounded and safe to call more than once.
 */
export function runFolder(
  prefix: string,
  trainerCleanupMs: number,
): { dir: string; cleanUp: () => Promise<void> } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  let cleaning: Promise<void> | undefined;
  const cleanUp = () => {
    cleaning ??= (async () => {
      killAllNow();
      await withTimeout(stopLeftoverTrainers(dir), trainerCleanupMs, 'stopping trainers').catch(
        (error: unknown) => console.error(error),
      );
      rmSync(dir, { recursive: true, force: true });
    })();
    return cleaning;
  };
  return { dir, cleanUp };
}

/**
 * The supervisors are detached on purpose, so killing the worker does not stop them: any attempt without
 * exit.json is cancelled through the launcher itself.
 */
async function stopLeftoverTrainers(dir: string): Promise<void> {
  const launcher = new LocalLauncher({ killGraceMs: 1000 });
  const attemptDirs = readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((rel) => path.basename(path.dirname(rel)) === 'attempts')
    .map((rel) => path.join(dir, rel))
    .filter((attemptDir) => !existsSync(path.join(attemptDir, 'exit.json')));
  for (const attemptDir of attemptDirs) {
    const runDir = path.dirname(path.dirname(attemptDir));
    await launcher.cancel({ launcher: 'local', key: path.basename(attemptDir), runDir, attemptDir });
  }
}
