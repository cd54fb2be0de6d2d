/**
 * A whole MaiHive process composed as `npm start` runs it (`startRuntime`, role `all`: API and
 * workers), on a test file's own database and Redis prefix, driven over HTTP like a user would.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { loadConfig } from '../../src/config';
import { createLogger, type Logger } from '../../src/logger';
import { type Runtime, startRuntime } from '../../src/runtime';
import { testEnv } from './env';
import { createTestDatabase, createTestRedis, type TestDatabase } from './testDatabase';

export const HARNESS_ADMIN = { username: 'root', password: 'runtime-harness-root-password' };

export interface RuntimeHarness {
  runtime: Runtime;
  t: TestDatabase;
  redis: ReturnType<typeof createTestRedis>;
  /** The Redis key prefix the runtime uses (`REDIS_PREFIX`). */
  prefix: string;
  call(
    method: string,
    urlPath: string,
    o?: { body?: unknown; bearer?: string; apiKey?: string },
  ): Promise<{ status: number; data: Record<string, unknown> }>;
  /** The bootstrap platform admin's access token. */
  adminBearer(): Promise<string>;
  /** A tenant with its own admin, and an agent API key for its `default` agent (what adapters use). */
  tenantWithKey(tenantId: string, settings?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

/**
 * `redisUrl`: another Redis than the test server's (e.g. a private Redis Cluster); `logger`: the
 * runtime's logger (default silent, or HARNESS_LOG_LEVEL), e.g. one a test reads errors back from.
 */
export async function startRuntimeHarness(
  options: { redisUrl?: string; logger?: Logger } = {},
): Promise<RuntimeHarness> {
  const t = await createTestDatabase();
  const redis = createTestRedis(options.redisUrl);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'maihive-runtime-'));
  const prefix = redis.appPrefix;
  const config = loadConfig({
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_ADMIN_URL: t.adminUrl,
    MAIHIVE_APP_ROLE: testEnv('appRole'),
    REDIS_URL: redis.url,
    REDIS_PREFIX: prefix,
    JWT_SECRET: 'runtime-harness-jwt-secret-0123456789',
    MAIHIVE_SECRET_KEY: 'runtime-harness-server-key-0123456789',
    MAIHIVE_BOOTSTRAP_ADMIN: `${HARNESS_ADMIN.username}:${HARNESS_ADMIN.password}`,
    MAIHIVE_DATA_DIR: dataDir,
    MAIHIVE_AUTOSTART: 'false',
    LOG_LEVEL: 'silent',
    // Jest on a busy machine stalls event loops: that must not shed the tests' own requests.
    INGRESS_MAX_LOOP_DELAY_MS: '60000',
  });
  // HARNESS_LOG_LEVEL=warn (or error, …) shows the runtime's log while debugging a test.
  const level = (process.env.HARNESS_LOG_LEVEL ?? 'silent') as 'silent';
  const runtime = await startRuntime(config, options.logger ?? createLogger({ level }), 'all');

  const call: RuntimeHarness['call'] = async (method, urlPath, o = {}) => {
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
  };
  const adminBearer = async () =>
    (await call('POST', '/auth/login', { body: HARNESS_ADMIN })).data.access_token as string;

  return {
    runtime,
    t,
    redis,
    prefix,
    call,
    adminBearer,
    async tenantWithKey(tenantId, settings = {}) {
      const password = `${tenantId}-admin-password`;
      const created = await call('POST', '/tenants', {
        bearer: await adminBearer(),
        body: { tenant_id: tenantId, name: tenantId, settings, admin: { username: 'owner', password } },
      });
      if (created.status !== 201) throw new Error(`creating tenant ${tenantId}: ${created.status}`);
      const login = await call('POST', '/auth/login', {
        body: { tenant_id: tenantId, username: 'owner', password },
      });
      const key = await call('POST', '/auth/api-keys', {
        bearer: login.data.access_token as string,
        body: { name: 'adapter', role: 'agent', agent_id: 'default' },
      });
      if (key.status !== 201) throw new Error(`creating an API key for ${tenantId}: ${key.status}`);
      return key.data.api_key as string;
    },
    async close() {
      await runtime.close();
      await redis.close();
      await t.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
