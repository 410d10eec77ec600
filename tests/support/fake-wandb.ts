/**
 * A fake W&B for tests: a real HTTP server on 127.0.0.1 that answers the public GraphQL API with the shapes
 * in `shared/specs/wandb/` (routing on the operation name parsed from the query text, as wandb's own test
 * backend does), plus a second server on another port standing in for signed storage URLs (artifact
 * manifests, file contents), so tests can see that the API key never goes there.
 *
 * Runs are plain data, or computed on every request (`resolveRun`), e.g. from a trainer's run directory
 * ({@link runFromRunDir}). Histories are generated lazily, so a run of a million rows costs no memory here.
 * Faults (HTTP statuses, Retry-After, GraphQL errors, malformed bodies) are scripted per operation.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';

/** A history row: `_step` and values (numbers; non-finite ones are written as W&B does, bare `NaN`). */
export type FakeRow = Record<string, unknown> & { _step: number };

/** A run's history, read lazily. */
export interface FakeHistory {
  /** The last step, -1 when nothing was logged. */
  lastStep(): number;
  /** Rows with `minStep <= _step < maxStep`, in step order. */
  rows(minStep: number, maxStep: number): Iterable<FakeRow>;
  /** Per key: the last value logged and how many rows held it (W&B `historyKeys.keys`). */
  keys(): Record<string, { previousValue: unknown; count: number }>;
}

/** A history held in memory. */
export function arrayHistory(rows: FakeRow[]): FakeHistory {
  const sorted = [...rows].sort((a, b) => a._step - b._step);
  return {
    lastStep: () => sorted.at(-1)?._step ?? -1,
    *rows(minStep, maxStep) {
      for (const row of sorted) if (row._step >= minStep && row._step < maxStep) yield row;
    },
    keys() {
      const keys: Record<string, { previousValue: unknown; count: number }> = {};
      for (const row of sorted) {
        for (const [key, value] of Object.entries(row)) {
          const entry = keys[key] ?? { previousValue: value, count: 0 };
          entry.previousValue = value;
          entry.count += 1;
          keys[key] = entry;
        }
      }
      return keys;
    },
  };
}

/**
 * A history of `length` rows, steps 0 to length-1, each made by `row(step)` when asked for: nothing is
 * stored, so a million rows cost nothing until read. Every key of `row(0)` is taken to be in every row.
 */
export function generatedHistory(
  length: number,
  row: (step: number) => Record<string, unknown>,
): FakeHistory {
  const make = (step: number): FakeRow => ({ _step: step, ...row(step) });
  return {
    lastStep: () => length - 1,
    *rows(minStep, maxStep) {
      for (let step = Math.max(0, minStep); step < Math.min(length, maxStep); step += 1) yield make(step);
    },
    keys() {
      if (length === 0) return {};
      const last = make(length - 1);
      return Object.fromEntries(
        Object.entries(last).map(([key, value]) => [key, { previousValue: value, count: length }]),
      );
    },
  };
}

/** One artifact a run logged. Its manifest lists `files` with base64 MD5 digests. */
export interface FakeArtifact {
  /** Collection name (`model-a1b2c3d4`). */
  name: string;
  type: string;
  /** Version index: `v0` is 0. Default 0. */
  version?: number;
  state?: 'COMMITTED' | 'PENDING' | 'DELETED';
  aliases?: string[];
  /** Path → content of the files the artifact holds. */
  files: Record<string, string>;
  /** `ok` (default), `missing` (the manifest's URL answers 404), `corrupt` (not JSON), `wrong-digest`. */
  manifest?: 'ok' | 'missing' | 'corrupt' | 'wrong-digest';
}

/** One file a run saved. */
export interface FakeRunFile {
  name: string;
  content: string;
  /** Serve a different body than the listed MD5 says (a corrupted upload). */
  corrupt?: boolean;
}

/** A run as the fake serves it. */
export interface FakeRun {
  entity: string;
  project: string;
  /** The run id (W&B's `name`). */
  name: string;
  displayName?: string;
  /** Lowercase, as W&B sends it. */
  state: string;
  /** Plain config values; served wrapped as `{"value": V, "desc": null}`, with a `_wandb` entry. */
  config: Record<string, unknown>;
  summary: Record<string, unknown>;
  createdAt?: string;
  heartbeatAt?: string;
  history: FakeHistory;
  artifacts?: FakeArtifact[];
  files?: FakeRunFile[];
  /** Served instead of the encoded summary, to test malformed answers. */
  rawSummaryMetrics?: string;
}

