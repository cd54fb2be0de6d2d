/**
 * Context forgery and 权限验证: the tenant and agent come from the credential only. B's tenant
 * named in a header, a query or a body, an agent credential naming another agent, and an update
 * that would move a row to B are refused with nothing written; each role can do only what API.md
 * gives it.
 */
import { codeOf, snapshotTenant, startWorld, type World, WORLD_TIMEOUT_MS } from './support/twoTenants';

let w: World;
let beforeA: string;
let beforeB: string;

beforeAll(async () => {
  w = await startWorld();
  beforeA = await snapshotTenant(w.app, 'tenant_a');
  beforeB = await snapshotTenant(w.app, 'tenant_b');
}, WORLD_TIMEOUT_MS);
afterAll(async () => {
  await w.app.close();
});

async function unchanged() {
  expect(await snapshotTenant(w.app, 'tenant_b')).toBe(beforeB);
  expect(await snapshotTenant(w.app, 'tenant_a')).toBe(beforeA);
}

describe('context forgery', () => {
  it.each<[string, string, unknown]>([
    ['GET', '/agents', undefined],
    ['GET', '/memory/search?query=likes', undefined],
    ['POST', '/chat/send', { message: 'hi', chat_stream_id: 'b_stream', platform: 'qq' }],
    ['POST', '/memory/store', { content: 'planted', memory_type: 'fact' }],
    ['PUT', '/config', { category: 'heartflow', scope: 'tenant', config: { talk_value: 0.1 } }],
  ])(
    'refuses X-Tenant-ID naming B on %s %s (403 ISOLATION_VIOLATION, nothing written)',
    async (method, path, body) => {
      const res = await w.app.request(method, path, {
        token: w.A.tokens.tenant_admin,
        headers: { 'x-tenant-id': 'tenant_b' },
        body,
      });
      expect(res.status).toBe(403);
      expect(codeOf(res)).toBe('ISOLATION_VIOLATION');
      await unchanged();
      expect(await w.app.deps.queues.waitingCount('tenant_b')).toBe(1);
    },
  );

  it.each<[string, string, unknown]>([
    ['POST', '/memory/store', { content: 'planted', memory_type: 'fact', tenant_id: 'tenant_b' }],
    ['POST', '/agents', { agent_id: 'planted', name: 'x', tenant_id: 'tenant_b' }],
    [
      'POST',
      '/chat/streams',
      { chat_stream_id: 'planted', platform: 'qq', chat_type: 'group', tenant_id: 'tenant_b' },
    ],
    [
      'PUT',
      '/config',
      { category: 'heartflow', scope: 'tenant', config: { talk_value: 0.1 }, tenant_id: 'tenant_b' },
    ],
    [
      'POST',
      '/emoji/packs',
      { pack_id: 'planted', name: 'x', emojis: [{ emoji: '😀' }], tenant_id: 'tenant_b' },
    ],
  ])("refuses B's tenant_id in the body of %s %s, writing nothing", async (method, path, body) => {
    const res = await w.app.request(method, path, { token: w.A.tokens.tenant_admin, body });
    expect(res.status).toBe(403);
    expect(codeOf(res)).toBe('ISOLATION_VIOLATION');
    await unchanged();
  });

  it.each([
    '/memory/search?query=x&tenant_id=tenant_b',
    '/stats/usage?tenant_id=tenant_b',
    '/emoji/packs?tenant_id=tenant_b',
  ])("refuses B's tenant_id in the query of GET %s", async (path) => {
    const res = await w.app.request('GET', path, { token: w.A.tokens.tenant_admin });
    expect(res.status).toBe(403);
    expect(codeOf(res)).toBe('ISOLATION_VIOLATION');
  });

  it('refuses an update that would move A’s memory or agent to B, writing nothing', async () => {
    const token = w.A.tokens.tenant_admin;
    const memory = await w.app.request('PUT', `/memory/${w.A.memory}`, {
      token,
      body: { content: 'moved', tenant_id: 'tenant_b' },
    });
    expect(memory.status).toBe(403);
    const agent = await w.app.request('PUT', `/agents/${w.A.agent}`, {
      token,
      body: { name: 'moved', tenant_id: 'tenant_b' },
    });
    expect(agent.status).toBe(403);
    const tenant = await w.app.request('PUT', '/tenants/tenant_a', {
      token,
      body: { name: 'moved', tenant_id: 'tenant_b' },
    });
    expect(tenant.status).toBeGreaterThanOrEqual(400);
    expect(tenant.status).toBeLessThan(500);
    await unchanged();
  });

  it('refuses an agent key naming another agent: header, body and query', async () => {
    const apiKey = w.A.agentKey;
    const header = await w.app.request('POST', '/chat/send', {
      apiKey,
      headers: { 'x-agent-id': 'default' },
      body: { message: 'hi', chat_stream_id: 'c9', platform: 'qq' },
    });
    expect(header.status).toBe(403);
    expect(codeOf(header)).toBe('ISOLATION_VIOLATION');
    const body = await w.app.request('POST', '/memory/store', {
      apiKey,
      body: { content: 'x', memory_type: 'fact', agent_id: 'default' },
    });
    expect(body.status).toBe(403);
    const query = await w.app.request('GET', '/memory/search?query=x&agent_id=default', { apiKey });
    expect(query.status).toBe(403);
    expect(codeOf(query)).toBe('ISOLATION_VIOLATION');
    await unchanged();
  });

  it('refuses an agent-bound token naming another agent, and B’s agent', async () => {
    const token = w.A.tokens.agent;
    for (const agentId of ['default', w.B.agent]) {
      const res = await w.app.request('POST', '/chat/send', {
        token,
        body: { message: 'hi', chat_stream_id: 'c9', platform: 'qq', agent_id: agentId },
      });
      expect(res.status).toBe(403);
      expect(codeOf(res)).toBe('ISOLATION_VIOLATION');
    }
    expect(await w.app.deps.queues.waitingCount('tenant_a')).toBe(1);
  });

  it.each([
    '/agents?debug=1',
    '/memory/search?query=x&sql=1',
    '/chat/streams?order_by=tenant_id',
    '/stats/usage?period=30d&tenant=tenant_b',
    `/chat/messages/msg_x/status?include=all`,
  ])('refuses an unknown query parameter: GET %s → 400', async (path) => {
    const res = await w.app.request('GET', path, { token: w.A.tokens.tenant_admin });
    expect(res.status).toBe(400);
    expect(codeOf(res)).toBe('VALIDATION_ERROR');
  });

  it('refuses unknown body fields like unknown query parameters', async () => {
    const res = await w.app.request('POST', '/chat/streams', {
      token: w.A.tokens.tenant_admin,
      body: { chat_stream_id: 'u1', platform: 'qq', chat_type: 'group', owner_tenant: 'tenant_b' },
    });
    expect(res.status).toBe(400);
    await unchanged();
  });

  it('lets a platform admin act in B through X-Tenant-ID (the control)', async () => {
    const res = await w.app.request('GET', '/agents', {
      token: w.platformAdmin,
      headers: { 'x-tenant-id': 'tenant_b' },
    });
    expect(res.status).toBe(200);
    expect(JSON.stringify(res.body)).toContain(w.B.agent);
    expect(JSON.stringify(res.body)).not.toContain(w.A.agent);
  });
});

