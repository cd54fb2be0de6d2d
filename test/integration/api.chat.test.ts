import { randomBytes } from 'node:crypto';

import { type Job, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';

import { createTenant } from '../../src/db/repositories/tenants';
import { secondsUntilUtcMidnight, utcDay } from '../../src/domain/quotaPeriods';
import { publishMessageDone } from '../../src/queues/messageEvents';
import { tenantQueueName } from '../../src/queues/names';
import type { HeartflowJobData } from '../../src/queues/tenantQueues';
import { testEnv } from '../support/env';
import { startTestApp, type TestApp } from '../support/testApp';

let app: TestApp;
let acme: { tenantId: string; token: string };

beforeAll(async () => {
  app = await startTestApp({ env: { LEGACY_ANONYMOUS: 'true' } });
  acme = await newTenant();
});
afterAll(async () => {
  await app.close();
});

let seq = 0;
/** A tenant of its own per test, so limits and queue counts do not interfere. */
async function newTenant(settings: Record<string, unknown> = {}) {
  const tenantId = `t${++seq}-${randomBytes(3).toString('hex')}`;
  await app.deps.db.withPlatform((db) => createTenant(db, { tenantId, name: tenantId, settings }));
  const token = await app.tokenFor({ role: 'tenant_admin', tenantId });
  return { tenantId, token };
}

async function addAgent(tenantId: string, agentId: string) {
  await app.t.admin('INSERT INTO agents (tenant_id, agent_id, name) VALUES ($1, $2, $2)', [
    tenantId,
    agentId,
  ]);
}

function send(body: unknown, o: { token?: string; headers?: Record<string, string>; query?: string } = {}) {
  return app.request('POST', `/chat/send${o.query ?? ''}`, {
    body,
    ...(o.token ? { token: o.token } : {}),
    ...(o.headers ? { headers: o.headers } : {}),
  });
}

async function jobsOf(tenantId: string): Promise<Job<HeartflowJobData>[]> {
  const queue = app.deps.queues.queue(tenantId, 'heartflow');
  return (await queue.getJobs(['waiting', 'prioritized', 'delayed', 'active'])) as Job<HeartflowJobData>[];
}

const until = async <T>(probe: () => Promise<T | undefined> | T | undefined, ms = 5000): Promise<T> => {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
};

describe('POST /chat/send', () => {
  it("accepts the seed's send once the job is in the tenant queue", async () => {
    const res = await send({ chat_stream_id: 'test_chat', message: '测试消息' }, { token: acme.token });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      tenant_id: acme.tenantId,
      agent_id: 'default',
      platform: 'default',
      chat_stream_id: 'test_chat',
      status: 'queued',
      duplicate: false,
    });
    const id = res.body.data.message_id as string;
    expect(id).toMatch(/^msg_/);
    const job = (await app.deps.queues.queue(acme.tenantId, 'heartflow').getJob(id)) as Job<HeartflowJobData>;
    expect(job.data).toMatchObject({ messageId: id, tenantId: acme.tenantId, content: '测试消息' });
  });

  it('derives a stable chat stream from the sender when none is named', async () => {
    const group = await send(
      { message: 'hi', platform: 'qq', sender_info: { user_id: 42, group_id: '456', username: '张三' } },
      { token: acme.token },
    );
    expect(group.body.data).toMatchObject({ platform: 'qq', chat_stream_id: 'qq-456' });
    const direct = await send(
      { message: 'hi', platform: 'qq', sender_info: { user_id: 'u1' } },
      { token: acme.token },
    );
    expect(direct.body.data.chat_stream_id).toBe('qq-u1-private');
    const bare = await send({ message: 'hi' }, { token: acme.token });
    expect(bare.body.data.chat_stream_id).toBe('default');
  });

  it('rejects SQL-injection and script messages with 400 content_policy', async () => {
    for (const message of ["'; DROP TABLE messages; --", "<script>alert('xss')</script>", "' OR '1'='1"]) {
      const res = await send({ message });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({
        code: 'VALIDATION_ERROR',
        details: { reason: 'content_policy' },
      });
    }
  });

  it('stores and returns the same text verbatim when the content policy is off', async () => {
    const t = await newTenant({ content_policy: { enabled: false } });
    for (const message of ["'; DROP TABLE messages; --", "<script>alert('xss')</script>"]) {
      const res = await send({ message, chat_stream_id: 'c1' }, { token: t.token });
      expect(res.status).toBe(200);
      const read = await app.request('GET', `/chat/messages/${res.body.data.message_id as string}`, {
        token: t.token,
      });
      expect(read.status).toBe(200);
      expect(read.body.data).toMatchObject({ content: message, status: 'queued', chat_stream_id: 'c1' });
    }
    const { rows } = await app.t.admin("SELECT to_regclass('messages') AS t");
    expect(rows[0]).toEqual({ t: 'messages' });
  });

  it('runs a legacy send without credentials or tenant as tenant default', async () => {
    const res = await send({ message: '兼容性测试' });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ tenant_id: 'default', agent_id: 'default', platform: 'default' });
  });

  it('runs a default-tenant credential that names no tenant as tenant default', async () => {
    const token = await app.tokenFor({ role: 'tenant_admin', tenantId: 'default' });
    const res = await send({ message: 'hello' }, { token });
    expect(res.status).toBe(200);
    expect(res.body.data.tenant_id).toBe('default');
  });

  it('refuses another tenant named in X-Tenant-ID or the body with 403 ISOLATION_VIOLATION', async () => {
    const other = await newTenant();
    const header = await send(
      { message: 'x' },
      { token: acme.token, headers: { 'x-tenant-id': other.tenantId } },
    );
    expect(header.status).toBe(403);
    expect(header.body.error?.code).toBe('ISOLATION_VIOLATION');
    const body = await send({ message: 'x', tenant_id: other.tenantId }, { token: acme.token });
    expect(body.status).toBe(403);
    expect(body.body.error?.code).toBe('ISOLATION_VIOLATION');
  });

  it('lets a platform admin send as the tenant named in X-Tenant-ID', async () => {
    const token = await app.tokenFor({ role: 'platform_admin' });
    const res = await send({ message: 'from ops' }, { token, headers: { 'x-tenant-id': acme.tenantId } });
    expect(res.status).toBe(200);
    expect(res.body.data.tenant_id).toBe(acme.tenantId);
    const missing = await send({ message: 'x' }, { token, headers: { 'x-tenant-id': 'no-such-tenant' } });
    expect(missing.status).toBe(404);
    expect(missing.body.error?.code).toBe('TENANT_NOT_FOUND');
  });

  it('refuses an agent credential naming another agent, and uses its own agent by default', async () => {
    await addAgent(acme.tenantId, 'bot1');
    const token = await app.tokenFor({ role: 'agent', tenantId: acme.tenantId, agentId: 'bot1' });
    const other = await send({ message: 'x', agent_id: 'default' }, { token });
    expect(other.status).toBe(403);
    expect(other.body.error?.code).toBe('ISOLATION_VIOLATION');
    const own = await send({ message: 'x' }, { token });
    expect(own.status).toBe(200);
    expect(own.body.data.agent_id).toBe('bot1');
  });

  it('answers 404 AGENT_NOT_FOUND for an agent the tenant does not have', async () => {
    const res = await send({ message: 'x', agent_id: 'ghost' }, { token: acme.token });
    expect(res.status).toBe(404);
    expect(res.body.error?.code).toBe('AGENT_NOT_FOUND');
  });

  it('refuses readers and anonymous callers when legacy mode would not apply', async () => {
    const reader = await app.tokenFor({ role: 'reader', tenantId: acme.tenantId });
    const res = await send({ message: 'x' }, { token: reader });
    expect(res.status).toBe(403);
    expect(res.body.error?.code).toBe('FORBIDDEN');
  });

  it('validates the body and lists every failing field', async () => {
    const res = await send(
      { message: '   ', chat_stream_id: 'bad id', bogus: 1, options: { priority: 'urgent' } },
      { token: acme.token },
    );
    expect(res.status).toBe(400);
    const paths = (res.body.error?.details?.fields as { path: string }[]).map((f) => f.path).sort();
    expect(paths).toEqual(['body', 'chat_stream_id', 'message', 'options.priority']);
    const long = await send({ message: 'x'.repeat(8001) }, { token: acme.token });
    expect(long.status).toBe(400);
    const fits = await send({ message: `  ${'字'.repeat(8000)}  ` }, { token: acme.token });
    expect(fits.status).toBe(200);
  });

  it('refuses a platform outside allowed_platforms with 403 platform_not_allowed', async () => {
    const t = await newTenant({ allowed_platforms: ['qq'] });
    const res = await send({ message: 'x', platform: 'discord' }, { token: t.token });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ code: 'FORBIDDEN', details: { reason: 'platform_not_allowed' } });
    expect((await send({ message: 'x', platform: 'qq' }, { token: t.token })).status).toBe(200);
  });
});

