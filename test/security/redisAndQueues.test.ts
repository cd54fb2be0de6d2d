/**
 * 租户数据隔离 in Redis and the queues, against a whole runtime (API and workers, as `npm start`
 * runs them): the same chat, user and client ids in A and B never share a key; a job that names
 * B in A's queue is refused by the worker; A's and B's jobs interleaved on the shared connections
 * never cross; and A spending its rate limit leaves B untouched.
 */
import { Job } from 'bullmq';

import { loadConfig } from '../../src/config';
import { tenantQueueName } from '../../src/queues/names';
import { TenantQueues } from '../../src/queues/tenantQueues';
import { keyspace } from '../../src/redis/keys';
import { heartflowJobData } from '../support/fixtures';
import { type RuntimeHarness, startRuntimeHarness } from '../support/runtimeHarness';
import { waitFor } from '../support/waitFor';
import { WORLD_TIMEOUT_MS } from './support/twoTenants';

let h: RuntimeHarness;
let keyA: string;
let keyB: string;
let keyLimited: string;

beforeAll(async () => {
  h = await startRuntimeHarness();
  keyA = await h.tenantWithKey('tenant_a');
  keyB = await h.tenantWithKey('tenant_b');
  // At most one send per 100 s: the second is refused.
  keyLimited = await h.tenantWithKey('tenant_r', { rate_limit_per_second: 0.01 });
}, WORLD_TIMEOUT_MS);
afterAll(async () => {
  await h.close();
});

const send = (apiKey: string, body: Record<string, unknown>, wait = 0) =>
  h.call('POST', `/chat/send${wait ? `?wait=${wait}` : ''}`, { apiKey, body });

