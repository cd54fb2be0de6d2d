import { created, createTenants } from '../support/fixtures';
import { startTestApp, type TestApp } from '../support/testApp';
import { waitFor } from '../support/waitFor';

let app: TestApp;
let acme: string;
let other: string;
let bot1Key: string;
let reader: string;

beforeAll(async () => {
  app = await startTestApp();
  await createTenants(app, ['acme', 'other']);
  await app.t.admin(
    `INSERT INTO agents (tenant_id, agent_id, name) VALUES ('acme', 'bot1', 'b1'), ('acme', 'bot2', 'b2'), ('other', 'bot1', 'b1')`,
  );
  await app.t.admin(
    `INSERT INTO chat_streams (tenant_id, chat_stream_id, agent_id, platform) VALUES
       ('acme', 'chat_001', 'bot1', 'qq'), ('acme', 'chat_002', 'bot1', 'qq'), ('acme', 'dc_1', 'bot1', 'discord'),
       ('acme', 'b2_chat', 'bot2', 'qq'), ('other', 'chat_001', 'bot1', 'qq')`,
  );
  acme = await app.tokenFor({ role: 'tenant_admin', tenantId: 'acme' });
  other = await app.tokenFor({ role: 'tenant_admin', tenantId: 'other' });
  bot1Key = await app.tokenFor({ role: 'agent', tenantId: 'acme', agentId: 'bot1' });
  reader = await app.tokenFor({ role: 'reader', tenantId: 'acme' });
});
afterAll(async () => {
  await app.close();
});

type Memory = Record<string, unknown> & { memory_id: string; content: string; score?: number };

async function store(token: string, body: Record<string, unknown>): Promise<Memory> {
  const res = created(
    await app.request('POST', '/memory/store', { token, body: { memory_type: 'fact', ...body } }),
  );
  return res.body.data as Memory;
}

async function get(token: string, path: string) {
  return app.request('GET', path, { token });
}

const ids = (list: unknown) => (list as Memory[]).map((m) => m.memory_id);
const q2 = async (token: string, query: string) =>
  ids((await get(token, `/memory/search?query=${encodeURIComponent(query)}`)).body.data.memories);
const fieldsOf = (res: { body: { error?: { details?: Record<string, unknown> } } }) =>
  ((res.body.error?.details?.fields ?? []) as { path: string }[]).map((f) => f.path).sort();

describe('the seed multi-level test', () => {
  it('returns each level memory from its own listing and not from the others', async () => {
    const a = await store(acme, { content: '智能体级别记忆', agent_id: 'bot1', scope: 'agent' });
    const p = await store(acme, {
      content: '平台级别记忆',
      agent_id: 'bot1',
      scope: 'platform',
      platform: 'qq',
    });
    const c = await store(acme, { content: '聊天级别记忆', chat_stream_id: 'chat_001' });
    expect([a.scope, p.scope, c.scope]).toEqual(['agent', 'platform', 'chat']);
    expect(c).toMatchObject({ agent_id: 'bot1', platform: 'qq', chat_stream_id: 'chat_001', merged: false });
    const agentList = await get(acme, '/memory/agent/bot1');
    const platformList = await get(acme, '/memory/platform/qq');
    const chatList = await get(acme, '/memory/chat/chat_001');
    expect(ids(agentList.body.data.memories)).toEqual([a.memory_id]);
    expect(ids(platformList.body.data.memories)).toEqual([p.memory_id]);
    expect(ids(chatList.body.data.memories)).toEqual([c.memory_id]);
    expect(chatList.body.data.pagination).toEqual({ page: 1, limit: 20, total: 1, pages: 1 });
    expect(ids((await get(acme, '/memory/chat/chat_002')).body.data.memories)).toEqual([]);
    expect(ids((await get(acme, '/memory/platform/discord')).body.data.memories)).toEqual([]);
    expect(ids((await get(other, '/memory/chat/chat_001')).body.data.memories)).toEqual([]);
  });
});

