import { randomBytes } from 'node:crypto';

import { type Job, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';

import { createTenant } from '../../src/db/repositories/tenants';
import { JOB_KINDS, tenantQueueName } from '../../src/queues/names';
import { onScheduleChange } from '../../src/queues/scheduleChanges';
import type { HeartflowJobData } from '../../src/queues/tenantQueues';
import { testEnv } from '../support/env';
import { startTestApp, type TestApp } from '../support/testApp';

let app: TestApp;
let admin: string;
let connection: Redis;

beforeAll(async () => {
  app = await startTestApp();
  admin = await app.tokenFor({ role: 'platform_admin' });
  // BullMQ workers need a connection whose commands wait through reconnects.
  connection = new Redis(testEnv('redisUrl'), { maxRetriesPerRequest: null });
});
afterAll(async () => {
  connection.disconnect();
  await app.close();
});

let seq = 0;
/** A tenant of its own per test, with tokens of each role, so queue counts do not interfere. */
async function newTenant() {
  const tenantId = `q${++seq}-${randomBytes(3).toString('hex')}`;
  await app.deps.db.withPlatform((db) => createTenant(db, { tenantId, name: tenantId }));
  const token = (role: 'tenant_admin' | 'operator' | 'agent' | 'reader') =>
    app.tokenFor({ role, tenantId, ...(role === 'agent' ? { agentId: 'default' } : {}) });
  return {
    tenantId,
    admin: await token('tenant_admin'),
    operator: await token('operator'),
    agent: await token('agent'),
    reader: await token('reader'),
  };
}

function jobData(tenantId: string, messageId: string, content = 'hello'): HeartflowJobData {
  return {
    messageId,
    tenantId,
    agentId: 'default',
    platform: 'qq',
    chatStreamId: 'c1',
    chatType: 'group',
    content,
    clientMessageId: null,
    replyTo: null,
    sender: { userId: 'u1', nickname: 'nick', cardname: null, groupId: 'g1', groupName: null },
    segments: [{ type: 'text', data: { text: content } }],
    mentioned: false,
    options: { enableMemory: true, enableEmoji: true, priority: 'normal' },
    receivedAt: Date.now(),
    source: 'http',
  };
}

async function enqueue(tenantId: string, ...messageIds: string[]) {
  for (const id of messageIds) await app.deps.queues.enqueueHeartflow(jobData(tenantId, id));
}

/**
 * Takes the next job of a tenant's heartflow queue as a worker would and finishes it: failed
 * without retries, or completed. No dispatcher runs in these tests, so jobs move only here.
 */
async function finishNext(tenantId: string, outcome: 'fail' | 'complete'): Promise<string> {
  const worker = new Worker(tenantQueueName(tenantId, 'heartflow'), null, {
    connection,
    prefix: app.deps.config.redisPrefix,
    autorun: false,
  });
  try {
    const job = (await worker.getNextJob('test-token', { block: false })) as Job | undefined;
    if (!job) throw new Error('no job to take');
    if (outcome === 'fail')
      await job.moveToFailed(new UnrecoverableError('llm exploded'), 'test-token', false);
    else await job.moveToCompleted('done', 'test-token', false);
    return job.id!;
  } finally {
    await worker.close();
  }
}

function queueOf(tenantId: string) {
  return app.deps.queues.queue(tenantId, 'heartflow');
}

describe('queue administration', () => {
  it('lists every tenant for a platform admin, paginated, with counts and scheduling', async () => {
    const t = await newTenant();
    await enqueue(t.tenantId, 'msg_list1', 'msg_list2');
    const page = await app.request('GET', '/admin/queues?limit=100', { token: admin });
    expect(page.status).toBe(200);
    const queues = page.body.data.queues as Record<string, unknown>[];
    const mine = queues.find((q) => q.tenant_id === t.tenantId);
    expect(mine).toMatchObject({
      status: 'active',
      waiting: 2,
      active: 0,
      delayed: 0,
      failed: 0,
      completed: 0,
      paused: false,
      weight: 1,
      max_concurrency: 10,
      rate_limit: null,
      max_queue_size: 10000,
      kinds: { heartflow: { waiting: 2, paused: false }, memory: { waiting: 0 } },
    });
    expect(queues.some((q) => q.tenant_id === 'default')).toBe(true);

    const first = await app.request('GET', '/admin/queues?limit=1&page=1', { token: admin });
    expect(first.body.data.queues).toHaveLength(1);
    expect(first.body.data.pagination).toMatchObject({ page: 1, limit: 1 });
    expect((first.body.data.pagination as { total: number }).total).toBeGreaterThanOrEqual(2);
  });

  it('shows tenant admins and operators their own tenant only', async () => {
    const a = await newTenant();
    const b = await newTenant();
    await enqueue(a.tenantId, 'msg_own1');
    for (const token of [a.admin, a.operator]) {
      const res = await app.request('GET', '/admin/queues', { token });
      expect(res.status).toBe(200);
      const queues = res.body.data.queues as { tenant_id: string; waiting: number }[];
      expect(queues.map((q) => q.tenant_id)).toEqual([a.tenantId]);
      expect(queues[0]!.waiting).toBe(1);
      const foreign = await app.request('GET', '/admin/queues', {
        token,
        headers: { 'x-tenant-id': b.tenantId },
      });
      expect(foreign.status).toBe(403);
      expect(foreign.body.error?.code).toBe('ISOLATION_VIOLATION');
    }
  });

  it('refuses agents and readers (403) and callers without credentials (401)', async () => {
    const t = await newTenant();
    for (const token of [t.agent, t.reader]) {
      for (const [method, path] of [
        ['GET', '/admin/queues'],
        ['GET', `/admin/queues/${t.tenantId}`],
        ['POST', `/admin/queues/${t.tenantId}/pause`],
        ['GET', `/admin/queues/${t.tenantId}/jobs`],
      ] as const) {
        const res = await app.request(method, path, { token });
        expect(res.status).toBe(403);
        expect(res.body.error?.code).toBe('FORBIDDEN');
      }
    }
    const anonymous = await app.request('GET', `/admin/queues/${t.tenantId}`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error?.code).toBe('UNAUTHORIZED');
  });

  it("gives one tenant's queue with its caps, and 404 TENANT_NOT_FOUND for an unknown tenant", async () => {
    const t = await newTenant();
    await enqueue(t.tenantId, 'msg_one1');
    const res = await app.request('GET', `/admin/queues/${t.tenantId}`, { token: t.operator });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      tenant_id: t.tenantId,
      waiting: 1,
      paused: false,
      caps: { global_concurrency: null, global_rate_limit: null },
    });
    for (const [method, path] of [
      ['GET', '/admin/queues/no-such-tenant'],
      ['POST', '/admin/queues/no-such-tenant/pause'],
      ['GET', '/admin/queues/no-such-tenant/jobs'],
      ['POST', '/admin/queues/no-such-tenant/retry-failed'],
    ] as const) {
      const missing = await app.request(method, path, { token: admin });
      expect(missing.status).toBe(404);
      expect(missing.body.error?.code).toBe('TENANT_NOT_FOUND');
    }
    const bad = await app.request('GET', '/admin/queues/bad%20id', { token: admin });
    expect(bad.status).toBe(400);
  });

  it("keeps tenant admins and operators off another tenant's queue and jobs", async () => {
    const a = await newTenant();
    const b = await newTenant();
    await enqueue(b.tenantId, 'msg_b1', 'msg_b2');
    const failedId = await finishNext(b.tenantId, 'fail');
    const paths = [
      ['GET', `/admin/queues/${b.tenantId}`],
      ['POST', `/admin/queues/${b.tenantId}/pause`],
      ['POST', `/admin/queues/${b.tenantId}/resume`],
      ['GET', `/admin/queues/${b.tenantId}/jobs?state=failed`],
      ['POST', `/admin/queues/${b.tenantId}/jobs/${failedId}/retry`],
      ['POST', `/admin/queues/${b.tenantId}/retry-failed`],
      ['DELETE', `/admin/queues/${b.tenantId}/jobs?state=failed`],
    ] as const;
    for (const token of [a.admin, a.operator]) {
      for (const [method, path] of paths) {
        const res = await app.request(method, path, { token });
        expect(res.status).toBe(403);
        expect(res.body.error?.code).toBe('ISOLATION_VIOLATION');
      }
    }
    // B's job id named on A's own queue: not found, and B's queue untouched.
    const viaOwn = await app.request('POST', `/admin/queues/${a.tenantId}/jobs/${failedId}/retry`, {
      token: a.admin,
    });
    expect(viaOwn.status).toBe(404);
    expect(viaOwn.body.error?.code).toBe('NOT_FOUND');
    const ownJobs = await app.request('GET', `/admin/queues/${a.tenantId}/jobs?state=failed`, {
      token: a.admin,
    });
    expect(ownJobs.body.data.jobs).toEqual([]);
    expect(await queueOf(b.tenantId).isPaused()).toBe(false);
    expect(await queueOf(b.tenantId).getJobCounts('failed', 'waiting', 'prioritized')).toEqual({
      failed: 1,
      waiting: 0,
      prioritized: 1,
    });
  });

  it('pauses every kind so jobs stay waiting, and resumes and wakes the dispatchers', async () => {
    const t = await newTenant();
    await enqueue(t.tenantId, 'msg_p1', 'msg_p2');
    await app.deps.redis.srem(app.deps.keys.activeTenants('heartflow'), t.tenantId);

    const paused = await app.request('POST', `/admin/queues/${t.tenantId}/pause`, { token: t.operator });
    expect(paused.status).toBe(200);
    expect(paused.body.data).toEqual({ tenant_id: t.tenantId, paused: true });
    for (const kind of JOB_KINDS) expect(await app.deps.queues.queue(t.tenantId, kind).isPaused()).toBe(true);

    // A worker asking for work gets nothing while paused.
    const worker = new Worker(tenantQueueName(t.tenantId, 'heartflow'), null, {
      connection,
      prefix: app.deps.config.redisPrefix,
      autorun: false,
    });
    try {
      expect(await worker.getNextJob('test-token', { block: false })).toBeUndefined();
    } finally {
      await worker.close();
    }
    const state = await app.request('GET', `/admin/queues/${t.tenantId}`, { token: t.admin });
    expect(state.body.data).toMatchObject({ paused: true, waiting: 2, active: 0 });

    const resumed = await app.request('POST', `/admin/queues/${t.tenantId}/resume`, { token: t.operator });
    expect(resumed.status).toBe(200);
    expect(resumed.body.data).toEqual({ tenant_id: t.tenantId, paused: false });
    for (const kind of JOB_KINDS)
      expect(await app.deps.queues.queue(t.tenantId, kind).isPaused()).toBe(false);
    expect(await app.deps.redis.sismember(app.deps.keys.activeTenants('heartflow'), t.tenantId)).toBe(1);
    const after = await app.request('GET', `/admin/queues/${t.tenantId}`, { token: t.admin });
    expect(after.body.data).toMatchObject({ paused: false, waiting: 2 });
  });

  it('lists jobs by state with a bounded summary of their data', async () => {
    const t = await newTenant();
    const long = 'x'.repeat(500);
    await enqueue(t.tenantId, 'msg_j1', 'msg_j2');
    await app.deps.queues.enqueueHeartflow(jobData(t.tenantId, 'msg_j3', long));
    // Same priority: the oldest job is taken first.
    const failedId = await finishNext(t.tenantId, 'fail');
    expect(failedId).toBe('msg_j1');

    const waiting = await app.request('GET', `/admin/queues/${t.tenantId}/jobs?state=waiting`, {
      token: t.operator,
    });
    expect(waiting.status).toBe(200);
    expect(waiting.body.data).toMatchObject({ tenant_id: t.tenantId, kind: 'heartflow', state: 'waiting' });
    expect(waiting.body.data.pagination).toMatchObject({ total: 2 });
    const jobs = waiting.body.data.jobs as { job_id: string; state: string; data: Record<string, unknown> }[];
    expect(jobs.map((j) => j.job_id).sort()).toEqual(['msg_j2', 'msg_j3']);
    expect(jobs.every((j) => j.state === 'waiting')).toBe(true);
    const longJob = jobs.find((j) => j.job_id === 'msg_j3')!;
    expect(longJob.data.content).toBe(`${'x'.repeat(200)}…`);
    expect(longJob.data.segments).toBe('[1 items]');
    expect(longJob.data.sender).toMatchObject({ nickname: 'nick', groupId: 'g1' });

    const failed = await app.request('GET', `/admin/queues/${t.tenantId}/jobs`, { token: t.operator });
    expect(failed.body.data.state).toBe('failed');
    expect(failed.body.data.jobs).toEqual([
      expect.objectContaining({
        job_id: failedId,
        name: 'message',
        state: 'failed',
        attempts_made: 1,
        max_attempts: 3,
        failed_reason: 'llm exploded',
        processed_at: expect.any(String) as unknown,
        finished_at: expect.any(String) as unknown,
        data: expect.objectContaining({ tenantId: t.tenantId, messageId: failedId }) as unknown,
      }),
    ]);

    const page = await app.request('GET', `/admin/queues/${t.tenantId}/jobs?state=waiting&limit=1&page=2`, {
      token: t.operator,
    });
    expect(page.body.data.jobs).toHaveLength(1);
    expect(page.body.data.pagination).toMatchObject({ page: 2, limit: 1, total: 2, pages: 2 });

    const bad = await app.request('GET', `/admin/queues/${t.tenantId}/jobs?state=exploded`, {
      token: t.operator,
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error?.code).toBe('VALIDATION_ERROR');
  });

  it('retries one failed job with fresh attempts; 409 when not failed, 404 when unknown', async () => {
    const t = await newTenant();
    await enqueue(t.tenantId, 'msg_r1', 'msg_r2');
    const failedId = await finishNext(t.tenantId, 'fail');
    await app.deps.redis.srem(app.deps.keys.activeTenants('heartflow'), t.tenantId);

    const res = await app.request('POST', `/admin/queues/${t.tenantId}/jobs/${failedId}/retry`, {
      token: t.operator,
    });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      tenant_id: t.tenantId,
      job: { job_id: failedId, state: 'waiting', attempts_made: 0 },
    });
    expect(await queueOf(t.tenantId).getJobCounts('failed')).toEqual({ failed: 0 });
    expect(await app.deps.redis.sismember(app.deps.keys.activeTenants('heartflow'), t.tenantId)).toBe(1);

    const again = await app.request('POST', `/admin/queues/${t.tenantId}/jobs/${failedId}/retry`, {
      token: t.operator,
    });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'CONFLICT', details: { state: 'waiting' } });

    const unknown = await app.request('POST', `/admin/queues/${t.tenantId}/jobs/msg_nope/retry`, {
      token: t.operator,
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error?.code).toBe('NOT_FOUND');
  });

  it('retries every failed job at once', async () => {
    const t = await newTenant();
    await enqueue(t.tenantId, 'msg_f1', 'msg_f2', 'msg_f3');
    await finishNext(t.tenantId, 'fail');
    await finishNext(t.tenantId, 'fail');
    const res = await app.request('POST', `/admin/queues/${t.tenantId}/retry-failed`, { token: t.admin });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      tenant_id: t.tenantId,
      retried: 2,
      kinds: { heartflow: 2, memory: 0 },
    });
    expect(await queueOf(t.tenantId).getJobCountByTypes('failed')).toBe(0);
    expect(await queueOf(t.tenantId).getJobCountByTypes('waiting', 'prioritized')).toBe(3);

    const oneKind = await app.request('POST', `/admin/queues/${t.tenantId}/retry-failed?kind=memory`, {
      token: t.admin,
    });
    expect(oneKind.body.data).toEqual({ tenant_id: t.tenantId, retried: 0, kinds: { memory: 0 } });
  });

  it('cleans finished jobs by state and age, and never work still to do', async () => {
    const t = await newTenant();
    await enqueue(t.tenantId, 'msg_c1', 'msg_c2', 'msg_c3', 'msg_c4');
    await finishNext(t.tenantId, 'complete');
    await finishNext(t.tenantId, 'complete');
    await finishNext(t.tenantId, 'fail');

    const young = await app.request(
      'DELETE',
      `/admin/queues/${t.tenantId}/jobs?state=completed&older_than_ms=3600000`,
      {
        token: t.operator,
      },
    );
    expect(young.status).toBe(200);
    expect(young.body.data).toMatchObject({ removed: 0 });

    const completed = await app.request('DELETE', `/admin/queues/${t.tenantId}/jobs?state=completed`, {
      token: t.operator,
    });
    expect(completed.body.data).toMatchObject({
      tenant_id: t.tenantId,
      state: 'completed',
      removed: 2,
      kinds: { heartflow: 2 },
    });
    expect(await queueOf(t.tenantId).getJobCounts('completed', 'failed')).toEqual({
      completed: 0,
      failed: 1,
    });

    const failed = await app.request(
      'DELETE',
      `/admin/queues/${t.tenantId}/jobs?state=failed&kind=heartflow`,
      {
        token: t.admin,
      },
    );
    expect(failed.body.data).toEqual({
      tenant_id: t.tenantId,
      state: 'failed',
      removed: 1,
      kinds: { heartflow: 1 },
    });
    expect(await queueOf(t.tenantId).getJobCountByTypes('waiting', 'prioritized')).toBe(1);

    for (const query of ['state=waiting', '', 'state=completed&older_than_ms=-1']) {
      const bad = await app.request('DELETE', `/admin/queues/${t.tenantId}/jobs?${query}`, {
        token: t.admin,
      });
      expect(bad.status).toBe(400);
      expect(bad.body.error?.code).toBe('VALIDATION_ERROR');
    }
  });
});

