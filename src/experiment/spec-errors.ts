import { z } from 'zod';

/**
 * One problem in a spec file, phrased for the person who wrote it: where it is, what is wrong, and how to
 * fix it.
 */
export const SpecError = z.object({
  /** Where in the spec, as a user reads it: `deliverables[2].op`, `training.env.HF_TOKEN`; `''` for the whole file. */
  path: z.string(),
  /** What is wrong, e.g. `must be one of ">", ">=", "<" (got "=>")`. */
  problem: z.string(),
  /** How to fix it, e.g. the allowed values or an example. Absent when the problem says it all. */
  hint: z.string().optional(),
  /** 1-based line in the file, when the position is known. */
  line: z.number().int().positive().optional(),
  /** 1-based column in the file, when the position is known. */
  column: z.number().int().positive().optional(),
});
/** One problem in a spec file: where it is, what is wrong, and how to fix it. */
export type SpecError = z.infer<typeof SpecError>;

/** A position in a spec file, 1-based. */
export interface SpecPosition {
  /** 1-based line. */
  line: number;
  /** 1-based column. */
  column: number;
}

/** Finds where a value (given by its path of keys and indexes) sits in the source file. */
export type LocateSpecPath = (path: readonly PropertyKey[]) => SpecPosition | undefined;

/**
 * Hints attached to spec fields: how to write a valid value. A field's schema carries its hint, so the
 * advice lives beside the rule it explains; {@link specErrorsFromIssues} finds it by the issue's path.
 */
export const specHints = z.registry<{ hint: string }>();

/** Attaches a fix-it hint to a spec field's schema (see {@link specHints}) and returns the schema. */
export function withHint<S extends z.ZodType>(schema: S, hint: string): S {
  specHints.add(schema, { hint });
  return schema;
}

/** Renders a path of keys and indexes the way users read it: `deliverables[2].op`, `config["learning-rate"]`. */
export function formatSpecPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (typeof segment === 'string' && /^[A-Za-z_$][\w$]*$/.test(segment))
      text += text === '' ? segment : `.${segment}`;
    else text += `[${JSON.stringify(String(segment))}]`;
  }
  return text;
}

type Schema = z.core.$ZodType;

/** The schema and the wrappers around it (optional, default, pipe…), outermost first. */
function layers(schema: Schema): Schema[] {
  const found: Schema[] = [];
  let current: Schema | undefined = schema;
  while (current && found.length < 32) {
    found.push(current);
    const def = current._zod.def as unknown as {
      type: string;
      innerType?: Schema;
      in?: Schema;
      getter?: () => Schema;
    };
    if (def.type === 'pipe') current = def.in;
    else if (def.type === 'lazy') current = def.getter?.();
    else current = def.innerType;
  }
  return found;
}

/** The options of a union that could describe `value` (by discriminator when the union has one). */
function unionOptions(schema: Schema, value: unknown): Schema[] {
  const def = schema._zod.def as unknown as { options: Schema[]; discriminator?: string };
  if (!def.discriminator || typeof value !== 'object' || value === null) return def.options;
  const tag = (value as Record<string, unknown>)[def.discriminator];
  const matching = def.options.filter((option) => {
    const shape = objectShape(option);
    const field = shape?.[def.discriminator ?? ''];
    return field !== undefined && (field._zod.values?.has(tag as never) ?? false);
  });
  return matching.length > 0 ? matching : def.options;
}

function objectShape(schema: Schema): Record<string, Schema> | undefined {
  for (const layer of layers(schema)) {
    const def = layer._zod.def as unknown as { type: string; shape?: Record<string, Schema> };
    if (def.type === 'object') return def.shape;
  }
  return undefined;
}

/** The schemas that describe the value at `path` in `input`, following unions by the data. */
function schemasAt(schema: Schema, path: readonly PropertyKey[], input: unknown): Schema[] {
  let current: Schema[] = [schema];
  let value = input;
  for (const segment of path) {
    const next: Schema[] = [];
    for (const candidate of current) next.push(...childSchemas(candidate, segment, value));
    current = next;
    value = childValue(value, segment);
    if (current.length === 0) break;
  }
  return current;
}

