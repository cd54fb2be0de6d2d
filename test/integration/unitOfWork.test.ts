/**
 * The tenant unit of work (`Database.withTenant` / `withPlatform`): settings that never outlive the
 * transaction on a pooled connection, RLS with no context at all, rollback on an isolation
 * violation, primary keys that lead with tenant_id, client release, stale handles, the platform
 * table, and parallel units of different tenants sharing a small pool.
 */
import type { Database, PlatformDb, TenantDb } from '../../src/db/database';
import { createChatStream } from '../../src/db/repositories/chatStreams';
import { getMemory, storeMemory } from '../../src/db/repositories/memories';
import { countMessages, getMessage, insertMessages } from '../../src/db/repositories/messages';
import { createTenant, getTenant, listTenants } from '../../src/db/repositories/tenants';
import { createIsolationContext, type IsolationContext } from '../../src/domain/isolationContext';
import { ConflictError, IsolationViolationError } from '../../src/errors';
import { watchRoundTrips } from '../support/pgRoundTrips';
import { NO_CONTEXT, sessionSettings } from '../support/sessionSettings';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

let t: TestDatabase;

const A = 'acme';
const B = 'globex';
const CHAT = { agentId: 'default', platform: 'qq', chatStreamId: 'qq-group-1' };

function tenantCtx(tenantId: string): IsolationContext {
  return createIsolationContext({ tenantId });
}

function chatCtx(tenantId: string): IsolationContext {
  return createIsolationContext({ tenantId, ...CHAT });
}

let seq = 0;
function uid(label: string): string {
  seq += 1;
  return `${label}-${seq}`;
}

const settingsOf = sessionSettings;
const NO_SETTINGS = NO_CONTEXT;

/** Visible row counts with no tenant filter and with an explicit `tenant_id = $1`. */
const COUNTS_SQL = `
  SELECT (SELECT count(*)::int FROM messages) AS messages,
         (SELECT count(*)::int FROM messages WHERE tenant_id = $1) AS messages_of_tenant,
         (SELECT count(*)::int FROM memory_chest WHERE tenant_id = $1) AS memories_of_tenant,
         (SELECT count(*)::int FROM chat_streams WHERE tenant_id = $1) AS chat_streams_of_tenant,
         (SELECT count(*)::int FROM agents WHERE tenant_id = $1) AS agents_of_tenant,
         (SELECT count(*)::int FROM tenants) AS tenants`;

async function ownerCount(sql: string, params: unknown[]): Promise<number> {
  const { rows } = await t.admin<{ n: number }>(`SELECT count(*)::int AS n FROM (${sql}) AS x`, params);
  return rows[0]!.n;
}

async function writeMessage(db: Database, tenantId: string, messageId: string, content: string) {
  return db.withTenant(chatCtx(tenantId), (h) =>
    insertMessages(h, [{ messageId, ...CHAT, direction: 'in', content }]),
  );
}

beforeAll(async () => {
  t = await createTestDatabase();
  for (const tenantId of [A, B]) {
    await t.db.withPlatform((db) => createTenant(db, { tenantId, name: `Tenant ${tenantId}` }));
    await t.db.withTenant(tenantCtx(tenantId), (db) => createChatStream(db, CHAT));
    await writeMessage(t.db, tenantId, `seed-${tenantId}`, `seed message of ${tenantId}`);
    await t.db.withTenant(chatCtx(tenantId), (db) =>
      storeMemory(db, { memoryId: `seed-${tenantId}`, agentId: 'default', scope: 'agent', content: 'seed' }),
    );
  }
});
afterAll(async () => {
  await t.close();
});

