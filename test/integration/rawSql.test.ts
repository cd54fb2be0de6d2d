import { upsertChatStream } from '../../src/db/repositories/chatStreams';
import { insertMessages } from '../../src/db/repositories/messages';
import { createTenant } from '../../src/db/repositories/tenants';
import { createIsolationContext } from '../../src/domain/isolationContext';
import { IsolationViolationError, ValidationError } from '../../src/errors';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

let t: TestDatabase;
const ctxA = createIsolationContext({ tenantId: 'tenant_a', agentId: 'default' });
const ctxB = createIsolationContext({ tenantId: 'tenant_b', agentId: 'default' });

async function seedMessages(ctx: typeof ctxA, count: number) {
  await t.db.withTenant(ctx, async (db) => {
    await upsertChatStream(db, { chatStreamId: 'chat_001', agentId: 'default', platform: 'qq' });
    await insertMessages(
      db,
      Array.from({ length: count }, (_, i) => ({
        messageId: `msg_${ctx.tenantId}_${i}`,
        agentId: 'default',
        platform: 'qq',
        chatStreamId: 'chat_001',
        direction: 'in' as const,
        content: `${ctx.tenantId} message ${i}`,
      })),
    );
  });
}

beforeAll(async () => {
  t = await createTestDatabase();
  await t.db.withPlatform(async (db) => {
    await createTenant(db, { tenantId: 'tenant_a', name: 'A' });
    await createTenant(db, { tenantId: 'tenant_b', name: 'B' });
  });
  await seedMessages(ctxA, 3);
  await seedMessages(ctxB, 2);
});
afterAll(async () => {
  await t.close();
});

async function refused(sql: string, params: unknown[] = []): Promise<IsolationViolationError> {
  const err: unknown = await t.db.rawSql(ctxA, sql, params).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(IsolationViolationError);
  return err as IsolationViolationError;
}

describe('rawSql', () => {
  it("refuses the seed's cross-tenant query naming another tenant's id", async () => {
    const err = await refused("SELECT * FROM messages WHERE tenant_id = 'tenant_b'");
    expect(err.details).toMatchObject({ reason: 'names another tenant', tenant_id: '"tenant_b"' });
  });

  it.each([
    ['a reversed comparison', "SELECT * FROM messages WHERE 'tenant_b' = tenant_id", []],
    ['a qualified column and a cast', "SELECT * FROM messages m WHERE m.tenant_id = 'tenant_b'::text", []],
    ['an IN list', "SELECT * FROM messages WHERE tenant_id IN ('tenant_a', 'tenant_b')", []],
    ['a bound parameter', 'SELECT * FROM messages WHERE tenant_id = $1', ['tenant_b']],
    [
      '= ANY of an array parameter',
      'SELECT * FROM messages WHERE tenant_id = ANY($1)',
      [['tenant_a', 'tenant_b']],
    ],
    ['a subquery', "SELECT count(*) FROM (SELECT * FROM messages WHERE tenant_id = 'tenant_b') s", []],
    [
      "an INSERT of another tenant's row",
      "INSERT INTO audit_log (tenant_id, actor, action) VALUES ('tenant_b', 'x', 'y')",
      [],
    ],
  ])('refuses a foreign tenant id in %s', async (_name, sql, params) => {
    expect((await refused(sql, params)).details).toMatchObject({ reason: 'names another tenant' });
  });

  it.each([
    ['SET', "SET app.tenant_id = 'tenant_b'"],
    ['SET LOCAL', "SET LOCAL app.tenant_id = 'tenant_b'"],
    ['RESET', 'RESET app.tenant_id'],
    ['RESET ALL', 'RESET ALL'],
    ['DISCARD', 'DISCARD ALL'],
    ['SET ROLE', 'SET ROLE postgres'],
    ['SET SESSION AUTHORIZATION', 'SET SESSION AUTHORIZATION postgres'],
    ['set_config', "SELECT set_config('app.tenant_id', 'tenant_b', true)"],
    [
      'a schema-qualified set_config hidden in a WHERE',
      "SELECT 1 FROM messages WHERE pg_catalog.set_config('app.tenant_id', 'tenant_b', true) IS NOT NULL",
    ],
    ['TRUNCATE', 'TRUNCATE messages'],
    ['DROP TABLE', 'DROP TABLE messages'],
    ['CREATE TABLE', 'CREATE TABLE x (id int)'],
    ['ALTER TABLE', 'ALTER TABLE messages DISABLE ROW LEVEL SECURITY'],
    ['CREATE POLICY', 'CREATE POLICY p ON messages USING (true)'],
    ['GRANT', 'GRANT ALL ON messages TO PUBLIC'],
    ['SELECT INTO', 'SELECT * INTO stolen FROM messages'],
    ['transaction control', 'COMMIT'],
    ['two statements', 'SELECT 1; SET ROLE postgres'],
    ['a comment-hidden second statement', 'SELECT 1 /* ; */ ; DISCARD ALL'],
  ])('refuses %s', async (_name, sql) => {
    expect((await refused(sql)).message).toMatch(/^raw SQL refused: /);
  });

  it('turns unparsable SQL into a validation error, not a database error', async () => {
    await expect(t.db.rawSql(ctxA, 'SELEC * FRM messages')).rejects.toBeInstanceOf(ValidationError);
  });

  it("returns only the context tenant's rows for a plain SELECT * FROM messages", async () => {
    const { rows } = await t.db.rawSql<{ tenant_id: string }>(ctxA, 'SELECT * FROM messages');
    expect(rows).toHaveLength(3);
    expect(new Set(rows.map((r) => r.tenant_id))).toEqual(new Set(['tenant_a']));
  });

  it('runs allowed statements with parameters under RLS', async () => {
    const { rows } = await t.db.rawSql<{ n: string }>(
      ctxB,
      'SELECT count(*) AS n FROM messages WHERE content LIKE $1',
      ['%message%'],
    );
    expect(rows[0]?.n).toBe('2');
  });

  it("allows naming the context's own tenant", async () => {
    const { rows } = await t.db.rawSql(ctxA, "SELECT message_id FROM messages WHERE tenant_id = 'tenant_a'");
    expect(rows).toHaveLength(3);
  });

  it('leaves an UPDATE without a tenant predicate confined to the context tenant by RLS', async () => {
    const result = await t.db.rawSql(ctxA, "UPDATE messages SET content = 'edited'");
    expect(result.rowCount).toBe(3);
    const { rows } = await t.admin<{ tenant_id: string; n: string }>(
      "SELECT tenant_id, count(*) AS n FROM messages WHERE content = 'edited' GROUP BY tenant_id",
    );
    expect(rows).toEqual([{ tenant_id: 'tenant_a', n: '3' }]);
  });
});
