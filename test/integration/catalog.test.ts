import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

let t: TestDatabase;

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t.close();
});

describe('schema catalog', () => {
  it('enables and forces RLS with at least one policy on every table that has a tenant_id column', async () => {
    const { rows } = await t.admin<{ table: string; enabled: boolean; forced: boolean; policies: string }>(`
      SELECT c.relname AS table, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
             (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
        AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
      ORDER BY 1`);
    const tables = rows.map((r) => r.table);
    for (const seedTable of [
      'chat_streams',
      'messages',
      'memory_chest',
      'agents',
      'llm_usage',
      'expression',
      'action_records',
      'jargon',
      'person_info',
      'group_info',
      'users',
      'api_keys',
      'refresh_tokens',
      'emoji_packs',
      'emojis',
      'tenant_plugins',
      'config_entries',
      'config_history',
      'usage_stats',
      'audit_log',
      'tenants',
    ]) {
      expect(tables).toContain(seedTable);
    }
    const weak = rows.filter((r) => !r.enabled || !r.forced || Number(r.policies) < 1).map((r) => r.table);
    expect(weak).toEqual([]);
  });

  it('narrows by agent, platform and chat stream with RESTRICTIVE policies on tables that carry them', async () => {
    const { rows } = await t.admin<{ table: string; policy: string; permissive: boolean }>(`
      SELECT c.relname AS table, p.polname AS policy, p.polpermissive AS permissive
      FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
      WHERE c.relname IN ('messages', 'memory_chest') ORDER BY 1, 2`);
    const messages = rows.filter((r) => r.table === 'messages');
    expect(messages.map((r) => [r.policy, r.permissive])).toEqual([
      ['narrowing', false],
      ['tenant_isolation', true],
    ]);
  });

  it('leads every primary, unique and foreign key of a tenant table with tenant_id', async () => {
    const { rows } = await t.admin<{ table: string; constraint: string; first: string }>(`
      SELECT c.relname AS table, con.conname AS constraint, a.attname AS first
      FROM pg_constraint con
      JOIN pg_class c ON c.oid = con.conrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = con.conkey[1]
      WHERE n.nspname = 'public' AND con.contype IN ('p', 'u', 'f')
        AND EXISTS (SELECT 1 FROM pg_attribute x WHERE x.attrelid = c.oid AND x.attname = 'tenant_id')
        AND c.relname <> 'tenants'`);
    expect(rows.length).toBeGreaterThan(30);
    expect(rows.filter((r) => r.first !== 'tenant_id')).toEqual([]);
  });

  it('gives the application role no superuser, no BYPASSRLS, no owned table and no TRUNCATE', async () => {
    const role = await t.admin<{ rolsuper: boolean; rolbypassrls: boolean; rolcanlogin: boolean }>(
      'SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = $1',
      [t.appRole],
    );
    expect(role.rows).toEqual([{ rolsuper: false, rolbypassrls: false, rolcanlogin: true }]);
    const owned = await t.admin(
      `SELECT c.relname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
       JOIN pg_namespace n ON n.oid = c.relnamespace WHERE r.rolname = $1 AND n.nspname = 'public'`,
      [t.appRole],
    );
    expect(owned.rows).toEqual([]);
    const truncatable = await t.admin(
      `SELECT table_name FROM information_schema.table_privileges
       WHERE grantee = $1 AND privilege_type = 'TRUNCATE'`,
      [t.appRole],
    );
    expect(truncatable.rows).toEqual([]);
  });

  it('creates the default tenant with its default agent', async () => {
    const { rows } = await t.admin('SELECT tenant_id, agent_id FROM agents WHERE tenant_id = $1', [
      'default',
    ]);
    expect(rows).toEqual([{ tenant_id: 'default', agent_id: 'default' }]);
  });
});
