import { randomBytes } from 'node:crypto';

import { createTenant } from '../../src/db/repositories/tenants';
import type { WorkerPool } from '../../src/workers/workerPool';
import { startTestApp, type TestApp } from '../support/testApp';
import { startTestPool } from '../support/testPool';

/** The clock of the app and its workers: real time unless a test pins it. */
let pinned: number | undefined;
const clock = { now: () => pinned ?? Date.now() };

let app: TestApp;
let pool: WorkerPool;

beforeAll(async () => {
  app = await startTestApp({ clock });
  pool = await startTestPool(app);
});
afterAll(async () => {
  await pool.close();
  await app.close();
});
afterEach(() => {
  pinned = undefined;
});

interface Data {
  [key: string]: unknown;
  config: Record<string, unknown>;
  sources: Record<string, string>;
  processing_details: Record<string, unknown>;
  latency_ms: { p50: number | null; p95: number | null };
}
type Body = { data: Data; error: { code: string; details: { fields: { path: string }[] } } };

let seq = 0;
async function newTenant() {
  const tenantId = `hf${++seq}-${randomBytes(3).toString('hex')}`;
  await app.deps.db.withPlatform((db) => createTenant(db, { tenantId, name: tenantId, settings: {} }));
  const token = await app.tokenFor({ role: 'tenant_admin', tenantId, sub: 'op' });
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await app.request(method, path, { token, ...(body === undefined ? {} : { body }) });
    return { status: res.status, body: res.body as unknown as Body };
  };
  const stream = async (id: string) =>
    expect(
      (await call('POST', '/chat/streams', { chat_stream_id: id, platform: 'qq', chat_type: 'group' }))
        .status,
    ).toBe(201);
  return { tenantId, token, call, stream };
}

