/**
 * The server unreachable for longer than the training heartbeat timeout, in the middle of training: the
 * watcher's attempt times out and is cancelled, which must not stop the trainer; the next attempt
 * re-attaches to it. Runs against a server of the suite's kind on its own data file, killed and restarted.
 */
import { Client, Connection } from '@temporalio/client';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { experimentStatus, submitExperiment } from '../../src/client/experiments';
import { ExperimentSpec } from '../../src/experiment';
import { experimentRig, trainerSpec, waitForStatus, startLablineWorkerProcess } from '../support/experiments';
import { killOwnServers, startOwnServer } from '../support/own-server';
import type { RunningProcess } from '../support/processes';

const processes: RunningProcess[] = [];
afterAll(async () => {
  await Promise.all(processes.map((p) => p.kill()));
  await killOwnServers();
});

const heartbeatTimeoutSeconds = 2;

test('an outage longer than the heartbeat timeout during training leaves the trainer running; the experiment completes with one launch', async () => {
  const db = path.join(mkdtempSync(path.join(tmpdir(), 'labline-outage-')), 'server.wal');
  const server = await startOwnServer(db);
  const rig = experimentRig(heartbeatTimeoutSeconds);
  const id = `exp-outage-${process.pid}`;
  const spec = ExperimentSpec.parse(
    trainerSpec(id, ['--steps=400', '--step-delay-ms=25'], {
      approvals: { launch: { enabled: false }, publish: { enabled: false } },
    }),
  );
  await startLablineWorkerProcess({ address: server.address, namespace: 'default' }, rig, processes);
  const connection = await Connection.connect({ address: server.address });
  try {
    const client = new Client({ connection, namespace: 'default' });
    await submitExperiment({ client, spec, settings: rig.settings });
    await waitForStatus(client, id, (s) => (s.attempts[0]?.step ?? 0) > 10);
    const trainerPid = trainerPids(rig.runsRoot, id)[0]!;

    await server.kill();
    // The outage itself: longer than the heartbeat timeout, so the watcher's attempt has timed out when the
    // server comes back.
    await new Promise((resolve) => setTimeout(resolve, (heartbeatTimeoutSeconds + 2) * 1000));
    expect(() => process.kill(trainerPid, 0)).not.toThrow();
    await startOwnServer(db, server.port);

    // A killed trainer would open the failure gate: stop at the first of the two.
    const ended = await waitForStatus(
      client,
      id,
      (s) => s.stage === 'completed' || s.waiting !== undefined,
      90_000,
    );
    expect({ stage: ended.stage, waiting: ended.waiting?.gate }).toEqual({
      stage: 'completed',
      waiting: undefined,
    });
    const status = await experimentStatus(client, id);
    expect(trainerPids(rig.runsRoot, id)).toEqual([trainerPid]);
    expect(status.attempts).toHaveLength(1);
    expect(status.attempts[0]!.outcome).toBe('success');
  } finally {
    await connection.close();
  }
}, 120_000);

/** The pid of every start of the trainer (the example trainer appends one line per start). */
function trainerPids(runsRoot: string, id: string): number[] {
  return readFileSync(path.join(runsRoot, id, 'starts.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { pid: number }).pid);
}
