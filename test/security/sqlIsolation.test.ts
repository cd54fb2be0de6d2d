/**
 * 租户数据隔离 in the database itself, as the application role: whatever SQL the application
 * (or an attacker who got SQL through it) sends, row-level security shows only the context's
 * tenant, nothing without a context, and the role cannot switch the walls off.
 */
import pg from 'pg';

import { createIsolationContext } from '../../src/domain/isolationContext';
import { IsolationViolationError } from '../../src/errors';
import { startWorld, type World, WORLD_TIMEOUT_MS } from './support/twoTenants';

let w: World;
let tenantTables: string[];
const ctxA = createIsolationContext({ tenantId: 'tenant_a' });

beforeAll(async () => {
  w = await startWorld();
  const { rows } = await w.app.t.admin<{ table_name: string }>(
    `SELECT c.table_name FROM information_schema.columns c
       JOIN information_schema.tables t USING (table_schema, table_name)
      WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id' AND t.table_type = 'BASE TABLE'
      ORDER BY 1`,
  );
  tenantTables = rows.map((r) => r.table_name);
}, WORLD_TIMEOUT_MS);
afterAll(async () => {
  await w.app.close();
});

/** A bare application-role connection: no unit of work, no settings. */
async function appClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: w.app.t.appUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function pgError(c: pg.Client, sql: string): Promise<string | undefined> {
  return c.query(sql).then(
    () => undefined,
    (e: { code?: string }) => e.code ?? 'error',
  );
}

