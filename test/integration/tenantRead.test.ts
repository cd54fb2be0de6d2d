/**
 * Tenant units at once with options: the read unit (`Database.readTenant`: read-only, one
 * round trip per step) and `withTenantAtOnce`'s `readOnly` and `synchronousCommit`. Isolation as
 * strong as `withTenant`'s (the tenant's rows only, the narrowing context, nothing left on the
 * pooled connection, even after a failure), writes refused where read-only, the statement timeout
 * in force, and the round trips counted on the wire.
 */

import type { Database, TenantDb } from '../../src/db/database';
import { MemoryAccessCounter } from '../../src/db/memoryAccessCounter';
import { createChatStream, getChatStream } from '../../src/db/repositories/chatStreams';
import { getMemory, storeMemory } from '../../src/db/repositories/memories';
import { searchMemories } from '../../src/db/repositories/memorySearch';
import { createTenant } from '../../src/db/repositories/tenants';
import { createIsolationContext } from '../../src/domain/isolationContext';
import { IsolationViolationError } from '../../src/errors';
import { watchRoundTrips } from '../support/pgRoundTrips';
import { NO_CONTEXT, sessionSettings } from '../support/sessionSettings';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

let t: TestDatabase;

const A = 'acme';
const B = 'globex';
const CHAT = { agentId: 'default', platform: 'qq', chatStreamId: 'qq-group-1' };

const bareSettings = (db: Database) => sessionSettings(db.pool);
const search = (h: TenantDb) => searchMemories(h, { query: '火锅 hotpot', limit: 10, now: Date.now() });

/** A database of one connection, and the round trips on the wire `fn` costs it (`watchRoundTrips`). */
function onOneConnection(o: { statementTimeoutMs?: number } = {}) {
  const db = t.openDatabase({ poolMax: 1, ...o });
  let turns = 0;
  db.pool.on('connect', (client) => watchRoundTrips(client, () => (turns += 1)));
  const roundTrips = async (fn: () => Promise<unknown>) => {
    const before = turns;
    await fn();
    return turns - before;
  };
  return { db, roundTrips };
}

