import { ApplicationFailure } from '@temporalio/common';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { Deliverables, FailureType } from '../../src/experiment';
import { checkDeliverables } from '../../src/activities/tracking/deliverable-check';
import { RunInfo, RunNotFoundError, type HistoryRow } from '../../src/activities/tracking/run-tracker';
import {
  trackerFailure,
  TrackerAuthError,
  TrackerMalformedResponseError,
  TrackerRequestError,
  TrackerUnavailableError,
} from '../../src/activities/tracking/tracker-errors';
import { WandbTracker } from '../../src/activities/tracking/wandb';
import { hashedData } from '../../src/activities/reproducibility/launch-capture';
import { LaunchRejectedError } from '../../src/activities/training/launcher';
import { retryAfterMs } from '../../src/activities/tracking/wandb-transport';
import {
  arrayHistory,
  finishedRun,
  generatedHistory,
  startFakeWandb,
  type FakeWandb,
} from '../support/fake-wandb';

let fake: FakeWandb;
const trackers: WandbTracker[] = [];
const servers: Server[] = [];

beforeEach(async () => {
  fake = await startFakeWandb();
});
afterEach(async () => {
  await Promise.all(trackers.splice(0).map((t) => t.close()));
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise<void>((resolve) => {
          s.closeAllConnections();
          s.close(() => resolve());
        }),
    ),
  );
  await fake.close();
});

function tracker(options: ConstructorParameters<typeof WandbTracker>[0] = {}): WandbTracker {
  const made = new WandbTracker({ baseUrl: fake.url, apiKey: fake.apiKey, ...options });
  trackers.push(made);
  return made;
}

const ref = (name = 'a1b2c3d4', project = 'llm-finetune') => ({
  experimentId: 'exp-unused',
  entity: 'acme-ml',
  project,
  runId: name,
});

async function collect(rows: AsyncIterable<HistoryRow>): Promise<HistoryRow[]> {
  const all: HistoryRow[] = [];
  for await (const row of rows) all.push(row);
  return all;
}

async function failureOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the call to fail');
}

describe('credentials', () => {
  test('viewer sends HTTP Basic api:<key> and returns who the key belongs to', async () => {
    const viewer = await tracker().viewer();
    expect(viewer).toEqual({
      id: 'VXNlcjp2MTphbGljZQ==',
      entity: 'acme-ml',
      username: 'alice',
      teams: ['acme-ml'],
    });
    const request = fake.requests.find((r) => r.operation === 'Viewer')!;
    expect(request.authorization).toBe(`Basic ${Buffer.from(`api:${fake.apiKey}`).toString('base64')}`);
  });

  test('a wrong key is a non-retryable authentication failure that says how to fix it', async () => {
    const error = await failureOf(tracker({ apiKey: 'wrong-key' }).viewer());
    expect(error).toBeInstanceOf(TrackerAuthError);
    expect(error.message).toMatch(/HTTP 401.*user is not logged in.*WANDB_API_KEY/);
    expect(error.message).not.toContain('wrong-key');
    const failure = trackerFailure(error) as ApplicationFailure;
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure.type).toBe(FailureType.TrackerAuthFailed);
    expect(failure.nonRetryable).toBe(true);
  });

  test('no key at all fails when the tracker is built, naming WANDB_API_KEY', () => {
    expect(() => new WandbTracker({ baseUrl: fake.url, apiKey: '' })).toThrow(/WANDB_API_KEY is not set/);
    expect(fake.requests).toHaveLength(0);
  });
});