describe('store', () => {
  it('rejects bad scope, type, importance and unknown fields with every field listed', async () => {
    const res = await app.request('POST', '/memory/store', {
      token: acme,
      body: { content: 'x', memory_type: 'gossip', importance: 2, scope: 'galaxy', colour: 'red' },
    });
    expect(res.status).toBe(400);
    expect(res.body.error?.code).toBe('VALIDATION_ERROR');
    expect(fieldsOf(res)).toEqual(['body', 'importance', 'memory_type', 'scope']);
  });

  it('rejects contradicting scope fields, a past expiry and an unknown stream or agent', async () => {
    const contradiction = await app.request('POST', '/memory/store', {
      token: acme,
      body: {
        content: 'x',
        memory_type: 'fact',
        scope: 'agent',
        platform: 'qq',
        expires_at: '2001-01-01T00:00:00Z',
      },
    });
    expect(contradiction.status).toBe(400);
    expect(fieldsOf(contradiction)).toEqual(['expires_at', 'platform']);
    const noPlatform = await app.request('POST', '/memory/store', {
      token: acme,
      body: { content: 'x', memory_type: 'fact', scope: 'platform' },
    });
    expect(fieldsOf(noPlatform)).toEqual(['platform']);
    const stream = await app.request('POST', '/memory/store', {
      token: other,
      body: { content: 'x', memory_type: 'fact', chat_stream_id: 'chat_002' },
    });
    expect(stream.status).toBe(404);
    expect(stream.body.error?.code).toBe('CHAT_STREAM_NOT_FOUND');
    const agent = await app.request('POST', '/memory/store', {
      token: other,
      body: { content: 'x', memory_type: 'fact', agent_id: 'bot2' },
    });
    expect(agent.body.error?.code).toBe('AGENT_NOT_FOUND');
  });

  it('strengthens a memory saying the same in the same scope instead of storing a copy', async () => {
    const first = await store(acme, {
      content: 'Alice likes green tea.',
      agent_id: 'bot2',
      importance: 0.5,
      tags: ['drink'],
    });
    const again = await store(acme, {
      content: '  alice LIKES green tea ',
      agent_id: 'bot2',
      importance: 0.4,
      tags: ['alice'],
    });
    expect(again.memory_id).toBe(first.memory_id);
    expect(again).toMatchObject({
      merged: true,
      access_count: 1,
      importance: 0.55,
      tags: ['alice', 'drink'],
    });
    const elsewhere = await store(acme, { content: 'Alice likes green tea.', chat_stream_id: 'b2_chat' });
    expect(elsewhere.memory_id).not.toBe(first.memory_id);
    expect(elsewhere.merged).toBe(false);
  });

  it('is for admins: readers and agent keys may not store', async () => {
    for (const token of [reader, bot1Key]) {
      const res = await app.request('POST', '/memory/store', {
        token,
        body: { content: 'x', memory_type: 'fact' },
      });
      expect(res.status).toBe(403);
      expect(res.body.error?.code).toBe('FORBIDDEN');
    }
  });
});

describe('read, change, delete', () => {
  it('reads a memory (counting the access), changes and deletes it; another tenant gets 404', async () => {
    const m = await store(acme, { content: '喜欢爬山', agent_id: 'bot1', tags: ['运动'] });
    const read = await get(acme, `/memory/${m.memory_id}`);
    expect(read.body.data).toMatchObject({ content: '喜欢爬山', access_count: 1 });
    expect(read.body.data.last_accessed).not.toBeNull();
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const res = await app.request(method, `/memory/${m.memory_id}`, {
        token: other,
        ...(method === 'PUT' ? { body: { importance: 0.9 } } : {}),
      });
      expect(res.status).toBe(404);
      expect(res.body.error?.code).toBe('NOT_FOUND');
    }
    const put = await app.request('PUT', `/memory/${m.memory_id}`, {
      token: acme,
      body: { content: '喜欢爬山和徒步', importance: 0.9, memory_type: 'preference', title: null },
    });
    expect(put.status).toBe(200);
    expect(put.body.data).toMatchObject({
      content: '喜欢爬山和徒步',
      importance: 0.9,
      memory_type: 'preference',
    });
    const search = await get(acme, `/memory/search?query=${encodeURIComponent('徒步')}`);
    expect(ids(search.body.data.memories)).toEqual([m.memory_id]);
    const bad = await app.request('PUT', `/memory/${m.memory_id}`, { token: acme, body: { scope: 'chat' } });
    expect(bad.status).toBe(400);
    const empty = await app.request('PUT', `/memory/${m.memory_id}`, { token: acme, body: {} });
    expect(empty.status).toBe(400);
    const del = await app.request('DELETE', `/memory/${m.memory_id}`, { token: acme });
    expect(del.body.data).toEqual({ memory_id: m.memory_id, deleted: true });
    expect((await get(acme, `/memory/${m.memory_id}`)).status).toBe(404);
  });
});

