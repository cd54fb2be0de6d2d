import { takeTokens } from '../../src/ingress/rateLimiter';
import { createTestRedis } from '../support/testDatabase';

const handle = createTestRedis();
afterAll(async () => {
  await handle.close();
});

const key = (name: string) => `${handle.prefix}{t}:rate:${name}`;

describe('token buckets in Redis', () => {
  it('allows a burst of one second and then reports how long to wait', async () => {
    const bucket = { key: key('burst'), ratePerSecond: 2 };
    expect(await takeTokens(handle.redis, [bucket])).toEqual({ allowed: true });
    expect(await takeTokens(handle.redis, [bucket])).toEqual({ allowed: true });
    const denied = await takeTokens(handle.redis, [bucket]);
    expect(denied).toMatchObject({ allowed: false, bucket: 0 });
    const wait = (denied as { retryAfterMs: number }).retryAfterMs;
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(500);
    await new Promise((r) => setTimeout(r, wait + 20));
    expect(await takeTokens(handle.redis, [bucket])).toEqual({ allowed: true });
  });

  it('charges no bucket when one of them is empty', async () => {
    const tenant = { key: key('tenant'), ratePerSecond: 2 };
    const credential = { key: key('credential'), ratePerSecond: 1 };
    expect(await takeTokens(handle.redis, [tenant, credential])).toEqual({ allowed: true });
    expect(await takeTokens(handle.redis, [tenant, credential])).toMatchObject({ allowed: false, bucket: 1 });
    // The refused call took nothing from the tenant bucket: its second token is still there.
    expect(await takeTokens(handle.redis, [tenant])).toEqual({ allowed: true });
  });

  it('lets a fractional rate wait more than a second', async () => {
    const slow = { key: key('slow'), ratePerSecond: 0.5 };
    expect(await takeTokens(handle.redis, [slow])).toEqual({ allowed: true });
    const denied = await takeTokens(handle.redis, [slow]);
    expect((denied as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(1900);
  });

  it('expires an idle bucket once it would be full again', async () => {
    const bucket = { key: key('idle'), ratePerSecond: 10 };
    await takeTokens(handle.redis, [bucket]);
    const ttl = await handle.redis.pttl(bucket.key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1100);
  });
});