describe('runs', () => {
  test('a finished run: state, unwrapped config, summary, sorted history keys, URL and last values', async () => {
    fake.addRun(finishedRun());
    const info = await tracker().run(ref());
    expect(RunInfo.parse(info)).toEqual(info);
    expect(info.state).toBe('finished');
    expect(info.config).toEqual({ learning_rate: 0.0003, batch_size: 32, model_name: 'llama-3-8b' });
    expect(info.summary).toMatchObject({ eval_loss: 0.3127, accuracy: 0.9132, _step: 299 });
    expect(info.historyKeys).toEqual(['_step', 'accuracy', 'eval_loss', 'train_loss']);
    expect(info.url).toBe(`${fake.url}/acme-ml/llm-finetune/runs/a1b2c3d4`);
    expect(info.createdAt).toBe('2026-01-01T00:00:00.000Z');
    expect(info.heartbeatAt).toBe('2026-01-01T00:30:43.000Z');
    expect(info.lastLogged?.accuracy).toEqual({ value: 0.5 + 299 / 700, count: 4 });
    expect(info.synced).toBe(true);
  });

  test('the run URL of W&B cloud is on wandb.ai', () => {
    const cloud = new WandbTracker({ apiKey: 'k', baseUrl: 'https://api.wandb.ai' });
    trackers.push(cloud);
    expect(cloud.runUrl(ref())).toBe('https://wandb.ai/acme-ml/llm-finetune/runs/a1b2c3d4');
  });

  test('a crashed run reports crashed, and synced_and_downloadable fails on it', async () => {
    fake.addRun(finishedRun({ state: 'crashed' }));
    const info = await tracker().run(ref());
    expect(info.state).toBe('crashed');
    const deliverables = Deliverables.parse([{ name: 'synced', type: 'synced_and_downloadable' }]);
    const { report } = await checkDeliverables(tracker(), ref(), deliverables);
    expect(report.passed).toBe(false);
    expect(report.results[0]!.found).toMatch(/run is crashed, not finished/);
  });

  test('a running run whose heartbeat is hours old is reported stale (probably crashed), with the heartbeat age', async () => {
    const heartbeatAt = new Date(Date.now() - 3 * 3600_000).toISOString();
    fake.addRun(finishedRun({ state: 'running', heartbeatAt }));
    const deliverables = Deliverables.parse([{ name: 'synced', type: 'synced_and_downloadable' }]);
    const { report } = await checkDeliverables(tracker(), ref(), deliverables);
    expect(report.run_state).toMatchObject({ state: 'running', heartbeat_at: heartbeatAt, stale: true });
    // Measured from when the run was read: three hours, give or take the test's own run time.
    expect(report.run_state!.heartbeat_age_seconds).toBeGreaterThanOrEqual(3 * 3600);
    expect(report.run_state!.heartbeat_age_seconds).toBeLessThan(3 * 3600 + 60);
    expect(report.results[0]!.found).toMatch(
      /run is running but stale: no heartbeat for 3 h 0 min, more than the 15 min allowed, so it probably crashed/,
    );
  });

  test('a running run with a recent heartbeat is running, not stale; the threshold is an option', async () => {
    const heartbeatAt = new Date(Date.now() - 5 * 60_000).toISOString();
    fake.addRun(finishedRun({ state: 'running', heartbeatAt }));
    const deliverables = Deliverables.parse([{ name: 'synced', type: 'synced_and_downloadable' }]);
    const fresh = await checkDeliverables(tracker(), ref(), deliverables);
    expect(fresh.report.run_state).toMatchObject({ state: 'running', stale: false });
    expect(fresh.report.results[0]!.found).toMatch(/run is running, not finished/);
    const strict = await checkDeliverables(tracker({ staleAfterMs: 60_000 }), ref(), deliverables);
    expect(strict.report.run_state).toMatchObject({ state: 'running', stale: true, stale_after_seconds: 60 });
  });

  test('a missing run is a RunNotFoundError naming entity, project and run', async () => {
    fake.addRun(finishedRun());
    const error = await failureOf(tracker().run(ref('no-such-run')));
    expect(error).toBeInstanceOf(RunNotFoundError);
    expect(error.message).toMatch(/no run acme-ml\/llm-finetune\/no-such-run/);
    expect((trackerFailure(error) as ApplicationFailure).type).toBe(FailureType.TrackerRunNotFound);
    expect((trackerFailure(error) as ApplicationFailure).nonRetryable).toBe(true);
  });

  test('a missing project is a RunNotFoundError naming the project', async () => {
    const error = await failureOf(tracker().run(ref('a1b2c3d4', 'no-such-project')));
    expect(error).toBeInstanceOf(RunNotFoundError);
    expect(error.message).toMatch(/no project acme-ml\/no-such-project/);
  });

  test('GraphQL errors in a 200 fail with their messages, not retried', async () => {
    fake.addRun(finishedRun());
    fake.script('Run', {
      status: 200,
      body: JSON.stringify({
        errors: [
          { message: 'permission denied', path: ['project'], extensions: { code: 'PERMISSION_ERROR' } },
        ],
        data: { project: null },
      }),
    });
    const error = await failureOf(tracker().run(ref()));
    expect(error).toBeInstanceOf(TrackerRequestError);
    expect(error.message).toMatch(/W&B Run .* answered with errors: project: permission denied/);
    expect((trackerFailure(error) as ApplicationFailure).nonRetryable).toBe(true);
  });

  test('429 with Retry-After is retryable after exactly that delay (nextRetryDelay), and the next call works', async () => {
    fake.addRun(finishedRun());
    fake.script('Run', {
      status: 429,
      headers: { 'retry-after': '7' },
      body: JSON.stringify({ errors: [{ message: 'rate limit exceeded' }] }),
    });
    const client = tracker();
    const error = await failureOf(client.run(ref()));
    expect(error).toBeInstanceOf(TrackerUnavailableError);
    expect((error as TrackerUnavailableError).retryAfterMs).toBe(7000);
    expect(error.message).toMatch(/429 \(rate limited\); it asks to retry after 7 s: rate limit exceeded/);
    const failure = trackerFailure(error) as ApplicationFailure;
    expect(failure.type).toBe(FailureType.TrackerUnavailable);
    expect(failure.nonRetryable).toBe(false);
    expect(failure.nextRetryDelay).toBe(7000);
    expect((await client.run(ref())).state).toBe('finished');
  });

  test('a 5xx is retryable; Retry-After as an HTTP date is honoured too', async () => {
    fake.addRun(finishedRun());
    fake.script('Run', { status: 503, body: 'upstream unavailable' });
    const error = await failureOf(tracker().run(ref()));
    expect(error).toBeInstanceOf(TrackerUnavailableError);
    expect((trackerFailure(error) as ApplicationFailure).nextRetryDelay).toBeUndefined();
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(retryAfterMs('1.5', now)).toBe(1500);
    expect(retryAfterMs('soon', now)).toBeUndefined();
  });

  test('a summary that is not JSON fails the call naming the field and the run', async () => {
    fake.addRun(finishedRun({ rawSummaryMetrics: '{"accuracy": 0.9' }));
    const error = await failureOf(tracker().run(ref()));
    expect(error).toBeInstanceOf(TrackerMalformedResponseError);
    expect(error.message).toMatch(/summaryMetrics of run acme-ml\/llm-finetune\/a1b2c3d4 is not JSON/);
    expect((trackerFailure(error) as ApplicationFailure).type).toBe(FailureType.TrackerMalformedResponse);
  });

  test('an answer of the wrong shape fails naming the path that did not parse', async () => {
    fake.script('Run', {
      status: 200,
      body: JSON.stringify({ data: { project: { run: { id: 'x', name: 'a1b2c3d4', state: 5 } } } }),
    });
    const error = await failureOf(tracker().run(ref()));
    expect(error).toBeInstanceOf(TrackerMalformedResponseError);
    expect(error.message).toMatch(/project\.run\.state/);
  });

  test('a body that is not JSON at all fails as malformed, with an excerpt', async () => {
    fake.script('Viewer', { status: 200, body: '<html>captive portal</html>' });
    const error = await failureOf(tracker().viewer());
    expect(error).toBeInstanceOf(TrackerMalformedResponseError);
    expect(error.message).toMatch(/not JSON: <html>captive portal<\/html>/);
  });

  test('a server that does not answer in time is a retryable timeout', async () => {
    const silent = createServer(() => undefined);
    servers.push(silent);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    const client = tracker({
      baseUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
      timeoutMs: 200,
    });
    const error = await failureOf(client.viewer());
    expect(error).toBeInstanceOf(TrackerUnavailableError);
    expect(error.message).toMatch(/no answer within 200 ms/);
  });

  test('runState asks only for state and heartbeat', async () => {
    fake.addRun(finishedRun({ state: 'running', heartbeatAt: '2026-01-02T03:04:05' }));
    expect(await tracker().runState(ref())).toEqual({
      state: 'running',
      heartbeatAt: '2026-01-02T03:04:05.000Z',
    });
    expect(fake.operations()).toEqual(['RunState']);
  });
});

