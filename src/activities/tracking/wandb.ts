/**
 * The W&B tracker: reads runs from W&B's public GraphQL API (W&B cloud, W&B Server, dedicated installs),
 * with no W&B SDK. State, config and summary come from one `Run` call; the history is streamed a page at a
 * time (memory stays bounded however long the run); artifacts and files are listed, and a download check
 * fetches a file, or an artifact's manifest and checks it against the artifact's digest.
 *
 * The API key comes from `WANDB_API_KEY` when the tracker is built, never from settings or workflow inputs.
 * Nothing here retries: errors are tracker errors (see `tracker-errors.ts`) that activities turn into
 * retryable or non-retryable failures.
 */
import { createHash } from 'node:crypto';
import {
  DEFAULT_WANDB_BASE_URL,
  runLivenessOf,
  wandbAppUrlFor,
  wandbRunIdFor,
  wandbRunUrl,
  type ProbeResult,
} from '../../experiment';
import {
  RunNotFoundError,
  RunState,
  type Artifact,
  type DownloadCheck,
  type HistoryOptions,
  type HistoryRow,
  type ProbeFileOptions,
  type RunInfo,
  type RunRef,
  type RunTracker,
  type RunValues,
  type TrackedRunState,
} from './run-tracker';
import { TrackerAuthError, TrackerMalformedResponseError, TrackerRequestError } from './tracker-errors';
import {
  FETCH_ARTIFACT_MANIFEST,
  HISTORY_PAGE,
  RUN,
  RUN_FILES,
  RUN_FULL_HISTORY,
  RUN_HISTORY_KEYS,
  PROJECT_ARTIFACT,
  RUN_OUTPUT_ARTIFACTS,
  RUN_SAMPLED_HISTORY,
  RUN_STATE,
  SAMPLED_HISTORY_PAGE,
  VIEWER,
} from './wandb-queries';
import {
  ArtifactManifest,
  ArtifactManifestData,
  HistoryData,
  RunData,
  RunFilesData,
  RunHistoryKeysData,
  ProjectArtifactData,
  RunOutputArtifactsData,
  RunStateData,
  SampledHistoryData,
  ViewerData,
  describeIssues,
  parseWandbJson,
  type ArtifactNode,
  type HistoryKeys,
  type RunFileNode,
} from './wandb-schemas';
import { redactUrl, WandbTransport } from './wandb-transport';

/** Options of {@link WandbTracker}. Every one has a default; none is a secret except `apiKey`. */
export interface WandbTrackerOptions {
  /**
   * API base URL (W&B Server: your install's URL). Default: env `WANDB_BASE_URL`, else
   * `https://api.wandb.ai`.
   */
  baseUrl?: string;
  /** Web app URL for run links. Default: env `WANDB_APP_URL`, else derived from `baseUrl` as wandb does. */
  appUrl?: string;
  /** API key. Default: env `WANDB_API_KEY`. Pass it only in tests; it never belongs in a settings file. */
  apiKey?: string;
  /** Per-request timeout in milliseconds (headers, and each gap in the body). Default 30000. */
  timeoutMs?: number;
  /** History rows per request when the whole history is streamed. Default 1000, as wandb's `scan_history`. */
  historyPageSize?: number;
  /** Connections kept open per host. Default 4. */
  connections?: number;
  /** Largest file or manifest parsed as JSON by a download check, in bytes. Default 64 MiB. */
  maxJsonBytes?: number;
  /**
   * How old the last heartbeat of a `running` run may be before `run` reports it stale (probably crashed), in
   * milliseconds. Default 900000 (15 minutes); `0` never does.
   */
  staleAfterMs?: number;
}

/** Who the API key belongs to (`Viewer`). */
export interface WandbViewer {
  id: string;
  /** The user's default entity. */
  entity?: string;
  username?: string;
  /** Teams (entities) the user belongs to. */
  teams: string[];
}

/** One file a run saved (`RunFiles`). */
export interface WandbRunFile {
  name: string;
  /** Bytes. */
  size?: number;
  /** `{base}/files/{entity}/{project}/{run}/{name}`: downloads with the API key (W&B redirects to storage). */
  url?: string;
  /** A signed storage URL. */
  directUrl?: string;
  /** Base64 MD5 of the content. */
  md5?: string;
}

