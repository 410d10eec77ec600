/**
 * Benchmark of the embedded dev server (src/devserver) driven by the real Temporal SDK.
 *
 *   npx tsx bench/devserver.ts        (npm run bench:devserver)
 *
 * 1. Throughput: workflows of one activity each, completed per second, with the server in memory and
 *    with the server persisting to a data file (--db, fsync on every change).
 * 2. Memory: RSS of the server and of the worker holding 1,000 open workflows that wait for a signal.
 *
 * The server and the worker each run in their own process (the server through the `labline devserver`
 * CLI, the worker through bench/devserver-worker.ts), so each RSS and CPU time is its own and the
 * client load generated here does not share their event loops. Writes bench/results/devserver.json.
 *
 * `--bare-server` runs the server through bench/devserver-server.ts instead, a process that loads only
 * src/devserver: the CLI also loads the rest of Labline, which the server's RSS then includes.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { cliScript, type RunningProcess } from '../tests/support/processes';
import { oneActivityWorkflow, releaseSignal, waitForSignalWorkflow } from './devserver-workflows';
import { bundleWorkflows, startServerProcess, withServerAndWorker, type Server } from './stack';
import {
  cpuSecondsOf,
  killAllNow,
  machineInfo,
  memoryOf,
  pool,
  resultHeader,
  round,
  runBenchmark,
  sleep,
  stats,
  stopProcess,
  withTimeout,
  writeResult,
} from './support';

const resultFile = path.join(__dirname, 'results', 'devserver.json');
const workerScript = path.join(__dirname, 'devserver-worker.ts');
const namespace = 'default';

const serverLaunchers = {
  cli: { script: cliScript, args: ['devserver', '--port', '0', '--log-level', 'warn'], dbFlag: ['--db'] },
  bare: { script: path.join(__dirname, 'devserver-server.ts'), args: [], dbFlag: [] },
} as const;
type ServerLauncher = keyof typeof serverLaunchers;

const serverLauncher: ServerLauncher = process.argv.includes('--bare-server') ? 'bare' : 'cli';

const parameters = {
  serverLauncher,
  // The warm-up is long because throughput kept rising over the first few hundred workflows (JIT in
  // three processes); 1,000 measured workflows keep the ramp-up and drain of the batch a small share.
  throughput: { warmupWorkflows: 300, workflows: 1000, concurrency: 50 },
  memory: { openWorkflows: 1000, startConcurrency: 50, settleMs: 2000 },
  // Above the number of open workflows, so the worker keeps all of them cached on any machine.
  workerMaxCachedWorkflows: 1500,
  timeouts: {
    processStartMs: 60_000,
    batchMs: 180_000,
    firstTaskMs: 120_000,
    processStopMs: 10_000,
    wholeRunMs: 10 * 60_000,
  },
};

// ---------------------------------------------------------------------------------------------------
// Processes: a server through the chosen launcher, a worker polling one task queue, a client here

function startServer(db?: string, launcher = parameters.serverLauncher): Promise<Server> {
  const { script, args, dbFlag } = serverLaunchers[launcher];
  return startServerProcess(
    script,
    [...args, ...(db ? [...dbFlag, db] : [])],
    parameters.timeouts.processStartMs,
  );
}

/** A server, a worker polling `taskQueue` and a client, stopped together. */
function withStack<T>(
  options: { db?: string; taskQueue: string; bundlePath: string },
  fn: (stack: { server: Server; worker: RunningProcess; client: Client }) => Promise<T>,
): Promise<T> {
  return withServerAndWorker(
    {
      startServer: () => startServer(options.db),
      worker: {
        script: workerScript,
        args: (address) => [
          address,
          namespace,
          options.taskQueue,
          options.bundlePath,
          String(parameters.workerMaxCachedWorkflows),
        ],
        ready: /worker ready/,
      },
      namespace,
      timeouts: parameters.timeouts,
    },
    fn,
  );
}

// ---------------------------------------------------------------------------------------------------
// 1. Throughput

interface ThroughputResult {
  server: 'in memory' | 'data file (--db, fsync per change)';
  workflows: number;
  concurrency: number;
  totalSeconds: number;
  workflowsPerSecond: number;
  latencyMs: { p50: number; p95: number; max: number };
  cpuSeconds: { server: number; worker: number; client: number };
  cpuMsPerWorkflow: { server: number; worker: number };
  rssAfterMiB: { server: number; worker: number };
  dataFileBytes?: number;
}

