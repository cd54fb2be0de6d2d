/**
 * 越权访问防护 / 租户数据隔离 over HTTP: every kind of B's object named with A's credentials is
 * answered exactly like an id that does not exist, on read, update and delete, and B's rows are
 * unchanged afterwards (compared as the owner). Lists filtered by B's names come back empty,
 * batches that mix ids touch only A's, and A cannot create rows that point at B's.
 */
import { codeOf, snapshotTenant, startWorld, type World, WORLD_TIMEOUT_MS } from './support/twoTenants';

let w: World;
let before: string;

beforeAll(async () => {
  w = await startWorld();
  before = await snapshotTenant(w.app, 'tenant_b');
}, WORLD_TIMEOUT_MS);
afterAll(async () => {
  await w.app.close();
});

/** The request, with B's id and then with an id nobody has: both 404 with the same code. */
async function asMissing(method: string, path: (id: string) => string, bId: string, body?: unknown) {
  const token = w.A.tokens.tenant_admin;
  const foreign = await w.app.request(method, path(bId), { token, body });
  const random = await w.app.request(method, path(bId.replace(/^([a-z_]*?)b/, '$1zz')), { token, body });
  return { foreign: foreign.status, random: random.status, sameCode: codeOf(foreign) === codeOf(random) };
}
const MISSING = { foreign: 404, random: 404, sameCode: true };

