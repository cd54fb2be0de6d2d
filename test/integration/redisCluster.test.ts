/**
 * MaiHive on a Redis Cluster: a private 3-master cluster (redis-server in cluster mode, slots
 * assigned by redis-cli), `REDIS_URL=redis-cluster://…`, and the whole system in one npm-start
 * process over HTTP — sends answered by the workers, batches, idempotent re-sends, rate limits,
 * failed logins, queue administration, NapCat's reverse WebSocket and its replies, and tenant
 * deletion. Every Lua script MaiHive runs is recorded with its keys: each call must touch one hash
 * slot (a cluster refuses anything else with CROSSSLOT, so every call here also ran), and the
 * workload must have run every script the code defines.
 */
import calculateSlot from 'cluster-key-slot';

import { AutoEmojiLimiter } from '../../src/emoji/autoEmojiLimit';
import { takeTokens } from '../../src/ingress/rateLimiter';
import { keyspace } from '../../src/redis/keys';
import { RedisScript } from '../../src/redis/redisScript';
import { FakeNapCat, groupMessageAt } from '../support/fakeNapCat';
import { type RedisCluster, startRedisCluster } from '../support/redisCluster';
import { type RuntimeHarness, startRuntimeHarness } from '../support/runtimeHarness';
import { waitFor } from '../support/waitFor';

/**
 * Multi-key scripts this workload cannot reach, each with why its keys share a slot anyway: the
 * admission's RELEASE runs only when a job add fails after the admission (a Redis fault); its keys
 * are the send's idempotency record and the tenant's queued counter, both under the tenant's tag
 * (test/unit/queueNames.test.ts checks every tenant key carries it).
 */
const NOT_IN_THE_WORKLOAD = [
  "if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end",
];

let cluster: RedisCluster;
let h: RuntimeHarness;
const scriptCalls: { sha: string; keys: readonly string[]; failed?: string }[] = [];

beforeAll(async () => {
  const run = RedisScript.prototype.run;
  jest.spyOn(RedisScript.prototype, 'run').mockImplementation(async function (
    this: RedisScript,
    redis,
    keys,
    args,
  ) {
    const call: (typeof scriptCalls)[number] = { sha: this.sha, keys };
    scriptCalls.push(call);
    try {
      return await run.call(this, redis, keys, args);
    } catch (err) {
      call.failed = String(err);
      throw err;
    }
  });
  cluster = await startRedisCluster({ masters: 3 });
  h = await startRuntimeHarness({ redisUrl: cluster.url });
}, 90_000);

afterAll(async () => {
  await h?.close();
  await cluster?.close();
  jest.restoreAllMocks();
});

