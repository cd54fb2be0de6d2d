/**
 * SQL注入防护 and 敏感信息泄露: metacharacters in searches and filters are data, never SQL;
 * malformed identifiers stop before any SQL; another tenant's id looks exactly like a random one
 * (status, body and the work done); logins fail uniformly; no error body carries SQL, database
 * text, a stack or another tenant's data; statistics count only the caller's tenant; and the logs
 * never contain a password, token or key.
 */
import { Writable } from 'node:stream';

import { createLogger } from '../../src/logger';
import { captureSql } from '../support/sqlCapture';
import { codeOf, PASSWORD, startWorld, type World, WORLD_TIMEOUT_MS } from './support/twoTenants';

let w: World;
const logLines: string[] = [];

beforeAll(async () => {
  // Every log line the app writes, at the most verbose level, to search for secrets.
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString('utf8'));
      done();
    },
  });
  w = await startWorld({ logger: createLogger({ level: 'trace', destination: sink }) });
}, WORLD_TIMEOUT_MS);
afterAll(async () => {
  await w.app.close();
});

/** What must never appear in a response body. */
const LEAK =
  /\b(SELECT|INSERT|UPDATE|DELETE)\b.*\b(FROM|INTO|SET)\b|relation "|violates|syntax error|node_modules|\.ts:\d+|at [\w.]+ \(|pg_|tenant_b|b_bot|b_stream/i;

/** A body without the per-response fields, for comparing two answers. */
function comparable(body: unknown): string {
  return JSON.stringify(body, (key, value: unknown) =>
    key === 'request_id' || key === 'timestamp' ? undefined : value,
  );
}

describe('injection', () => {
  const PROBES = [
    "' OR '1'='1",
    "'; DROP TABLE messages; --",
    '%',
    '_',
    '\\',
    '%_%',
    "tenant_b' --",
    '$1',
    '"; SELECT pg_sleep(5); --',
  ];

  it.each(PROBES)(
    'treats %j as data in memory search (200, no other tenant, nothing dropped)',
    async (probe) => {
      const res = await w.app.request('GET', `/memory/search?query=${encodeURIComponent(probe)}`, {
        token: w.A.tokens.tenant_admin,
      });
      expect(res.status).toBe(200);
      expect(JSON.stringify(res.body)).not.toContain(w.B.memory);
      const { rows } = await w.app.t.admin<{ n: number }>(`SELECT count(*)::int AS n FROM messages`);
      expect(rows[0]!.n).toBeGreaterThan(0);
    },
  );

  it('matches % and _ in the tenant search literally, not as wildcards', async () => {
    for (const probe of ['%', '_', "' OR '1'='1"]) {
      const res = await w.app.request('GET', `/tenants?search=${encodeURIComponent(probe)}`, {
        token: w.platformAdmin,
      });
      expect(res.status).toBe(200);
      const ids = (res.body.data.tenants as { tenant_id: string }[]).map((t) => t.tenant_id);
      // `_` is in both ids: literal matching finds both; % is in neither.
      expect(ids).toEqual(probe === '_' ? ['tenant_a', 'tenant_b'] : []);
    }
  });

  it.each([
    '/chat/streams?platform=%25',
    "/chat/streams?platform='%20OR%201=1",
    '/agents?status=active%27--',
  ])('refuses metacharacters in the filter of GET %s with 400', async (path) => {
    const res = await w.app.request('GET', path, { token: w.A.tokens.tenant_admin });
    expect(res.status).toBe(400);
    expect(codeOf(res)).toBe('VALIDATION_ERROR');
  });

  it('matches a free-text emoji category literally (%% is no wildcard)', async () => {
    const res = await w.app.request('GET', '/emoji/packs?category=%25%25', {
      token: w.A.tokens.tenant_admin,
    });
    expect(res.status).toBe(200);
    expect(res.body.data.packs).toEqual([]);
    const all = await w.app.request('GET', '/emoji/packs', { token: w.A.tokens.tenant_admin });
    expect((all.body.data.packs as unknown[]).length).toBe(1);
  });

  it('takes sort columns only from the allowlist', async () => {
    for (const sort of ['tenant_id; DROP TABLE tenants', 'name', '1']) {
      const res = await w.app.request('GET', `/stats/tenants?sort=${encodeURIComponent(sort)}`, {
        token: w.platformAdmin,
      });
      expect(res.status).toBe(400);
    }
    const ok = await w.app.request('GET', '/stats/tenants?sort=cost&order=asc', { token: w.platformAdmin });
    expect(ok.status).toBe(200);
  });

  it.each([
    '/agents/bad%20id',
    "/agents/x'%20OR%20'1'='1",
    '/chat/streams/..%2F..%2Fetc',
    `/chat/streams/${'a'.repeat(10_000)}`,
    "/emoji/packs/p';--",
    '/memory/agent/%22%3B',
  ])('rejects the malformed identifier in GET %s before any SQL', async (path) => {
    const token = w.A.tokens.tenant_admin;
    const capture = captureSql();
    let res;
    try {
      res = await w.app.request('GET', path, { token });
    } finally {
      capture.stop();
    }
    expect(res.status).toBe(400);
    expect(codeOf(res)).toBe('VALIDATION_ERROR');
    // Authentication may look the caller up; nothing else may have reached PostgreSQL.
    expect(capture.statements.filter((s) => !s.caller.startsWith('src/auth/'))).toEqual([]);
  });
});

