import { createIsolationContext } from '../../src/domain/isolationContext';
import { JOB_KINDS } from '../../src/queues/names';
import { heartflowJobData } from '../support/fixtures';
import { tenantRowCounts } from '../support/tenantSnapshot';
import { startTestApp, type TestApp } from '../support/testApp';

let app: TestApp;
let admin: string;

beforeAll(async () => {
  app = await startTestApp();
  admin = await app.tokenFor({ role: 'platform_admin' });
});
afterAll(async () => {
  await app.close();
});

async function createTenant(tenantId: string, extra: Record<string, unknown> = {}) {
  const res = await app.request('POST', '/tenants', {
    token: admin,
    body: { tenant_id: tenantId, name: tenantId, ...extra },
  });
  expect(res.status).toBe(201);
  return res;
}

function fieldsOf(res: {
  body: { error?: { details?: Record<string, unknown> } };
}): { path: string; issue: string }[] {
  return (res.body.error?.details?.fields ?? []) as { path: string; issue: string }[];
}

/** Rows per tenant in every table that has a tenant_id column (as the owner, past RLS). */
const rowsOf = (tenantId: string) => tenantRowCounts(app.t, tenantId);

async function redisKeysOf(tenantId: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await app.deps.redis.scan(
      cursor,
      'MATCH',
      `${app.deps.keys.prefix}:{${tenantId}}*`,
      'COUNT',
      500,
    );
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

describe('tenant creation', () => {
  it("creates a tenant (201) and then an agent in it (201), as the seed's API test does", async () => {
    const tenant = await app.request('POST', '/tenants', {
      token: admin,
      body: { tenant_id: 'test_tenant', name: '测试租户' },
    });
    expect(tenant.status).toBe(201);
    expect(tenant.body.data).toMatchObject({ tenant_id: 'test_tenant', name: '测试租户', status: 'active' });

    const agent = await app.request('POST', '/agents', {
      token: admin,
      headers: { 'x-tenant-id': 'test_tenant' },
      body: { agent_id: 'test_agent', name: '测试智能体' },
    });
    expect(agent.status).toBe(201);
    const tenantAdmin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'test_tenant' });
    const second = await app.request('POST', '/agents', {
      token: tenantAdmin,
      body: { agent_id: 'second_agent', name: 'Second' },
    });
    expect(second.status).toBe(201);
    expect(second.body.data.tenant_id).toBe('test_tenant');
  });

  it('gives a new tenant its default agent and the default settings where it says nothing', async () => {
    const res = await createTenant('with_settings', {
      settings: { max_agents: 3, allowed_platforms: ['qq'] },
    });
    expect(res.body.data.settings).toMatchObject({
      max_agents: 3,
      max_chat_streams: 1000,
      allowed_platforms: ['qq'],
      scheduling: { weight: 1, max_concurrency: 10 },
    });
    const { rows } = await app.t.admin('SELECT agent_id FROM agents WHERE tenant_id = $1', ['with_settings']);
    expect(rows).toEqual([{ agent_id: 'default' }]);
  });

  it('creates a first tenant admin in the same request, never returning the password or its hash', async () => {
    const res = await createTenant('with_admin', { admin: { username: 'boss', password: 'correct horse' } });
    expect(res.body.data.admin).toEqual({ username: 'boss', role: 'tenant_admin' });
    expect(JSON.stringify(res.body)).not.toMatch(/correct horse|scrypt/);
    const { rows } = await app.t.admin<{ role: string; password_hash: string }>(
      'SELECT role, password_hash FROM users WHERE tenant_id = $1',
      ['with_admin'],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]?.role).toBe('tenant_admin');
    expect(rows[0]?.password_hash).toMatch(/^scrypt\$/);
  });

  it('removes the tenant again when its admin cannot be created', async () => {
    await app.t.admin(`ALTER TABLE users ADD CONSTRAINT test_refuse CHECK (username <> 'refused')`);
    try {
      const res = await app.request('POST', '/tenants', {
        token: admin,
        body: { tenant_id: 'half_made', name: 'x', admin: { username: 'refused', password: 'long enough' } },
      });
      expect(res.status).toBe(500);
      const { rows } = await app.t.admin('SELECT 1 FROM tenants WHERE tenant_id = $1', ['half_made']);
      expect(rows).toHaveLength(0);
    } finally {
      await app.t.admin('ALTER TABLE users DROP CONSTRAINT test_refuse');
    }
  });

  it('answers 409 CONFLICT for an existing tenant id', async () => {
    await createTenant('dup_tenant');
    const res = await app.request('POST', '/tenants', {
      token: admin,
      body: { tenant_id: 'dup_tenant', name: 'again' },
    });
    expect(res.status).toBe(409);
    expect(res.body.error?.code).toBe('CONFLICT');
  });

  it('rejects unknown and invalid fields with 400, listing every one', async () => {
    const res = await app.request('POST', '/tenants', {
      token: admin,
      body: {
        tenant_id: 'bad id!',
        name: '',
        colour: 'red',
        size: 3,
        settings: { max_agents: -1, shiny: true },
      },
    });
    expect(res.status).toBe(400);
    expect(res.body.error?.code).toBe('VALIDATION_ERROR');
    const fields = fieldsOf(res);
    const paths = fields.map((f) => f.path);
    expect(paths).toEqual(expect.arrayContaining(['tenant_id', 'name', 'settings.max_agents']));
    const unknown = fields.filter((f) => f.issue.startsWith('unknown field'));
    expect(unknown.map((f) => f.issue).join(' ')).toMatch(/colour.*size|size.*colour/);
    expect(unknown.map((f) => f.issue).join(' ')).toMatch(/shiny/);
  });

  it('lets only platform admins create, list and delete tenants', async () => {
    const tenantAdmin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'default' });
    const create = await app.request('POST', '/tenants', {
      token: tenantAdmin,
      body: { tenant_id: 'nope', name: 'n' },
    });
    const list = await app.request('GET', '/tenants', { token: tenantAdmin });
    const del = await app.request('DELETE', '/tenants/default', { token: tenantAdmin });
    for (const res of [create, list, del]) {
      expect(res.status).toBe(403);
      expect(res.body.error?.code).toBe('FORBIDDEN');
    }
  });

  it('answers 401 without credentials', async () => {
    for (const [method, path] of [
      ['GET', '/tenants'],
      ['POST', '/tenants'],
      ['GET', '/tenants/default'],
      ['GET', '/tenants/default/statistics'],
      ['GET', '/tenants/default/users'],
    ] as const) {
      const res = await app.request(method, path, method === 'POST' ? { body: {} } : {});
      expect(res.status).toBe(401);
      expect(res.body.error?.code).toBe('UNAUTHORIZED');
    }
  });
});