/** One request the fake saw. */
export interface FakeRequest {
  method: string;
  path: string;
  /** The GraphQL operation, for POST /graphql. */
  operation?: string;
  variables?: Record<string, unknown>;
  authorization?: string;
  /** Which server: the API or the storage stand-in. */
  server: 'api' | 'storage';
}

/** A scripted answer to the next request(s) of an operation. */
export interface ScriptedReply {
  status: number;
  headers?: Record<string, string>;
  /** The body as sent; default `{"errors":[{"message":"scripted"}]}`. */
  body?: string;
}

export interface FakeWandbOptions {
  /** The accepted API key. Default `fake-key-0123456789`. */
  apiKey?: string;
  /** Runs computed on every request (after the static ones): return undefined for "no such run". */
  resolveRun?: (entity: string, project: string, name: string) => FakeRun | undefined;
}

export interface FakeWandb {
  /** The API base URL, `http://127.0.0.1:<port>`. */
  url: string;
  /** The storage stand-in's origin. */
  storageUrl: string;
  apiKey: string;
  requests: FakeRequest[];
  /** Adds (or replaces) a run. */
  addRun(run: FakeRun): FakeRun;
  /** The next `times` requests of `operation` (`*`: any) get `reply` instead of an answer. */
  script(operation: string, reply: ScriptedReply, times?: number): void;
  /** Drops the scripted answers not used yet. */
  unscript(): void;
  /** GraphQL operations seen, in order. */
  operations(): string[];
  close(): Promise<void>;
}

const OPERATION_NAME = /^(?:\s+|#[^\n]*(?:\n|$))*(?:mutation|query)\s+(\w+)\s*[({]/m;

const md5Base64 = (content: string | Buffer) => createHash('md5').update(content).digest('base64');

/** W&B's JSON: like JSON, with non-finite numbers as the bare tokens NaN, Infinity, -Infinity. */
export function wandbJson(value: unknown): string {
  const marks = new Map<string, string>();
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'number' && !Number.isFinite(v)) {
      const token = Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
      const mark = `__nonfinite_${token}__`;
      marks.set(mark, token);
      return mark;
    }
    return v;
  });
  let out = text;
  for (const [mark, token] of marks) out = out.split(`"${mark}"`).join(token);
  return out;
}

function manifestOf(artifact: FakeArtifact): {
  version: 1;
  storagePolicy: string;
  contents: Record<string, unknown>;
} {
  const contents: Record<string, unknown> = {};
  for (const [file, content] of Object.entries(artifact.files)) {
    contents[file] = { digest: md5Base64(content), size: Buffer.byteLength(content) };
  }
  return { version: 1, storagePolicy: 'wandb-storage-policy-v1', contents };
}

/** The digest W&B lists for an artifact: MD5 over the manifest's sorted `path:digest` lines. */
export function artifactDigest(artifact: FakeArtifact): string {
  const manifest = manifestOf(artifact);
  const hash = createHash('md5').update('wandb-artifact-manifest-v1\n');
  for (const file of Object.keys(manifest.contents).sort()) {
    hash.update(`${file}:${(manifest.contents[file] as { digest: string }).digest}\n`);
  }
  return hash.digest('hex');
}

function artifactId(run: FakeRun, index: number): string {
  return Buffer.from(`Artifact:${run.entity}/${run.project}/${run.name}/${index}`).toString('base64');
}

/** Evenly spaced picks from a lazily counted sequence, first and last included. */
function* sampled<T>(count: () => number, items: () => Iterable<T>, samples: number): Generator<T> {
  const total = count();
  if (total === 0) return;
  const wanted = Math.min(samples, total);
  let index = 0;
  let next = 0;
  let emitted = 0;
  for (const item of items()) {
    if (index === next) {
      yield item;
      emitted += 1;
      if (emitted === wanted) return;
      next = wanted === 1 ? total : Math.round((emitted * (total - 1)) / (wanted - 1));
    }
    index += 1;
  }
}

