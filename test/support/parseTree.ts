/** Helpers for walking libpg-query parse trees (PostgreSQL's own parser, as JSON) in tests. */

export type Node = Record<string, unknown>;

export const isNode = (v: unknown): v is Node => typeof v === 'object' && v !== null && !Array.isArray(v);

export const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** The strings of a name list (`funcname`, `ColumnRef.fields`, operator `name`). */
export function names(fields: unknown): string[] {
  return list(fields).flatMap((f) => (isNode(f) && isNode(f.String) ? [String(f.String.sval)] : []));
}

/** Depth-first walk over every node object of a tree, with its node type. */
export function* walk(value: unknown): Generator<[string, Node]> {
  if (Array.isArray(value)) for (const item of value) yield* walk(item);
  if (!isNode(value)) return;
  for (const [key, child] of Object.entries(value)) {
    if (/^[A-Z]/.test(key) && isNode(child)) yield [key, child];
    yield* walk(child);
  }
}
