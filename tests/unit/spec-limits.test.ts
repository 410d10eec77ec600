import {
  encodedSize,
  ExperimentSpec,
  MAX_WORKFLOW_INPUT_BYTES,
  utf8Length,
  workflowInputSizeProblem,
} from '../../src/experiment';
import { InvalidSpecError, withinWorkflowInputLimit } from '../../src/client/spec-file';
import { seededRandom, type Random } from '../support/prng';

/** Strings with the characters JSON and UTF-8 treat specially: quotes, controls, accents, emoji, lone surrogates. */
function randomString(random: Random): string {
  const pieces = [
    'a',
    'Z',
    '"',
    '\\',
    '\n',
    '\t',
    '\u0000',
    '\u001f',
    'é',
    '€',
    '😀',
    '\ud800',
    '\udfff',
    ' ',
    '/',
  ];
  return Array.from(
    { length: Math.floor(random() * 12) },
    () => pieces[Math.floor(random() * pieces.length)],
  ).join('');
}

function randomValue(random: Random, depth: number): unknown {
  const kind = Math.floor(random() * (depth > 3 ? 5 : 8));
  switch (kind) {
    case 0:
      return randomString(random);
    case 1:
      return [0, -1.5, 3e-4, 1e21, 123456789, Number.NaN, Infinity][Math.floor(random() * 7)];
    case 2:
      return random() < 0.5;
    case 3:
      return null;
    case 4:
      return undefined;
    case 5:
      return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: Math.floor(random() * 4) }, () => [
          randomString(random),
          randomValue(random, depth + 1),
        ]),
      );
  }
}

describe('utf8Length', () => {
  test('agrees with Buffer.byteLength on strings with every kind of character', () => {
    const random = seededRandom(7);
    for (let index = 0; index < 2000; index++) {
      const text = randomString(random);
      expect(utf8Length(text)).toBe(Buffer.byteLength(text, 'utf8'));
    }
  });
});

describe('encodedSize', () => {
  test('is the UTF-8 length of JSON.stringify, for any JSON-like value', () => {
    const random = seededRandom(11);
    for (let index = 0; index < 2000; index++) {
      const value = randomValue(random, 0);
      const json = JSON.stringify(value) as string | undefined;
      if (json === undefined) continue; // a top-level undefined is not a payload
      expect([index, encodedSize(value)]).toEqual([index, Buffer.byteLength(json, 'utf8')]);
    }
  });

  test('measures the quickstart spec as it travels, dates and defaults included', () => {
    const spec = ExperimentSpec.parse({
      experiment_id: 'exp-size',
      name: 'Size',
      hypothesis: 'h',
      training: { command: 'node' },
      metadata: { created_at: '2026-01-05T09:30:00Z' },
    });
    const input = { spec, at: new Date(0) };
    expect(encodedSize(input)).toBe(Buffer.byteLength(JSON.stringify(input), 'utf8'));
  });

  test('stops counting past its bound, so a value larger than memory as JSON is measured at once', () => {
    const big = 'x'.repeat(1024 * 1024);
    const huge = Array.from({ length: 100_000 }, () => big); // 100 GiB as JSON
    const started = Date.now();
    expect(encodedSize(huge, 4 * 1024 * 1024)).toBeGreaterThan(4 * 1024 * 1024);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe('the workflow input check at submit', () => {
  const spec = ExperimentSpec.parse({
    experiment_id: 'exp-size',
    name: 'Size',
    hypothesis: 'h',
    training: { command: 'node' },
  });

  test('passes an ordinary input through unchanged', () => {
    const input = { spec, settings: { runs_root: '/runs' } };
    expect(workflowInputSizeProblem(input)).toBeUndefined();
    expect(withinWorkflowInputLimit(input)).toBe(input);
  });

  test('refuses an input over 1 MiB with InvalidSpecError, naming the size, the limit and the largest part', () => {
    const input = {
      spec: { ...spec, description: 'd'.repeat(MAX_WORKFLOW_INPUT_BYTES) },
      settings: { runs_root: '/runs' },
    };
    expect(workflowInputSizeProblem(input)).toEqual({
      path: '',
      problem: expect.stringMatching(
        /^the workflow input takes 1\.1 MiB once encoded; Labline sends at most 1 MiB/,
      ),
      hint: expect.stringMatching(/^spec\.description holds 1\.1 MiB; keep large data/),
    });
    expect(() => withinWorkflowInputLimit(input)).toThrow(InvalidSpecError);
    expect(() => withinWorkflowInputLimit(input)).toThrow(
      /exp-size: 1 problem in the experiment spec\n.*2 MiB/,
    );
  });
});
