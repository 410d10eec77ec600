/**
 * The PyTorch example (examples/pytorch.yaml) through Labline, with the trainer's own Python: it completes with
 * its deliverables (the checkpoint loads with torch), and a SIGTERM mid-training is a preemption that resumes
 * from the checkpoint with the loss curve continuous across the resume.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { experimentHandle, experimentStatus, submitExperiment } from '../../src/client/experiments';
import { loadSpecFile } from '../../src/client/spec-file';
import { ExperimentSpec } from '../../src/experiment';
import { experimentRig, waitForStatus } from '../support/experiments';
import { describeWithTorch } from '../support/python';
import { startTestTemporal, withWorker, type TestTemporal } from '../support/temporal';

const repo = path.resolve(__dirname, '../..');

describeWithTorch('the PyTorch example', (python) => {
  let env: TestTemporal;
  beforeAll(async () => {
    env = await startTestTemporal();
  });
  afterAll(async () => env?.stop());

  test('SIGTERM mid-training: the trainer checkpoints, Labline resumes it, the curves run on without a seam', async () => {
    const rig = experimentRig();
    const example = loadSpecFile(path.join(repo, 'examples/pytorch.yaml'));
    const id = `exp-pytorch-${process.pid}`;
    const spec = ExperimentSpec.parse({
      ...example,
      experiment_id: id,
      approvals: { launch: { enabled: false }, publish: { enabled: false } },
      // The virtualenv's Python, as `python` is on a researcher's PATH once the virtualenv is active; a little
      // slower per step, so that the signal comes mid-training.
      training: {
        ...example.training,
        command: python,
        args: [...example.training.args, '--step-delay-ms=20'],
      },
    });
    const runDir = path.join(rig.runsRoot, id);
    const status = await withWorker(
      env,
      { taskQueue: rig.taskQueue, activities: rig.activities },
      async () => {
        await submitExperiment({ client: env.client, spec, settings: rig.settings });
        await waitForStatus(env.client, id, (s) => (s.attempts[0]?.step ?? 0) >= 120, 120_000);
        const [first] = readFileSync(path.join(runDir, 'starts.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as { pid: number });
        process.kill(first!.pid, 'SIGTERM');
        expect((await experimentHandle(env.client, id).result()).end_stage).toBe('completed');
        return experimentStatus(env.client, id);
      },
    );

    expect(status.attempts.map((a) => a.outcome)).toEqual(['preempted', 'success']);
    expect(status.attempts[1]!.resumed_from).toBe(path.join(runDir, 'checkpoints', 'latest.json'));
    const log = readFileSync(path.join(runDir, 'attempts', `${id}-launch-1`, 'train.log'), 'utf8');
    expect(log).toMatch(/received SIGTERM; checkpointing and stopping/);
    expect(log).toMatch(/LABLINE_PREEMPTED: stopping after SIGTERM at step \d+/);
    // One row per step, 0 to 299, each once: the rows the stopped launch logged past its checkpoint are gone.
    const steps = readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { _step: number })._step);
    expect(steps).toEqual(Array.from({ length: 300 }, (_value, step) => step));
    const results = JSON.parse(readFileSync(path.join(runDir, 'results.json'), 'utf8')) as {
      deliverables_status: Record<string, string>;
      summary_metrics: Record<string, number>;
    };
    expect(results.deliverables_status).toEqual({
      curves: 'met',
      accuracy: 'met',
      checkpoint_loads: 'met',
      config_recorded: 'met',
    });
    expect(results.summary_metrics['eval/accuracy']).toBeGreaterThanOrEqual(0.95);
  }, 240_000);
});
