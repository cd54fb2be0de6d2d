import { Redis } from 'ioredis';

import { createLogger } from '../../src/logger';
import { type PrivateServer, startPrivateRedis } from '../../src/services/privateServers';
import { startTestApp, type TestApp } from '../support/testApp';

// This file's app talks to a Redis of its own, which the tests stop and start again.
const logger = createLogger({ level: 'silent' });
let redis: PrivateServer;
let app: TestApp;
let token: string;

beforeAll(async () => {
  redis = await startPrivateRedis({ logger });
  app = await startTestApp({ env: { LEGACY_ANONYMOUS: 'true' }, redisUrl: redis.url });
  token = await app.tokenFor({ role: 'tenant_admin', tenantId: 'default' });
});
afterAll(async () => {
  await app.close();
  await redis.stop();
});

async function timedSend(options: { token?: string } = {}) {
  const started = Date.now();
  const res = await app.request('POST', '/chat/send', { body: { message: 'are you there?' }, ...options });
  return { res, ms: Date.now() - started };
}

describe('chat send while Redis is down', () => {
  it('answers 503 with Retry-After quickly and recovers when Redis is back', async () => {
    expect((await timedSend()).res.status).toBe(200);

    await redis.stop();
    for (const options of [{}, { token }]) {
      const { res, ms } = await timedSend(options);
      expect(res.status).toBe(503);
      expect(res.body.error?.code).toBe('SERVICE_UNAVAILABLE');
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(ms).toBeLessThan(5000);
    }
    const status = await app.request('GET', '/chat/messages/msg_none/status', { token });
    expect(status.status).toBe(503);

    redis = await startPrivateRedis({ logger, port: redis.port });
    const deadline = Date.now() + 15_000;
    let last = 0;
    while (Date.now() < deadline) {
      last = (await timedSend({ token })).res.status;
      if (last === 200) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(last).toBe(200);
    const sent = await timedSend();
    expect(sent.res.body.data).toMatchObject({ tenant_id: 'default', status: 'queued' });
  }, 40_000);

  it('answers 503 within the send budget when Redis accepts connections but does not answer', async () => {
    const admin = new Redis(redis.url);
    await admin.call('CLIENT', 'PAUSE', '5000', 'ALL');
    admin.disconnect();
    const { res, ms } = await timedSend({ token });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).not.toBeNull();
    expect(ms).toBeLessThan(5000);
    // Once the pause ends, the same connection serves sends again.
    await new Promise((r) => setTimeout(r, Math.max(0, 5200 - ms)));
    expect((await timedSend({ token })).res.status).toBe(200);
  }, 20_000);
});
