import { AutoEmojiLimiter, autoEmojiLimitsOf } from '../../src/emoji/autoEmojiLimit';
import { keyspace } from '../../src/redis/keys';
import { createTestRedis } from '../support/testDatabase';

/**
 * `emoji.cooldown_seconds` and `emoji.max_per_hour` of automatic emoji, on the real Redis, with
 * the clock passed in (`now`) as the heartflow passes its injected one. The heartflow's use of it
 * (refused → text reply, reason in the action record) is in heartflowPlugins.test.ts.
 */

let testRedis: ReturnType<typeof createTestRedis>;
let limiter: AutoEmojiLimiter;
const T0 = Date.UTC(2030, 0, 1, 10, 0, 0);
let seq = 0;

beforeAll(() => {
  testRedis = createTestRedis();
  limiter = new AutoEmojiLimiter(testRedis.redis, keyspace(testRedis.prefix.replace(/:$/, '')));
});

afterAll(async () => {
  await testRedis.close();
});

const take = (
  chatStreamId: string,
  now: number,
  limits: { cooldownSeconds: number; maxPerHour: number },
  o: { tenantId?: string; messageId?: string } = {},
) =>
  limiter.take(
    { tenantId: o.tenantId ?? 'acme', chatStreamId, messageId: o.messageId ?? `m${++seq}`, now },
    limits,
  );

describe('automatic emoji limits', () => {
  it('the documented defaults apply when no scope sets them', () => {
    expect(autoEmojiLimitsOf({ enabled: true })).toEqual({ cooldownSeconds: 60, maxPerHour: 20 });
    expect(autoEmojiLimitsOf({ cooldown_seconds: 5, max_per_hour: 2 })).toEqual({
      cooldownSeconds: 5,
      maxPerHour: 2,
    });
  });

  it('cooldown: a second automatic emoji in the same chat within the window is refused, not in another chat', async () => {
    const limits = { cooldownSeconds: 60, maxPerHour: 100 };
    expect(await take('cd-a', T0, limits)).toBeUndefined();
    expect(await take('cd-a', T0 + 59_999, limits)).toBe('cooldown');
    expect(await take('cd-b', T0 + 1000, limits)).toBeUndefined();
    // Another tenant's chat of the same id is another chat.
    expect(await take('cd-a', T0 + 1000, limits, { tenantId: 'globex' })).toBeUndefined();
    expect(await take('cd-a', T0 + 60_000, limits)).toBeUndefined();
    expect(await take('cd-a', T0 + 60_001, limits)).toBe('cooldown');
  });

  it('a retried pass for the same message is granted again without counting twice', async () => {
    const limits = { cooldownSeconds: 60, maxPerHour: 1 };
    expect(await take('retry', T0, limits, { messageId: 'msg-r' })).toBeUndefined();
    expect(await take('retry', T0 + 10, limits, { messageId: 'msg-r' })).toBeUndefined();
    expect(await take('retry', T0 + 61_000, limits, { messageId: 'msg-s' })).toBe('max_per_hour');
  });

  it('max_per_hour: at most that many per chat per clock hour, other chats counted apart', async () => {
    const limits = { cooldownSeconds: 0, maxPerHour: 3 };
    const hour = T0 + 3_600_000; // 11:00
    for (let i = 0; i < 3; i++) expect(await take('hr-a', hour + i * 1000, limits)).toBeUndefined();
    expect(await take('hr-a', hour + 5000, limits)).toBe('max_per_hour');
    expect(await take('hr-a', hour + 3_599_999, limits)).toBe('max_per_hour');
    expect(await take('hr-b', hour + 6000, limits)).toBeUndefined();
    // The next hour starts a new count.
    expect(await take('hr-a', hour + 3_600_000, limits)).toBeUndefined();
  });

  it('max_per_hour 0 refuses every automatic emoji; cooldown 0 allows them back to back', async () => {
    expect(await take('zero', T0, { cooldownSeconds: 0, maxPerHour: 0 })).toBe('max_per_hour');
    expect(await take('b2b', T0, { cooldownSeconds: 0, maxPerHour: 5 })).toBeUndefined();
    expect(await take('b2b', T0, { cooldownSeconds: 0, maxPerHour: 5 })).toBeUndefined();
  });
});