async function accessCounts(): Promise<Record<string, number>> {
  const { rows } = await t.admin<{ memory_id: string; access_count: number }>(
    `SELECT memory_id, access_count FROM memory_chest WHERE memory_id LIKE 'agent-%' ORDER BY 1`,
  );
  return Object.fromEntries(rows.map((r) => [r.memory_id, r.access_count]));
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
  it("runs every step under the unit's settings, read-only, and leaves none of them on the pooled connection", async () => {
    const { db } = onOneConnection();
    const ctx = createIsolationContext({ tenantId: A, ...CHAT });
    const [first, second] = await db.readTenant(ctx, async (h) => [
      await sessionSettings(h),
      await sessionSettings(h),
    ]);
    const expected = {
      tenant_id: A,
      agent_id: CHAT.agentId,
      platform: CHAT.platform,
      chat_stream_id: CHAT.chatStreamId,
      platform_access: '',
      read_only: 'on',
    };
    expect(first).toMatchObject(expected);
    // The step after an await is a unit of its own on the same connection, with the same settings.
    expect(second).toEqual(first);
    // The same (only) connection afterwards, with no unit of work: no context, read-write again.
    expect(await bareSettings(db)).toEqual({ pid: first.pid, ...NO_CONTEXT, read_only: 'off' });
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM memory_chest');
    expect(rows[0]).toEqual({ n: 0 });
  });

  it("sees only its tenant's rows, narrowed like withTenant, by id and by search", async () => {
    const own = await t.db.readTenant(createIsolationContext({ tenantId: A }), async (db) => ({
      ids: (await db.query<{ memory_id: string }>('SELECT memory_id FROM memory_chest ORDER BY 1')).rows,
      other: await getMemory(db, `agent-${B}`),
      byTenantColumn: (await db.query('SELECT 1 FROM memory_chest WHERE tenant_id = $1', [B])).rowCount,
      found: (await search(db)).memories.map((m) => m.memory_id),
    }));
    expect(own.ids.map((r) => r.memory_id)).toEqual([`agent-${A}`, `chat-${A}`]);
    expect(own.other).toBeUndefined();
    expect(own.byTenantColumn).toBe(0);
    expect(own.found.sort()).toEqual([`agent-${A}`, `chat-${A}`]);

    // Seen from a chat stream: the agent's memory, not another stream's.
    const fromChat = await t.db.readTenant(createIsolationContext({ tenantId: A, ...CHAT }), search);
    expect(fromChat.memories.map((m) => m.memory_id)).toEqual([`agent-${A}`]);

    // The same statements through withTenant agree.
    const viaTransaction = await t.db.withTenant(createIsolationContext({ tenantId: A, ...CHAT }), search);
    expect(viaTransaction.memories.map((m) => m.memory_id)).toEqual([`agent-${A}`]);
  });

  it('refuses to write, in its first step or a later one, and nothing is written', async () => {
    const ctx = createIsolationContext({ tenantId: A });
    const write = (db: TenantDb) =>
      storeMemory(db, { memoryId: 'written-in-read', agentId: 'default', scope: 'agent', content: 'x' });
    await expect(t.db.readTenant(ctx, write)).rejects.toMatchObject({
      code: '25006',
      message: 'cannot execute INSERT in a read-only transaction',
    });
    await expect(
      t.db.readTenant(ctx, async (db) => {
        await getMemory(db, `agent-${A}`);
        await db.query(`UPDATE memory_chest SET content = 'changed'`);
      }),
    ).rejects.toMatchObject({ code: '25006' });
    const { rows } = await t.admin<{ n: number }>(
      `SELECT count(*)::int AS n FROM memory_chest WHERE memory_id = 'written-in-read' OR content = 'changed'`,
    );
    expect(rows[0]).toEqual({ n: 0 });
  });

  it('keeps the connection clean and usable after a statement fails', async () => {
    const { db } = onOneConnection();
    const ctx = createIsolationContext({ tenantId: B, ...CHAT });
    await expect(
      db.readTenant(ctx, (h) => h.query('SELECT 1 / (count(*) - count(*)) FROM memory_chest')),
    ).rejects.toMatchObject({ code: '22012' });
    expect(await bareSettings(db)).toMatchObject({ ...NO_CONTEXT, read_only: 'off' });
    // A statement whose first Parse failed is parsed again next time (not taken for prepared).
    for (let i = 0; i < 2; i++) {
      await expect(
        db.readTenant(ctx, (h) => h.query('SELECT memory_id FROM no_such_table')),
      ).rejects.toMatchObject({ code: '42P01' });
    }
    const after = await db.readTenant(ctx, (h) =>
      h.query<{ n: number }>('SELECT count(*)::int AS n FROM memory_chest'),
    );
    expect(after.rows[0]).toEqual({ n: 1 });
    expect(await bareSettings(db)).toMatchObject(NO_CONTEXT);
  });

  it('rejects when a failed statement was caught and the unit carried on', async () => {
    const ctx = createIsolationContext({ tenantId: A });
    await expect(
      t.db.readTenant(ctx, async (h) => {
        await h.query('SELECT memory_id FROM no_such_table').catch(() => undefined);
        return getMemory(h, `agent-${A}`);
      }),
    ).rejects.toThrow(/rolled back/);
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
    const { db } = onOneConnection({ statementTimeoutMs: 200 });
    const ctx = createIsolationContext({ tenantId: A });
    await expect(db.readTenant(ctx, (h) => h.query('SELECT pg_sleep(2)'))).rejects.toMatchObject({
      code: '57014',
    });
    expect(await bareSettings(db)).toMatchObject(NO_CONTEXT);
  });

  it('costs one round trip per step: statements issued together share it, a dependent one adds one', async () => {
    const { db, roundTrips } = onOneConnection();
    const ctx = createIsolationContext({ tenantId: A });
    // Warm: connected, and the statements prepared on the connection.
    await db.readTenant(ctx, (h) => Promise.all([search(h), getMemory(h, `agent-${A}`)]));
    expect(await roundTrips(() => db.readTenant(ctx, search))).toBe(1);
    // withTenant writes BEGIN with the statement, COMMIT after its answer.
    expect(await roundTrips(() => db.withTenant(ctx, search))).toBe(2);
    expect(
      await roundTrips(() => db.readTenant(ctx, (h) => Promise.all([getMemory(h, `agent-${A}`), search(h)]))),
    ).toBe(1);
    // The search of GET /memory/search seen from a chat stream waits for the stream's row.
    let found: string[] = [];
    const dependent = await roundTrips(() =>
      db.readTenant(ctx, async (h) => {
        const stream = await getChatStream(h, CHAT.chatStreamId);
        const r = await searchMemories(h, {
          query: '火锅 hotpot',
          limit: 10,
          now: Date.now(),
          agentId: stream?.agent_id,
          platform: stream?.platform,
          chatStreamId: CHAT.chatStreamId,
        });
        found = r.memories.map((m) => m.memory_id);
      }),
    );
    expect(dependent).toBe(2);
    expect(found).toEqual([`agent-${A}`]);
  });
});