describe('tenant list', () => {
  beforeAll(async () => {
    for (const n of [1, 2, 3, 4, 5]) await createTenant(`list_${n}`, { name: `Listed tenant ${n}` });
    await createTenant('percent_free');
    // list_2: two more agents and three chat streams.
    await app.t.admin(
      `INSERT INTO agents (tenant_id, agent_id, name) VALUES ('list_2', 'a1', 'a1'), ('list_2', 'a2', 'a2')`,
    );
    await app.t.admin(
      `INSERT INTO chat_streams (tenant_id, chat_stream_id, agent_id, platform)
       SELECT 'list_2', 'c' || i, 'a1', 'qq' FROM generate_series(1, 3) i`,
    );
  });

  it('pages and searches by id or name, with agent and chat stream counts from the database', async () => {
    const res = await app.request('GET', '/tenants?search=listed%20tenant&limit=2&page=1', { token: admin });
    expect(res.status).toBe(200);
    const tenants = res.body.data.tenants as Record<string, unknown>[];
    expect(tenants.map((t) => t.tenant_id)).toEqual(['list_1', 'list_2']);
    expect(res.body.data.pagination).toEqual({ page: 1, limit: 2, total: 5, pages: 3 });
    expect(tenants[1]).toMatchObject({ agent_count: 3, chat_stream_count: 3, status: 'active' });
    expect(tenants[0]).toMatchObject({ agent_count: 1, chat_stream_count: 0 });
    expect(typeof tenants[0]?.created_at).toBe('string');

    const last = await app.request('GET', '/tenants?search=LIST_&limit=2&page=3', { token: admin });
    expect((last.body.data.tenants as unknown[]).length).toBe(1);
    const past = await app.request('GET', '/tenants?search=list_&limit=2&page=9', { token: admin });
    expect(past.body.data.tenants).toEqual([]);
    expect(past.body.data.pagination).toEqual({ page: 9, limit: 2, total: 5, pages: 3 });
  });

  it('answers tenant counts only inside a platform unit of work', async () => {
    const inTenant = app.t.db.withTenant(createIsolationContext({ tenantId: 'list_1' }), (db) =>
      db.query(`SELECT * FROM maihive_tenant_counts(ARRAY['list_2'])`),
    );
    await expect(inTenant).rejects.toThrow(/platform unit of work/);
    const { rows } = await app.t.db.withPlatform((db) =>
      db.query(`SELECT * FROM maihive_tenant_counts(ARRAY['list_2', 'nobody'])`),
    );
    expect(rows).toEqual([
      { tenant_id: 'list_2', agent_count: '3', chat_stream_count: '3' },
      { tenant_id: 'nobody', agent_count: '0', chat_stream_count: '0' },
    ]);
  });

  it('treats % and _ in the search as literal characters', async () => {
    const res = await app.request('GET', '/tenants?search=%25', { token: admin });
    expect(res.body.data.pagination).toMatchObject({ total: 0 });
  });

  it('defaults to 20 per page and refuses a limit over 100', async () => {
    const res = await app.request('GET', '/tenants', { token: admin });
    expect(res.body.data.pagination).toMatchObject({ page: 1, limit: 20 });
    const tooMany = await app.request('GET', '/tenants?limit=101', { token: admin });
    expect(tooMany.status).toBe(400);
    expect(fieldsOf(tooMany).map((f) => f.path)).toEqual(['limit']);
  });
});