/** Starts `count` one-activity workflows, `concurrency` at a time; returns each start→result latency. */
async function runBatch(
  client: Client,
  taskQueue: string,
  prefix: string,
  count: number,
  concurrency: number,
) {
  return await withTimeout(
    pool(count, concurrency, async (i) => {
      const started = performance.now();
      const value = `${prefix}-${i}`;
      const result = await client.workflow.execute(oneActivityWorkflow, {
        taskQueue,
        workflowId: value,
        args: [value],
        workflowRunTimeout: '2 minutes',
      });
      if (result !== value) throw new Error(`workflow ${value} returned ${result}`);
      return performance.now() - started;
    }),
    parameters.timeouts.batchMs,
    `${count} workflows (${prefix})`,
  );
}

async function measureThroughput(bundlePath: string, db?: string): Promise<ThroughputResult> {
  const { warmupWorkflows, workflows, concurrency } = parameters.throughput;
  const taskQueue = `bench-throughput-${db ? 'db' : 'memory'}`;
  return await withStack({ db, taskQueue, bundlePath }, async ({ server, worker, client }) => {
    // Warm-up: JIT, the worker's workflow sandbox and the gRPC channels, outside the measured window.
    await runBatch(client, taskQueue, 'warmup', warmupWorkflows, concurrency);

    const workerPid = worker.child.pid!;
    const cpuBefore = { server: cpuSecondsOf(server.pid), worker: cpuSecondsOf(workerPid) };
    const clientBefore = process.cpuUsage();
    const started = performance.now();
    const latencies = await runBatch(client, taskQueue, 'measured', workflows, concurrency);
    const totalSeconds = (performance.now() - started) / 1000;
    const clientCpu = process.cpuUsage(clientBefore);
    const cpuSeconds = {
      server: round(cpuSecondsOf(server.pid) - cpuBefore.server, 2),
      worker: round(cpuSecondsOf(workerPid) - cpuBefore.worker, 2),
      client: round((clientCpu.user + clientCpu.system) / 1e6, 2),
    };

    const latency = stats(latencies);
    return {
      server: db ? 'data file (--db, fsync per change)' : 'in memory',
      workflows,
      concurrency,
      totalSeconds: round(totalSeconds, 2),
      workflowsPerSecond: round(workflows / totalSeconds),
      latencyMs: { p50: latency.p50, p95: latency.p95, max: latency.max },
      cpuSeconds,
      cpuMsPerWorkflow: {
        server: round((cpuSeconds.server * 1000) / workflows, 2),
        worker: round((cpuSeconds.worker * 1000) / workflows, 2),
      },
      rssAfterMiB: { server: memoryOf(server.pid).rssMiB, worker: memoryOf(workerPid).rssMiB },
      dataFileBytes: db ? statSync(db).size : undefined,
    };
  });
}

// ---------------------------------------------------------------------------------------------------
// 2. Memory with open workflows

interface MemoryResult {
  server: 'in memory';
  openWorkflows: number;
  idle: { serverMiB: number; workerMiB: number };
  open: { serverMiB: number; workerMiB: number; serverPeakMiB: number; workerPeakMiB: number };
  perOpenWorkflowKiB: { server: number; worker: number };
  afterRelease: { serverMiB: number; workerMiB: number };
  startSeconds: number;
  firstTaskSeconds: number;
  releaseSeconds: number;
}

/**
 * Waits until every workflow has completed its first workflow task: no pending task and at least the
 * four events started, task scheduled, task started, task completed.
 */
async function waitForFirstTasks(handles: WorkflowHandle[]): Promise<void> {
  let pending = handles;
  const deadline = Date.now() + parameters.timeouts.firstTaskMs;
  while (pending.length > 0) {
    if (Date.now() > deadline) throw new Error(`${pending.length} workflows never ran their first task`);
    const done = await pool(pending.length, 50, async (i) => {
      const description = await pending[i]!.describe();
      return description.historyLength >= 4 && !description.raw.pendingWorkflowTask;
    });
    pending = pending.filter((_, i) => !done[i]);
    if (pending.length > 0) await sleep(200);
  }
}

