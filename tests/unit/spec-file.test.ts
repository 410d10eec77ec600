import { experimentSpecJsonSchema, formatSpecErrors, type SpecError } from '../../src/experiment';
import { parseExperimentSpec } from '../../src/experiment/spec-file';

const quickstartYaml = `# yaml-language-server: $schema=./labline.schema.json
experiment_id: exp-quickstart
name: Quickstart
hypothesis: A small MLP separates two spirals.
config:
  learning_rate: 3e-4
  epochs: 20
  optimizer: adam
training:
  command: node
  args: [examples/train.js]
  resources:
    time_limit: 10m
deliverables:
  - name: final_checkpoint
    type: exists_and_loadable
    path: checkpoints/final.json
  - name: accuracy
    type: threshold
    metric: accuracy
    op: ">="
    value: 0.9
approvals:
  launch:
    timeout: 2h
`;

describe('parseExperimentSpec', () => {
  test('reads a YAML spec, with YAML 1.2 numbers (3e-4) and durations in seconds', () => {
    const result = parseExperimentSpec(quickstartYaml, 'quickstart.yaml');
    if (!result.ok) throw new Error(formatSpecErrors(result.errors, 'quickstart.yaml'));
    expect(result.spec.config).toEqual({ learning_rate: 0.0003, epochs: 20, optimizer: 'adam' });
    expect(result.spec.training.resources.time_limit).toBe(600);
    expect(result.spec.approvals.launch.timeout).toBe(7200);
  });

  test('reads the same spec written as JSON, tab-indented', () => {
    const json = JSON.stringify(
      {
        experiment_id: 'exp-quickstart',
        name: 'Quickstart',
        hypothesis: 'h',
        training: { command: 'node', resources: { time_limit: '10m' } },
      },
      null,
      '\t',
    );
    const result = parseExperimentSpec(json, 'quickstart.json');
    expect(result.ok && result.spec.training.resources.time_limit).toBe(600);
  });

  test('lists every invalid path at once, in file order, each at the line and column of its key', () => {
    const text = [
      'experiment_id: exp-x1',
      'name: Broken',
      'hypotesis: typo',
      'training:',
      '  command: node',
      '  resources: { time_limit: 10 minutes }',
      'deliverables:',
      '  - { name: acc, type: threshold, metric: accuracy, op: "=>", value: 0.9 }',
    ].join('\n');
    const result = parseExperimentSpec(text, 'broken.yaml');
    if (result.ok) throw new Error('expected errors');
    expect(result.errors.map(({ path, line, column }) => ({ path, line, column }))).toEqual([
      { path: 'hypothesis', line: 1, column: 1 },
      { path: 'hypotesis', line: 3, column: 1 },
      { path: 'training.resources.time_limit', line: 6, column: 16 },
      { path: 'deliverables[0].op', line: 8, column: 53 },
    ]);
    expect(result.errors[3]).toMatchObject({
      problem: 'must be one of ">", ">=", "<", "<=", "==", "!=" (got "=>")',
      hint: expect.stringContaining('>='),
    });
    expect(result.errors[2]?.hint).toContain('"2h"');
  });

  test('reports YAML syntax errors with their line and column, before any schema check', () => {
    const result = parseExperimentSpec('experiment_id: exp-x1\ntraining: [node\nname: x\n', 'syntax.yaml');
    if (result.ok) throw new Error('expected errors');
    expect(result.errors.length).toBeGreaterThan(0);
    expect(result.errors[0]).toMatchObject({
      path: '',
      problem: expect.stringContaining('not valid YAML'),
      line: expect.any(Number),
    });
    expect(result.errors.every((error) => !error.path)).toBe(true);
  });

  test('reports a duplicated key as a syntax error (YAML would otherwise keep one silently)', () => {
    const result = parseExperimentSpec('name: a\nname: b\n', 'dup.yaml');
    expect(result).toEqual({
      ok: false,
      errors: [
        expect.objectContaining({ line: 2, column: 1, hint: 'remove one of the two entries with this key' }),
      ],
    });
  });

  test('a NUL byte written as "\\0" in YAML is refused with its path, line and column', () => {
    const text =
      'experiment_id: exp-x1\nname: n\nhypothesis: h\ntraining:\n  command: node\n  args: ["a\\0b"]\n';
    const result = parseExperimentSpec(text, 'nul.yaml');
    expect(result).toEqual({
      ok: false,
      errors: [expect.objectContaining({ path: 'training.args[0]', line: 6, column: 10 })],
    });
  });

  test('an empty file is one error that says where to start', () => {
    const result = parseExperimentSpec('# nothing yet\n', 'empty.yaml');
    expect(result).toEqual({
      ok: false,
      errors: [
        expect.objectContaining({
          problem: 'empty.yaml is empty',
          hint: expect.stringContaining('labline schema'),
        }),
      ],
    });
  });

  test('a file that is a list, not a mapping, says so', () => {
    const result = parseExperimentSpec('- a\n- b\n', 'list.yaml');
    expect(result).toEqual({
      ok: false,
      errors: [expect.objectContaining({ path: '', problem: 'must be a mapping (key: value), not a list' })],
    });
  });

  test('a value of the wrong type names what was expected and what was found', () => {
    const result = parseExperimentSpec(quickstartYaml.replace('timeout: 2h', 'timeout: true'), 'q.yaml');
    if (result.ok) throw new Error('expected errors');
    expect(result.errors).toEqual([
      expect.objectContaining({
        path: 'approvals.launch.timeout',
        problem: 'must be a number or a string, not true',
        hint: expect.stringContaining('duration'),
      }),
    ]);
  });
});

