/**
 * Benchmark of the embedded dev server (src/devserver) against the real Temporal dev server
 * (`temporal server start-dev`), both driven by the real Temporal SDK with the same workloads.
 *
 *   npx tsx bench/devserver.ts                         (npm run bench:devserver; both servers)
 *   npx tsx bench/devserver.ts --embedded-only         (no Temporal CLI needed)
 *   npx tsx bench/devserver.ts --servers=temporal-cli  (one of them; default --servers=embedded,temporal-cli)
 *
 * On each server:
 * 1. Throughput: workflows of one activity each, completed per second, and their start→result latency, with
 *    the server in memory and with it persisting to a data file (embedded: --db, fsync on every change;
 *    real: its SQLite store, --db-filename).
 * 2. Memory: RSS of the server and of the worker holding 1,000 open workflows that wait for a signal.
 * 3. Listing: 1,000 closed workflows carrying a search attribute (LablineProject), listed by it: the time to
 *    page through all of them, after waiting (bounded) until visibility counts all 1,000, since the real
 *    server's visibility is eventually consistent.
 * Each measurement runs on one server, then on the other, before the next measurement, so that other work
 * starting or stopping on the machine during the run weighs on both servers alike. Then the comparison:
 * every ratio embedded / real, and whether the embedded server's goals hold (throughput at least the real
 * server's, less memory).
 *
 * The server and the worker each run in their own process (the embedded server through the `labline
 * devserver` CLI, the real one as the Temporal CLI's own process; the worker through
 * bench/devserver-worker.ts), so each RSS and CPU time is its own and the client load generated here does
 * not share their event loops. Writes bench/results/devserver.json.
 *
 * `--bare-server` runs the embedded server through bench/devserver-server.ts instead, a process that loads
 * only src/devserver: the CLI also loads the rest of Labline, which the server's RSS then includes.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import {
  closeSync,
  fdatasyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { cliScript, type RunningProcess } from '../tests/support/processes';
import {
  compareServers,
  summary,
  type ListingResult,
  type MemoryResult,
  type ServerResult,
  type ThroughputResult,
} from './devserver-report';
import { oneActivityWorkflow, releaseSignal, waitForSignalWorkflow } from './devserver-workflows';
import {
  bundleWorkflows,
  selectServers,
  startEmbeddedServer,
  startRealServer,
  withServerAndWorker,
  type Server,
  type ServerKind,
  type ServerTarget,
} from './stack';
import {
  cpuSecondsOf,
  killAllNow,
  loadAverages,
  machineInfo,
  memoryOf,
  pool,
  resultHeader,
  round,
  runBenchmark,
  sleep,
  sourceState,
  stats,
  withTimeout,
  writeResult,
} from './support';

const resultFile = path.join(__dirname, 'results', 'devserver.json');
const workerScript = path.join(__dirname, 'devserver-worker.ts');
const namespace = 'default';

const embeddedLaunchers = {
  cli: { script: cliScript, args: ['devserver', '--port', '0', '--log-level', 'warn'], dbFlag: ['--db'] },
  bare: { script: path.join(__dirname, 'devserver-server.ts'), args: [], dbFlag: [] },
} as const;
type EmbeddedLauncher = keyof typeof embeddedLaunchers;

const selection = selectServers();
const embeddedLauncher: EmbeddedLauncher = process.argv.includes('--bare-server') ? 'bare' : 'cli';

const parameters = {
  servers: selection.targets.map((t) => t.kind),
  embeddedLauncher,
  // The warm-up is long because throughput kept rising over the first few hundred workflows (JIT in
  // three processes); 1,000 measured workflows keep the ramp-up and drain of the batch a small share.
  throughput: { warmupWorkflows: 300, workflows: 1000, concurrency: 50 },
  memory: { openWorkflows: 1000, startConcurrency: 50, settleMs: 2000 },
  listing: {
    closedWorkflows: 1000,
    startConcurrency: 50,
    // The real server refuses ORDER BY, so the query does not sort; both servers page in their own order.
    query: 'LablineProject = "bench-list" AND ExecutionStatus = "Completed"',
    searchAttributes: { LablineProject: ['bench-list'] },
    // One unmeasured listing first (the client's JIT and the server's caches), then the measured ones.
    warmupListings: 1,
    listings: 5,
    countPollMs: 250,
  },
  // Above the number of open workflows, so the worker keeps all of them cached on any machine.
  workerMaxCachedWorkflows: 1500,
  timeouts: {
    processStartMs: 60_000,
    batchMs: 180_000,
    firstTaskMs: 120_000,
    visibilityMs: 120_000,
    listMs: 60_000,
    processStopMs: 10_000,
    wholeRunMs: 25 * 60_000,
  },
};

// ---------------------------------------------------------------------------------------------------
// Processes: a server of the chosen kind, a worker polling one task queue, a client here

function startServer(
  target: ServerTarget,
  dataFile?: string,
  launcher = parameters.embeddedLauncher,
): Promise<Server> {
  if (target.kind === 'temporal-cli')
    return startRealServer(target.cli, {
      dbFile: dataFile,
      processStartMs: parameters.timeouts.processStartMs,
    });
  const { script, args, dbFlag } = embeddedLaunchers[launcher];
  return startEmbeddedServer(
    script,
    [...args, ...(dataFile ? [...dbFlag, dataFile] : [])],
    parameters.timeouts,
  );
}

interface StackOptions {
  target: ServerTarget;
  dataFile?: string;
  taskQueue: string;
  bundlePath: string;
}

/** A server, a worker polling `taskQueue` and a client, stopped together. */
function withStack<T>(
  options: StackOptions,
  fn: (stack: { server: Server; worker: RunningProcess; client: Client }) => Promise<T>,
): Promise<T> {
  return withServerAndWorker(
    {
      startServer: () => startServer(options.target, options.dataFile),
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

const loadNow = () => loadAverages()[0]!;

// ---------------------------------------------------------------------------------------------------
// 1. Throughput

/** Starts `count` one-activity workflows, `concurrency` at a time; returns each start→result latency. */
async function runBatch(
  client: Client,
  taskQueue: string,
  prefix: string,
  count: number,
  concurrency: number,
  searchAttributes?: Record<string, string[]>,
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
        searchAttributes,
      });
      if (result !== value) throw new Error(`workflow ${value} returned ${result}`);
      return performance.now() - started;
    }),
    parameters.timeouts.batchMs,
    `${count} workflows (${prefix})`,
  );
}

