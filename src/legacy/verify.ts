import { createHash } from 'node:crypto';

import type { Database } from '../db/database';
import type { IsolationContext } from '../domain/isolationContext';
import { mapBatch, ORPHAN_CHATS } from './importer';
import { naturalHolders, naturalValues, readRows, withoutNaturalDuplicates } from './importRepository';
import type { SourceTableSpec } from './mapping/generation';
import type { SourcePlan } from './sourcePlan';
import type { SqliteSource } from './sqliteSource';
import { type ColumnKind, type TargetName, type TargetRow, TARGETS, type TargetTable } from './targets';

/** One line of the verification table: a source table against the rows it maps to here. */
export interface VerifyLine {
  source: string;
  target: string;
  /** Rows in the source table. */
  sourceRows: number;
  /** Rows the mapping expects here (source rows less those skipped, each key once, no natural duplicates). */
  expected: number;
  /** Of those, rows found here. */
  found: number;
  sourceChecksum: string;
  destChecksum: string;
  ok: boolean;
}

const READ_CHUNK = 5000;

/** A column value in a form that survives the round trip through PostgreSQL unchanged. */
export function canonical(kind: ColumnKind, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (kind) {
    case 'int':
      return Number(value);
    case 'real':
      // Read back as float8 (exact for a float4), so both sides are the same float32.
      return Math.fround(Number(value));
    case 'numeric6':
      return Number(value).toFixed(6);
    case 'bool':
      return Boolean(value);
    case 'ts':
      return value instanceof Date ? value.getTime() : new Date(value as string).getTime();
    case 'jsonb':
    case 'textarr':
      return stableJson(value);
    case 'bytea':
      return createHash('sha256')
        .update(value as Uint8Array)
        .digest('hex');
    default:
      return typeof value === 'string' ? value : JSON.stringify(value);
  }
}

/** JSON with object keys sorted (jsonb keeps its own key order). */
function stableJson(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v as Record<string, unknown>)
          .sort()
          .map((k) => [k, sort((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return JSON.stringify(sort(value));
}

/**
 * Checksum over rows in key order: each row's key and its mapped columns, canonical. Columns the
 * mapping left to the database (`undefined`: no source value, the column default applies) are not
 * compared; `shape` says which those are for each key.
 */
function checksum(
  target: TargetTable,
  rows: ReadonlyMap<string, Readonly<Record<string, unknown>>>,
  shape: ReadonlyMap<string, TargetRow>,
): string {
  const hash = createHash('sha256');
  for (const key of [...rows.keys()].sort()) {
    const values = rows.get(key)!;
    const expected = shape.get(key)?.values ?? values;
    const line = target.columns
      .filter((col) => expected[col.name] !== undefined)
      .map((col) => canonical(col.kind, values[col.name]));
    hash.update(JSON.stringify([key, ...line])).update('\n');
  }
  return hash.digest('hex');
}

async function compare(
  db: Database,
  ctx: IsolationContext,
  source: string,
  sourceRows: number,
  targetName: TargetName,
  expectedRows: ReadonlyMap<string, TargetRow>,
): Promise<VerifyLine> {
  let expected = expectedRows;
  const target: TargetTable = TARGETS[targetName];
  // Rows the import skips because another row here holds their natural value are not expected.
  if (target.natural !== undefined) {
    const all = [...expected.values()];
    const holders = new Map<string, string>();
    const naturals = naturalValues(target, all);
    for (let i = 0; i < naturals.length; i += READ_CHUNK) {
      const chunk = await db.withTenant(ctx, (tx) =>
        naturalHolders(tx, target, naturals.slice(i, i + READ_CHUNK)),
      );
      for (const [k, v] of chunk) holders.set(k, v);
    }
    expected = new Map(withoutNaturalDuplicates(target, all, holders).rows.map((r) => [r.key, r]));
  }
  const keys = [...expected.keys()];
  const found = new Map<string, Record<string, unknown>>();
  for (let i = 0; i < keys.length; i += READ_CHUNK) {
    const rows = await db.withTenant(ctx, (tx) => readRows(tx, target, keys.slice(i, i + READ_CHUNK)));
    for (const r of rows) found.set(String(r.__key), r);
  }
  const expectedValues = new Map([...expected].map(([k, r]) => [k, r.values]));
  const sourceChecksum = checksum(target, expectedValues, expected);
  const destChecksum = checksum(target, found, expected);
  return {
    source,
    target: targetName,
    sourceRows,
    expected: expected.size,
    found: found.size,
    sourceChecksum,
    destChecksum,
    ok: found.size === expected.size && sourceChecksum === destChecksum,
  };
}

/**
 * Maps the whole source again and compares it with what is here: per source table, the count of
 * rows expected and found, and a checksum over the mapped columns of each side in key order.
 */
export async function verifyImport(
  db: Database,
  ctx: IsolationContext,
  source: SqliteSource,
  plan: SourcePlan,
): Promise<VerifyLine[]> {
  const generation = plan.generation;
  const lines: VerifyLine[] = [];
  const chatSpec: SourceTableSpec = {
    source: generation.chats.table,
    targets: ['chat_streams'],
    map: (row) => {
      const mapped = generation.mapChat(row, plan.context);
      return mapped ? { rows: { chat_streams: [mapped] } } : { skip: 'no id' };
    },
  };
  for (const spec of [chatSpec, ...plan.tables]) {
    const expected = new Map<TargetName, Map<string, TargetRow>>();
    let sourceRows = 0;
    for (const page of source.scan(spec.source)) {
      sourceRows += page.length;
      const { byTarget } = mapBatch(page, spec, plan.context);
      for (const [t, rows] of byTarget) {
        const m = expected.get(t) ?? new Map<string, TargetRow>();
        for (const r of rows) m.set(r.key, r);
        expected.set(t, m);
      }
    }
    const primary = spec.targets[spec.targets.length - 1]!;
    lines.push(await compare(db, ctx, spec.source, sourceRows, primary, expected.get(primary) ?? new Map()));
    if (spec === chatSpec) {
      const orphans = new Map(plan.orphanChats.map((r) => [r.key, r]));
      lines.push(await compare(db, ctx, ORPHAN_CHATS, orphans.size, 'chat_streams', orphans));
    }
  }
  return lines;
}