describe('enumeration', () => {
  it.each([
    ['message', (w: World) => `/chat/messages/${w.B.message}`, '/chat/messages/msg_zz_stored'],
    [
      'message status',
      (w: World) => `/chat/messages/${w.B.message}/status`,
      '/chat/messages/msg_zz_stored/status',
    ],
    ['memory', (w: World) => `/memory/${w.B.memory}`, '/memory/mem_zzzzzzzzzzzzzzzzzzzzzz'],
    ['agent', (w: World) => `/agents/${w.B.agent}`, '/agents/zz_bot'],
    ['stream', (w: World) => `/chat/streams/${w.B.stream}`, '/chat/streams/zz_stream'],
    ['pack', (w: World) => `/emoji/packs/${w.B.pack}`, '/emoji/packs/zz_pack'],
  ])(
    "answers B's %s and a random id with the same status, body and SQL work",
    async (_kind, foreignPath, randomPath) => {
      const token = w.A.tokens.tenant_admin;
      // The id asked for, wherever it shows (body, or a setting in the SQL), reads as ID.
      const idOf = (p: string) =>
        decodeURIComponent(
          p
            .split('/')
            .filter((s) => s !== 'status')
            .at(-1)!,
        );
      const run = async (path: string) => {
        const capture = captureSql();
        try {
          const res = await w.app.request('GET', path, { token });
          // Authentication's cache refreshes depend on time, not on the id asked for.
          const work = capture.statements.filter((s) => !s.caller.startsWith('src/auth/'));
          return {
            status: res.status,
            body: comparable(res.body).replaceAll(idOf(path), 'ID'),
            statements: work.map((s) => `${s.caller} ${s.text}`.replaceAll(idOf(path), 'ID')),
          };
        } finally {
          capture.stop();
        }
      };
      // Warm both paths once (caches), then compare.
      await run(foreignPath(w));
      await run(randomPath);
      const foreign = await run(foreignPath(w));
      const random = await run(randomPath);
      expect(foreign.status).toBe(404);
      expect(random.status).toBe(404);
      expect(foreign.body).toBe(random.body);
      // Same statements from the same functions: the same work, hence the same latency profile.
      expect(foreign.statements).toEqual(random.statements);
    },
  );

  it('answers every failed login with the same 401 body', async () => {
    const attempts = [
      { tenant_id: 'tenant_a', username: 'a_admin', password: 'wrong password!' },
      { tenant_id: 'tenant_a', username: 'nobody', password: PASSWORD },
      { tenant_id: 'tenant_a', username: 'b_admin', password: PASSWORD },
      { tenant_id: 'tenant_zz', username: 'a_admin', password: PASSWORD },
      { username: 'a_admin', password: PASSWORD },
    ];
    const bodies = new Set<string>();
    for (const body of attempts) {
      const res = await w.app.request('POST', '/auth/login', { body });
      expect(res.status).toBe(401);
      bodies.add(comparable(res.body));
    }
    expect(bodies.size).toBe(1);
  });
});