/** A valid spec to which a test appends one line of YAML (at line 6). */
const head = 'experiment_id: exp-x1\nname: n\nhypothesis: h\ntraining:\n  command: node\n';

function errorsIn(text: string): SpecError[] {
  const result = parseExperimentSpec(text, 'spec.yaml');
  if (result.ok) throw new Error('expected errors');
  return result.errors;
}

describe('YAML anchors and aliases', () => {
  test('an alias reads the anchored value, so a gate can be written once and reused', () => {
    const text = `${head}approvals:\n  launch: &gate { timeout: 2h, on_timeout: reject }\n  publish: *gate\n`;
    const result = parseExperimentSpec(text, 'spec.yaml');
    expect(result.ok && result.spec.approvals.publish.timeout).toBe(7200);
  });

  test.each([
    ['an alias to no anchor', 'description: *nope', 'description', 6, 14],
    [
      'an alias used before its anchor',
      'description: *later\nresearch_question: &later x',
      'description',
      6,
      14,
    ],
    ['a merge key to no anchor', 'config: { <<: *base }', 'config["<<"]', 6, 15],
  ])('%s is an error at its line, not an exception', (_case, line, path, lineNumber, column) => {
    expect(errorsIn(`${head}${line}\n`)).toEqual([
      expect.objectContaining({
        path,
        problem: expect.stringMatching(/^refers to the anchor &\w+, which is not defined before it$/),
        hint: expect.stringContaining('&'),
        line: lineNumber,
        column,
      }),
    ]);
  });

  test('an alias inside the value it names (a cycle) is an error, not an endless value', () => {
    expect(errorsIn(`${head}config: &loop { a: 1, b: *loop }\n`)).toEqual([
      expect.objectContaining({
        path: 'config.b',
        problem: 'refers to the anchor &loop, which contains it: the value would never end',
        line: 6,
        column: 26,
      }),
    ]);
  });

  test('a "billion laughs" document is refused by its expanded size, at once', () => {
    const levels = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'];
    for (const [index, name] of ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].entries()) {
      const previous = String.fromCharCode('a'.charCodeAt(0) + index);
      levels.push(`${name}: &${name} [${Array(9).fill(`*${previous}`).join(', ')}]`);
    }
    const started = Date.now();
    const errors = errorsIn(`${head}config:\n  ${levels.join('\n  ')}\n`);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(errors).toEqual([
      expect.objectContaining({
        path: expect.stringMatching(/^config\./),
        problem: expect.stringMatching(/^expands through aliases to more than 10,000 keys and list items/),
        hint: expect.stringContaining('alias'),
        line: expect.any(Number),
      }),
    ]);
  });

  test('a key written as an alias or a collection is refused with its position', () => {
    expect(errorsIn(`${head}description: &k desc\n*k : 2\n`)).toEqual([
      expect.objectContaining({ problem: expect.stringContaining('key'), line: 7, column: 1 }),
    ]);
  });
});