describe('tenant read and update', () => {
  beforeAll(async () => {
    await createTenant('alpha', { settings: { allowed_platforms: ['qq'] } });
    await createTenant('beta');
  });

  it('shows a tenant to platform admins and to its own members', async () => {
    const asAdmin = await app.request('GET', '/tenants/alpha', { token: admin });
    expect(asAdmin.status).toBe(200);
    expect(asAdmin.body.data).toMatchObject({ tenant_id: 'alpha', settings: { allowed_platforms: ['qq'] } });
    const reader = await app.tokenFor({ role: 'reader', tenantId: 'alpha' });
    expect((await app.request('GET', '/tenants/alpha', { token: reader })).status).toBe(200);
  });

  it('answers 403 ISOLATION_VIOLATION to a member naming another tenant, 404 for an unknown one', async () => {
    const reader = await app.tokenFor({ role: 'tenant_admin', tenantId: 'alpha' });
    const other = await app.request('GET', '/tenants/beta', { token: reader });
    expect(other.status).toBe(403);
    expect(other.body.error?.code).toBe('ISOLATION_VIOLATION');
    const header = await app.request('GET', '/tenants/alpha', {
      token: reader,
      headers: { 'x-tenant-id': 'beta' },
    });
    expect(header.body.error?.code).toBe('ISOLATION_VIOLATION');
    const unknown = await app.request('GET', '/tenants/nobody', { token: admin });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error?.code).toBe('TENANT_NOT_FOUND');
  });

  it('rejects a platform admin whose X-Tenant-ID differs from the path', async () => {
    const res = await app.request('GET', '/tenants/alpha', {
      token: admin,
      headers: { 'x-tenant-id': 'beta' },
    });
    expect(res.status).toBe(403);
    expect(res.body.error?.code).toBe('ISOLATION_VIOLATION');
  });

  it('merges settings changes into the stored settings and validates the result', async () => {
    const res = await app.request('PUT', '/tenants/alpha', {
      token: admin,
      body: { name: 'Alpha Inc', settings: { max_agents: 20, quotas: { daily_llm_requests: 50 } } },
    });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      name: 'Alpha Inc',
      settings: { max_agents: 20, allowed_platforms: ['qq'], quotas: { daily_llm_requests: 50 } },
    });
    const reset = await app.request('PUT', '/tenants/alpha', {
      token: admin,
      body: { settings: { max_agents: null } },
    });
    expect(reset.body.data.settings).toMatchObject({ max_agents: 10, allowed_platforms: ['qq'] });

    const bad = await app.request('PUT', '/tenants/alpha', {
      token: admin,
      body: { settings: { max_agents: 'many', sparkle: 1 }, extra: true },
    });
    expect(bad.status).toBe(400);
    // The body's own unknown field is reported before the settings are looked at.
    expect(
      fieldsOf(bad)
        .map((f) => f.issue)
        .join(' '),
    ).toMatch(/extra/);
    const badSettings = await app.request('PUT', '/tenants/alpha', {
      token: admin,
      body: { settings: { max_agents: 'many', sparkle: 1 } },
    });
    expect(fieldsOf(badSettings).map((f) => f.path)).toEqual(
      expect.arrayContaining(['settings.max_agents', 'settings']),
    );
  });

  it('lets a tenant admin change name and description only', async () => {
    const tenantAdmin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'beta' });
    const ok = await app.request('PUT', '/tenants/beta', {
      token: tenantAdmin,
      body: { name: 'Beta', description: 'ours' },
    });
    expect(ok.status).toBe(200);
    expect(ok.body.data).toMatchObject({ name: 'Beta', description: 'ours' });
    for (const body of [{ settings: { max_agents: 99 } }, { status: 'suspended' }]) {
      const res = await app.request('PUT', '/tenants/beta', { token: tenantAdmin, body });
      expect(res.status).toBe(403);
      expect(res.body.error?.code).toBe('FORBIDDEN');
    }
    const operator = await app.tokenFor({ role: 'operator', tenantId: 'beta' });
    expect((await app.request('PUT', '/tenants/beta', { token: operator, body: { name: 'x' } })).status).toBe(
      403,
    );
    const foreign = await app.request('PUT', '/tenants/alpha', {
      token: tenantAdmin,
      body: { name: 'mine now' },
    });
    expect(foreign.body.error?.code).toBe('ISOLATION_VIOLATION');
    const { rows } = await app.t.admin<{ name: string }>('SELECT name FROM tenants WHERE tenant_id = $1', [
      'alpha',
    ]);
    expect(rows[0]?.name).not.toBe('mine now');
  });

  it('suspending a tenant makes its credentials fail with 401 at once; reactivating restores them', async () => {
    await createTenant('sleepy');
    const member = await app.tokenFor({ role: 'reader', tenantId: 'sleepy' });
    expect((await app.request('GET', '/tenants/sleepy', { token: member })).status).toBe(200);
    const suspended = await app.request('PUT', '/tenants/sleepy', {
      token: admin,
      body: { status: 'suspended' },
    });
    expect(suspended.body.data.status).toBe('suspended');
    const denied = await app.request('GET', '/tenants/sleepy', { token: member });
    expect(denied.status).toBe(401);
    await app.request('PUT', '/tenants/sleepy', { token: admin, body: { status: 'active' } });
    expect((await app.request('GET', '/tenants/sleepy', { token: member })).status).toBe(200);
  });

  it('answers 404 when updating an unknown tenant', async () => {
    const res = await app.request('PUT', '/tenants/nobody', { token: admin, body: { name: 'x' } });
    expect(res.status).toBe(404);
    expect(res.body.error?.code).toBe('TENANT_NOT_FOUND');
  });
});