describe('unit of work', () => {
  it("leaves none of tenant A's settings on the pooled connection: a query with no context afterwards sees nothing of A", async () => {
    const db = t.openDatabase({ poolMax: 1 });
    const inside = await db.withTenant(chatCtx(A), async (h) => {
      await insertMessages(h, [{ messageId: uid('uow-a'), ...CHAT, direction: 'in', content: 'hi' }]);
      const settings = await settingsOf(h);
      const counts = (await h.query(COUNTS_SQL, [A])).rows[0];
      return { settings, counts };
    });
    expect(inside.settings).toMatchObject({
      tenant_id: A,
      agent_id: CHAT.agentId,
      platform: CHAT.platform,
      chat_stream_id: CHAT.chatStreamId,
      platform_access: '',
    });
    expect(inside.counts).toMatchObject({
      messages_of_tenant: 2,
      memories_of_tenant: 1,
      chat_streams_of_tenant: 1,
    });

    // Raw pool: the same (only) connection, no unit of work, so no context at all.
    const after = await settingsOf(db.pool);
    expect(after).toMatchObject({ pid: inside.settings.pid, ...NO_SETTINGS });
    const counts: unknown = (await db.pool.query(COUNTS_SQL, [A])).rows[0];
    expect(counts).toEqual({
      messages: 0,
      messages_of_tenant: 0,
      memories_of_tenant: 0,
      chat_streams_of_tenant: 0,
      agents_of_tenant: 0,
      tenants: 0,
    });

    // Same after a platform unit of work: platform_access does not stick either.
    await db.withPlatform((h) => listTenants(h, { limit: 10, offset: 0 }));
    const afterPlatform = await settingsOf(db.pool);
    expect(afterPlatform).toMatchObject({ pid: inside.settings.pid, ...NO_SETTINGS });
    expect((await db.pool.query(COUNTS_SQL, [A])).rows[0]).toMatchObject({ tenants: 0, messages: 0 });
    expect(db.pool.totalCount).toBe(1);
  });

  it('commits without waiting for the disk only when asked (synchronousCommit false), for that unit only', async () => {
    const db = t.openDatabase({ poolMax: 1 });
    const sync = (h: { query(text: string): Promise<{ rows: unknown[] }> }) =>
      h.query(
        `SELECT current_setting('synchronous_commit') AS sync, current_setting('app.tenant_id') AS tenant`,
      );
    const id = uid('uow-async');
    const inside = await db.withTenant(
      chatCtx(A),
      async (h) => {
        await insertMessages(h, [{ messageId: id, ...CHAT, direction: 'in', content: 'async' }]);
        return (await sync(h)).rows[0];
      },
      { synchronousCommit: false },
    );
    expect(inside).toEqual({ sync: 'off', tenant: A });
    // Committed and visible at once, to another unit of the tenant.
    const seen = await db.withTenant(chatCtx(A), (h) =>
      h.query('SELECT content FROM messages WHERE message_id = $1', [id]),
    );
    expect(seen.rows).toEqual([{ content: 'async' }]);
    // The setting lasted the unit: the next one, and the bare connection, commit synchronously.
    expect((await db.withTenant(chatCtx(A), sync)).rows[0]).toEqual({ sync: 'on', tenant: A });
    expect((await sync(db.pool)).rows[0]).toEqual({ sync: 'on', tenant: '' });
  });

  it('sees 0 rows and cannot insert with no context at all (fresh connection, nothing set)', async () => {
    const db = t.openDatabase({ poolMax: 1 });
    const settings = await settingsOf(db.pool);
    expect(settings).toMatchObject(NO_SETTINGS);

    for (const tenantId of [A, B]) {
      expect((await db.pool.query(COUNTS_SQL, [tenantId])).rows[0]).toEqual({
        messages: 0,
        messages_of_tenant: 0,
        memories_of_tenant: 0,
        chat_streams_of_tenant: 0,
        agents_of_tenant: 0,
        tenants: 0,
      });
      // The rows are there: only RLS hides them.
      expect(await ownerCount('SELECT 1 FROM messages WHERE tenant_id = $1', [tenantId])).toBeGreaterThan(0);
    }

    const tag = uid('no-context');
    const inserts = [
      db.pool.query(
        `INSERT INTO messages (tenant_id, message_id, agent_id, platform, chat_stream_id, direction, content)
         VALUES ($1, $2, 'default', 'qq', 'qq-group-1', 'in', 'no context')`,
        [A, tag],
      ),
      db.pool.query(
        `INSERT INTO memory_chest (tenant_id, memory_id, agent_id, scope, content) VALUES ($1, $2, 'default', 'agent', 'x')`,
        [A, tag],
      ),
      db.pool.query(`INSERT INTO agents (tenant_id, agent_id, name) VALUES ($1, $2, 'x')`, [A, tag]),
      db.pool.query(`INSERT INTO tenants (tenant_id, name) VALUES ($1, 'x')`, [tag]),
    ];
    for (const insert of inserts) {
      await expect(insert).rejects.toMatchObject({
        code: '42501',
        message: expect.stringMatching(/row-level security/) as unknown,
      });
    }
    const updated = await db.pool.query(`UPDATE messages SET content = 'x' WHERE tenant_id = $1`, [A]);
    const deleted = await db.pool.query('DELETE FROM memory_chest WHERE tenant_id = $1', [A]);
    expect([updated.rowCount, deleted.rowCount]).toEqual([0, 0]);

    expect(await ownerCount('SELECT 1 FROM messages WHERE message_id = $1', [tag])).toBe(0);
    expect(await ownerCount('SELECT 1 FROM memory_chest WHERE memory_id = $1', [tag])).toBe(0);
    expect(await ownerCount('SELECT 1 FROM agents WHERE agent_id = $1', [tag])).toBe(0);
    expect(await ownerCount('SELECT 1 FROM tenants WHERE tenant_id = $1', [tag])).toBe(0);
    expect(await ownerCount(`SELECT 1 FROM messages WHERE content = 'x'`, [])).toBe(0);
  });

  it("rolls back all of A's unit of work when it inserts a row for another tenant", async () => {
    const db = t.openDatabase({ poolMax: 1 });
    const own = uid('rollback-own');
    const forged = uid('rollback-forged');
    await expect(
      db.withTenant(chatCtx(A), async (h) => {
        expect(
          await insertMessages(h, [{ messageId: own, ...CHAT, direction: 'in', content: 'mine' }]),
        ).toEqual([own]);
        await storeMemory(h, { memoryId: own, agentId: 'default', scope: 'agent', content: 'mine' });
        // Visible inside the unit before the violation…
        expect((await getMessage(h, own))?.content).toBe('mine');
        await h.query(
          `INSERT INTO messages (tenant_id, message_id, agent_id, platform, chat_stream_id, direction, content)
           VALUES ($1, $2, 'default', 'qq', 'qq-group-1', 'in', 'forged')`,
          [B, forged],
        );
      }),
    ).rejects.toBeInstanceOf(IsolationViolationError);

    // …and gone after it: nothing of the unit was committed.
    expect(await ownerCount('SELECT 1 FROM messages WHERE message_id = ANY($1)', [[own, forged]])).toBe(0);
    expect(await ownerCount('SELECT 1 FROM memory_chest WHERE memory_id = $1', [own])).toBe(0);
    // The single pooled connection was rolled back and released, not left in the failed transaction.
    expect(await db.withTenant(chatCtx(A), (h) => getMessage(h, own))).toBeUndefined();
    expect(await settingsOf(db.pool)).toMatchObject(NO_SETTINGS);
  });

  it("lets tenant B reuse A's message_id (keys lead with tenant_id) and reports B's own duplicate as a conflict that names nothing of A", async () => {
    const messageId = uid('dup');
    expect(await writeMessage(t.db, A, messageId, 'secret of acme')).toEqual([messageId]);

    // B's insert of the same id is a new row (ON CONFLICT DO NOTHING would have returned []).
    expect(await writeMessage(t.db, B, messageId, 'hello from globex')).toEqual([messageId]);
    const inB = await t.db.withTenant(chatCtx(B), async (h) => ({
      message: await getMessage(h, messageId),
      rows: (await h.query('SELECT tenant_id, content FROM messages WHERE message_id = $1', [messageId]))
        .rows,
    }));
    expect(inB.message).toMatchObject({ tenant_id: B, content: 'hello from globex' });
    expect(inB.rows).toEqual([{ tenant_id: B, content: 'hello from globex' }]);
    expect(await ownerCount('SELECT 1 FROM messages WHERE message_id = $1', [messageId])).toBe(2);

    // A second insert of that id in B collides with B's own row only.
    let error: unknown;
    try {
      await t.db.withTenant(chatCtx(B), (h) =>
        h.query(
          `INSERT INTO messages (tenant_id, message_id, agent_id, platform, chat_stream_id, direction, content)
           VALUES ($1, $2, 'default', 'qq', 'qq-group-1', 'in', 'again')`,
          [B, messageId],
        ),
      );
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConflictError);
    const conflict = error as ConflictError;
    expect(conflict.details).toEqual({ constraint: 'messages_pkey' });
    // PostgreSQL leaves the key values out of the error on a table with RLS; whatever is there names only B.
    const cause = conflict.cause as { code?: string; detail?: string; message?: string };
    expect(cause.code).toBe('23505');
    const everything = JSON.stringify({
      message: conflict.message,
      details: conflict.details,
      cause: { message: cause.message, detail: cause.detail },
    });
    expect(everything).not.toContain(A);
    expect(everything).not.toContain('secret of acme');

    // The same holds for memories: A's memory_id does not block B, and B's stays B's.
    const memoryId = uid('dup-mem');
    for (const tenantId of [A, B]) {
      await t.db.withTenant(chatCtx(tenantId), (h) =>
        storeMemory(h, { memoryId, agentId: 'default', scope: 'agent', content: `memory of ${tenantId}` }),
      );
    }
    expect((await t.db.withTenant(chatCtx(B), (h) => getMemory(h, memoryId)))?.content).toBe(
      `memory of ${B}`,
    );
    expect((await t.db.withTenant(chatCtx(A), (h) => getMemory(h, memoryId)))?.content).toBe(
      `memory of ${A}`,
    );
  });

  it('always releases the client: after callbacks throw, a pool of 1 still serves the next unit of work', async () => {
    const db = t.openDatabase({ poolMax: 1 });
    for (let i = 0; i < 3; i++) {
      const boom = new Error(`boom ${i}`);
      await expect(
        db.withTenant(tenantCtx(A), async (h) => {
          await h.query('SELECT 1');
          throw boom;
        }),
      ).rejects.toBe(boom);
    }
    // Thrown synchronously, before any query of the callback.
    await expect(
      db.withTenant(tenantCtx(A), () => {
        throw new Error('sync boom');
      }),
    ).rejects.toThrow('sync boom');
    // A failing statement, and a throw after a write (the write is rolled back).
    await expect(
      db.withTenant(tenantCtx(A), (h) => h.query('SELECT * FROM no_such_table')),
    ).rejects.toMatchObject({ code: '42P01' });
    const written = uid('release');
    await expect(db.withPlatform(() => Promise.reject(new Error('platform boom')))).rejects.toThrow(
      'platform boom',
    );
    await expect(
      db.withTenant(chatCtx(A), async (h) => {
        await insertMessages(h, [{ messageId: written, ...CHAT, direction: 'in', content: 'x' }]);
        throw new Error('after write');
      }),
    ).rejects.toThrow('after write');

    // The pool's only client is back and idle; the next unit runs (a leaked client would time out after 5 s).
    expect({ total: db.pool.totalCount, idle: db.pool.idleCount, waiting: db.pool.waitingCount }).toEqual({
      total: 1,
      idle: 1,
      waiting: 0,
    });
    const started = Date.now();
    expect(await db.withTenant(tenantCtx(A), (h) => countMessages(h))).toBeGreaterThan(0);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await ownerCount('SELECT 1 FROM messages WHERE message_id = $1', [written])).toBe(0);
    expect(await settingsOf(db.pool)).toMatchObject(NO_SETTINGS);
  });

  it('rejects any use of a db handle after its unit of work has ended', async () => {
    const db = t.openDatabase({ poolMax: 1 });
    const tenantHandles: TenantDb[] = [];
    const platformHandles: PlatformDb[] = [];
    await db.withTenant(chatCtx(A), async (h) => {
      tenantHandles.push(h);
      await h.query('SELECT 1');
    });
    await expect(
      db.withTenant(chatCtx(A), (h) => {
        tenantHandles.push(h);
        return Promise.reject(new Error('failed unit'));
      }),
    ).rejects.toThrow('failed unit');
    await db.withPlatform(async (h) => {
      platformHandles.push(h);
      await h.query('SELECT 1');
    });
    expect(tenantHandles).toHaveLength(2);

    const ended = /unit of work has ended/;
    for (const h of tenantHandles) {
      await expect(h.query('SELECT 1')).rejects.toThrow(ended);
      await expect(getMessage(h, `seed-${A}`)).rejects.toThrow(ended);
      await expect(h.rawSql('SELECT * FROM messages WHERE tenant_id = $1', [A])).rejects.toThrow(ended);
    }
    await expect(getTenant(platformHandles[0]!, A)).rejects.toThrow(ended);

    // Nor can a stale handle slip into the transaction of a later unit that holds the same connection.
    const stale = tenantHandles[0]!;
    const insideLater = await db.withTenant(chatCtx(B), async (h) => {
      const staleResult = await stale
        .query(
          `INSERT INTO messages (tenant_id, message_id, agent_id, platform, chat_stream_id, direction, content)
                VALUES ($1, 'stale-write', 'default', 'qq', 'qq-group-1', 'in', 'x')`,
          [A],
        )
        .then(
          () => 'ran',
          (err: Error) => err.message,
        );
      return { staleResult, tenant: (await settingsOf(h)).tenant_id };
    });
    expect(insideLater.staleResult).toMatch(ended);
    expect(insideLater.tenant).toBe(B);
    expect(await ownerCount(`SELECT 1 FROM messages WHERE message_id = 'stale-write'`, [])).toBe(0);
  });

  it("lets withPlatform see every tenant row, while withTenant(A) sees only A's row of tenants and cannot change it", async () => {
    const all = await t.db.withPlatform(async (h) => ({
      listed: (await listTenants(h, { limit: 100, offset: 0 })).rows.map((r) => r.tenant_id).sort(),
      b: (await getTenant(h, B))?.tenant_id,
      // The platform unit has no tenant: tenant tables show nothing.
      messages: (await h.query('SELECT 1 FROM messages')).rowCount,
    }));
    expect(all).toEqual({ listed: [A, 'default', B].sort(), b: B, messages: 0 });

    const inA = await t.db.withTenant(tenantCtx(A), async (h) => ({
      ids: (await h.query<{ tenant_id: string }>('SELECT tenant_id FROM tenants ORDER BY 1')).rows.map(
        (r) => r.tenant_id,
      ),
      b: await getTenant(h, B),
      updated: (await h.query(`UPDATE tenants SET name = 'renamed' WHERE tenant_id = ANY($1)`, [[A, B]]))
        .rowCount,
      deleted: (await h.query('DELETE FROM tenants WHERE tenant_id = ANY($1)', [[A, B]])).rowCount,
    }));
    expect(inA).toEqual({ ids: [A], b: undefined, updated: 0, deleted: 0 });
    await expect(
      t.db.withTenant(tenantCtx(A), (h) =>
        h.query(`INSERT INTO tenants (tenant_id, name) VALUES ('sneaky', 'x')`),
      ),
    ).rejects.toBeInstanceOf(IsolationViolationError);

    const owner = await t.admin('SELECT tenant_id, name FROM tenants WHERE tenant_id = ANY($1) ORDER BY 1', [
      [A, B, 'sneaky'],
    ]);
    expect(owner.rows).toEqual([
      { tenant_id: A, name: `Tenant ${A}` },
      { tenant_id: B, name: `Tenant ${B}` },
    ]);
  });

  it("keeps 20 parallel units of alternating tenants on a pool of 2 each to its own tenant's rows", async () => {
    const db = t.openDatabase({ poolMax: 2 });
    const tag = uid('parallel');
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const tenantId = i % 2 === 0 ? A : B;
        return db.withTenant(tenantCtx(tenantId), async (h) => {
          await storeMemory(h, {
            memoryId: `${tag}-${i}`,
            agentId: 'default',
            scope: 'agent',
            content: tenantId,
          });
          // Give the other units time to interleave on the two connections.
          await h.query('SELECT pg_sleep(0.005)');
          const settings = await settingsOf(h);
          const tenants = await h.query<{ tenant_id: string }>(
            `SELECT tenant_id FROM messages UNION SELECT tenant_id FROM memory_chest
             UNION SELECT tenant_id FROM chat_streams UNION SELECT tenant_id FROM agents`,
          );
          const memories = await h.query<{ memory_id: string; content: string }>(
            'SELECT memory_id, content FROM memory_chest WHERE memory_id LIKE $1',
            [`${tag}-%`],
          );
          return {
            i,
            tenantId,
            pid: settings.pid,
            setting: settings.tenant_id,
            tenants: tenants.rows.map((r) => r.tenant_id),
            contents: [...new Set(memories.rows.map((r) => r.content))],
            sawOwn: memories.rows.some((r) => r.memory_id === `${tag}-${i}`),
          };
        });
      }),
    );

    for (const r of results) {
      expect({
        i: r.i,
        setting: r.setting,
        tenants: r.tenants,
        contents: r.contents,
        sawOwn: r.sawOwn,
      }).toEqual({
        i: r.i,
        setting: r.tenantId,
        tenants: [r.tenantId],
        contents: [r.tenantId],
        sawOwn: true,
      });
    }
    expect(new Set(results.map((r) => r.pid)).size).toBe(2);

    const stored = await t.admin<{ memory_id: string; tenant_id: string }>(
      'SELECT memory_id, tenant_id FROM memory_chest WHERE memory_id LIKE $1',
      [`${tag}-%`],
    );
    expect(stored.rows).toHaveLength(20);
    for (const row of stored.rows) {
      const i = Number(row.memory_id.slice(tag.length + 1));
      expect(row.tenant_id).toBe(i % 2 === 0 ? A : B);
    }
  });
});