describe('agent keys', () => {
  it("see only their agent's memories and get 403 ISOLATION_VIOLATION naming another agent", async () => {
    const mine = await store(acme, { content: 'bot1 knows the password is swordfish', agent_id: 'bot1' });
    const theirs = await store(acme, { content: 'bot2 knows the password is marlin', agent_id: 'bot2' });
    const search = await get(bot1Key, '/memory/search?query=password');
    expect(ids(search.body.data.memories)).toEqual([mine.memory_id]);
    expect((await get(bot1Key, `/memory/${theirs.memory_id}`)).status).toBe(404);
    for (const path of [
      '/memory/agent/bot2',
      '/memory/search?query=password&agent_id=bot2',
      '/memory/platform/qq?agent_id=bot2',
      '/memory/statistics?agent_id=bot2',
    ]) {
      const res = await get(bot1Key, path);
      expect(res.status).toBe(403);
      expect(res.body.error?.code).toBe('ISOLATION_VIOLATION');
    }
    const stats = await get(bot1Key, '/memory/statistics');
    const all = await get(acme, '/memory/statistics');
    expect(stats.body.data.total_memories as number).toBeLessThan(all.body.data.total_memories as number);
  });
});

describe('search', () => {
  it('finds Chinese without spaces, English and mixed text, tenant-isolated, and counts the accesses', async () => {
    const zh = await store(acme, { content: '小明最喜欢吃重庆火锅', agent_id: 'bot1', importance: 0.8 });
    const en = await store(acme, { content: 'Bob is allergic to peanuts', agent_id: 'bot1' });
    const mixed = await store(acme, { content: '周末一起玩 Minecraft 服务器', agent_id: 'bot1' });
    await store(other, { content: '小明最喜欢吃重庆火锅', agent_id: 'bot1' });
    const q = async (query: string, token = acme) =>
      ids((await get(token, `/memory/search?query=${encodeURIComponent(query)}`)).body.data.memories);
    expect((await q('火锅'))[0]).toBe(zh.memory_id);
    expect((await q('peanut allergy'))[0]).toBe(en.memory_id);
    expect((await q('minecraft'))[0]).toBe(mixed.memory_id);
    expect(await q('火锅', other)).not.toContain(zh.memory_id);
    // A search's accesses are written just after its response (MemoryAccessCounter).
    await waitFor(async () => {
      const { rows } = await app.t.admin<{ n: number }>(
        `SELECT access_count AS n FROM memory_chest WHERE memory_id = $1`,
        [zh.memory_id],
      );
      return rows[0]!.n >= 1 ? true : undefined;
    });
    const read = await get(acme, `/memory/${zh.memory_id}`);
    expect(read.body.data.access_count).toBe(2);
  });

  it('sees a chat stream as its agent, platform and stream memories, never another stream', async () => {
    const x = await store(acme, { content: '暗号是蓝色的鲸鱼 chat one', chat_stream_id: 'chat_001' });
    const y = await store(acme, { content: '暗号是红色的鲸鱼 chat two', chat_stream_id: 'chat_002' });
    const plat = await store(acme, {
      content: '暗号在QQ上是鲸鱼',
      agent_id: 'bot1',
      scope: 'platform',
      platform: 'qq',
    });
    const dc = await store(acme, {
      content: '暗号在discord上是鲸鱼',
      agent_id: 'bot1',
      scope: 'platform',
      platform: 'discord',
    });
    const res = await get(
      acme,
      `/memory/search?query=${encodeURIComponent('暗号鲸鱼')}&chat_stream_id=chat_001`,
    );
    const found = ids(res.body.data.memories);
    expect(found).toEqual(expect.arrayContaining([x.memory_id, plat.memory_id]));
    expect(found).not.toContain(y.memory_id);
    expect(found).not.toContain(dc.memory_id);
  });

  it('filters by platform, scope and type: a platform sees its own and the agent-wide memories only', async () => {
    const agentWide = await store(acme, { content: '密语是紫色的海豚', agent_id: 'bot1', scope: 'agent' });
    const qq = await store(acme, {
      content: '密语在QQ上是紫色的海豚',
      agent_id: 'bot1',
      scope: 'platform',
      platform: 'qq',
      memory_type: 'preference',
    });
    const discord = await store(acme, {
      content: '密语在discord上是紫色的海豚',
      agent_id: 'bot1',
      scope: 'platform',
      platform: 'discord',
    });
    const qqChat = await store(acme, { content: '密语在群里是紫色的海豚', chat_stream_id: 'chat_001' });
    const search = async (params: string) =>
      ids(
        (await get(acme, `/memory/search?query=${encodeURIComponent('紫色海豚')}&${params}`)).body.data
          .memories,
      );
    const fromDiscord = await search('platform=discord');
    expect(fromDiscord).toEqual(expect.arrayContaining([agentWide.memory_id, discord.memory_id]));
    expect(fromDiscord).not.toContain(qq.memory_id);
    expect(fromDiscord).not.toContain(qqChat.memory_id);
    expect((await search('scope=platform')).sort()).toEqual([qq.memory_id, discord.memory_id].sort());
    expect(await search('type=preference')).toEqual([qq.memory_id]);
    expect(await search('scope=chat&platform=qq')).toEqual([qqChat.memory_id]);
    // A tenant prefix typed into the query is no way into another tenant's index entries.
    expect(await q2(other, 'acme/紫色海豚')).toEqual([]);
    const bad = await get(acme, '/memory/search?query=x&type=secret&scope=tenant');
    expect(bad.status).toBe(400);
    expect(fieldsOf(bad)).toEqual(['scope', 'type']);
  });

  it('searches %, _ and quotes literally', async () => {
    const pct = await store(acme, { content: 'discount 100% off', agent_id: 'bot1' });
    const under = await store(acme, { content: 'variable snake_case', agent_id: 'bot1' });
    await store(acme, { content: 'plain words without metacharacters', agent_id: 'bot1' });
    const q = async (query: string) => {
      const res = await get(acme, `/memory/search?query=${encodeURIComponent(query)}`);
      expect(res.status).toBe(200);
      return ids(res.body.data.memories);
    };
    expect(await q('%')).toEqual([pct.memory_id]);
    expect(await q('_')).toEqual([under.memory_id]);
    expect(await q("'; DROP TABLE memory_chest; --")).toEqual([]);
    expect(await q('%%%')).toEqual([]);
  });

  it('rejects empty and 10k-character queries, unknown filters and limit over 100 with the fields', async () => {
    const long = 'a'.repeat(10_000);
    const cases: [string, string[]][] = [
      ['/memory/search?query=', ['query']],
      ['/memory/search', ['query']],
      [`/memory/search?query=${long}`, ['query']],
      ['/memory/search?query=x&limit=101&colour=red&scope=x', ['limit', 'query', 'scope']],
      ['/memory/agent/bot1?limit=101', ['limit']],
    ];
    for (const [path, fields] of cases) {
      const res = await get(acme, path);
      expect(res.status).toBe(400);
      expect(fieldsOf(res)).toEqual(fields);
    }
  });
});