describe('tenant deletion', () => {
  async function populate(tenantId: string) {
    await createTenant(tenantId, { admin: { username: 'owner', password: 'long enough' } });
    await app.t.admin(`INSERT INTO agents (tenant_id, agent_id, name) VALUES ($1, 'bot', 'bot')`, [tenantId]);
    await app.t.admin(
      `INSERT INTO chat_streams (tenant_id, chat_stream_id, agent_id, platform) VALUES ($1, 'c1', 'bot', 'qq')`,
      [tenantId],
    );
    await app.t.admin(
      `INSERT INTO messages (tenant_id, message_id, agent_id, platform, chat_stream_id, direction, content)
       VALUES ($1, 'msg_1', 'bot', 'qq', 'c1', 'in', 'hi')`,
      [tenantId],
    );
    await app.t.admin(
      `INSERT INTO memory_chest (tenant_id, memory_id, agent_id, scope, content) VALUES ($1, 'mem_1', 'bot', 'agent', 'x')`,
      [tenantId],
    );
    await app.deps.queues.enqueueHeartflow(heartflowJobData(tenantId, `msg_${tenantId}`));
    await app.deps.redis.sadd(app.deps.keys.knownStreams(tenantId), 'c1');
  }

  it("removes every row, queue and Redis key of the tenant and leaves another tenant's untouched", async () => {
    await populate('doomed');
    await populate('survivor');
    const doomedToken = await app.tokenFor({ role: 'tenant_admin', tenantId: 'doomed' });
    const survivorToken = await app.tokenFor({ role: 'tenant_admin', tenantId: 'survivor' });
    expect((await app.request('GET', '/tenants/doomed', { token: doomedToken })).status).toBe(200);
    const before = await rowsOf('survivor');
    expect(before).toMatchObject({ agents: 2, chat_streams: 1, messages: 1, memory_chest: 1, users: 1 });
    expect(await app.deps.queues.waitingCount('doomed')).toBe(1);

    const res = await app.request('DELETE', '/tenants/doomed', { token: admin });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ tenant_id: 'doomed', deleted: true });

    const after = await rowsOf('doomed');
    expect(Object.values(after).every((n) => n === 0)).toBe(true);
    const { rows } = await app.t.admin('SELECT 1 FROM tenants WHERE tenant_id = $1', ['doomed']);
    expect(rows).toHaveLength(0);
    expect(await redisKeysOf('doomed')).toEqual([]);
    for (const kind of JOB_KINDS) {
      const counts = await app.deps.queues.queue('doomed', kind).getJobCounts();
      expect(Object.values(counts).every((n) => n === 0)).toBe(true);
    }

    expect(await rowsOf('survivor')).toEqual(before);
    expect(await app.deps.queues.waitingCount('survivor')).toBe(1);
    expect(await app.deps.redis.sismember(app.deps.keys.knownStreams('survivor'), 'c1')).toBe(1);
    expect((await app.request('GET', '/tenants/survivor', { token: survivorToken })).status).toBe(200);

    expect((await app.request('GET', '/tenants/doomed', { token: doomedToken })).status).toBe(401);
    expect((await app.request('GET', '/tenants/doomed', { token: admin })).status).toBe(404);
  });

  it('refuses to delete the default tenant with 400 and answers 404 for an unknown one', async () => {
    const res = await app.request('DELETE', '/tenants/default', { token: admin });
    expect(res.status).toBe(400);
    expect(fieldsOf(res)[0]?.path).toBe('tenant_id');
    const { rows } = await app.t.admin('SELECT 1 FROM tenants WHERE tenant_id = $1', ['default']);
    expect(rows).toHaveLength(1);
    const unknown = await app.request('DELETE', '/tenants/nobody', { token: admin });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error?.code).toBe('TENANT_NOT_FOUND');
  });

  it('lets the id be used again after deletion', async () => {
    await createTenant('phoenix');
    await app.request('DELETE', '/tenants/phoenix', { token: admin });
    const again = await createTenant('phoenix');
    expect(again.body.data.status).toBe('active');
    const member = await app.tokenFor({ role: 'reader', tenantId: 'phoenix' });
    expect((await app.request('GET', '/tenants/phoenix', { token: member })).status).toBe(200);
  });
});

