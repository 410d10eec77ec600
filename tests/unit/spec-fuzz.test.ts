/**
 * A seeded fuzzer over the spec loader: a few hundred specs mutated from examples/quickstart.yaml and the
 * other example files (deleted and repeated keys, swapped types, huge numbers and strings, NUL bytes, YAML
 * anchors and aliases, deep nesting, unicode, empty and multiple documents, many keys, tags, truncation).
 *
 * For every case the loader either accepts the spec or refuses it with located spec errors: it never throws
 * anything else and never takes long. A spec it accepts must also run: it passes the checks made at run time
 * (the workflow input's encoded size at submit, durations a timer can wait, no NUL byte for the launcher, a
 * positive time limit) and parses again unchanged at the workflow's boundary. These checks are written here
 * independently of the validation code, and they find duration fields through the published JSON Schema, so
 * a field added later is covered without editing this test.
 *
 * A failure lists each failing case with its number, its mutations and the start of its text; run the suite
 * again with the same SEED to reproduce it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  DURATION_PATTERN,
  ExperimentSpec,
  experimentSpecJsonSchema,
  MAX_DURATION_SECONDS,
  WorkflowSettings,
  type SpecError,
} from '../../src/experiment';
import { parseExperimentSpec } from '../../src/experiment/spec-file';
import { InvalidSpecError, loadSpecFile, withinWorkflowInputLimit } from '../../src/client/spec-file';
import { integerBetween, pick, seededRandom, type Random } from '../support/prng';

const SEED = 20_261_203;
const CASES = 400;
/** Longer than any case takes on a loaded 2-core machine (most take a few milliseconds), far shorter than a hang. */
const CASE_BUDGET_MS = 5000;

const examples = path.join(__dirname, '../../examples');
const quickstart = readFileSync(path.join(examples, 'quickstart.yaml'), 'utf8');

/** Specs to mutate: the examples, and specs that use the fields the quickstart leaves out. */
const seeds: Record<string, string> = {
  quickstart,
  'quickstart as JSON': JSON.stringify(parseYaml(quickstart), null, 2),
  'campaign (not an experiment spec)': readFileSync(path.join(examples, 'campaign.yaml'), 'utf8'),
  minimal: 'experiment_id: exp-min\nname: Minimal\nhypothesis: It runs.\ntraining:\n  command: node\n',
  full: `experiment_id: exp-full-01
name: Every field
description: "A spec that sets what the quickstart leaves to defaults."
hypothesis: Longer training helps.
research_question: Does it?
config: { steps: 100, lr: 0.01, optimizer: adamw, warmup: true }
training:
  command: python
  args: [train.py, "--steps=\${config.steps}"]
  working_directory: trainer
  env: { OMP_NUM_THREADS: "4", TOKENIZERS_PARALLELISM: "false" }
  resources: { gpus: 1, cpus: 4, memory: 16G, time_limit: 2h30m }
  launcher: slurm
  checkpoint: { directory: ckpt, resume: { flag: --resume-from, env: RESUME_PATH } }
tracker: { type: wandb, entity: acme, project: moons }
deliverables:
  - { name: loss, type: threshold, metric: eval/loss, op: "<", value: 0.5 }
  - { name: keys, type: contains_keys, keys: [eval/loss], in: summary, required: false }
analysis_pipeline: { analyses: [performance, baselines], writers: [report, blog], primary_metric: eval/loss }
metadata: { priority: high, tags: [a, b], researcher: ada, project: moons, created_at: "2026-01-05T09:30:00Z" }
approvals:
  launch: { approvers: [ada], reminder_interval: 30m, timeout: 7d, max_reminders: 2, on_timeout: escalate, escalation_approvers: [lead] }
  publish: { enabled: false }
  failure: { timeout: 1d12h, on_timeout: approve }
budgets: { max_training_attempts: 4, max_preemption_restarts: 1, llm_cost_usd: 2.5 }
parent:
  experiment_id: exp-quickstart
  rationale: More steps.
  modifications: [{ parameter: steps, from: 300, to: 100 }]
baselines: [{ name: logreg, metric: eval/loss, values: [0.6, 0.62] }]
`,
};

