/**
 * How fast `labline` answers, as a person at a terminal sees it: the wall time of each command, from the
 * process's start to its exit, on each server side by side.
 *
 *   npx tsx bench/cli.ts                 # both servers, 10,000 parked experiments
 *   npx tsx bench/cli.ts --embedded-only --experiments=2000
 *
 * Per server: `labline server --detach` in a fresh folder, the quickstart run through it, then each command
 * run `--runs` times (after one unmeasured run): `--version`, `--help`, `schema` (no server needed), `status`
 * and `list`; `--version` and `status` also from the TypeScript sources (LABLINE_FROM_SOURCE=1, as before the
 * compiled build). Then `--experiments` workflows are started on a task queue no worker polls (they stay in
 * visibility as open experiments) and `list` and `status` are measured again. Goals: a command that needs no
 * server under 300 ms, `status` under 500 ms, `list` and `status` under a second with 10,000 experiments.
 * Writes bench/results/cli.json.
 */
import { Client, Connection } from '@temporalio/client';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ratio } from './comparison';
import { selectServers } from './stack';
import {
  loadAverages,
  machineInfo,
  pool,
  resultHeader,
  runBenchmark,
  sourceState,
  stats,
  writeResult,
  type Stats,
} from './support';

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'bin', 'labline.js');