describe('tenant scheduling', () => {
  it('stores, applies and announces a new schedule', async () => {
    const t = await newTenant();
    const subscriber = new Redis(testEnv('redisUrl'));
    const notices: string[] = [];
    try {
      const unsubscribe = await onScheduleChange(subscriber, app.deps.keys, (tenantId) =>
        notices.push(tenantId),
      );

      const body = {
        weight: 3,
        max_concurrency: 4,
        rate_limit: { max: 20, duration_ms: 1000 },
        max_queue_size: 500,
        ingress_max_in_flight: 16,
      };
      const res = await app.request('PUT', `/admin/tenants/${t.tenantId}/scheduling`, { token: admin, body });
      expect(res.status).toBe(200);
      expect(res.body.data).toEqual({
        tenant_id: t.tenantId,
        scheduling: body,
        caps: { global_concurrency: 4, global_rate_limit: { max: 20, duration_ms: 1000 } },
      });

      const { rows } = await app.t.admin<{ scheduling: unknown }>(
        `SELECT settings->'scheduling' AS scheduling FROM tenants WHERE tenant_id = $1`,
        [t.tenantId],
      );
      expect(rows[0]?.scheduling).toEqual(body);
      for (const kind of JOB_KINDS) {
        const queue = app.deps.queues.queue(t.tenantId, kind);
        expect(await queue.getGlobalConcurrency()).toBe(4);
        expect(await queue.getGlobalRateLimit()).toEqual({ max: 20, duration: 1000 });
      }
      // The directory was invalidated: readers see the new schedule at once.
      const seen = await app.request('GET', `/admin/queues/${t.tenantId}`, { token: t.admin });
      expect(seen.body.data).toMatchObject({
        weight: 3,
        max_concurrency: 4,
        rate_limit: { max: 20, duration_ms: 1000 },
        max_queue_size: 500,
        caps: { global_concurrency: 4 },
      });

      const deadline = Date.now() + 2000;
      while (!notices.includes(t.tenantId) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      expect(notices).toContain(t.tenantId);
      await unsubscribe();
    } finally {
      subscriber.disconnect();
    }
  });

  it('replaces the whole schedule: fields left out take their defaults and the rate limit goes', async () => {
    const t = await newTenant();
    await app.request('PUT', `/admin/tenants/${t.tenantId}/scheduling`, {
      token: admin,
      body: { weight: 2, max_concurrency: 3, rate_limit: { max: 5, duration_ms: 1000 } },
    });
    const res = await app.request('PUT', `/admin/tenants/${t.tenantId}/scheduling`, {
      token: admin,
      body: { max_concurrency: 7 },
    });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      scheduling: { weight: 1, max_concurrency: 7, max_queue_size: 10000 },
      caps: { global_concurrency: 7, global_rate_limit: null },
    });
    expect(res.body.data.scheduling).not.toHaveProperty('rate_limit');
    expect(await queueOf(t.tenantId).getGlobalRateLimit()).toBeNull();
  });

  it('keeps the other settings of the tenant', async () => {
    const t = await newTenant();
    await app.request('PUT', `/tenants/${t.tenantId}`, {
      token: admin,
      body: { settings: { max_agents: 3 } },
    });
    await app.request('PUT', `/admin/tenants/${t.tenantId}/scheduling`, {
      token: admin,
      body: { weight: 5 },
    });
    const tenant = await app.request('GET', `/tenants/${t.tenantId}`, { token: admin });
    expect(tenant.body.data.settings).toMatchObject({ max_agents: 3, scheduling: { weight: 5 } });
  });

  it('is for platform admins only: tenants may not raise their own weight', async () => {
    const t = await newTenant();
    for (const token of [t.admin, t.operator]) {
      const res = await app.request('PUT', `/admin/tenants/${t.tenantId}/scheduling`, {
        token,
        body: { weight: 100 },
      });
      expect(res.status).toBe(403);
      expect(res.body.error?.code).toBe('FORBIDDEN');
    }
    expect(await queueOf(t.tenantId).getGlobalConcurrency()).toBeNull();
  });

  it('validates the body and the tenant', async () => {
    const t = await newTenant();
    const bad = await app.request('PUT', `/admin/tenants/${t.tenantId}/scheduling`, {
      token: admin,
      body: { weight: -1, max_concurrency: 1.5, rate_limit: { max: 1 }, surprise: true },
    });
    expect(bad.status).toBe(400);
    const paths = (bad.body.error?.details?.fields as { path: string }[]).map((f) => f.path).sort();
    expect(paths).toEqual(['body', 'max_concurrency', 'rate_limit.duration_ms', 'weight']);

    const missing = await app.request('PUT', '/admin/tenants/no-such-tenant/scheduling', {
      token: admin,
      body: { weight: 2 },
    });
    expect(missing.status).toBe(404);
    expect(missing.body.error?.code).toBe('TENANT_NOT_FOUND');
  });
});