describe('a statement error caught inside the callback', () => {
  it('fails the unit of work instead of reporting success for writes that were rolled back', async () => {
    const db = t.openDatabase({ poolMax: 1 });
    const ctx = createIsolationContext({ tenantId: 'acme' });
    const outcome = db.withTenant(ctx, async (tx) => {
      await tx.query(`INSERT INTO audit_log (tenant_id, actor, action) VALUES ($1, 'test', 'kept?')`, [
        ctx.tenantId,
      ]);
      await tx.query('SELECT no_such_function()').catch(() => undefined);
      return 'ok';
    });
    await expect(outcome).rejects.toThrow(/rolled back/);
    const { rows } = await t.admin(`SELECT 1 FROM audit_log WHERE action = 'kept?'`);
    expect(rows).toEqual([]);
  });
});

describe('a connection terminated while its unit of work waits between queries', () => {
  it('fails that unit of work, does not crash the process, and the pool serves the next one', async () => {
    const db = t.openDatabase({ poolMax: 1 });
    let pid = 0;
    const outcome = db.withTenant(tenantCtx(A), async (tx) => {
      pid = ((await tx.query('SELECT pg_backend_pid() AS pid')).rows[0] as { pid: number }).pid;
      // The server ends this backend while the client is checked out and idle (as in a restart).
      await t.admin('SELECT pg_terminate_backend($1)', [pid]);
      await new Promise((r) => setTimeout(r, 100));
      await tx.query('SELECT 1');
    });
    await expect(outcome).rejects.toThrow();
    expect(pid).toBeGreaterThan(0);
    // Without a listener on checked-out clients, the termination was an unhandled 'error' event
    // (jest fails the test on it); the pool of one must now hand out a fresh connection.
    const next = await db.withTenant(tenantCtx(A), async (tx) => (await tx.query('SELECT 1 AS one')).rows[0]);
    expect(next).toEqual({ one: 1 });
  });
});