describe('tenant statistics', () => {
  const DAY = 24 * 3600 * 1000;

  beforeAll(async () => {
    await createTenant('stats');
    await createTenant('stats_other');
    for (const t of ['stats', 'stats_other']) {
      await app.t.admin(
        `INSERT INTO agents (tenant_id, agent_id, name) VALUES ($1, 'a1', 'a1'), ($1, 'a2', 'a2')`,
        [t],
      );
      await app.t.admin(
        `INSERT INTO chat_streams (tenant_id, chat_stream_id, agent_id, platform)
         VALUES ($1, 's1', 'a1', 'qq'), ($1, 's2', 'a1', 'qq'), ($1, 's3', 'a2', 'qq')`,
        [t],
      );
    }
  });

  it('counts rows, usage and 24 h activity from the database', async () => {
    const now = Date.now();
    const dayStart = new Date(new Date(now).setUTCHours(0, 0, 0, 0));
    const monthStart = new Date(Date.UTC(dayStart.getUTCFullYear(), dayStart.getUTCMonth(), 1));
    const recent = new Date(now - 60_000);
    const old = new Date(now - 3 * DAY);
    // Messages: s1 (a1) twice recently, s3 (a2) once three days ago.
    await app.t.admin(
      `INSERT INTO messages (tenant_id, message_id, agent_id, platform, chat_stream_id, direction, content, created_at)
       VALUES ('stats', 'm1', 'a1', 'qq', 's1', 'in', 'x', $1), ('stats', 'm2', 'a1', 'qq', 's1', 'out', 'y', $1),
              ('stats', 'm3', 'a2', 'qq', 's3', 'in', 'z', $2)`,
      [recent, old],
    );
    await app.t.admin(
      `INSERT INTO memory_chest (tenant_id, memory_id, agent_id, scope, content, expires_at)
       VALUES ('stats', 'k1', 'a1', 'agent', 'x', NULL), ('stats', 'k2', 'a2', 'agent', 'y', NULL),
              ('stats', 'k3', 'a2', 'agent', 'gone', now() - interval '1 hour')`,
    );
    const usage: [Date, number][] = [
      [recent, 100],
      [recent, 50],
      [new Date(dayStart.getTime() - 1000), 7],
      [new Date(monthStart.getTime() - 1000), 1000],
    ];
    for (const [at, tokens] of usage) {
      await app.t.admin(
        `INSERT INTO llm_usage (tenant_id, agent_id, provider, model_name, request_type, prompt_tokens, total_tokens,
                                status, created_at)
         VALUES ('stats', 'a1', 'local', 'm', 'reply', $1, $1, 'success', $2)`,
        [tokens, at],
      );
    }
    // Noise in another tenant must not count.
    await app.t.admin(
      `INSERT INTO messages (tenant_id, message_id, agent_id, platform, chat_stream_id, direction, content)
       VALUES ('stats_other', 'm1', 'a2', 'qq', 's3', 'in', 'x')`,
    );

    const res = await app.request('GET', '/tenants/stats/statistics', { token: admin });
    expect(res.status).toBe(200);
    const tokensThisMonth = usage.filter(([at]) => at >= monthStart).reduce((s, [, n]) => s + n, 0);
    expect(res.body.data).toMatchObject({
      tenant_id: 'stats',
      overview: { agents_count: 3, chat_streams_count: 3, total_messages: 3, total_memory_items: 2 },
      usage: { llm_requests_today: 2, llm_tokens_this_month: tokensThisMonth, api_calls_today: 0 },
      activity: { active_chats_24h: 1, active_agents_24h: 1, last_activity: recent.toISOString() },
    });

    const member = await app.tokenFor({ role: 'reader', tenantId: 'stats' });
    const asMember = await app.request('GET', '/tenants/stats/statistics', { token: member });
    expect(asMember.body.data.overview).toEqual(res.body.data.overview);
    const foreign = await app.request('GET', '/tenants/stats_other/statistics', { token: member });
    expect(foreign.body.error?.code).toBe('ISOLATION_VIOLATION');
  });

  it("narrows an agent credential's statistics to its own agent", async () => {
    const agent = await app.tokenFor({ role: 'agent', tenantId: 'stats_other', agentId: 'a1' });
    const res = await app.request('GET', '/tenants/stats_other/statistics', { token: agent });
    expect(res.status).toBe(200);
    expect(res.body.data.overview).toEqual({
      agents_count: 1,
      chat_streams_count: 2,
      total_messages: 0,
      total_memory_items: 0,
    });
  });

  it('answers 404 TENANT_NOT_FOUND to a platform admin naming an unknown tenant', async () => {
    const res = await app.request('GET', '/tenants/nobody/statistics', { token: admin });
    expect(res.status).toBe(404);
    expect(res.body.error?.code).toBe('TENANT_NOT_FOUND');
  });
});

