import pg from 'pg';

import type { TenantDb } from '../db/database';
import type { ColumnKind, TargetRow, TargetTable } from './targets';

const ARRAY_TYPE: Record<ColumnKind, string> = {
  text: 'text[]',
  int: 'integer[]',
  // Sent as float8 and cast: PostgreSQL's float4 text input can round differently from Math.fround.
  real: 'float8[]',
  numeric6: 'numeric[]',
  bool: 'boolean[]',
  ts: 'timestamptz[]',
  jsonb: 'jsonb[]',
  textarr: 'jsonb[]',
  bytea: 'bytea[]',
};

const insertTexts = new Map<string, string>();

/**
 * `INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING`: one statement per batch
 * whatever its size, and a row already there (an earlier run) is left alone. Built once per target
 * from the constant column list; identifiers are escaped all the same.
 */
function insertText(target: TargetTable): string {
  const cached = insertTexts.get(target.table);
  if (cached) return cached;
  const names = target.columns.map((col) => pg.escapeIdentifier(col.name));
  const arrays = target.columns.map((col, i) => `$${i + 2}::${ARRAY_TYPE[col.kind]}`);
  const exprs = target.columns.map((col, i) => {
    const ref = `u.${names[i]!}`;
    const value =
      col.kind === 'textarr'
        ? `ARRAY(SELECT jsonb_array_elements_text(${ref}))`
        : col.kind === 'real'
          ? `${ref}::real`
          : ref;
    return col.dflt === undefined ? value : `coalesce(${value}, ${col.dflt})`;
  });
  const text = `INSERT INTO ${pg.escapeIdentifier(target.table)} (tenant_id, ${names.join(', ')})
    SELECT $1, ${exprs.join(', ')} FROM unnest(${arrays.join(', ')}) AS u(${names.join(', ')})
    ON CONFLICT DO NOTHING`;
  insertTexts.set(target.table, text);
  return text;
}

/** A mapped value as the driver should send it inside an array parameter. */
function wire(kind: ColumnKind, value: unknown): unknown {
  if (value === undefined || value === null) return null;
  if (kind === 'jsonb' || kind === 'textarr') return JSON.stringify(value);
  // ISO text is much cheaper to produce than the driver's local-time rendering of a Date.
  if (kind === 'ts' && value instanceof Date) return value.toISOString();
  return value;
}

/** Inserts a batch of mapped rows; returns how many were new. */
export async function insertRows(
  db: TenantDb,
  target: TargetTable,
  rows: readonly TargetRow[],
): Promise<number> {
  if (rows.length === 0) return 0;
  const values: unknown[] = [db.ctx.tenantId];
  for (const col of target.columns) values.push(rows.map((r) => wire(col.kind, r.values[col.name])));
  const result = await db.query(insertText(target), values);
  return result.rowCount ?? 0;
}

/** The rows of `target` whose key is one of `keys`, every mapped column, for verification. */
export async function readRows(
  db: TenantDb,
  target: TargetTable,
  keys: readonly string[],
): Promise<Record<string, unknown>[]> {
  if (keys.length === 0) return [];
  // float4's text form is shortened; as float8 it is exact.
  const names = target.columns
    .map((col) => {
      const name = pg.escapeIdentifier(col.name);
      return col.kind === 'real' ? `${name}::float8 AS ${name}` : name;
    })
    .join(', ');
  const { rows } = await db.query<Record<string, unknown>>(
    `SELECT ${target.keySql} AS "__key", ${names} FROM ${pg.escapeIdentifier(target.table)}
     WHERE tenant_id = $1 AND ${target.keySql} = ANY($2::text[])`,
    [db.ctx.tenantId, keys],
  );
  return rows;
}

/** Of `values` of the target's natural column, those rows here hold: value → that row's key. */
export async function naturalHolders(
  db: TenantDb,
  target: TargetTable,
  values: readonly string[],
): Promise<Map<string, string>> {
  if (target.natural === undefined || values.length === 0) return new Map();
  const natural = pg.escapeIdentifier(target.natural);
  const { rows } = await db.query<{ natural: string; key: string }>(
    `SELECT ${natural} AS natural, ${target.keySql} AS key FROM ${pg.escapeIdentifier(target.table)}
     WHERE tenant_id = $1 AND ${natural} = ANY($2::text[])`,
    [db.ctx.tenantId, values],
  );
  return new Map(rows.map((r) => [r.natural, r.key]));
}

/**
 * Splits rows into those to insert and those whose natural value another row holds (here, or
 * earlier in the same list). The reason is fixed text, so that skips add up per reason.
 */
export function withoutNaturalDuplicates(
  target: TargetTable,
  rows: readonly TargetRow[],
  holders: ReadonlyMap<string, string>,
): { rows: TargetRow[]; skipped: number; reason: string } {
  const reason = `${target.natural ?? ''} already used by another ${target.table} row`;
  if (target.natural === undefined) return { rows: [...rows], skipped: 0, reason };
  const taken = new Map(holders);
  const kept: TargetRow[] = [];
  for (const row of rows) {
    const value = row.values[target.natural];
    if (typeof value !== 'string') {
      kept.push(row);
      continue;
    }
    const holder = taken.get(value);
    if (holder !== undefined && holder !== row.key) continue;
    taken.set(value, row.key);
    kept.push(row);
  }
  return { rows: kept, skipped: rows.length - kept.length, reason };
}