describe('heartflow endpoints', () => {
  it('processes a message through the pipeline at once, records it, and reports the stream state', async () => {
    const { call } = await newTenant();
    const processed = await call('POST', '/heartflow/process', {
      message: {
        content: '@麦麦 今天好开心！',
        chat_stream_id: 'h1',
        sender_info: { user_id: 'u1', username: '小明' },
      },
      context: { platform: 'qq' },
    });
    expect(processed.status).toBe(200);
    expect(processed.body.data).toMatchObject({
      chat_stream_id: 'h1',
      response: expect.any(String) as unknown,
      emotion: 'happy',
      processing_details: { status: 'replied', reason: 'mentioned', reply_probability: 1, platform: 'qq' },
    });
    expect(processed.body.data.actions).toEqual([
      expect.objectContaining({ type: 'reply', reason: 'mentioned' }),
    ]);
    // Recorded like any message.
    const stored = await call('GET', `/chat/messages/${processed.body.data.message_id as string}`);
    expect(stored.status).toBe(200);

    const status = await call('GET', '/heartflow/status/h1');
    expect(status.status).toBe(200);
    expect(status.body.data).toMatchObject({
      chat_stream_id: 'h1',
      talk_value: 0.5,
      messages_since_reply: 0,
      last_reply_at: expect.any(String) as unknown,
      quiet_hours_active: false,
    });
    expect(['normal', 'focused']).toContain(status.body.data.state);
    expect(status.body.data.willingness).toBeGreaterThan(0);

    const reset = await call('POST', '/heartflow/reset/h1');
    expect(reset.body.data).toEqual({ chat_stream_id: 'h1', reset: true });
    const after = await call('GET', '/heartflow/status/h1');
    expect(after.body.data).toMatchObject({
      state: 'absent',
      willingness: 0,
      last_reply_at: null,
      messages_since_reply: 0,
    });
  });

  it('holds back after max_continuous_replies answers in a row until the others have spoken', async () => {
    const { call, stream } = await newTenant();
    const say = async (chat: string, content: string, mentioned = false) => {
      const res = await call('POST', '/heartflow/process', {
        message: { content, chat_stream_id: chat, sender_info: { user_id: 'u1', username: '小明' } },
        context: { platform: 'qq', mentioned },
      });
      expect(res.status).toBe(200);
      return res.body.data.processing_details;
    };
    for (const [chat, limit] of [
      ['limited', 2],
      ['unlimited', 0],
    ] as const) {
      await stream(chat);
      const put = await call('PUT', `/heartflow/config/${chat}`, {
        talk_value: 1,
        max_continuous_replies: limit,
      });
      expect(put.status).toBe(200);
      expect(put.body.data.config).toMatchObject({ max_continuous_replies: limit });
      expect(await say(chat, '你好呀', true)).toMatchObject({ status: 'replied', reason: 'mentioned' });
      expect(await say(chat, '今天吃什么', true)).toMatchObject({ status: 'replied', reason: 'mentioned' });
      const status = await call('GET', `/heartflow/status/${chat}`);
      expect(status.body.data).toMatchObject({
        continuous_replies: 2,
        continuous_limit_reached: limit > 0,
      });
    }
    // The limited chat lets the next unprompted message pass, whatever its willingness…
    expect(await say('limited', '我觉得去吃火锅吧')).toMatchObject({
      status: 'no_reply',
      reason: 'continuous_replies',
      reply_probability: 0,
    });
    // …after which the run is over and the planner rolls again; a mention is always answered.
    expect((await call('GET', '/heartflow/status/limited')).body.data).toMatchObject({
      continuous_replies: 0,
      continuous_limit_reached: false,
    });
    expect(await say('limited', '火锅好啊')).not.toMatchObject({ reason: 'continuous_replies' });
    // The chat without a limit is never held back for it.
    expect(await say('unlimited', '我觉得去吃火锅吧')).not.toMatchObject({ reason: 'continuous_replies' });
  });

  it('refuses bad bodies, unknown streams and other tenants’ streams', async () => {
    const a = await newTenant();
    const b = await newTenant();
    await a.stream('mine');
    const bad = await a.call('POST', '/heartflow/process', { message: { content: '  ', extra: 1 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.fields.map((f) => f.path).sort()).toEqual(['message', 'message.content']);
    for (const path of ['/heartflow/status/', '/heartflow/config/', '/heartflow/analysis/']) {
      expect((await a.call('GET', `${path}nope`)).status).toBe(404);
      expect((await b.call('GET', `${path}mine`)).status).toBe(404);
    }
    expect((await b.call('POST', '/heartflow/reset/mine')).status).toBe(404);
    expect((await a.call('POST', '/heartflow/reset/nope')).status).toBe(404);
    expect((await a.call('PUT', '/heartflow/config/nope', { talk_value: 0.1 })).status).toBe(404);
    // Readers read; only writers change settings or state.
    const reader = await app.tokenFor({ role: 'reader', tenantId: a.tenantId });
    expect((await app.request('GET', '/heartflow/status/mine', { token: reader })).status).toBe(200);
    expect(
      (await app.request('PUT', '/heartflow/config/mine', { token: reader, body: { talk_value: 0.1 } }))
        .status,
    ).toBe(403);
    expect((await app.request('POST', '/heartflow/reset/mine', { token: reader })).status).toBe(403);
    // Every invalid field is listed, the continuous-reply limit included.
    const invalid = await a.call('PUT', '/heartflow/config/mine', {
      max_continuous_replies: -1,
      timezone: 'Mars/Olympus',
      quiet_hours: [{ start: '25:00', end: '07:00' }],
    });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.details.fields.map((f) => f.path).sort()).toEqual([
      'max_continuous_replies',
      'quiet_hours.0.start',
      'timezone',
    ]);
    expect((await b.call('PUT', '/heartflow/config/mine', { talk_value: 0.1 })).status).toBe(404);
    expect((await a.call('GET', '/heartflow/analysis/mine?period=forever')).status).toBe(400);
    expect((await app.request('GET', '/heartflow/status/mine')).status).toBe(401);
  });

  it('shows and sets the chat scope of the heartflow configuration', async () => {
    const { tenantId, call, stream } = await newTenant();
    await stream('cfg');
    await call('PUT', '/config', {
      category: 'heartflow',
      scope: 'tenant',
      config: { response_style: 'dry' },
    });
    const put = await call('PUT', '/heartflow/config/cfg', {
      talk_value: 0.8,
      quiet_hours: [{ start: '23:00', end: '07:00' }],
      enable_auto_emoji: false,
    });
    expect(put.status).toBe(200);
    expect(put.body.data).toMatchObject({ version: 1 });
    const view = await call('GET', '/heartflow/config/cfg');
    expect(view.body.data.config).toMatchObject({
      talk_value: 0.8,
      mentioned_bot_reply: true,
      emotion_sensitivity: 0.5,
      memory_strength: 0.5,
      response_style: 'dry',
      enable_auto_emoji: false,
      quiet_hours: [{ start: '23:00', end: '07:00' }],
    });
    expect(view.body.data.sources).toMatchObject({
      talk_value: 'chat',
      response_style: 'tenant',
      mentioned_bot_reply: 'default',
    });
    const invalid = await call('PUT', '/heartflow/config/cfg', {
      talk_value: -1,
      response_style: '',
      volume: 11,
    });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.details.fields.map((f) => f.path).sort()).toEqual([
      'body',
      'response_style',
      'talk_value',
    ]);
    // A version in the configuration history like any other change; any member may read it.
    const reader = await app.tokenFor({ role: 'reader', tenantId });
    const history = await app.request('GET', '/config/history?category=heartflow&limit=1', { token: reader });
    expect((history.body as unknown as { data: { history: unknown[] } }).data.history).toEqual([
      expect.objectContaining({ scope: 'chat', chat_stream_id: 'cfg', version: 1, changed_by: 'op' }),
    ]);
  });

  it('honours quiet hours in the tenant time zone (pinned clock)', async () => {
    const { tenantId, call, stream } = await newTenant();
    await stream('night');
    await call('PUT', '/config', {
      category: 'heartflow',
      scope: 'tenant',
      config: { timezone: 'Asia/Shanghai', talk_value: 1 },
    });
    await call('PUT', '/heartflow/config/night', { quiet_hours: [{ start: '23:00', end: '07:00' }] });
    // 16:30 UTC = 00:30 in Shanghai: quiet.
    pinned = Date.UTC(2026, 2, 1, 16, 30);
    expect((await call('GET', '/heartflow/status/night')).body.data.quiet_hours_active).toBe(true);
    const quiet = await call('POST', '/heartflow/process', {
      message: { content: '大家晚上都在干嘛呀，聊聊天吧', chat_stream_id: 'night' },
      context: { platform: 'qq' },
    });
    expect(quiet.body.data.processing_details).toMatchObject({ status: 'no_reply', reason: 'quiet_hours' });
    const called = await call('POST', '/heartflow/process', {
      message: { content: '你睡了吗', chat_stream_id: 'night' },
      context: { platform: 'qq', mentioned: true },
    });
    expect(called.body.data.processing_details).toMatchObject({ status: 'replied', reason: 'mentioned' });
    // 04:00 UTC = 12:00 in Shanghai (but 04:00 UTC would be quiet in UTC): not quiet.
    pinned = Date.UTC(2026, 2, 2, 4, 0);
    expect((await call('GET', '/heartflow/status/night')).body.data.quiet_hours_active).toBe(false);
    const { rows } = await app.t.admin<{ reasoning: string }>(
      `SELECT reasoning FROM action_records WHERE tenant_id = $1 AND chat_stream_id = 'night' ORDER BY created_at`,
      [tenantId],
    );
    expect(rows.map((r) => r.reasoning)).toEqual(['quiet_hours', 'mentioned']);
  });

  it('analyses a period from the stored rows, with exact percentiles', async () => {
    const { tenantId, call, stream } = await newTenant();
    await stream('an');
    const now = Date.now();
    // Ten answered messages in the last hour, latencies 100..1000 ms; one older than the period.
    for (let i = 1; i <= 11; i++) {
      const at = new Date(i === 11 ? now - 2 * 86_400_000 : now - 60_000 * i);
      await app.t.admin(
        `INSERT INTO messages (tenant_id, message_id, agent_id, platform, chat_stream_id, direction, content, status,
                               queue_wait_ms, processing_time_ms, created_at)
         VALUES ($1, $2, 'default', 'qq', 'an', 'in', 'x', $3, $4, $5, $6)`,
        [tenantId, `m${i}`, i % 2 === 0 ? 'replied' : 'no_reply', 40 * i, 60 * i, at],
      );
      await app.t.admin(
        `INSERT INTO action_records (tenant_id, action_id, agent_id, platform, chat_stream_id, message_id, action_name, action_data, created_at)
         VALUES ($1, $2, 'default', 'qq', 'an', $3, $4, $5, $6)`,
        [
          tenantId,
          `a${i}`,
          `m${i}`,
          i % 2 === 0 ? 'reply' : 'no_reply',
          JSON.stringify({ interest: i / 10, emotion: i <= 3 ? 'happy' : null }),
          at,
        ],
      );
    }
    const res = await call('GET', '/heartflow/analysis/an?period=24h');
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      messages: 10,
      replies: 5,
      reply_rate: 0.5,
      actions_by_type: { reply: 5, no_reply: 5 },
      emotions: { happy: 3 },
    });
    // percentile_cont over the ten latencies 100, 200, …, 1000 ms (linear interpolation).
    expect(res.body.data.latency_ms.p50).toBeCloseTo(550, 6);
    expect(res.body.data.latency_ms.p95).toBeCloseTo(955, 6);
    expect(res.body.data.avg_interest).toBeCloseTo(0.55, 10);
    const week = await call('GET', '/heartflow/analysis/an?period=7d');
    expect(week.body.data).toMatchObject({ messages: 11, replies: 5 });
  });
});
