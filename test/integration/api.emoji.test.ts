import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { DeliveryJobData } from '../../src/queues/deliveryJobs';
import { processDeliveryJob } from '../../src/workers/deliveryProcessor';
import { created, createTenants } from '../support/fixtures';
import { fakeImage, fakeImageBase64 } from '../support/images';
import { startTestApp, type TestApp } from '../support/testApp';

let app: TestApp;
let acmeAdmin: string;
let otherAdmin: string;
let acmeReader: string;

beforeAll(async () => {
  app = await startTestApp();
  await createTenants(app, ['acme', 'other']);
  await app.t.admin(
    `UPDATE agents SET config = '{"delivery": {"webhook_url": "https://hooks.example.test/acme"}}'
     WHERE tenant_id = 'acme' AND agent_id = 'default'`,
  );
  await app.t.admin(
    `INSERT INTO chat_streams (tenant_id, chat_stream_id, agent_id, platform)
     VALUES ('acme', 'g1', 'default', 'qq'), ('other', 'g1', 'default', 'qq')`,
  );
  acmeAdmin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'acme' });
  otherAdmin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'other' });
  acmeReader = await app.tokenFor({ role: 'reader', tenantId: 'acme' });
});
afterAll(async () => {
  await app.close();
});

function fieldsOf(res: { body: { error?: { details?: Record<string, unknown> } } }): string[] {
  return ((res.body.error?.details?.fields ?? []) as { path: string }[]).map((f) => f.path);
}

const createPack = (token: string, body: unknown) => app.request('POST', '/emoji/packs', { token, body });

