import { created } from '../support/fixtures';
import { startTestApp, type TestApp } from '../support/testApp';

let app: TestApp;
let platformAdmin: string;
let acmeAdmin: string;

beforeAll(async () => {
  app = await startTestApp();
  platformAdmin = await app.tokenFor({ role: 'platform_admin' });
  for (const [tenantId, settings] of [
    ['acme', { allowed_platforms: ['qq', 'discord'] }],
    ['other', {}],
    ['small', { max_chat_streams: 2 }],
  ] as const) {
    created(
      await app.request('POST', '/tenants', {
        token: platformAdmin,
        body: { tenant_id: tenantId, name: tenantId, settings },
      }),
    );
  }
  await app.t.admin(
    `INSERT INTO agents (tenant_id, agent_id, name) VALUES ('acme', 'bot1', 'b1'), ('acme', 'bot2', 'b2'), ('other', 'bot1', 'b1')`,
  );
  await app.t.admin(
    `INSERT INTO chat_streams (tenant_id, chat_stream_id, agent_id, platform) VALUES ('other', 'other_chat', 'bot1', 'qq')`,
  );
  acmeAdmin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'acme' });
});
afterAll(async () => {
  await app.close();
});

function fieldsOf(res: {
  body: { error?: { details?: Record<string, unknown> } };
}): { path: string; issue: string }[] {
  return (res.body.error?.details?.fields ?? []) as { path: string; issue: string }[];
}

async function createStream(
  token: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
) {
  return app.request('POST', '/chat/streams', { token, body, headers });
}

const known = (tenantId: string) => app.deps.redis.smembers(app.deps.keys.knownStreams(tenantId));

