/**
 * The chaos suite of issue 12: experiments of the example trainer run through Labline while the worker and the
 * server are killed, stopped and restarted, on the embedded server and on the real Temporal dev server.
 *
 *   npx tsx bench/chaos.ts                                   (npm run bench:chaos; both servers, 100 experiments)
 *   npx tsx bench/chaos.ts --server embedded --experiments 20 --seed 7
 *
 * Flags (`--name value` or `--name=value`): `--server embedded|temporal-cli` (default: both, one after the
 * other); `--experiments N` (default 100); `--seed S` (default 12: where faults strike); `--result <file>`
 * (default bench/results/chaos.json; servers not run this time keep their earlier entry).
 *
 * On each server, on its own data file and port (bench/chaos-run.ts does the run, bench/chaos-tally.ts the
 * counting): N experiments, 4 at a time (the worker's GPU slots), each approved at the launch gate by this
 * driver through the client API; faults at points of progress drawn with the seed: the worker SIGKILLed and
 * restarted, the worker stopped with SIGTERM and restarted, the server SIGKILLed and restarted, and one outage
 * of the server longer than the training heartbeat timeout. Workflow settings are Labline's production
 * defaults. Then: completed, failed, stuck, duplicate launches, healthy trainers killed, approvals lost and the
 * longest stall after a process came back, against the goals (all completed, 0, 0, 0, at most 90 s).
 *
 * The worker is bench/pipeline-worker.ts (built like `labline worker`); the server `labline devserver --db` or
 * `temporal server start-dev --db-filename`; this process is the client. Writes bench/results/chaos.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { cliScript } from '../tests/support/processes';
import { runChaos, type ChaosRunResult, type ChaosServer, type FaultKind } from './chaos-run';
import { bundleLablineWorkflows, runFolder } from './labline-stack';
import { selectServers, serverKinds, startEmbeddedServer, startRealServer, type ServerTarget } from './stack';
import { loadAverages, machineInfo, resultHeader, runBenchmark, sourceState, writeResult } from './support';

/** The value of `--name=value` or `--name value`, if given. */
function flag(name: string): string | undefined {
  const args = process.argv;
  const inline = args.find((a) => a.startsWith(`--${name}=`));
  if (inline) return inline.slice(name.length + 3);
  const at = args.indexOf(`--${name}`);
  return at === -1 ? undefined : args[at + 1];
}

function wholeNumber(name: string, fallback: number, least: number): number {
  const given = flag(name);
  if (given === undefined) return fallback;
  const n = Number(given);
  if (!Number.isInteger(n) || n < least)
    throw new Error(`--${name} ${given}: give a whole number ≥ ${least}`);
  return n;
}

const server = flag('server');
if (server !== undefined && !serverKinds.includes(server as ServerTarget['kind']))
  throw new Error(`--server ${server}: use ${serverKinds.join(' or ')} (or leave it out for both)`);
const selection = selectServers(server ? [`--servers=${server}`] : []);
const resultFile = path.resolve(flag('result') ?? path.join(__dirname, 'results', 'chaos.json'));
const experiments = wholeNumber('experiments', 100, 1);

/** Faults per server: six worker kills, four clean worker stops, four server kills per 100 experiments; one outage. */
const faultsPer100: Record<FaultKind, number> = {
  'worker-kill': 6,
  'worker-stop': 4,
  'server-kill': 4,
  'server-outage': 1,
};
const leastFaults: Record<FaultKind, number> = {
  'worker-kill': 2,
  'worker-stop': 2,
  'server-kill': 2,
  'server-outage': 1,
};

// Labline's production defaults (src/experiment/settings.ts), written out so that the result says what ran.
const trainingHeartbeatTimeoutSeconds = 30;