describe('emoji packs', () => {
  it('creates a pack of Unicode emoji and images, lists, reads and deletes it', async () => {
    const res = await createPack(acmeAdmin, {
      pack_id: 'basic',
      name: '基础',
      description: 'everyday',
      category: 'daily',
      emojis: [
        { emoji: '😂', emotion: 'happy', tags: ['laugh'], usage_weight: 3 },
        {
          image_base64: fakeImageBase64('png', 200, 1),
          description: '猫猫笑',
          emotion: '开心',
          tags: [],
          usage_weight: 1,
        },
        { image_base64: fakeImageBase64('webp', 300, 2), emotion: 'sad', tags: ['cry'], usage_weight: 1 },
      ],
    });
    expect(res.status).toBe(201);
    expect(res.body.data).toMatchObject({
      pack_id: 'basic',
      name: '基础',
      category: 'daily',
      emoji_count: 3,
      deduplicated: 0,
    });
    const emojis = res.body.data.emojis as {
      emoji_id: string;
      format: string | null;
      size_bytes: number | null;
      image_url: string | null;
    }[];
    expect(emojis.map((e) => [e.format, e.size_bytes])).toEqual([
      [null, null],
      ['png', 200],
      ['webp', 300],
    ]);
    expect(emojis[0]!.emoji_id).toMatch(/^emo_/);

    const list = await app.request('GET', '/emoji/packs?category=daily', { token: acmeReader });
    expect(list.status).toBe(200);
    expect(list.body.data).toMatchObject({
      packs: [{ pack_id: 'basic', emoji_count: 3 }],
      pagination: { total: 1 },
    });

    const one = await app.request('GET', '/emoji/packs/basic', { token: acmeReader });
    expect(one.status).toBe(200);
    expect((one.body.data.emojis as unknown[]).length).toBe(3);
    expect(JSON.stringify(one.body.data)).not.toContain(fakeImageBase64('png', 200, 1));

    // The image is read back as bytes with its sniffed type.
    const image = await fetch(`${app.url}${emojis[1]!.image_url}`, {
      headers: { authorization: `Bearer ${acmeReader}` },
    });
    expect(image.status).toBe(200);
    expect(image.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await image.arrayBuffer())).toEqual(fakeImage('png', 200, 1));
    // …and never by another tenant.
    const foreign = await fetch(`${app.url}${emojis[1]!.image_url}`, {
      headers: { authorization: `Bearer ${otherAdmin}` },
    });
    expect(foreign.status).toBe(404);

    expect((await app.request('GET', '/emoji/packs/basic', { token: otherAdmin })).status).toBe(404);
    expect((await app.request('DELETE', '/emoji/packs/basic', { token: otherAdmin })).status).toBe(404);
    expect((await app.request('DELETE', '/emoji/packs/basic', { token: acmeReader })).status).toBe(403);
    const del = await app.request('DELETE', '/emoji/packs/basic', { token: acmeAdmin });
    expect(del.status).toBe(200);
    expect((await app.request('GET', '/emoji/packs/basic', { token: acmeAdmin })).status).toBe(404);
  });

  it('stores an image once per tenant: a second upload of the same bytes is deduplicated, another tenant stores its own', async () => {
    const img = fakeImageBase64('gif', 500, 7);
    const a = await createPack(acmeAdmin, {
      pack_id: 'dup1',
      name: 'd1',
      emojis: [
        { image_base64: img, emotion: 'happy', tags: [], usage_weight: 1 },
        { image_base64: img, emotion: 'happy', tags: [], usage_weight: 1 },
      ],
    });
    expect(a.status).toBe(201);
    expect(a.body.data.deduplicated).toBe(1);
    const b = await createPack(acmeAdmin, {
      pack_id: 'dup2',
      name: 'd2',
      emojis: [{ image_base64: img, emotion: 'happy', tags: [], usage_weight: 1 }],
    });
    expect(b.status).toBe(201);
    const first = (a.body.data.emojis as { emoji_id: string }[])[0]!.emoji_id;
    expect(b.body.data.emojis).toEqual([
      expect.objectContaining({ emoji_id: first, pack_id: 'dup1', deduplicated: true }),
    ]);
    const c = await createPack(otherAdmin, {
      pack_id: 'dup1',
      name: 'theirs',
      emojis: [{ image_base64: img, emotion: 'happy', tags: [], usage_weight: 1 }],
    });
    expect(c.body.data.deduplicated).toBe(0);
    const { rows } = await app.t.admin<{ tenant_id: string; n: string }>(
      `SELECT tenant_id, count(*) AS n FROM emojis WHERE image_data IS NOT NULL AND format = 'gif' GROUP BY 1 ORDER BY 1`,
    );
    expect(rows.map((r) => [r.tenant_id, Number(r.n)])).toEqual([
      ['acme', 1],
      ['other', 1],
    ]);
  });

  it('refuses oversized, non-image and malformed images, ambiguous entries and unknown fields with the fields (400), a taken id (409)', async () => {
    const res = await createPack(acmeAdmin, {
      pack_id: 'bad',
      name: 'bad',
      emojis: [
        { image_base64: fakeImageBase64('png', 512 * 1024 + 1), emotion: 'happy', tags: [], usage_weight: 1 },
        {
          image_base64: Buffer.from('<svg/>').toString('base64'),
          emotion: 'happy',
          tags: [],
          usage_weight: 1,
        },
        { image_base64: 'not base64 at all', emotion: 'happy', tags: [], usage_weight: 1 },
      ],
    });
    expect(res.status).toBe(400);
    expect(res.body.error?.code).toBe('VALIDATION_ERROR');
    expect(fieldsOf(res)).toEqual([
      'emojis.0.image_base64',
      'emojis.1.image_base64',
      'emojis.2.image_base64',
    ]);
    expect((await app.request('GET', '/emoji/packs/bad', { token: acmeAdmin })).status).toBe(404);

    const shape = await createPack(acmeAdmin, {
      pack_id: 'bad id!',
      name: 'x',
      colour: 'red',
      emojis: [
        { emoji: '😀', image_base64: fakeImageBase64('png'), emotion: 'happy', tags: [], usage_weight: -1 },
      ],
    });
    expect(shape.status).toBe(400);
    expect(fieldsOf(shape)).toEqual(expect.arrayContaining(['pack_id', 'body', 'emojis.0.usage_weight']));

    const ok = {
      pack_id: 'taken',
      name: 't',
      emojis: [{ emoji: '🙂', emotion: 'neutral', tags: [], usage_weight: 1 }],
    };
    expect((await createPack(acmeAdmin, ok)).status).toBe(201);
    expect((await createPack(acmeAdmin, ok)).status).toBe(409);
    expect((await createPack(acmeReader, { ...ok, pack_id: 'r' })).status).toBe(403);
  });
});