function childSchemas(schema: Schema, segment: PropertyKey, value: unknown): Schema[] {
  for (const layer of layers(schema)) {
    const def = layer._zod.def as unknown as {
      type: string;
      shape?: Record<string, Schema>;
      element?: Schema;
      valueType?: Schema;
    };
    switch (def.type) {
      case 'object': {
        const child = def.shape?.[String(segment)];
        return child ? [child] : [];
      }
      case 'array':
        return def.element ? [def.element] : [];
      case 'record':
        return def.valueType ? [def.valueType] : [];
      case 'union':
        return unionOptions(layer, value).flatMap((option) => childSchemas(option, segment, value));
    }
  }
  return [];
}

function childValue(value: unknown, segment: PropertyKey): unknown {
  if (typeof value !== 'object' || value === null) return undefined;
  return (value as Record<PropertyKey, unknown>)[segment];
}

function hintAt(schemas: readonly Schema[]): string | undefined {
  for (const schema of schemas) {
    for (const layer of layers(schema)) {
      const hint = specHints.get(layer)?.hint;
      if (hint) return hint;
    }
  }
  return undefined;
}

function allowedKeysAt(schemas: readonly Schema[], value: unknown): string[] {
  const keys = new Set<string>();
  for (const schema of schemas) {
    for (const layer of layers(schema)) {
      const type = (layer._zod.def as { type: string }).type;
      if (type === 'union') {
        for (const option of unionOptions(layer, value))
          for (const key of Object.keys(objectShape(option) ?? {})) keys.add(key);
      }
      const shape = objectShape(layer);
      if (shape) for (const key of Object.keys(shape)) keys.add(key);
    }
  }
  return [...keys];
}

/** Describes a value the user wrote, briefly: `"=>"`, `42`, `true`, `a list`, `a mapping`. */
function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null (an empty value)';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  const text =
    typeof value === 'string'
      ? JSON.stringify(value)
      : typeof value === 'number' || typeof value === 'boolean'
        ? String(value)
        : typeof value;
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

const TYPE_NAMES: Record<string, string> = {
  object: 'a mapping (key: value)',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'a boolean (true or false)',
  record: 'a mapping (key: value)',
};

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      row.push(Math.min((previous[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, substitution));
    }
    previous = row;
  }
  return previous[b.length] ?? 0;
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

/** `a`, `a or b`, `a, b or c`. */
function alternatives(words: readonly (string | undefined)[]): string {
  const defined = words.filter((word): word is string => word !== undefined);
  return defined.length <= 1
    ? (defined[0] ?? '')
    : `${defined.slice(0, -1).join(', ')} or ${defined.at(-1) ?? ''}`;
}

function listValues(values: readonly unknown[]): string {
  return values.map((value) => JSON.stringify(value)).join(', ');
}

/**
 * Turns zod issues from parsing `input` with `schema` into {@link SpecError}s a person can act on: each names
 * the path, the problem (with the value found) and a hint (the field's registered hint, the allowed values,
 * or the closest known key for a typo). Union failures are reduced to the branch the user evidently meant.
 *
 * @param locate optional: finds the line and column of a path in the source file
 */
