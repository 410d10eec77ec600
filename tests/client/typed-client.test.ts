import { WorkflowNotFoundError } from '@temporalio/client';
import { ExperimentSpec } from '../../src/experiment';
import { decide, experimentStatus, gatesOf, submitExperiment } from '../../src/client/experiments';
import { InvalidIdError } from '../../src/client/ids';
import { InvalidSpecError } from '../../src/client/spec-file';
import { experimentRig, trainerSpec } from '../support/experiments';
import { startTestTemporal, type TestTemporal } from '../support/temporal';

let env: TestTemporal;
beforeAll(async () => {
  env = await startTestTemporal();
});
afterAll(async () => env?.stop());

test('submitExperiment refuses a spec that did not go through the parser, and starts nothing', async () => {
  const rig = experimentRig();
  const spec = { ...ExperimentSpec.parse(trainerSpec('exp-typed-ok', [])), experiment_id: 'quickstart' };
  await expect(submitExperiment({ client: env.client, spec, settings: rig.settings })).rejects.toThrow(
    InvalidSpecError,
  );
  await expect(submitExperiment({ client: env.client, spec, settings: rig.settings })).rejects.toThrow(
    /Invalid experiment spec; nothing was started:[\s\S]*is not an experiment id[\s\S]*experiment_id/,
  );
  await expect(env.client.workflow.getHandle('quickstart').describe()).rejects.toBeInstanceOf(
    WorkflowNotFoundError,
  );
});

test.each([
  ['status', (id: string) => experimentStatus(env.client, id)],
  ['gates', (id: string) => gatesOf(env.client, id)],
  ['decide', (id: string) => decide(env.client, id, 'approve', { gate: 'launch', by: 'a', source: 'api' })],
])(
  '%s refuses an id that is not an experiment or campaign id before calling the server',
  async (_name, call) => {
    await expect(call('quickstart')).rejects.toThrow(InvalidIdError);
    await expect(call('quickstart')).rejects.toThrow(
      /"quickstart" is not an experiment or campaign id.*labline list/s,
    );
  },
);