describe('checkouts when every connection is taken', () => {
  it("serve another tenant's unit next, ahead of the backlog one tenant queued first", async () => {
    const db = t.openDatabase({ poolMax: 1 });
    try {
      const order: string[] = [];
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      // A holds the only connection; ten more units of A queue behind it, then one of B.
      const holding = db.withTenant(tenantCtx(A), async () => {
        await gate;
        order.push('A0');
      });
      const backlog = Array.from({ length: 10 }, (_, i) =>
        db.withTenant(tenantCtx(A), async (tx) => {
          await tx.query('SELECT 1');
          order.push(`A${i + 1}`);
        }),
      );
      const quiet = db.withTenant(tenantCtx(B), async (tx) => {
        await tx.query('SELECT 1');
        order.push('B');
      });
      await new Promise((r) => setTimeout(r, 20));
      expect(db.checkoutSnapshot()).toMatchObject({ available: 0, waiting: 11, keys: 2 });
      release();
      await Promise.all([holding, ...backlog, quiet]);
      // Round-robin between the tenants waiting: B right after A's next unit, not after all ten.
      expect(order.indexOf('B')).toBeLessThanOrEqual(2);
      expect(order.filter((o) => o.startsWith('A'))).toEqual(Array.from({ length: 11 }, (_, i) => `A${i}`));
    } finally {
      await db.close();
    }
  });

  it('fails a unit that waited longer than the checkout timeout with 503, and serves the next', async () => {
    const db = t.openDatabase({ poolMax: 1, connectTimeoutMs: 200 });
    try {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const holding = db.withTenant(tenantCtx(A), () => gate);
      await expect(db.withTenant(tenantCtx(B), (tx) => tx.query('SELECT 1'))).rejects.toMatchObject({
        code: 'SERVICE_UNAVAILABLE',
      });
      release();
      await holding;
      await expect(db.withTenant(tenantCtx(B), (tx) => tx.query('SELECT 1'))).resolves.toBeDefined();
    } finally {
      await db.close();
    }
  });
});