describe('row-level security as the application role', () => {
  it('finds the tenant tables to check (the control)', () => {
    for (const t of [
      'messages',
      'chat_streams',
      'memory_chest',
      'agents',
      'api_keys',
      'users',
      'emoji_packs',
    ])
      expect(tenantTables).toContain(t);
  });

  it('shows an unfiltered SELECT only the context tenant’s rows, on every tenant table', async () => {
    for (const table of tenantTables) {
      const owner = await w.app.t.admin<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(table)} WHERE tenant_id = 'tenant_a'`,
      );
      const seen = await w.app.deps.db.withTenant(ctxA, (db) =>
        db.query<{ tenant_id: string }>(`SELECT tenant_id FROM ${pg.escapeIdentifier(table)}`),
      );
      expect({
        table,
        tenants: [...new Set(seen.rows.map((r) => r.tenant_id))].filter((t) => t !== 'tenant_a'),
      }).toEqual({
        table,
        tenants: [],
      });
      expect({ table, n: seen.rows.length }).toEqual({ table, n: owner.rows[0]!.n });
    }
    // B has rows the owner sees: the walls hid them, they were not missing.
    const b = await w.app.t.admin<{ n: number }>(
      `SELECT count(*)::int AS n FROM messages WHERE tenant_id = 'tenant_b'`,
    );
    expect(b.rows[0]!.n).toBeGreaterThan(0);
  });

  it('shows nothing without a context and refuses writes', async () => {
    await appClient(async (c) => {
      for (const table of tenantTables) {
        const { rows } = await c.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(table)}`,
        );
        expect({ table, n: rows[0]!.n }).toEqual({ table, n: 0 });
      }
      expect(
        await pgError(c, `INSERT INTO agents (tenant_id, agent_id, name) VALUES ('tenant_a', 'ghost', 'g')`),
      ).toBe('42501');
      const updated = await c.query(`UPDATE messages SET content = 'x'`);
      expect(updated.rowCount).toBe(0);
    });
  });

  it('leaves no context behind on a pooled connection (crossover)', async () => {
    const db = w.app.t.openDatabase({ poolMax: 1 });
    const ctxB = createIsolationContext({ tenantId: 'tenant_b' });
    const inB = await db.withTenant(ctxB, (q) =>
      q.query<{ n: number }>(`SELECT count(*)::int AS n FROM messages`),
    );
    expect(inB.rows[0]!.n).toBeGreaterThan(0);
    // The same (only) connection, used next by A: B's setting must be gone.
    const inA = await db.withTenant(ctxA, (q) =>
      q.query<{ tenant_id: string }>(`SELECT DISTINCT tenant_id FROM messages`),
    );
    expect(inA.rows.map((r) => r.tenant_id)).toEqual(['tenant_a']);
    // And after an aborted unit of work too.
    await expect(
      db.withTenant(ctxB, async (q) => {
        await q.query('SELECT 1');
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const setting = await db.withTenant(ctxA, (q) =>
      q.query<{ t: string }>(`SELECT current_setting('app.tenant_id', true) AS t`),
    );
    expect(setting.rows[0]!.t).toBe('tenant_a');
    await db.close();
  });

  it.each([
    ['TRUNCATE', 'TRUNCATE messages'],
    ['ALTER TABLE', 'ALTER TABLE messages ADD COLUMN stolen text'],
    ['DISABLE ROW LEVEL SECURITY', 'ALTER TABLE messages DISABLE ROW LEVEL SECURITY'],
    ['NO FORCE ROW LEVEL SECURITY', 'ALTER TABLE messages NO FORCE ROW LEVEL SECURITY'],
    ['DROP POLICY', 'DROP POLICY IF EXISTS tenant_isolation ON messages'],
    ['SET ROLE to the owner', 'SET ROLE postgres'],
    ['CREATE TABLE in public', 'CREATE TABLE public.stolen (x int)'],
  ])('denies the application role %s', async (_name, sql) => {
    await appClient(async (c) => {
      expect(await pgError(c, sql)).toMatch(/^(42501|42704|22023)$/);
    });
    const { rows } = await w.app.t.admin<{ n: number }>(`SELECT count(*)::int AS n FROM messages`);
    expect(rows[0]!.n).toBeGreaterThan(0);
  });

  it('gains nothing from SET row_security = off', async () => {
    await appClient(async (c) => {
      await c.query(`SET row_security = off`);
      // A role subject to RLS gets an error instead of unfiltered rows.
      expect(await pgError(c, 'SELECT * FROM messages')).toBe('42501');
    });
  });

  it('refuses set_config of app.tenant_id inside a unit of work', async () => {
    // Inside a unit of work the settings are the context’s; rawSql refuses changing them.
    await expect(
      w.app.deps.db.rawSql(ctxA, `SELECT set_config('app.tenant_id', 'tenant_b', true)`),
    ).rejects.toBeInstanceOf(IsolationViolationError);
  });

  it.each([
    ['set_config', `SELECT set_config('app.tenant_id', 'tenant_b', false)`],
    ['RESET ALL', 'RESET ALL'],
    ['DISCARD ALL', 'DISCARD ALL'],
    ['SET row_security', 'SET row_security = off'],
    ['SET ROLE', 'SET ROLE postgres'],
  ])('raises IsolationViolationError for %s through rawSql', async (_name, sql) => {
    await expect(w.app.deps.db.rawSql(ctxA, sql)).rejects.toBeInstanceOf(IsolationViolationError);
  });
});

describe('catalog', () => {
  it('has row-level security enabled and forced on every table with a tenant_id', async () => {
    const { rows } = await w.app.t.admin<{ relname: string; on: boolean; forced: boolean; policies: number }>(
      `SELECT c.relname, c.relrowsecurity AS on, c.relforcerowsecurity AS forced,
              (SELECT count(*)::int FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
          AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)`,
    );
    expect(rows.length).toBeGreaterThanOrEqual(tenantTables.length);
    expect(rows.filter((r) => !r.on || !r.forced || r.policies === 0)).toEqual([]);
  });

  it('makes every view security_invoker', async () => {
    const { rows } = await w.app.t.admin<{ relname: string; options: string[] | null }>(
      `SELECT c.relname, c.reloptions AS options FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('v', 'm')`,
    );
    const unsafe = rows.filter(
      (r) => !(r.options ?? []).some((o) => /^security_invoker=(true|on|1)$/.test(o)),
    );
    expect(unsafe).toEqual([]);
  });

  it('pins search_path on every SECURITY DEFINER function', async () => {
    const { rows } = await w.app.t.admin<{ proname: string; config: string[] | null }>(
      `SELECT p.proname, p.proconfig AS config FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.prosecdef`,
    );
    expect(rows.filter((r) => !(r.config ?? []).some((c) => c.startsWith('search_path=')))).toEqual([]);
  });

  it('gives the application role no ownership, no superuser, no BYPASSRLS and no TRUNCATE', async () => {
    const role = w.app.t.appRole;
    const { rows } = await w.app.t.admin<{
      rolsuper: boolean;
      rolbypassrls: boolean;
      owned: number;
      truncatable: number;
    }>(
      `SELECT r.rolsuper, r.rolbypassrls,
              (SELECT count(*)::int FROM pg_class c WHERE c.relowner = r.oid) AS owned,
              (SELECT count(*)::int FROM information_schema.role_table_grants g
                WHERE g.grantee = r.rolname AND g.privilege_type = 'TRUNCATE') AS truncatable
         FROM pg_roles r WHERE r.rolname = $1`,
      [role],
    );
    expect(rows).toEqual([{ rolsuper: false, rolbypassrls: false, owned: 0, truncatable: 0 }]);
  });
});