describe('history', () => {
  const nanRun = () =>
    finishedRun({
      history: arrayHistory([
        { _step: 0, loss: 1 },
        { _step: 1, loss: Number.NaN },
        { _step: 2, loss: Number.POSITIVE_INFINITY, acc: 0.5 },
        { _step: 3, loss: 0.5 },
      ]),
    });

  test('the whole history streams in step order, in pages, reading W&B NaN and Infinity', async () => {
    fake.addRun(nanRun());
    const rows = await collect(tracker({ historyPageSize: 2 }).history(ref()));
    expect(rows).toEqual([
      { _step: 0, loss: 1 },
      { _step: 1, loss: 'NaN' },
      { _step: 2, loss: 'Infinity', acc: 0.5 },
      { _step: 3, loss: 0.5 },
    ]);
    expect(fake.operations()).toEqual(['RunHistoryKeys', 'HistoryPage', 'HistoryPage']);
    const pages = fake.requests.filter((r) => r.operation === 'HistoryPage').map((r) => r.variables);
    expect(pages).toEqual([
      { entity: 'acme-ml', project: 'llm-finetune', run: 'a1b2c3d4', minStep: 0, maxStep: 2, pageSize: 2 },
      { entity: 'acme-ml', project: 'llm-finetune', run: 'a1b2c3d4', minStep: 2, maxStep: 4, pageSize: 2 },
    ]);
  });

  test('history for chosen keys pages through SampledHistoryPage and keeps only rows with every key', async () => {
    fake.addRun(nanRun());
    const rows = await collect(tracker({ historyPageSize: 3 }).history(ref(), { keys: ['acc'] }));
    expect(rows).toEqual([{ _step: 2, acc: 0.5 }]);
    const specs = fake.requests
      .filter((r) => r.operation === 'SampledHistoryPage')
      .map((r) => JSON.parse(String(r.variables!.spec)));
    expect(specs).toEqual([
      { keys: ['acc', '_step'], minStep: 0, maxStep: 2, samples: 3 },
      { keys: ['acc', '_step'], minStep: 3, maxStep: 5, samples: 3 },
    ]);
  });

  test('sampled history for chosen keys is one RunSampledHistory call', async () => {
    fake.addRun(finishedRun());
    const rows = await collect(tracker().history(ref(), { keys: ['train_loss'], samples: 3 }));
    expect(rows.map((r) => r._step)).toEqual([0, 150, 299]);
    expect(Object.keys(rows[0]!).sort()).toEqual(['_step', 'train_loss']);
    const request = fake.requests.find((r) => r.operation === 'RunSampledHistory')!;
    expect(request.variables!.specs).toEqual(['{"keys":["_step","train_loss"],"samples":3}']);
  });

  test('a run with no history yields nothing and asks for no page', async () => {
    fake.addRun(finishedRun({ history: arrayHistory([]) }));
    expect(await collect(tracker().history(ref()))).toEqual([]);
    expect(fake.operations()).toEqual(['RunHistoryKeys']);
  });

  test('a history row that is not JSON fails naming the page', async () => {
    fake.addRun(finishedRun());
    fake.script('HistoryPage', {
      status: 200,
      body: JSON.stringify({ data: { project: { run: { history: ['{"_step": '] } } } }),
    });
    const error = await failureOf(collect(tracker().history(ref())));
    expect(error).toBeInstanceOf(TrackerMalformedResponseError);
    expect(error.message).toMatch(
      /row 0 of W&B's HistoryPage \[0, 1000\) of acme-ml\/llm-finetune\/a1b2c3d4 is not JSON/,
    );
  });

  test('a history of 1,000,000 rows streams through with bounded memory', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const rows = 1_000_000;
    fake.addRun(
      finishedRun({
        history: generatedHistory(rows, (step) => ({ loss: 1 / (1 + step), lr: 0.001 })),
      }),
    );
    gc();
    const baseline = process.memoryUsage().heapUsed;
    let peakGrowth = 0;
    let count = 0;
    let lastStep = -1;
    let ordered = true;
    for await (const row of tracker({ historyPageSize: 5000 }).history(ref())) {
      if (row._step !== lastStep + 1) ordered = false;
      lastStep = row._step;
      count += 1;
      if (count % 200_000 === 0) {
        gc();
        peakGrowth = Math.max(peakGrowth, process.memoryUsage().heapUsed - baseline);
      }
    }
    expect(count).toBe(rows);
    expect(ordered).toBe(true);
    // A million rows held at once would take well over 100 MB; streaming holds two pages of 5,000.
    expect(peakGrowth).toBeLessThan(48 * 1024 * 1024);
    expect(fake.operations().filter((op) => op === 'HistoryPage')).toHaveLength(rows / 5000);
  }, 120_000);
});

