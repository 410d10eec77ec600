/**
 * The chaos suite, shortened for CI (issue 12): bench/chaos.ts's driver with 8 experiments, 2 at a time, and two
 * of each fault (the worker SIGKILLed, the worker stopped with SIGTERM, the server SIGKILLed) plus one outage of
 * the server longer than the training heartbeat timeout, on a server of the suite's kind that the test starts
 * itself on its own data file and port. Faults strike at points of the experiments' progress (a fixed seed picks
 * them), not at times, so a loaded machine changes when they strike but not where.
 */
import * as path from 'node:path';
import { runChaos, type ChaosRunResult } from '../../bench/chaos-run';
import { runFolder } from '../../bench/labline-stack';
import { killOwnServers, startOwnServer } from '../support/own-server';
import { testServerKind } from '../support/temporal-cli';
import { workflowBundle } from '../support/temporal';

const { dir, cleanUp } = runFolder('labline-chaos-test-', 30_000);
afterAll(async () => {
  await killOwnServers();
  await cleanUp();
});

const heartbeatTimeoutSeconds = 5;

test(
  `8 experiments through worker kills and stops, server kills and an outage (${testServerKind()} server): ` +
    'all complete, no launch twice, no trainer killed, no approval lost, no stall over 90 s',
  async () => {
    const db = path.join(dir, 'server.wal');
    const lines: string[] = [];
    let result: ChaosRunResult | undefined;
    try {
      result = await runChaos({
        label: 'ci',
        dir,
        bundlePath: workflowBundle().codePath,
        startServer: async (port) => {
          const server = await startOwnServer(db, port);
          // startOwnServer can only kill: the outage is a killed server kept down.
          return { address: server.address, kill: () => server.kill(), stop: () => server.kill() };
        },
        experiments: 8,
        inFlight: 2,
        seed: 7,
        faults: { 'worker-kill': 2, 'worker-stop': 2, 'server-kill': 2, 'server-outage': 1 },
        // Not at the launch gate or right after its approval: a worker killed inside the few milliseconds
        // between claiming a launch key and starting the supervisor loses that launch (a known defect, which
        // bench/chaos.ts, striking there too, reports); striking there on purpose would make this test fail at
        // random rather than pin down what holds.
        points: ['training', 'validation', 'analysis', 'writing'],
        trainer: { steps: 150, stepDelayMs: 40 },
        settings: {
          training_heartbeat_timeout_seconds: heartbeatTimeoutSeconds,
          activity_heartbeat_timeout_seconds: heartbeatTimeoutSeconds,
          launch_timeout_seconds: 10,
          training_poll_interval_ms: 250,
        },
        outageMs: (heartbeatTimeoutSeconds + 3) * 1000,
        statusPollMs: 500,
        timeouts: {
          runMs: 240_000,
          processStartMs: 60_000,
          processStopMs: 15_000,
          callMs: 10_000,
          approvalMs: 60_000,
          settleCapMs: 60_000,
          slowToMoveMs: 20_000,
        },
        log: (line) => lines.push(line),
      });
    } finally {
      if (!result || result.faults.some((f) => f.skipped) || Object.values(result.goals).some((g) => !g.met))
        console.log(`${lines.join('\n')}\n${JSON.stringify(result, null, 2)}`);
    }

    // Every planned fault struck, with experiments in flight: otherwise the goals below would prove little.
    expect(result.faults.filter((f) => f.skipped)).toEqual([]);
    expect(result.unexpectedExits).toEqual([]);
    const { figures } = result;
    expect({
      completed: figures.completed,
      duplicateLaunches: figures.duplicateLaunches,
      healthyTrainersKilled: figures.healthyTrainersKilled,
      trainersVanished: figures.trainersVanished,
      approvalsLost: figures.approvalsLost,
    }).toEqual({
      completed: 8,
      duplicateLaunches: 0,
      healthyTrainersKilled: 0,
      trainersVanished: 0,
      approvalsLost: 0,
    });
    expect(figures.approvalsAccepted).toBe(8);
    expect(figures.longestStallMs).toBeLessThanOrEqual(90_000);
  },
  360_000,
);
