import { findAgentByAccount } from '../../src/db/repositories/agentAccounts';
import { requireAgent } from '../../src/db/repositories/agents';
import { createIsolationContext } from '../../src/domain/isolationContext';
import { NotFoundError } from '../../src/errors';
import { created } from '../support/fixtures';
import { startTestApp, type TestApp } from '../support/testApp';

let app: TestApp;
let platformAdmin: string;
let acmeAdmin: string;

beforeAll(async () => {
  app = await startTestApp();
  platformAdmin = await app.tokenFor({ role: 'platform_admin' });
  for (const [tenantId, settings] of [
    ['acme', { max_agents: 20, allowed_platforms: ['qq', 'discord'] }],
    ['other', {}],
    ['tiny', { max_agents: 2 }],
  ] as const) {
    created(
      await app.request('POST', '/tenants', {
        token: platformAdmin,
        body: { tenant_id: tenantId, name: tenantId, settings },
      }),
    );
  }
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

const FULL_CONFIG = {
  accounts: [{ platform: 'qq', account_id: '10001', nickname: '麦麦', aliases: ['maimai', '小麦'] }],
  persona: 'a cheerful helper',
  reply_style: 'short',
  llm: {
    provider: 'openai',
    base_url: 'https://llm.example/v1',
    models: ['m-large', 'm-small'],
    api_key: 'sk-very-secret',
    temperature: 0.7,
    max_tokens: 512,
    timeout_ms: 20_000,
  },
  delivery: { webhook_url: 'https://hooks.example/maihive', webhook_secret: 'whsec-secret' },
};

async function createAgent(
  token: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
) {
  return app.request('POST', '/agents', { token, body, headers });
}

describe('agent creation', () => {
  it('creates an agent with its config, masking secrets and recording its bot accounts', async () => {
    const res = await createAgent(acmeAdmin, {
      agent_id: 'helper',
      name: 'Helper',
      description: 'answers questions',
      platform: 'qq',
      config: FULL_CONFIG,
    });
    expect(res.status).toBe(201);
    expect(res.body.data).toMatchObject({
      tenant_id: 'acme',
      agent_id: 'helper',
      name: 'Helper',
      status: 'active',
      platform: 'qq',
      config: {
        persona: 'a cheerful helper',
        llm: { api_key: '***', models: ['m-large', 'm-small'] },
        delivery: { webhook_secret: '***', webhook_url: 'https://hooks.example/maihive' },
      },
    });
    expect(JSON.stringify(res.body)).not.toMatch(/sk-very-secret|whsec-secret|_encrypted/);
    const { rows } = await app.t.admin<{
      config: { llm: Record<string, string>; delivery: Record<string, string> };
    }>(`SELECT config FROM agents WHERE tenant_id = 'acme' AND agent_id = 'helper'`);
    // The LLM API key and the webhook secret are stored sealed only, under the server key.
    expect(JSON.stringify(rows[0]?.config)).not.toContain('sk-very-secret');
    expect(rows[0]?.config.llm.api_key).toBeUndefined();
    expect(app.secretBox.decrypt(rows[0]!.config.llm.api_key_encrypted!)).toBe('sk-very-secret');
    expect(JSON.stringify(rows[0]?.config)).not.toContain('whsec-secret');
    expect(rows[0]?.config.delivery.webhook_secret).toBeUndefined();
    expect(app.secretBox.decrypt(rows[0]!.config.delivery.webhook_secret_encrypted!)).toBe('whsec-secret');
    const accounts = await app.t.admin(
      `SELECT platform, account_id, agent_id, nickname, aliases FROM agent_accounts WHERE tenant_id = 'acme'`,
    );
    expect(accounts.rows).toEqual([
      {
        platform: 'qq',
        account_id: '10001',
        agent_id: 'helper',
        nickname: '麦麦',
        aliases: ['maimai', '小麦'],
      },
    ]);
    // What adapters use to map (platform, bot account) to the agent.
    const found = await app.t.db.withTenant(createIsolationContext({ tenantId: 'acme' }), (db) =>
      findAgentByAccount(db, 'qq', '10001'),
    );
    expect(found?.agent_id).toBe('helper');
  });

  it("accepts the upstream reference's example body, storing its fields under MaiHive's names", async () => {
    const res = await createAgent(acmeAdmin, {
      agent_id: 'new_agent',
      name: '新智能体',
      description: '新创建的智能体',
      platform: 'qq',
      config: {
        personality: 'friendly',
        response_style: 'casual',
        memory_config: { max_short_term: 100, max_long_term: 1000 },
        llm_config: { model: 'gpt-3.5-turbo', temperature: 0.7, max_tokens: 2000 },
      },
    });
    expect(res.status).toBe(201);
    expect(res.body.data.config).toEqual({
      accounts: [],
      persona: 'friendly',
      reply_style: 'casual',
      memory: { max_short_term: 100, max_long_term: 1000 },
      llm: { models: ['gpt-3.5-turbo'], temperature: 0.7, max_tokens: 2000 },
    });
  });

  it('lets a platform admin create an agent in the tenant named by X-Tenant-ID, and asks for one otherwise', async () => {
    const res = await createAgent(
      platformAdmin,
      { agent_id: 'from_above', name: 'x' },
      { 'x-tenant-id': 'other' },
    );
    expect(res.status).toBe(201);
    expect(res.body.data.tenant_id).toBe('other');
    const without = await createAgent(platformAdmin, { agent_id: 'nowhere', name: 'x' });
    expect(without.status).toBe(400);
    const unknown = await createAgent(
      platformAdmin,
      { agent_id: 'x', name: 'x' },
      { 'x-tenant-id': 'nobody' },
    );
    expect(unknown.status).toBe(404);
    expect(unknown.body.error?.code).toBe('TENANT_NOT_FOUND');
  });

  it('answers 401 without credentials and 403 to roles that may not write', async () => {
    const anonymous = await app.request('POST', '/agents', { body: { agent_id: 'x', name: 'x' } });
    expect(anonymous.status).toBe(401);
    for (const role of ['reader', 'operator', 'agent'] as const) {
      const token = await app.tokenFor({
        role,
        tenantId: 'acme',
        ...(role === 'agent' ? { agentId: 'helper' } : {}),
      });
      const res = await createAgent(token, { agent_id: `by_${role}`, name: 'x' });
      expect(res.status).toBe(403);
      expect(res.body.error?.code).toBe('FORBIDDEN');
    }
  });

  it('answers 403 ISOLATION_VIOLATION when a tenant admin names another tenant', async () => {
    const res = await createAgent(acmeAdmin, { agent_id: 'smuggled', name: 'x' }, { 'x-tenant-id': 'other' });
    expect(res.status).toBe(403);
    expect(res.body.error?.code).toBe('ISOLATION_VIOLATION');
    const { rows } = await app.t.admin(`SELECT 1 FROM agents WHERE agent_id = 'smuggled'`);
    expect(rows).toHaveLength(0);
  });

  it('answers 409 for an existing agent id, in this tenant only', async () => {
    const dup = await createAgent(acmeAdmin, { agent_id: 'helper', name: 'again' });
    expect(dup.status).toBe(409);
    expect(dup.body.error?.code).toBe('CONFLICT');
    const otherAdmin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'other' });
    expect((await createAgent(otherAdmin, { agent_id: 'helper', name: 'theirs' })).status).toBe(201);
  });

  it("refuses to go past the tenant's max_agents with 403 reason max_agents (the default agent counts)", async () => {
    const tinyAdmin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'tiny' });
    expect((await createAgent(tinyAdmin, { agent_id: 'one', name: '1' })).status).toBe(201);
    const res = await createAgent(tinyAdmin, { agent_id: 'two', name: '2' });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ code: 'FORBIDDEN', details: { reason: 'max_agents', limit: 2 } });
    // A size limit is not a rate: nothing tells the client to come back later.
    expect(res.headers.get('retry-after')).toBeNull();
  });

  it('holds max_agents under concurrent creates', async () => {
    await app.request('PUT', '/tenants/tiny', {
      token: platformAdmin,
      body: { settings: { max_agents: 4 } },
    });
    const tinyAdmin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'tiny' });
    const results = await Promise.all(
      [1, 2, 3, 4, 5].map((i) => createAgent(tinyAdmin, { agent_id: `race_${i}`, name: 'r' })),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(2);
    const { rows } = await app.t.admin<{ n: string }>(
      `SELECT count(*) AS n FROM agents WHERE tenant_id = 'tiny'`,
    );
    expect(Number(rows[0]?.n)).toBe(4);
  });

  it('rejects unknown fields with 400, listing every one, also inside config', async () => {
    const res = await createAgent(acmeAdmin, {
      agent_id: 'strict',
      name: 'x',
      colour: 'blue',
      config: { mood: 'grumpy', llm: { api_key: 'k', secret_sauce: true }, accounts: [{ platform: 'qq' }] },
    });
    expect(res.status).toBe(400);
    const fields = fieldsOf(res);
    const text = JSON.stringify(fields);
    expect(text).toMatch(/colour/);
    expect(text).toMatch(/mood/);
    expect(text).toMatch(/secret_sauce/);
    expect(fields.map((f) => f.path)).toEqual(
      expect.arrayContaining(['config.llm', 'config.accounts.0.account_id']),
    );
  });

  it('answers 403 platform_not_allowed for a platform the tenant does not allow', async () => {
    const byPlatform = await createAgent(acmeAdmin, { agent_id: 'tg', name: 'x', platform: 'telegram' });
    expect(byPlatform.status).toBe(403);
    expect(byPlatform.body.error).toMatchObject({
      code: 'FORBIDDEN',
      details: { reason: 'platform_not_allowed' },
    });
    const byAccount = await createAgent(acmeAdmin, {
      agent_id: 'tg2',
      name: 'x',
      config: { accounts: [{ platform: 'telegram', account_id: '1' }] },
    });
    expect(byAccount.body.error?.details).toMatchObject({ reason: 'platform_not_allowed' });
  });

  it('answers 409 when another agent already answers as the same bot account, 400 for a repeated account', async () => {
    const res = await createAgent(acmeAdmin, {
      agent_id: 'copycat',
      name: 'x',
      config: { accounts: [{ platform: 'qq', account_id: '10001' }] },
    });
    expect(res.status).toBe(409);
    expect(res.body.error?.details).toMatchObject({
      reason: 'account_claimed',
      accounts: [{ platform: 'qq', account_id: '10001', agent_id: 'helper' }],
    });
    expect((await app.t.admin(`SELECT 1 FROM agents WHERE agent_id = 'copycat'`)).rows).toHaveLength(0);
    const twice = await createAgent(acmeAdmin, {
      agent_id: 'twice',
      name: 'x',
      config: {
        accounts: [
          { platform: 'qq', account_id: '777' },
          { platform: 'qq', account_id: '777' },
        ],
      },
    });
    expect(twice.status).toBe(400);
    expect(fieldsOf(twice)[0]?.path).toBe('config.accounts.1');
  });
});