export function specErrorsFromIssues(
  issues: readonly z.core.$ZodIssue[],
  schema: z.ZodType,
  input: unknown,
  locate?: LocateSpecPath,
): SpecError[] {
  const errors: SpecError[] = [];
  const seen = new Set<string>();
  const push = (path: readonly PropertyKey[], problem: string, hint: string | undefined): void => {
    const key = `${formatSpecPath(path)}\u0000${problem}`;
    if (seen.has(key)) return;
    seen.add(key);
    const error: SpecError = { path: formatSpecPath(path), problem };
    if (hint) error.hint = hint;
    const position = locate?.(path);
    if (position) Object.assign(error, position);
    errors.push(error);
  };
  const valueAt = (path: readonly PropertyKey[]): unknown =>
    path.reduce<unknown>((value, segment) => childValue(value, segment), input);

  const visit = (issue: z.core.$ZodIssue): void => {
    const path = issue.path;
    const value = valueAt(path);
    const schemas = schemasAt(schema, path, input);
    const registered = hintAt(schemas);
    switch (issue.code) {
      case 'invalid_type': {
        const expected = TYPE_NAMES[issue.expected] ?? issue.expected;
        const field = path.at(-1);
        const addIt = typeof field === 'string' ? `add "${field}:" with ${expected}` : `add ${expected}`;
        if (value === undefined) push(path, 'is required', registered ?? addIt);
        else push(path, `must be ${expected}, not ${describeValue(value)}`, registered);
        return;
      }
      case 'invalid_value': {
        const problem =
          issue.values.length === 1
            ? `must be ${listValues(issue.values)} (got ${describeValue(value)})`
            : `must be one of ${listValues(issue.values)} (got ${describeValue(value)})`;
        const suggestion = typeof value === 'string' ? closest(value, issue.values.map(String)) : undefined;
        push(path, problem, registered ?? (suggestion ? `did you mean "${suggestion}"?` : undefined));
        return;
      }
      case 'invalid_format': {
        const what = issue.message.startsWith('Invalid') ? `is not a valid ${issue.format}` : issue.message;
        push(path, `${what} (got ${describeValue(value)})`, registered);
        return;
      }
      case 'too_small':
      case 'too_big': {
        const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
        const inclusive = issue.inclusive !== false;
        const word =
          issue.code === 'too_small'
            ? inclusive
              ? 'at least'
              : 'more than'
            : inclusive
              ? 'at most'
              : 'less than';
        let problem: string;
        if (issue.origin === 'array') problem = `must have ${word} ${String(bound)} item(s)`;
        else if (issue.origin === 'string')
          problem =
            issue.code === 'too_small' && Number(bound) === 1
              ? 'must not be empty'
              : `must be ${word} ${String(bound)} characters long`;
        else problem = `must be ${word} ${String(bound)} (got ${describeValue(value)})`;
        push(path, problem, registered);
        return;
      }
      case 'unrecognized_keys': {
        const allowed = allowedKeysAt(schemas, value);
        for (const key of issue.keys) {
          const suggestion = closest(key, allowed);
          const known = `known keys here: ${allowed.join(', ')}`;
          push(
            [...path, key],
            'is not a known key',
            suggestion ? `did you mean "${suggestion}"? ${known}` : known,
          );
        }
        return;
      }
      case 'invalid_union': {
        if (issue.discriminator !== undefined && issue.errors.length === 0 && issue.inclusive !== false) {
          const options = (issue as { options?: unknown[] }).options ?? [];
          const tag = issue.path.at(-1) === issue.discriminator ? path : [...path, issue.discriminator];
          const tagValue = valueAt(tag);
          const suggestion =
            typeof tagValue === 'string' ? closest(tagValue, options.map(String)) : undefined;
          push(
            tag,
            tagValue === undefined
              ? `is required: one of ${listValues(options)}`
              : `must be one of ${listValues(options)} (got ${describeValue(tagValue)})`,
            suggestion ? `did you mean "${suggestion}"?` : undefined,
          );
          return;
        }
        // zod reports the one branch that matched the value's type by itself; here no branch did.
        const mismatches = issue.errors.map((branch) => {
          const [only] = branch;
          return branch.length === 1 && only?.code === 'invalid_type' && only.path.length === 0
            ? only
            : undefined;
        });
        const expected = mismatches.map((inner) =>
          inner ? (TYPE_NAMES[inner.expected] ?? inner.expected) : undefined,
        );
        const problem = expected.every((name) => name !== undefined)
          ? `must be ${alternatives([...new Set(expected)])}, not ${describeValue(value)}`
          : `matches none of the allowed forms (got ${describeValue(value)})`;
        push(path, problem, registered);
        return;
      }
      case 'custom': {
        const hint = (issue.params as { hint?: unknown } | undefined)?.hint;
        push(path, issue.message, typeof hint === 'string' ? hint : registered);
        return;
      }
      default:
        push(path, issue.message, registered);
    }
  };
  for (const issue of issues) visit(issue);
  return errors;
}

/**
 * Formats spec errors for a terminal, one per problem, with the file position when known:
 * ```
 * quickstart.yaml: 2 problems in the experiment spec
 *   quickstart.yaml:14:9  deliverables[2].op: must be one of ">", ">=", … (got "=>")
 *       hint: did you mean ">="?
 * ```
 */
export function formatSpecErrors(errors: readonly SpecError[], fileName: string): string {
  const count = errors.length === 1 ? '1 problem' : `${errors.length} problems`;
  const lines = [`${fileName}: ${count} in the experiment spec`];
  for (const error of errors) {
    const where =
      error.line === undefined
        ? fileName
        : `${fileName}:${error.line}${error.column === undefined ? '' : `:${error.column}`}`;
    const subject = error.path === '' ? '' : `${error.path}: `;
    lines.push(`  ${where}  ${subject}${error.problem}`);
    if (error.hint) lines.push(`      hint: ${error.hint}`);
  }
  return lines.join('\n');
}
