import type { Generation } from './mapping/generation';
import { V0 } from './mapping/v0';
import { V1 } from './mapping/v1';

/** The file is SQLite but not a MaiBot database this importer knows. */
export class UnknownSchemaError extends Error {
  constructor(readonly found: readonly string[]) {
    super(
      `not a MaiBot 0.x or 1.x database: expected tables chat_streams + messages (0.10–0.11) or ` +
        `chat_sessions + mai_messages (1.x); found ${found.length === 0 ? 'no tables' : found.join(', ')}`,
    );
    this.name = 'UnknownSchemaError';
  }
}

const has = (cols: ReadonlySet<string> | undefined, ...names: string[]) =>
  cols !== undefined && names.every((n) => cols.has(n));

/**
 * Which MaiBot generation wrote the file, from its tables and their key columns. 1.x renamed the
 * tables (`mai_messages`, `chat_sessions`); a database MaiBot 1.x has not migrated yet still has
 * the 0.x ones, so 1.x wins only when its tables are there.
 */
export function detectGeneration(tables: ReadonlyMap<string, ReadonlySet<string>>): Generation {
  if (
    has(tables.get('mai_messages'), 'session_id', 'message_id') &&
    has(tables.get('chat_sessions'), 'session_id')
  ) {
    return V1;
  }
  if (
    has(tables.get('messages'), 'chat_id', 'message_id', 'time') &&
    has(tables.get('chat_streams'), 'stream_id')
  ) {
    return V0;
  }
  throw new UnknownSchemaError([...tables.keys()]);
}