describe('agent reads', () => {
  beforeAll(async () => {
    for (const id of ['r1', 'r2', 'r3']) {
      created(await createAgent(acmeAdmin, { agent_id: id, name: id }));
    }
    await app.request('PUT', '/agents/r2', { token: acmeAdmin, body: { status: 'inactive' } });
    await app.t.admin(
      `INSERT INTO chat_streams (tenant_id, chat_stream_id, agent_id, platform) VALUES ('acme', 'r1_chat', 'r1', 'qq')`,
    );
    await app.t.admin(
      `INSERT INTO messages (tenant_id, message_id, agent_id, platform, chat_stream_id, direction, content)
       VALUES ('acme', 'm1', 'r1', 'qq', 'r1_chat', 'in', 'a'), ('acme', 'm2', 'r1', 'qq', 'r1_chat', 'out', 'b')`,
    );
    await app.t.admin(
      `INSERT INTO memory_chest (tenant_id, memory_id, agent_id, scope, content) VALUES ('acme', 'k1', 'r1', 'agent', 'x')`,
    );
  });

  it('lists agents page by page with their activity, filtered by status', async () => {
    const reader = await app.tokenFor({ role: 'reader', tenantId: 'acme' });
    const all = await app.request('GET', '/agents?limit=100', { token: reader });
    expect(all.status).toBe(200);
    const agents = all.body.data.agents as Record<string, unknown>[];
    const total = (all.body.data.pagination as { total: number }).total;
    expect(total).toBe(agents.length);
    expect(agents.map((a) => a.agent_id)).toEqual([...agents.map((a) => a.agent_id as string)].sort());
    expect(agents.find((a) => a.agent_id === 'r1')).toMatchObject({ message_count: 2, memory_count: 1 });
    expect(agents.find((a) => a.agent_id === 'r1')?.last_active).toEqual(expect.any(String));
    expect(agents.every((a) => !('config' in a))).toBe(true);

    const page = await app.request('GET', '/agents?limit=2&page=2', { token: reader });
    expect(page.body.data.pagination).toEqual({ page: 2, limit: 2, total, pages: Math.ceil(total / 2) });
    expect((page.body.data.agents as Record<string, unknown>[]).map((a) => a.agent_id)).toEqual(
      agents.slice(2, 4).map((a) => a.agent_id),
    );
    const inactive = await app.request('GET', '/agents?status=inactive', { token: reader });
    expect((inactive.body.data.agents as Record<string, unknown>[]).map((a) => a.agent_id)).toEqual(['r2']);
    const bad = await app.request('GET', '/agents?status=sleeping', { token: reader });
    expect(bad.status).toBe(400);
  });

  it('shows an agent credential its own agent only', async () => {
    const agent = await app.tokenFor({ role: 'agent', tenantId: 'acme', agentId: 'r1' });
    const list = await app.request('GET', '/agents', { token: agent });
    expect((list.body.data.agents as Record<string, unknown>[]).map((a) => a.agent_id)).toEqual(['r1']);
    expect((await app.request('GET', '/agents/r1', { token: agent })).status).toBe(200);
    const other = await app.request('GET', '/agents/r3', { token: agent });
    expect(other.status).toBe(403);
    expect(other.body.error?.code).toBe('ISOLATION_VIOLATION');
    const config = await app.request('GET', '/agents/r3/config', { token: agent });
    expect(config.body.error?.code).toBe('ISOLATION_VIOLATION');
  });

  it("answers 404 AGENT_NOT_FOUND for another tenant's agent and for an unknown one", async () => {
    const otherAdmin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'other' });
    for (const path of ['/agents/r1', '/agents/r1/config', '/agents/missing']) {
      const res = await app.request('GET', path, { token: otherAdmin });
      expect(res.status).toBe(404);
      expect(res.body.error?.code).toBe('AGENT_NOT_FOUND');
    }
    const put = await app.request('PUT', '/agents/r1', { token: otherAdmin, body: { name: 'taken over' } });
    expect(put.body.error?.code).toBe('AGENT_NOT_FOUND');
    const del = await app.request('DELETE', '/agents/r1', { token: otherAdmin });
    expect(del.body.error?.code).toBe('AGENT_NOT_FOUND');
    const { rows } = await app.t.admin<{ name: string }>(
      `SELECT name FROM agents WHERE tenant_id = 'acme' AND agent_id = 'r1'`,
    );
    expect(rows[0]?.name).toBe('r1');
  });

  it('answers 401 without credentials', async () => {
    for (const path of ['/agents', '/agents/r1', '/agents/r1/config']) {
      expect((await app.request('GET', path)).status).toBe(401);
    }
  });

  it('requireAgent returns the row, or throws AGENT_NOT_FOUND also for an agent of another tenant', async () => {
    const ctx = createIsolationContext({ tenantId: 'other' });
    const own = await app.t.db.withTenant(ctx, (db) => requireAgent(db, 'helper'));
    expect(own.tenant_id).toBe('other');
    const err = await app.t.db.withTenant(ctx, (db) => requireAgent(db, 'r1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).code).toBe('AGENT_NOT_FOUND');
  });
});

