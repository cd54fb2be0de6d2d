/**
 * The core promise, end to end, in one process composed as `npm start` runs it (`startRuntime`,
 * role `all`: the API and the workers together, over HTTP): while one tenant's flood waits in
 * its queue, a quiet tenant's message is answered. Order-based, not timed: the quiet tenant is
 * answered while most of the flood is still unanswered, which a first-come-first-served system
 * could not do (it would answer the flood's 2,000 messages first).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { type Runtime, startRuntime } from '../../src/runtime';
import { testEnv } from '../support/env';
import { createTestDatabase, createTestRedis, type TestDatabase } from '../support/testDatabase';

const FLOOD = 2000;
const ADMIN = { username: 'root', password: 'noisy-neighbour-root-password' };

let t: TestDatabase;
let redis: ReturnType<typeof createTestRedis>;
let runtime: Runtime;
let dataDir: string;

async function call(
  method: string,
  urlPath: string,
  o: { body?: unknown; bearer?: string; apiKey?: string } = {},
): Promise<{ status: number; data: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  if (o.body !== undefined) headers['content-type'] = 'application/json';
  if (o.bearer) headers.authorization = `Bearer ${o.bearer}`;
  if (o.apiKey) headers['x-api-key'] = o.apiKey;
  const res = await fetch(`${runtime.url}/api/v1${urlPath}`, {
    method,
    headers,
    ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }),
  });
  const json = (await res.json()) as { data: Record<string, unknown> };
  return { status: res.status, data: json.data };
}

/** A tenant with its own admin, and an agent API key for its `default` agent (what adapters use). */
async function tenantWithKey(bearer: string, tenantId: string, settings: Record<string, unknown> = {}) {
  const password = `${tenantId}-admin-password`;
  const created = await call('POST', '/tenants', {
    bearer,
    body: { tenant_id: tenantId, name: tenantId, settings, admin: { username: 'owner', password } },
  });
  expect(created.status).toBe(201);
  const login = await call('POST', '/auth/login', {
    body: { tenant_id: tenantId, username: 'owner', password },
  });
  const key = await call('POST', '/auth/api-keys', {
    bearer: login.data.access_token as string,
    body: { name: 'adapter', role: 'agent', agent_id: 'default' },
  });
  expect(key.status).toBe(201);
  return key.data.api_key as string;
}

beforeAll(async () => {
  t = await createTestDatabase();
  redis = createTestRedis();
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'maihive-noisy-'));
  const config = loadConfig({
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_ADMIN_URL: t.adminUrl,
    MAIHIVE_APP_ROLE: testEnv('appRole'),
    REDIS_URL: redis.url,
    REDIS_PREFIX: redis.prefix.replace(/:$/, '').replace(/:/g, '.'),
    JWT_SECRET: 'noisy-neighbour-jwt-secret-0123456789',
    MAIHIVE_SECRET_KEY: 'noisy-neighbour-server-key-0123456789',
    MAIHIVE_BOOTSTRAP_ADMIN: `${ADMIN.username}:${ADMIN.password}`,
    MAIHIVE_DATA_DIR: dataDir,
    MAIHIVE_AUTOSTART: 'false',
    LOG_LEVEL: 'silent',
    // What is under test is the order of work, not the ingress shedding a stalled jest process.
    INGRESS_MAX_LOOP_DELAY_MS: '60000',
  });
  runtime = await startRuntime(config, createLogger({ level: 'silent' }), 'all');
}, 60_000);

afterAll(async () => {
  await runtime?.close();
  await redis.close();
  await t.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('a quiet tenant next to a flood, in one npm-start process', () => {
  it('is answered while most of the flood is still waiting', async () => {
    const admin = await call('POST', '/auth/login', { body: ADMIN });
    const bearer = admin.data.access_token as string;
    // The flood may send as fast as it likes: only the scheduler stands between it and the quiet tenant.
    const noisyKey = await tenantWithKey(bearer, 'noisy', {
      rate_limit_per_second: 1_000_000,
      credential_rate_limit_per_second: 1_000_000,
    });
    const quietKey = await tenantWithKey(bearer, 'quiet');

    // The whole flood is queued before any of it runs, then let loose.
    expect((await call('POST', '/admin/queues/noisy/pause', { bearer })).status).toBe(200);
    for (let b = 0; b < FLOOD / 100; b++) {
      const messages = Array.from({ length: 100 }, (_, i) => ({
        message: `@麦麦 刷屏 ${b}-${i}`,
        chat_stream_id: `flood-${i % 20}`,
        platform: 'qq',
      }));
      const batch = await call('POST', '/chat/send/batch', { apiKey: noisyKey, body: { messages } });
      const results = batch.data.results as { success: boolean }[];
      expect(results.every((r) => r.success)).toBe(true);
    }
    expect((await call('POST', '/admin/queues/noisy/resume', { bearer })).status).toBe(200);

    const quiet = await call('POST', '/chat/send?wait=20000', {
      apiKey: quietKey,
      body: { message: '@麦麦 今天吃什么', chat_stream_id: 'quiet-1', platform: 'qq' },
    });
    expect(quiet.status).toBe(200);
    expect(quiet.data.status).toBe('replied');

    const { rows } = await t.admin<{ n: number }>(
      `SELECT count(*)::int AS n FROM messages
        WHERE tenant_id = 'noisy' AND direction = 'in' AND status IN ('replied', 'no_reply', 'failed')`,
    );
    expect(rows[0]!.n).toBeLessThan(FLOOD / 2);
  }, 120_000);
});