const send = (apiKey: string, body: Record<string, unknown>, query = '', headers?: Record<string, string>) =>
  fetch(`${h.runtime.url}/api/v1/chat/send${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': apiKey, ...headers },
    body: JSON.stringify(body),
  });

describe('MaiHive on a 3-master Redis Cluster', () => {
  let apiKey: string;

  it('spreads tenants over the masters (the hash tags are per tenant)', async () => {
    apiKey = await h.tenantWithKey('alpha');
    for (const t of ['bravo', 'charlie', 'delta', 'echo']) await h.tenantWithKey(t);
    const slots = new Set(['alpha', 'bravo', 'charlie', 'delta', 'echo'].map((t) => calculateSlot(`{${t}}`)));
    expect(slots.size).toBeGreaterThan(1);
    expect(await cluster.masterPorts()).toHaveLength(3);
  }, 60_000);

  it('answers a message end to end, and an idempotent re-send with the same message', async () => {
    const first = await send(
      apiKey,
      { message: '@麦麦 你好', chat_stream_id: 'c-1', platform: 'qq' },
      '?wait=20000',
      {
        'idempotency-key': 'once-only',
      },
    );
    expect(first.status).toBe(200);
    const data = ((await first.json()) as { data: { status: string; message_id: string } }).data;
    expect(data.status).toBe('replied');
    const again = await send(apiKey, { message: '@麦麦 你好', chat_stream_id: 'c-1', platform: 'qq' }, '', {
      'idempotency-key': 'once-only',
    });
    expect(((await again.json()) as { data: { message_id: string } }).data.message_id).toBe(data.message_id);
  }, 60_000);

  it('takes a batch and answers all of it', async () => {
    const messages = Array.from({ length: 20 }, (_, i) => ({
      message: `@麦麦 批量 ${i}`,
      chat_stream_id: `b-${i % 4}`,
      platform: 'qq',
    }));
    const batch = await h.call('POST', '/chat/send/batch', { apiKey, body: { messages } });
    const results = batch.data.results as { success: boolean; data: { message_id: string } }[];
    expect(results.every((r) => r.success)).toBe(true);
    const ids = results.map((r) => r.data.message_id);
    expect(ids).toHaveLength(20);
    const statuses = async () => {
      const { rows } = await h.t.admin<{ status: string; n: number }>(
        `SELECT status, count(*)::int AS n FROM messages
          WHERE tenant_id = 'alpha' AND message_id = ANY($1::text[]) GROUP BY status`,
        [ids],
      );
      return Object.fromEntries(rows.map((r) => [r.status, r.n]));
    };
    const final = (s: Record<string, number>) => (s.replied ?? 0) + (s.no_reply ?? 0);
    await waitFor(async () => (final(await statuses()) === 20 ? true : undefined), 30_000).catch(
      async (err: unknown) => {
        throw new Error(`${String(err)}: ${JSON.stringify(await statuses())}`);
      },
    );
  }, 60_000);

  it('limits a tenant’s rate with 429 and Retry-After', async () => {
    const limitedKey = await h.tenantWithKey('limited', { rate_limit_per_second: 2 });
    const statuses = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        send(limitedKey, { message: `x ${i}`, chat_stream_id: 'r-1', platform: 'qq' }).then((r) => ({
          status: r.status,
          retryAfter: r.headers.get('retry-after'),
        })),
      ),
    );
    const refused = statuses.filter((s) => s.status === 429);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((s) => Number(s.retryAfter) >= 1)).toBe(true);
  }, 30_000);

  it('throttles failed logins', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await h.call('POST', '/auth/login', {
        body: { tenant_id: 'alpha', username: 'owner', password: `wrong-password-${i}` },
      });
      expect(res.status).toBe(401);
    }
    const ok = await h.call('POST', '/auth/login', {
      body: { tenant_id: 'alpha', username: 'owner', password: 'alpha-admin-password' },
    });
    expect(ok.status).toBe(200);
  });

  it('lists, pauses and resumes a tenant’s queues', async () => {
    const bearer = await h.adminBearer();
    expect((await h.call('GET', '/admin/queues/alpha', { bearer })).status).toBe(200);
    expect((await h.call('POST', '/admin/queues/alpha/pause', { bearer })).status).toBe(200);
    expect((await h.call('POST', '/admin/queues/alpha/resume', { bearer })).status).toBe(200);
    const sent = await send(
      apiKey,
      { message: '@麦麦 恢复了吗', chat_stream_id: 'c-2', platform: 'qq' },
      '?wait=20000',
    );
    expect(((await sent.json()) as { data: { status: string } }).data.status).toBe('replied');
  }, 60_000);

  it('delivers a reply to NapCat on its reverse WebSocket', async () => {
    const bearer = (
      await h.call('POST', '/auth/login', {
        body: { tenant_id: 'alpha', username: 'owner', password: 'alpha-admin-password' },
      })
    ).data.access_token as string;
    expect(
      (
        await h.call('PUT', '/agents/default/config', {
          bearer,
          body: { accounts: [{ platform: 'qq', account_id: '1145141919', nickname: '麦麦' }] },
        })
      ).status,
    ).toBe(200);
    const napcat = await FakeNapCat.connect(h.runtime.url, { token: apiKey, selfId: '1145141919' });
    try {
      napcat.send(groupMessageAt('1145141919', { messageId: 4242, groupId: 7001 }));
      const [action] = await napcat.waitForActions(1);
      expect(action!.action).toBe('send_group_msg');
    } finally {
      await napcat.close();
    }
  }, 60_000);

  it('deletes a tenant without a key left on any master', async () => {
    const bearer = await h.adminBearer();
    expect((await h.call('DELETE', '/tenants/alpha', { bearer })).status).toBe(200);
    const left: string[] = [];
    for (const port of await cluster.masterPorts()) {
      const { Redis } = await import('ioredis');
      const node = new Redis({ port, host: '127.0.0.1' });
      try {
        left.push(...(await node.keys(`${h.prefix}:{alpha}*`)));
      } finally {
        node.disconnect();
      }
    }
    expect(left).toEqual([]);
  }, 60_000);

  it('takes tokens from a tenant’s and a credential’s bucket in one script', async () => {
    const keys = keyspace(h.prefix);
    const decision = await takeTokens(h.redis.redis, [
      { key: keys.rateBucket('bravo', 'tenant'), ratePerSecond: 10 },
      { key: keys.rateBucket('bravo', 'api_key:k1'), ratePerSecond: 10 },
    ]);
    expect(decision).toEqual({ allowed: true });
  });

  it('limits automatic emoji of a chat in one script (cooldown key and hour count in one slot)', async () => {
    const limiter = new AutoEmojiLimiter(h.redis.redis, keyspace(h.prefix));
    const at = { tenantId: 'bravo', chatStreamId: 'c-1', now: Date.UTC(2030, 0, 1, 10) };
    const limits = { cooldownSeconds: 60, maxPerHour: 5 };
    expect(await limiter.take({ ...at, messageId: 'e1' }, limits)).toBeUndefined();
    expect(await limiter.take({ ...at, messageId: 'e2', now: at.now + 1000 }, limits)).toBe('cooldown');
  });

  it('ran every multi-key Lua script MaiHive defines, each call within one hash slot', () => {
    expect(scriptCalls.filter((c) => c.failed)).toEqual([]);
    const crossSlot = scriptCalls.filter((c) => new Set(c.keys.map((k) => calculateSlot(k))).size > 1);
    expect(crossSlot).toEqual([]);
    // A script reading only KEYS[1] is in one slot by construction; the others must have run here.
    const multiKey = (s: RedisScript) => /KEYS\[(?:[2-9]|i)\]|#KEYS/.test(s.source);
    const ran = new Set(scriptCalls.map((c) => c.sha));
    const neverRan = [...RedisScript.defined]
      .filter(
        (s) =>
          multiKey(s) && !ran.has(s.sha) && !NOT_IN_THE_WORKLOAD.some((marker) => s.source.includes(marker)),
      )
      .map((s) => s.source.trim().slice(0, 120));
    expect(neverRan).toEqual([]);
  });
});