/** The natural values of rows (strings only). */
export function naturalValues(target: TargetTable, rows: readonly TargetRow[]): string[] {
  if (target.natural === undefined) return [];
  const natural = target.natural;
  return rows.map((r) => r.values[natural]).filter((v): v is string => typeof v === 'string');
}

export interface Checkpoint {
  sourceTable: string;
  generation: string;
  lastSourceId: number;
  rowsRead: number;
  rowsImported: number;
  rowsSkipped: number;
  skipped: Record<string, number>;
}

export async function readCheckpoints(db: TenantDb, agentId: string): Promise<Map<string, Checkpoint>> {
  const { rows } = await db.query<{
    source_table: string;
    generation: string;
    last_source_id: string;
    rows_read: string;
    rows_imported: string;
    rows_skipped: string;
    skipped: Record<string, number>;
  }>(
    `SELECT source_table, generation, last_source_id, rows_read, rows_imported, rows_skipped, skipped
     FROM import_checkpoints WHERE tenant_id = $1 AND agent_id = $2`,
    [db.ctx.tenantId, agentId],
  );
  return new Map(
    rows.map((r) => [
      r.source_table,
      {
        sourceTable: r.source_table,
        generation: r.generation,
        lastSourceId: Number(r.last_source_id),
        rowsRead: Number(r.rows_read),
        rowsImported: Number(r.rows_imported),
        rowsSkipped: Number(r.rows_skipped),
        skipped: r.skipped,
      },
    ]),
  );
}

/** Advances a table's checkpoint by one batch (in the batch's own transaction). */
export async function advanceCheckpoint(
  db: TenantDb,
  agentId: string,
  sourceTable: string,
  generation: string,
  batch: { lastSourceId: number; read: number; imported: number; skipped: Record<string, number> },
): Promise<void> {
  const skippedCount = Object.values(batch.skipped).reduce((a, b) => a + b, 0);
  await db.query(
    `INSERT INTO import_checkpoints AS c (tenant_id, agent_id, source_table, generation, last_source_id,
                                         rows_read, rows_imported, rows_skipped, skipped)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (tenant_id, agent_id, source_table) DO UPDATE SET
       last_source_id = greatest(c.last_source_id, EXCLUDED.last_source_id),
       rows_read = c.rows_read + EXCLUDED.rows_read,
       rows_imported = c.rows_imported + EXCLUDED.rows_imported,
       rows_skipped = c.rows_skipped + EXCLUDED.rows_skipped,
       skipped = (SELECT coalesce(jsonb_object_agg(k, coalesce((c.skipped ->> k)::bigint, 0)
                                                       + coalesce((EXCLUDED.skipped ->> k)::bigint, 0)), '{}')
                  FROM (SELECT jsonb_object_keys(c.skipped) UNION SELECT jsonb_object_keys(EXCLUDED.skipped)) AS ks(k)),
       updated_at = now()`,
    [
      db.ctx.tenantId,
      agentId,
      sourceTable,
      generation,
      batch.lastSourceId,
      batch.read,
      batch.imported,
      skippedCount,
      JSON.stringify(batch.skipped),
    ],
  );
}

/** Whether the tenant's agent exists (RLS: only the unit of work's tenant is visible). */
export async function agentExists(db: TenantDb, agentId: string): Promise<boolean> {
  const { rows } = await db.query('SELECT 1 FROM agents WHERE tenant_id = $1 AND agent_id = $2', [
    db.ctx.tenantId,
    agentId,
  ]);
  return rows.length > 0;
}

/** Chat streams of the tenant among `ids`, with the agent and platform they belong to. */
export async function existingStreams(
  db: TenantDb,
  ids: readonly string[],
): Promise<{ chatStreamId: string; agentId: string; platform: string }[]> {
  if (ids.length === 0) return [];
  const { rows } = await db.query<{ chat_stream_id: string; agent_id: string; platform: string }>(
    'SELECT chat_stream_id, agent_id, platform FROM chat_streams WHERE tenant_id = $1 AND chat_stream_id = ANY($2::text[]) ORDER BY chat_stream_id',
    [db.ctx.tenantId, ids],
  );
  return rows.map((r) => ({ chatStreamId: r.chat_stream_id, agentId: r.agent_id, platform: r.platform }));
}

/** Bot accounts the tenant configured for the agent on a platform (to tell the bot's own messages). */
export async function agentAccountIds(
  db: TenantDb,
  agentId: string,
): Promise<{ platform: string; accountId: string }[]> {
  const { rows } = await db.query<{ platform: string; account_id: string }>(
    'SELECT platform, account_id FROM agent_accounts WHERE tenant_id = $1 AND agent_id = $2',
    [db.ctx.tenantId, agentId],
  );
  return rows.map((r) => ({ platform: r.platform, accountId: r.account_id }));
}
