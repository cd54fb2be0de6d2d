import { randomBytes } from 'node:crypto';

import { createTenant } from '../../src/db/repositories/tenants';
import { startTestApp, type TestApp } from '../support/testApp';

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app.close();
});

let seq = 0;
/** A tenant of its own per test, with agents a1 and a2 and chat streams c1 (a1, qq), c2 (a1, qq), c3 (a2, discord). */
async function newTenant() {
  const tenantId = `cfg${++seq}-${randomBytes(3).toString('hex')}`;
  await app.deps.db.withPlatform((db) => createTenant(db, { tenantId, name: tenantId, settings: {} }));
  for (const agent of ['a1', 'a2']) {
    await app.t.admin('INSERT INTO agents (tenant_id, agent_id, name) VALUES ($1, $2, $2)', [
      tenantId,
      agent,
    ]);
  }
  const streams = [
    ['c1', 'a1', 'qq'],
    ['c2', 'a1', 'qq'],
    ['c3', 'a2', 'discord'],
  ];
  for (const [id, agent, platform] of streams) {
    await app.t.admin(
      `INSERT INTO chat_streams (tenant_id, chat_stream_id, agent_id, platform, chat_type) VALUES ($1, $2, $3, $4, 'group')`,
      [tenantId, id, agent, platform],
    );
  }
  const token = await app.tokenFor({ role: 'tenant_admin', tenantId, sub: 'alice' });
  return { tenantId, token };
}

type Category = 'llm' | 'heartflow' | 'memory' | 'emoji' | 'delivery' | 'content_policy';
/** What the assertions below read of the endpoints' `data`. */
interface Data {
  config: Record<Category, Record<string, unknown>>;
  sources: Record<Category, Record<string, string>>;
  changes: Record<string, unknown>;
  reset: unknown[];
  history: Record<string, unknown>[];
  categories: Record<Category, { properties: Record<string, unknown> }>;
}

type Body = { data: Data; error: { code: string; details: { fields: { path: string }[] } } };

async function put(token: string, body: Record<string, unknown>) {
  const res = await app.request('PUT', '/config', { token, body });
  return { status: res.status, body: res.body as unknown as Body };
}

async function get(token: string, query: string) {
  const res = await app.request('GET', `/config${query}`, { token });
  return { status: res.status, body: res.body as unknown as Body };
}