function flag(name: string, fallback: number): number {
  const given = process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  if (given === undefined) return fallback;
  const value = Number(given);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name}=${given}: give a whole number ≥ 1`);
  return value;
}

const runs = flag('runs', 7);
const parked = flag('experiments', 10_000);
const resultFile = path.join(root, 'bench', 'results', 'cli.json');
const localEnv = { ...process.env, TEMPORAL_ADDRESS: '', TEMPORAL_PROFILE: '', LABLINE_USER: 'bench' };

/** Runs `labline args` in `cwd` and returns its wall time in ms; a failing command stops the run. */
function timed(args: string[], cwd: string, env: NodeJS.ProcessEnv = localEnv): number {
  const started = process.hrtime.bigint();
  try {
    execFileSync(process.execPath, [cli, ...args], { cwd, env, stdio: 'pipe', timeout: 300_000 });
  } catch (error) {
    const e = error as { stdout?: Buffer; stderr?: Buffer };
    throw new Error(`labline ${args.join(' ')} failed:\n${e.stdout?.toString()}${e.stderr?.toString()}`, {
      cause: error,
    });
  }
  return Number(process.hrtime.bigint() - started) / 1e6;
}

/** `runs` measured runs after one unmeasured one (which warms the page cache). */
function measure(args: string[], cwd: string, env?: NodeJS.ProcessEnv): Stats {
  timed(args, cwd, env);
  return stats(Array.from({ length: runs }, () => timed(args, cwd, env)));
}

interface ServerResult {
  withOneExperiment: Record<string, Stats>;
  fromSource: Record<string, Stats>;
  parkedExperiments: number;
  parkSeconds: number;
  withParked: Record<string, Stats>;
  loadAverages: number[];
}

/** Starts `count` experiment workflows that no worker runs: open experiments in visibility. */
async function park(address: string, count: number): Promise<number> {
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace: 'default' });
  const started = Date.now();
  try {
    await pool(count, 50, (i) =>
      client.workflow.start('experimentWorkflow', {
        workflowId: `exp-bench-parked-${String(i).padStart(5, '0')}`,
        taskQueue: 'bench-parked-no-worker',
        args: [{}],
        searchAttributes: { LablineStage: ['registered'] },
        memo: { name: `parked ${i}` },
      }),
    );
  } finally {
    await connection.close();
  }
  return (Date.now() - started) / 1000;
}

async function benchServer(kind: string): Promise<ServerResult> {
  const cwd = mkdtempSync(path.join(tmpdir(), `labline-bench-cli-${kind}-`));
  symlinkSync(path.join(root, 'examples'), path.join(cwd, 'examples'));
  console.log(`${kind}: starting labline server in ${cwd}`);
  timed(['server', '--detach', '--server', kind], cwd);
  try {
    timed(['start', 'examples/quickstart.yaml', '--yes'], cwd);
    const commands: Record<string, string[]> = {
      '--version': ['--version'],
      '--help': ['--help'],
      schema: ['schema'],
      status: ['status', 'exp-quickstart'],
      list: ['list'],
    };
    const withOneExperiment: Record<string, Stats> = {};
    for (const [name, args] of Object.entries(commands)) {
      withOneExperiment[name] = measure(args, cwd);
      console.log(`${kind}: ${name} p50 ${withOneExperiment[name].p50} ms`);
    }
    const source = { ...localEnv, LABLINE_FROM_SOURCE: '1' };
    const fromSource = {
      '--version': measure(['--version'], cwd, source),
      status: measure(commands.status!, cwd, source),
    };
    console.log(
      `${kind}: from source --version p50 ${fromSource['--version'].p50} ms, status ${fromSource.status.p50} ms`,
    );

    const record = JSON.parse(readFileSync(path.join(cwd, '.labline', 'server.json'), 'utf8')) as {
      address: string;
    };
    console.log(`${kind}: parking ${parked} experiments`);
    const parkSeconds = await park(record.address, parked);
    const withParked = { list: measure(['list'], cwd), status: measure(commands.status!, cwd) };
    console.log(
      `${kind}: with ${parked} experiments: list p50 ${withParked.list.p50} ms, status ${withParked.status.p50} ms`,
    );
    return {
      withOneExperiment,
      fromSource,
      parkedExperiments: parked,
      parkSeconds,
      withParked,
      loadAverages: loadAverages(),
    };
  } finally {
    try {
      timed(['server', 'stop'], cwd);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  }
}

function goals(results: Record<string, ServerResult>) {
  const checks: { goal: string; holds: boolean; values: Record<string, number> }[] = [];
  const check = (goal: string, limitMs: number, pick: (r: ServerResult) => Record<string, Stats>) => {
    const values: Record<string, number> = {};
    for (const [kind, result] of Object.entries(results))
      for (const [name, s] of Object.entries(pick(result))) values[`${kind} ${name}`] = s.p50;
    checks.push({ goal, holds: Object.values(values).every((ms) => ms < limitMs), values });
  };
  check('--help, --version and schema under 300 ms (p50)', 300, (r) => ({
    '--help': r.withOneExperiment['--help']!,
    '--version': r.withOneExperiment['--version']!,
    schema: r.withOneExperiment.schema!,
  }));
  check('status under 500 ms (p50)', 500, (r) => ({ status: r.withOneExperiment.status! }));
  check(`list and status under 1 s (p50) with ${parked} experiments`, 1000, (r) => r.withParked);
  return checks;
}

async function main(): Promise<void> {
  const selection = selectServers();
  const results: Record<string, ServerResult> = {};
  for (const target of selection.targets) results[target.kind] = await benchServer(target.kind);
  const embedded = results.embedded;
  const real = results['temporal-cli'];
  const comparison = {
    'status p50 (embedded / real)': ratio(
      embedded?.withOneExperiment.status?.p50,
      real?.withOneExperiment.status?.p50,
    ),
    'list p50 (embedded / real)': ratio(
      embedded?.withOneExperiment.list?.p50,
      real?.withOneExperiment.list?.p50,
    ),
    [`list p50 with ${parked} (embedded / real)`]: ratio(
      embedded?.withParked.list?.p50,
      real?.withParked.list?.p50,
    ),
    [`status p50 with ${parked} (embedded / real)`]: ratio(
      embedded?.withParked.status?.p50,
      real?.withParked.status?.p50,
    ),
  };
  const checked = goals(results);
  const report = {
    ...resultHeader('cli'),
    source: sourceState(),
    machine: machineInfo(),
    temporalCli: selection.temporalCliVersion ?? null,
    parameters: { runs, parkedExperiments: parked },
    definitions: {
      wallTime:
        'from spawning `node bin/labline.js …` to its exit, in ms; nearest-rank percentiles over the runs',
      fromSource:
        'LABLINE_FROM_SOURCE=1: the TypeScript sources through tsx, as every command ran before the build',
      parked: 'experiment workflows started on a task queue no worker polls: open experiments in visibility',
    },
    goals: checked,
    comparison,
    servers: results,
  };
  const lines = checked.map(
    (g) =>
      `  ${g.holds ? 'met' : 'MISSED'}: ${g.goal} (${Object.entries(g.values)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})`,
  );
  writeResult(
    resultFile,
    report,
    ['cli:', ...lines, ...Object.entries(comparison).map(([k, v]) => `  ${k}: ${v}`)].join('\n'),
  );
}

runBenchmark(main, { wholeRunMs: 40 * 60_000 });
