/**
 * `labline start` (the main job: Temporal, worker, submit, progress, approvals, report in one process)
 * and `labline worker` (a long-running worker for a shared Temporal).
 */
import type { Command } from 'commander';
import { commandSummary } from './cli-registry';
import { rmSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import type { DecisionSignal, ExperimentSpec, GateName } from '../experiment';
import { ConsoleNotifier } from '../activities/notify/notifier';
import type * as WorkerModuleTypes from '../workers/worker';
import type { QueueRole } from '../workers/worker';

type WorkerModule = typeof WorkerModuleTypes;
import { formatStatus } from './cli-format';
import {
  decideOrExplain,
  defaultApprover,
  describeChange,
  pause,
  watchStatus,
  withWebUiLink,
  workflowSettingsOf,
  type GlobalOptions,
} from './cli-experiments';
import {
  connectClient,
  connectWorker,
  findTemporal,
  resolveTemporal,
  type TemporalTarget,
} from './connection';
import { webUiWorkflowUrl } from '../experiment';
import { serverRecordPath, ServerChoice } from './local-temporal';
import { experimentResult, submitExperiment } from './experiments';
import { loadSettings, type ResolvedSettings } from './settings';
import { askAtGate } from './prompt';
import { LiveArea, totalStepsOf, TrainingDisplay } from './progress-view';
import { describePinnedCode } from './code-pinning';
import { loadSpecFile } from './spec-file';

export interface StartOptions {
  yes?: boolean;
  quiet?: boolean;
  acceptUnmet?: boolean;
  rerun?: boolean;
  as?: string;
  server?: string;
}

/** A decision `start` takes without asking, and why. */
export interface UnattendedDecision {
  action: DecisionSignal;
  comment: string;
}

/**
 * What `start` decides by itself at a gate: with `--yes`, the launch and publish reviews are approved; with
 * `--accept-unmet`, unmet deliverables are accepted. Under `--yes` every other gate (a failed attempt, unmet
 * deliverables, the LLM budget) ends the run without accepting anything. `undefined`: ask a person.
 */
export function unattendedDecision(
  gate: GateName,
  options: { yes?: boolean; acceptUnmet?: boolean },
): UnattendedDecision | undefined {
  if (gate === 'deliverables' && options.acceptUnmet)
    return { action: 'approve', comment: 'accepted with --accept-unmet' };
  if (!options.yes) return undefined;
  if (gate === 'launch' || gate === 'publish') return { action: 'approve', comment: 'approved with --yes' };
  return {
    action: 'reject',
    comment:
      `--yes approves the launch and publish reviews only, so the ${gate} gate ends the run` +
      (gate === 'deliverables' ? '; use --accept-unmet to accept unmet deliverables' : ''),
  };
}

/** 0 only when the experiment completed with every required deliverable met; 1 otherwise. */
export function startExitCode(stage: string, resultStatus: string | undefined): 0 | 1 {
  return stage === 'completed' && resultStatus === 'completed' ? 0 : 1;
}

/** `--server`, shared by `start` and `campaign`. */
export const serverOptionHelp =
  'which local Temporal to start when none is configured: auto (the real dev server, with its Web UI, when the ' +
  'temporal CLI is installed; else embedded), temporal-cli, or embedded';

export function addStartCommands(program: Command): void {
  program
    .command('start <spec>')
    .description(commandSummary('start'))
    .option(
      '--yes',
      'approve the launch and publish reviews without asking; a failed attempt, unmet deliverables or the LLM ' +
        'budget then end the run instead',
    )
    .option('--accept-unmet', 'accept unmet deliverables without asking (the result is partial_success)')
    .option(
      '--rerun',
      'run an experiment that already ran again, in a new run directory (<id>.rerun-<UTC time>); nothing of ' +
        'the earlier run is reused or overwritten',
    )
    .option('--as <user>', 'who approves; default: $LABLINE_USER or the OS user')
    .option('--server <kind>', serverOptionHelp, 'auto')
    .option(
      '--quiet',
      'print stage changes, questions and the result only: no training progress (on a terminal, progress is a ' +
        "live bar with the trainer's last lines; elsewhere, a line per change)",
    )
    .action(async (specFile: string, options: StartOptions) => {
      // Validate before anything starts: a rejected spec starts nothing.
      await runExperimentLocally(program, loadSpecFile(specFile), options);
    });

  program
    .command('worker')
    .description(commandSummary('worker'))
    .option('--queues <roles>', 'which task queues to serve: workflow,gpu,agents', 'workflow,gpu,agents')
    .action(async (options: { queues: string }) => {
      const roles = options.queues.split(',').map((r) => r.trim()) as QueueRole[];
      const unknown = roles.filter((r) => !['workflow', 'gpu', 'agents'].includes(r));
      if (unknown.length)
        throw new Error(`--queues: unknown role(s) ${unknown.join(', ')}; use workflow, gpu, agents.`);
      const settings = loadSettings(program.opts<GlobalOptions>().config);
      const { createLablineWorkers, installWorkerRuntime, runWorkers } = loadWorkerModule();
      installWorkerRuntime(process.env.LABLINE_LOG_LEVEL ?? 'INFO');
      const target = await findTemporal(settings);
      const connection = await connectWorker(target);
      const stop = deferred();
      process.once('SIGINT', stop.resolve);
      process.once('SIGTERM', stop.resolve);
      try {
        const workers = await createLablineWorkers({
          connection,
          namespace: target.namespace,
          settings,
          roles,
          webUiUrl: target.uiUrl,
        });
        console.log(`Labline worker on ${target.address} serving ${roles.join(', ')}`);
        await runWorkers(workers, stop.promise);
      } finally {
        await connection.close();
      }
    });
}

/**
 * Runs `work` with a client and a worker serving every task queue, against the configured Temporal or the
 * embedded server (started here and stopped at the end). `start` and `campaign` are built on it.
 */
export async function withLocalRuntime(
  program: Command,
  options: {
    server: ServerChoice;
    command: 'start' | 'campaign' | 'reproduce';
    /** Where its own progress lines go (server, worker, stop); default stdout. `--json` sends them to stderr. */
    log?: (line: string) => void;
  },
  work: (runtime: {
    client: Client;
    settings: ResolvedSettings;
    target: TemporalTarget;
    /** Aborted on Ctrl-C or SIGTERM: stop following, so that everything can be closed. */
    signal: AbortSignal;
  }) => Promise<void>,
): Promise<void> {
  const settings = loadSettings(program.opts<GlobalOptions>().config);
  const { createLablineWorkers, installWorkerRuntime, runWorkers } = loadWorkerModule();
  installWorkerRuntime(process.env.LABLINE_LOG_LEVEL ?? 'ERROR');
  const log = options.log ?? ((line: string) => console.log(line));
  const target = await resolveTemporal(settings, {
    server: options.server,
    log,
    startedBy: options.command,
  });
  // A `labline server` runs the worker already; a second one would only compete with it for tasks.
  const ownWorker = !target.shared?.worker;
  const stopWorkers = deferred();
  let workersDone: Promise<void> | undefined;
  const interrupt = firstInterrupt();
  const { client, connection } = await connectClient(target);
  const workerConnection = ownWorker ? await connectWorker(target) : undefined;
  try {
    if (workerConnection) {
      log('Starting the Labline worker (bundling workflow code)…');
      // This process asks at each gate itself, so the worker's console messages would only repeat it; with
      // a `slack` section the requests also go to Slack, where the team can answer them.
      const workers = await createLablineWorkers({
        connection: workerConnection,
        namespace: target.namespace,
        settings,
        notifier: settings.slack ? undefined : new ConsoleNotifier(() => undefined),
        webUiUrl: target.uiUrl,
      });
      workersDone = runWorkers(workers, stopWorkers.promise);
    }
    const stopping = new AbortController();
    const working = work({ client, settings, target, signal: stopping.signal });
    const signal = await Promise.race([working.then(() => undefined), interrupt.received]);
    if (signal) {
      // Following stops before the connections close; what it was doing then has nothing left to report.
      stopping.abort(new Error(`stopped by ${signal}`));
      // Bounded: a question waiting in the terminal does not end on its own.
      await Promise.race([working.catch(() => undefined), pause(STOP_TIMEOUT_MS / 2)]);
      log(
        `\n${signal}: stopping. Training and approvals keep their state; run the same command again to ` +
          're-attach (a second Ctrl-C stops at once).',
      );
      process.exitCode = signal === 'SIGINT' ? 130 : 143;
    }
  } finally {
    // Bounded: a stop that hangs (a server that does not answer) ends the process anyway.
    const deadline = setTimeout(() => {
      console.error(`Not stopped within ${STOP_TIMEOUT_MS / 1000} s; exiting now.`);
      // The local server goes with this process: the record announcing it must not outlive it.
      if (target.local) rmSync(serverRecordPath(settings.dataDir), { force: true });
      process.exit(process.exitCode ?? 1);
    }, STOP_TIMEOUT_MS);
    stopWorkers.resolve();
    await workersDone?.catch((error: unknown) => console.error(`worker: ${(error as Error).message}`));
    await workerConnection?.close();
    await connection.close();
    await target.local?.stop();
    clearTimeout(deadline);
    interrupt.dispose();
  }
}

/** How long `start` may take to stop after Ctrl-C or SIGTERM before it exits regardless. */
export const STOP_TIMEOUT_MS = 5000;

/**
 * The first SIGINT or SIGTERM, which asks for a clean stop (`received` resolves with it); a second one
 * exits at once. Until then the signals do not end the process by themselves.
 */
export function firstInterrupt(): { received: Promise<NodeJS.Signals>; dispose: () => void } {
  let count = 0;
  let resolve!: (signal: NodeJS.Signals) => void;
  const received = new Promise<NodeJS.Signals>((r) => (resolve = r));
  const onSignal = (signal: NodeJS.Signals) => {
    count += 1;
    if (count > 1) {
      console.error(`${signal} again: exiting now.`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    resolve(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    received,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** `--server`'s value, checked. */
export function parseServerChoice(value: string | undefined): ServerChoice {
  const parsed = ServerChoice.safeParse(value ?? 'auto');
  if (!parsed.success) throw new Error(`--server ${value}: use auto, temporal-cli or embedded.`);
  return parsed.data;
}

export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** The worker library is large (webpack, the native core): load it only for the commands that run a worker. */
export function loadWorkerModule(): WorkerModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('../workers/worker') as WorkerModule;
}

/**
 * The main job for one spec: a local Temporal and worker (or the configured ones), submit, progress, the
 * questions at gates, the result. `labline start` and `labline reproduce` run through it.
 */
export async function runExperimentLocally(
  program: Command,
  spec: ExperimentSpec,
  options: StartOptions,
  command: 'start' | 'reproduce' = 'start',
): Promise<void> {
  const server = parseServerChoice(options.server);
  await withLocalRuntime(program, { server, command }, async ({ client, settings, target, signal }) => {
    const {
      alreadyRunning,
      runName,
      spec: submitted,
    } = await submitExperiment({
      client,
      spec,
      settings: workflowSettingsOf(settings),
      rerun: options.rerun,
    });
    console.log(
      alreadyRunning
        ? `Re-attached to running ${spec.experiment_id}`
        : `Submitted ${spec.experiment_id}${runName === spec.experiment_id ? '' : ` as ${runName}`}`,
    );
    const pinned = describePinnedCode(submitted);
    if (pinned) console.log(pinned);
    if (target.uiUrl)
      console.log(`Temporal Web UI: ${webUiWorkflowUrl(target.uiUrl, target.namespace, spec.experiment_id)}`);
    const approver = options.as ?? defaultApprover();
    const asked = new Set<string>();
    const display =
      process.stdout.isTTY && !options.quiet
        ? new TrainingDisplay(new LiveArea(process.stdout), totalStepsOf(spec.config))
        : undefined;
    const final = await watchStatus(
      client,
      spec.experiment_id,
      async (status, previous) => {
        const progress = display === undefined && !options.quiet;
        for (const line of describeChange(status, previous, { progress })) {
          if (display) display.print(line);
          else console.log(line);
        }
        display?.update(status);
        const waiting = status.waiting;
        const key = waiting ? (waiting.opening ?? `${waiting.gate}@${waiting.since}`) : '';
        if (!waiting || asked.has(key)) return;
        asked.add(key);
        const unattended = unattendedDecision(waiting.gate, options);
        const action =
          unattended?.action ?? (await askAtGate(client, status.experiment_id, waiting, { signal }));
        if (!action) return;
        await decideOrExplain(client, spec.experiment_id, action, {
          gate: waiting.gate,
          opening: waiting.opening,
          by: approver,
          source: 'cli',
          comment: unattended?.comment,
        });
      },
      { signal },
    ).finally(() => display?.pause());
    console.log(formatStatus(withWebUiLink(final, target)));
    let resultStatus: string | undefined;
    if (final.stage === 'completed') {
      const result = await experimentResult(client, spec.experiment_id);
      resultStatus = result.status;
      console.log(`Experiment ${result.status}. Report: ${final.links.report ?? '(none)'}`);
      console.log(`Results: ${final.links.results ?? '(none)'}`);
    }
    process.exitCode = startExitCode(final.stage, resultStatus);
  });
}