describe('chat stream creation', () => {
  it("creates a stream with the upstream example body (201) and adds it to the tenant's stream set", async () => {
    const res = await createStream(acmeAdmin, {
      chat_stream_id: 'new_chat',
      platform: 'qq',
      chat_type: 'group',
      participants: ['user_123', 'user_456'],
      metadata: { group_name: '技术交流群', description: '技术讨论群组' },
    });
    expect(res.status).toBe(201);
    expect(res.body.data).toMatchObject({
      tenant_id: 'acme',
      chat_stream_id: 'new_chat',
      agent_id: 'default',
      platform: 'qq',
      chat_type: 'group',
      participants: ['user_123', 'user_456'],
      metadata: { group_name: '技术交流群' },
      status: 'active',
      message_count: 0,
    });
    expect(await known('acme')).toContain('new_chat');
    expect(await known('other')).not.toContain('new_chat');
  });

  it("gives the stream the named agent, or the credential's own", async () => {
    const named = await createStream(acmeAdmin, {
      chat_stream_id: 'c_bot2',
      platform: 'qq',
      chat_type: 'private',
      agent_id: 'bot2',
    });
    expect(named.body.data).toMatchObject({ agent_id: 'bot2', chat_type: 'private' });
    const agent = await app.tokenFor({ role: 'agent', tenantId: 'acme', agentId: 'bot1' });
    const own = await createStream(agent, {
      chat_stream_id: 'c_bot1',
      platform: 'discord',
      chat_type: 'group',
    });
    expect(own.status).toBe(201);
    expect(own.body.data.agent_id).toBe('bot1');
    const other = await createStream(agent, {
      chat_stream_id: 'c_stolen',
      platform: 'qq',
      chat_type: 'group',
      agent_id: 'bot2',
    });
    expect(other.status).toBe(403);
    expect(other.body.error?.code).toBe('ISOLATION_VIOLATION');
  });

  it("answers 404 AGENT_NOT_FOUND for an unknown agent or another tenant's", async () => {
    const unknown = await createStream(acmeAdmin, {
      chat_stream_id: 'c_x',
      platform: 'qq',
      chat_type: 'group',
      agent_id: 'ghost',
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error?.code).toBe('AGENT_NOT_FOUND');
  });

  it('answers 401 without credentials, 403 to readers, 403 ISOLATION_VIOLATION for another tenant', async () => {
    const body = { chat_stream_id: 'c_denied', platform: 'qq', chat_type: 'group' };
    expect((await app.request('POST', '/chat/streams', { body })).status).toBe(401);
    const reader = await app.tokenFor({ role: 'reader', tenantId: 'acme' });
    const byReader = await createStream(reader, body);
    expect(byReader.status).toBe(403);
    expect(byReader.body.error?.code).toBe('FORBIDDEN');
    const crossing = await createStream(acmeAdmin, body, { 'x-tenant-id': 'other' });
    expect(crossing.status).toBe(403);
    expect(crossing.body.error?.code).toBe('ISOLATION_VIOLATION');
    expect(
      (await app.t.admin(`SELECT 1 FROM chat_streams WHERE chat_stream_id = 'c_denied'`)).rows,
    ).toHaveLength(0);
  });

  it('answers 409 for an existing stream id', async () => {
    const res = await createStream(acmeAdmin, {
      chat_stream_id: 'new_chat',
      platform: 'qq',
      chat_type: 'group',
    });
    expect(res.status).toBe(409);
    expect(res.body.error?.code).toBe('CONFLICT');
    const otherAdmin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'other' });
    expect(
      (await createStream(otherAdmin, { chat_stream_id: 'new_chat', platform: 'qq', chat_type: 'group' }))
        .status,
    ).toBe(201);
  });

  it('rejects unknown and invalid fields with 400, listing every one', async () => {
    const res = await createStream(acmeAdmin, {
      chat_stream_id: 'has spaces',
      platform: 'qq',
      chat_type: 'channel',
      topic: 'x',
      owner: 'y',
    });
    expect(res.status).toBe(400);
    const fields = fieldsOf(res);
    expect(fields.map((f) => f.path)).toEqual(
      expect.arrayContaining(['chat_stream_id', 'chat_type', 'body']),
    );
    expect(JSON.stringify(fields)).toMatch(/topic.*owner|owner.*topic/);
    const missing = await createStream(acmeAdmin, { chat_stream_id: 'c_missing' });
    expect(
      fieldsOf(missing)
        .map((f) => f.path)
        .sort(),
    ).toEqual(['chat_type', 'platform']);
  });

  it('answers 403 platform_not_allowed for a platform outside allowed_platforms', async () => {
    const res = await createStream(acmeAdmin, {
      chat_stream_id: 'c_tg',
      platform: 'telegram',
      chat_type: 'group',
    });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ code: 'FORBIDDEN', details: { reason: 'platform_not_allowed' } });
  });

  it('refuses to go past max_chat_streams with 403 reason max_chat_streams, also under concurrent creates', async () => {
    const small = await app.tokenFor({ role: 'tenant_admin', tenantId: 'small' });
    const results = await Promise.all(
      [1, 2, 3, 4].map((i) =>
        createStream(small, { chat_stream_id: `s${i}`, platform: 'qq', chat_type: 'group' }),
      ),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(2);
    const refused = results.filter((r) => r.status === 403);
    expect(refused).toHaveLength(2);
    for (const r of refused) {
      expect(r.body.error).toMatchObject({
        code: 'FORBIDDEN',
        details: { reason: 'max_chat_streams', limit: 2 },
      });
      expect(r.headers.get('retry-after')).toBeNull();
    }
    const { rows } = await app.t.admin<{ n: number }>(
      `SELECT count(*)::int AS n FROM chat_streams WHERE tenant_id = 'small'`,
    );
    expect(rows[0]?.n).toBe(2);
  });

  it('answers the same status, code and details for max_chat_streams on the send path as on POST /chat/streams', async () => {
    const small = await app.tokenFor({ role: 'tenant_admin', tenantId: 'small' });
    // The tenant is full from the test above: both ways of making a third stream are refused alike.
    const viaRest = await createStream(small, {
      chat_stream_id: 's_rest',
      platform: 'qq',
      chat_type: 'group',
    });
    const viaSend = await app.request('POST', '/chat/send', {
      token: small,
      body: { message: 'hello', chat_stream_id: 's_send', platform: 'qq' },
    });
    for (const res of [viaRest, viaSend]) {
      expect(res.status).toBe(403);
      expect(res.body.error).toMatchObject({
        code: 'FORBIDDEN',
        details: { reason: 'max_chat_streams', limit: 2 },
      });
    }
    expect(viaSend.body.error?.details).toEqual(viaRest.body.error?.details);
    // An existing stream (whichever won the race above) still takes messages.
    const { rows } = await app.t.admin<{ id: string }>(
      `SELECT chat_stream_id AS id FROM chat_streams WHERE tenant_id = 'small' LIMIT 1`,
    );
    const existing = await app.request('POST', '/chat/send', {
      token: small,
      body: { message: 'hello', chat_stream_id: rows[0]!.id, platform: 'qq' },
    });
    expect(existing.status).toBe(200);
  });
});