describe("B's objects named with A's credentials", () => {
  it("answers 404 for B's message and its status, like an unknown id", async () => {
    expect(await asMissing('GET', (id) => `/chat/messages/${id}`, w.B.message)).toEqual(MISSING);
    expect(await asMissing('GET', (id) => `/chat/messages/${id}/status`, w.B.message)).toEqual(MISSING);
    expect(await asMissing('GET', (id) => `/chat/messages/${id}/status`, w.B.failedMessage)).toEqual(MISSING);
  });

  it("answers 404 for B's chat stream: read, history, events and delete", async () => {
    expect(await asMissing('GET', (id) => `/chat/streams/${id}`, w.B.stream)).toEqual(MISSING);
    expect(await asMissing('GET', (id) => `/chat/${id}/messages`, w.B.stream)).toEqual(MISSING);
    expect(await asMissing('GET', (id) => `/chat/streams/${id}/events`, w.B.stream)).toEqual(MISSING);
    expect(await asMissing('DELETE', (id) => `/chat/streams/${id}`, w.B.stream)).toEqual(MISSING);
  });

  it("answers 404 for B's memory on read, update and delete", async () => {
    expect(await asMissing('GET', (id) => `/memory/${id}`, w.B.memory)).toEqual(MISSING);
    expect(
      await asMissing('PUT', (id) => `/memory/${id}`, w.B.memory, { content: 'overwritten by A' }),
    ).toEqual(MISSING);
    expect(await asMissing('DELETE', (id) => `/memory/${id}`, w.B.memory)).toEqual(MISSING);
  });

  it("answers 404 for B's agent on read, update, delete and its config", async () => {
    expect(await asMissing('GET', (id) => `/agents/${id}`, w.B.agent)).toEqual(MISSING);
    expect(await asMissing('PUT', (id) => `/agents/${id}`, w.B.agent, { name: 'hijacked' })).toEqual(MISSING);
    expect(await asMissing('GET', (id) => `/agents/${id}/config`, w.B.agent)).toEqual(MISSING);
    expect(
      await asMissing('PUT', (id) => `/agents/${id}/config`, w.B.agent, { persona: 'hijacked' }),
    ).toEqual(MISSING);
    expect(await asMissing('DELETE', (id) => `/agents/${id}`, w.B.agent)).toEqual(MISSING);
  });

  it("answers 404 for B's API key on revoke, and the key keeps working", async () => {
    expect(await asMissing('DELETE', (id) => `/auth/api-keys/${id}`, w.B.agentKeyId)).toEqual(MISSING);
    const me = await w.app.request('GET', '/auth/me', { apiKey: w.B.agentKey });
    expect(me.status).toBe(200);
  });

  it("answers 404 for B's emoji pack on read and delete", async () => {
    expect(await asMissing('GET', (id) => `/emoji/packs/${id}`, w.B.pack)).toEqual(MISSING);
    expect(await asMissing('DELETE', (id) => `/emoji/packs/${id}`, w.B.pack)).toEqual(MISSING);
  });

  it("answers 404 for B's job retried through A's queue", async () => {
    const res = await w.app.request('POST', `/admin/queues/tenant_a/jobs/${w.B.job}/retry`, {
      token: w.A.tokens.tenant_admin,
    });
    expect(res.status).toBe(404);
    expect(await w.app.deps.queues.waitingCount('tenant_b')).toBe(1);
  });

  it("answers 404 for B's chat stream in every heartflow route", async () => {
    expect(await asMissing('GET', (id) => `/heartflow/status/${id}`, w.B.stream)).toEqual(MISSING);
    expect(await asMissing('GET', (id) => `/heartflow/config/${id}`, w.B.stream)).toEqual(MISSING);
    expect(
      await asMissing('PUT', (id) => `/heartflow/config/${id}`, w.B.stream, { talk_value: 0.9 }),
    ).toEqual(MISSING);
    expect(await asMissing('GET', (id) => `/heartflow/analysis/${id}`, w.B.stream)).toEqual(MISSING);
    expect(await asMissing('POST', (id) => `/heartflow/reset/${id}`, w.B.stream)).toEqual(MISSING);
  });

  it.each<[string, string, unknown]>([
    ['GET', '/tenants/tenant_b', undefined],
    ['PUT', '/tenants/tenant_b', { name: 'hijacked' }],
    ['GET', '/tenants/tenant_b/statistics', undefined],
    ['GET', '/tenants/tenant_b/users', undefined],
    [
      'POST',
      '/tenants/tenant_b/users',
      { username: 'mole', password: 'long enough pw', role: 'tenant_admin' },
    ],
    ['GET', '/admin/queues/tenant_b', undefined],
    ['GET', '/admin/queues/tenant_b/jobs?state=waiting', undefined],
    ['POST', '/admin/queues/tenant_b/pause', undefined],
    ['POST', '/admin/queues/tenant_b/retry-failed', undefined],
    ['DELETE', '/admin/queues/tenant_b/jobs?state=completed&older_than_ms=0', undefined],
    ['PUT', '/admin/tenants/tenant_b/scheduling', { weight: 100 }],
  ])("refuses A's admin on %s %s (B's tenant in the path)", async (method, path, body) => {
    const res = await w.app.request(method, path, { token: w.A.tokens.tenant_admin, body });
    expect([403, 404]).toContain(res.status);
    expect(JSON.stringify(res.body)).not.toContain('Tenant B');
  });

  it('leaves every row of B unchanged after all of the above (checked as the owner)', async () => {
    expect(await snapshotTenant(w.app, 'tenant_b')).toBe(before);
    expect(await w.app.deps.queues.waitingCount('tenant_b')).toBe(1);
  });
});