const bytesIn = (dir: string) =>
  readdirSync(dir).reduce((sum, file) => sum + statSync(path.join(dir, file)).size, 0);

async function measureThroughput(
  target: ServerTarget,
  bundlePath: string,
  dataDir?: string,
): Promise<ThroughputResult> {
  const { warmupWorkflows, workflows, concurrency } = parameters.throughput;
  const taskQueue = `bench-throughput-${dataDir ? 'db' : 'memory'}`;
  const dataFile =
    dataDir && path.join(dataDir, target.kind === 'embedded' ? 'devserver.wal' : 'temporal.db');
  const load = loadNow();
  return await withStack({ target, dataFile, taskQueue, bundlePath }, async ({ server, worker, client }) => {
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
      storage: dataDir ? 'data file' : 'in memory',
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
      dataBytes: dataDir ? bytesIn(dataDir) : undefined,
      loadAverage1m: { before: load, after: loadNow() },
    };
  });
}

// ---------------------------------------------------------------------------------------------------
// 2. Memory with open workflows

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

async function measureMemory(target: ServerTarget, bundlePath: string): Promise<MemoryResult> {
  const { openWorkflows, startConcurrency, settleMs } = parameters.memory;
  const taskQueue = 'bench-memory';
  const load = loadNow();
  return await withStack({ target, taskQueue, bundlePath }, async ({ server, worker, client }) => {
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
      storage: 'in memory',
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
      loadAverage1m: { before: load, after: loadNow() },
    };
  });
}

// ---------------------------------------------------------------------------------------------------
// 3. Listing closed workflows by a search attribute

/** Polls the count of `query` (bounded) until it reaches `expected`; returns how many counts it took. */
async function waitForVisibility(client: Client, query: string, expected: number): Promise<number> {
  const deadline = Date.now() + parameters.timeouts.visibilityMs;
  for (let counts = 1; ; counts++) {
    const last = (await client.workflow.count(query)).count;
    if (last >= expected) return counts;
    if (Date.now() > deadline)
      throw new Error(
        `visibility counted ${last} of ${expected} for ${query} after ${parameters.timeouts.visibilityMs} ms`,
      );
    await sleep(parameters.listing.countPollMs);
  }
}