describe('leaks', () => {
  it('keeps SQL, database text, stacks and B’s data out of every error body', async () => {
    const token = w.A.tokens.tenant_admin;
    const probes: [string, string, unknown][] = [
      ['GET', `/chat/messages/${w.B.message}`, undefined],
      ['GET', `/memory/${w.B.memory}`, undefined],
      ['PUT', `/agents/${w.B.agent}`, { name: 1 }],
      ['POST', '/chat/send', { message: '' }],
      ['POST', '/chat/streams', { chat_stream_id: w.A.stream, platform: 'qq', chat_type: 'group' }],
      ['POST', '/agents', { agent_id: w.A.agent, name: 'dup' }],
      ['GET', '/chat/a_stream/messages?before=not-a-cursor', undefined],
      [
        'GET',
        `/chat/a_stream/messages?before=${Buffer.from('["2020-13-45T99:99:99Z","x"]').toString('base64url')}`,
        undefined,
      ],
      ['POST', '/memory/store', { content: 'x', memory_type: 'fact', expires_at: '275760-09-13T00:00:00Z' }],
      ['GET', '/tenants/tenant_b', undefined],
      ['DELETE', `/auth/api-keys/${w.B.agentKeyId}`, undefined],
      ['POST', '/auth/refresh', { refresh_token: "x'; SELECT 1; --" }],
    ];
    for (const [method, path, body] of probes) {
      const res = await w.app.request(method, path, { token, body });
      expect({ path, status: res.status >= 400 }).toEqual({ path, status: true });
      expect({ path, body: LEAK.test(JSON.stringify(res.body)) }).toEqual({ path, body: false });
    }
  });

  it("shows a failed message's error without database text", async () => {
    const res = await w.app.request('GET', `/chat/messages/${w.A.failedMessage}/status`, {
      token: w.A.tokens.tenant_admin,
    });
    expect(res.status).toBe(200);
    expect(res.body.data.status).toBe('failed');
    expect(LEAK.test(JSON.stringify(res.body))).toBe(false);
  });

  it('counts only the caller’s tenant in statistics and usage', async () => {
    const token = w.A.tokens.tenant_admin;
    const stats = await w.app.request('GET', '/tenants/tenant_a/statistics', { token });
    expect(stats.status).toBe(200);
    const owner = await w.app.t.admin<{ n: number }>(
      `SELECT count(*)::int AS n FROM messages WHERE tenant_id = 'tenant_a'`,
    );
    const overview = stats.body.data.overview as {
      total_messages: number;
      agents_count: number;
      total_memory_items: number;
    };
    expect(overview.total_messages).toBe(owner.rows[0]!.n);
    const agents = await w.app.t.admin<{ n: number }>(
      `SELECT count(*)::int AS n FROM agents WHERE tenant_id = 'tenant_a'`,
    );
    expect(overview.agents_count).toBe(agents.rows[0]!.n);
    expect(overview.total_memory_items).toBe(1);
    const memory = await w.app.request('GET', '/memory/statistics', { token });
    expect(memory.body.data.total_memories).toBe(1);
    const usage = await w.app.request('GET', '/stats/usage?period=30d', { token });
    expect(usage.status).toBe(200);
    expect(JSON.stringify(usage.body)).not.toContain('tenant_b');
    const emoji = await w.app.request('GET', '/emoji/statistics', { token });
    expect(emoji.status).toBe(200);
    expect(JSON.stringify(emoji.body)).not.toMatch(/tenant_b|b_pack/);
  });

  it('never writes a password, token, API key, LLM key or webhook secret to the log', async () => {
    const token = w.A.tokens.tenant_admin;
    const llmKey = 'sk-live-SECRETLLMKEY0123456789';
    const webhookSecret = 'whsec-SECRETWEBHOOK0123456789';
    // Requests carrying each secret, some of them failing (errors are logged with more detail).
    await w.app.request('PUT', `/agents/${w.A.agent}/config`, {
      token,
      body: {
        llm: { api_key: llmKey },
        delivery: { webhook_url: 'http://127.0.0.1:9/hook', webhook_secret: webhookSecret },
      },
    });
    await w.app.request('PUT', '/config', {
      token,
      body: { category: 'llm', scope: 'tenant', config: { api_key: llmKey } },
    });
    await w.app.request('POST', '/auth/login', {
      body: { tenant_id: 'tenant_a', username: 'a_admin', password: 'a-wrong-PASSWORD-9' },
    });
    const login = await w.app.request('POST', '/auth/login', {
      body: { tenant_id: 'tenant_a', username: 'a_admin', password: PASSWORD },
    });
    const refresh = login.body.data.refresh_token as string;
    await w.app.request('POST', '/auth/refresh', { body: { refresh_token: refresh } });
    await w.app.request('GET', '/auth/me', { apiKey: w.A.agentKey });
    await w.app.request('GET', '/auth/me', { apiKey: `${w.A.agentKey}tampered` });
    await w.app.request('GET', '/auth/me', { token: `${token}x` });
    await w.app.request('POST', '/tenants/tenant_a/users', {
      token,
      body: { username: 'logged_user', password: 'user-PASSWORD-secret', role: 'reader' },
    });
    const log = logLines.join('');
    expect(log.length).toBeGreaterThan(0);
    for (const secret of [
      PASSWORD,
      'a-wrong-PASSWORD-9',
      'user-PASSWORD-secret',
      token,
      refresh,
      w.A.agentKey,
      llmKey,
      webhookSecret,
    ]) {
      expect({ secret: secret.slice(0, 12), logged: log.includes(secret) }).toEqual({
        secret: secret.slice(0, 12),
        logged: false,
      });
    }
    // The signature part of a JWT alone would be enough to replay it.
    expect(log.includes(token.split('.')[2]!)).toBe(false);
  });
});
