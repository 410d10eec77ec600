// Reading spec files (YAML or JSON text). The workflow bundler resolves yaml's browser build, which needs no
// Node built-ins, so this module stays safe to import from workflow code like the rest of the domain.
import type { Document, Node, Pair, YAMLMap } from 'yaml';
import { Composer, CST, isAlias, isMap, isPair, isScalar, isSeq, LineCounter, Parser } from 'yaml';
import type { SpecValidationResult } from './spec';
import { ExperimentSpec } from './spec';
import type { LocateSpecPath, SpecError, SpecPosition } from './spec-errors';
import { formatSpecPath, specErrorsFromIssues } from './spec-errors';
import {
  encodedSpecSizeProblem,
  formatBytes,
  formatCount,
  LARGE_DATA_HINT,
  MAX_SPEC_DEPTH,
  MAX_SPEC_ENTRIES,
  MAX_SPEC_FILE_BYTES,
  utf8Length,
} from './spec-limits';

const YAML_HINT =
  'check the indentation and quoting around this line; quote values that contain ": " or start with {, [, *, & or #';

const TOO_DEEP_PROBLEM = `nests more than ${MAX_SPEC_DEPTH} levels of mappings and lists`;
const TOO_DEEP_HINT =
  'a spec needs a few levels; flatten this value, or keep deep data in a file the trainer reads';

function positionOf(node: Node | null | undefined, lineCounter: LineCounter): SpecPosition | undefined {
  const offset = node?.range?.[0];
  if (offset === undefined) return undefined;
  const { line, col } = lineCounter.linePos(offset);
  return { line, column: col };
}

/** Finds a path's key (in a mapping) or item (in a list) in the document; the nearest existing ancestor when absent. */
function locator(document: Document.Parsed, lineCounter: LineCounter): LocateSpecPath {
  // Each mapping's keys, indexed on first use: a spec with thousands of errors in one mapping stays linear.
  const indexes = new Map<YAMLMap, Map<string, Pair>>();
  const pairOf = (map: YAMLMap, key: string): Pair | undefined => {
    let index = indexes.get(map);
    if (!index) {
      index = new Map();
      for (const pair of map.items) if (!index.has(keyOf(pair))) index.set(keyOf(pair), pair);
      indexes.set(map, index);
    }
    return index.get(key);
  };
  return (path) => {
    let node: unknown = document.contents;
    let position = positionOf(document.contents, lineCounter);
    for (const segment of path) {
      if (isMap(node)) {
        const pair = pairOf(node, String(segment));
        if (!pair) break;
        position = positionOf(pair.key as Node, lineCounter) ?? position;
        node = pair.value;
      } else if (isSeq(node) && typeof segment === 'number') {
        const item = node.items[segment];
        if (!item) break;
        position = positionOf(item as Node, lineCounter) ?? position;
        node = item;
      } else break;
    }
    return position;
  };
}

/** What a value holds once its aliases are expanded: keys and list items, and levels of nesting. */
interface Expanded {
  /** Keys and list items, aliases expanded. */
  entries: number;
  /** Keys and list items written out (an alias counts as none). */
  written: number;
  /** Levels of mappings and lists, the value's own included. */
  depth: number;
}

const NOTHING: Expanded = { entries: 0, written: 0, depth: 0 };

/**
 * Checks what `toJS` would otherwise find by throwing (an alias to no anchor, an alias inside the value it
 * names) or by running out of memory (an alias "bomb"), in one pass over the document and without expanding
 * anything: each anchored value's expanded size is computed once and reused at every alias to it. Also
 * counts keys and list items and measures nesting, both through aliases, against the spec limits.
 */