describe('chat stream reads', () => {
  beforeAll(async () => {
    await app.t.admin(
      `INSERT INTO chat_streams (tenant_id, chat_stream_id, agent_id, platform, status, created_at)
       SELECT 'acme', 'list_' || i, CASE WHEN i % 2 = 0 THEN 'bot1' ELSE 'bot2' END,
              CASE WHEN i <= 4 THEN 'qq' ELSE 'discord' END, CASE WHEN i = 6 THEN 'archived' ELSE 'active' END,
              now() + i * interval '1 minute'
       FROM generate_series(1, 6) i`,
    );
    await app.t.admin(
      `INSERT INTO messages (tenant_id, message_id, agent_id, platform, chat_stream_id, direction, content)
       VALUES ('acme', 'm1', 'bot1', 'qq', 'list_2', 'in', 'a'), ('acme', 'm2', 'bot1', 'qq', 'list_2', 'out', 'b'),
              ('acme', 'm3', 'bot1', 'qq', 'list_4', 'in', 'c')`,
    );
  });

  it('lists streams newest first with filters and pagination', async () => {
    const reader = await app.tokenFor({ role: 'reader', tenantId: 'acme' });
    const qq = await app.request('GET', '/chat/streams?platform=qq&limit=2', { token: reader });
    expect(qq.status).toBe(200);
    const ids = (res: typeof qq) =>
      (res.body.data.chat_streams as { chat_stream_id: string }[]).map((s) => s.chat_stream_id);
    const allQq = await app.request('GET', '/chat/streams?platform=qq&limit=100', { token: reader });
    const qqTotal = (allQq.body.data.pagination as { total: number }).total;
    expect(ids(allQq).slice(0, 4)).toEqual(['list_4', 'list_3', 'list_2', 'list_1']);
    expect(qq.body.data.pagination).toEqual({
      page: 1,
      limit: 2,
      total: qqTotal,
      pages: Math.ceil(qqTotal / 2),
    });
    expect(ids(qq)).toEqual(['list_4', 'list_3']);
    const page2 = await app.request('GET', '/chat/streams?platform=qq&limit=2&page=2', { token: reader });
    expect(ids(page2)).toEqual(['list_2', 'list_1']);
    const listed2 = (page2.body.data.chat_streams as { chat_stream_id: string; message_count: number }[])[0];
    expect(listed2?.message_count).toBe(2);

    const archived = await app.request('GET', '/chat/streams?status=archived', { token: reader });
    expect(ids(archived)).toEqual(['list_6']);
    const byAgent = await app.request('GET', '/chat/streams?agent_id=bot1&platform=discord', {
      token: reader,
    });
    expect(ids(byAgent)).toEqual(['list_6', 'c_bot1']);
    const everything = await app.request('GET', '/chat/streams?limit=100', { token: reader });
    expect(ids(everything)).not.toContain('other_chat');
    expect((await app.request('GET', '/chat/streams?status=gone', { token: reader })).status).toBe(400);
  });

  it("lists an agent credential's own streams only", async () => {
    const agent = await app.tokenFor({ role: 'agent', tenantId: 'acme', agentId: 'bot2' });
    const res = await app.request('GET', '/chat/streams?limit=100', { token: agent });
    const streams = res.body.data.chat_streams as { agent_id: string }[];
    expect(streams.length).toBeGreaterThan(0);
    expect(streams.every((s) => s.agent_id === 'bot2')).toBe(true);
    const naming = await app.request('GET', '/chat/streams?agent_id=bot1', { token: agent });
    expect(naming.body.error?.code).toBe('ISOLATION_VIOLATION');
  });

  it('shows one stream with its message count', async () => {
    const res = await app.request('GET', '/chat/streams/list_2', { token: acmeAdmin });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      chat_stream_id: 'list_2',
      agent_id: 'bot1',
      platform: 'qq',
      message_count: 2,
    });
  });

  it("answers 404 CHAT_STREAM_NOT_FOUND for another tenant's stream, another agent's (agent credential) and unknown ones", async () => {
    for (const id of ['other_chat', 'no_such_chat']) {
      const res = await app.request('GET', `/chat/streams/${id}`, { token: acmeAdmin });
      expect(res.status).toBe(404);
      expect(res.body.error?.code).toBe('CHAT_STREAM_NOT_FOUND');
    }
    const agent = await app.tokenFor({ role: 'agent', tenantId: 'acme', agentId: 'bot2' });
    const otherAgents = await app.request('GET', '/chat/streams/list_2', { token: agent });
    expect(otherAgents.status).toBe(404);
    expect((await app.request('GET', '/chat/streams/list_1', { token: agent })).status).toBe(200);
  });

  it('answers 401 without credentials and 403 ISOLATION_VIOLATION for X-Tenant-ID of another tenant', async () => {
    expect((await app.request('GET', '/chat/streams')).status).toBe(401);
    const res = await app.request('GET', '/chat/streams', {
      token: acmeAdmin,
      headers: { 'x-tenant-id': 'other' },
    });
    expect(res.status).toBe(403);
    expect(res.body.error?.code).toBe('ISOLATION_VIOLATION');
    const asAdmin = await app.request('GET', '/chat/streams', {
      token: platformAdmin,
      headers: { 'x-tenant-id': 'other' },
    });
    expect(
      (asAdmin.body.data.chat_streams as { chat_stream_id: string }[]).map((s) => s.chat_stream_id).sort(),
    ).toEqual(['new_chat', 'other_chat']);
  });
});