describe('expiry and statistics', () => {
  it('neither returns nor counts expired memories, and purges them', async () => {
    const m = await store(acme, {
      content: '临时口令是42号',
      agent_id: 'bot2',
      expires_at: new Date(Date.now() + 60_000).toISOString(),
    });
    expect(
      ids((await get(acme, `/memory/search?query=${encodeURIComponent('临时口令')}`)).body.data.memories),
    ).toEqual([m.memory_id]);
    const before = (await get(acme, '/memory/statistics?agent_id=bot2')).body.data;
    await app.t.admin(
      `UPDATE memory_chest SET expires_at = now() - interval '1 second' WHERE memory_id = '${m.memory_id}'`,
    );
    expect(
      ids((await get(acme, `/memory/search?query=${encodeURIComponent('临时口令')}`)).body.data.memories),
    ).toEqual([]);
    expect((await get(acme, `/memory/${m.memory_id}`)).status).toBe(404);
    expect(ids((await get(acme, '/memory/agent/bot2')).body.data.memories)).not.toContain(m.memory_id);
    const after = (await get(acme, '/memory/statistics?agent_id=bot2')).body.data;
    expect(after.total_memories).toBe((before.total_memories as number) - 1);
    await store(acme, { content: 'anything new', agent_id: 'bot2' });
    const rows = await app.t.admin(`SELECT 1 FROM memory_chest WHERE memory_id = '${m.memory_id}'`);
    expect(rows.rowCount).toBe(0);
  });

  it('counts by type, scope and importance band and today', async () => {
    // Tenant `other` has one memory, found once by its search for 火锅 above.
    const stats = (await get(other, '/memory/statistics')).body.data;
    expect(stats).toEqual({
      total_memories: 1,
      by_type: { preference: 0, fact: 1, conversation: 0, emotion: 0, summary: 0 },
      by_scope: { agent: 1, platform: 0, chat: 0 },
      by_importance: { high: 0, medium: 1, low: 0 },
      recent_activity: { added_today: 1, accessed_today: 1 },
    });
  });
});