describe('agent updates and config', () => {
  beforeAll(async () => {
    const res = await createAgent(acmeAdmin, {
      agent_id: 'cfg',
      name: 'Config',
      config: { llm: FULL_CONFIG.llm },
    });
    created(res);
  });

  it('updates name, description, platform and status, merging config keys', async () => {
    const res = await app.request('PUT', '/agents/cfg', {
      token: acmeAdmin,
      body: {
        name: 'Configured',
        description: null,
        platform: 'discord',
        status: 'inactive',
        config: { persona: 'calm' },
      },
    });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      name: 'Configured',
      description: null,
      platform: 'discord',
      status: 'inactive',
      config: { persona: 'calm', llm: { api_key: '***', provider: 'openai' } },
    });
  });

  it('keeps a secret when it is sent back masked or left out, replaces it when a new one is given', async () => {
    const read = await app.request('GET', '/agents/cfg/config', { token: acmeAdmin });
    const config = read.body.data.config as typeof FULL_CONFIG;
    expect(config.llm.api_key).toBe('***');
    const back = await app.request('PUT', '/agents/cfg/config', {
      token: acmeAdmin,
      body: { llm: { ...config.llm, temperature: 0.2 } },
    });
    expect(back.status).toBe(200);
    const stored = async () =>
      (
        await app.t.admin<{ config: { llm: Record<string, unknown> } }>(
          `SELECT config FROM agents WHERE tenant_id = 'acme' AND agent_id = 'cfg'`,
        )
      ).rows[0]?.config;
    const storedKey = async () => app.secretBox.decrypt(String((await stored())?.llm.api_key_encrypted));
    expect((await stored())?.llm).toMatchObject({ temperature: 0.2 });
    expect(await storedKey()).toBe('sk-very-secret');
    const { api_key: _omitted, ...withoutKey } = config.llm;
    await app.request('PUT', '/agents/cfg/config', { token: acmeAdmin, body: { llm: withoutKey } });
    expect(await storedKey()).toBe('sk-very-secret');
    await app.request('PUT', '/agents/cfg/config', {
      token: acmeAdmin,
      body: { llm: { ...withoutKey, api_key: 'sk-new' } },
    });
    expect(await storedKey()).toBe('sk-new');
    expect(JSON.stringify(await stored())).not.toMatch(/sk-new|sk-very-secret/);
  });

  it('removes a config key given as null and leaves the others', async () => {
    const res = await app.request('PUT', '/agents/cfg/config', {
      token: acmeAdmin,
      body: { persona: null, reply_style: 'terse' },
    });
    expect(res.status).toBe(200);
    expect(res.body.data.config).not.toHaveProperty('persona');
    expect(res.body.data.config).toMatchObject({ reply_style: 'terse', llm: { api_key: '***' } });
  });

  it('keeps agent_accounts in step with config.accounts and refuses an account another agent has', async () => {
    const set = await app.request('PUT', '/agents/cfg/config', {
      token: acmeAdmin,
      body: { accounts: [{ platform: 'discord', account_id: 'cfg-bot', nickname: 'Cfg' }] },
    });
    expect(set.status).toBe(200);
    const accountsOf = async (agentId: string) =>
      (
        await app.t.admin<{ platform: string; account_id: string }>(
          `SELECT platform, account_id FROM agent_accounts WHERE tenant_id = 'acme' AND agent_id = $1 ORDER BY 1, 2`,
          [agentId],
        )
      ).rows;
    expect(await accountsOf('cfg')).toEqual([{ platform: 'discord', account_id: 'cfg-bot' }]);

    const taken = await app.request('PUT', '/agents/cfg/config', {
      token: acmeAdmin,
      body: { accounts: [{ platform: 'qq', account_id: '10001' }] },
    });
    expect(taken.status).toBe(409);
    expect(taken.body.error?.details).toMatchObject({ reason: 'account_claimed' });
    // Nothing of the refused write stayed: same transaction.
    expect(await accountsOf('cfg')).toEqual([{ platform: 'discord', account_id: 'cfg-bot' }]);

    await app.request('PUT', '/agents/cfg', { token: acmeAdmin, body: { config: { accounts: null } } });
    expect(await accountsOf('cfg')).toEqual([]);
    const stillHelper = await accountsOf('helper');
    expect(stillHelper).toEqual([{ platform: 'qq', account_id: '10001' }]);
  });

  it('lets another tenant claim the same bot account for its own agent', async () => {
    const otherAdmin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'other' });
    const res = await app.request('PUT', '/agents/helper/config', {
      token: otherAdmin,
      body: { accounts: [{ platform: 'qq', account_id: '10001' }] },
    });
    expect(res.status).toBe(200);
  });

  it('answers 403 to readers and agent credentials writing, and 400 for unknown fields', async () => {
    const reader = await app.tokenFor({ role: 'reader', tenantId: 'acme' });
    expect((await app.request('PUT', '/agents/cfg', { token: reader, body: { name: 'x' } })).status).toBe(
      403,
    );
    const agent = await app.tokenFor({ role: 'agent', tenantId: 'acme', agentId: 'cfg' });
    expect((await app.request('PUT', '/agents/cfg/config', { token: agent, body: {} })).status).toBe(403);
    const bad = await app.request('PUT', '/agents/cfg', {
      token: acmeAdmin,
      body: { name: 'x', owner: 'me', tenant: 'y' },
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(fieldsOf(bad))).toMatch(/owner.*tenant|tenant.*owner/);
  });
});