describe('Redis keys and queues', () => {
  it('builds different keys for the same chat, user and client ids in A and B', () => {
    const k = keyspace('mh');
    for (const build of [
      (t: string) => k.idempotency(t, 'default', 'same-client-id'),
      (t: string) => k.knownStreams(t),
      (t: string) => k.streamEvents(t, 'shared_stream'),
      (t: string) => k.streamLock(t, 'shared_stream'),
      (t: string) => k.rateBucket(t, 'user:u1'),
      (t: string) => k.apiKey(t, 'key_1'),
      (t: string) => tenantQueueName(t, 'heartflow'),
    ]) {
      expect(build('tenant_a')).not.toBe(build('tenant_b'));
    }
    // A tenant id cannot be crafted to reach another tenant's keys (ids are encoded).
    expect(k.knownStreams('a}:{b')).not.toBe(k.knownStreams('a'));
  });

  it('keeps the same client_message_id in A and B apart (no cross-tenant duplicate)', async () => {
    const body = {
      message: 'same ids',
      chat_stream_id: 'shared_stream',
      client_message_id: 'same-client-id',
      sender_info: { user_id: 'u1' },
    };
    const a = await send(keyA, body);
    const b = await send(keyB, body);
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(a.data.duplicate).toBe(false);
    expect(b.data.duplicate).toBe(false);
    expect(b.data.message_id).not.toBe(a.data.message_id);
    expect(b.data.tenant_id).toBe('tenant_b');
  });

  jest.setTimeout(90_000);

  it('keeps A’s and B’s jobs interleaved on the shared connections apart', async () => {
    const sent: { tenant: string; id: string }[] = [];
    for (let i = 0; i < 6; i++) {
      const [key, tenant] = i % 2 === 0 ? [keyA, 'tenant_a'] : [keyB, 'tenant_b'];
      const res = await send(key, {
        message: `interleaved ${tenant} ${i}`,
        chat_stream_id: 'shared_stream',
        sender_info: { user_id: 'u1' },
      });
      expect(res.status).toBe(200);
      sent.push({ tenant, id: res.data.message_id as string });
    }
    await waitFor(async () => {
      const { rows } = await h.t.admin<{ n: number }>(
        `SELECT count(*)::int AS n FROM messages WHERE message_id = ANY($1) AND status NOT IN ('queued', 'processing')`,
        [sent.map((s) => s.id)],
      );
      return rows[0]!.n === sent.length ? true : undefined;
    }, 60_000);
    for (const s of sent) {
      const { rows } = await h.t.admin<{ tenant_id: string; content: string }>(
        `SELECT tenant_id, content FROM messages WHERE message_id = $1`,
        [s.id],
      );
      expect(rows.map((r) => r.tenant_id)).toEqual([s.tenant]);
      expect(rows[0]!.content).toContain(s.tenant);
    }
    // Every bot message answers a message of its own tenant, and quotes nothing of the other.
    const { rows: crossed } = await h.t.admin(
      `SELECT o.tenant_id, o.message_id FROM messages o
        WHERE o.direction = 'out' AND (o.reply_to IS NOT NULL AND NOT EXISTS (
          SELECT 1 FROM messages i WHERE i.tenant_id = o.tenant_id AND i.message_id = o.reply_to)
          OR o.content LIKE '%' || CASE o.tenant_id WHEN 'tenant_a' THEN 'tenant_b' ELSE 'tenant_a' END || '%')`,
    );
    expect(crossed).toEqual([]);
    // Each tenant's status API knows only its own messages.
    for (const s of sent) {
      const other = s.tenant === 'tenant_a' ? keyB : keyA;
      expect((await h.call('GET', `/chat/messages/${s.id}/status`, { apiKey: other })).status).toBe(404);
    }
  });

  it('refuses a job in A’s queue whose payload names B, writing nothing for either', async () => {
    const config = loadConfig({ NODE_ENV: 'test', REDIS_PREFIX: h.prefix });
    const queues = new TenantQueues(h.redis.redis, config.redisPrefix);
    try {
      const forged = heartflowJobData('tenant_b', 'msg_forged_into_a', { content: 'forged by a' });
      await queues.queue('tenant_a', 'heartflow').add('message', forged, { jobId: forged.messageId });
      await queues.announce('tenant_a', 'heartflow');
      const job = await waitFor(async () => {
        const j = await Job.fromId(queues.queue('tenant_a', 'heartflow'), forged.messageId);
        // The reason is read with the job: fetched before the move to failed, it is not there yet.
        return j?.failedReason ? j : undefined;
      }, 60_000);
      expect(job.failedReason).toMatch(/names tenant/);
      expect(await job.getState()).toBe('failed');
      const { rows } = await h.t.admin(
        `SELECT tenant_id FROM messages WHERE message_id = 'msg_forged_into_a'`,
      );
      expect(rows).toEqual([]);
    } finally {
      await queues.close();
    }
  });

  it('refuses the job in the admin API of B and shows it only in A’s failed list', async () => {
    const login = await h.call('POST', '/auth/login', {
      body: { tenant_id: 'tenant_b', username: 'owner', password: 'tenant_b-admin-password' },
    });
    const bearer = login.data.access_token as string;
    const bJobs = await h.call('GET', '/admin/queues/tenant_b/jobs?state=failed', { bearer });
    expect(bJobs.status).toBe(200);
    expect(JSON.stringify(bJobs.data)).not.toContain('msg_forged_into_a');
    const retry = await h.call('POST', '/admin/queues/tenant_b/jobs/msg_forged_into_a/retry', { bearer });
    expect(retry.status).toBe(404);
  });

  it('leaves B unaffected when A has spent its rate limit', async () => {
    const first = await send(keyLimited, { message: 'one', chat_stream_id: 'r1' });
    expect(first.status).toBe(200);
    const second = await send(keyLimited, { message: 'two', chat_stream_id: 'r1' });
    expect(second.status).toBe(429);
    for (let i = 0; i < 5; i++) {
      const b = await send(keyB, { message: `b while r is limited ${i}`, chat_stream_id: 'b_only' });
      expect(b.status).toBe(200);
    }
  });
});