describe('chat stream deletion', () => {
  it('deletes a stream with its messages and removes it from the stream set', async () => {
    await createStream(acmeAdmin, {
      chat_stream_id: 'doomed_chat',
      platform: 'qq',
      chat_type: 'group',
      agent_id: 'bot1',
    });
    await app.t.admin(
      `INSERT INTO messages (tenant_id, message_id, agent_id, platform, chat_stream_id, direction, content)
       VALUES ('acme', 'dm1', 'bot1', 'qq', 'doomed_chat', 'in', 'a'), ('acme', 'dm2', 'bot1', 'qq', 'doomed_chat', 'out', 'b')`,
    );
    expect(await known('acme')).toContain('doomed_chat');
    const res = await app.request('DELETE', '/chat/streams/doomed_chat', { token: acmeAdmin });
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({ chat_stream_id: 'doomed_chat', deleted: true });
    const { rows } = await app.t.admin<{ n: number }>(
      `SELECT count(*)::int AS n FROM messages WHERE tenant_id = 'acme' AND chat_stream_id = 'doomed_chat'`,
    );
    expect(rows[0]?.n).toBe(0);
    expect(await known('acme')).not.toContain('doomed_chat');
    expect((await app.request('GET', '/chat/streams/doomed_chat', { token: acmeAdmin })).status).toBe(404);
  });

  it("answers 404 for another tenant's stream and leaves it in place", async () => {
    const res = await app.request('DELETE', '/chat/streams/other_chat', { token: acmeAdmin });
    expect(res.status).toBe(404);
    expect(res.body.error?.code).toBe('CHAT_STREAM_NOT_FOUND');
    expect(
      (await app.t.admin(`SELECT 1 FROM chat_streams WHERE chat_stream_id = 'other_chat'`)).rows,
    ).toHaveLength(1);
  });

  it('answers 403 to readers and agent credentials', async () => {
    for (const token of [
      await app.tokenFor({ role: 'reader', tenantId: 'acme' }),
      await app.tokenFor({ role: 'agent', tenantId: 'acme', agentId: 'bot1' }),
    ]) {
      const res = await app.request('DELETE', '/chat/streams/list_2', { token });
      expect(res.status).toBe(403);
      expect(res.body.error?.code).toBe('FORBIDDEN');
    }
    expect((await app.request('GET', '/chat/streams/list_2', { token: acmeAdmin })).status).toBe(200);
  });
});
