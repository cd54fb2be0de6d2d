/**
 * Security cases: the context a request names and the input it carries. Each case is a request
 * from outside (HTTP, or NapCat's WebSocket), with what must not have happened checked in
 * PostgreSQL as the owner.
 *
 * Found by probing the server: a `tenant_id` naming another tenant in a query string was ignored
 * (API.md: 403), deep JSON in a free-form field overflowed the stack (500), a NUL character was
 * accepted and then lost in a worker with the database's error text in the message status.
 */
import { WebSocket } from 'ws';

import { created, createTenants } from '../support/fixtures';
import { startTestApp, type TestApp } from '../support/testApp';

let app: TestApp;
let aAdmin: string;
let aAgentKey: string;

beforeAll(async () => {
  app = await startTestApp();
  await createTenants(app, ['tenant_a', 'tenant_b']);
  await app.t.admin(`INSERT INTO agents (tenant_id, agent_id, name) VALUES ('tenant_a', 'bot2', 'b2')`);
  aAdmin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'tenant_a' });
  const key = created(
    await app.request('POST', '/auth/api-keys', {
      token: aAdmin,
      body: { name: 'adapter', role: 'agent', agent_id: 'default' },
    }),
  );
  aAgentKey = key.body.data.api_key as string;
});
afterAll(async () => {
  await app.close();
});

const codeOf = (res: { body: { error?: { code: string } } }) => res.body.error?.code;
const fieldsOf = (res: { body: { error?: { details?: Record<string, unknown> } } }) =>
  (res.body.error?.details?.fields ?? []) as { path: string; issue: string }[];
const messagesOf = async (tenantId: string) =>
  (
    await app.t.admin<{ n: number }>(`SELECT count(*)::int AS n FROM messages WHERE tenant_id = $1`, [
      tenantId,
    ])
  ).rows[0]!.n;

describe('context forgery', () => {
  it.each([
    ['GET', '/chat/streams?tenant_id=tenant_b'],
    ['GET', '/agents?tenant_id=tenant_b'],
    ['GET', '/auth/api-keys?tenant_id=tenant_b'],
    ['GET', '/auth/me?tenant_id=tenant_b'],
  ])('%s %s: another tenant in the query string is 403 ISOLATION_VIOLATION', async (method, path) => {
    const res = await app.request(method, path, { token: aAdmin });
    expect(res.status).toBe(403);
    expect(codeOf(res)).toBe('ISOLATION_VIOLATION');
  });

  it('accepts the caller’s own tenant in the query string', async () => {
    const res = await app.request('GET', '/chat/streams?tenant_id=tenant_a', { token: aAdmin });
    expect(res.status).toBe(200);
  });

  it('refuses another tenant in a body, and writes nothing', async () => {
    const res = await app.request('POST', '/chat/send', {
      apiKey: aAgentKey,
      body: { message: 'hi', chat_stream_id: 'c1', platform: 'qq', tenant_id: 'tenant_b' },
    });
    expect(res.status).toBe(403);
    expect(codeOf(res)).toBe('ISOLATION_VIOLATION');
    expect(await messagesOf('tenant_b')).toBe(0);
    expect(await messagesOf('tenant_a')).toBe(0);
  });

  it('refuses another agent named by an agent-bound key, in the query and in a body', async () => {
    const inQuery = await app.request('GET', '/chat/streams?agent_id=bot2', { apiKey: aAgentKey });
    expect(inQuery.status).toBe(403);
    expect(codeOf(inQuery)).toBe('ISOLATION_VIOLATION');
    const inBody = await app.request('POST', '/chat/send', {
      apiKey: aAgentKey,
      body: { message: 'hi', chat_stream_id: 'c1', platform: 'qq', agent_id: 'bot2' },
    });
    expect(inBody.status).toBe(403);
    expect(codeOf(inBody)).toBe('ISOLATION_VIOLATION');
  });

  it('refuses unknown query parameters like unknown body fields (400 naming them)', async () => {
    const res = await app.request('GET', '/auth/me?debug=1&verbose=yes', { token: aAdmin });
    expect(res.status).toBe(400);
    expect(fieldsOf(res)).toEqual([{ path: 'query', issue: 'unknown field(s): debug, verbose' }]);
    const listed = await app.request('GET', '/chat/streams?limit=5&sort=evil', { token: aAdmin });
    expect(listed.status).toBe(400);
    expect(fieldsOf(listed)[0]!.issue).toContain('sort');
  });
});