describe('spec size limits, checked before the expensive work', () => {
  const config = (keys: number, flow: boolean): string => {
    const names = Array.from({ length: keys }, (_, index) => `k${index}`);
    return flow
      ? `config: {${names.map((k) => `${k}: 1`).join(', ')}}\n`
      : `config:\n${names.map((k) => `  ${k}: 1\n`).join('')}`;
  };

  test('a file over 256 KiB is one error that says so, at once', () => {
    const started = Date.now();
    const errors = errorsIn(`${head}${config(100_000, false)}`);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(errors).toEqual([
      {
        path: '',
        problem: expect.stringMatching(/^is 1\.\d MiB; a spec file may be at most 256 KiB$/),
        hint: expect.stringContaining('files the trainer reads'),
      },
    ]);
  });

  test('20,000 keys are refused quickly, with the count and the limit', () => {
    const text = `${head}${config(20_000, true)}`;
    expect(text.length).toBeLessThan(256 * 1024);
    const started = Date.now();
    const errors = errorsIn(text);
    // Comparing every key with every other took 6 to 9.5 s here; one linear pass takes well under a second.
    expect(Date.now() - started).toBeLessThan(3000);
    expect(errors).toEqual([
      expect.objectContaining({
        path: 'config',
        problem: 'has 20,000 keys and list items; a spec may have at most 10,000',
        line: 6,
        column: 9,
      }),
    ]);
  });

  test('a spec just under 10,000 keys and list items is read and checked quickly', () => {
    const started = Date.now();
    const result = parseExperimentSpec(`${head}${config(9_990, false)}`, 'spec.yaml');
    expect(Date.now() - started).toBeLessThan(3000);
    expect(result.ok).toBe(true);
  });

  test.each([
    [
      'mappings',
      40,
      (depth: number) =>
        `config:\n${Array.from({ length: depth }, (_, i) => `${'  '.repeat(i + 1)}k:`).join('\n')} 1\n`,
    ],
    ['flow lists', 100_000, (depth: number) => `description: ${'['.repeat(depth)}${']'.repeat(depth)}\n`],
  ])(
    '%s nested %d deep are refused at the first level too deep, without a stack overflow',
    (_kind, depth, nest) => {
      const errors = errorsIn(`${head}${nest(depth)}`);
      expect(errors).toEqual([
        expect.objectContaining({
          problem: 'nests more than 32 levels of mappings and lists',
          hint: expect.stringContaining('flatten'),
          line: expect.any(Number),
          column: expect.any(Number),
        }),
      ]);
    },
  );

  test('an alias can nest too deep as well, and is refused where it is used', () => {
    const deep = `${'['.repeat(20)}1${']'.repeat(20)}`;
    const errors = errorsIn(
      `${head}config: &deep ${deep}\ndescription: ${'['.repeat(20)}*deep${']'.repeat(20)}\n`,
    );
    expect(errors).toEqual([
      expect.objectContaining({
        problem: 'expands through an alias to more than 32 levels of mappings and lists',
        line: 7,
      }),
    ]);
  });

  test('a repeated key among thousands is found at once, with both places', () => {
    const keys = Array.from({ length: 5000 }, (_, index) => `  k${index}: 1\n`);
    keys.push('  k17: 2\n');
    const errors = errorsIn(`${head}config:\n${keys.join('')}`);
    expect(errors).toEqual([
      expect.objectContaining({
        path: 'config.k17',
        problem: 'repeats the key "k17" (first at line 24)',
        hint: 'remove one of the two entries with this key',
        line: 5007,
        column: 3,
      }),
    ]);
  });

  test('a small file whose aliases expand past 512 KiB once encoded is refused at the aliased field', () => {
    const text = `${head}description: &text "${'lorem ipsum '.repeat(10_000)}"\nconfig: { a: *text, b: *text, c: *text, d: *text, e: *text }\n`;
    expect(text.length).toBeLessThan(256 * 1024);
    expect(errorsIn(text)).toEqual([
      expect.objectContaining({
        path: 'config',
        problem: expect.stringMatching(/^holds 586 KiB of the 70\d(\.\d)? KiB the spec takes once encoded/),
        line: 7,
        column: 1,
      }),
    ]);
  });

  test('a second YAML document is refused with how to fix it', () => {
    expect(errorsIn(`${head}---\nname: other\n`)).toEqual([
      expect.objectContaining({
        path: '',
        problem: 'holds more than one YAML document (a line "---" starts another)',
        hint: expect.stringContaining('one experiment'),
        line: 6,
      }),
    ]);
  });
});