/** Round trips of the database's connections (see `watchRoundTrips`). */
function roundTrips(db: Database): () => number {
  let turns = 0;
  db.pool.on('connect', (client) => watchRoundTrips(client, () => (turns += 1)));
  return () => turns;
}

// Each test's database is closed with the file's (`TestDatabase.close`).
describe('statements written together (pipelined units of work)', () => {
  it('sends BEGIN with the first statement: one statement costs two round trips, at once one', async () => {
    const db = t.openDatabase({ poolMax: 1 });
    const turns = roundTrips(db);
    await db.withTenant(tenantCtx(A), (tx) => tx.query('SELECT 1')); // connects
    const before = turns();
    const one = await db.withTenant(chatCtx(A), (tx) => getMessage(tx, `seed-${A}`));
    expect(one?.content).toBe(`seed message of ${A}`);
    expect(turns() - before).toBe(2);
    const atOnce = turns();
    const two = await db.withTenantAtOnce(chatCtx(A), (tx) => getMessage(tx, `seed-${A}`));
    expect(two?.content).toBe(`seed message of ${A}`);
    expect(turns() - atOnce).toBe(1);
    // Statements issued together share a round trip, and keep their order.
    const together = turns();
    const id = uid('together');
    const [, seen] = await db.withTenant(chatCtx(A), (tx) =>
      Promise.all([
        insertMessages(tx, [{ messageId: id, ...CHAT, direction: 'in', content: 'written first' }]),
        getMessage(tx, id),
      ]),
    );
    expect(seen?.content).toBe('written first');
    expect(turns() - together).toBe(2);
  });

  it("keeps a unit at once to its tenant's rows and settings", async () => {
    const db = t.openDatabase({ poolMax: 1 });
    const [a, b] = await Promise.all([
      db.withTenantAtOnce(chatCtx(A), (tx) => tx.query(COUNTS_SQL, [B])),
      db.withTenantAtOnce(chatCtx(B), (tx) => settingsOf(tx)),
    ]);
    // A sees none of B's rows; B's unit ran with B's settings; nothing outlives either.
    expect(a.rows[0]).toMatchObject({ messages_of_tenant: 0, memories_of_tenant: 0, agents_of_tenant: 0 });
    expect(b).toMatchObject({ tenant_id: B, agent_id: 'default', chat_stream_id: CHAT.chatStreamId });
    expect(await settingsOf(db.pool)).toMatchObject(NO_SETTINGS);
  });

  it('rolls a unit at once back when one of its statements fails, and rejects with that error', async () => {
    const db = t.openDatabase({ poolMax: 1 });
    const id = uid('at-once-rollback');
    await expect(
      db.withTenantAtOnce(chatCtx(A), (tx) =>
        Promise.all([
          insertMessages(tx, [{ messageId: id, ...CHAT, direction: 'in', content: 'not kept' }]),
          tx.query('SELECT no_such_function()'),
        ]),
      ),
    ).rejects.toThrow(/no_such_function/);
    expect(await ownerCount('SELECT 1 FROM messages WHERE message_id = $1', [id])).toBe(0);
    // The connection is back in the pool outside any transaction.
    expect(await db.withTenant(chatCtx(A), (tx) => getMessage(tx, `seed-${A}`))).toBeDefined();
  });

  it('opens a unit at once at its first statement: none costs no round trip, one after an await costs one', async () => {
    const db = t.openDatabase({ poolMax: 1 });
    const turns = roundTrips(db);
    await db.withTenant(tenantCtx(A), (tx) => tx.query('SELECT 1')); // connects
    const before = turns();
    expect(await db.withTenantAtOnce(chatCtx(A), () => Promise.resolve('nothing'))).toBe('nothing');
    expect(turns() - before).toBe(0);
    const later = await db.withTenantAtOnce(chatCtx(A), async (tx) => {
      await new Promise((r) => setImmediate(r));
      return settingsOf(tx);
    });
    expect(later).toMatchObject({ tenant_id: A, chat_stream_id: CHAT.chatStreamId });
    expect(turns() - before).toBe(1);
  });

  it('refuses a statement a unit at once issues after it first awaited', async () => {
    const db = t.openDatabase({ poolMax: 1 });
    await expect(
      db.withTenantAtOnce(tenantCtx(A), async (tx) => {
        await tx.query('SELECT 1');
        return tx.query('SELECT 2');
      }),
    ).rejects.toThrow(/unit of work has ended/);
    expect(await db.withTenant(tenantCtx(A), (tx) => tx.query('SELECT 3 AS n'))).toMatchObject({
      rows: [{ n: 3 }],
    });
  });
});