interface RunPath {
  entity: string;
  project: string;
  run: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_HISTORY_PAGE_SIZE = 1000;
const DEFAULT_STALE_AFTER_MS = 15 * 60_000;
const ARTIFACTS_PER_PAGE = 100;
const FILES_PER_PAGE = 50;
const ARTIFACT_URI_PREFIX = 'wandb-artifact://';
/** Header of the version-1 manifest digest (`artifact_manifest_v1.py`, `_DIGEST_HEADER`). */
const MANIFEST_V1_DIGEST_HEADER = 'wandb-artifact-manifest-v1\n';
/** Config keys wandb itself writes; `run.config` leaves them out too. */
const WANDB_CONFIG_KEYS = new Set(['_wandb', 'wandb_version']);

/** Parses an ISO date W&B sent, which may lack a zone (it is UTC), into ISO 8601 with `Z`. */
function isoDate(value: string | null | undefined): string | undefined {
  if (!value) return undefined;
  const zoned = /(Z|[+-]\d\d:?\d\d)$/i.test(value) ? value : `${value}Z`;
  const time = Date.parse(zoned);
  return Number.isNaN(time) ? value : new Date(time).toISOString();
}

function runStateOf(state: string): RunState {
  const parsed = RunState.safeParse(state.toLowerCase());
  return parsed.success ? parsed.data : 'unknown';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The values of W&B's `config`: `{"lr": {"value": 0.1, "desc": null}}` → `{"lr": 0.1}`, without wandb's own keys. */
function unwrapConfig(raw: Record<string, unknown>): RunValues {
  const config: RunValues = {};
  for (const [key, entry] of Object.entries(raw)) {
    if (WANDB_CONFIG_KEYS.has(key)) continue;
    config[key] = (isRecord(entry) && 'value' in entry ? entry.value : entry) as RunValues[string];
  }
  return config;
}

/** The MD5 digest W&B gives a version-1 manifest: over `path:digest` lines, sorted by path. */
export function manifestDigest(manifest: ArtifactManifest): string {
  const hash = createHash('md5').update(MANIFEST_V1_DIGEST_HEADER);
  for (const path of Object.keys(manifest.contents).sort()) {
    hash.update(`${path}:${manifest.contents[path]?.digest ?? ''}\n`);
  }
  return hash.digest('hex');
}

/** Reads W&B runs through the public GraphQL API. */
export class WandbTracker implements RunTracker {
  readonly kind = 'wandb' as const;
  /** API base URL, no trailing slash. */
  readonly baseUrl: string;
  /** Web app URL for run links, no trailing slash. */
  readonly appUrl: string;
  private readonly transport: WandbTransport;
  private readonly historyPageSize: number;
  private readonly maxJsonBytes: number;
  private readonly staleAfterMs: number;

  /** @throws TrackerAuthError when no API key is given and `WANDB_API_KEY` is not set */
  constructor(options: WandbTrackerOptions = {}) {
    const apiKey = options.apiKey ?? process.env.WANDB_API_KEY;
    const baseUrl = (options.baseUrl ?? process.env.WANDB_BASE_URL ?? DEFAULT_WANDB_BASE_URL).replace(
      /\/+$/,
      '',
    );
    if (!apiKey?.trim()) {
      throw new TrackerAuthError(
        `WANDB_API_KEY is not set, so Labline cannot read runs from W&B at ${baseUrl}. ` +
          'Export WANDB_API_KEY (from https://wandb.ai/authorize, or your W&B Server) in the environment of the ' +
          'Labline worker and CLI; it never goes in a settings file or a spec.',
      );
    }
    try {
      new URL(baseUrl);
    } catch {
      throw new TrackerRequestError(
        `The W&B base URL "${baseUrl}" is not a URL; fix wandb.base_url in the Labline settings or WANDB_BASE_URL.`,
      );
    }
    this.baseUrl = baseUrl;
    this.appUrl = (options.appUrl ?? process.env.WANDB_APP_URL ?? wandbAppUrlFor(baseUrl)).replace(
      /\/+$/,
      '',
    );
    this.historyPageSize = options.historyPageSize ?? DEFAULT_HISTORY_PAGE_SIZE;
    this.maxJsonBytes = options.maxJsonBytes ?? 64 * 1024 * 1024;
    this.staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
    if (!(this.staleAfterMs >= 0)) {
      throw new RangeError(`staleAfterMs must be 0 or more milliseconds, got ${this.staleAfterMs}`);
    }
    if (!Number.isInteger(this.historyPageSize) || this.historyPageSize < 1) {
      throw new RangeError(`historyPageSize must be a positive integer, got ${this.historyPageSize}`);
    }
    this.transport = new WandbTransport({
      baseUrl,
      apiKey: apiKey.trim(),
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      connections: options.connections ?? 4,
    });
  }

  /**
   * Who the key belongs to. The worker calls it at start, so a missing or wrong key fails there and then.
   * @throws TrackerAuthError when W&B refuses the key
   */
  async viewer(): Promise<WandbViewer> {
    const { viewer } = await this.transport.graphql(VIEWER, undefined, ViewerData);
    if (!viewer) {
      throw new TrackerAuthError(
        `W&B at ${this.baseUrl} does not know the API key in WANDB_API_KEY (its viewer is null); ` +
          'set WANDB_API_KEY to a valid key for this W&B.',
      );
    }
    return {
      id: viewer.id,
      ...(viewer.entity ? { entity: viewer.entity } : {}),
      ...(viewer.username ? { username: viewer.username } : {}),
      teams: (viewer.teams?.edges ?? []).flatMap((edge) => (edge.node ? [edge.node.name] : [])),
    };
  }

  /** The web page of a run. */
  runUrl(ref: RunRef): string {
    const path = this.pathOf(ref);
    return wandbRunUrl(this.appUrl, path.entity, path.project, path.run);
  }

  async run(ref: RunRef): Promise<RunInfo> {
    const path = this.pathOf(ref);
    const run = this.runOf(await this.transport.graphql(RUN, this.runVariables(path), RunData), path);
    const config = this.jsonField(run.config, 'config', path);
    const summary = this.jsonField(run.summaryMetrics, 'summaryMetrics', path);
    const historyKeys = run.historyKeys ?? undefined;
    const keys = Object.keys(historyKeys?.keys ?? {}).sort();
    const createdAt = isoDate(run.createdAt);
    const heartbeatAt = isoDate(run.heartbeatAt);
    const synced = syncedOf(summary, historyKeys);
    const state = runStateOf(run.state);
    return {
      state,
      config: unwrapConfig(config),
      summary: summary as RunValues,
      historyKeys: keys,
      url: wandbRunUrl(this.appUrl, path.entity, path.project, path.run),
      ...(createdAt ? { createdAt } : {}),
      ...(heartbeatAt ? { heartbeatAt } : {}),
      // W&B's clock against ours: fine for a threshold of minutes; a skew that large is a problem of its own.
      liveness: runLivenessOf({ state, heartbeatAt }, Date.now(), this.staleAfterMs / 1000),
      lastLogged: lastLoggedOf(historyKeys),
      ...(synced !== undefined ? { synced } : {}),
    };
  }

  async runState(ref: RunRef): Promise<TrackedRunState> {
    const path = this.pathOf(ref);
    const run = this.runOf(
      await this.transport.graphql(RUN_STATE, this.runVariables(path), RunStateData),
      path,
    );
    const heartbeatAt = isoDate(run.heartbeatAt);
    return { state: runStateOf(run.state), ...(heartbeatAt ? { heartbeatAt } : {}) };
  }

  history(ref: RunRef, options: HistoryOptions = {}): AsyncIterable<HistoryRow> {
    const { keys, samples } = options;
    if (samples !== undefined && (!Number.isInteger(samples) || samples < 1)) {
      throw new RangeError(`history samples must be a positive integer, got ${samples}`);
    }
    const path = this.pathOf(ref);
    const wanted = keys?.filter((key) => key !== '_step');
    return samples !== undefined
      ? this.sampledHistory(path, wanted, samples)
      : this.pagedHistory(path, wanted);
  }

  async artifacts(ref: RunRef): Promise<Artifact[]> {
    const path = this.pathOf(ref);
    const found: Artifact[] = [];
    let cursor: string | null = null;
    for (;;) {
      const data: RunOutputArtifactsData = await this.transport.graphql(
        RUN_OUTPUT_ARTIFACTS,
        { entity: path.entity, project: path.project, run: path.run, cursor, perPage: ARTIFACTS_PER_PAGE },
        RunOutputArtifactsData,
      );
      const { artifacts } = this.runOf(data, path);
      for (const edge of artifacts.edges) if (edge.node) found.push(artifactOf(edge.node));
      if (!artifacts.pageInfo.hasNextPage || !artifacts.pageInfo.endCursor) return found;
      cursor = artifacts.pageInfo.endCursor;
    }
  }

  /**
   * The version an artifact reference names now (`entity/project/name:latest` → `v3`), with its digest, so
   * that a record pins what an alias pointed at.
   * @throws Error naming the reference when W&B has no such artifact
   */
  async resolveArtifact(reference: string): Promise<{ version: string; digest?: string }> {
    const match = /^([^/]+)\/([^/]+)\/([^/:]+):([^/:]+)$/.exec(reference);
    if (!match) {
      throw new Error(
        `"${reference}" is not a W&B artifact reference; write entity/project/name:version (or :alias), like ` +
          'my-team/my-project/tokenizer:v3',
      );
    }
    const [, entity, project, name, alias] = match;
    const data = await this.transport.graphql(
      PROJECT_ARTIFACT,
      { entity: entity!, project: project!, name: `${name}:${alias}` },
      ProjectArtifactData,
    );
    const artifact = data.project?.artifact;
    if (!artifact || artifact.state === 'DELETED' || artifact.versionIndex == null) {
      throw new Error(
        `W&B has no artifact ${name}:${alias} in ${entity}/${project}; check the name and the alias or version ` +
          'under `data:` in the spec',
      );
    }
    return { version: `v${artifact.versionIndex}`, ...(artifact.digest ? { digest: artifact.digest } : {}) };
  }

  /** The files the run saved, or only those named. */
  async files(ref: RunRef, names: string[] = []): Promise<WandbRunFile[]> {
    const path = this.pathOf(ref);
    const found: WandbRunFile[] = [];
    let cursor: string | null = null;
    for (;;) {
      const data: RunFilesData = await this.transport.graphql(
        RUN_FILES,
        {
          ...this.runVariables(path),
          fileCursor: cursor,
          fileLimit: FILES_PER_PAGE,
          fileNames: names,
          upload: false,
        },
        RunFilesData,
      );
      const { files } = this.runOf(data, path);
      for (const edge of files.edges) if (edge.node) found.push(runFileOf(edge.node));
      if (!files.pageInfo.hasNextPage || !files.pageInfo.endCursor) return found;
      cursor = files.pageInfo.endCursor;
    }
  }

  /**
   * Downloads what `target` names and checks it reads back. An artifact (from `artifacts`): its manifest
   * downloads, parses, and its digest matches the artifact's. A string: a file URL, downloaded whole (and
   * parsed when it ends in `.json`). A target that is not there is `{ ok: false }`; an unreachable W&B throws.
   */
  async checkDownload(target: Artifact | string): Promise<DownloadCheck> {
    if (typeof target === 'string') {
      if (!/^https?:\/\//i.test(target)) {
        return { ok: false, error: `${target}: the W&B tracker downloads http(s) URLs of run files only` };
      }
      const name = new URL(target).pathname.split('/').pop() ?? target;
      return this.checkFile({ name, url: target }, name.endsWith('.json'));
    }
    return this.checkArtifactManifest(target);
  }

  async probeFile(ref: RunRef, name: string, options: ProbeFileOptions): Promise<ProbeResult> {
    const [file] = (await this.files(ref, [name])).filter((each) => each.name === name);
    if (!file) return { name, kind: 'file', exists: false };
    const result: ProbeResult = {
      name,
      kind: 'file',
      exists: true,
      ...(file.size !== undefined ? { size_bytes: file.size } : {}),
    };
    if (options.load === undefined && !options.download) return result;
    const check = await this.checkFile(file, options.load === 'json');
    if (options.load !== undefined) result.loadable = check.ok;
    if (options.download) result.downloadable = check.ok;
    if (check.error !== undefined) result.error = check.error;
    return result;
  }

  /** Closes the connection pool. */
  async close(): Promise<void> {
    await this.transport.close();
  }

  private pathOf(ref: RunRef): RunPath {
    if (!ref.entity || !ref.project) {
      throw new TrackerRequestError(
        `The W&B tracker needs an entity and a project to find the run of ${ref.experimentId}; ` +
          'set tracker.entity and tracker.project in the spec (or give --run entity/project/run_id).',
      );
    }
    return { entity: ref.entity, project: ref.project, run: ref.runId ?? wandbRunIdFor(ref.experimentId) };
  }

  private runVariables(path: RunPath): Record<string, string> {
    return { entity: path.entity, project: path.project, name: path.run };
  }

  /** The run of a `project { run }` answer; a null project or run is a RunNotFoundError naming both. */
  private runOf<T>(data: { project: { run: T | null } | null }, path: RunPath): T {
    const where = `${path.entity}/${path.project}`;
    if (!data.project) {
      throw new RunNotFoundError(
        `W&B at ${this.baseUrl} has no project ${where} that this API key can see, so no run ` +
          `${where}/${path.run}. Check tracker.entity and tracker.project in the spec, and that the key's user ` +
          `belongs to ${path.entity}.`,
      );
    }
    if (data.project.run === null) {
      throw new RunNotFoundError(
        `W&B at ${this.baseUrl} has no run ${where}/${path.run}. The trainer logs into it with ` +
          `WANDB_RUN_ID=${path.run}; check that it calls wandb.init() and logs to entity ${path.entity}, ` +
          `project ${path.project}.`,
      );
    }
    return data.project.run;
  }

  /** A JSON-string field of a run (`config`, `summaryMetrics`) as an object; `{}` when null. */
  private jsonField(text: string | null | undefined, field: string, path: RunPath): Record<string, unknown> {
    if (text === null || text === undefined || text === '') return {};
    let value: unknown;
    try {
      value = parseWandbJson(text);
    } catch (error) {
      throw new TrackerMalformedResponseError(
        `W&B's ${field} of run ${path.entity}/${path.project}/${path.run} is not JSON: ${(error as Error).message}`,
        { cause: error },
      );
    }
    if (value === null) return {};
    if (!isRecord(value)) {
      throw new TrackerMalformedResponseError(
        `W&B's ${field} of run ${path.entity}/${path.project}/${path.run} is not a JSON object but ${JSON.stringify(value)?.slice(0, 80)}`,
      );
    }
    return value;
  }

  private async *sampledHistory(
    path: RunPath,
    keys: string[] | undefined,
    samples: number,
  ): AsyncGenerator<HistoryRow> {
    if (keys !== undefined && keys.length > 0) {
      const spec = JSON.stringify({ keys: ['_step', ...keys], samples });
      const data = await this.transport.graphql(
        RUN_SAMPLED_HISTORY,
        { ...this.runVariables(path), specs: [spec] },
        SampledHistoryData,
      );
      const rows = this.runOf(data, path).sampledHistory[0] ?? [];
      yield* this.rowsOf(rows, keys, `RunSampledHistory of ${describePath(path)}`);
      return;
    }
    const data = await this.transport.graphql(
      RUN_FULL_HISTORY,
      { ...this.runVariables(path), samples },
      HistoryData,
    );
    yield* this.rowsOf(this.runOf(data, path).history, undefined, `RunFullHistory of ${describePath(path)}`);
  }

  /**
   * The whole history, one page of steps at a time, the next page requested while the current one is
   * consumed: at most two pages are held, however many rows the run logged.
   */
  private async *pagedHistory(path: RunPath, keys: string[] | undefined): AsyncGenerator<HistoryRow> {
    const data = await this.transport.graphql(RUN_HISTORY_KEYS, this.runVariables(path), RunHistoryKeysData);
    const lastStep = this.runOf(data, path).historyKeys?.lastStep;
    if (lastStep === undefined || lastStep === null || lastStep < 0) return;
    const size = this.historyPageSize;
    const fetchPage = (minStep: number): Promise<HistoryRow[]> =>
      keys !== undefined && keys.length > 0
        ? this.sampledHistoryPage(path, keys, minStep, minStep + size)
        : this.historyPage(path, minStep, minStep + size);
    let next: Promise<HistoryRow[]> | undefined = fetchPage(0);
    for (let minStep = 0; next !== undefined; minStep += size) {
      const page: HistoryRow[] = await next;
      next = minStep + size <= lastStep ? fetchPage(minStep + size) : undefined;
      // Awaited on the next turn; until then, a failure must not count as unhandled if the reader stops early.
      next?.catch(() => undefined);
      yield* page;
    }
  }

  private async historyPage(path: RunPath, minStep: number, maxStep: number): Promise<HistoryRow[]> {
    const data = await this.transport.graphql(
      HISTORY_PAGE,
      {
        entity: path.entity,
        project: path.project,
        run: path.run,
        minStep,
        maxStep,
        pageSize: maxStep - minStep,
      },
      HistoryData,
    );
    return this.collectRows(
      this.runOf(data, path).history,
      undefined,
      `HistoryPage [${minStep}, ${maxStep}) of ${describePath(path)}`,
    );
  }

  private async sampledHistoryPage(
    path: RunPath,
    keys: string[],
    minStep: number,
    maxStep: number,
  ): Promise<HistoryRow[]> {
    // maxStep is inclusive in a sampled-history spec (wandb-core subtracts one to page like HistoryPage).
    const spec = JSON.stringify({
      keys: [...keys, '_step'],
      minStep,
      maxStep: maxStep - 1,
      samples: maxStep - minStep,
    });
    const data = await this.transport.graphql(
      SAMPLED_HISTORY_PAGE,
      { entity: path.entity, project: path.project, run: path.run, spec },
      SampledHistoryData,
    );
    const rows = this.runOf(data, path).sampledHistory[0] ?? [];
    return this.collectRows(
      rows,
      keys,
      `SampledHistoryPage [${minStep}, ${maxStep}) of ${describePath(path)}`,
    );
  }

  private collectRows(rows: readonly unknown[], keys: string[] | undefined, where: string): HistoryRow[] {
    const out: HistoryRow[] = [];
    for (const row of this.rowsOf(rows, keys, where)) out.push(row);
    // Pages come in step order from W&B; sorting keeps the contract if a server does not.
    return out.sort((a, b) => a._step - b._step);
  }

  /** History rows (JSON strings or objects) as rows with a numeric `_step`, cut down to `keys` when given. */
  private *rowsOf(
    rows: readonly unknown[],
    keys: string[] | undefined,
    where: string,
  ): Generator<HistoryRow> {
    for (let index = 0; index < rows.length; index += 1) {
      let row = rows[index];
      if (typeof row === 'string') {
        try {
          row = parseWandbJson(row);
        } catch (error) {
          throw new TrackerMalformedResponseError(
            `row ${index} of W&B's ${where} is not JSON: ${(error as Error).message}`,
            {
              cause: error,
            },
          );
        }
      }
      if (!isRecord(row) || typeof row._step !== 'number') {
        throw new TrackerMalformedResponseError(
          `row ${index} of W&B's ${where} is not a history row (an object with a numeric _step): ` +
            `${JSON.stringify(row)?.slice(0, 120)}`,
        );
      }
      // W&B may send steps as floats (149.0); wandb-core truncates them the same way.
      const step = Math.trunc(row._step);
      if (keys === undefined) {
        yield { ...row, _step: step };
        continue;
      }
      if (!keys.every((key) => key in row)) continue;
      const picked: HistoryRow = { _step: step };
      for (const key of keys) picked[key] = row[key];
      yield picked;
    }
  }

  private async checkArtifactManifest(artifact: Artifact): Promise<DownloadCheck> {
    const label = `artifact ${artifact.name}${artifact.version ? `:${artifact.version}` : ''}`;
    const id = artifact.uri?.startsWith(ARTIFACT_URI_PREFIX)
      ? artifact.uri.slice(ARTIFACT_URI_PREFIX.length)
      : undefined;
    if (!id)
      return { ok: false, error: `${label} has no W&B artifact id (uri ${artifact.uri ?? 'missing'})` };
    const { artifact: found } = await this.transport.graphql(
      FETCH_ARTIFACT_MANIFEST,
      { id },
      ArtifactManifestData,
    );
    if (!found) return { ok: false, error: `${label} no longer exists in W&B` };
    if (!found.currentManifest) {
      return {
        ok: false,
        error: `${label} has no manifest yet (state ${artifact.state}); it may still be uploading`,
      };
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    const downloaded = await this.transport.download(found.currentManifest.file.directUrl, (chunk) => {
      size += chunk.length;
      if (size > this.maxJsonBytes) tooLarge = true;
      else chunks.push(chunk);
    });
    if ('missing' in downloaded)
      return { ok: false, error: `the manifest of ${label} did not download: ${downloaded.missing}` };
    if (tooLarge)
      return {
        ok: false,
        error: `the manifest of ${label} is larger than ${this.maxJsonBytes} bytes; not parsed`,
      };
    let json: unknown;
    try {
      json = parseWandbJson(Buffer.concat(chunks).toString('utf8'));
    } catch (error) {
      return { ok: false, error: `the manifest of ${label} is not JSON: ${(error as Error).message}` };
    }
    const manifest = ArtifactManifest.safeParse(json);
    if (!manifest.success) {
      return {
        ok: false,
        error: `the manifest of ${label} is not an artifact manifest: ${describeIssues(manifest.error)}`,
      };
    }
    if (manifest.data.version === 1 && artifact.digest !== undefined) {
      const digest = manifestDigest(manifest.data);
      if (digest !== artifact.digest) {
        return {
          ok: false,
          error: `the manifest of ${label} has digest ${digest}, but W&B lists the artifact with digest ${artifact.digest}`,
        };
      }
    }
    return { ok: true };
  }

  /** Downloads a run file whole, checks its MD5 when W&B gave one, and parses it when asked. */
  private async checkFile(file: WandbRunFile, parseJson: boolean): Promise<DownloadCheck> {
    const url = file.url ?? file.directUrl;
    const label = `file ${file.name}`;
    if (!url) return { ok: false, error: `${label}: W&B gave no URL to download it from` };
    const md5 = createHash('md5');
    const chunks: Buffer[] = [];
    let size = 0;
    const downloaded = await this.transport.download(url, (chunk) => {
      md5.update(chunk);
      size += chunk.length;
      if (parseJson && size <= this.maxJsonBytes) chunks.push(chunk);
    });
    if ('missing' in downloaded)
      return { ok: false, error: `${label} did not download: ${downloaded.missing}` };
    if (file.md5 && md5.digest('base64') !== file.md5) {
      return {
        ok: false,
        error: `${label} downloaded from ${redactUrl(url)} does not match its MD5 ${file.md5}`,
      };
    }
    if (file.size !== undefined && file.size !== size) {
      return { ok: false, error: `${label} downloaded ${size} bytes, but W&B lists ${file.size}` };
    }
    if (parseJson) {
      if (size > this.maxJsonBytes)
        return { ok: false, error: `${label} is larger than ${this.maxJsonBytes} bytes; not parsed` };
      try {
        JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (error) {
        return { ok: false, error: `${label} is not JSON: ${(error as Error).message}` };
      }
    }
    return { ok: true };
  }
}

function describePath(path: RunPath): string {
  return `${path.entity}/${path.project}/${path.run}`;
}

/** The last value logged per history key (`previousValue`), with how many rows held it. */
function lastLoggedOf(historyKeys: HistoryKeys | undefined): RunInfo['lastLogged'] {
  const last: NonNullable<RunInfo['lastLogged']> = {};
  for (const [key, stats] of Object.entries(historyKeys?.keys ?? {})) {
    if (stats.previousValue === undefined) continue;
    const count = stats.typeCounts?.reduce((sum, entry) => sum + entry.count, 0);
    last[key] = { value: stats.previousValue, ...(count !== undefined ? { count } : {}) };
  }
  return last;
}

/** Whether the summary caught up with the history: its `_step` reached the last step. */
function syncedOf(
  summary: Record<string, unknown>,
  historyKeys: HistoryKeys | undefined,
): boolean | undefined {
  const lastStep = historyKeys?.lastStep;
  const step = summary._step;
  if (typeof lastStep !== 'number' || lastStep < 0 || typeof step !== 'number') return undefined;
  return step >= lastStep;
}

function artifactOf(node: ArtifactNode): Artifact {
  const version =
    node.versionIndex !== null && node.versionIndex !== undefined ? `v${node.versionIndex}` : undefined;
  const aliases = (node.aliases ?? []).map((a) => a.alias).filter((alias) => !/^v\d+$/.test(alias));
  return {
    name: node.artifactSequence.name,
    type: node.artifactType.name,
    ...(version ? { version } : {}),
    aliases,
    state: node.state,
    ...(node.size !== null && node.size !== undefined ? { size: node.size } : {}),
    ...(node.digest ? { digest: node.digest } : {}),
    uri: `${ARTIFACT_URI_PREFIX}${node.id}`,
  };
}

function runFileOf(node: RunFileNode): WandbRunFile {
  return {
    name: node.name,
    ...(node.sizeBytes !== null && node.sizeBytes !== undefined ? { size: node.sizeBytes } : {}),
    ...(node.url ? { url: node.url } : {}),
    ...(node.directUrl ? { directUrl: node.directUrl } : {}),
    ...(node.md5 ? { md5: node.md5 } : {}),
  };
}
