import { PassThrough } from 'node:stream';
import { asShown, formatProgressLine, LiveArea, totalStepsOf } from '../../src/client/progress-view';

test('a progress line has the bar, step/total, the loss first, elapsed and ETA', () => {
  expect(
    formatProgressLine({
      launch: 2,
      step: 150,
      total: 300,
      metrics: { 'eval/accuracy': 0.91234, 'train/loss': 0.31, _runtime: 4, zeta: 1 },
      startedAt: 0,
      now: 30_000,
    }),
  ).toBe(
    '  launch 2  [############------------] 150/300 steps  train/loss 0.3100  eval/accuracy 0.9123  zeta 1  30s elapsed, ETA 30s',
  );
});

test('without a total there is no bar and no ETA; before the first metric it says starting', () => {
  const base = { launch: 1, metrics: {}, startedAt: 0, now: 61_000 };
  expect(formatProgressLine({ ...base, step: 7 })).toBe('  launch 1  step 7  1m01s elapsed');
  expect(formatProgressLine(base)).toBe('  launch 1  starting  1m01s elapsed');
});

test('the total comes from the config: steps, max_steps, total_steps or num_steps, as a positive whole number', () => {
  expect(totalStepsOf({ steps: 300, lr: 0.1 })).toBe(300);
  expect(totalStepsOf({ max_steps: 1000 })).toBe(1000);
  expect(totalStepsOf({ steps: 'many', num_steps: 20 })).toBe(20);
  expect(totalStepsOf({ steps: 0.5 })).toBeUndefined();
  expect(totalStepsOf({})).toBeUndefined();
});

test('the live area redraws in place, prints other lines above it, and never wraps', () => {
  const out = Object.assign(new PassThrough(), { columns: 30 });
  let written = '';
  out.on('data', (chunk: Buffer) => (written += chunk.toString('utf8')));
  const area = new LiveArea(out);
  area.render(['one', 'two']);
  area.render(['three']);
  area.print('a stage changed');
  area.clear(); // nothing shown: nothing to erase
  area.render(['x'.repeat(50)]);
  expect(written).toBe(
    `one\ntwo\n\u001b[2A\u001b[0Jthree\n\u001b[1A\u001b[0Ja stage changed\n${'x'.repeat(28)}…\n`,
  );
});

test("a trainer's line is shown as a terminal would end up with it, without anything that moves the cursor", () => {
  const ESC = String.fromCharCode(27);
  expect(asShown(`10%|##   |\r50%|#####|${ESC}[32m ok${ESC}[0m\tdone`)).toBe('50%|#####| ok  done');
  expect(asShown(`plain ${String.fromCharCode(7)}line`)).toBe('plain line');
});