/** A line `key: value` (or `- key: value`) of block YAML, as the mutations find them. */
const KEY_LINE = /^(\s*(?:- )?)([^\s:#][^:#]*):( .*)?$/;

type Mutation = (text: string, random: Random) => string;

function lines(text: string): string[] {
  return text.split('\n');
}

/** Indexes of the lines that hold a key, optionally only those with a value on the line. */
function keyLines(text: string, withValue = false): number[] {
  return lines(text).flatMap((line, index) => {
    const match = KEY_LINE.exec(line);
    return match && (!withValue || (match[3] ?? '').trim() !== '') ? [index] : [];
  });
}

/** Replaces the value of a random `key: value` line (or adds one to a `key:` line) with `value`. */
function setValue(text: string, random: Random, value: string): string {
  const all = lines(text);
  const candidates = keyLines(text);
  if (candidates.length === 0) return `${text}\ndescription: ${value}\n`;
  const index = pick(random, candidates);
  const match = KEY_LINE.exec(all[index] ?? '')!;
  all[index] = `${match[1] ?? ''}${match[2] ?? ''}: ${value}`;
  return all.join('\n');
}

/** One of the `|`-separated choices. */
function oneOf(random: Random, choices: string): string {
  return pick(random, choices.split('|'));
}

/** Sets a top-level key (appending it, so the original may now be repeated). */
function appendTopLevel(text: string, key: string, value: string): string {
  return `${text.replace(/\n*$/, '\n')}${key}: ${value}\n`;
}

/** Removes a top-level key of block YAML and the indented lines under it (nothing, in JSON). */
function withoutTopLevel(text: string, key: string): string {
  return `${text}\n`.replace(new RegExp(`^${key}:.*\\n(?:[ ]+.*\\n|\\n)*`, 'm'), '');
}

const DURATION_FIELDS = ['timeout', 'reminder_interval', 'time_limit', 'stall_timeout'];

const mutations: Record<string, Mutation> = {
  'delete a line': (text, random) => {
    const all = lines(text);
    all.splice(integerBetween(random, 0, Math.max(0, all.length - 1)), 1);
    return all.join('\n');
  },
  'repeat a key': (text, random) => {
    const all = lines(text);
    const index = pick(random, keyLines(text).length > 0 ? keyLines(text) : [0]);
    all.splice(index, 0, all[index] ?? '');
    return all.join('\n');
  },
  'swap a type': (text, random) =>
    setValue(
      text,
      random,
      pick(random, [
        '42',
        '-1',
        '0',
        '3.5',
        'true',
        'null',
        '~',
        '[]',
        '{}',
        '[1, 2]',
        '{a: 1}',
        '"str"',
        "''",
      ]),
    ),
  'huge or odd number': (text, random) =>
    setValue(
      text,
      random,
      pick(random, [
        '1e308',
        '-1e308',
        '1e309',
        '.inf',
        '-.inf',
        '.nan',
        '99999999999',
        '9007199254740993',
        '1e-320',
        '0x1F',
        '0o17',
        '9'.repeat(400),
      ]),
    ),
  'huge duration': (text, random) => {
    const field = pick(random, DURATION_FIELDS);
    const value = oneOf(random, '99999999999w|3651d|3650d|0|0s|1e12|315360001|0.001ms|2h');
    return field === 'time_limit'
      ? appendTopLevel(
          withoutTopLevel(text, 'training'),
          'training',
          `{ command: node, resources: { time_limit: ${value} } }`,
        )
      : field === 'stall_timeout'
        ? appendTopLevel(
            withoutTopLevel(text, 'training'),
            'training',
            `{ command: node, stall_timeout: ${value} }`,
          )
        : text.replace(/^(approvals:\n)/m, `$1  budget: { ${field}: ${value} }\n`) +
          (text.includes('approvals:') ? '' : `approvals: { launch: { ${field}: ${value} } }\n`);
  },
  'huge string': (text, random) => {
    const size = pick(random, [1_000, 17 * 1024, 120_000, 300_000]);
    const body = pick(random, ['x', 'lorem ipsum ', 'é', '😀', '"\\"']).repeat(Math.ceil(size / 4));
    return random() < 0.5
      ? setValue(text, random, JSON.stringify(body))
      : appendTopLevel(withoutTopLevel(text, 'description'), 'description', JSON.stringify(body));
  },
  'NUL byte': (text, random) => {
    const where = pick(random, ['command', 'args', 'env', 'working_directory', 'config', 'any', 'raw']);
    if (where === 'raw') {
      const at = integerBetween(random, 0, text.length);
      return `${text.slice(0, at)}\u0000${text.slice(at)}`;
    }
    if (where === 'any') return setValue(text, random, '"a\\0b"');
    const training: Record<string, string> = {
      command: '{ command: "no\\0de" }',
      args: '{ command: node, args: ["train.js", "--x=\\0"] }',
      env: '{ command: node, env: { OMP_NUM_THREADS: "4\\0" } }',
      working_directory: '{ command: node, working_directory: "dir\\0/" }',
      config: '{ command: node }\nconfig: { optimizer: "adam\\0w" }',
    };
    const rest = withoutTopLevel(withoutTopLevel(text, 'training'), 'config');
    return appendTopLevel(rest, 'training', training[where] ?? '');
  },
  'anchor and alias': (text, random) => {
    const kind = oneOf(random, 'reuse|undefined|before anchor|cycle|laughs|merge|alias key|deep|big reuse');
    switch (kind) {
      case 'reuse':
        return text.includes('  launch:\n')
          ? text
              .replace('  launch:\n', '  launch: &gate\n')
              .replace(/\n {2}publish:\n(?: {4}.*\n)*/, '\n  publish: *gate\n')
          : appendTopLevel(text, 'research_question', '&q Why? \nname_copy: *q');
      case 'undefined':
        return setValue(text, random, '*nowhere');
      case 'before anchor':
        return appendTopLevel(setValue(text, random, '*later'), 'description', '&later text');
      case 'big reuse': {
        // A small file whose aliases repeat one long text: it expands past what Temporal should carry.
        const long = JSON.stringify('lorem ipsum '.repeat(pick(random, [100, 10_000])));
        const rest = withoutTopLevel(withoutTopLevel(text, 'description'), 'config');
        return appendTopLevel(
          appendTopLevel(rest, 'description', `&long ${long}`),
          'config',
          '{ a: *long, b: *long, c: *long, d: *long, e: *long }',
        );
      }
      case 'cycle':
        return appendTopLevel(text, 'config', '&loop { a: 1, b: *loop }');
      case 'laughs': {
        const levels = ['l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
        for (let level = 1; level < 10; level++) {
          levels.push(
            `l${level}: &l${level} [${Array(9)
              .fill(`*l${level - 1}`)
              .join(', ')}]`,
          );
        }
        return appendTopLevel(text, 'config', `\n  ${levels.join('\n  ')}`);
      }
      case 'merge':
        return appendTopLevel(text, 'metadata', '{ <<: *base, priority: low }');
      case 'alias key':
        return appendTopLevel(text, 'description', '&k text\n*k : 2');
      default:
        return appendTopLevel(
          text,
          'config',
          `&deep ${'['.repeat(20)}1${']'.repeat(20)}\ndescription: ${'['.repeat(15)}*deep${']'.repeat(15)}`,
        );
    }
  },
  'deep nesting': (text, random) => {
    // Mostly near the limit of 32 levels; now and then far past it (each such case costs a parse of ~200 KiB).
    const depth = pick(random, [2, 3, 8, 31, 32, 33, 40, 200, 5_000, 100_000]);
    return random() < 0.5
      ? setValue(text, random, `${'['.repeat(depth)}${']'.repeat(depth)}`)
      : appendTopLevel(
          text,
          'config',
          `\n${Array.from({ length: Math.min(depth, 400) }, (_, level) => `${'  '.repeat(level + 1)}k:`).join('\n')} 1`,
        );
  },
  unicode: (text, random) => {
    const piece = oneOf(random, 'é|日本語|😀|\u202e|\u200b|\ufeff|ﬁ|e\u0301|\ud800|\u2028|Ω');
    if (random() < 0.3) return `${piece}${text}`;
    const all = lines(text);
    const index = pick(random, keyLines(text).length > 0 ? keyLines(text) : [0]);
    const line = all[index] ?? '';
    const at = integerBetween(random, 0, line.length);
    all[index] = `${line.slice(0, at)}${piece}${line.slice(at)}`;
    return all.join('\n');
  },
  'rewrite a text field': (text, random) => {
    const field = pick(random, ['description', 'research_question', 'name', 'hypothesis']);
    const piece = pick(random, [
      'plain words',
      'é日本語😀\u202e\u200bﬁe\u0301',
      'quotes " and \\ backslashes',
      'a line\nbreak and a\ttab',
      'controls \u0001\u001f\u007f',
      '${config.steps} and ${config.nope}',
      '# not a comment: [not, a, list] {nor: a map} *not &an !alias',
      '',
      '   ',
    ]);
    const size = pick(random, [1, 1, 1, 10, 1_000, 20_000]);
    const value = piece.repeat(size);
    // Remove the field (a folded block included) and write it again, as JSON, which YAML reads as a string.
    return appendTopLevel(withoutTopLevel(text, field), field, JSON.stringify(value));
  },
  'rewrite a duration': (text, random) => {
    const value = oneOf(random, '1ms|0.5s|90s|1h30m|1.5h|2w3d|3650d|521w|315360000|1|0.25');
    const found = [...text.matchAll(/\b(timeout|reminder_interval|time_limit): *"?[\w.]+"?/g)];
    if (found.length === 0) return text;
    const match = pick(random, found);
    const at = match.index ?? 0;
    return `${text.slice(0, at)}${match[1] ?? 'timeout'}: ${value}${text.slice(at + match[0].length)}`;
  },
  'rewrite the config': (text, random) => {
    const values = [
      '0',
      '-3.5e-4',
      'true',
      'adamw',
      '"日本語"',
      '"--flag=1"',
      '"a: b"',
      '1e300',
      '"${config.steps}"',
    ];
    const entries = Array.from(
      { length: pick(random, [0, 1, 5, 50, 500]) },
      (_, index) =>
        `${pick(random, ['k', 'lr', 'λ', 'a-b', '"a b"', '"1"', 'x.y'])}${index}: ${pick(random, values)}`,
    );
    return appendTopLevel(withoutTopLevel(text, 'config'), 'config', `{${entries.join(', ')}}`);
  },
  'empty document': (_text, random) =>
    oneOf(random, '|\n|---\n|# nothing\n|~\n|...\n|---\n...\n|{}|[]|null|""|- a'),
  'multiple documents': (text, random) =>
    pick(random, [
      `${text}\n---\n${text}`,
      `---\n${text}\n---\n`,
      `${text}\n...\n---\nname: other\n`,
      `${text}\n---\n`,
    ]),
  'many keys': (text, random) => {
    // Mostly small; now and then around and past the limit of 10,000 (each such case parses ~200 KiB).
    const count = pick(random, [5, 50, 300, 3_000, 9_980, 12_000, 30_000]);
    const keys = Array.from({ length: count }, (_, index) => `k${index}: ${index}`);
    return appendTopLevel(
      withoutTopLevel(text, 'config'),
      'config',
      random() < 0.5 ? `{${keys.join(', ')}}` : `\n  ${keys.join('\n  ')}`,
    );
  },
  'YAML tag': (text, random) =>
    setValue(
      text,
      random,
      oneOf(
        random,
        '!!str 1|!!int x|!!float y|!!binary abc|!!timestamp 2020|!!set {a}|!!omap [a: 1]|!custom x|!!map {a: 1}|!!null x',
      ),
    ),
  'truncate or break': (text, random) => {
    const at = integerBetween(random, 0, text.length);
    return random() < 0.5
      ? text.slice(0, at)
      : `${text.slice(0, at)}${pick(random, ['{', '}', '[', ']', ':', '- ', '&', '*', '!', '|', '>', '%', '@', '`', '"', "'", '\t', '#', '? '])}${text.slice(at)}`;
  },
};

/** Paths of the duration fields, read from the JSON Schema users' editors get: a new one is found too. */
function durationPaths(): string[][] {
  const found: string[][] = [];
  const visit = (node: unknown, at: string[]): void => {
    if (typeof node !== 'object' || node === null) return;
    const schema = node as {
      pattern?: string;
      properties?: Record<string, unknown>;
      items?: unknown;
      anyOf?: unknown[];
      oneOf?: unknown[];
    };
    if (schema.pattern === DURATION_PATTERN.source) found.push(at);
    for (const [key, child] of Object.entries(schema.properties ?? {})) visit(child, [...at, key]);
    if (schema.items) visit(schema.items, [...at, '*']);
    for (const option of [...(schema.anyOf ?? []), ...(schema.oneOf ?? [])]) visit(option, at);
  };
  visit(experimentSpecJsonSchema(), []);
  return found;
}

/** The values at a path whose `*` segments stand for every list item. */
function valuesAt(value: unknown, at: readonly string[]): unknown[] {
  const [head, ...rest] = at;
  if (head === undefined) return [value];
  if (typeof value !== 'object' || value === null) return [];
  if (head === '*') return Array.isArray(value) ? value.flatMap((item: unknown) => valuesAt(item, rest)) : [];
  return valuesAt((value as Record<string, unknown>)[head], rest);
}

function hasNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (typeof value !== 'object' || value === null) return false;
  return Object.entries(value).some(([key, item]) => key.includes('\u0000') || hasNul(item));
}

/** What a spec must satisfy at run time; each broken rule is described. */
function runTimeProblems(spec: ExperimentSpec, durations: readonly string[][]): string[] {
  const problems: string[] = [];
  const json = JSON.stringify(spec);
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > 512 * 1024) problems.push(`encodes to ${bytes} bytes`);
  try {
    withinWorkflowInputLimit({ spec, settings: WorkflowSettings.parse({ runs_root: '/srv/labline/runs' }) });
  } catch (error) {
    problems.push(`is refused at submit: ${(error as Error).message}`);
  }
  for (const at of durations) {
    for (const seconds of valuesAt(spec, at)) {
      if (seconds === undefined) continue;
      if (typeof seconds !== 'number' || !(seconds >= 0 && seconds <= MAX_DURATION_SECONDS)) {
        problems.push(`${at.join('.')} is ${JSON.stringify(seconds)} s`);
      } else {
        try {
          new Date(Date.now() + 2 * seconds * 1000).toISOString(); // an escalated gate waits twice
        } catch (error) {
          problems.push(`${at.join('.')}: ${(error as Error).message}`);
        }
      }
    }
  }
  if (spec.training.resources.time_limit !== undefined && !(spec.training.resources.time_limit > 0)) {
    problems.push('time_limit is not positive');
  }
  if (hasNul(spec)) problems.push('holds a NUL byte');
  try {
    expect(ExperimentSpec.parse(JSON.parse(json))).toEqual(spec);
  } catch {
    problems.push('does not parse again unchanged at the workflow boundary');
  }
  return problems;
}

/** What is wrong with an error the loader reported, if anything: it must say where and what. */
function malformed(error: SpecError, lineCount: number): string | undefined {
  if (typeof error.path !== 'string') return 'has no path';
  if (typeof error.problem !== 'string' || error.problem.trim() === '') return 'has no problem';
  if (
    error.line !== undefined &&
    !(Number.isInteger(error.line) && error.line >= 1 && error.line <= lineCount)
  ) {
    return `has line ${error.line}`;
  }
  if (error.column !== undefined && !(Number.isInteger(error.column) && error.column >= 1))
    return `has column ${error.column}`;
  return undefined;
}

describe('spec loader fuzzing', () => {
  const directory = mkdtempSync(path.join(tmpdir(), 'labline-spec-fuzz-'));
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  test('the specs it starts from are valid, so that mutations break something that worked', () => {
    for (const [name, text] of Object.entries(seeds)) {
      expect([name, parseExperimentSpec(text, `${name}.yaml`).ok]).toEqual([
        name,
        !name.startsWith('campaign'),
      ]);
    }
  });

  test(`${CASES} mutated specs: each is accepted and runs, or refused with located errors; none throws or hangs`, () => {
    const random = seededRandom(SEED);
    const names = Object.keys(mutations);
    const durations = durationPaths();
    const failures: string[] = [];
    const outcomes = { accepted: 0, refused: 0 };
    for (let index = 0; index < CASES; index++) {
      const seedName = pick(random, Object.keys(seeds));
      // Every mutation leads in turn, so each is exercised; one or two more are drawn at random.
      const applied = [names[index % names.length]!];
      for (let extra = random() < 0.5 ? 0 : integerBetween(random, 1, 2); extra > 0; extra--) {
        applied.push(pick(random, names));
      }
      let text = seeds[seedName]!;
      for (const name of applied) text = mutations[name]!(text, random);
      const label = `case ${index} (${seedName}; ${applied.join(', ')}): ${JSON.stringify(text.slice(0, 80))}`;

      const started = Date.now();
      let result: ReturnType<typeof parseExperimentSpec>;
      try {
        result = parseExperimentSpec(text, 'fuzz.yaml');
      } catch (error) {
        failures.push(`${label} threw ${String(error)}`);
        continue;
      }
      const took = Date.now() - started;
      if (took > CASE_BUDGET_MS) failures.push(`${label} took ${took} ms`);

      if (result.ok) {
        outcomes.accepted += 1;
        for (const problem of runTimeProblems(result.spec, durations))
          failures.push(`${label} was accepted but ${problem}`);
      } else {
        outcomes.refused += 1;
        if (result.errors.length === 0) failures.push(`${label} was refused without an error`);
        const lineCount = lines(text).length;
        for (const error of result.errors) {
          const wrong = malformed(error, lineCount);
          if (wrong) failures.push(`${label}: an error ${wrong}: ${JSON.stringify(error)}`);
        }
      }

      // The CLI's loader (validate, submit, start) reads the same text from a file: a spec or InvalidSpecError.
      const file = path.join(directory, `case-${index}.yaml`);
      writeFileSync(file, text);
      try {
        loadSpecFile(file);
        if (!result.ok) failures.push(`${label}: loadSpecFile accepted what parseExperimentSpec refused`);
      } catch (error) {
        if (!(error instanceof InvalidSpecError))
          failures.push(`${label}: loadSpecFile threw ${String(error)}`);
        else if (result.ok)
          failures.push(`${label}: loadSpecFile refused an accepted spec: ${error.message}`);
        else if (!error.message.startsWith(`${file}: `))
          failures.push(`${label}: the error does not name the file`);
      }
      rmSync(file);
    }
    expect(failures).toEqual([]);
    // A fuzzer that only ever produced garbage, or never broke anything, would prove little.
    expect(outcomes.accepted).toBeGreaterThan(CASES / 20);
    expect(outcomes.refused).toBeGreaterThan(CASES / 2);
  });
});