describe('configuration API', () => {
  it('resolves tenant < agent < platform < chat with the source of every key', async () => {
    const { token } = await newTenant();
    const hf = (scope: string, ids: Record<string, string>, config: Record<string, unknown>) =>
      put(token, { category: 'heartflow', scope, ...ids, config });
    expect(
      (await hf('tenant', {}, { talk_value: 0.1, response_style: 'terse', timezone: 'Asia/Shanghai' }))
        .status,
    ).toBe(200);
    expect(
      (await hf('agent', { agent_id: 'a1' }, { talk_value: 0.2, mentioned_bot_reply: false })).status,
    ).toBe(200);
    expect(
      (await hf('platform', { platform: 'qq' }, { talk_value: 0.3, response_style: 'casual' })).status,
    ).toBe(200);
    expect((await hf('chat', { chat_stream_id: 'c1' }, { talk_value: 0.4 })).status).toBe(200);

    const c1 = await get(token, '?category=heartflow&chat_stream_id=c1');
    expect(c1.status).toBe(200);
    expect(c1.body.data).toMatchObject({ agent_id: 'a1', platform: 'qq', chat_stream_id: 'c1' });
    expect(c1.body.data.config.heartflow).toMatchObject({
      talk_value: 0.4,
      response_style: 'casual',
      mentioned_bot_reply: false,
      timezone: 'Asia/Shanghai',
      memory_strength: 0.5,
    });
    expect(c1.body.data.sources.heartflow).toMatchObject({
      talk_value: 'chat',
      response_style: 'platform',
      mentioned_bot_reply: 'agent',
      timezone: 'tenant',
      memory_strength: 'default',
    });
    // The other chat of the same agent and platform: everything but the chat's own value.
    const c2 = await get(token, '?category=heartflow&chat_stream_id=c2');
    expect(c2.body.data.config.heartflow.talk_value).toBe(0.3);
    expect(c2.body.data.sources.heartflow.talk_value).toBe('platform');
    // Another agent on another platform: the tenant's values only.
    const c3 = await get(token, '?category=heartflow&chat_stream_id=c3');
    expect(c3.body.data.config.heartflow).toMatchObject({ talk_value: 0.1, mentioned_bot_reply: true });
    expect(c3.body.data.sources.heartflow).toMatchObject({
      talk_value: 'tenant',
      mentioned_bot_reply: 'default',
    });
    // Without a category: every category.
    const all = await get(token, '?agent_id=a2');
    expect(Object.keys(all.body.data.config)).toEqual([
      'llm',
      'heartflow',
      'memory',
      'emoji',
      'delivery',
      'content_policy',
    ]);
    expect(all.body.data.config.llm).toEqual({ provider: 'local' });
  });

  it('records who changed what in a new version each time, and a reset makes the scope inherit again', async () => {
    const { token } = await newTenant();
    await put(token, { category: 'heartflow', scope: 'tenant', config: { talk_value: 0.2 } });
    const first = await put(token, {
      category: 'heartflow',
      scope: 'chat',
      chat_stream_id: 'c1',
      config: { talk_value: 0.6 },
    });
    expect(first.body.data).toMatchObject({
      version: 1,
      changed_by: 'alice',
      changes: { talk_value: { from: null, to: 0.6 } },
    });
    const second = await put(token, {
      category: 'heartflow',
      scope: 'chat',
      chat_stream_id: 'c1',
      config: { talk_value: 0.7, response_style: 'playful' },
    });
    expect(second.body.data).toMatchObject({
      version: 2,
      config: { talk_value: 0.7, response_style: 'playful' },
      changes: { talk_value: { from: 0.6, to: 0.7 }, response_style: { from: null, to: 'playful' } },
    });

    const reset = await app.request('POST', '/config/reset?category=heartflow&scope=chat&chat_stream_id=c1', {
      token,
    });
    expect(reset.status).toBe(200);
    expect((reset.body as unknown as Body).data.reset).toEqual([
      expect.objectContaining({
        version: 3,
        action: 'reset',
        config: {},
        changes: expect.objectContaining({ talk_value: { from: 0.7, to: null } }) as unknown,
      }),
    ]);
    const after = await get(token, '?category=heartflow&chat_stream_id=c1');
    expect(after.body.data.config.heartflow.talk_value).toBe(0.2);
    expect(after.body.data.sources.heartflow.talk_value).toBe('tenant');
    // A second reset changes nothing: no version.
    const again = await app.request('POST', '/config/reset?category=heartflow&scope=chat&chat_stream_id=c1', {
      token,
    });
    expect((again.body as unknown as Body).data.reset).toEqual([]);

    const history = await app.request('GET', '/config/history?category=heartflow&limit=10', { token });
    const rows = (history.body as unknown as Body).data.history;
    expect(rows.map((r) => [r.scope, r.version, r.action])).toEqual([
      ['chat', 3, 'reset'],
      ['chat', 2, 'put'],
      ['chat', 1, 'put'],
      ['tenant', 1, 'put'],
    ]);
    expect(rows[0]).toMatchObject({
      chat_stream_id: 'c1',
      changed_by: 'alice',
      changed_at: expect.any(String) as unknown,
    });
    const limited = await app.request('GET', '/config/history?limit=1', { token });
    expect((limited.body as unknown as Body).data.history).toHaveLength(1);
  });

  it('rejects invalid values listing every failing field, and scopes without (or with foreign) ids', async () => {
    const { token } = await newTenant();
    const bad = await put(token, {
      category: 'heartflow',
      scope: 'tenant',
      config: {
        talk_value: 3,
        quiet_hours: [{ start: '25:00', end: '07:00' }],
        timezone: 'Mars/Olympus',
        bogus: 1,
      },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('VALIDATION_ERROR');
    expect(bad.body.error.details.fields.map((f) => f.path).sort()).toEqual(
      ['config', 'config.quiet_hours.0.start', 'config.talk_value', 'config.timezone'].sort(),
    );
    const scope = await put(token, {
      category: 'emoji',
      scope: 'chat',
      agent_id: 'a1',
      config: { enabled: false },
    });
    expect(scope.status).toBe(400);
    expect(scope.body.error.details.fields.map((f) => f.path).sort()).toEqual(['agent_id', 'chat_stream_id']);
    const unknownBody = await put(token, { category: 'emoji', scope: 'tenant', config: {}, extra: 1 });
    expect(unknownBody.status).toBe(400);
    const category = await put(token, { category: 'weather', scope: 'tenant', config: {} });
    expect(category.body.error.details.fields.map((f) => f.path)).toEqual(['category']);
    expect(
      (
        await put(token, {
          category: 'emoji',
          scope: 'chat',
          chat_stream_id: 'nope',
          config: { enabled: false },
        })
      ).status,
    ).toBe(404);
    expect(
      (await put(token, { category: 'emoji', scope: 'agent', agent_id: 'nope', config: { enabled: false } }))
        .status,
    ).toBe(404);
    expect(
      (await put(token, { category: 'llm', scope: 'agent', agent_id: 'nope', config: { temperature: 1 } }))
        .status,
    ).toBe(404);
  });

  it('keeps secrets write-only ("***" on every read) and sealed at rest', async () => {
    const { tenantId, token } = await newTenant();
    const written = await put(token, {
      category: 'llm',
      scope: 'platform',
      platform: 'qq',
      config: { provider: 'openai', base_url: 'https://llm.example/v1', api_key: 'sk-platform-secret' },
    });
    expect(written.status).toBe(200);
    expect(written.body.data.config).toMatchObject({ api_key: '***' });
    expect(written.body.data.changes.api_key).toEqual({ from: null, to: '***' });
    // Delivery settings at every scope: a tenant default, the agent's own, one chat's OneBot HTTP API.
    const tenantDelivery = await put(token, {
      category: 'delivery',
      scope: 'tenant',
      config: { webhook_url: 'https://hook.example/tenant' },
    });
    expect(tenantDelivery.status).toBe(200);
    const chatDelivery = await put(token, {
      category: 'delivery',
      scope: 'chat',
      chat_stream_id: 'c1',
      config: { onebot_http: { base_url: 'http://napcat.example:3000', access_token: 'tok-chat-secret' } },
    });
    expect(chatDelivery.status).toBe(200);
    expect(chatDelivery.body.data.config).toEqual({
      onebot_http: { base_url: 'http://napcat.example:3000', access_token: '***' },
    });
    await put(token, {
      category: 'delivery',
      scope: 'agent',
      agent_id: 'a1',
      config: { webhook_url: 'https://hook.example/x', webhook_secret: 'whsec-tenant' },
    });
    const read = await get(token, '?chat_stream_id=c1');
    expect(read.body.data.config.llm).toMatchObject({ api_key: '***', base_url: 'https://llm.example/v1' });
    expect(read.body.data.config.delivery).toEqual({
      webhook_url: 'https://hook.example/x',
      webhook_secret: '***',
      onebot_http: { base_url: 'http://napcat.example:3000', access_token: '***' },
    });
    expect(read.body.data.sources.delivery).toEqual({
      webhook_url: 'agent',
      webhook_secret: 'agent',
      onebot_http: 'chat',
    });
    expect(read.body.data.sources.llm.api_key).toBe('platform');
    // Another chat of the agent has no OneBot HTTP API; another agent's chat the tenant's webhook.
    expect((await get(token, '?chat_stream_id=c2')).body.data.config.delivery).not.toHaveProperty(
      'onebot_http',
    );
    expect((await get(token, '?chat_stream_id=c3')).body.data.sources.delivery).toEqual({
      webhook_url: 'tenant',
    });
    const history = await app.request('GET', '/config/history', { token });
    const everything = JSON.stringify([read.body, history.body, written.body, chatDelivery.body]);
    expect(everything).not.toContain('sk-platform-secret');
    expect(everything).not.toContain('whsec-tenant');
    expect(everything).not.toContain('tok-chat-secret');
    expect(everything).not.toContain('v1:');
    const stored = await app.t.admin<{ c: string }>(
      `SELECT config::text AS c FROM config_entries WHERE tenant_id = $1`,
      [tenantId],
    );
    expect(stored.rows.map((r) => r.c).join()).not.toMatch(/sk-platform-secret|whsec-tenant|tok-chat-secret/);
    expect(stored.rows.map((r) => r.c).join()).toMatch(/access_token_encrypted/);
    expect(stored.rows.map((r) => r.c).join()).toMatch(/api_key_encrypted/);
    // "***" keeps the stored secret; a plain change of another key does not touch it.
    await put(token, {
      category: 'llm',
      scope: 'platform',
      platform: 'qq',
      config: { api_key: '***', temperature: 0.3 },
    });
    const kept = await app.t.admin(
      `SELECT config->>'api_key_encrypted' AS k FROM config_entries WHERE tenant_id = $1 AND category = 'llm'`,
      [tenantId],
    );
    expect(app.secretBox.decrypt((kept.rows[0] as { k: string }).k)).toBe('sk-platform-secret');
  });

  it("has one home for an agent's llm/delivery/memory values: its agent config", async () => {
    const { tenantId, token } = await newTenant();
    // Written through /agents: the configuration API shows it at agent scope.
    const viaAgents = await app.request('PUT', '/agents/a1/config', {
      token,
      body: {
        llm: { provider: 'openai', base_url: 'https://a.example/v1', models: ['m1'], api_key: 'sk-agent' },
      },
    });
    expect(viaAgents.status).toBe(200);
    const read = await get(token, '?category=llm&agent_id=a1');
    expect(read.body.data.config.llm).toMatchObject({ provider: 'openai', models: ['m1'], api_key: '***' });
    expect(read.body.data.sources.llm).toMatchObject({ provider: 'agent', api_key: 'agent' });
    // Written through /config: /agents shows it, and the agent row holds it (no second copy).
    expect(
      (
        await put(token, {
          category: 'llm',
          scope: 'agent',
          agent_id: 'a1',
          config: { temperature: 0.1, api_key: '***' },
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await put(token, {
          category: 'memory',
          scope: 'agent',
          agent_id: 'a1',
          config: { prompt_memories: 5 },
        })
      ).status,
    ).toBe(200);
    const agent = await app.request('GET', '/agents/a1/config', { token });
    expect((agent.body as unknown as Body).data.config).toMatchObject({
      llm: { provider: 'openai', temperature: 0.1, api_key: '***' },
      memory: { prompt_memories: 5 },
    });
    const entries = await app.t.admin(`SELECT count(*)::int AS n FROM config_entries WHERE tenant_id = $1`, [
      tenantId,
    ]);
    expect(entries.rows[0]).toEqual({ n: 0 });
    const row = await app.t.admin(
      `SELECT config->'llm'->>'api_key_encrypted' AS k FROM agents WHERE tenant_id = $1 AND agent_id = 'a1'`,
      [tenantId],
    );
    expect(app.secretBox.decrypt((row.rows[0] as { k: string }).k)).toBe('sk-agent');
  });

  it('records a version for writes through /agents too: one history with PUT /config', async () => {
    const { tenantId, token } = await newTenant();
    const history = async (category: string) => {
      const res = await app.request('GET', `/config/history?category=${category}&agent_id=a1&limit=20`, {
        token,
      });
      return (res.body as unknown as Body).data.history;
    };
    const agentPut = async (body: Record<string, unknown>) => {
      const res = await app.request('PUT', '/agents/a1/config', { token, body });
      expect(res.status).toBe(200);
    };
    await agentPut({ llm: { provider: 'openai', models: ['m1'], api_key: 'sk-first' } });
    expect(await history('llm')).toEqual([
      expect.objectContaining({
        scope: 'agent',
        agent_id: 'a1',
        version: 1,
        action: 'put',
        changed_by: 'alice',
        config: { provider: 'openai', models: ['m1'], api_key: '***' },
        changes: {
          provider: { from: null, to: 'openai' },
          models: { from: null, to: ['m1'] },
          api_key: { from: null, to: '***' },
        },
      }),
    ]);
    // PUT /config at agent scope continues the same numbering, and /agents after it.
    await put(token, { category: 'llm', scope: 'agent', agent_id: 'a1', config: { temperature: 0.4 } });
    await agentPut({ llm: { provider: 'openai', models: ['m2'], temperature: 0.4, api_key: '***' } });
    const rows = await history('llm');
    expect(rows.map((r) => r.version)).toEqual([3, 2, 1]);
    expect(rows[0]).toMatchObject({ changes: { models: { from: ['m1'], to: ['m2'] } } });
    // Nothing of a category changed (the secret kept, persona only): no version.
    await agentPut({
      persona: '一个安静的机器人',
      llm: { provider: 'openai', models: ['m2'], temperature: 0.4 },
    });
    expect(await history('llm')).toHaveLength(3);
    // PUT /agents/{id} with config, and a section removed (null): versions of their categories.
    const update = await app.request('PUT', '/agents/a1', {
      token,
      body: { config: { memory: { prompt_memories: 3 }, llm: null } },
    });
    expect(update.status).toBe(200);
    expect((await history('memory'))[0]).toMatchObject({
      version: 1,
      changes: { prompt_memories: { from: null, to: 3 } },
    });
    expect((await history('llm'))[0]).toMatchObject({ version: 4, action: 'reset', config: {} });
    // A new agent's initial values are its first version; the ciphertext is never in the history.
    const created = await app.request('POST', '/agents', {
      token,
      body: { agent_id: 'a3', name: 'a3', config: { delivery: { webhook_secret: 'whsec-1' } } },
    });
    expect(created.status).toBe(201);
    const stored = await app.t.admin<{ config: unknown; changes: unknown }>(
      `SELECT config, changes FROM config_history WHERE tenant_id = $1 AND agent_id = 'a3'`,
      [tenantId],
    );
    expect(stored.rows).toEqual([
      { config: { webhook_secret: '***' }, changes: { webhook_secret: { from: null, to: '***' } } },
    ]);
  });

  it('never lets one tenant see or use another one’s configuration', async () => {
    const a = await newTenant();
    const b = await newTenant();
    await put(a.token, { category: 'heartflow', scope: 'tenant', config: { talk_value: 0.05 } });
    await put(a.token, {
      category: 'heartflow',
      scope: 'chat',
      chat_stream_id: 'c1',
      config: { response_style: 'A only' },
    });
    const seenByB = await get(b.token, '?category=heartflow&chat_stream_id=c1');
    expect(seenByB.body.data.config.heartflow).toMatchObject({ talk_value: 0.5, response_style: 'friendly' });
    expect(seenByB.body.data.sources.heartflow.talk_value).toBe('default');
    const historyB = await app.request('GET', '/config/history', { token: b.token });
    expect((historyB.body as unknown as Body).data.history).toEqual([]);
    const other = await app.request('GET', '/config?category=heartflow', {
      token: b.token,
      headers: { 'X-Tenant-ID': a.tenantId },
    });
    expect(other.status).toBe(403);
  });

  it('lets a chat turn the content policy off for itself only', async () => {
    const { token } = await newTenant();
    await put(token, {
      category: 'content_policy',
      scope: 'chat',
      chat_stream_id: 'c1',
      config: { enabled: false },
    });
    const text = "'; DROP TABLE messages; --";
    const inC1 = await app.request('POST', '/chat/send', {
      token,
      body: { message: text, chat_stream_id: 'c1', agent_id: 'a1', platform: 'qq' },
    });
    expect(inC1.status).toBe(200);
    const inC2 = await app.request('POST', '/chat/send', {
      token,
      body: { message: text, chat_stream_id: 'c2', agent_id: 'a1', platform: 'qq' },
    });
    expect(inC2.status).toBe(400);
    // The tenant scope of content_policy is the tenant settings' switch (what PUT /tenants writes).
    await put(token, { category: 'content_policy', scope: 'tenant', config: { enabled: false } });
    const read = await get(token, '?category=content_policy&chat_stream_id=c2');
    expect(read.body.data).toMatchObject({
      config: { content_policy: { enabled: false } },
      sources: { content_policy: { enabled: 'tenant' } },
    });
    const inC2Now = await app.request('POST', '/chat/send', {
      token,
      body: { message: text, chat_stream_id: 'c2', agent_id: 'a1', platform: 'qq' },
    });
    expect(inC2Now.status).toBe(200);
  });

  it('serves the schema, and only writers may write', async () => {
    const { tenantId, token } = await newTenant();
    const schema = await app.request('GET', '/config/schema', { token });
    expect(schema.status).toBe(200);
    expect((schema.body as unknown as Body).data.categories.heartflow.properties.talk_value).toMatchObject({
      default: 0.5,
    });
    const reader = await app.tokenFor({ role: 'reader', tenantId });
    expect(
      (await put(reader, { category: 'emoji', scope: 'tenant', config: { enabled: false } })).status,
    ).toBe(403);
    expect((await get(reader, '?category=emoji')).status).toBe(200);
    expect((await app.request('GET', '/config')).status).toBe(401);
  });
});