describe('roles (权限验证)', () => {
  const writes: [string, string, unknown][] = [
    ['POST', '/agents', { agent_id: 'r1', name: 'x' }],
    ['PUT', '/agents/a_bot', { name: 'renamed' }],
    ['DELETE', '/agents/a_bot', undefined],
    ['POST', '/auth/api-keys', { name: 'x', role: 'tenant_admin' }],
    ['POST', '/tenants/tenant_a/users', { username: 'r2', password: 'long enough pw', role: 'tenant_admin' }],
    ['PUT', '/config', { category: 'heartflow', scope: 'tenant', config: { talk_value: 0.2 } }],
    ['POST', '/emoji/packs', { pack_id: 'r3', name: 'x', emojis: [{ emoji: '😀' }] }],
    ['POST', '/plugins/install', { plugin_id: 'dice', permissions: [] }],
  ];

  it.each(writes)('forbids a reader %s %s (403 FORBIDDEN, nothing written)', async (method, path, body) => {
    const res = await w.app.request(method, path, { token: w.A.tokens.reader, body });
    expect(res.status).toBe(403);
    expect(codeOf(res)).toBe('FORBIDDEN');
    await unchanged();
  });

  it.each(writes)('forbids an agent key %s %s', async (method, path, body) => {
    const res = await w.app.request(method, path, { apiKey: w.A.agentKey, body });
    expect(res.status).toBe(403);
    await unchanged();
  });

  it('forbids a reader API key to send or to manage queues', async () => {
    const send = await w.app.request('POST', '/chat/send', {
      apiKey: w.A.readerKey,
      body: { message: 'x', chat_stream_id: 'c1' },
    });
    expect(send.status).toBe(403);
    const pause = await w.app.request('POST', '/admin/queues/tenant_a/pause', { apiKey: w.A.readerKey });
    expect(pause.status).toBe(403);
    expect(await w.app.deps.queues.waitingCount('tenant_a')).toBe(1);
  });

  it('forbids an operator to create agents, keys and users', async () => {
    for (const [method, path, body] of writes.slice(0, 5)) {
      const res = await w.app.request(method, path, { token: w.A.tokens.operator, body });
      expect(res.status).toBe(403);
    }
    await unchanged();
  });

  it.each<[string, string, unknown]>([
    ['GET', '/tenants', undefined],
    ['POST', '/tenants', { tenant_id: 'evil', name: 'x' }],
    ['DELETE', '/tenants/tenant_b', undefined],
    ['DELETE', '/tenants/tenant_a', undefined],
    ['GET', '/stats/tenants', undefined],
  ])('keeps platform-admin routes from a tenant admin: %s %s', async (method, path, body) => {
    const res = await w.app.request(method, path, { token: w.A.tokens.tenant_admin, body });
    expect([403, 404]).toContain(res.status);
    await unchanged();
  });

  it('shows a tenant admin only its own tenant in GET /admin/queues', async () => {
    const res = await w.app.request('GET', '/admin/queues', { token: w.A.tokens.tenant_admin });
    expect(res.status).toBe(200);
    expect(JSON.stringify(res.body)).toContain('tenant_a');
    expect(JSON.stringify(res.body)).not.toContain('tenant_b');
  });

  it('lets a tenant admin rename its tenant but not change its settings', async () => {
    const res = await w.app.request('PUT', '/tenants/tenant_a', {
      token: w.A.tokens.tenant_admin,
      body: { settings: { max_agents: 100000 } },
    });
    expect(res.status).toBe(403);
    await unchanged();
  });

  it('keeps /metrics from tenant credentials', async () => {
    const res = await fetch(`${w.app.url}/api/v1/metrics`, {
      headers: { authorization: `Bearer ${w.A.tokens.tenant_admin}` },
    });
    expect([401, 403]).toContain(res.status);
    await res.text();
  });
});
