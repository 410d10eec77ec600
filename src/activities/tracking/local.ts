import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { z } from 'zod';
import { isErrno, isProcessAlive, listAttempts, readAttemptState } from '../training/local-attempt';
import {
  RunNotFoundError,
  RunValues,
  type Artifact,
  type DownloadCheck,
  type HistoryOptions,
  type HistoryRow,
  type RunInfo,
  type RunRef,
  type RunState,
  type RunTracker,
} from './run-tracker';

/**
 * The local tracker: reads what a trainer wrote into its run directory. The format (the example trainer in
 * `examples/trainer/train.js` writes it; any trainer can):
 *
 * | file | content |
 * |---|---|
 * | `metrics.jsonl` | one JSON object per logged step: `{"_step": 10, "train/loss": 0.4, "_timestamp": 1700000000.5}` |
 * | `summary.json` | the latest value of each metric |
 * | `config.json` | the hyperparameters |
 * | `checkpoints/*` | checkpoints, each an artifact of type `checkpoint` |
 * | `artifacts.json` | other artifacts: `[{"name": "model", "type": "model", "path": "model.json"}]`, paths relative to the run directory |
 * | `starts.jsonl`, `ends.jsonl` | one line per trainer start and end (`{pid, startStep, startedAt}`, `{pid, status, endStep, endedAt}`; status `completed`, `preempted`, `stopped` (SIGTERM), `diverged`, `crashed`) |
 *
 * The run's state comes from the launcher's records under `attempts/` (the latest launch), or, for a run
 * started by hand, from `starts.jsonl` and `ends.jsonl`.
 */
export const RUN_FILES = {
  metrics: 'metrics.jsonl',
  summary: 'summary.json',
  config: 'config.json',
  artifacts: 'artifacts.json',
  checkpoints: 'checkpoints',
  starts: 'starts.jsonl',
  ends: 'ends.jsonl',
} as const;

/** One entry of `artifacts.json`. */
export const DeclaredArtifact = z.object({
  name: z.string().min(1),
  type: z.string().min(1),
  /** Relative to the run directory (or absolute). */
  path: z.string().min(1),
  version: z.string().optional(),
});
/** `artifacts.json`: what the trainer declares besides its checkpoints. */
export const DeclaredArtifacts = z.array(DeclaredArtifact);

const StartRecord = z.object({ pid: z.number().int().positive(), startedAt: z.string().optional() }).loose();
const EndRecord = z.object({ pid: z.number().int().positive(), status: z.string().optional() }).loose();

/** Options of {@link LocalTracker}. */
export interface LocalTrackerOptions {
  /** Where run directories live: a ref without `runDir` reads `<runsRoot>/<experimentId>`. Default `./runs`. */
  runsRoot?: string;
  /**
   * Whether `artifacts` computes a sha256 digest of each file (read in full; costly for checkpoints of many
   * gigabytes). Default `true`.
   */
  digests?: boolean;
}

/** Reads runs from their run directories. See the file format above. */
export class LocalTracker implements RunTracker {
  readonly kind = 'local' as const;
  private readonly runsRoot: string;
  private readonly digests: boolean;

  constructor(options: LocalTrackerOptions = {}) {
    this.runsRoot = path.resolve(options.runsRoot ?? 'runs');
    this.digests = options.digests ?? true;
  }

  /** The run directory a ref points at. */
  runDirOf(ref: RunRef): string {
    return ref.runDir !== undefined ? path.resolve(ref.runDir) : path.join(this.runsRoot, ref.experimentId);
  }

  async run(ref: RunRef): Promise<RunInfo> {
    const runDir = this.existingRunDir(ref);
    const config = await readValues(path.join(runDir, RUN_FILES.config));
    const summary = await readValues(path.join(runDir, RUN_FILES.summary));
    const metricsFile = path.join(runDir, RUN_FILES.metrics);
    const keys = new Set<string>();
    for await (const row of readHistoryRows(metricsFile)) {
      for (const key of Object.keys(row)) keys.add(key);
    }
    const attempts = listAttempts(runDir);
    const starts = await readJsonLines(path.join(runDir, RUN_FILES.starts), StartRecord);
    const createdAt = attempts[0]?.launchedAt ?? starts[0]?.startedAt;
    const heartbeatAt = await fs.promises.stat(metricsFile).then(
      (stat) => stat.mtime.toISOString(),
      () => undefined,
    );
    return {
      state: await this.stateOf(runDir),
      config,
      summary,
      historyKeys: [...keys].sort(),
      url: pathToFileURL(runDir).href,
      ...(createdAt ? { createdAt } : {}),
      ...(heartbeatAt ? { heartbeatAt } : {}),
    };
  }

  history(ref: RunRef, options: HistoryOptions = {}): AsyncIterable<HistoryRow> {
    const metricsFile = path.join(this.runDirOf(ref), RUN_FILES.metrics);
    const { keys, samples } = options;
    if (samples !== undefined && (!Number.isInteger(samples) || samples < 1)) {
      throw new RangeError(`history samples must be a positive integer, got ${samples}`);
    }
    return sampledRows(metricsFile, keys, samples);
  }