/** Pages through every workflow `query` matches; returns how many and how long it took (ms). */
async function listAll(client: Client, query: string): Promise<{ listed: number; ms: number }> {
  const started = performance.now();
  let listed = 0;
  const listing = async () => {
    // Bounded by the time limit around it; the count check below catches a short or long listing.
    for await (const _ of client.workflow.list({ query })) listed++;
  };
  await withTimeout(listing(), parameters.timeouts.listMs, `listing ${query}`);
  return { listed, ms: performance.now() - started };
}

async function measureListing(target: ServerTarget, bundlePath: string): Promise<ListingResult> {
  const { closedWorkflows, startConcurrency, query, searchAttributes, warmupListings, listings } =
    parameters.listing;
  const taskQueue = 'bench-listing';
  const load = loadNow();
  return await withStack({ target, taskQueue, bundlePath }, async ({ client }) => {
    let mark = performance.now();
    await runBatch(client, taskQueue, 'listed', closedWorkflows, startConcurrency, searchAttributes);
    const runSeconds = (performance.now() - mark) / 1000;
    mark = performance.now();
    const counts = await waitForVisibility(client, query, closedWorkflows);
    const visibilityCatchUpSeconds = (performance.now() - mark) / 1000;

    const perListingMs: number[] = [];
    for (let i = 0; i < warmupListings + listings; i++) {
      const { listed, ms } = await listAll(client, query);
      if (listed !== closedWorkflows)
        throw new Error(`listing ${query} returned ${listed} workflows, expected ${closedWorkflows}`);
      if (i >= warmupListings) perListingMs.push(round(ms));
    }
    return {
      storage: 'in memory',
      query,
      closedWorkflows,
      runSeconds: round(runSeconds, 2),
      visibilityCatchUpSeconds: round(visibilityCatchUpSeconds, 2),
      counts,
      listMs: stats(perListingMs),
      perListingMs,
      loadAverage1m: { before: load, after: loadNow() },
    };
  });
}

// ---------------------------------------------------------------------------------------------------
// Context for reading the numbers: what each embedded launcher costs at rest, how fast this disk syncs

/**
 * Idle RSS of a freshly started embedded server through each launcher: the CLI's share beyond the bare
 * server is the rest of Labline that `labline devserver` loads. A launcher that fails to start is reported,
 * not fatal.
 */
async function idleEmbeddedServerRss(): Promise<Record<EmbeddedLauncher, number | string>> {
  const result = {} as Record<EmbeddedLauncher, number | string>;
  for (const launcher of Object.keys(embeddedLaunchers) as EmbeddedLauncher[]) {
    try {
      const server = await startServer({ kind: 'embedded' }, undefined, launcher);
      await sleep(parameters.memory.settleMs);
      result[launcher] = memoryOf(server.pid).rssMiB;
      await server.stop();
    } catch (error) {
      result[launcher] = `failed to start: ${String((error as Error).message).split('\n')[0]}`;
    }
  }
  return result;
}

/** Mean time of one small append + fdatasync in `dir`, what a data file pays per group commit. */
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
// Every measurement on every server

const describeServer = (target: ServerTarget) =>
  target.kind === 'embedded'
    ? `embedded (${parameters.embeddedLauncher === 'cli' ? '`labline devserver`' : 'bench/devserver-server.ts'}; ` +
      'data file: --db, fsync per change)'
    : `real Temporal dev server (${selection.temporalCliVersion}; \`temporal server start-dev --headless\`; ` +
      'data file: SQLite, --db-filename)';

/**
 * Each measurement on every server before the next measurement, not every measurement on one server and
 * then on the other: when other work on the machine starts or stops during the run, the change then falls
 * on both servers' figures of a measurement alike instead of on whichever server ran later.
 */
