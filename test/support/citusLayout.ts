/**
 * The Citus layout of the schema, read from the catalog (which tables are distributed by tenant_id,
 * which are reference tables) and from docs/citus.md (the statements that distribute them), so
 * that tests can hold the two against each other.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

import type pg from 'pg';

import { isNode, type Node } from './parseTree';

type Admin = <R extends pg.QueryResultRow>(text: string, params?: unknown[]) => Promise<pg.QueryResult<R>>;

export interface CatalogLayout {
  /** Tables with a tenant_id column: hash-distributed by it, one co-location group. */
  distributed: string[];
  /** Tenant-less platform tables: reference tables. */
  reference: string[];
  /** Functions (not triggers) whose body names a distributed table: their statements run inside. */
  tableFunctions: string[];
}

export async function readCatalogLayout(admin: Admin): Promise<CatalogLayout> {
  const { rows } = await admin<{ table: string; tenant: boolean }>(`
    SELECT c.relname AS table,
           EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'
                   AND NOT a.attisdropped) AS tenant
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
    ORDER BY 1`);
  const distributed = rows.filter((r) => r.tenant).map((r) => r.table);
  const functions = await admin<{ name: string; src: string }>(`
    SELECT p.proname AS name, p.prosrc AS src FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public' AND p.prorettype <> 'trigger'::regtype`);
  const words = (src: string) => new Set(src.toLowerCase().split(/[^a-z0-9_]+/));
  return {
    distributed,
    reference: rows.filter((r) => !r.tenant).map((r) => r.table),
    tableFunctions: functions.rows
      .filter((f) => distributed.some((t) => words(f.src).has(t)))
      .map((f) => f.name)
      .sort(),
  };
}

export interface DistributionStatement {
  fn: 'create_distributed_table' | 'create_reference_table';
  table: string;
  column?: string;
  colocateWith?: string;
}

export const CITUS_DOC = path.join(__dirname, '../../docs/citus.md');

function stringConst(node: unknown): string | undefined {
  if (!isNode(node)) return undefined;
  if (isNode(node.TypeCast)) return stringConst(node.TypeCast.arg);
  const sval = isNode(node.A_Const) && isNode(node.A_Const.sval) ? node.A_Const.sval.sval : undefined;
  return typeof sval === 'string' ? sval : undefined;
}

/**
 * Every `SELECT create_distributed_table(…)` / `create_reference_table(…)` in the ```sql blocks of
 * docs/citus.md, in document order, parsed by PostgreSQL's parser (named `colocate_with => …`
 * or positional arguments).
 */
export async function readDocStatements(
  markdown = readFileSync(CITUS_DOC, 'utf8'),
): Promise<DistributionStatement[]> {
  const { parse } = await import('libpg-query');
  const blocks = [...markdown.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const found: DistributionStatement[] = [];
  for (const block of blocks) {
    const tree = (await parse(block)) as { stmts?: { stmt: Node }[] };
    for (const { stmt } of tree.stmts ?? []) {
      const select = isNode(stmt.SelectStmt) ? stmt.SelectStmt : undefined;
      for (const target of Array.isArray(select?.targetList) ? select.targetList : []) {
        const call =
          isNode(target) && isNode(target.ResTarget) && isNode(target.ResTarget.val)
            ? target.ResTarget.val.FuncCall
            : undefined;
        if (!isNode(call)) continue;
        const name = (call.funcname as { String: { sval: string } }[]).at(-1)?.String.sval;
        if (name !== 'create_distributed_table' && name !== 'create_reference_table') continue;
        const positional: string[] = [];
        const named: Record<string, string | undefined> = {};
        for (const arg of (call.args as unknown[] | undefined) ?? []) {
          if (isNode(arg) && isNode(arg.NamedArgExpr))
            named[String(arg.NamedArgExpr.name)] = stringConst(arg.NamedArgExpr.arg);
          else positional.push(stringConst(arg) ?? '?');
        }
        const statement: DistributionStatement = { fn: name, table: positional[0] ?? '?' };
        const column = positional[1] ?? named.distribution_column;
        const colocateWith = positional[3] ?? named.colocate_with;
        if (column !== undefined) statement.column = column;
        if (colocateWith !== undefined) statement.colocateWith = colocateWith;
        found.push(statement);
      }
    }
  }
  return found;
}