describe('agent deletion', () => {
  it('deletes an agent with its chat streams and messages, and forgets its streams in Redis', async () => {
    expect((await createAgent(acmeAdmin, { agent_id: 'gone', name: 'g' })).status).toBe(201);
    await app.t.admin(
      `INSERT INTO chat_streams (tenant_id, chat_stream_id, agent_id, platform) VALUES ('acme', 'gone_chat', 'gone', 'qq')`,
    );
    await app.t.admin(
      `INSERT INTO messages (tenant_id, message_id, agent_id, platform, chat_stream_id, direction, content)
       VALUES ('acme', 'gm1', 'gone', 'qq', 'gone_chat', 'in', 'a')`,
    );
    const key = app.deps.keys.knownStreams('acme');
    await app.deps.redis.sadd(key, 'gone_chat', 'kept_chat');

    const res = await app.request('DELETE', '/agents/gone', { token: acmeAdmin });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ agent_id: 'gone', deleted: true, chat_streams_removed: 1 });
    const left = await app.t.admin(
      `SELECT (SELECT count(*) FROM chat_streams WHERE tenant_id = 'acme' AND agent_id = 'gone')::int AS streams,
              (SELECT count(*) FROM messages WHERE tenant_id = 'acme' AND agent_id = 'gone')::int AS messages`,
    );
    expect(left.rows[0]).toEqual({ streams: 0, messages: 0 });
    expect((await app.deps.redis.smembers(key)).sort()).toEqual(['kept_chat']);
    expect((await app.request('GET', '/agents/gone', { token: acmeAdmin })).status).toBe(404);
  });

  it('refuses to delete the default agent with 400', async () => {
    const res = await app.request('DELETE', '/agents/default', { token: acmeAdmin });
    expect(res.status).toBe(400);
    expect(fieldsOf(res)[0]?.path).toBe('agent_id');
    expect((await app.request('GET', '/agents/default', { token: acmeAdmin })).status).toBe(200);
  });

  it('answers 403 to a reader', async () => {
    const reader = await app.tokenFor({ role: 'reader', tenantId: 'acme' });
    const res = await app.request('DELETE', '/agents/r3', { token: reader });
    expect(res.status).toBe(403);
    expect(res.body.error?.code).toBe('FORBIDDEN');
  });
});

describe('agent changes reach the send path at once', () => {
  it('refuses sends for an agent right after it is deactivated, and accepts them again after reactivation', async () => {
    const created = await app.request('POST', '/agents', {
      token: acmeAdmin,
      body: { agent_id: 'flip', name: 'Flip' },
    });
    expect(created.status).toBe(201);
    const send = () =>
      app.request('POST', '/chat/send', {
        token: acmeAdmin,
        body: { message: 'hello', agent_id: 'flip', chat_stream_id: 'flip-1', platform: 'qq' },
      });
    expect((await send()).status).toBe(200); // now cached as active
    await app.request('PUT', '/agents/flip', { token: acmeAdmin, body: { status: 'inactive' } });
    const refused = await send();
    expect(refused.status).toBe(403);
    expect(refused.body.error?.details).toMatchObject({ reason: 'agent_inactive' });
    await app.request('PUT', '/agents/flip', { token: acmeAdmin, body: { status: 'active' } });
    expect((await send()).status).toBe(200);
  });
});
