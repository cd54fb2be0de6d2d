import { keyspace } from '../../src/redis/keys';
import { MemoryPurger, purgeAllExpiredMemories } from '../../src/workers/memoryPurge';
import { createTestDatabase, createTestRedis, type TestDatabase } from '../support/testDatabase';
import { waitFor } from '../support/waitFor';

/** The workers' periodic purge of expired memories (README § Memory, Expiry). */

let t: TestDatabase;
let testRedis: ReturnType<typeof createTestRedis>;

beforeAll(async () => {
  t = await createTestDatabase();
  testRedis = createTestRedis();
  await t.admin(
    `INSERT INTO tenants (tenant_id, name) VALUES ('acme', 'Acme'), ('globex', 'Globex'), ('idle', 'Idle')`,
  );
});
afterAll(async () => {
  await testRedis.close();
  await t.close();
});

/** `n` memories of a tenant expiring `offset` from now (negative: expired), ids `<prefix><i>`. */
async function seed(tenantId: string, prefix: string, n: number, offset: string): Promise<void> {
  await t.admin(
    `INSERT INTO memory_chest (tenant_id, memory_id, agent_id, scope, content, expires_at)
     SELECT $1, $2 || i, 'default', 'agent', 'memory ' || i, now() + $3::interval
     FROM generate_series(1, $4) i`,
    [tenantId, prefix, offset, n],
  );
}

async function remaining(): Promise<Record<string, number>> {
  const { rows } = await t.admin<{ tenant_id: string; kind: string; n: number }>(
    `SELECT tenant_id, left(memory_id, 4) AS kind, count(*)::int AS n FROM memory_chest
     GROUP BY 1, 2 ORDER BY 1, 2`,
  );
  return Object.fromEntries(rows.map((r) => [`${r.tenant_id}/${r.kind}`, r.n]));
}

beforeEach(async () => {
  await t.admin('DELETE FROM memory_chest');
});

it("deletes every tenant's expired memories in batches and keeps the unexpired and the unexpiring", async () => {
  await seed('acme', 'old_', 25, '-1 minute');
  await seed('acme', 'new_', 3, '1 hour');
  await seed('globex', 'old_', 4, '-1 day');
  await t.admin(
    `INSERT INTO memory_chest (tenant_id, memory_id, agent_id, scope, content)
     VALUES ('globex', 'keep1', 'default', 'agent', 'never expires')`,
  );
  // Batches of 10: acme's 25 take three statements; the idle tenant has nothing to purge.
  const result = await purgeAllExpiredMemories(t.db, { batchSize: 10 });
  expect(result).toEqual({ tenants: 2, purged: 29 });
  expect(await remaining()).toEqual({ 'acme/new_': 3, 'globex/keep': 1 });
  // Nothing left to purge: a second run deletes nothing.
  expect(await purgeAllExpiredMemories(t.db, { batchSize: 10 })).toEqual({ tenants: 0, purged: 0 });
});

it('stops between batches when asked to', async () => {
  await seed('acme', 'old_', 30, '-1 minute');
  const stop = new AbortController();
  stop.abort();
  expect(await purgeAllExpiredMemories(t.db, { batchSize: 10, signal: stop.signal })).toEqual({
    tenants: 0,
    purged: 0,
  });
  expect(await remaining()).toEqual({ 'acme/old_': 30 });
});

it('runs a round in one worker process only: the one taking the round lease', async () => {
  await seed('acme', 'old_', 5, '-1 minute');
  const keys = keyspace(testRedis.prefix.replace(/:$/, ''));
  const options = { db: t.db, redis: testRedis.redis, keys, logger: t.logger, intervalMs: 60_000 };
  const first = new MemoryPurger(options);
  const second = new MemoryPurger(options);
  const [a, b] = await Promise.all([first.runRound(), second.runRound()]);
  // Exactly one of them ran the round and purged; the other skipped it.
  expect([a, b].filter((r) => r === undefined)).toHaveLength(1);
  expect([a, b].find((r) => r !== undefined)).toEqual({ tenants: 1, purged: 5 });
  expect(await remaining()).toEqual({});
  // The lease lives for most of the interval: the next timer tick of either process skips too.
  await seed('acme', 'old_', 2, '-1 minute');
  expect(await first.runRound()).toBeUndefined();
  expect(await testRedis.redis.pttl(keys.memoryPurgeLease())).toBeGreaterThan(50_000);
  // Once the lease is gone (next interval), a round purges again.
  await testRedis.redis.del(keys.memoryPurgeLease());
  expect(await second.runRound()).toEqual({ tenants: 1, purged: 2 });
  await Promise.all([first.close(), second.close()]);
});

it('purges on its own timer once started', async () => {
  await seed('globex', 'old_', 3, '-1 minute');
  const keys = keyspace(`${testRedis.prefix}timer`);
  const purger = new MemoryPurger({
    db: t.db,
    redis: testRedis.redis,
    keys,
    logger: t.logger,
    intervalMs: 50,
  });
  purger.start();
  try {
    expect(
      await waitFor(async () => ((await remaining())['globex/old_'] === undefined ? true : undefined)),
    ).toBe(true);
    expect(await remaining()).toEqual({});
  } finally {
    await purger.close();
  }
});
