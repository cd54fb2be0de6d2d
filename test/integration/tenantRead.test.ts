/**
 * The tenant read unit (`Database.readTenant`) and the one-statement unit (`tenantStatement`):
 * every statement sent with the unit's settings in one round trip, as one implicit transaction
 * (`src/db/scopedStatement.ts`). Isolation as strong
 * as `withTenant`'s (the tenant's rows only, the narrowing context, nothing left on the pooled
 * connection, even after a failure), read-only, the statement timeout in force, prepared
 * statements kept per connection, and the round trips it saves counted on the wire.
 */

import type { Database } from '../../src/db/database';
import { createChatStream } from '../../src/db/repositories/chatStreams';
import { getMemory, storeMemory } from '../../src/db/repositories/memories';
import { searchMemories } from '../../src/db/repositories/memorySearch';
import { createTenant } from '../../src/db/repositories/tenants';
import { createIsolationContext } from '../../src/domain/isolationContext';
import { IsolationViolationError } from '../../src/errors';
import { NO_CONTEXT, sessionSettings } from '../support/sessionSettings';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

let t: TestDatabase;

const A = 'acme';
const B = 'globex';
const CHAT = { agentId: 'default', platform: 'qq', chatStreamId: 'qq-group-1' };

const bareSettings = (db: Database) => sessionSettings(db.pool);

/** ReadyForQuery messages the pool's (only) connection receives while `fn` runs: one per round trip. */
async function roundTrips(db: Database, fn: () => Promise<unknown>): Promise<number> {
  let n = 0;
  const count = () => void n++;
  const client = await db.pool.connect();
  const connection = (client as unknown as { connection: NodeJS.EventEmitter }).connection;
  client.release();
  connection.on('readyForQuery', count);
  try {
    await fn();
  } finally {
    connection.off('readyForQuery', count);
  }
  return n;
}

beforeAll(async () => {
  t = await createTestDatabase();
  for (const tenantId of [A, B]) {
    await t.db.withPlatform((db) => createTenant(db, { tenantId, name: `Tenant ${tenantId}` }));
    await t.db.withTenant(createIsolationContext({ tenantId }), (db) => createChatStream(db, CHAT));
    const ctx = createIsolationContext({ tenantId });
    await t.db.withTenant(ctx, async (db) => {
      await storeMemory(db, {
        memoryId: `agent-${tenantId}`,
        agentId: 'default',
        scope: 'agent',
        content: `火锅 hotpot of ${tenantId}`,
      });
      await storeMemory(db, {
        memoryId: `chat-${tenantId}`,
        agentId: 'default',
        scope: 'chat',
        platform: 'qq',
        chatStreamId: 'qq-group-2',
        content: `火锅 hotpot in another chat of ${tenantId}`,
      });
    });
  }
});
afterAll(async () => {
  await t.close();
});