describe('lists filtered by B’s names', () => {
  it("returns no streams for B's agent or B-only platform names", async () => {
    const token = w.A.tokens.tenant_admin;
    const byAgent = await w.app.request('GET', `/chat/streams?agent_id=${w.B.agent}`, { token });
    expect(byAgent.status).toBe(200);
    expect(byAgent.body.data.chat_streams).toEqual([]);
    const all = await w.app.request('GET', '/chat/streams?limit=100', { token });
    const ids = (all.body.data.chat_streams as { chat_stream_id: string }[]).map((s) => s.chat_stream_id);
    expect(ids).not.toContain(w.B.stream);
    expect(ids).toContain(w.A.stream);
  });

  it("returns no memories for B's agent, B's stream, or a search for B's words", async () => {
    const token = w.A.tokens.tenant_admin;
    const agent = await w.app.request('GET', `/memory/agent/${w.B.agent}`, { token });
    expect(JSON.stringify(agent.body)).not.toContain(w.B.memory);
    expect([200, 404]).toContain(agent.status);
    const chat = await w.app.request('GET', `/memory/chat/${w.B.stream}`, { token });
    expect(JSON.stringify(chat.body)).not.toContain(w.B.memory);
    const platform = await w.app.request('GET', `/memory/platform/qq`, { token });
    expect(platform.status).toBe(200);
    expect(JSON.stringify(platform.body)).not.toContain(w.B.memory);
    const search = await w.app.request('GET', `/memory/search?query=tenant_b`, { token });
    expect(search.status).toBe(200);
    // Fuzzy search may rank A's own memories; never one of B's.
    expect(JSON.stringify(search.body)).not.toContain(w.B.memory);
    expect(JSON.stringify(search.body)).not.toContain('tenant_b likes');
    const searchAgent = await w.app.request('GET', `/memory/search?query=likes&agent_id=${w.B.agent}`, {
      token,
    });
    expect(JSON.stringify(searchAgent.body)).not.toContain(w.B.memory);
  });

  it('lists only A’s agents, keys, users, packs and jobs', async () => {
    const token = w.A.tokens.tenant_admin;
    const bodies = await Promise.all(
      [
        '/agents?limit=100',
        '/auth/api-keys',
        '/tenants/tenant_a/users',
        '/emoji/packs',
        '/admin/queues/tenant_a/jobs?state=waiting',
      ].map(async (path) => {
        const res = await w.app.request('GET', path, { token });
        expect(res.status).toBe(200);
        return JSON.stringify(res.body);
      }),
    );
    for (const text of bodies) {
      expect(text).not.toMatch(/tenant_b|b_bot|b_admin|b_pack|b_reader|b_stream/);
    }
    expect(bodies.join()).toContain(w.A.agent);
  });
});

describe('batches and references', () => {
  it("touches only A's rows when a batch mixes A's and B's ids", async () => {
    const res = await w.app.request('POST', '/chat/send/batch', {
      apiKey: w.A.agentKey,
      body: {
        messages: [
          { message: 'mine', chat_stream_id: w.A.stream, platform: 'qq' },
          { message: 'theirs', chat_stream_id: w.B.stream, platform: 'qq', agent_id: w.B.agent },
          { message: 'theirs too', chat_stream_id: w.B.stream, platform: 'qq', tenant_id: 'tenant_b' },
        ],
      },
    });
    expect(res.status).toBe(200);
    const results = res.body.data.results as { success: boolean; data?: { tenant_id: string } }[];
    expect(results.map((r) => [r.success, r.data?.tenant_id])).toEqual([
      [true, 'tenant_a'],
      [false, undefined],
      [false, undefined],
    ]);
    expect(await w.app.deps.queues.waitingCount('tenant_b')).toBe(1);
    expect(await snapshotTenant(w.app, 'tenant_b')).toBe(before);
  });

  it.each([
    [
      'a chat stream for B’s agent',
      'POST',
      '/chat/streams',
      { chat_stream_id: 'x1', platform: 'qq', chat_type: 'group', agent_id: 'b_bot' },
    ],
    [
      'a memory of B’s agent',
      'POST',
      '/memory/store',
      { content: 'x', memory_type: 'fact', agent_id: 'b_bot' },
    ],
    [
      'an API key bound to B’s agent',
      'POST',
      '/auth/api-keys',
      { name: 'x', role: 'agent', agent_id: 'b_bot' },
    ],
    ['an emoji sent into B’s stream', 'POST', '/emoji/send', { chat_stream_id: 'b_stream', emoji: '😀' }],
    [
      'a config entry for B’s agent',
      'PUT',
      '/config',
      { category: 'heartflow', scope: 'agent', agent_id: 'b_bot', config: { talk_value: 0.5 } },
    ],
    [
      'a message to B’s agent',
      'POST',
      '/chat/send',
      { message: 'x', agent_id: 'b_bot', chat_stream_id: 'x2', platform: 'qq' },
    ],
  ])('refuses to create %s, writing nothing', async (_what, method, path, body) => {
    const a = await snapshotTenant(w.app, 'tenant_a');
    const res = await w.app.request(method, path, { token: w.A.tokens.tenant_admin, body });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(await snapshotTenant(w.app, 'tenant_a')).toBe(a);
    expect(await snapshotTenant(w.app, 'tenant_b')).toBe(before);
  });
});
