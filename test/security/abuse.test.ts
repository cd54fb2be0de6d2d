/**
 * Abuse: oversized, deep, huge, malformed and hostile input is answered with a clean 4xx (or stored
 * and returned exactly), never a 500, a hang, or an accepted-then-lost message. The property-based
 * cases (fast-check) generate bodies for the validators of chat/send, batch, streams, agents,
 * tenants, memory and config: any input gets 2xx or 4xx, and what a 2xx accepted reads back
 * unchanged.
 */
import fc from 'fast-check';

import { codeOf, startWorld, type World, WORLD_TIMEOUT_MS } from './support/twoTenants';

let w: World;
let admin: string;

beforeAll(async () => {
  w = await startWorld();
  admin = w.A.tokens.tenant_admin;
}, WORLD_TIMEOUT_MS);
afterAll(async () => {
  await w.app.close();
});

const deepJson = (levels: number) => `${'{"n":'.repeat(levels)}1${'}'.repeat(levels)}`;

async function rawPost(path: string, body: Buffer | string, token = admin) {
  const res = await fetch(`${w.app.url}/api/v1${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body,
  });
  return { status: res.status, body: (await res.json()) as { error?: { code: string } } };
}

describe('hostile bodies', () => {
  it('answers a body over MAX_BODY_BYTES with 413', async () => {
    const res = await rawPost('/chat/send', JSON.stringify({ message: 'x'.repeat(2 * 1024 * 1024) }));
    expect(res.status).toBe(413);
    expect(res.body.error?.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it.each([
    ['/memory/store', (d: string) => `{"content":"x","memory_type":"fact","metadata":${d}}`],
    [
      '/chat/streams',
      (d: string) => `{"chat_stream_id":"deep1","platform":"qq","chat_type":"group","metadata":${d}}`,
    ],
    ['/emoji/send', (d: string) => `{"chat_stream_id":"a_stream","emoji":"😀","context":${d}}`],
    [
      '/heartflow/process',
      (d: string) => `{"message":{"content":"hi","chat_stream_id":"a_stream"},"context":${d}}`,
    ],
    ['/tenants', (d: string) => `{"tenant_id":"deep_t","name":"x","settings":${d}}`],
    ['/plugins/dice/execute', (d: string) => `{"action":"roll","parameters":${d}}`],
  ])('answers deeply nested JSON in the free-form field of POST %s with 400', async (path, body) => {
    const res = await rawPost(path, body(deepJson(40)), path === '/tenants' ? w.platformAdmin : admin);
    expect(res.status).toBe(400);
  });

  it.each([
    [
      'a batch of 101 messages',
      '/chat/send/batch',
      { messages: Array.from({ length: 101 }, () => ({ message: 'x' })) },
    ],
    [
      '10,000 tags',
      '/memory/store',
      { content: 'x', memory_type: 'fact', tags: Array.from({ length: 10_000 }, (_, i) => `t${i}`) },
    ],
    [
      '100,000 participants',
      '/chat/streams',
      {
        chat_stream_id: 'huge',
        platform: 'qq',
        chat_type: 'group',
        participants: Array.from({ length: 100_000 }, (_, i) => `u${i}`),
      },
    ],
    [
      '5,000 emojis',
      '/emoji/packs',
      { pack_id: 'huge', name: 'x', emojis: Array.from({ length: 5000 }, () => ({ emoji: '😀' })) },
    ],
  ])('answers %s with a clean 4xx', async (_what, path, body) => {
    const res = await w.app.request('POST', path, { token: admin, body });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  });

  it('refuses invalid UTF-8 in a body with 400 instead of storing replacement characters', async () => {
    const bytes = Buffer.concat([
      Buffer.from('{"content":"bad '),
      Buffer.from([0xff, 0xfe, 0xc3]),
      Buffer.from('","memory_type":"fact"}'),
    ]);
    const res = await rawPost('/memory/store', bytes);
    expect(res.status).toBe(400);
    const { rows } = await w.app.t.admin(`SELECT 1 FROM memory_chest WHERE content LIKE 'bad %'`);
    expect(rows).toEqual([]);
  });

  const TEXT_FIELDS: [string, string, (s: string) => unknown][] = [
    ['message', '/chat/send', (s) => ({ message: s, chat_stream_id: 'a_stream' })],
    ['memory content', '/memory/store', (s) => ({ content: s, memory_type: 'fact' })],
    ['memory title', '/memory/store', (s) => ({ content: 'x', title: s, memory_type: 'fact' })],
    ['agent name', '/agents', (s) => ({ agent_id: 'n1', name: s })],
    [
      'stream group name',
      '/chat/streams',
      (s) => ({ chat_stream_id: 'n2', platform: 'qq', chat_type: 'group', group_name: s }),
    ],
    [
      'emoji description',
      '/emoji/packs',
      (s) => ({ pack_id: 'n3', name: 'x', emojis: [{ emoji: '😀', description: s }] }),
    ],
    ['API key name', '/auth/api-keys', (s) => ({ name: s, role: 'reader' })],
    ['sender name', '/chat/send', (s) => ({ message: 'x', sender_info: { user_id: 'u', username: s } })],
  ];

  it.each(TEXT_FIELDS)('refuses a NUL byte in the %s (400, nothing stored)', async (_field, path, body) => {
    const res = await w.app.request('POST', path, { token: admin, body: body('a\u0000b') });
    expect(res.status).toBe(400);
  });

  it.each(TEXT_FIELDS)(
    'refuses a lone surrogate in the %s (400) rather than storing U+FFFD',
    async (_field, path, body) => {
      // JSON.stringify escapes a lone surrogate as \\ud800: valid JSON, not representable in UTF-8.
      const res = await w.app.request('POST', path, { token: admin, body: body('a\ud800b') });
      expect(res.status).toBe(400);
      expect(codeOf(res)).toBe('VALIDATION_ERROR');
    },
  );

  it.each([
    ['a 10k-character agent id', '/agents', { agent_id: 'a'.repeat(10_000), name: 'x' }],
    ['a 10k-character stream id', '/chat/send', { message: 'x', chat_stream_id: 'c'.repeat(10_000) }],
    [
      'a 10k-character client message id',
      '/chat/send',
      { message: 'x', client_message_id: 'c'.repeat(10_000) },
    ],
  ])('refuses %s with 400', async (_what, path, body) => {
    const res = await w.app.request('POST', path, { token: admin, body });
    expect(res.status).toBe(400);
  });

  it.each([
    '/agents?limit=1000000',
    '/agents?page=99999999999999999999',
    '/chat/streams?limit=-1',
    '/memory/search?query=x&limit=1e9',
    '/chat/a_stream/messages?limit=NaN',
    '/tenants/tenant_a/users?page=0',
  ])('answers the absurd page or limit in GET %s with 400', async (path) => {
    const res = await w.app.request('GET', path, { token: admin });
    expect(res.status).toBe(400);
  });

  it('refuses a whole batch with a NUL in one item, queueing nothing', async () => {
    const before = await w.app.deps.queues.waitingCount('tenant_a');
    const res = await w.app.request('POST', '/chat/send/batch', {
      token: admin,
      body: {
        messages: [
          { message: 'fine', chat_stream_id: 'hostile' },
          { message: 'a\u0000b', chat_stream_id: 'hostile' },
        ],
      },
    });
    expect(res.status).toBe(400);
    expect(await w.app.deps.queues.waitingCount('tenant_a')).toBe(before);
  });

  it('never loses an accepted message: every success of a hostile batch is queued and readable', async () => {
    const before = await w.app.deps.queues.waitingCount('tenant_a');
    const texts = [
      '  spaced  ',
      '🙂'.repeat(4000),
      '\u202Eright-to-left\u202C',
      "'; DROP TABLE messages; --",
      'x'.repeat(8001),
    ];
    const res = await w.app.request('POST', '/chat/send/batch', {
      token: admin,
      body: { messages: texts.map((message) => ({ message, chat_stream_id: 'hostile' })) },
    });
    expect(res.status).toBe(200);
    const results = res.body.data.results as { success: boolean; data?: { message_id: string } }[];
    expect(results[4]!.success).toBe(false);
    const accepted = results.filter((r) => r.success);
    expect(accepted.length).toBeGreaterThanOrEqual(3);
    expect(await w.app.deps.queues.waitingCount('tenant_a')).toBe(before + accepted.length);
    for (const r of accepted) {
      const read = await w.app.request('GET', `/chat/messages/${r.data!.message_id}`, { token: admin });
      expect(read.status).toBe(200);
    }
  });
});

describe('property-based: any input is 2xx or 4xx, and a 2xx reads back unchanged', () => {
  jest.setTimeout(120_000);
  const RUNS = 25;
  // Text that exercises the edges: control characters, astral and combining characters, lone
  // surrogates, NUL, quotes and SQL/markup shapes.
  const hostileText = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.constantFrom("'; DROP TABLE messages; --", '<script>x</script>', '\u0000', '\ud800', '%_\\', ' ', ''),
  );
  const anyValue = fc.oneof(hostileText, fc.jsonValue({ maxDepth: 4 }), fc.anything({ maxDepth: 3 }));
  const identifier = fc.oneof(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,20}$/), hostileText);

  /**
   * What the server returns for `field` at `path` when the request was accepted (`okStatus`);
   * otherwise the value sent, so that the caller's comparison holds trivially.
   */
  async function readBack(
    res: { status: number },
    okStatus: number,
    path: () => string,
    field: string,
    sent: unknown,
    token = admin,
  ): Promise<unknown> {
    if (res.status !== okStatus) return sent;
    const read = await w.app.request('GET', path(), { token });
    return read.status === 200 ? read.body.data[field] : { unreadable: read.status };
  }

  async function check(method: string, path: string, body: unknown, token = admin) {
    const res = await w.app.request(method, path, { token, body });
    expect({ path, status: res.status < 500 }).toEqual({ path, status: true });
    return res;
  }

  it('POST /chat/send', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          {
            message: anyValue,
            chat_stream_id: identifier,
            platform: identifier,
            client_message_id: anyValue,
            sender_info: anyValue,
            options: anyValue,
            extra: anyValue,
          },
          { requiredKeys: ['message'] },
        ),
        async (body) => {
          const res = await check('POST', '/chat/send', body);
          const sent = typeof body.message === 'string' ? body.message.trim() : body.message;
          expect(
            await readBack(
              res,
              200,
              () => `/chat/messages/${res.body.data.message_id as string}`,
              'content',
              sent,
            ),
          ).toEqual(sent);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('POST /chat/send/batch', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          messages: fc.oneof(
            fc.array(fc.record({ message: anyValue, chat_stream_id: identifier }), { maxLength: 5 }),
            anyValue,
          ),
        }),
        async (body) => {
          expect((await check('POST', '/chat/send/batch', body)).status).toBeLessThan(500);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('POST /chat/streams', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          chat_stream_id: identifier,
          platform: fc.constantFrom('qq', 'discord'),
          chat_type: fc.constantFrom('group', 'private', 'x'),
          metadata: anyValue,
          group_name: anyValue,
        }),
        async (body) => {
          const res = await check('POST', '/chat/streams', body);
          // What JSON carries: `undefined` in an array is sent as null.
          const sent: unknown = JSON.parse(JSON.stringify(body.metadata ?? null)) ?? undefined;
          const path = () => `/chat/streams/${encodeURIComponent(body.chat_stream_id)}`;
          expect(await readBack(res, 201, path, 'metadata', sent)).toEqual(sent);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('POST /agents and PUT /agents/{id}/config', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          { agent_id: identifier, name: anyValue, description: anyValue, config: anyValue },
          { requiredKeys: ['agent_id', 'name'] },
        ),
        async (body) => {
          const res = await check('POST', '/agents', body);
          const sent = typeof body.name === 'string' ? body.name.trim() : body.name;
          const path = () => `/agents/${encodeURIComponent(body.agent_id)}`;
          expect(await readBack(res, 201, path, 'name', sent)).toEqual(sent);
          if (res.status === 201) await w.app.request('DELETE', path(), { token: admin });
          await check('PUT', `/agents/${w.A.agent}/config`, body.config);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('POST /tenants', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          { tenant_id: identifier, name: anyValue, description: anyValue, settings: anyValue },
          { requiredKeys: ['tenant_id', 'name'] },
        ),
        async (body) => {
          const res = await check('POST', '/tenants', body, w.platformAdmin);
          const sent = typeof body.name === 'string' ? body.name.trim() : body.name;
          const path = () => `/tenants/${encodeURIComponent(body.tenant_id)}`;
          expect(await readBack(res, 201, path, 'name', sent, w.platformAdmin)).toEqual(sent);
          if (res.status === 201) await w.app.request('DELETE', path(), { token: w.platformAdmin });
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('POST /memory/store and PUT /memory/{id}', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          {
            content: anyValue,
            title: anyValue,
            memory_type: fc.constantFrom('fact', 'preference', 'bogus'),
            importance: anyValue,
            tags: anyValue,
            metadata: anyValue,
          },
          { requiredKeys: ['content', 'memory_type'] },
        ),
        async (body) => {
          const res = await check('POST', '/memory/store', body);
          const sent = typeof body.content === 'string' ? body.content.trim() : body.content;
          const path = () => `/memory/${res.body.data?.memory_id as string}`;
          expect(await readBack(res, 201, path, 'content', sent)).toEqual(sent);
          await check('PUT', `/memory/${w.A.memory}`, { content: body.content, metadata: body.metadata });
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('PUT /config', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          category: fc.constantFrom('llm', 'heartflow', 'memory', 'emoji', 'delivery', 'content_policy', 'x'),
          scope: fc.constantFrom('tenant', 'agent', 'chat', 'x'),
          config: anyValue,
        }),
        async (body) => {
          expect((await check('PUT', '/config', body)).status).toBeLessThan(500);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