describe('sending emoji and their statistics', () => {
  beforeAll(async () => {
    created(
      await createPack(acmeAdmin, {
        pack_id: 'moods',
        name: 'moods',
        emojis: [
          {
            image_base64: fakeImageBase64('jpeg', 100, 11),
            description: '哭哭',
            emotion: 'sad',
            tags: [],
            usage_weight: 5,
          },
          { emoji: '😡', emotion: 'angry', tags: [], usage_weight: 1 },
        ],
      }),
    );
  });

  it('picks by emotion, stores the emoji as a bot message, records the use and delivers it like a reply', async () => {
    const res = await app.request('POST', '/emoji/send', {
      token: acmeAdmin,
      body: { chat_stream_id: 'g1', emotion: 'sad', trigger_type: 'auto', context: { why: 'test' } },
    });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      chat_stream_id: 'g1',
      agent_id: 'default',
      content: '[表情:哭哭]',
      source: 'pack',
      delivery: 'queued',
      emoji: { format: 'jpeg', emotion: 'sad' },
    });
    const messageId = res.body.data.message_id as string;
    const {
      rows: [stored],
    } = await app.t.admin<{ direction: string; status: string; segments: { type: string }[] }>(
      `SELECT direction, status, segments FROM messages WHERE tenant_id = 'acme' AND message_id = $1`,
      [messageId],
    );
    expect(stored).toMatchObject({ direction: 'out', status: 'sent', segments: [{ type: 'emoji' }] });
    // The reply's delivery job, run as the worker runs it, pushes it to the agent's webhook.
    const job = await app.deps.queues.queue('acme', 'delivery').getJob(`delivery.${messageId}`);
    const data = job?.data as DeliveryJobData | undefined;
    expect(data).toEqual({ tenantId: 'acme', agentId: 'default', messageId });
    const posted: string[] = [];
    const outcome = await processDeliveryJob(
      {
        db: app.deps.db,
        logger: app.deps.logger,
        clock: app.deps.clock,
        config: app.deps.configReader,
        fetch: ((_url: string, init: RequestInit) => {
          posted.push(init.body as string);
          return Promise.resolve(new Response('ok', { status: 200 }));
        }) as typeof fetch,
      },
      data!,
      { attempt: 1, maxAttempts: 6 },
    );
    expect(outcome).toMatchObject({ status: 'delivered' });
    expect(JSON.parse(posted[0]!)).toMatchObject({
      event: 'message.replied',
      content: '[表情:哭哭]',
      message_id: messageId,
    });
  });

  it('sends a pack image to QQ as an image segment through the OneBot HTTP API', async () => {
    const received: { action: string; body: { message: { type: string; data: { file?: string } }[] } }[] = [];
    const napcat = createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => {
        received.push({ action: req.url ?? '', body: JSON.parse(raw) as (typeof received)[number]['body'] });
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ status: 'ok', retcode: 0, data: { message_id: 99 } }));
      });
    });
    napcat.listen(0, '127.0.0.1');
    await once(napcat, 'listening');
    try {
      const base = `http://127.0.0.1:${(napcat.address() as AddressInfo).port}`;
      await app.t.admin(
        `INSERT INTO agents (tenant_id, agent_id, name, config) VALUES ('acme', 'qqbot', 'qq', $1)`,
        [JSON.stringify({ delivery: { onebot_http: { base_url: base } } })],
      );
      await app.t.admin(
        `INSERT INTO chat_streams (tenant_id, chat_stream_id, agent_id, platform, group_id) VALUES ('acme', 'qq-g', 'qqbot', 'qq', '555')`,
      );
      // Written behind the API's back: its configuration cache is told, as the API would.
      app.deps.configReader.forget('acme');
      const res = await app.request('POST', '/emoji/send', {
        token: acmeAdmin,
        body: { chat_stream_id: 'qq-g', emotion: 'sad' },
      });
      expect(res.body.data).toMatchObject({ source: 'pack', delivery: 'queued' });
      const messageId = res.body.data.message_id as string;
      const outcome = await processDeliveryJob(
        { db: app.deps.db, logger: app.deps.logger, clock: app.deps.clock, config: app.deps.configReader },
        { tenantId: 'acme', agentId: 'qqbot', messageId },
        { attempt: 1, maxAttempts: 6 },
      );
      expect(outcome).toMatchObject({ status: 'delivered' });
      expect(received).toHaveLength(1);
      expect(received[0]!.action).toBe('/send_group_msg');
      const [segment] = received[0]!.body.message;
      expect(segment!.type).toBe('image');
      expect(Buffer.from(segment!.data.file!.replace('base64://', ''), 'base64')).toEqual(
        fakeImage('jpeg', 100, 11),
      );
    } finally {
      napcat.close();
    }
  });

  it('sends a named emoji or a literal one, and the Unicode fallback when no pack fits the emotion', async () => {
    const literal = await app.request('POST', '/emoji/send', {
      token: acmeAdmin,
      body: { chat_stream_id: 'g1', emoji: '👍' },
    });
    expect(literal.body.data).toMatchObject({ content: '👍', source: 'given', emoji: null });
    const fallback = await app.request('POST', '/emoji/send', {
      token: acmeAdmin,
      body: { chat_stream_id: 'g1', emotion: 'surprised' },
    });
    expect(fallback.body.data).toMatchObject({ content: '😮', source: 'fallback' });
    const pack = await app.request('GET', '/emoji/packs/moods', { token: acmeAdmin });
    const angry = (pack.body.data.emojis as { emoji_id: string; emotion: string }[]).find(
      (e) => e.emotion === 'angry',
    )!;
    const named = await app.request('POST', '/emoji/send', {
      token: acmeAdmin,
      body: { chat_stream_id: 'g1', emoji: angry.emoji_id },
    });
    expect(named.body.data).toMatchObject({
      content: '😡',
      source: 'given',
      emoji: { emoji_id: angry.emoji_id },
    });
  });

  it("refuses unknown streams and emoji ids (404), another tenant's stream (404), bad bodies (400), readers (403)", async () => {
    expect(
      (
        await app.request('POST', '/emoji/send', {
          token: acmeAdmin,
          body: { chat_stream_id: 'nope', emotion: 'sad' },
        })
      ).status,
    ).toBe(404);
    expect(
      (
        await app.request('POST', '/emoji/send', {
          token: acmeAdmin,
          body: { chat_stream_id: 'g1', emoji: 'emo_missing' },
        })
      ).status,
    ).toBe(404);
    const both = await app.request('POST', '/emoji/send', {
      token: acmeAdmin,
      body: { chat_stream_id: 'g1', emoji: '👍', emotion: 'sad', trigger_type: 'sometimes', extra: 1 },
    });
    expect(both.status).toBe(400);
    expect(fieldsOf(both)).toEqual(expect.arrayContaining(['trigger_type', 'body']));
    expect(
      (
        await app.request('POST', '/emoji/send', {
          token: acmeReader,
          body: { chat_stream_id: 'g1', emotion: 'sad' },
        })
      ).status,
    ).toBe(403);
    // `other` has its own g1 and no packs: the fallback, and acme's packs never show.
    const theirs = await app.request('POST', '/emoji/send', {
      token: otherAdmin,
      body: { chat_stream_id: 'g1', emotion: 'sad' },
    });
    expect(theirs.body.data).toMatchObject({ content: '😢', source: 'fallback', delivery: 'no_route' });
  });

  it("accepts the upstream document's examples: a pack of tagged emoji, a send with the emotion in context", async () => {
    const pack = await createPack(acmeAdmin, {
      pack_id: 'custom_pack',
      name: '自定义表情包',
      description: '我的自定义表情',
      emojis: [{ emoji: '😊', tags: ['开心', '友好'], usage_weight: 0.8 }],
    });
    expect(pack.status).toBe(201);
    expect(pack.body.data.emojis).toEqual([
      expect.objectContaining({ emoji: '😊', emotion: '开心', usage_weight: 0.8 }),
    ]);
    const sent = await app.request('POST', '/emoji/send', {
      token: acmeAdmin,
      body: {
        emoji: '😊',
        chat_stream_id: 'g1',
        trigger_type: 'auto',
        context: { message_content: '太好了！', emotion: 'happy' },
      },
    });
    expect(sent.status).toBe(200);
    expect(sent.body.data).toMatchObject({ content: '😊', source: 'given' });
  });

  it('counts uses by emotion and trigger over the period, and the bytes the images take', async () => {
    const res = await app.request('GET', '/emoji/statistics?period=7d', { token: acmeReader });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      period_ms: 7 * 86_400_000,
      total_uses: 6,
      by_emotion: { sad: 2, surprised: 1, angry: 1, happy: 1, none: 1 },
      by_trigger: { auto: 2, manual: 4 },
    });
    const { rows: images } = await app.t.admin<{ n: string }>(
      `SELECT coalesce(sum(octet_length(image_data)), 0) AS n FROM emojis WHERE tenant_id = 'acme'`,
    );
    expect(res.body.data.storage_bytes).toBe(Number(images[0]!.n));
    expect(res.body.data.storage_bytes).toBeGreaterThan(0);
    const other = await app.request('GET', '/emoji/statistics', { token: otherAdmin });
    expect(other.body.data).toMatchObject({ total_uses: 1, by_emotion: { sad: 1 } });
    expect((await app.request('GET', '/emoji/statistics?period=1y', { token: acmeReader })).status).toBe(400);
  });
});