  async artifacts(ref: RunRef): Promise<Artifact[]> {
    const runDir = this.existingRunDir(ref);
    const found: Artifact[] = [];
    const seen = new Set<string>();
    const add = async (name: string, type: string, file: string, version?: string): Promise<void> => {
      if (seen.has(file)) return;
      seen.add(file);
      found.push(await this.describe(name, type, file, version));
    };

    const checkpointsDir = path.join(runDir, RUN_FILES.checkpoints);
    const checkpointNames = await fs.promises.readdir(checkpointsDir).catch((error: unknown) => {
      if (isErrno(error, 'ENOENT')) return [];
      throw error;
    });
    for (const name of checkpointNames.filter((n) => !n.endsWith('.tmp')).sort(byStepThenName)) {
      await add(`${RUN_FILES.checkpoints}/${name}`, 'checkpoint', path.join(checkpointsDir, name));
    }

    const declaredFile = path.join(runDir, RUN_FILES.artifacts);
    const declared = await readJsonFile(declaredFile);
    if (declared !== undefined) {
      const parsed = DeclaredArtifacts.safeParse(declared);
      if (!parsed.success) {
        throw new Error(`${declaredFile} is not a list of artifacts: ${z.prettifyError(parsed.error)}`);
      }
      for (const entry of parsed.data) {
        await add(entry.name, entry.type, path.resolve(runDir, entry.path), entry.version);
      }
    }
    return found;
  }

  async checkDownload(target: Artifact | string): Promise<DownloadCheck> {
    const label = typeof target === 'string' ? target : `artifact ${target.name}`;
    const file = localPathOf(target);
    if (file === undefined) {
      return { ok: false, error: `${label} is not a local file (the local tracker reads files only)` };
    }
    try {
      const stat = await fs.promises.stat(file);
      const files = stat.isDirectory() ? await filesUnder(file) : [file];
      for (const each of files) {
        const digest = await sha256Of(each);
        if (
          typeof target !== 'string' &&
          target.digest !== undefined &&
          !stat.isDirectory() &&
          target.digest !== digest
        ) {
          return {
            ok: false,
            error: `${label}: ${each} has digest ${digest}, expected ${target.digest} (changed since listed)`,
          };
        }
        if (each.endsWith('.json')) JSON.parse(await fs.promises.readFile(each, 'utf8'));
      }
      return { ok: true };
    } catch (error) {
      return { ok: false, error: `${label}: ${error instanceof Error ? error.message : String(error)}` };
    }
  }

  private existingRunDir(ref: RunRef): string {
    const runDir = this.runDirOf(ref);
    if (!fs.existsSync(runDir)) {
      throw new RunNotFoundError(
        `No local run for ${ref.experimentId}: ${runDir} does not exist. Check the tracker's runsRoot or the ref's runDir.`,
      );
    }
    return runDir;
  }

  private async stateOf(runDir: string): Promise<RunState> {
    const latest = listAttempts(runDir).at(-1);
    if (latest) {
      const state = readAttemptState(latest.attemptDir);
      if (state.phase !== 'exited') return state.phase;
      if (state.reason === 'cancelled') return 'killed';
      if (state.reason === 'lost' || state.reason === 'node-failure') return 'crashed';
      if (state.reason === 'preempted') return 'preempted';
      if (state.reason === 'timeout' || state.reason === 'out-of-memory' || state.reason === 'spawn-failed') {
        return 'failed';
      }
      if (state.exitCode === 0) return 'finished';
      if (state.exitCode === 143 || state.signal === 'SIGTERM') return 'preempted';
      if (state.signal === 'SIGKILL') return 'crashed';
      return 'failed';
    }
    // Started by hand: match the trainer's own start and end records.
    const starts = await readJsonLines(path.join(runDir, RUN_FILES.starts), StartRecord);
    const ends = await readJsonLines(path.join(runDir, RUN_FILES.ends), EndRecord);
    const lastStart = starts.at(-1);
    if (!lastStart) return 'pending';
    const end = ends.findLast((record) => record.pid === lastStart.pid);
    if (!end) return isProcessAlive({ pid: lastStart.pid }) ? 'running' : 'crashed';
    if (end.status === 'completed') return 'finished';
    if (end.status === 'preempted' || end.status === 'stopped') return 'preempted';
    return 'failed';
  }

  private async describe(name: string, type: string, file: string, version?: string): Promise<Artifact> {
    const base = { name, type, ...(version ? { version } : {}), path: file, uri: pathToFileURL(file).href };
    let stat: fs.Stats;
    try {
      stat = await fs.promises.stat(file);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return { ...base, state: 'PENDING' };
      throw error;
    }
    if (stat.isDirectory()) {
      let size = 0;
      for (const each of await filesUnder(file)) size += (await fs.promises.stat(each)).size;
      return { ...base, state: 'COMMITTED', size };
    }
    return {
      ...base,
      state: 'COMMITTED',
      size: stat.size,
      ...(this.digests ? { digest: await sha256Of(file) } : {}),
    };
  }
}