const parameters = {
  servers: selection.targets.map((t) => t.kind),
  experiments,
  seed: wholeNumber('seed', 12, 0),
  inFlight: 4,
  faults: Object.fromEntries(
    Object.entries(faultsPer100).map(([kind, per100]) => [
      kind,
      kind === 'server-outage'
        ? 1
        : Math.max(leastFaults[kind as FaultKind], Math.round((per100 * experiments) / 100)),
    ]),
  ) as Record<FaultKind, number>,
  // About 8 s of training (200 steps × 40 ms), so that most faults find trainers running.
  trainer: { steps: 200, stepDelayMs: 40 },
  settings: {
    training_heartbeat_timeout_seconds: trainingHeartbeatTimeoutSeconds,
    activity_heartbeat_timeout_seconds: 60,
    launch_timeout_seconds: 60,
    training_poll_interval_ms: 250,
  },
  // Longer than the heartbeat timeout by half again: the watcher's attempt has timed out when it comes back.
  outageMs: trainingHeartbeatTimeoutSeconds * 1500,
  statusPollMs: 1000,
  timeouts: {
    runMs: 20 * 60_000,
    processStartMs: 60_000,
    processStopMs: 30_000,
    callMs: 15_000,
    approvalMs: 180_000,
    settleCapMs: 150_000,
    slowToMoveMs: 30_000,
    trainerCleanupMs: 60_000,
  },
};