const hasAll = (row: FakeRow, keys: string[]) => keys.every((key) => key in row);
const pick = (row: FakeRow, keys: string[]) => Object.fromEntries(keys.map((key) => [key, row[key]]));

export async function startFakeWandb(options: FakeWandbOptions = {}): Promise<FakeWandb> {
  const apiKey = options.apiKey ?? 'fake-key-0123456789';
  const expectedAuth = `Basic ${Buffer.from(`api:${apiKey}`).toString('base64')}`;
  const runs = new Map<string, FakeRun>();
  const scripted: { operation: string; reply: ScriptedReply; times: number }[] = [];
  const requests: FakeRequest[] = [];
  let url = '';
  let storageUrl = '';

  const findRun = (entity: string, project: string, name: string): FakeRun | undefined =>
    runs.get(`${entity}/${project}/${name}`) ?? options.resolveRun?.(entity, project, name);
  const projectExists = (entity: string, project: string) =>
    [...runs.values()].some((r) => r.entity === entity && r.project === project) ||
    options.resolveRun !== undefined;
  const allRuns = (): FakeRun[] => [...runs.values()];
  const findArtifact = (id: string): { run: FakeRun; artifact: FakeArtifact } | undefined => {
    for (const run of allRuns()) {
      const index = (run.artifacts ?? []).findIndex((_a, i) => artifactId(run, i) === id);
      if (index >= 0) return { run, artifact: run.artifacts![index]! };
    }
    const [entity, project, name, index] = Buffer.from(id, 'base64')
      .toString()
      .replace(/^Artifact:/, '')
      .split('/');
    const run = entity && project && name ? options.resolveRun?.(entity, project, name) : undefined;
    const artifact = run?.artifacts?.[Number(index)];
    return run && artifact ? { run, artifact } : undefined;
  };

  const send = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(body);
  };

  const runFields = (run: FakeRun) => {
    const keys = run.history.keys();
    const config: Record<string, unknown> = {
      _wandb: { desc: null, value: { cli_version: '0.30.0', python_version: '3.11.7' } },
    };
    for (const [key, value] of Object.entries(run.config)) config[key] = { desc: null, value };
    return {
      projectId: '4711',
      id: Buffer.from(`Run:v1:${run.name}:${run.project}:${run.entity}`).toString('base64'),
      tags: [],
      name: run.name,
      displayName: run.displayName ?? run.name,
      sweepName: null,
      state: run.state,
      config: wandbJson(config),
      group: null,
      jobType: 'train',
      commit: null,
      readOnly: false,
      createdAt: run.createdAt ?? '2026-01-01T00:00:00',
      heartbeatAt: run.heartbeatAt ?? '2026-01-01T00:30:43',
      description: null,
      notes: null,
      systemMetrics: '{}',
      summaryMetrics: run.rawSummaryMetrics ?? wandbJson(run.summary),
      historyLineCount: run.history.lastStep() + 1,
      user: { name: 'Alice Example', username: 'alice' },
      historyKeys: {
        keys: Object.fromEntries(
          Object.entries(keys).map(([key, { previousValue, count }]) => [
            key,
            { typeCounts: [{ type: 'number', count }], monotonic: key.startsWith('_'), previousValue },
          ]),
        ),
        lastStep: run.history.lastStep(),
      },
    };
  };

  const artifactNode = (run: FakeRun, artifact: FakeArtifact, index: number) => {
    const version = artifact.version ?? 0;
    const project = {
      id: 'UHJvamVjdDo0NzEx',
      internalId: '4711',
      name: run.project,
      entity: { name: run.entity },
    };
    const collection = { __typename: 'ArtifactSequence', name: artifact.name, project };
    const size = Object.values(artifact.files).reduce((sum, c) => sum + Buffer.byteLength(c), 0);
    return {
      __typename: 'Artifact',
      id: artifactId(run, index),
      artifactSequence: collection,
      versionIndex: version,
      artifactType: { name: artifact.type },
      description: null,
      metadata: '{}',
      ttlDurationSeconds: -2,
      ttlIsInherited: true,
      tags: [],
      historyStep: null,
      state: artifact.state ?? 'COMMITTED',
      size,
      digest: artifactDigest(artifact),
      commitHash: 'a3f9c2e1b7d4',
      fileCount: Object.keys(artifact.files).length,
      createdAt: '2026-01-01T00:30:40Z',
      updatedAt: '2026-01-01T00:30:43Z',
      aliases: [...(artifact.aliases ?? ['latest']), `v${version}`].map((alias, i) => ({
        artifactCollection: collection,
        __typename: 'ArtifactAlias',
        id: Buffer.from(`Alias:${index}:${i}`).toString('base64'),
        alias,
      })),
    };
  };

  const fileNode = (run: FakeRun, file: FakeRunFile) => {
    const where = `${run.entity}/${run.project}/${run.name}/${file.name}`;
    return {
      id: Buffer.from(`File:${where}`).toString('base64'),
      name: file.name,
      url: `${url}/files/${where}`,
      directUrl: `${storageUrl}/storage/files/${where}?X-Goog-Signature=fake-signature`,
      sizeBytes: Buffer.byteLength(file.content),
      mimetype: file.name.endsWith('.json') ? 'application/json' : 'text/plain',
      updatedAt: '2026-01-01T00:30:43',
      md5: md5Base64(file.content),
    };
  };

  /** The `data` of one operation, or a status and body to send as they are. */
  const answer = (
    operation: string,
    variables: Record<string, unknown>,
  ): { data: unknown } | { status: number; body: string } => {
    const text = (value: unknown) => (typeof value === 'string' ? value : '');
    const entity = text(variables.entity);
    const project = text(variables.project);
    const name = text(variables.name ?? variables.run ?? variables.runName);
    const inRun = (field: (run: FakeRun) => unknown) => {
      const run = findRun(entity, project, name);
      if (!run) return { data: { project: projectExists(entity, project) ? { run: null } : null } };
      return { data: { project: { run: field(run) } } };
    };
    switch (operation) {
      case 'Viewer':
        return {
          data: {
            viewer: {
              id: 'VXNlcjp2MTphbGljZQ==',
              entity: 'acme-ml',
              username: 'alice',
              email: 'alice@example.com',
              flags: '{}',
              teams: { edges: [{ node: { name: 'acme-ml' } }] },
            },
          },
        };
      case 'ServerFeaturesQuery':
        return { data: { serverInfo: { features: [] } } };
      case 'Run':
        return inRun(runFields);
      case 'RunState':
        return inRun((run) => ({ state: run.state, heartbeatAt: runFields(run).heartbeatAt }));
      case 'RunHistoryKeys':
        return inRun((run) => ({ historyKeys: runFields(run).historyKeys }));
      case 'RunSampledHistory':
        return inRun((run) => {
          const specs = (variables.specs as string[]).map(
            (s) => JSON.parse(s) as { keys: string[]; samples: number },
          );
          return {
            sampledHistory: specs.map((spec) => {
              const matching = () => {
                const all = run.history.rows(0, Number.MAX_SAFE_INTEGER);
                return (function* () {
                  for (const row of all) if (hasAll(row, spec.keys)) yield row;
                })();
              };
              const count = () => {
                let n = 0;
                for (const _row of matching()) n += 1;
                return n;
              };
              return [...sampled(count, matching, spec.samples)].map((row) => pick(row, spec.keys));
            }),
          };
        });
      case 'RunFullHistory':
        return inRun((run) => {
          const all = () => run.history.rows(0, Number.MAX_SAFE_INTEGER);
          const count = () => run.history.lastStep() + 1;
          return { history: [...sampled(count, all, Number(variables.samples ?? 500))].map(wandbJson) };
        });
      case 'HistoryPage':
        return inRun((run) => {
          const rows: string[] = [];
          for (const row of run.history.rows(Number(variables.minStep), Number(variables.maxStep))) {
            if (rows.length >= Number(variables.pageSize)) break;
            rows.push(wandbJson(row));
          }
          return { history: rows };
        });
      case 'SampledHistoryPage':
        return inRun((run) => {
          const spec = JSON.parse(String(variables.spec)) as {
            keys: string[];
            minStep: number;
            maxStep: number;
            samples: number;
          };
          const rows: Record<string, unknown>[] = [];
          // maxStep is inclusive in a sampled-history spec.
          for (const row of run.history.rows(spec.minStep, spec.maxStep + 1)) {
            if (rows.length >= spec.samples) break;
            if (hasAll(row, spec.keys)) rows.push(pick(row, spec.keys));
          }
          return { sampledHistory: [rows] };
        });
      case 'ProjectArtifact': {
        const entity = String(variables.entity);
        const project = String(variables.project);
        if (!projectExists(entity, project)) return { data: { project: null } };
        const [sequence, alias] = String(variables.name).split(':');
        for (const run of allRuns().filter((r) => r.entity === entity && r.project === project)) {
          const index = (run.artifacts ?? []).findIndex(
            (a) =>
              a.name === sequence &&
              (`v${a.version ?? 0}` === alias || (a.aliases ?? ['latest']).includes(alias ?? '')),
          );
          if (index >= 0)
            return { data: { project: { artifact: artifactNode(run, run.artifacts![index]!, index) } } };
        }
        return { data: { project: { artifact: null } } };
      }
      case 'RunOutputArtifacts':
        return inRun((run) => {
          const all = (run.artifacts ?? []).map((a, i) => artifactNode(run, a, i));
          const start = variables.cursor ? Number(variables.cursor) : 0;
          const perPage = Number(variables.perPage ?? 100);
          const page = all.slice(start, start + perPage);
          return {
            artifacts: {
              totalCount: all.length,
              pageInfo: {
                __typename: 'PageInfo',
                endCursor: String(start + page.length),
                hasNextPage: start + page.length < all.length,
              },
              edges: page.map((node) => ({ node })),
            },
          };
        });
      case 'FetchArtifactManifest': {
        const found = findArtifact(String(variables.id));
        if (!found) return { data: { artifact: null } };
        return {
          data: {
            artifact: {
              currentManifest: {
                file: {
                  directUrl: `${storageUrl}/storage/manifests/${encodeURIComponent(String(variables.id))}?X-Goog-Signature=fake-signature`,
                },
              },
            },
          },
        };
      }
      case 'RunFiles': {
        const result = inRun((run) => {
          const names = (variables.fileNames as string[] | undefined) ?? [];
          const all = (run.files ?? []).filter((f) => names.length === 0 || names.includes(f.name));
          const start = variables.fileCursor ? Number(variables.fileCursor) : 0;
          const limit = Number(variables.fileLimit ?? 50);
          const page = all.slice(start, start + limit);
          return {
            fileCount: (run.files ?? []).length,
            files: {
              edges: page.map((f, i) => ({ node: fileNode(run, f), cursor: String(start + i + 1) })),
              pageInfo: {
                endCursor: String(start + page.length),
                hasNextPage: start + page.length < all.length,
              },
            },
          };
        });
        const data = result.data as { project: Record<string, unknown> | null };
        if (data.project) data.project = { internalId: '4711', ...data.project };
        return result;
      }
      default:
        return {
          status: 400,
          body: JSON.stringify({
            errors: [{ message: `Cannot query operation "${operation}" on the fake` }],
          }),
        };
    }
  };

  const readBody = (req: IncomingMessage) =>
    new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });

  const takeScripted = (operation: string): ScriptedReply | undefined => {
    const index = scripted.findIndex((s) => s.operation === operation || s.operation === '*');
    if (index < 0) return undefined;
    const entry = scripted[index]!;
    entry.times -= 1;
    if (entry.times <= 0) scripted.splice(index, 1);
    return entry.reply;
  };

  const unauthorized = (res: ServerResponse) =>
    send(
      res,
      401,
      JSON.stringify({
        errors: [{ message: 'user is not logged in', extensions: { code: 'PERMISSION_ERROR' } }],
        data: null,
      }),
    );

  const api = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const pathname = new URL(req.url ?? '/', 'http://fake').pathname;
      const record: FakeRequest = {
        method: req.method ?? 'GET',
        path: pathname,
        server: 'api',
        ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      };
      requests.push(record);
      if (req.method === 'POST' && pathname === '/sdk/otel/v1/metrics') return send(res, 200, '');
      // Test-only: what the fake saw, for benchmarks that run it in another process.
      if (req.method === 'GET' && pathname === '/__fake/operations') {
        return send(res, 200, JSON.stringify(requests.flatMap((r) => (r.operation ? [r.operation] : []))));
      }
      if (req.method === 'POST' && pathname === '/__fake/reset') {
        requests.length = 0;
        return send(res, 200, '{}');
      }
      if (req.method === 'POST' && pathname === '/graphql') {
        const parsed = JSON.parse(body) as { query: string; variables?: Record<string, unknown> };
        const operation = OPERATION_NAME.exec(parsed.query)?.[1] ?? '(anonymous)';
        record.operation = operation;
        record.variables = parsed.variables ?? {};
        if (req.headers.authorization !== expectedAuth) return unauthorized(res);
        const reply = takeScripted(operation);
        if (reply) {
          return send(
            res,
            reply.status,
            reply.body ?? JSON.stringify({ errors: [{ message: 'scripted' }] }),
            reply.headers,
          );
        }
        const result = answer(operation, record.variables);
        if ('status' in result) return send(res, result.status, result.body);
        return send(res, 200, JSON.stringify({ data: result.data }));
      }
      const file = /^\/files\/([^/]+)\/([^/]+)\/([^/]+)\/(.+)$/.exec(pathname);
      if (req.method === 'GET' && file) {
        if (req.headers.authorization !== expectedAuth) return unauthorized(res);
        // W&B redirects file downloads to signed storage URLs.
        res.writeHead(302, {
          location: `${storageUrl}/storage/files/${file.slice(1).join('/')}?X-Goog-Signature=s`,
        });
        return res.end();
      }
      return send(res, 404, JSON.stringify({ errors: [{ message: `no route ${req.method} ${pathname}` }] }));
    })().catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, JSON.stringify({ errors: [{ message: String(error) }] }));
    });
  });

  const storage = createServer((req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://fake').pathname;
    requests.push({
      method: req.method ?? 'GET',
      path: pathname,
      server: 'storage',
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    const manifest = /^\/storage\/manifests\/(.+)$/.exec(pathname);
    if (manifest) {
      const found = findArtifact(decodeURIComponent(manifest[1]!));
      if (!found || found.artifact.manifest === 'missing') {
        res.writeHead(404, { 'content-type': 'application/xml' });
        return res.end('<Error><Code>NoSuchKey</Code></Error>');
      }
      if (found.artifact.manifest === 'corrupt') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end('{"version": 1, "contents": ');
      }
      const body = manifestOf(found.artifact);
      if (found.artifact.manifest === 'wrong-digest')
        body.contents['extra.bin'] = { digest: 'AAAA', size: 1 };
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify(body));
    }
    const file = /^\/storage\/files\/([^/]+)\/([^/]+)\/([^/]+)\/(.+)$/.exec(pathname);
    const run = file ? findRun(file[1]!, file[2]!, file[3]!) : undefined;
    const found = run?.files?.find((f) => f.name === file?.[4]);
    if (found) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      return res.end(found.corrupt ? `${found.content}corrupted` : found.content);
    }
    res.writeHead(404);
    res.end('not found');
  });

  const listen = (server: Server) =>
    new Promise<string>((resolve) =>
      server.listen(0, '127.0.0.1', () =>
        resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
      ),
    );
  url = await listen(api);
  storageUrl = await listen(storage);

  const close = (server: Server) =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });

  return {
    url,
    storageUrl,
    apiKey,
    requests,
    addRun(run) {
      runs.set(`${run.entity}/${run.project}/${run.name}`, run);
      return run;
    },
    script(operation, reply, times = 1) {
      scripted.push({ operation, reply, times });
    },
    unscript() {
      scripted.length = 0;
    },
    operations: () => requests.flatMap((r) => (r.operation ? [r.operation] : [])),
    async close() {
      await Promise.all([close(api), close(storage)]);
    },
  };
}