/**
 * The latest row of `metrics.jsonl`, read from the end of the file (it may be large and still growing;
 * a half-written last line is skipped). `undefined` when there is none yet.
 */
export async function readLatestMetrics(runDir: string): Promise<HistoryRow | undefined> {
  const file = path.join(runDir, RUN_FILES.metrics);
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, 'r');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw error;
  }
  try {
    const { size } = await handle.stat();
    // Read a growing window from the end until it holds one complete row; rows are small, so 64 KiB almost
    // always does. 16 MiB bounds the search for a file that holds no row at all.
    for (let window = 64 * 1024; ; window *= 4) {
      const length = Math.min(window, size);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      const lines = buffer.toString('utf8').split('\n');
      // The first line of a window that does not start the file may be cut: skip it.
      const complete = length < size ? lines.slice(1) : lines;
      for (let i = complete.length - 1; i >= 0; i -= 1) {
        const row = parseRow(complete[i] ?? '');
        if (row) return row;
      }
      if (length >= size || window >= 16 * 1024 * 1024) return undefined;
    }
  } finally {
    await handle.close();
  }
}

function parseRow(line: string): HistoryRow | undefined {
  const text = line.trim();
  if (text === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return isHistoryRow(value) ? value : undefined;
}

function isHistoryRow(value: unknown): value is HistoryRow {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    typeof (value as { _step?: unknown })._step === 'number'
  );
}

/**
 * Every row of a metrics file, streamed. A line that does not parse is an error naming the file and line,
 * except the last one, which a trainer may be writing right now.
 */
async function* readHistoryRows(file: string): AsyncGenerator<HistoryRow> {
  let stream: fs.ReadStream;
  try {
    stream = fs.createReadStream(file, { encoding: 'utf8' });
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', reject);
    });
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return;
    throw error;
  }
  const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
  let pendingError: string | undefined;
  let lineNumber = 0;
  try {
    for await (const line of lines) {
      lineNumber += 1;
      if (line.trim() === '') continue;
      if (pendingError !== undefined) throw new Error(pendingError);
      const row = parseRow(line);
      if (row) yield row;
      else pendingError = `${file}:${lineNumber} is not a metrics row (a JSON object with a numeric "_step")`;
    }
  } finally {
    lines.close();
    stream.destroy();
  }
}

function matching(row: HistoryRow, keys: string[] | undefined): HistoryRow | undefined {
  if (keys === undefined) return row;
  const picked: HistoryRow = { _step: row._step };
  for (const key of keys) {
    if (!(key in row)) return undefined;
    picked[key] = row[key];
  }
  return picked;
}

async function* sampledRows(
  file: string,
  keys: string[] | undefined,
  samples: number | undefined,
): AsyncGenerator<HistoryRow> {
  if (samples === undefined) {
    for await (const row of readHistoryRows(file)) {
      const picked = matching(row, keys);
      if (picked) yield picked;
    }
    return;
  }
  // Two passes keep memory bounded: count the matching rows, then emit evenly spaced ones.
  let total = 0;
  for await (const row of readHistoryRows(file)) if (matching(row, keys)) total += 1;
  if (total === 0) return;
  const wanted = Math.min(samples, total);
  let index = 0;
  let next = 0;
  let emitted = 0;
  for await (const row of readHistoryRows(file)) {
    const picked = matching(row, keys);
    if (!picked) continue;
    if (index === next) {
      yield picked;
      emitted += 1;
      if (emitted === wanted) return;
      next = wanted === 1 ? total : Math.round((emitted * (total - 1)) / (wanted - 1));
    }
    index += 1;
  }
}

async function readJsonFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new Error(`${file} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}

async function readValues(file: string): Promise<RunValues> {
  const json = await readJsonFile(file);
  if (json === undefined) return {};
  const parsed = RunValues.safeParse(json);
  if (!parsed.success)
    throw new Error(`${file} is not a JSON object of values: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** Records of a small JSON-lines file; lines that do not parse (a half-written last one) are skipped. */
async function readJsonLines<T>(file: string, schema: z.ZodType<T>): Promise<T[]> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return [];
    throw error;
  }
  const records: T[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const parsed = schema.safeParse(JSON.parse(line));
      if (parsed.success) records.push(parsed.data);
    } catch {
      // skipped: see above
    }
  }
  return records;
}

function localPathOf(target: Artifact | string): string | undefined {
  const where = typeof target === 'string' ? target : (target.path ?? target.uri);
  if (where === undefined) return undefined;
  if (where.startsWith('file:')) return fileURLToPath(where);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(where)) return undefined;
  return path.resolve(where);
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await fs.promises.readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => path.join(entry.parentPath, entry.name));
}

/** Orders `step-9.json` before `step-10.json`, then everything else by name. */
function byStepThenName(a: string, b: string): number {
  const step = (name: string): number => Number(/step-(\d+)/.exec(name)?.[1] ?? Number.POSITIVE_INFINITY);
  return step(a) - step(b) || a.localeCompare(b);
}