describe('withTenantAtOnce options', () => {
  it('readOnly: a write fails with "read-only transaction" from the first statement on, and nothing is written', async () => {
    const { db, roundTrips } = onOneConnection();
    const ctx = createIsolationContext({ tenantId: A, ...CHAT });
    await expect(
      db.withTenantAtOnce(ctx, (h) => h.query(`UPDATE memory_chest SET content = 'changed'`), {
        readOnly: true,
      }),
    ).rejects.toMatchObject({ code: '25006', message: 'cannot execute UPDATE in a read-only transaction' });
    let inside: Awaited<ReturnType<typeof sessionSettings>> | undefined;
    const trips = await roundTrips(async () => {
      inside = await db.withTenantAtOnce(ctx, (h) => sessionSettings(h), { readOnly: true });
    });
    expect(trips).toBe(1);
    expect(inside).toMatchObject({ tenant_id: A, chat_stream_id: CHAT.chatStreamId, read_only: 'on' });
    // Without the option the unit may write.
    const plain = await db.withTenantAtOnce(ctx, (h) => sessionSettings(h));
    expect(plain.read_only).toBe('off');
    expect(await bareSettings(db)).toEqual({ pid: inside!.pid, ...NO_CONTEXT, read_only: 'off' });
    const { rows } = await t.admin<{ n: number }>(
      `SELECT count(*)::int AS n FROM memory_chest WHERE content = 'changed'`,
    );
    expect(rows[0]).toEqual({ n: 0 });
  });

  it("synchronousCommit false: writes in one round trip with synchronous_commit off, in its tenant's rows only", async () => {
    const { db, roundTrips } = onOneConnection();
    const ctx = createIsolationContext({ tenantId: B });
    await db.readTenant(ctx, (h) => h.query('SELECT 1')); // connects
    const before = await accessCounts();
    const touch = (h: TenantDb) =>
      h.query<{ memory_id: string; sync: string; tenant: string }>(
        `UPDATE memory_chest SET access_count = access_count + 1 WHERE memory_id = ANY ($1::text[])
         RETURNING memory_id, current_setting('synchronous_commit') AS sync, current_setting('app.tenant_id') AS tenant`,
        [[`agent-${A}`, `agent-${B}`]],
      );
    let rows: { memory_id: string; sync: string; tenant: string }[] = [];
    const trips = await roundTrips(async () => {
      rows = (await db.withTenantAtOnce(ctx, touch, { synchronousCommit: false })).rows;
    });
    expect(trips).toBe(1);
    // Only B's row: A's is not visible from B's unit.
    expect(rows).toEqual([{ memory_id: `agent-${B}`, sync: 'off', tenant: B }]);
    expect(await accessCounts()).toEqual({ ...before, [`agent-${B}`]: before[`agent-${B}`]! + 1 });
    // The setting lasted the unit: the next unit, and the bare connection, commit synchronously.
    expect((await db.withTenantAtOnce(ctx, touch)).rows[0]?.sync).toBe('on');
    const { rows: bare } = await db.pool.query<{ sync: string }>(
      `SELECT current_setting('synchronous_commit') AS sync`,
    );
    expect(bare[0]).toEqual({ sync: 'on' });
    expect(await bareSettings(db)).toMatchObject({ ...NO_CONTEXT, read_only: 'off' });
  });

  it("writes a search's access counts (MemoryAccessCounter) with synchronous_commit off, in one round trip", async () => {
    // What each updated row's write ran under, noted by a trigger as the owner.
    await t.admin(`CREATE TABLE sync_seen (memory_id text, sync text, tenant text)`);
    await t.admin(`CREATE FUNCTION note_sync() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
      BEGIN
        INSERT INTO sync_seen VALUES (NEW.memory_id, current_setting('synchronous_commit'),
                                      current_setting('app.tenant_id'));
        RETURN NEW;
      END $$`);
    await t.admin(`CREATE TRIGGER note_sync AFTER UPDATE ON memory_chest
                   FOR EACH ROW EXECUTE FUNCTION note_sync()`);
    try {
      const { db, roundTrips } = onOneConnection();
      await db.readTenant(createIsolationContext({ tenantId: A }), (h) => h.query('SELECT 1')); // connects
      const counter = new MemoryAccessCounter(db, t.logger);
      const before = await accessCounts();
      const trips = await roundTrips(async () => {
        counter.count(A, [`agent-${A}`, `agent-${B}`]);
        counter.count(A, [`agent-${A}`]);
        await counter.drain();
      });
      expect(trips).toBe(1);
      // Both accesses of A's memory in one write; B's memory is not A's to count.
      expect(await accessCounts()).toEqual({ ...before, [`agent-${A}`]: before[`agent-${A}`]! + 2 });
      const { rows } = await t.admin('SELECT memory_id, sync, tenant FROM sync_seen');
      expect(rows).toEqual([{ memory_id: `agent-${A}`, sync: 'off', tenant: A }]);
    } finally {
      await t.admin('DROP TRIGGER note_sync ON memory_chest');
    }
  });
});