describe('readTenant', () => {
  it("runs under the unit's settings and leaves none of them on the pooled connection", async () => {
    const db = t.openDatabase({ poolMax: 1 });
    const ctx = createIsolationContext({ tenantId: A, ...CHAT });
    const inside = await db.readTenant(ctx, async (h) => sessionSettings(h));
    expect(inside).toMatchObject({
      tenant_id: A,
      agent_id: CHAT.agentId,
      platform: CHAT.platform,
      chat_stream_id: CHAT.chatStreamId,
      platform_access: '',
      read_only: 'on',
    });
    // The same (only) connection afterwards, with no unit of work: no context, read-write again.
    expect(await bareSettings(db)).toEqual({ pid: inside.pid, ...NO_CONTEXT, read_only: 'off' });
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM memory_chest');
    expect(rows[0]).toEqual({ n: 0 });
  });

  it("sees only its tenant's rows, narrowed like withTenant, by id and by search", async () => {
    const own = await t.db.readTenant(createIsolationContext({ tenantId: A }), async (db) => ({
      ids: (await db.query<{ memory_id: string }>('SELECT memory_id FROM memory_chest ORDER BY 1')).rows,
      other: await getMemory(db, `agent-${B}`),
      byTenantColumn: (await db.query('SELECT 1 FROM memory_chest WHERE tenant_id = $1', [B])).rowCount,
      found: (await searchMemories(db, { query: '火锅 hotpot', limit: 10, now: Date.now() })).memories.map(
        (m) => m.memory_id,
      ),
    }));
    expect(own.ids.map((r) => r.memory_id)).toEqual([`agent-${A}`, `chat-${A}`]);
    expect(own.other).toBeUndefined();
    expect(own.byTenantColumn).toBe(0);
    expect(own.found.sort()).toEqual([`agent-${A}`, `chat-${A}`]);

    // Seen from a chat stream: the agent's memory, not another stream's.
    const fromChat = await t.db.readTenant(createIsolationContext({ tenantId: A, ...CHAT }), (db) =>
      searchMemories(db, { query: '火锅 hotpot', limit: 10, now: Date.now() }),
    );
    expect(fromChat.memories.map((m) => m.memory_id)).toEqual([`agent-${A}`]);

    // The same statements through withTenant agree.
    const viaTransaction = await t.db.withTenant(createIsolationContext({ tenantId: A, ...CHAT }), (db) =>
      searchMemories(db, { query: '火锅 hotpot', limit: 10, now: Date.now() }),
    );
    expect(viaTransaction.memories.map((m) => m.memory_id)).toEqual([`agent-${A}`]);
  });

  it('refuses to write, and nothing is written', async () => {
    const ctx = createIsolationContext({ tenantId: A });
    await expect(
      t.db.readTenant(ctx, (db) =>
        storeMemory(db, { memoryId: 'written-in-read', agentId: 'default', scope: 'agent', content: 'x' }),
      ),
    ).rejects.toMatchObject({ code: '25006' });
    await expect(
      t.db.readTenant(ctx, (db) => db.query(`UPDATE memory_chest SET content = 'changed'`)),
    ).rejects.toMatchObject({ code: '25006' });
    const { rows } = await t.admin<{ n: number }>(
      `SELECT count(*)::int AS n FROM memory_chest WHERE memory_id = 'written-in-read' OR content = 'changed'`,
    );
    expect(rows[0]).toEqual({ n: 0 });
  });

  it('keeps the connection clean and usable after a statement fails', async () => {
    const db = t.openDatabase({ poolMax: 1 });
    const ctx = createIsolationContext({ tenantId: B, ...CHAT });
    await expect(
      db.readTenant(ctx, (h) => h.query('SELECT 1 / (count(*) - count(*)) FROM memory_chest')),
    ).rejects.toMatchObject({
      code: '22012',
    });
    expect(await bareSettings(db)).toMatchObject({ ...NO_CONTEXT, read_only: 'off' });
    // A statement whose first Parse failed is parsed again next time (not taken for prepared).
    for (let i = 0; i < 2; i++) {
      await expect(
        db.readTenant(ctx, (h) => h.query('SELECT memory_id FROM no_such_table')),
      ).rejects.toMatchObject({
        code: '42P01',
      });
    }
    const after = await db.readTenant(ctx, (h) =>
      h.query<{ n: number }>('SELECT count(*)::int AS n FROM memory_chest'),
    );
    expect(after.rows[0]).toEqual({ n: 1 });
    expect(await bareSettings(db)).toMatchObject(NO_CONTEXT);
  });

  it("checks raw SQL before it runs, as withTenant's rawSql does", async () => {
    const ctx = createIsolationContext({ tenantId: A });
    const read = await t.db.readTenant(ctx, (db) =>
      db.rawSql<{ n: number }>('SELECT count(*)::int AS n FROM memory_chest WHERE tenant_id = $1', [A]),
    );
    expect(read.rows[0]).toEqual({ n: 2 });
    await expect(
      t.db.readTenant(ctx, (db) => db.rawSql('SELECT count(*) FROM memory_chest WHERE tenant_id = $1', [B])),
    ).rejects.toBeInstanceOf(IsolationViolationError);
  });

  it('applies the statement timeout to the statement', async () => {
    const db = t.openDatabase({ poolMax: 1, statementTimeoutMs: 200 });
    const ctx = createIsolationContext({ tenantId: A });
    await expect(db.readTenant(ctx, (h) => h.query('SELECT pg_sleep(2)'))).rejects.toMatchObject({
      code: '57014',
    });
    expect(await bareSettings(db)).toMatchObject(NO_CONTEXT);
  });

  it('costs one round trip per statement where withTenant costs three', async () => {
    const db = t.openDatabase({ poolMax: 1 });
    const ctx = createIsolationContext({ tenantId: A });
    const search = (h: Parameters<Parameters<Database['readTenant']>[1]>[0]) =>
      searchMemories(h, { query: '火锅 hotpot', limit: 10, now: Date.now() });
    // Warm: the statement is prepared on the connection.
    await db.readTenant(ctx, search);
    expect(await roundTrips(db, () => db.readTenant(ctx, search))).toBe(1);
    expect(await roundTrips(db, () => db.withTenant(ctx, search))).toBe(3);
    // Two statements: two round trips.
    expect(
      await roundTrips(db, () =>
        db.readTenant(ctx, async (h) => {
          await getMemory(h, `agent-${A}`);
          await search(h);
        }),
      ),
    ).toBe(2);
  });
});

describe('tenantStatement', () => {
  it('writes in one round trip under its settings, and refuses a second statement', async () => {
    const db = t.openDatabase({ poolMax: 1 });
    const ctx = createIsolationContext({ tenantId: B });
    await db.readTenant(ctx, (h) => h.query('SELECT 1'));
    let row: Record<string, unknown> | undefined;
    const trips = await roundTrips(db, async () => {
      const r = await db.tenantStatement(
        ctx,
        (h) =>
          h.query(
            `UPDATE memory_chest SET access_count = access_count + 1 WHERE memory_id = ANY ($1::text[])
             RETURNING memory_id, current_setting('synchronous_commit') AS sync, current_setting('app.tenant_id') AS tenant`,
            [[`agent-${A}`, `agent-${B}`]],
          ),
        { synchronousCommit: false },
      );
      row = r.rows[0];
      return r;
    });
    expect(trips).toBe(1);
    // Only B's row: A's is not visible from B's unit.
    expect(row).toEqual({ memory_id: `agent-${B}`, sync: 'off', tenant: B });
    const { rows } = await t.admin<{ memory_id: string; access_count: number }>(
      `SELECT memory_id, access_count FROM memory_chest WHERE memory_id LIKE 'agent-%' ORDER BY 1`,
    );
    expect(rows).toEqual([
      { memory_id: `agent-${A}`, access_count: 0 },
      { memory_id: `agent-${B}`, access_count: 1 },
    ]);
    expect(await bareSettings(db)).toMatchObject({ ...NO_CONTEXT, read_only: 'off' });

    await expect(
      db.tenantStatement(ctx, async (h) => {
        await h.query(`UPDATE memory_chest SET access_count = access_count + 1 WHERE memory_id = $1`, [
          `agent-${B}`,
        ]);
        await h.query(`UPDATE memory_chest SET access_count = 100 WHERE memory_id = $1`, [`agent-${B}`]);
      }),
    ).rejects.toThrow(/one statement only/);
    const { rows: after } = await t.admin<{ n: number }>(
      `SELECT access_count AS n FROM memory_chest WHERE memory_id = $1`,
      [`agent-${B}`],
    );
    expect(after[0]).toEqual({ n: 2 });
  });
});