/** A finished run with a short history, a summary, a config, a model artifact and a checkpoint file. */
export function finishedRun(overrides: Partial<FakeRun> = {}): FakeRun {
  const history = arrayHistory(
    Array.from({ length: 300 }, (_, step) => ({
      _step: step,
      train_loss: 2 / (1 + step / 20),
      ...(step % 100 === 99 || step === 0
        ? { eval_loss: 1.5 / (1 + step / 30), accuracy: 0.5 + step / 700 }
        : {}),
    })),
  );
  return {
    entity: 'acme-ml',
    project: 'llm-finetune',
    name: 'a1b2c3d4',
    state: 'finished',
    config: { learning_rate: 0.0003, batch_size: 32, model_name: 'llama-3-8b' },
    summary: {
      _step: 299,
      _runtime: 1843.52,
      _timestamp: 1767227443.52,
      _wandb: { runtime: 1843 },
      train_loss: 2 / (1 + 299 / 20),
      eval_loss: 0.3127,
      accuracy: 0.9132,
    },
    createdAt: '2026-01-01T00:00:00',
    heartbeatAt: '2026-01-01T00:30:43',
    history,
    artifacts: [
      {
        name: 'model-a1b2c3d4',
        type: 'model',
        files: { 'adapter.safetensors': 'weights', 'config.json': '{"r": 8}' },
      },
    ],
    files: [
      { name: 'config.yaml', content: 'learning_rate: 0.0003\n' },
      { name: 'checkpoints/final.json', content: '{"step": 299}' },
    ],
    ...overrides,
  };
}