describe("an access token's checks on POST /chat/send", () => {
  /** Marks the token revoked, as a logout does (its id's key, under the tenant's hash tag). */
  async function revoke(tenantId: string, token: string): Promise<void> {
    const { jti } = await app.deps.tokens.verifyAccessToken(token);
    await app.deps.redis.set(app.deps.keys.revokedToken(tenantId, jti), '1', 'EX', 600);
  }

  /** Calls of the ingress governor's admission for `tenantId` while `fn` runs. */
  async function governorAdmissions(tenantId: string, fn: () => Promise<unknown>): Promise<number> {
    const { governor } = app.deps.ingress;
    const admit = governor.admit.bind(governor);
    let n = 0;
    governor.admit = (id, limits) => {
      if (id === tenantId) n++;
      return admit(id, limits);
    };
    try {
      await fn();
    } finally {
      governor.admit = admit;
    }
    return n;
  }

  it('refuses a revoked token with 401 and books nothing for it', async () => {
    const t = await newTenant();
    expect((await send({ chat_stream_id: 's', message: 'warm' }, { token: t.token })).status).toBe(200);
    const counter = app.deps.keys.quotaCounter(t.tenantId, 'messages', utcDay(app.deps.clock.now()));
    expect(await app.deps.redis.get(counter)).toBe('1');
    await revoke(t.tenantId, t.token);
    const body = { chat_stream_id: 's2', message: 'after logout', client_message_id: 'c-revoked' };
    let refused: Awaited<ReturnType<typeof send>> | undefined;
    // No in-flight slot taken, no message counted, no stream or idempotency record booked, no job.
    expect(
      await governorAdmissions(t.tenantId, async () => (refused = await send(body, { token: t.token }))),
    ).toBe(0);
    expect(refused?.status).toBe(401);
    expect(refused?.body.error?.code).toBe('UNAUTHORIZED');
    expect(await app.deps.redis.get(counter)).toBe('1');
    expect(await app.deps.redis.sismember(app.deps.keys.knownStreams(t.tenantId), 's2')).toBe(0);
    expect(await app.deps.redis.exists(app.deps.keys.idempotency(t.tenantId, 'default', 'c-revoked'))).toBe(
      0,
    );
    expect(await jobsOf(t.tenantId)).toHaveLength(1);
    // Another credential's send of the same client message id is the first.
    const other = await app.tokenFor({ role: 'tenant_admin', tenantId: t.tenantId, sub: 'other' });
    const first = await send(body, { token: other });
    expect(first.status).toBe(200);
    expect(first.body.data).toMatchObject({ duplicate: false });
  });

  it("answers a revoked token's send 401 also when it would have been refused otherwise", async () => {
    const t = await newTenant();
    expect((await send({ chat_stream_id: 's', message: 'warm' }, { token: t.token })).status).toBe(200);
    await revoke(t.tenantId, t.token);
    // A bad body, and an agent that does not exist: 401, not 400 or 404.
    expect((await send({ chat_stream_id: 's' }, { token: t.token })).status).toBe(401);
    expect((await send({ message: 'x', agent_id: 'nobody' }, { token: t.token })).status).toBe(401);
  });

  it('goes by the tenant in Redis when it changed behind this process (no change notice): 401 once suspended', async () => {
    const t = await newTenant();
    expect((await send({ chat_stream_id: 's', message: 'warm' }, { token: t.token })).status).toBe(200);
    // Another process suspended the tenant and its notice has not arrived: only Redis knows.
    const key = app.deps.tenants.cacheKey(t.tenantId);
    const meta = JSON.parse((await app.deps.redis.get(key))!) as Record<string, unknown>;
    await app.deps.redis.set(key, JSON.stringify({ ...meta, status: 'suspended' }), 'EX', 600);
    expect((await send({ chat_stream_id: 's', message: 'suspended' }, { token: t.token })).status).toBe(401);
    expect(await jobsOf(t.tenantId)).toHaveLength(1);
  });
});