describe('formatSpecErrors', () => {
  test('prints one line per problem with file:line:column, path and problem, and the hint below', () => {
    const text = formatSpecErrors(
      [
        {
          path: 'deliverables[2].op',
          problem: 'must be one of ">", "<" (got "=>")',
          hint: 'did you mean ">"?',
          line: 14,
          column: 9,
        },
        { path: '', problem: 'is empty' },
      ],
      'spec.yaml',
    );
    expect(text).toBe(
      [
        'spec.yaml: 2 problems in the experiment spec',
        '  spec.yaml:14:9  deliverables[2].op: must be one of ">", "<" (got "=>")',
        '      hint: did you mean ">"?',
        '  spec.yaml  is empty',
      ].join('\n'),
    );
  });
});

/** The parts of a JSON Schema these tests look at. */
interface JsonSchemaNode {
  title?: string;
  type?: string;
  const?: string;
  pattern?: string;
  default?: unknown;
  required?: string[];
  additionalProperties?: unknown;
  properties?: Record<string, JsonSchemaNode>;
  items?: JsonSchemaNode;
  anyOf?: JsonSchemaNode[];
  oneOf?: JsonSchemaNode[];
}

describe('experimentSpecJsonSchema', () => {
  const schema = experimentSpecJsonSchema() as JsonSchemaNode;

  test('describes the spec as written: durations as strings or seconds, defaults optional', () => {
    expect(schema.title).toBe('Labline experiment spec');
    expect(schema.required?.sort()).toEqual(['experiment_id', 'hypothesis', 'name', 'training']);
    expect(schema.additionalProperties).toBe(false);
    const timeout = schema.properties!.approvals!.properties!.launch!.properties!.timeout!;
    expect(timeout.default).toBe('24h');
    expect(timeout.anyOf).toEqual(
      expect.arrayContaining([expect.objectContaining({ type: 'string', pattern: expect.any(String) })]),
    );
  });

  test('lists every deliverable type as a tagged alternative', () => {
    const alternatives = schema.properties!.deliverables!.items!.oneOf!;
    expect(alternatives.map((option) => option.properties!.type!.const).sort()).toEqual([
      'contains_keys',
      'exists',
      'exists_and_loadable',
      'matches_expected',
      'synced_and_downloadable',
      'threshold',
    ]);
  });

  test('is plain JSON', () => {
    expect(JSON.parse(JSON.stringify(schema))).toEqual(schema);
  });
});