describe('tenant users', () => {
  beforeAll(async () => {
    await createTenant('staffed');
    await createTenant('unstaffed');
  });

  it('lets platform admins and the tenant admin create users, never showing a hash', async () => {
    const byAdmin = await app.request('POST', '/tenants/staffed/users', {
      token: admin,
      body: { username: 'alice', password: 'alice-password', role: 'tenant_admin' },
    });
    expect(byAdmin.status).toBe(201);
    expect(byAdmin.body.data).toMatchObject({
      tenant_id: 'staffed',
      username: 'alice',
      role: 'tenant_admin',
    });
    const tenantAdmin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'staffed' });
    const byTenantAdmin = await app.request('POST', '/tenants/staffed/users', {
      token: tenantAdmin,
      body: { username: 'bob', password: 'bob-password', role: 'reader' },
    });
    expect(byTenantAdmin.status).toBe(201);
    for (const res of [byAdmin, byTenantAdmin])
      expect(JSON.stringify(res.body)).not.toMatch(/password|scrypt/);
  });

  it('lists users page by page without password hashes', async () => {
    const tenantAdmin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'staffed' });
    await app.request('POST', '/tenants/staffed/users', {
      token: admin,
      body: { username: 'carol', password: 'carol-password', role: 'operator' },
    });
    const res = await app.request('GET', '/tenants/staffed/users?limit=2&page=2', { token: tenantAdmin });
    expect(res.status).toBe(200);
    expect((res.body.data.users as { username: string }[]).map((u) => u.username)).toEqual(['carol']);
    expect(res.body.data.pagination).toEqual({ page: 2, limit: 2, total: 3, pages: 2 });
    expect(JSON.stringify(res.body)).not.toMatch(/password|scrypt/);
  });

  it('answers 409 for an existing username and 400 for a short password, unknown field or agent role', async () => {
    const dup = await app.request('POST', '/tenants/staffed/users', {
      token: admin,
      body: { username: 'alice', password: 'another-password', role: 'reader' },
    });
    expect(dup.status).toBe(409);
    const bad = await app.request('POST', '/tenants/staffed/users', {
      token: admin,
      body: { username: 'dave', password: 'short', role: 'reader', email: 'd@x' },
    });
    expect(bad.status).toBe(400);
    expect(fieldsOf(bad).map((f) => f.path)).toEqual(expect.arrayContaining(['password', 'body']));
    const agent = await app.request('POST', '/tenants/staffed/users', {
      token: admin,
      body: { username: 'bot', password: 'bot-password', role: 'agent' },
    });
    expect(agent.status).toBe(400);
    expect(fieldsOf(agent)[0]?.path).toBe('role');
  });

  it("refuses other roles (403), another tenant's admin (403 ISOLATION_VIOLATION) and unknown tenants (404)", async () => {
    const operator = await app.tokenFor({ role: 'operator', tenantId: 'staffed' });
    const byOperator = await app.request('GET', '/tenants/staffed/users', { token: operator });
    expect(byOperator.body.error?.code).toBe('FORBIDDEN');
    const outsider = await app.tokenFor({ role: 'tenant_admin', tenantId: 'unstaffed' });
    const foreign = await app.request('POST', '/tenants/staffed/users', {
      token: outsider,
      body: { username: 'mole', password: 'mole-password', role: 'tenant_admin' },
    });
    expect(foreign.status).toBe(403);
    expect(foreign.body.error?.code).toBe('ISOLATION_VIOLATION');
    const { rows } = await app.t.admin('SELECT 1 FROM users WHERE username = $1', ['mole']);
    expect(rows).toHaveLength(0);
    const unknown = await app.request('GET', '/tenants/nobody/users', { token: admin });
    expect(unknown.body.error?.code).toBe('TENANT_NOT_FOUND');
  });
});
