import type { NativeConnection } from '@temporalio/worker';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LablineSettings, type ResolvedSettings } from '../../src/client/settings';
import { TrackerAuthError } from '../../src/activities/tracking/tracker-errors';
import { WandbSettings, wandbLocationOf } from '../../src/activities/tracking/wandb-settings';
import { checkWandbKey, wandbTrackerFromSettings } from '../../src/activities/tracking/wandb-worker';
import { createLablineWorkers } from '../../src/workers/worker';
import { finishedRun, startFakeWandb, type FakeWandb } from '../support/fake-wandb';

let fake: FakeWandb;
beforeEach(async () => {
  fake = await startFakeWandb();
});
afterEach(async () => fake.close());

test('without a wandb section or WANDB_API_KEY there is no W&B tracker; with a section the key is required', () => {
  expect(wandbTrackerFromSettings(undefined, {})).toBeUndefined();
  expect(() => wandbTrackerFromSettings(WandbSettings.parse({}), {})).toThrow(TrackerAuthError);
  expect(() => wandbTrackerFromSettings(WandbSettings.parse({}), {})).toThrow(/WANDB_API_KEY is not set/);
});

test('WANDB_API_KEY alone turns W&B on; base URL from the settings, else WANDB_BASE_URL', async () => {
  const fromEnv = wandbTrackerFromSettings(undefined, {
    WANDB_API_KEY: 'k',
    WANDB_BASE_URL: 'https://wandb.acme.example/',
  });
  expect(fromEnv?.baseUrl).toBe('https://wandb.acme.example');
  expect(fromEnv?.appUrl).toBe('https://wandb.acme.example');
  const fromSettings = wandbTrackerFromSettings(
    WandbSettings.parse({ base_url: 'https://api.acme.example' }),
    {
      WANDB_API_KEY: 'k',
      WANDB_BASE_URL: 'https://ignored.example',
    },
  );
  expect(fromSettings?.baseUrl).toBe('https://api.acme.example');
  expect(fromSettings?.appUrl).toBe('https://app.acme.example');
  await Promise.all([fromEnv?.close(), fromSettings?.close()]);
  expect(wandbLocationOf(undefined, { WANDB_BASE_URL: 'https://w.example' })).toEqual({
    base_url: 'https://w.example',
  });
});

test('the settings file takes a wandb section and names a bad value by path', () => {
  const parsed = LablineSettings.parse({
    wandb: { base_url: 'https://wandb.acme.example', stall_timeout_seconds: 0 },
  });
  expect(parsed.wandb).toMatchObject({
    timeout_ms: 30_000,
    history_page_size: 1000,
    stall_timeout_seconds: 0,
  });
  const bad = LablineSettings.safeParse({ wandb: { timeout_ms: -1, api_key: 'secret' } });
  expect(bad.success).toBe(false);
  expect(bad.error!.issues.map((i) => i.path.join('.')).sort()).toEqual(['wandb', 'wandb.timeout_ms']);
});

test('the key check at start passes a good key, and stops on a refused one with the fix', async () => {
  const good = wandbTrackerFromSettings(WandbSettings.parse({ base_url: fake.url }), {
    WANDB_API_KEY: fake.apiKey,
  })!;
  expect(await checkWandbKey(good)).toMatchObject({ username: 'alice' });
  const bad = wandbTrackerFromSettings(WandbSettings.parse({ base_url: fake.url }), {
    WANDB_API_KEY: 'wrong',
  })!;
  await expect(checkWandbKey(bad)).rejects.toThrow(
    /The Labline worker cannot use W&B: W&B refused the API key.*WANDB_API_KEY/,
  );
  await Promise.all([good.close(), bad.close()]);
});

test('W&B unreachable at start only warns', async () => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const tracker = wandbTrackerFromSettings(WandbSettings.parse({ base_url: `http://127.0.0.1:${port}` }), {
    WANDB_API_KEY: 'k',
  })!;
  const warnings: string[] = [];
  expect(await checkWandbKey(tracker, (m) => warnings.push(m))).toBeUndefined();
  expect(warnings[0]).toMatch(/could not check the W&B API key at start .*ECONNREFUSED/);
  await tracker.close();
});

test('a worker with a refused W&B key fails at creation, before it polls anything', async () => {
  const settings = {
    ...LablineSettings.parse({ wandb: { base_url: fake.url } }),
    runsRoot: '/tmp/labline-unused-runs',
    dataDir: '/tmp/labline-unused-data',
  } satisfies ResolvedSettings;
  const previous = process.env.WANDB_API_KEY;
  process.env.WANDB_API_KEY = 'wrong';
  try {
    await expect(
      createLablineWorkers({ connection: {} as NativeConnection, namespace: 'default', settings }),
    ).rejects.toThrow(/cannot use W&B: W&B refused the API key/);
  } finally {
    if (previous === undefined) delete process.env.WANDB_API_KEY;
    else process.env.WANDB_API_KEY = previous;
  }
  expect(fake.operations()).toEqual(['Viewer']);
});

test('wandb.stale_after_seconds (default 900) decides when a running run counts as stale', async () => {
  expect(WandbSettings.parse({}).stale_after_seconds).toBe(900);
  expect(LablineSettings.safeParse({ wandb: { stale_after_seconds: -5 } }).error?.issues[0]?.path).toEqual([
    'wandb',
    'stale_after_seconds',
  ]);
  fake.addRun(
    finishedRun({ state: 'running', heartbeatAt: new Date(Date.now() - 3 * 3600_000).toISOString() }),
  );
  const ref = { experimentId: 'exp-unused', entity: 'acme-ml', project: 'llm-finetune', runId: 'a1b2c3d4' };
  const env = { WANDB_API_KEY: fake.apiKey };
  const byDefault = wandbTrackerFromSettings(WandbSettings.parse({ base_url: fake.url }), env)!;
  const lenient = wandbTrackerFromSettings(
    WandbSettings.parse({ base_url: fake.url, stale_after_seconds: 86_400 }),
    env,
  )!;
  try {
    expect((await byDefault.run(ref)).liveness).toMatchObject({ stale: true, stale_after_seconds: 900 });
    expect((await lenient.run(ref)).liveness).toMatchObject({ stale: false, stale_after_seconds: 86_400 });
  } finally {
    await Promise.all([byDefault.close(), lenient.close()]);
  }
});