/** Starts the server of `target` on `dbFile`: on any free port the first time, then again on the same one. */
function serverStarter(target: ServerTarget, dbFile: string): (port?: number) => Promise<ChaosServer> {
  const { processStartMs, processStopMs } = parameters.timeouts;
  return async (port = 0) => {
    const server =
      target.kind === 'embedded'
        ? await startEmbeddedServer(
            cliScript,
            ['devserver', '--port', String(port), '--db', dbFile, '--log-level', 'warn'],
            { processStartMs, processStopMs },
          )
        : await startRealServer(target.cli, {
            dbFile: `${dbFile}.sqlite`,
            port: port || undefined,
            processStartMs,
          });
    // `crashed` rejects when the process exits without `stop`: a kill here, or a crash.
    const exited = server.crashed.catch(() => undefined);
    return {
      address: server.address,
      stop: () => server.stop(),
      kill: async () => {
        try {
          process.kill(server.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
        await exited;
      },
      exited,
    };
  };
}

function describeServer(kind: ServerTarget['kind']): string {
  return kind === 'embedded'
    ? 'embedded: `labline devserver --port <same> --db <file> --log-level warn`'
    : `real Temporal dev server (${selection.temporalCliVersion}): \`temporal server start-dev --headless ` +
        "--port <same> --db-filename <file> --log-level warn` with Labline's search attributes";
}

function summary(results: Partial<Record<string, ChaosRunResult>>): string {
  return Object.entries(results)
    .map(([kind, r]) => {
      const f = r!.figures;
      const goals = Object.values(r!.goals)
        .map((g) => `${g.met ? 'met' : 'NOT MET'}: ${g.goal} (${g.value})`)
        .join('\n  ');
      return (
        `${kind}: ${f.completed}/${f.experiments} completed, ${f.failed} failed, ${f.stuck} stuck; ` +
        `${f.trainerStarts} trainer starts, ${f.duplicateLaunches} duplicate launches, ` +
        `${f.healthyTrainersKilled} healthy trainers killed; ${f.approvalsLost} of ${f.approvalsAccepted} ` +
        `approvals lost; longest stall ${Math.round(f.longestStallMs / 100) / 10} s; ${r!.wallSeconds} s\n  ${goals}`
      );
    })
    .join('\n');
}

/** The earlier result's servers, so that a run of one server keeps the other's entry. */
function earlierServers(): Record<string, unknown> {
  if (!existsSync(resultFile)) return {};
  try {
    return (
      (JSON.parse(readFileSync(resultFile, 'utf8')) as { servers?: Record<string, unknown> }).servers ?? {}
    );
  } catch {
    return {};
  }
}

const { dir, cleanUp } = runFolder('labline-bench-chaos-', parameters.timeouts.trainerCleanupMs);

async function main(): Promise<void> {
  const loadAtStart = loadAverages();
  try {
    console.log('bundling workflow code…');
    const bundlePath = await bundleLablineWorkflows(dir);
    const results: Partial<Record<string, ChaosRunResult>> = {};
    const entries: Record<string, unknown> = {};
    for (const target of selection.targets) {
      console.log(`${target.kind}: ${experiments} experiments, faults ${JSON.stringify(parameters.faults)}…`);
      const runDir = path.join(dir, target.kind);
      const result = await runChaos({
        label: target.kind === 'embedded' ? 'embedded' : 'temporal',
        dir: runDir,
        bundlePath,
        startServer: serverStarter(target, path.join(runDir, 'server.wal')),
        experiments,
        inFlight: parameters.inFlight,
        seed: parameters.seed,
        faults: parameters.faults,
        trainer: parameters.trainer,
        settings: parameters.settings,
        outageMs: parameters.outageMs,
        statusPollMs: parameters.statusPollMs,
        timeouts: parameters.timeouts,
        log: (line) => console.log(line),
      });
      results[target.kind] = result;
      entries[target.kind] = {
        date: new Date().toISOString(),
        server: describeServer(target.kind),
        run: { experiments, seed: parameters.seed, faults: parameters.faults },
        loadAverageAtEnd: loadAverages(),
        ...result,
      };
    }
    const report = {
      ...resultHeader('chaos'),
      source: sourceState(),
      machine: { ...machineInfo(), loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadAverages() },
      temporalCli: selection.temporalCliVersion ?? 'not used',
      parameters: {
        ...parameters,
        topology:
          'one server process on its own data file and port, restarted on the same ones; one worker process ' +
          '(bench/pipeline-worker.ts: createLablineWorkers with production settings but kill_grace 1 s, local ' +
          'launcher and tracker, offline agents, console notifier), restarted after each worker fault; this ' +
          'process is the client (submit, status every second per experiment in flight, decide)',
        trainerCommand:
          `node bench/chaos-trainer.js <log> examples/trainer/train.js --steps=${parameters.trainer.steps} ` +
          `--lr=0.5 --seed=0 --eval-every=10 --checkpoint-every=10 --step-delay-ms=${parameters.trainer.stepDelayMs}`,
      },
      definitions: {
        faults:
          'Fault i strikes when experiment k is first seen at point p or beyond (launch_review, approved, ' +
          'training = a step reported, validation, analysis, writing), k and p drawn with the seed. One at a ' +
          'time; the next waits until every experiment in flight has moved again (settleCapMs at most). ' +
          'worker-kill: SIGKILL, restart at once; worker-stop: SIGTERM, SIGKILL after processStopMs (then ' +
          'stoppedCleanly is false), restart; server-kill: SIGKILL, restart on the same port and data; ' +
          'server-outage: SIGTERM, outageMs down, restart on the same port and data.',
        completed: 'final stage completed; failed: failed, rejected or cancelled; stuck: not ended by runMs.',
        duplicateLaunches:
          'trainer starts (logged by bench/chaos-trainer.js) beyond the first for one experiment and launch key.',
        healthyTrainersKilled:
          'trainer starts that ended by a signal: a SIGTERM, SIGINT or SIGHUP it received (its end record), ' +
          "or SIGKILL (no end record, its supervisor's exit.json). The driver never cancels an experiment and " +
          'the trainer never fails on its own, so every one counts. Starts gone with no record at all are ' +
          'counted apart (trainersVanished) and in the goal.',
        approvalsLost:
          'approvals the driver saw accepted (decide answered, or a retry with the same request id refused ' +
          "as already taken) that the experiment's last status does not list as an approved launch decision.",
        longestStall:
          'for each fault and each experiment in flight when its process came back (worker ready, or server ' +
          'answering): the time from then to the next change of its status (stage, gate, decisions, each ' +
          "attempt's outcome and step) seen by the driver; the longest over all. Before each fault every " +
          'experiment in flight is read, so a change seen later is progress made after the fault.',
        otherGatesOpened:
          'failure, deliverables or budget gates that opened; the driver rejects them (the experiment then ' +
          'ends failed), so that a failure cannot block the run.',
      },
      notes: [
        'Stalls are seen through the status query. After a worker crash the first query waits for the ' +
          "SDK's sticky schedule-to-start timeout (10 s) before the server hands it to another worker, on " +
          'both servers; both then send later queries to the normal queue.',
        'Every activity heartbeats (launchTraining too, with the worker heartbeat timeout, 60 s here): a ' +
          'worker killed during any stage is noticed within that timeout; a launch whose worker died before ' +
          'starting the supervisor is taken over by the retry.',
        'details.notCompleted gives the reason of every experiment that did not complete, and ' +
          'otherGatesOpened the question of each gate the driver had to reject; faults[].slowToMove what the ' +
          'experiments slow to move waited on.',
      ],
      servers: { ...earlierServers(), ...entries },
    };
    writeResult(resultFile, report, summary(results));
  } finally {
    await cleanUp();
  }
}

const wholeRunMs = selection.targets.length * (parameters.timeouts.runMs + 5 * 60_000);
runBenchmark(main, { wholeRunMs, cleanUp });