describe('queue dashboard', () => {
  it('serves the board to a platform admin and refuses agents, readers and anonymous callers', async () => {
    const t = await newTenant();
    const page = await fetch(`${app.url}/api/v1/admin/ui`, { headers: { authorization: `Bearer ${admin}` } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain('<base href="/api/v1/admin/ui/"');

    const anonymous = await app.request('GET', '/admin/ui');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error?.code).toBe('UNAUTHORIZED');
    for (const token of [t.agent, t.reader]) {
      const res = await app.request('GET', '/admin/ui', { token });
      expect(res.status).toBe(403);
      expect(res.body.error?.code).toBe('FORBIDDEN');
    }
    const forged = await app.request('GET', '/admin/ui', {
      headers: { cookie: 'maihive_admin=not-a-token' },
    });
    expect(forged.status).toBe(401);
  });

  it("opens a cookie session for a platform admin and lists active tenants' queues of every kind", async () => {
    const t = await newTenant();
    await enqueue(t.tenantId, 'msg_ui1');
    const session = await app.request('POST', '/admin/ui/session', { body: { access_token: admin } });
    expect(session.status).toBe(200);
    expect(session.body.data.expires_at).toEqual(expect.any(String));
    const setCookie = session.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/^maihive_admin=/);
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Strict/i);
    expect(setCookie).toMatch(/Path=\/api\/v1\/admin\/ui/);
    const cookie = setCookie.split(';')[0]!;

    const page = await fetch(`${app.url}/api/v1/admin/ui`, { headers: { cookie } });
    expect(page.status).toBe(200);
    const html = await page.text();
    // Nothing loads from another host: the board's web-font link is gone and the policy says so.
    expect(html).not.toMatch(/https?:\/\//);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    expect(page.headers.get('content-security-policy')).not.toMatch(/https:/);
    // The board's own scripts load through the same gate, with the same cookie.
    const script = /src="(static\/js\/main\.[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${app.url}/api/v1/admin/ui/${script}`, { headers: { cookie } });
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toMatch(/javascript/);
    await asset.arrayBuffer();
    const noCookie = await fetch(`${app.url}/api/v1/admin/ui/${script}`);
    expect(noCookie.status).toBe(401);
    await noCookie.arrayBuffer();
    const api = await app.request('GET', '/admin/ui/api/queues', { headers: { cookie } });
    expect(api.status).toBe(200);
    const names = JSON.stringify(api.body);
    for (const kind of JOB_KINDS) expect(names).toContain(tenantQueueName(t.tenantId, kind));
    // Workers are not counted by client name (the dispatchers share one backend): no false badge.
    const queues = (api.body as unknown as { queues: { name: string; hasWorkers: boolean | null }[] }).queues;
    const heartflow = queues.find((q) => q.name === tenantQueueName(t.tenantId, 'heartflow'));
    expect(heartflow?.hasWorkers ?? null).toBeNull();

    const closed = await app.request('DELETE', '/admin/ui/session');
    expect(closed.status).toBe(200);
    expect(closed.headers.get('set-cookie')).toMatch(/maihive_admin=;/);
  });

  it('refuses a session for other roles and for bad tokens', async () => {
    const t = await newTenant();
    for (const token of [t.agent, t.reader]) {
      const refused = await app.request('POST', '/admin/ui/session', { body: { access_token: token } });
      expect(refused.status).toBe(403);
      expect(refused.headers.get('set-cookie')).toBeNull();
    }
    const bogus = await app.request('POST', '/admin/ui/session', { body: { access_token: 'bogus' } });
    expect(bogus.status).toBe(401);
    const extra = await app.request('POST', '/admin/ui/session', { body: { access_token: admin, x: 1 } });
    expect(extra.status).toBe(400);
  });

  it("shows a tenant admin or operator their own tenant's queues only, read-only", async () => {
    const mine = await newTenant();
    const other = await newTenant();
    await enqueue(mine.tenantId, 'msg_mine');
    await enqueue(other.tenantId, 'msg_other');
    for (const token of [mine.admin, mine.operator]) {
      const session = await app.request('POST', '/admin/ui/session', { body: { access_token: token } });
      expect(session.status).toBe(200);
      const cookie = (session.headers.get('set-cookie') ?? '').split(';')[0]!;
      const page = await fetch(`${app.url}/api/v1/admin/ui`, { headers: { cookie } });
      expect(page.status).toBe(200);
      expect(await page.text()).toContain(`MaiHive · ${mine.tenantId}`);

      const api = await app.request('GET', '/admin/ui/api/queues', { headers: { cookie } });
      expect(api.status).toBe(200);
      const queues = (api.body as unknown as { queues: { name: string; readOnlyMode: boolean }[] }).queues;
      expect(queues.map((q) => q.name).sort()).toEqual(
        JOB_KINDS.map((k) => tenantQueueName(mine.tenantId, k)).sort(),
      );
      expect(queues.every((q) => q.readOnlyMode)).toBe(true);
      expect(JSON.stringify(api.body)).not.toContain(other.tenantId);

      // Nothing changes through it: neither the board's own actions nor another tenant's queue.
      const pause = await app.request(
        'PUT',
        `/admin/ui/api/queues/${encodeURIComponent(tenantQueueName(mine.tenantId, 'heartflow'))}/pause`,
        {
          headers: { cookie },
        },
      );
      expect(pause.status).toBe(403);
      expect(await app.deps.queues.queue(mine.tenantId, 'heartflow').isPaused()).toBe(false);
      const theirs = await app.request(
        'GET',
        `/admin/ui/api/queues/${encodeURIComponent(tenantQueueName(other.tenantId, 'heartflow'))}`,
        { headers: { cookie } },
      );
      expect(theirs.status).toBeGreaterThanOrEqual(400);
      expect(JSON.stringify(theirs.body)).not.toContain('msg_other');
    }
  });
});
