import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { trainerPath } from '../support/experiments';
import { labline as runLabline, LOCAL_ENV } from '../support/cli';
import { testServerKind } from '../support/temporal-cli';

const labline = (args: string[], cwd: string) =>
  runLabline(args, { cwd, env: LOCAL_ENV, timeoutMs: 120_000 });

test(`watch shows training progress every progress interval, not every heartbeat timeout (${testServerKind()})`, async () => {
  const cwd = mkdtempSync(path.join(tmpdir(), 'labline-progress-'));
  // The heartbeat timeout (30 s) would let the SDK hold progress back for 24 s; the progress interval does not.
  writeFileSync(
    path.join(cwd, 'labline.config.yaml'),
    'training:\n  heartbeat_timeout_seconds: 30\n  progress_interval_seconds: 1\n',
  );
  const id = `exp-progress-${process.pid}`;
  writeFileSync(
    path.join(cwd, 'spec.yaml'),
    JSON.stringify({
      experiment_id: id,
      name: 'progress',
      hypothesis: 'progress shows',
      training: { command: process.execPath, args: [trainerPath, '--steps=300', '--step-delay-ms=25'] },
      approvals: { launch: { enabled: false }, publish: { enabled: false } },
      deliverables: [],
    }),
  );
  expect(await labline(['server', '--detach', '--server', testServerKind()], cwd)).toMatchObject({ code: 0 });
  try {
    expect(await labline(['submit', 'spec.yaml'], cwd)).toMatchObject({ code: 0 });
    const watched = await labline(['watch', id], cwd);
    expect(watched).toMatchObject({ code: 0 });
    const steps = watched.stdout.match(/launch 1: step \d+/g) ?? [];
    // About 7.5 s of training: several reports, where the heartbeat throttle would allow one or two.
    expect(steps.length).toBeGreaterThanOrEqual(4);
    // --json: one line of JSON per change, each the status as `status --json` prints it.
    const json = await labline(['watch', id, '--json'], cwd);
    const lines = json.stdout.trim().split('\n');
    expect(lines).toHaveLength(1); // it has ended: one status, the last
    expect(JSON.parse(lines[0]!)).toMatchObject({ version: 1, experiment_id: id, stage: 'completed' });
    const status = JSON.parse((await labline(['status', id, '--json'], cwd)).stdout) as Record<
      string,
      unknown
    >;
    expect(Object.keys(status)[0]).toBe('version');
    expect(status).toMatchObject({ version: 1, experiment_id: id, stage: 'completed' });
  } finally {
    await labline(['server', 'stop'], cwd);
  }
}, 180_000);