async function measureMemory(bundlePath: string): Promise<MemoryResult> {
  const { openWorkflows, startConcurrency, settleMs } = parameters.memory;
  const taskQueue = 'bench-memory';
  return await withStack({ taskQueue, bundlePath }, async ({ server, worker, client }) => {
    const workerPid = worker.child.pid!;
    await sleep(settleMs);
    const idle = { server: memoryOf(server.pid), worker: memoryOf(workerPid) };

    let mark = performance.now();
    const handles = await withTimeout(
      pool(openWorkflows, startConcurrency, (i) =>
        client.workflow.start(waitForSignalWorkflow, {
          taskQueue,
          workflowId: `open-${i}`,
          workflowRunTimeout: '10 minutes',
        }),
      ),
      parameters.timeouts.batchMs,
      `starting ${openWorkflows} workflows`,
    );
    const startSeconds = (performance.now() - mark) / 1000;
    mark = performance.now();
    await waitForFirstTasks(handles);
    const firstTaskSeconds = (performance.now() - mark) / 1000;
    // Let in-flight replies and garbage collection settle before reading RSS.
    await sleep(settleMs);
    const open = { server: memoryOf(server.pid), worker: memoryOf(workerPid) };

    // Release them all by signal and wait for every result, so the run ends with nothing open.
    mark = performance.now();
    const results = await withTimeout(
      pool(handles.length, startConcurrency, async (i) => {
        await handles[i]!.signal(releaseSignal);
        return await handles[i]!.result();
      }),
      parameters.timeouts.batchMs,
      `releasing ${openWorkflows} workflows`,
    );
    const releaseSeconds = (performance.now() - mark) / 1000;
    const notReleased = results.filter((released) => released !== true).length;
    if (notReleased > 0) throw new Error(`${notReleased} workflows ended without their signal`);
    await sleep(settleMs);
    const after = { server: memoryOf(server.pid), worker: memoryOf(workerPid) };

    const perWorkflowKiB = (openMiB: number, idleMiB: number) =>
      round(((openMiB - idleMiB) * 1024) / openWorkflows);
    return {
      server: 'in memory',
      openWorkflows,
      idle: { serverMiB: idle.server.rssMiB, workerMiB: idle.worker.rssMiB },
      open: {
        serverMiB: open.server.rssMiB,
        workerMiB: open.worker.rssMiB,
        serverPeakMiB: open.server.peakRssMiB,
        workerPeakMiB: open.worker.peakRssMiB,
      },
      perOpenWorkflowKiB: {
        server: perWorkflowKiB(open.server.rssMiB, idle.server.rssMiB),
        worker: perWorkflowKiB(open.worker.rssMiB, idle.worker.rssMiB),
      },
      afterRelease: { serverMiB: after.server.rssMiB, workerMiB: after.worker.rssMiB },
      startSeconds: round(startSeconds, 2),
      firstTaskSeconds: round(firstTaskSeconds, 2),
      releaseSeconds: round(releaseSeconds, 2),
    };
  });
}

// ---------------------------------------------------------------------------------------------------
// Context for reading the numbers: what each launcher costs at rest, how fast this disk syncs

/**
 * Idle RSS of a freshly started server through each launcher: the CLI's share beyond the bare server is
 * the rest of Labline that `labline devserver` loads. A launcher that fails to start is reported, not fatal.
 */
async function idleServerRss(): Promise<Record<ServerLauncher, number | string>> {
  const result = {} as Record<ServerLauncher, number | string>;
  for (const launcher of Object.keys(serverLaunchers) as ServerLauncher[]) {
    try {
      const server = await startServer(undefined, launcher);
      await sleep(parameters.memory.settleMs);
      result[launcher] = memoryOf(server.pid).rssMiB;
      await stopProcess(server.process, parameters.timeouts.processStopMs);
    } catch (error) {
      result[launcher] = `failed to start: ${String((error as Error).message).split('\n')[0]}`;
    }
  }
  return result;
}