async function measureServers(
  bundlePath: string,
  dir: string,
): Promise<Partial<Record<ServerKind, ServerResult>>> {
  const { targets } = selection;
  const each = async <T>(what: string, measure: (target: ServerTarget) => Promise<T>) => {
    const results = new Map<ServerKind, T>();
    for (const target of targets) {
      console.log(`${target.kind}: ${what}…`);
      results.set(target.kind, await measure(target));
    }
    return results;
  };
  const inMemory = await each('throughput, server in memory', (t) => measureThroughput(t, bundlePath));
  const withDataFile = await each('throughput, server with a data file', (t) => {
    const dataDir = path.join(dir, `${t.kind}-data`);
    mkdirSync(dataDir);
    return measureThroughput(t, bundlePath, dataDir);
  });
  const memory = await each(`memory with ${parameters.memory.openWorkflows} open workflows`, (t) =>
    measureMemory(t, bundlePath),
  );
  const listing = await each(
    `listing ${parameters.listing.closedWorkflows} closed workflows by a search attribute`,
    (t) => measureListing(t, bundlePath),
  );
  let idleServerByLauncherMiB: ServerResult['idleServerByLauncherMiB'];
  if (targets.some((t) => t.kind === 'embedded')) {
    console.log('embedded: idle server RSS by launcher…');
    idleServerByLauncherMiB = await idleEmbeddedServerRss();
  }
  return Object.fromEntries(
    targets.map((t) => [
      t.kind,
      {
        server: describeServer(t),
        throughput: { memory: inMemory.get(t.kind)!, dataFile: withDataFile.get(t.kind)! },
        memory: memory.get(t.kind)!,
        listing: listing.get(t.kind)!,
        ...(t.kind === 'embedded' ? { idleServerByLauncherMiB } : {}),
      } satisfies ServerResult,
    ]),
  );
}

// ---------------------------------------------------------------------------------------------------
// Run and record

async function main(): Promise<void> {
  const loadAtStart = loadAverages();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'labline-bench-'));
  try {
    console.log('bundling workflow code…');
    const bundlePath = await bundleWorkflows(path.join(__dirname, 'devserver-workflows.ts'), dir);
    const results = await measureServers(bundlePath, dir);
    const comparison = compareServers(results);

    const report = {
      ...resultHeader('devserver'),
      source: sourceState(),
      machine: {
        ...machineInfo(),
        // fsync is what makes a data file slow on a real disk; on this machine it may be nearly free.
        appendAndFdatasyncMs: fsyncMs(dir),
        loadAverageAtStart: loadAtStart,
        loadAverageAtEnd: loadAverages(),
      },
      temporalCli: selection.temporalCliVersion ?? 'not used',
      parameters: {
        ...parameters,
        topology:
          'server: the embedded one through ' +
          `${parameters.embeddedLauncher === 'cli' ? '`labline devserver`' : 'bench/devserver-server.ts'}, or ` +
          "`temporal server start-dev --headless --log-level warn` with Labline's search attributes, one " +
          'process on 127.0.0.1, fresh for each measurement; worker: bench/devserver-worker.ts process (SDK ' +
          'defaults except maxCachedWorkflows); client: this process; each measurement on one server, then ' +
          'on the other, then the next measurement: never both servers at the same time',
      },
      servers: results,
      comparison,
      notes: [
        'latencyMs: from client.workflow.start to its result, per workflow; p50/p95 by nearest rank.',
        'cpuSeconds: user + system CPU of each process (all threads) during the measured batch, from /proc.',
        'RSS from VmRSS (peak: VmHWM) in /proc/<pid>/status. perOpenWorkflowKiB = (open - idle RSS) / ' +
          'openWorkflows; it includes V8 (embedded) or Go (real) heap headroom, so expect it to move by tens ' +
          'of percent between runs.',
        'listMs: paging through every match of the query with client.workflow.list (decoding included), ' +
          'after visibility counted all of them; the real server pages by its default page size.',
        "loadAverage1m: the machine's 1-minute load average before and after each measurement; on 2 cores, " +
          'a load above ~2 at either point means other work competed with the measured processes.',
      ],
    };
    writeResult(resultFile, report, summary(results, comparison));
  } finally {
    killAllNow();
    rmSync(dir, { recursive: true, force: true });
  }
}

runBenchmark(main, { wholeRunMs: parameters.timeouts.wholeRunMs });
