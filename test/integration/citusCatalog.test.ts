/**
 * The rules Citus imposes on a schema, checked on the migrated catalog (Citus itself cannot be
 * installed here), and docs/citus.md held against it. Every table with a tenant_id column is
 * hash-distributed by tenant_id in one co-location group (`tenants` included); every other table is
 * a reference table. The checks iterate the catalog, so a table added by a later migration is
 * checked without touching this file.
 */
import { readFileSync } from 'node:fs';

import { type CatalogLayout, CITUS_DOC, readCatalogLayout, readDocStatements } from '../support/citusLayout';
import { names, walk } from '../support/parseTree';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

let t: TestDatabase;
let layout: CatalogLayout;
let distributed: Set<string>;

beforeAll(async () => {
  t = await createTestDatabase();
  layout = await readCatalogLayout(t.admin);
  distributed = new Set(layout.distributed);
});
afterAll(async () => {
  await t.close();
});

const PUBLIC_TABLES = `c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')`;

describe('Citus layout of the catalog', () => {
  it('has distributed tenant tables (tenants among them) and tenant-less reference tables', () => {
    expect(layout.distributed).toEqual(expect.arrayContaining(['tenants', 'agents', 'messages']));
    expect(layout.reference).toEqual(expect.arrayContaining(['platform_users', 'schemaversion']));
  });

  it('puts tenant_id in, and first in, every primary key, unique constraint and unique index of a distributed table', async () => {
    const { rows } = await t.admin<{ table: string; index: string; columns: string[] }>(`
      SELECT c.relname AS table, i.relname AS index,
             array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(attnum, n)
                   LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
                   ORDER BY k.n)::text[] AS columns
      FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
      WHERE ${PUBLIC_TABLES} AND x.indisunique`);
    const keys = rows.filter((r) => distributed.has(r.table));
    expect(keys.length).toBeGreaterThan(layout.distributed.length);
    expect(keys.filter((r) => r.columns[0] !== 'tenant_id')).toEqual([]);
  });

  it('maps tenant_id to tenant_id in every foreign key between distributed tables, and has none from a reference table to a distributed one', async () => {
    const { rows } = await t.admin<{ name: string; child: string; parent: string; pairs: string[] }>(`
      SELECT con.conname AS name, c.relname AS child, p.relname AS parent,
             array(SELECT ca.attname || '->' || pa.attname
                   FROM unnest(con.conkey, con.confkey) k(ck, pk)
                   JOIN pg_attribute ca ON ca.attrelid = con.conrelid AND ca.attnum = k.ck
                   JOIN pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = k.pk)::text[] AS pairs
      FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_class p ON p.oid = con.confrelid
      WHERE con.contype = 'f' AND c.relnamespace = 'public'::regnamespace`);
    const between = rows.filter((r) => distributed.has(r.child) && distributed.has(r.parent));
    expect(between.length).toBeGreaterThan(10);
    expect(between.filter((r) => !r.pairs.includes('tenant_id->tenant_id'))).toEqual([]);
    expect(rows.filter((r) => !distributed.has(r.child) && distributed.has(r.parent))).toEqual([]);
  });

  it('uses only bigint identity or sequence columns (Citus refuses smallint and int identities)', async () => {
    const { rows } = await t.admin<{ table: string; column: string; type: string; identity: string }>(`
      SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
             a.attidentity AS identity
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE ${PUBLIC_TABLES} AND a.attnum > 0 AND NOT a.attisdropped
        AND (a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%')`);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.filter((r) => r.type !== 'bigint')).toEqual([]);
  });

  it('calls no function of the application in a column DEFAULT unless docs/citus.md distributes it', async () => {
    const { rows } = await t.admin<{ table: string; fn: string }>(`
      SELECT c.relname AS table, p.proname AS fn
      FROM pg_attrdef d JOIN pg_class c ON c.oid = d.adrelid
      JOIN pg_depend dep ON dep.classid = 'pg_attrdef'::regclass AND dep.objid = d.oid
                        AND dep.refclassid = 'pg_proc'::regclass
      JOIN pg_proc p ON p.oid = dep.refobjid
      WHERE ${PUBLIC_TABLES} AND p.pronamespace <> 'pg_catalog'::regnamespace`);
    // Only built-ins exist on every node by themselves; ours must be created there first.
    const distributedFunctions = new Set(
      [...readFileSync(CITUS_DOC, 'utf8').matchAll(/create_distributed_function\('([a-z_0-9]+)\(/g)].map(
        (m) => m[1],
      ),
    );
    expect(rows.filter((r) => !distributedFunctions.has(r.fn))).toEqual([]);
  });

  it('reads only settings in the subqueries of its RLS policies, so removing them for Citus is mechanical', async () => {
    // Citus refuses a policy with a subquery on a distributed table (ErrorIfUnsupportedPolicyExpr,
    // commands/policy.c); docs/citus.md § Row-level security gives the rewrite.
    const { parse } = await import('libpg-query');
    const { rows } = await t.admin<{ table: string; policy: string; expr: string }>(`
      SELECT c.relname AS table, p.polname AS policy, e.expr
      FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid,
           LATERAL (VALUES (pg_get_expr(p.polqual, p.polrelid)), (pg_get_expr(p.polwithcheck, p.polrelid))) e(expr)
      WHERE e.expr IS NOT NULL`);
    const onDistributed = rows.filter((r) => distributed.has(r.table));
    expect(onDistributed.length).toBeGreaterThan(layout.distributed.length);
    const reachingTables: string[] = [];
    let sublinks = 0;
    for (const r of onDistributed) {
      for (const [type, node] of walk(await parse(`SELECT 1 WHERE ${r.expr}`))) {
        if (type !== 'SubLink') continue;
        sublinks++;
        const fromTables = [...walk(node.subselect)].filter(([k]) => k === 'RangeVar');
        const calls = [...walk(node.subselect)]
          .filter(([k]) => k === 'FuncCall')
          .map(([, f]) => names(f.funcname).at(-1));
        if (fromTables.length > 0 || calls.some((f) => f !== 'current_setting')) {
          reachingTables.push(`${r.table}.${r.policy}`);
        }
      }
    }
    expect(sublinks).toBeGreaterThan(0);
    expect(reachingTables).toEqual([]);
  });

  it('names every trigger on a distributed table in docs/citus.md (Citus does not run them by itself)', async () => {
    const { rows } = await t.admin<{ table: string; trigger: string }>(`
      SELECT c.relname AS table, tg.tgname AS trigger
      FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid
      WHERE ${PUBLIC_TABLES} AND NOT tg.tgisinternal`);
    const doc = readFileSync(CITUS_DOC, 'utf8');
    const triggers = rows.filter((r) => distributed.has(r.table));
    expect(triggers.map((r) => r.trigger)).toContain('tenants_default_agent');
    expect(triggers.filter((r) => !doc.includes(`\`${r.trigger}\``))).toEqual([]);
  });
});

describe('docs/citus.md', () => {
  it('distributes exactly the catalog: every tenant table by tenant_id co-located with tenants, every other table as a reference table', async () => {
    const statements = await readDocStatements();
    const tables = statements.map((s) => s.table);
    expect(tables.filter((name, i) => tables.indexOf(name) !== i)).toEqual([]);
    const docDistributed = statements.filter((s) => s.fn === 'create_distributed_table');
    expect(docDistributed.map((s) => s.table).sort()).toEqual([...layout.distributed].sort());
    expect(
      statements
        .filter((s) => s.fn === 'create_reference_table')
        .map((s) => s.table)
        .sort(),
    ).toEqual([...layout.reference].sort());
    expect(docDistributed[0]).toEqual({
      fn: 'create_distributed_table',
      table: 'tenants',
      column: 'tenant_id',
    });
    expect(
      docDistributed.slice(1).filter((s) => s.column !== 'tenant_id' || s.colocateWith !== 'tenants'),
    ).toEqual([]);
  });

  it('orders the statements so that every table a foreign key references is distributed first', async () => {
    const order = new Map((await readDocStatements()).map((s, i) => [s.table, i]));
    const { rows } = await t.admin<{ child: string; parent: string }>(`
      SELECT DISTINCT c.relname AS child, p.relname AS parent
      FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_class p ON p.oid = con.confrelid
      WHERE con.contype = 'f' AND c.relnamespace = 'public'::regnamespace AND c.oid <> p.oid`);
    expect(rows.length).toBeGreaterThan(10);
    expect(rows.filter((r) => !(order.get(r.parent)! < order.get(r.child)!))).toEqual([]);
  });
});
