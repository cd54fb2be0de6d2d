import { TenantDirectory } from '../../src/auth/tenantDirectory';
import { createTenant } from '../../src/db/repositories/tenants';
import { createLogger } from '../../src/logger';
import { ChannelHub } from '../../src/redis/channelHub';
import { keyspace } from '../../src/redis/keys';
import { createTestDatabase, createTestRedis, type TestDatabase } from '../support/testDatabase';

/**
 * Two processes' directories over one PostgreSQL and one Redis: what one of them answers from its
 * own copy, and how a change made through the other reaches it.
 */

let t: TestDatabase;
const handle = createTestRedis();
const { redis, prefix } = handle;
const keys = keyspace(prefix);
const hubs: ChannelHub[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  await t.db.withPlatform((db) =>
    createTenant(db, { tenantId: 'acme', name: 'Acme', settings: { rate_limit_per_second: 5 } }),
  );
});

afterAll(async () => {
  await Promise.all(hubs.map((h) => h.close()));
  await t.close();
  await handle.close();
  redis.disconnect();
});

async function processDirectory(): Promise<TenantDirectory> {
  const directory = new TenantDirectory(t.db, redis, keys);
  const hub = new ChannelHub(redis, createLogger({ level: 'silent' }));
  hubs.push(hub);
  await directory.watch(hub);
  return directory;
}

async function setRate(rate: number) {
  await t.admin(
    `UPDATE tenants SET settings = jsonb_build_object('rate_limit_per_second', $1::int) WHERE tenant_id = 'acme'`,
    [rate],
  );
}

describe('TenantDirectory', () => {
  it('answers from its own copy: a change nobody announced is not seen before the copy expires', async () => {
    const a = await processDirectory();
    expect((await a.get('acme'))?.settings).toEqual({ rate_limit_per_second: 5 });
    await setRate(6);
    await redis.del(keys.tenantMeta('acme'));
    expect((await a.get('acme'))?.settings).toEqual({ rate_limit_per_second: 5 });
  });

  it("a change announced through another process's directory reaches this one within a Redis round trip", async () => {
    const a = await processDirectory();
    const b = await processDirectory();
    expect((await a.get('acme'))?.settings).toEqual({ rate_limit_per_second: 6 }); // a copy in `a`
    await setRate(7);
    await b.invalidate('acme');
    expect((await b.get('acme'))?.settings).toEqual({ rate_limit_per_second: 7 });
    const deadline = Date.now() + 500;
    let seen: unknown;
    while (Date.now() < deadline) {
      seen = (await a.get('acme'))?.settings;
      if ((seen as { rate_limit_per_second?: number }).rate_limit_per_second === 7) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(seen).toEqual({ rate_limit_per_second: 7 });
  });

  it('a suspended tenant is seen suspended by the process that suspended it at once', async () => {
    const a = await processDirectory();
    expect((await a.get('acme'))?.status).toBe('active');
    await t.admin(`UPDATE tenants SET status = 'suspended' WHERE tenant_id = 'acme'`);
    await a.invalidate('acme');
    expect((await a.get('acme'))?.status).toBe('suspended');
  });
});