describe('artifacts and files', () => {
  test('an artifact reference resolves to the version its alias names now, for the reproducibility record', async () => {
    const run = finishedRun();
    run.artifacts = [
      { name: 'tokenizer', type: 'dataset', version: 3, aliases: ['latest'], files: { 'vocab.txt': 'a b' } },
    ];
    fake.addRun(run);
    const client = tracker();
    const resolved = await client.resolveArtifact('acme-ml/llm-finetune/tokenizer:latest');
    expect(resolved).toEqual({ version: 'v3', digest: expect.stringMatching(/^[0-9a-f]{32}$/) });
    expect(await client.resolveArtifact('acme-ml/llm-finetune/tokenizer:v3')).toEqual(resolved);
    await expect(client.resolveArtifact('acme-ml/llm-finetune/tokenizer:v9')).rejects.toThrow(
      /W&B has no artifact tokenizer:v9 in acme-ml\/llm-finetune/,
    );
    await expect(client.resolveArtifact('tokenizer')).rejects.toThrow(/is not a W&B artifact reference/);
    // The launch's data hashing records it (and refuses what W&B does not have) through this resolver.
    const data = await hashedData(
      {
        tok: 'wandb-artifact:acme-ml/llm-finetune/tokenizer:latest',
        gone: 'wandb-artifact:acme-ml/llm-finetune/nothing:v0',
      },
      '/tmp/unused-run-dir',
      undefined,
      (reference) => client.resolveArtifact(reference),
    ).catch((error: Error) => error);
    expect(data).toBeInstanceOf(LaunchRejectedError);
    expect((data as Error).message).toMatch(/data "gone": W&B has no artifact nothing:v0/);
    const one = await hashedData(
      { tok: 'wandb-artifact:acme-ml/llm-finetune/tokenizer:latest' },
      '/tmp/unused',
      undefined,
      (reference) => client.resolveArtifact(reference),
    );
    expect(one).toEqual([
      {
        name: 'tok',
        source: 'wandb-artifact:acme-ml/llm-finetune/tokenizer:latest',
        kind: 'wandb-artifact',
        ...resolved,
      },
    ]);
  });

  test('artifacts list type, name:version, aliases, state, size and digest', async () => {
    fake.addRun(finishedRun());
    const [artifact] = await tracker().artifacts(ref());
    expect(artifact).toMatchObject({
      name: 'model-a1b2c3d4',
      type: 'model',
      version: 'v0',
      aliases: ['latest'],
      state: 'COMMITTED',
      size: Buffer.byteLength('weights') + Buffer.byteLength('{"r": 8}'),
    });
    expect(artifact!.digest).toMatch(/^[0-9a-f]{32}$/);
    expect(artifact!.uri).toMatch(/^wandb-artifact:\/\//);
  });

  test('an artifact whose manifest downloads and matches its digest checks out; storage never sees the key', async () => {
    fake.addRun(finishedRun());
    const client = tracker();
    const [artifact] = await client.artifacts(ref());
    expect(await client.checkDownload(artifact!)).toEqual({ ok: true });
    const storage = fake.requests.filter((r) => r.server === 'storage');
    expect(storage.map((r) => r.path)).toEqual([expect.stringMatching(/^\/storage\/manifests\//)]);
    expect(storage[0]!.authorization).toBeUndefined();
  });

  test.each([
    [
      'missing',
      /did not download: HTTP 404 from http:\/\/127\.0\.0\.1:\d+\/storage\/manifests\/\S+: <Error>/,
    ],
    ['corrupt', /is not JSON/],
    ['wrong-digest', /has digest [0-9a-f]{32}, but W&B lists the artifact with digest/],
  ] as const)(
    'an artifact whose manifest is %s does not check out, and says why',
    async (manifest, message) => {
      fake.addRun(
        finishedRun({ artifacts: [{ name: 'model-a1b2c3d4', type: 'model', files: { a: 'b' }, manifest }] }),
      );
      const client = tracker();
      const [artifact] = await client.artifacts(ref());
      const check = await client.checkDownload(artifact!);
      expect(check.ok).toBe(false);
      expect(check.error).toMatch(message);
      expect(check.error).not.toMatch(/Signature/);
    },
  );

  test('a run file is found by name, downloads through W&B redirect, and parses', async () => {
    fake.addRun(finishedRun());
    const client = tracker();
    const probe = await client.probeFile(ref(), 'checkpoints/final.json', { load: 'json', download: true });
    expect(probe).toEqual({
      name: 'checkpoints/final.json',
      kind: 'file',
      exists: true,
      size_bytes: 13,
      loadable: true,
      downloadable: true,
    });
    const files = fake.requests.filter((r) => r.path.includes('checkpoints/final.json'));
    expect(files.map((r) => [r.server, Boolean(r.authorization)])).toEqual([
      ['api', true],
      ['storage', false],
    ]);
  });

  test('a run file whose content does not match its MD5 is not loadable; a missing file does not exist', async () => {
    fake.addRun(finishedRun({ files: [{ name: 'model.json', content: '{"w": 1}', corrupt: true }] }));
    const client = tracker();
    const corrupt = await client.probeFile(ref(), 'model.json', { load: 'any', download: false });
    expect(corrupt).toMatchObject({
      exists: true,
      loadable: false,
      error: expect.stringMatching(/does not match its MD5/),
    });
    expect(await client.probeFile(ref(), 'nope.json', { download: true })).toEqual({
      name: 'nope.json',
      kind: 'file',
      exists: false,
    });
  });
});

describe('deliverables against a W&B run', () => {
  const deliverables = Deliverables.parse([
    { name: 'curves', type: 'contains_keys', keys: ['train_loss', 'eval_loss'], in: 'history' },
    { name: 'summary-keys', type: 'contains_keys', keys: ['accuracy'] },
    { name: 'accuracy', type: 'threshold', metric: 'accuracy', op: '>=', value: 0.9 },
    { name: 'final-loss', type: 'threshold', metric: 'train_loss', op: '<', value: 0.2, aggregate: 'final' },
    { name: 'lr', type: 'matches_expected', expected: { learning_rate: 0.0003, batch_size: '32' } },
    { name: 'model', type: 'exists', artifact: 'model-a1b2c3d4:latest' },
    { name: 'checkpoint', type: 'exists_and_loadable', path: 'checkpoints/final.json' },
    { name: 'synced', type: 'synced_and_downloadable', artifacts: ['model-a1b2c3d4'] },
  ]);

  test('every deliverable type passes on a good run, and no summary, key or final check reads the history', async () => {
    fake.addRun(finishedRun());
    const { report, runUrl, summary } = await checkDeliverables(tracker(), ref(), deliverables);
    expect(report.results.filter((r) => !r.passed)).toEqual([]);
    expect(report.passed).toBe(true);
    expect(runUrl).toBe(`${fake.url}/acme-ml/llm-finetune/runs/a1b2c3d4`);
    expect(summary.accuracy).toBe(0.9132);
    const ops = fake.operations();
    expect(ops.filter((op) => /History/.test(op))).toEqual([]);
    expect(ops).toEqual(['Run', 'RunOutputArtifacts', 'RunFiles', 'FetchArtifactManifest']);
  });

  test("best_min reads only that metric's history; a failing manifest fails synced_and_downloadable", async () => {
    fake.addRun(
      finishedRun({
        artifacts: [{ name: 'model-a1b2c3d4', type: 'model', files: { w: 'x' }, manifest: 'missing' }],
      }),
    );
    const more = Deliverables.parse([
      {
        name: 'best-eval',
        type: 'threshold',
        metric: 'eval_loss',
        op: '<',
        value: 0.4,
        aggregate: 'best_min',
      },
      { name: 'synced', type: 'synced_and_downloadable' },
    ]);
    const { report } = await checkDeliverables(tracker(), ref(), more);
    expect(report.results[0]).toMatchObject({ passed: true, found: String(1.5 / (1 + 299 / 30)) });
    expect(report.results[1]).toMatchObject({ passed: false });
    expect(report.results[1]!.message).toMatch(
      /artifact "model-a1b2c3d4" does not download \(the manifest of artifact model-a1b2c3d4:v0 did not download: HTTP 404/,
    );
    const specs = fake.requests
      .filter((r) => r.operation === 'SampledHistoryPage')
      .map((r) => (JSON.parse(String(r.variables!.spec)) as { keys: string[] }).keys);
    expect(specs).toEqual([['eval_loss', '_step']]);
  });
});