/** Mean time of one small append + fdatasync in `dir`, what the --db server pays per group commit. */
function fsyncMs(dir: string): number {
  const file = path.join(dir, 'fsync-probe');
  const fd = openSync(file, 'a');
  const rounds = 200;
  const started = performance.now();
  try {
    for (let i = 0; i < rounds; i++) {
      writeSync(fd, 'x'.repeat(1024) + '\n');
      fdatasyncSync(fd);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  return round((performance.now() - started) / rounds, 3);
}

// ---------------------------------------------------------------------------------------------------
// Run, record, summarise

function summary(report: {
  throughput: { memory: ThroughputResult; dataFile: ThroughputResult };
  memory: MemoryResult & { idleServerByLauncherMiB: Record<ServerLauncher, number | string> };
}): string {
  const line = (name: string, t: ThroughputResult) =>
    `  ${name.padEnd(10)} ${t.workflowsPerSecond} workflows/s (${t.workflows} in ${t.totalSeconds} s, ` +
    `${t.concurrency} in flight), latency p50 ${t.latencyMs.p50} ms, p95 ${t.latencyMs.p95} ms; ` +
    `CPU ms/workflow server ${t.cpuMsPerWorkflow.server}, worker ${t.cpuMsPerWorkflow.worker}`;
  const m = report.memory;
  return [
    'Throughput (one activity per workflow):',
    line('in memory', report.throughput.memory),
    line('data file', report.throughput.dataFile),
    `Memory with ${m.openWorkflows} open workflows waiting on a signal (RSS):`,
    `  server ${m.open.serverMiB} MiB (idle ${m.idle.serverMiB}, ~${m.perOpenWorkflowKiB.server} KiB/workflow, ` +
      `${m.afterRelease.serverMiB} after release)`,
    `  worker ${m.open.workerMiB} MiB (idle ${m.idle.workerMiB}, ~${m.perOpenWorkflowKiB.worker} KiB/workflow, ` +
      `${m.afterRelease.workerMiB} after release)`,
    `  started in ${m.startSeconds} s, first tasks done ${m.firstTaskSeconds} s later, released in ${m.releaseSeconds} s`,
    `Idle server RSS by launcher (MiB): cli ${m.idleServerByLauncherMiB.cli}, bare ${m.idleServerByLauncherMiB.bare}`,
  ].join('\n');
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'labline-bench-'));
  try {
    console.log('bundling workflow code…');
    const bundlePath = await bundleWorkflows(path.join(__dirname, 'devserver-workflows.ts'), dir);
    console.log('throughput, server in memory…');
    const memoryServer = await measureThroughput(bundlePath);
    console.log('throughput, server with a data file…');
    const dataFileServer = await measureThroughput(bundlePath, path.join(dir, 'devserver.wal'));
    console.log(`memory with ${parameters.memory.openWorkflows} open workflows…`);
    const memory = await measureMemory(bundlePath);
    console.log('idle server RSS by launcher…');
    const idleServerByLauncherMiB = await idleServerRss();

    const report = {
      ...resultHeader('devserver'),
      machine: {
        ...machineInfo(),
        // fsync is what makes --db slow on a real disk; on this machine it may be nearly free.
        appendAndFdatasyncMs: fsyncMs(dir),
      },
      parameters: {
        ...parameters,
        topology:
          `server: ${parameters.serverLauncher === 'cli' ? '`labline devserver`' : 'bench/devserver-server.ts'} ` +
          'process on 127.0.0.1; worker: bench/devserver-worker.ts process (SDK defaults except ' +
          'maxCachedWorkflows); client: this process',
      },
      throughput: { memory: memoryServer, dataFile: dataFileServer },
      memory: { ...memory, idleServerByLauncherMiB },
      notes: [
        'latencyMs: from client.workflow.start to its result, per workflow; p50/p95 by nearest rank.',
        'cpuSeconds: user + system CPU of each process (all threads) during the measured batch, from /proc.',
        'RSS from VmRSS (peak: VmHWM) in /proc/<pid>/status. perOpenWorkflowKiB = (open - idle RSS) / ' +
          'openWorkflows; it includes V8 heap headroom, so expect it to move by tens of percent between runs.',
      ],
    };
    writeResult(resultFile, report, summary(report));
  } finally {
    killAllNow();
    rmSync(dir, { recursive: true, force: true });
  }
}

runBenchmark(main, { wholeRunMs: parameters.timeouts.wholeRunMs });