function checkStructure(document: Document.Parsed, lineCounter: LineCounter): SpecError[] {
  const errors: SpecError[] = [];
  const at = (node: Node | null | undefined): Partial<SpecPosition> => positionOf(node, lineCounter) ?? {};
  // The last node that set each anchor so far, in document order, as YAML resolves aliases.
  const anchors = new Map<string, Node>();
  const sizes = new Map<Node, Expanded>();
  const open = new Set<Node>();
  let tooBig = false;
  let tooDeep = false;
  const nestsTooDeep = (node: Node, path: PropertyKey[], throughAlias: boolean): void => {
    if (tooDeep) return;
    tooDeep = true;
    errors.push({
      path: formatSpecPath(path),
      problem: throughAlias
        ? `expands through an alias to more than ${MAX_SPEC_DEPTH} levels of mappings and lists`
        : TOO_DEEP_PROBLEM,
      hint: TOO_DEEP_HINT,
      ...at(node),
    });
  };

  const anchor = (node: Node): void => {
    if (node.anchor) anchors.set(node.anchor, node);
  };
  const visit = (node: unknown, path: PropertyKey[], level: number): Expanded => {
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      if (!target) {
        errors.push({
          path: formatSpecPath(path),
          problem: `refers to the anchor &${node.source}, which is not defined before it`,
          hint: `define the anchor first (key: &${node.source} value) and refer to it below with *${node.source}, or write the value out`,
          ...at(node),
        });
        return NOTHING;
      }
      if (open.has(target)) {
        errors.push({
          path: formatSpecPath(path),
          problem: `refers to the anchor &${node.source}, which contains it: the value would never end`,
          hint: 'write the value out instead of the alias',
          ...at(node),
        });
        return NOTHING;
      }
      const size = sizes.get(target) ?? NOTHING;
      if (level + size.depth > MAX_SPEC_DEPTH) nestsTooDeep(node, path, true);
      return { ...size, written: 0 };
    }
    if (isScalar(node)) {
      anchor(node);
      return NOTHING;
    }
    if (!isMap(node) && !isSeq(node)) return NOTHING;
    anchor(node);
    if (level >= MAX_SPEC_DEPTH) {
      nestsTooDeep(node, path, false);
      return NOTHING;
    }
    open.add(node);
    let entries = 0;
    let written = 0;
    let depth = 0;
    const add = (child: Expanded): void => {
      entries += 1 + child.entries;
      written += 1 + child.written;
      depth = Math.max(depth, child.depth);
    };
    const visitPair = (pair: Pair, pairPath: PropertyKey[], pairLevel: number): Expanded => {
      if (isScalar(pair.key)) anchor(pair.key);
      return visit(pair.value, [...pairPath, keyOf(pair)], pairLevel + 1);
    };
    if (isMap(node)) {
      const seen = new Map<string, Pair>();
      for (const pair of node.items) {
        const key = keyOf(pair);
        const first = seen.get(key);
        if (first) {
          const firstAt = positionOf(first.key as Node, lineCounter);
          errors.push({
            path: formatSpecPath([...path, key]),
            problem: `repeats the key ${JSON.stringify(key)}${firstAt ? ` (first at line ${firstAt.line})` : ''}`,
            hint: 'remove one of the two entries with this key',
            ...at(pair.key as Node),
          });
        } else seen.set(key, pair);
        add(visitPair(pair, path, level));
      }
    } else {
      node.items.forEach((item, index) => {
        if (!isPair(item)) return add(visit(item, [...path, index], level + 1));
        // A flow list may hold `key: value` items, each a mapping of one key.
        const value = visitPair(item, [...path, index], level + 1);
        add({ entries: 1 + value.entries, written: 1 + value.written, depth: value.depth + 1 });
      });
    }
    open.delete(node);
    const size = { entries, written, depth: depth + 1 };
    sizes.set(node, size);
    if (!tooBig && size.entries > MAX_SPEC_ENTRIES) {
      tooBig = true;
      const expanded = size.entries > size.written;
      errors.push({
        path: formatSpecPath(path),
        problem: expanded
          ? `expands through aliases to more than ${formatCount(MAX_SPEC_ENTRIES)} keys and list items (${formatCount(size.entries)})`
          : `has ${formatCount(size.entries)} keys and list items; a spec may have at most ${formatCount(MAX_SPEC_ENTRIES)}`,
        hint: expanded
          ? 'each alias (*name) copies everything under its anchor; write the values out, or alias smaller parts'
          : LARGE_DATA_HINT,
        ...at(node),
      });
    }
    return size;
  };
  visit(document.contents, [], 0);
  return errors;
}

/** A mapping key as the parsed spec will have it (keys are read as strings, see `stringKeys`). */
function keyOf(pair: Pair): string {
  return isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
}

/** The first collection in the token tree nested deeper than {@link MAX_SPEC_DEPTH}, by its offset. */
function tooDeepOffset(tokens: readonly CST.Token[]): number | undefined {
  // The parser builds this tree without recursion; walking it with an explicit stack keeps a pathological
  // nesting (100,000 "[") from overflowing the stack before it is refused.
  const stack: { token: CST.Token | null | undefined; depth: number }[] = tokens.map((token) => ({
    token,
    depth: 0,
  }));
  for (let next = stack.pop(); next; next = stack.pop()) {
    const { token, depth } = next;
    if (!token) continue;
    if (token.type === 'document') {
      stack.push({ token: token.value, depth });
    } else if (CST.isCollection(token)) {
      if (depth >= MAX_SPEC_DEPTH) return token.offset;
      for (const item of token.items) {
        stack.push({ token: item.key, depth: depth + 1 }, { token: item.value, depth: depth + 1 });
      }
    }
  }
  return undefined;
}

/**
 * Parses YAML (or JSON) text into one document, or says why it cannot: its nesting is checked on the
 * parser's token tree before the document is composed, and a second document is an error.
 */
