/**
 * What bench/devserver.ts reports: the result of each measurement on one server, the comparison of the two
 * servers (ratios embedded / real, and whether the embedded server's goals hold) and the printed summary.
 */
import { judgeGoal, ratio, ratios, type Goal } from './comparison';
import type { ServerKind } from './stack';
import type { Stats } from './support';

// ---------------------------------------------------------------------------------------------------
// Results of one server

/** The 1-minute load average before and after a measurement: other work on the machine skews it. */
export interface Load {
  loadAverage1m: { before: number; after: number };
}

export interface ThroughputResult extends Load {
  storage: 'in memory' | 'data file';
  workflows: number;
  concurrency: number;
  totalSeconds: number;
  workflowsPerSecond: number;
  latencyMs: { p50: number; p95: number; max: number };
  cpuSeconds: { server: number; worker: number; client: number };
  cpuMsPerWorkflow: { server: number; worker: number };
  rssAfterMiB: { server: number; worker: number };
  /** All the server's files in its data folder (SQLite's -wal and -shm files included). */
  dataBytes?: number;
}

export interface MemoryResult extends Load {
  storage: 'in memory';
  openWorkflows: number;
  idle: { serverMiB: number; workerMiB: number };
  open: { serverMiB: number; workerMiB: number; serverPeakMiB: number; workerPeakMiB: number };
  perOpenWorkflowKiB: { server: number; worker: number };
  afterRelease: { serverMiB: number; workerMiB: number };
  startSeconds: number;
  firstTaskSeconds: number;
  releaseSeconds: number;
}

export interface ListingResult extends Load {
  storage: 'in memory';
  query: string;
  closedWorkflows: number;
  /** Running the 1,000 workflows to completion (not measured for the comparison). */
  runSeconds: number;
  /** From the last completion until visibility counted all of them, and how many counts that took. */
  visibilityCatchUpSeconds: number;
  counts: number;
  listMs: Stats;
  perListingMs: number[];
}

export interface ServerResult {
  server: string;
  throughput: { memory: ThroughputResult; dataFile: ThroughputResult };
  memory: MemoryResult;
  listing: ListingResult;
  idleServerByLauncherMiB?: Record<string, number | string>;
}

// ---------------------------------------------------------------------------------------------------
// Comparison: embedded / real

export function compareServers(results: Partial<Record<ServerKind, ServerResult>>) {
  const e = results.embedded;
  const r = results['temporal-cli'];
  const throughputOf = (t: ThroughputResult) => ({
    workflowsPerSecond: t.workflowsPerSecond,
    latencyP50Ms: t.latencyMs.p50,
    latencyP95Ms: t.latencyMs.p95,
    serverCpuMsPerWorkflow: t.cpuMsPerWorkflow.server,
    workerCpuMsPerWorkflow: t.cpuMsPerWorkflow.worker,
    serverRssAfterMiB: t.rssAfterMiB.server,
    workerRssAfterMiB: t.rssAfterMiB.worker,
  });
  const throughput = {
    inMemory: ratios(e?.throughput.memory, r?.throughput.memory, throughputOf),
    dataFile: {
      ...ratios(e?.throughput.dataFile, r?.throughput.dataFile, throughputOf),
      dataBytes: ratio(e?.throughput.dataFile.dataBytes, r?.throughput.dataFile.dataBytes),
    },
  };
  const memory = ratios(e?.memory, r?.memory, (m) => ({
    serverIdleMiB: m.idle.serverMiB,
    serverWithOpenWorkflowsMiB: m.open.serverMiB,
    serverPerOpenWorkflowKiB: m.perOpenWorkflowKiB.server,
    workerWithOpenWorkflowsMiB: m.open.workerMiB,
  }));
  const listing = ratios(e?.listing, r?.listing, (l) => ({
    listP50Ms: l.listMs.p50,
    listP95Ms: l.listMs.p95,
    visibilityCatchUpSeconds: l.visibilityCatchUpSeconds,
  }));
  const goals: Goal[] = [
    judgeGoal(
      'Throughput of the embedded server at least equal to the real one',
      {
        'workflows/s in memory': throughput.inMemory.workflowsPerSecond ?? null,
        'workflows/s with a data file': throughput.dataFile.workflowsPerSecond ?? null,
      },
      (x) => x >= 1,
    ),
    judgeGoal(
      'Embedded server uses less memory than the real one',
      {
        'server RSS idle': memory.serverIdleMiB ?? null,
        [`server RSS with ${e?.memory.openWorkflows ?? r?.memory.openWorkflows} open workflows`]:
          memory.serverWithOpenWorkflowsMiB ?? null,
        'server RSS after the in-memory batch': throughput.inMemory.serverRssAfterMiB ?? null,
        'server RSS after the data-file batch': throughput.dataFile.serverRssAfterMiB ?? null,
      },
      (x) => x < 1,
    ),
  ];
  return {
    definition:
      'embedded / real of the same figure: above 1 the embedded figure is larger (better for throughput, ' +
      'worse for latency, CPU, memory and time). null: not measured on both.',
    throughput,
    memory,
    listing,
    goals,
  };
}

