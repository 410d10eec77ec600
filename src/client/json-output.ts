/**
 * What `--json` prints: the command's data with `"version"` first. The version is raised only when a field
 * changes meaning or goes away; fields are added without raising it. README's "Commands" lists the shapes.
 */
export const JSON_VERSION = 1;

/** `value` as a JSON document (pretty) or one JSON line, with the version. */
export function jsonOutput(value: object, layout: 'document' | 'line' = 'document'): string {
  return JSON.stringify({ version: JSON_VERSION, ...value }, null, layout === 'document' ? 2 : undefined);
}