function readDocument(
  text: string,
  lineCounter: LineCounter,
): { document: Document.Parsed } | { errors: SpecError[] } {
  const at = (offset: number): SpecPosition => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const tokens = Array.from(new Parser(lineCounter.addNewLine).parse(text));
  const deep = tooDeepOffset(tokens);
  if (deep !== undefined) {
    return { errors: [{ path: '', problem: TOO_DEEP_PROBLEM, hint: TOO_DEEP_HINT, ...at(deep) }] };
  }
  // YAML 1.2 is a superset of JSON, so one parser serves both and JSON errors get positions too.
  // `stringKeys`: keys are read as written (`1:` is "1", as JSON would have it) and a list, mapping or alias as
  // a key is an error, so every key of the parsed spec is the string the file shows. Duplicate keys are found
  // by `checkStructure` in linear time; yaml's own check (`uniqueKeys`) compares every key with every other.
  const composer = new Composer({ prettyErrors: false, uniqueKeys: false, stringKeys: true });
  const [document, second] = composer.compose(tokens, true, text.length);
  if (!document) return { errors: [{ path: '', problem: 'could not be read', hint: YAML_HINT }] };
  if (second) {
    return {
      errors: [
        {
          path: '',
          problem: 'holds more than one YAML document (a line "---" starts another)',
          hint: 'a spec file holds one experiment: remove the second "---" and what follows it, or put each experiment in its own file',
          ...at(second.range[0]),
        },
      ],
    };
  }
  if (document.errors.length === 0) return { document };
  return {
    errors: document.errors.map((error): SpecError => {
      const position = at(error.pos[0]);
      if (error.code === 'NON_STRING_KEY') {
        return {
          path: '',
          problem: 'has a key that is a list, a mapping or an alias (*name)',
          hint: 'write each key as plain text, like "learning_rate:"',
          ...position,
        };
      }
      const problem = `is not valid YAML or JSON: ${error.message.split('\n')[0] ?? error.message}`;
      return { path: '', problem, hint: YAML_HINT, ...position };
    }),
  };
}

/**
 * Reads an experiment spec from the text of a YAML or JSON file and validates it. YAML syntax errors and
 * duplicate keys are reported with line and column; schema problems are reported by path (e.g.
 * `deliverables[2].op`) with a hint, and with the line and column of the offending key. All problems are
 * returned at once, so a user fixes them in one pass.
 *
 * The spec's size is checked before each costly step: the file's bytes before parsing
 * ({@link MAX_SPEC_FILE_BYTES}), its nesting before composing ({@link MAX_SPEC_DEPTH}), its keys and list
 * items before building values ({@link MAX_SPEC_ENTRIES}). Nothing it is given makes it throw.
 *
 * @param fileName used only to phrase errors (not read)
 */
export function parseExperimentSpec(text: string, fileName: string): SpecValidationResult {
  const bytes = utf8Length(text);
  if (bytes > MAX_SPEC_FILE_BYTES) {
    return {
      ok: false,
      errors: [
        {
          path: '',
          problem: `is ${formatBytes(bytes)}; a spec file may be at most ${formatBytes(MAX_SPEC_FILE_BYTES)}`,
          hint: LARGE_DATA_HINT,
        },
      ],
    };
  }
  const lineCounter = new LineCounter();
  const read = readDocument(text, lineCounter);
  if ('errors' in read) return { ok: false, errors: read.errors };
  const { document } = read;
  if (document.contents === null) {
    return {
      ok: false,
      errors: [
        {
          path: '',
          problem: `${fileName} is empty`,
          hint: 'start from examples/quickstart.yaml; `labline schema` prints every field',
        },
      ],
    };
  }
  const structural = checkStructure(document, lineCounter);
  if (structural.length > 0) return { ok: false, errors: structural };
  let input: unknown;
  try {
    // Aliases are checked above (defined, acyclic, bounded expansion), so yaml's own alias-count guard, which
    // throws a bare ReferenceError, is turned off; anything else it throws is still reported, not raised.
    input = document.toJS({ maxAliasCount: -1 });
  } catch (error) {
    return {
      ok: false,
      errors: [{ path: '', problem: `could not be read: ${(error as Error).message}`, hint: YAML_HINT }],
    };
  }
  const parsed = ExperimentSpec.safeParse(input);
  if (parsed.success) {
    const tooLarge = encodedSpecSizeProblem(parsed.data, locator(document, lineCounter));
    return tooLarge ? { ok: false, errors: [tooLarge] } : { ok: true, spec: parsed.data };
  }
  const errors = specErrorsFromIssues(
    parsed.error.issues,
    ExperimentSpec,
    input,
    locator(document, lineCounter),
  );
  // Read top to bottom, as the user will fix them (the sort is stable: same-line problems keep schema order).
  errors.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity) || (a.column ?? 0) - (b.column ?? 0));
  return { ok: false, errors };
}