/** Reads a JSON file of a run directory, or undefined. */
function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

function readJsonLines(file: string): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory())
      return entry.name === 'attempts' ? [] : filesUnder(path.join(dir, entry.name), relative);
    return [relative];
  });
}

/**
 * A run computed from a trainer's run directory (`examples/trainer/train.js` layout), as W&B would show it
 * had the trainer logged there: history from `metrics.jsonl`, summary, config, state from the trainer's
 * start and end records, heartbeat from the metrics file's mtime (or `heartbeatAt` when given), the run
 * directory's files, and the artifacts of `artifacts.json`. Undefined before the trainer started (W&B has
 * no run before `wandb.init()`).
 */
export function runFromRunDir(
  runDir: string,
  where: { entity: string; project: string; name: string },
  options: { heartbeatAt?: string } = {},
): FakeRun | undefined {
  const starts = readJsonLines(path.join(runDir, 'starts.jsonl'));
  if (starts.length === 0) return undefined;
  const ends = readJsonLines(path.join(runDir, 'ends.jsonl'));
  const lastStart = starts.at(-1)!;
  const end = ends.findLast((e) => e.pid === lastStart.pid);
  const status = end?.status;
  const state =
    end === undefined
      ? 'running'
      : status === 'completed'
        ? 'finished'
        : status === 'preempted'
          ? 'preempted'
          : status === 'stopped'
            ? 'killed'
            : 'failed';
  const rows = readJsonLines(path.join(runDir, 'metrics.jsonl')).filter(
    (row): row is FakeRow => typeof row._step === 'number',
  );
  const summary = (readJson(path.join(runDir, 'summary.json')) as Record<string, unknown> | undefined) ?? {};
  const metrics = path.join(runDir, 'metrics.jsonl');
  const heartbeatAt =
    options.heartbeatAt ?? (existsSync(metrics) ? statSync(metrics).mtime.toISOString() : undefined);
  const files = filesUnder(runDir).map((name) => ({
    name,
    content: readFileSync(path.join(runDir, name), 'utf8'),
  }));
  const declared =
    (readJson(path.join(runDir, 'artifacts.json')) as { name: string; type: string; path: string }[]) ?? [];
  const artifacts: FakeArtifact[] = declared.flatMap((a) => {
    const file = path.join(runDir, a.path);
    return existsSync(file)
      ? [{ name: a.name, type: a.type, files: { [path.basename(a.path)]: readFileSync(file, 'utf8') } }]
      : [];
  });
  return {
    ...where,
    state,
    config: (readJson(path.join(runDir, 'config.json')) as Record<string, unknown> | undefined) ?? {},
    summary: { ...(rows.length ? { _step: rows.at(-1)!._step } : {}), ...summary },
    ...(typeof starts[0]?.startedAt === 'string' ? { createdAt: starts[0].startedAt } : {}),
    ...(heartbeatAt ? { heartbeatAt } : {}),
    history: arrayHistory(rows),
    files,
    artifacts,
  };
}
