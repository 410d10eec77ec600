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
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  fdatasyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { cliScript, startTsProcess, type RunningProcess } from '../tests/support/processes';
import { oneActivityWorkflow, releaseSignal, waitForSignalWorkflow } from './devserver-workflows';

const root = path.resolve(__dirname, '..');
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
// Small helpers: bounded waits, bounded concurrency, /proc readings

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Rejects after `ms`; the losing promise's later rejection is swallowed so it cannot crash the run. */
async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  promise.catch(() => undefined);
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `fn(0..count-1)` with at most `concurrency` calls in flight; results in index order. */
async function pool<T>(count: number, concurrency: number, fn: (index: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const index = next++;
      results[index] = await fn(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  return results;
}

/** Nearest-rank percentile of an ascending-sorted array. */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

const round = (value: number, digits = 1) => Number(value.toFixed(digits));

/** Current and peak resident set size of a process, in MiB, from /proc/<pid>/status. */
function memoryOf(pid: number): { rssMiB: number; peakRssMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: round(kib('VmRSS') / 1024), peakRssMiB: round(kib('VmHWM') / 1024) };
}

const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU seconds a process has used, from /proc/<pid>/stat (fields 14 and 15). */
function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces; the fields after its closing parenthesis do not.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

// ---------------------------------------------------------------------------------------------------
// Processes: every child is tracked so that it is killed at the end, even on error or timeout

const children: RunningProcess[] = [];

function spawnTracked(script: string, args: string[]): RunningProcess {
  const child = startTsProcess(script, args);
  children.push(child);
  return child;
}

const hasExited = (p: RunningProcess) => p.child.exitCode !== null || p.child.signalCode !== null;

/** SIGTERM, so the process shuts down cleanly; SIGKILL if it has not exited within the time limit. */
async function stopProcess(p: RunningProcess): Promise<void> {
  if (hasExited(p)) return;
  const exited = new Promise<void>((resolve) => p.child.once('exit', () => resolve()));
  p.child.kill('SIGTERM');
  try {
    await withTimeout(exited, parameters.timeouts.processStopMs, `process ${p.child.pid} to exit`);
  } catch {
    await p.kill('SIGKILL');
  }
}

function killAllNow(): void {
  for (const p of children) if (!hasExited(p)) p.child.kill('SIGKILL');
}

interface Server {
  process: RunningProcess;
  pid: number;
  address: string;
}

async function startServer(db?: string, launcher = parameters.serverLauncher): Promise<Server> {
  const { script, args, dbFlag } = serverLaunchers[launcher];
  const p = spawnTracked(script, [...args, ...(db ? [...dbFlag, db] : [])]);
  const match = await p.waitFor(/listening on (127\.0\.0\.1:\d+)/, parameters.timeouts.processStartMs);
  return { process: p, pid: p.child.pid!, address: match[1]! };
}

async function startWorker(address: string, taskQueue: string, bundlePath: string): Promise<RunningProcess> {
  const p = spawnTracked(workerScript, [
    address,
    namespace,
    taskQueue,
    bundlePath,
    String(parameters.workerMaxCachedWorkflows),
  ]);
  await p.waitFor(/worker ready/, parameters.timeouts.processStartMs);
  return p;
}

/** Rejects when `p` exits, with the end of its output. */
function exitOf(p: RunningProcess, name: string): Promise<never> {
  return new Promise((_, reject) =>
    p.child.once('exit', (code, signal) =>
      reject(new Error(`the ${name} exited (${signal ?? code}) during the run:\n${p.output().slice(-2000)}`)),
    ),
  );
}

/** A server, a worker polling `taskQueue` and a client, stopped together. */
async function withStack<T>(
  options: { db?: string; taskQueue: string; bundlePath: string },
  fn: (stack: { server: Server; worker: RunningProcess; client: Client }) => Promise<T>,
): Promise<T> {
  const server = await startServer(options.db);
  let worker: RunningProcess | undefined;
  let connection: Connection | undefined;
  try {
    worker = await startWorker(server.address, options.taskQueue, options.bundlePath);
    connection = await withTimeout(
      Connection.connect({ address: server.address }),
      parameters.timeouts.processStartMs,
      'client connection',
    );
    // A crashed server or worker fails the run at once instead of at the batch's time limit.
    const crashed = Promise.race([exitOf(server.process, 'server'), exitOf(worker, 'worker')]);
    crashed.catch(() => undefined);
    return await Promise.race([
      fn({ server, worker, client: new Client({ connection, namespace }) }),
      crashed,
    ]);
  } finally {
    await connection?.close();
    if (worker) await stopProcess(worker);
    await stopProcess(server.process);
  }
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

    latencies.sort((a, b) => a - b);
    return {
      server: db ? 'data file (--db, fsync per change)' : 'in memory',
      workflows,
      concurrency,
      totalSeconds: round(totalSeconds, 2),
      workflowsPerSecond: round(workflows / totalSeconds),
      latencyMs: {
        p50: round(percentile(latencies, 50)),
        p95: round(percentile(latencies, 95)),
        max: round(latencies.at(-1)!),
      },
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
      await stopProcess(server.process);
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

async function bundle(dir: string): Promise<string> {
  const quiet = () => undefined;
  const { code } = await bundleWorkflowCode({
    workflowsPath: path.join(__dirname, 'devserver-workflows.ts'),
    logger: {
      log: quiet,
      trace: quiet,
      debug: quiet,
      info: quiet,
      warn: quiet,
      error: (m) => console.error(m),
    },
  });
  const file = path.join(dir, 'workflows.js');
  writeFileSync(file, code);
  return file;
}

function sdkVersion(): string {
  const pkg = path.join(root, 'node_modules/@temporalio/worker/package.json');
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}

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
    const bundlePath = await bundle(dir);
    console.log('throughput, server in memory…');
    const memoryServer = await measureThroughput(bundlePath);
    console.log('throughput, server with a data file…');
    const dataFileServer = await measureThroughput(bundlePath, path.join(dir, 'devserver.wal'));
    console.log(`memory with ${parameters.memory.openWorkflows} open workflows…`);
    const memory = await measureMemory(bundlePath);
    console.log('idle server RSS by launcher…');
    const idleServerByLauncherMiB = await idleServerRss();

    const report = {
      benchmark: 'devserver',
      date: new Date().toISOString(),
      node: process.version,
      temporalSdk: sdkVersion(),
      machine: {
        platform: `${os.platform()} ${os.release()}`,
        arch: os.arch(),
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        totalMemoryMiB: Math.round(os.totalmem() / 1024 / 1024),
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
    mkdirSync(path.dirname(resultFile), { recursive: true });
    writeFileSync(resultFile, JSON.stringify(report, null, 2) + '\n');
    console.log(summary(report));
    console.log(`wrote ${path.relative(root, resultFile)}`);
  } finally {
    killAllNow();
    rmSync(dir, { recursive: true, force: true });
  }
}

// A hard ceiling on the whole run: whatever hangs, the children die and the process exits.
setTimeout(() => {
  console.error(`bench: the run exceeded ${parameters.timeouts.wholeRunMs} ms; killing everything`);
  killAllNow();
  process.exit(1);
}, parameters.timeouts.wholeRunMs).unref();

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAllNow();
    process.exit(130);
  });
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    killAllNow();
    process.exit(1);
  },
);