describe('hostile input', () => {
  const deep = (levels: number): unknown => {
    let v: unknown = 'bottom';
    for (let i = 0; i < levels; i++) v = { n: v };
    return v;
  };

  it('answers deeply nested JSON in a free-form field with 400 naming the field, not 500', async () => {
    // Built as text: JSON.stringify itself overflows on such a value.
    const metadata = `${'{"n":'.repeat(5000)}"bottom"${'}'.repeat(5000)}`;
    const res = await app.request('POST', '/chat/streams', {
      token: aAdmin,
      rawBody: `{"chat_stream_id":"deep","platform":"qq","chat_type":"group","metadata":${metadata}}`,
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(400);
    expect(fieldsOf(res)[0]!.path.startsWith('metadata')).toBe(true);
    expect(fieldsOf(res)[0]!.issue).toMatch(/nested deeper than 32 levels/);
  });

  it('answers JSON too deep for the parser itself with 400', async () => {
    const res = await app.request('POST', '/chat/streams', {
      token: aAdmin,
      rawBody: `{"metadata":${'['.repeat(200_000)}${']'.repeat(200_000)}}`,
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(400);
  });

  it('still takes nesting a real client sends', async () => {
    const res = await app.request('POST', '/chat/streams', {
      token: aAdmin,
      body: { chat_stream_id: 'nested-ok', platform: 'qq', chat_type: 'group', metadata: deep(20) },
    });
    expect(res.body.error).toBeUndefined();
    expect(res.status).toBe(201);
  });

  it('refuses a message with a NUL character (400), and nothing is stored or queued', async () => {
    const res = await app.request('POST', '/chat/send', {
      apiKey: aAgentKey,
      body: { message: 'before\u0000after', chat_stream_id: 'nul', platform: 'qq' },
    });
    expect(res.status).toBe(400);
    expect(fieldsOf(res)).toEqual([{ path: 'message', issue: 'contains a NUL character (U+0000)' }]);
    expect(await messagesOf('tenant_a')).toBe(0);
    expect(await app.deps.queues.waitingCount('tenant_a')).toBe(0);
  });

  it('refuses a NUL character in a field name and in a query value', async () => {
    const inKey = await app.request('POST', '/chat/streams', {
      token: aAdmin,
      body: { chat_stream_id: 'k', platform: 'qq', chat_type: 'group', metadata: { 'a\u0000b': 1 } },
    });
    expect(inKey.status).toBe(400);
    const inQuery = await app.request('GET', '/chat/streams?platform=q%00q', { token: aAdmin });
    expect(inQuery.status).toBe(400);
    expect(fieldsOf(inQuery)[0]!.path).toBe('query.platform');
  });

  it('closes a NapCat socket that sends a frame nested too deep, with the reason', async () => {
    await app.request('PUT', '/agents/default/config', {
      token: aAdmin,
      body: { accounts: [{ platform: 'qq', account_id: '1145141919', nickname: '麦麦' }] },
    });
    const ws = new WebSocket(`${app.url.replace(/^http/, 'ws')}/api/v1/adapters/onebot/v11/ws`, {
      headers: {
        'X-Self-ID': '1145141919',
        'X-Client-Role': 'Universal',
        Authorization: `Bearer ${aAgentKey}`,
      },
    });
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send(JSON.stringify({ post_type: 'message', deep: deep(100) }));
    const { code, reason } = await closed;
    expect(code).toBe(1007);
    expect(reason).toMatch(/nested deeper than 32 levels/);
  });
});