// ---------------------------------------------------------------------------------------------------
// The printed summary

export function summary(
  results: Partial<Record<ServerKind, ServerResult>>,
  comparison: ReturnType<typeof compareServers>,
): string {
  const line = (name: string, t: ThroughputResult) =>
    `    ${name.padEnd(10)} ${t.workflowsPerSecond} workflows/s (${t.workflows} in ${t.totalSeconds} s, ` +
    `${t.concurrency} in flight), latency p50 ${t.latencyMs.p50} ms, p95 ${t.latencyMs.p95} ms; ` +
    `CPU ms/workflow server ${t.cpuMsPerWorkflow.server}, worker ${t.cpuMsPerWorkflow.worker}; ` +
    `server RSS ${t.rssAfterMiB.server} MiB`;
  const lines: string[] = [];
  for (const [kind, result] of Object.entries(results)) {
    const m = result.memory;
    const l = result.listing;
    lines.push(
      `${kind}: ${result.server}`,
      '  throughput (one activity per workflow):',
      line('in memory', result.throughput.memory),
      line('data file', result.throughput.dataFile),
      `  memory with ${m.openWorkflows} open workflows waiting on a signal (RSS):`,
      `    server ${m.open.serverMiB} MiB (idle ${m.idle.serverMiB}, ~${m.perOpenWorkflowKiB.server} KiB/workflow, ` +
        `${m.afterRelease.serverMiB} after release)`,
      `    worker ${m.open.workerMiB} MiB (idle ${m.idle.workerMiB}, ~${m.perOpenWorkflowKiB.worker} KiB/workflow, ` +
        `${m.afterRelease.workerMiB} after release)`,
      `  listing ${l.closedWorkflows} closed workflows by LablineProject: p50 ${l.listMs.p50} ms, ` +
        `p95 ${l.listMs.p95} ms (visibility caught up ${l.visibilityCatchUpSeconds} s after the last completion)`,
    );
    if (result.idleServerByLauncherMiB)
      lines.push(
        `  idle server RSS by launcher (MiB): cli ${result.idleServerByLauncherMiB.cli}, ` +
          `bare ${result.idleServerByLauncherMiB.bare}`,
      );
  }
  const t = comparison.throughput;
  lines.push(
    'embedded / real:',
    `  workflows/s in memory ${t.inMemory.workflowsPerSecond}, data file ${t.dataFile.workflowsPerSecond}; ` +
      `latency p50 ${t.inMemory.latencyP50Ms} / ${t.dataFile.latencyP50Ms}, p95 ${t.inMemory.latencyP95Ms} / ` +
      `${t.dataFile.latencyP95Ms} (memory / data file)`,
    `  server RSS idle ${comparison.memory.serverIdleMiB}, with open workflows ` +
      `${comparison.memory.serverWithOpenWorkflowsMiB}; list time p50 ${comparison.listing.listP50Ms}`,
    ...comparison.goals.map((g) => `  ${g.statement}`),
  );
  return lines.join('\n');
}
