import { hashPassword } from '../../src/auth/passwords';
import { testEnv } from '../support/env';
import { TcpProxy } from '../support/tcpProxy';
import { startTestApp, type TestApp } from '../support/testApp';

// This file's app reaches the shared PostgreSQL through a proxy of its own, which the tests cut,
// stall and restore; the server itself keeps running for every other test file.
const PASSWORD = 'outage-test-password';
/** What "within a few seconds" means here; the app's own bounds are set below it. */
const BOUND_MS = 5000;

let proxy: TcpProxy;
let app: TestApp;
let token: string;

beforeAll(async () => {
  const server = new URL(testEnv('serverUrl'));
  proxy = await TcpProxy.start({ host: server.hostname, port: Number(server.port || 5432) });
  app = await startTestApp({
    databaseUrl: (url) => proxy.rewrite(url),
    // A stalled server is given up on after at most these bounds (connect, then statement + grace).
    env: { DB_CONNECT_TIMEOUT_MS: '2000', DB_STATEMENT_TIMEOUT_MS: '2000' },
  });
  await app.t.admin(`INSERT INTO tenants (tenant_id, name) VALUES ('acme', 'Acme')`);
  await app.t.admin(
    `INSERT INTO users (tenant_id, username, password_hash, role, status) VALUES ('acme', 'alice', $1, 'tenant_admin', 'active')`,
    [await hashPassword(PASSWORD)],
  );
  token = await app.tokenFor({ role: 'tenant_admin', tenantId: 'acme' });
});
afterAll(async () => {
  await app.close();
  await proxy.close();
});

type Probe = () => Promise<{ status: number; headers: Headers; body: { error?: { code: string } } }>;
const listAgents: Probe = () => app.request('GET', '/agents', { token });
const login: Probe = () =>
  app.request('POST', '/auth/login', { body: { tenant_id: 'acme', username: 'alice', password: PASSWORD } });

async function timed(probe: Probe) {
  const started = Date.now();
  const res = await probe();
  return { res, ms: Date.now() - started };
}

async function expectUnavailable(probe: Probe): Promise<void> {
  const { res, ms } = await timed(probe);
  expect(res.status).toBe(503);
  expect(res.body.error?.code).toBe('SERVICE_UNAVAILABLE');
  expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  expect(ms).toBeLessThan(BOUND_MS);
}

/** `n` requests at once: every one a 503 within the bound. */
async function expectAllUnavailable(probe: Probe, n: number): Promise<void> {
  await Promise.all(Array.from({ length: n }, () => expectUnavailable(probe)));
}

async function expectRecovery(probe: Probe): Promise<void> {
  const deadline = Date.now() + 15_000;
  let last = 0;
  while (Date.now() < deadline) {
    last = (await probe()).status;
    if (last === 200) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(last).toBe(200);
}

describe('requests that need PostgreSQL while it is unreachable', () => {
  it('answer 503 with Retry-After at once when the connection is cut, and recover by themselves', async () => {
    expect((await listAgents()).status).toBe(200);
    expect((await login()).status).toBe(200);
    expect(proxy.connections).toBeGreaterThan(0);

    await proxy.cut();
    await expectUnavailable(listAgents);
    // Not a 401: the password was never checked, and the attempt does not count as a failure.
    await expectUnavailable(login);
    await expectUnavailable(() => app.request('GET', '/agents/default', { token }));
    const health = await app.request('GET', '/health');
    expect(health.status).toBe(503);
    expect(health.body.error?.details).toMatchObject({
      components: { database: 'unhealthy', redis: 'healthy' },
    });
    // Several at once neither hang nor exhaust anything.
    await expectAllUnavailable(listAgents, 10);

    await proxy.restore();
    await expectRecovery(listAgents);
    expect((await login()).status).toBe(200);
    expect((await app.request('GET', '/health')).status).toBe(200);
  }, 60_000);

  it('do not include sending with an API key: the send path reads nothing from PostgreSQL', async () => {
    const key = await app.request('POST', '/auth/api-keys', {
      token,
      body: { name: 'adapter', role: 'agent', agent_id: 'default' },
    });
    expect(key.status).toBe(201);
    const apiKey = key.body.data.api_key as string;
    const send = () =>
      app.request('POST', '/chat/send', { apiKey, body: { message: '你好', chat_stream_id: 'outage-1' } });
    // The first send reads the key and the agent (and caches them); later ones need only Redis.
    expect((await send()).status).toBe(200);

    await proxy.cut();
    try {
      const res = await send();
      expect(res.status).toBe(200);
      expect(res.body.data).toMatchObject({ status: 'queued', duplicate: false });
      // What does need PostgreSQL still says so.
      await expectUnavailable(listAgents);
    } finally {
      await proxy.restore();
    }
    await expectRecovery(listAgents);
  }, 60_000);

  it('answer 503 within a bounded time when PostgreSQL accepts connections but never answers', async () => {
    // Pooled connections exist (from the requests above) and new ones would be accepted: both hang.
    expect((await listAgents()).status).toBe(200);
    proxy.stall();
    await expectUnavailable(listAgents);
    await expectUnavailable(login);
    await expectAllUnavailable(listAgents, 5);

    await proxy.restore();
    await expectRecovery(listAgents);
    expect((await login()).status).toBe(200);
  }, 60_000);
});
