// Reading spec files (YAML or JSON text). The workflow bundler resolves yaml's browser build, which needs no
// Node built-ins, so this module stays safe to import from workflow code like the rest of the domain.
import type { Document, Node } from 'yaml';
import { isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { SpecValidationResult } from './spec';
import { ExperimentSpec } from './spec';
import type { LocateSpecPath, SpecError, SpecPosition } from './spec-errors';
import { specErrorsFromIssues } from './spec-errors';

const YAML_HINT =
  'check the indentation and quoting around this line; quote values that contain ": " or start with {, [, *, & or #';

function positionOf(node: Node | null | undefined, lineCounter: LineCounter): SpecPosition | undefined {
  const offset = node?.range?.[0];
  if (offset === undefined) return undefined;
  const { line, col } = lineCounter.linePos(offset);
  return { line, column: col };
}

/** Finds a path's key (in a mapping) or item (in a list) in the document; the nearest existing ancestor when absent. */
function locator(document: Document.Parsed, lineCounter: LineCounter): LocateSpecPath {
  return (path) => {
    let node: unknown = document.contents;
    let position = positionOf(document.contents, lineCounter);
    for (const segment of path) {
      if (isMap(node)) {
        const pair = node.items.find(
          (item) => isScalar(item.key) && String(item.key.value) === String(segment),
        );
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

/**
 * Reads an experiment spec from the text of a YAML or JSON file and validates it. YAML syntax errors and
 * duplicate keys are reported with line and column; schema problems are reported by path (e.g.
 * `deliverables[2].op`) with a hint, and with the line and column of the offending key. All problems are
 * returned at once, so a user fixes them in one pass.
 *
 * @param fileName used only to phrase errors (not read)
 */
export function parseExperimentSpec(text: string, fileName: string): SpecValidationResult {
  const lineCounter = new LineCounter();
  // YAML 1.2 is a superset of JSON, so one parser serves both and JSON errors get positions too.
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (document.errors.length > 0) {
    return {
      ok: false,
      errors: document.errors.map((error): SpecError => {
        const start = lineCounter.linePos(error.pos[0]);
        const problem = `is not valid YAML or JSON: ${error.message.split('\n')[0] ?? error.message}`;
        const hint =
          error.code === 'DUPLICATE_KEY' ? 'remove one of the two entries with this key' : YAML_HINT;
        return { path: '', problem, hint, line: start.line, column: start.col };
      }),
    };
  }
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
  const input: unknown = document.toJS({ maxAliasCount: 1000 });
  const parsed = ExperimentSpec.safeParse(input);
  if (parsed.success) return { ok: true, spec: parsed.data };
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
