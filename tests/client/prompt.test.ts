import { PassThrough } from 'node:stream';
import { ExperimentSpec } from '../../src/experiment';
import { decide, submitExperiment } from '../../src/client/experiments';
import { askApproval, askAtGate, type PromptIO } from '../../src/client/prompt';
import { experimentRig, trainerSpec, waitForStatus } from '../support/experiments';
import { startTestTemporal, withWorker, type TestTemporal } from '../support/temporal';

/** A terminal that a test types into, and whose output it reads. */
function fakeTerminal(): PromptIO & { typed: (line: string) => void; shown: () => string } {
  const input = new PassThrough();
  const output = new PassThrough();
  let shown = '';
  output.on('data', (chunk: Buffer) => (shown += chunk.toString('utf8')));
  return { input, output, interactive: true, typed: (line) => input.write(`${line}\n`), shown: () => shown };
}

/** Resolves once the terminal has shown `text` `times` times (bounded). */
async function untilShown(term: ReturnType<typeof fakeTerminal>, text: string, times = 1): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (term.shown().split(text).length - 1 >= times) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`the terminal never showed "${text}" ${times} time(s); it showed:\n${term.shown()}`);
}

describe('askApproval', () => {
  test('an empty answer asks again instead of deciding; y approves', async () => {
    const term = fakeTerminal();
    const verdict = askApproval('launch', term);
    await untilShown(term, 'launch: approve? [y/N] ');
    term.typed('');
    await untilShown(term, 'launch: approve? [y/N] ', 2);
    term.typed('maybe');
    await untilShown(term, 'answer y (approve) or n (reject), not "maybe"');
    term.typed(' Yes ');
    expect(await verdict).toBe('approve');
  });

  test('n rejects', async () => {
    const term = fakeTerminal();
    const verdict = askApproval('publish', term);
    term.typed('n');
    expect(await verdict).toBe('reject');
  });

  test('the end of the input decides nothing', async () => {
    const term = fakeTerminal();
    const verdict = askApproval('launch', term);
    (term.input as PassThrough).end();
    expect(await verdict).toBeUndefined();
  });
});

describe('askAtGate', () => {
  let env: TestTemporal;
  beforeAll(async () => {
    env = await startTestTemporal();
  });
  afterAll(async () => env?.stop());

  test('the question goes away when the gate is decided elsewhere, saying by whom', async () => {
    const rig = experimentRig();
    const id = `exp-prompt-${process.pid}`;
    const spec = ExperimentSpec.parse(trainerSpec(id, ['--steps=5']));
    await withWorker(env, { taskQueue: rig.taskQueue, activities: rig.activities }, async () => {
      const { handle } = await submitExperiment({ client: env.client, spec, settings: rig.settings });
      const { waiting } = await waitForStatus(env.client, id, (s) => s.waiting?.gate === 'launch');
      const term = fakeTerminal();
      const asked = askAtGate(env.client, id, waiting!, { io: term, pollMs: 50 });
      await untilShown(term, 'launch: approve? [y/N] ');
      await decide(env.client, id, 'reject', {
        gate: 'launch',
        by: 'alice',
        source: 'slack',
        comment: 'not now',
      });
      expect(await asked).toBeUndefined();
      expect(term.shown()).toMatch(/decided elsewhere: .*rejected.*alice/);
      // What is typed afterwards decides nothing: the question is gone.
      term.typed('y');
      await expect(handle.result()).resolves.toMatchObject({
        end_stage: 'rejected',
        reason: 'launch rejected',
      });
    });
  });

  test('without a terminal it says how to answer and asks nothing', async () => {
    const term = { ...fakeTerminal(), interactive: false };
    expect(await askAtGate(env.client, 'exp-any', { gate: 'launch' }, { io: term })).toBeUndefined();
    expect(term.shown()).toBe(
      '  answer with: npx labline approve exp-any (or reject), or rerun with --yes\n',
    );
  });
});