describe('idempotency', () => {
  it('answers a repeat of client_message_id with the first message and enqueues once', async () => {
    const t = await newTenant();
    const first = await send({ message: 'once', client_message_id: 'c-1' }, { token: t.token });
    const again = await send({ message: 'once', client_message_id: 'c-1' }, { token: t.token });
    expect(first.body.data.duplicate).toBe(false);
    expect(again.status).toBe(200);
    expect(again.body.data).toMatchObject({ message_id: first.body.data.message_id, duplicate: true });
    expect(await jobsOf(t.tenantId)).toHaveLength(1);
  });

  it('honours the Idempotency-Key header the same way', async () => {
    const t = await newTenant();
    const headers = { 'idempotency-key': 'key-42' };
    const first = await send({ message: 'once' }, { token: t.token, headers });
    const again = await send({ message: 'once' }, { token: t.token, headers });
    expect(again.body.data).toMatchObject({ message_id: first.body.data.message_id, duplicate: true });
    expect(await jobsOf(t.tenantId)).toHaveLength(1);
  });

  it('enqueues one job for concurrent duplicates', async () => {
    const t = await newTenant();
    const all = await Promise.all(
      Array.from({ length: 10 }, () =>
        send({ message: 'race', client_message_id: 'dup-1' }, { token: t.token }),
      ),
    );
    expect(all.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(new Set(all.map((r) => r.body.data.message_id)).size).toBe(1);
    expect(all.filter((r) => r.body.data.duplicate === false)).toHaveLength(1);
    expect(await jobsOf(t.tenantId)).toHaveLength(1);
  });
});

describe('limits', () => {
  it('answers 429 RATE_LIMIT_EXCEEDED with Retry-After over the tenant rate', async () => {
    const t = await newTenant();
    await app.t.admin(
      `UPDATE tenants SET settings = settings || '{"rate_limit_per_second": 1}'::jsonb WHERE tenant_id = $1`,
      [t.tenantId],
    );
    await app.deps.tenants.invalidate(t.tenantId);
    const [a, b] = [
      await send({ message: '1' }, { token: t.token }),
      await send({ message: '2' }, { token: t.token }),
    ];
    expect(a.status).toBe(200);
    expect(b.status).toBe(429);
    expect(b.body.error).toMatchObject({ code: 'RATE_LIMIT_EXCEEDED', details: { limit: 'tenant' } });
    expect(Number(b.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });

  it('limits each credential on its own', async () => {
    const t = await newTenant({ credential_rate_limit_per_second: 1 });
    const other = await app.tokenFor({ role: 'tenant_admin', tenantId: t.tenantId, sub: 'someone-else' });
    expect((await send({ message: '1' }, { token: t.token })).status).toBe(200);
    const limited = await send({ message: '2' }, { token: t.token });
    expect(limited.status).toBe(429);
    expect(limited.body.error?.details).toMatchObject({ limit: 'credential' });
    expect((await send({ message: '3' }, { token: other })).status).toBe(200);
  });

  it('refuses an emptied credential again without asking Redis until its bucket refills', async () => {
    const t = await newTenant({ credential_rate_limit_per_second: 1 });
    expect((await send({ message: '1' }, { token: t.token })).status).toBe(200);
    const limited = await send({ message: '2' }, { token: t.token });
    expect(limited.status).toBe(429);
    const waitMs = Number(limited.body.error?.details?.retry_after_ms);
    expect(waitMs).toBeGreaterThan(0);
    // Refill every bucket of the tenant behind the process's back: only the process's memory of
    // the refusal can still refuse the next send.
    const buckets = await app.deps.redis.keys(`${app.deps.keys.rateBucket(t.tenantId, '')}*`);
    expect(buckets.length).toBeGreaterThan(0);
    await app.deps.redis.del(...buckets);
    const remembered = await send({ message: '3' }, { token: t.token });
    expect(remembered.status).toBe(429);
    expect(remembered.body.error?.details).toMatchObject({ limit: 'credential' });
    await new Promise((r) => setTimeout(r, waitMs + 50));
    expect((await send({ message: '4' }, { token: t.token })).status).toBe(200);
  });

  it('refuses that credential before reading its body or authenticating it while its bucket refills', async () => {
    const t = await newTenant({ credential_rate_limit_per_second: 1 });
    const other = await app.tokenFor({ role: 'tenant_admin', tenantId: t.tenantId, sub: 'another-sender' });
    expect((await send({ message: '1' }, { token: t.token })).status).toBe(200);
    const limited = await send({ message: '2' }, { token: t.token });
    expect(limited.status).toBe(429);
    const waitMs = Number(limited.body.error?.details?.retry_after_ms);
    // Not even a body: a request that reached validation would be a 400.
    const early = await send(undefined, { token: t.token });
    expect(early.status).toBe(429);
    expect(early.body.error).toMatchObject({
      code: 'RATE_LIMIT_EXCEEDED',
      details: { limit: 'credential', rate_per_second: 1 },
    });
    expect(Number(early.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Another credential of the tenant, and the same one on another route, are not refused.
    expect((await send({ message: '3' }, { token: other })).status).toBe(200);
    expect((await send(undefined, { token: other })).status).toBe(400);
    expect((await app.request('GET', '/auth/me', { token: t.token })).status).toBe(200);
    await new Promise((r) => setTimeout(r, waitMs + 50));
    expect((await send(undefined, { token: t.token })).status).toBe(400);
    expect((await send({ message: '4' }, { token: t.token })).status).toBe(200);
  });

  it('answers 429 QUOTA_EXCEEDED until UTC midnight once the daily quota is spent', async () => {
    const t = await newTenant({ quotas: { daily_messages: 2 } });
    expect((await send({ message: '1' }, { token: t.token })).status).toBe(200);
    expect((await send({ message: '2' }, { token: t.token })).status).toBe(200);
    const over = await send({ message: '3' }, { token: t.token });
    expect(over.status).toBe(429);
    expect(over.body.error?.code).toBe('QUOTA_EXCEEDED');
    const retryAfter = Number(over.headers.get('retry-after'));
    expect(Math.abs(retryAfter - secondsUntilUtcMidnight(Date.now()))).toBeLessThanOrEqual(5);
  });

  it('refuses sends while the tenant queue holds max_queue_size messages', async () => {
    const t = await newTenant({ scheduling: { max_queue_size: 2 } });
    expect((await send({ message: '1' }, { token: t.token })).status).toBe(200);
    expect((await send({ message: '2' }, { token: t.token })).status).toBe(200);
    const full = await send({ message: '3' }, { token: t.token });
    expect(full.status).toBe(429);
    expect(full.body.error).toMatchObject({
      code: 'RATE_LIMIT_EXCEEDED',
      details: { limit: 'max_queue_size' },
    });
    expect(full.headers.get('retry-after')).not.toBeNull();
    expect(await app.deps.queues.waitingCount(t.tenantId)).toBe(2);
  });

  it('refuses a new chat stream beyond max_chat_streams, counting stored streams too', async () => {
    const t = await newTenant({ max_chat_streams: 2 });
    await app.t.admin(
      `INSERT INTO chat_streams (tenant_id, chat_stream_id, agent_id, platform) VALUES ($1, 'stored', 'default', 'default')`,
      [t.tenantId],
    );
    expect((await send({ message: 'x', chat_stream_id: 's1' }, { token: t.token })).status).toBe(200);
    const res = await send({ message: 'x', chat_stream_id: 's2' }, { token: t.token });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({
      code: 'FORBIDDEN',
      details: { reason: 'max_chat_streams', limit: 2 },
    });
    expect(res.headers.get('retry-after')).toBeNull();
    expect((await send({ message: 'again', chat_stream_id: 's1' }, { token: t.token })).status).toBe(200);
    expect((await send({ message: 'again', chat_stream_id: 'stored' }, { token: t.token })).status).toBe(200);
  });
});

describe('POST /chat/send/batch', () => {
  it('accepts valid items and reports invalid ones independently', async () => {
    const t = await newTenant();
    const res = await app.request('POST', '/chat/send/batch', {
      token: t.token,
      body: {
        messages: [
          { message: 'one', chat_stream_id: 'b' },
          { message: '  ' },
          { message: 'x', bogus: true },
          { message: '<script>alert(1)</script>' },
          { message: 'two', agent_id: 'ghost' },
          { message: 'three', client_message_id: 'b-3' },
        ],
      },
    });
    expect(res.status).toBe(200);
    const results = res.body.data.results as {
      success: boolean;
      data?: { message_id: string };
      error?: unknown;
    }[];
    expect(results.map((r) => r.success)).toEqual([true, false, false, false, false, true]);
    expect(results[1]!.error).toMatchObject({ code: 'VALIDATION_ERROR' });
    expect(results[3]!.error).toMatchObject({
      code: 'VALIDATION_ERROR',
      details: { reason: 'content_policy' },
    });
    expect(results[4]!.error).toMatchObject({ code: 'AGENT_NOT_FOUND' });
    expect(await jobsOf(t.tenantId)).toHaveLength(2);
  });

  it('refuses more than 100 messages', async () => {
    const res = await app.request('POST', '/chat/send/batch', {
      token: acme.token,
      body: { messages: Array.from({ length: 101 }, () => ({ message: 'x' })) },
    });
    expect(res.status).toBe(400);
  });
});

describe('message status and history', () => {
  it("reports a queued job's status and hides it from other tenants", async () => {
    const sent = await send({ message: 'status?' }, { token: acme.token });
    const id = sent.body.data.message_id as string;
    const res = await app.request('GET', `/chat/messages/${id}/status`, { token: acme.token });
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({ message_id: id, status: 'queued' });
    const other = await newTenant();
    for (const path of [`/chat/messages/${id}/status`, `/chat/messages/${id}`]) {
      const hidden = await app.request('GET', path, { token: other.token });
      expect(hidden.status).toBe(404);
      expect(hidden.body.error?.code).toBe('NOT_FOUND');
    }
  });

  it('reports processing and failed from the job state', async () => {
    const t = await newTenant();
    const id = (await send({ message: 'work' }, { token: t.token })).body.data.message_id as string;
    const connection = new Redis(testEnv('redisUrl'), { maxRetriesPerRequest: null });
    const worker = new Worker(tenantQueueName(t.tenantId, 'heartflow'), null, {
      connection,
      prefix: app.deps.config.redisPrefix,
      autorun: false,
    });
    try {
      const job = (await worker.getNextJob('test-token', { block: false })) as Job | undefined;
      expect(job?.id).toBe(id);
      const active = await app.request('GET', `/chat/messages/${id}/status`, { token: t.token });
      expect(active.body.data).toEqual({ message_id: id, status: 'processing' });
      await job!.moveToFailed(new UnrecoverableError('llm exploded'), 'test-token', false);
      const failed = await app.request('GET', `/chat/messages/${id}/status`, { token: t.token });
      // The job's own reason (here a made-up one; a database error in life) is for operators only.
      expect(failed.body.data).toEqual({
        message_id: id,
        status: 'failed',
        error: expect.stringMatching(/internal error/) as string,
      });
      expect(JSON.stringify(failed.body)).not.toContain('llm exploded');
    } finally {
      await worker.close();
      connection.disconnect();
    }
  });

  it('reports the stored outcome once the worker wrote it', async () => {
    const t = await newTenant();
    await app.t.admin(
      `INSERT INTO chat_streams (tenant_id, chat_stream_id, agent_id, platform) VALUES ($1, 'done', 'default', 'default')`,
      [t.tenantId],
    );
    await app.t.admin(
      `INSERT INTO messages (tenant_id, message_id, agent_id, platform, chat_stream_id, direction, content, status,
                             response, actions_taken, tokens_used, queue_wait_ms, processing_time_ms)
       VALUES ($1, 'msg_stored', 'default', 'default', 'done', 'in', 'hi', 'replied', 'hello!',
               '[{"type":"reply"}]', 12, 3, 40)`,
      [t.tenantId],
    );
    const res = await app.request('GET', '/chat/messages/msg_stored/status', { token: t.token });
    expect(res.body.data).toEqual({
      message_id: 'msg_stored',
      status: 'replied',
      response: 'hello!',
      actions_taken: [{ type: 'reply' }],
      tokens_used: 12,
      queue_wait_ms: 3,
      processing_time_ms: 40,
      error: null,
    });
    const full = await app.request('GET', '/chat/messages/msg_stored', { token: t.token });
    expect(full.body.data).toMatchObject({ content: 'hi', response: 'hello!', direction: 'in' });
  });

  it('pages a stream history newest first with an opaque cursor', async () => {
    const t = await newTenant();
    await app.t.admin(
      `INSERT INTO chat_streams (tenant_id, chat_stream_id, agent_id, platform) VALUES ($1, 'hist', 'default', 'default')`,
      [t.tenantId],
    );
    // Two rows share a millisecond and differ in microseconds: the cursor must keep them apart.
    await app.t.admin(
      `INSERT INTO messages (tenant_id, message_id, agent_id, platform, chat_stream_id, direction, content, created_at)
       SELECT $1, 'msg_' || i, 'default', 'default', 'hist', CASE WHEN i % 2 = 0 THEN 'out' ELSE 'in' END,
              'm' || i, timestamptz '2024-05-01 00:00:00.001Z' + (i * interval '1 microsecond') * 100
       FROM generate_series(1, 5) AS i`,
      [t.tenantId],
    );
    const seen: string[] = [];
    let before: string | null = null;
    let pages = 0;
    do {
      const q: string = before ? `&before=${before}` : '';
      const res = await app.request('GET', `/chat/hist/messages?limit=2${q}`, { token: t.token });
      expect(res.status).toBe(200);
      seen.push(...(res.body.data.messages as { message_id: string }[]).map((m) => m.message_id));
      before = res.body.data.next_before as string | null;
      pages++;
    } while (before);
    expect(seen).toEqual(['msg_5', 'msg_4', 'msg_3', 'msg_2', 'msg_1']);
    expect(pages).toBe(3);

    const bad = await app.request('GET', '/chat/hist/messages?before=garbage', { token: t.token });
    expect(bad.status).toBe(400);
    const other = await newTenant();
    const hidden = await app.request('GET', '/chat/hist/messages', { token: other.token });
    expect(hidden.status).toBe(404);
    expect(hidden.body.error?.code).toBe('CHAT_STREAM_NOT_FOUND');
  });
});

describe('live results', () => {
  it('streams message.received to an SSE client subscribed to the chat stream', async () => {
    const t = await newTenant();
    await send({ message: 'first', chat_stream_id: 'live' }, { token: t.token });
    // Channels the process holds anyway (e.g. agent-change notices); the client's come on top.
    const held = app.deps.channels.channelCount;
    const controller = new AbortController();
    const res = await fetch(`${app.url}/api/v1/chat/streams/live/events`, {
      headers: { authorization: `Bearer ${t.token}` },
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const readUntil = async (pattern: string) => {
      while (!text.includes(pattern)) {
        const { value, done } = (await reader.read()) as { value?: Uint8Array; done: boolean };
        if (done) throw new Error('stream ended');
        text += decoder.decode(value, { stream: true });
      }
    };
    await readUntil(': connected');
    const sent = await send({ message: 'second', chat_stream_id: 'live' }, { token: t.token });
    const id = sent.body.data.message_id as string;
    await readUntil(`id: ${id}`);
    expect(text).toContain('event: message.received');
    expect(text).toContain('"content":"second"');
    controller.abort();
    await until(() => (app.deps.channels.channelCount === held ? true : undefined));
  });

  it('answers 404 for the events of a stream the tenant does not have', async () => {
    const res = await app.request('GET', '/chat/streams/nowhere/events', { token: acme.token });
    expect(res.status).toBe(404);
    expect(res.body.error?.code).toBe('CHAT_STREAM_NOT_FOUND');
  });

  it('holds ?wait until the outcome is published', async () => {
    const t = await newTenant();
    const held = app.deps.channels.channelCount;
    const content = `wait-${randomBytes(4).toString('hex')}`;
    const pending = send({ message: content }, { token: t.token, query: '?wait=10000' });
    const job = await until(async () => (await jobsOf(t.tenantId)).find((j) => j.data.content === content));
    // The waiter subscribes after the enqueue; publish once its channel is live.
    await until(() => (app.deps.channels.channelCount > held ? true : undefined));
    await publishMessageDone(app.deps.redis, app.deps.keys, t.tenantId, {
      message_id: job.data.messageId,
      status: 'replied',
      response: '你好！',
      actions_taken: [{ type: 'reply' }],
      tokens_used: 7,
    });
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      message_id: job.data.messageId,
      status: 'replied',
      response: '你好！',
      actions_taken: [{ type: 'reply' }],
      tokens_used: 7,
    });
  });

  it('returns the current status when ?wait times out', async () => {
    const started = Date.now();
    const res = await send({ message: 'nobody answers' }, { token: acme.token, query: '?wait=300' });
    expect(res.status).toBe(200);
    expect(res.body.data.status).toBe('queued');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    const tooLong = await send({ message: 'x' }, { token: acme.token, query: '?wait=30001' });
    expect(tooLong.status).toBe(400);
  });
});

describe('documentation', () => {
  it('documents every chat route in the OpenAPI document', async () => {
    const doc = (await (await fetch(`${app.url}/api/v1/openapi.json`)).json()) as {
      paths: Record<string, unknown>;
    };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/chat/send',
        '/api/v1/chat/send/batch',
        '/api/v1/chat/messages/{message_id}/status',
        '/api/v1/chat/messages/{message_id}',
        '/api/v1/chat/{chat_stream_id}/messages',
        '/api/v1/chat/streams/{chat_stream_id}/events',
      ]),
    );
  });
});
