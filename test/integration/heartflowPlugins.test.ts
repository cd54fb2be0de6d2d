import path from 'node:path';

import type { WorkerPool } from '../../src/workers/workerPool';
import { created } from '../support/fixtures';
import { fakeImageBase64 } from '../support/images';
import { startTestApp, type TestApp } from '../support/testApp';
import { startTestPool } from '../support/testPool';
import { waitFor } from '../support/waitFor';

/**
 * The seed's component tests "heartflow + emoji" and "plugins + events": messages sent through
 * the API, answered by a worker pool running the tenant's plugins and emoji packs.
 */

let app: TestApp;
let pool: WorkerPool;
let acme: string;
let globex: string;

beforeAll(async () => {
  app = await startTestApp({
    env: { MAIHIVE_PLUGIN_DIR: path.join(__dirname, '..', 'fixtures', 'plugins') },
  });
  const platformAdmin = await app.tokenFor({ role: 'platform_admin' });
  for (const tenantId of ['acme', 'globex']) {
    created(
      await app.request('POST', '/tenants', {
        token: platformAdmin,
        body: { tenant_id: tenantId, name: tenantId, settings: { rate_limit_per_second: 1000 } },
      }),
    );
  }
  await app.t.admin(`UPDATE agents SET name = '麦麦' WHERE agent_id = 'default'`);
  acme = await app.tokenFor({ role: 'tenant_admin', tenantId: 'acme' });
  globex = await app.tokenFor({ role: 'tenant_admin', tenantId: 'globex' });
  const install = (token: string, body: Record<string, unknown>) =>
    app.request('POST', '/plugins/install', { token, body });
  created(await install(acme, { plugin_id: 'dice', permissions: ['message_send'], auto_enable: true }));
  created(await install(globex, { plugin_id: 'dice', permissions: ['message_send'], auto_enable: false }));
  created(
    await install(acme, {
      plugin_id: 'keyword_replies',
      permissions: ['message_send'],
      auto_enable: true,
      config: { rules: [{ keyword: '早安', reply: '早安呀～', chat_stream_ids: ['kw-1'] }] },
    }),
  );
  created(await install(acme, { plugin_id: 'faulty', permissions: ['message_send'], auto_enable: true }));
  created(
    await app.request('POST', '/emoji/packs', {
      token: acme,
      body: {
        pack_id: 'laughs',
        name: 'laughs',
        emojis: [
          {
            image_base64: fakeImageBase64('gif', 120, 1),
            description: '笑哭',
            emotion: '开心',
            usage_weight: 1,
          },
        ],
      },
    }),
  );
  pool = await startTestPool(app, { plugins: app.deps.plugins.catalog });
  // The pool's sandbox thread loads the plugin modules before the budgets below apply.
  await waitFor(async () =>
    (await send(acme, '/ok', 'warm-up', 'private')).body.data.response === 'fine' ? true : undefined,
  );
});

afterAll(async () => {
  await pool?.close();
  await app.close();
});

function send(
  token: string,
  message: string,
  chatStreamId: string,
  chatType: 'group' | 'private' = 'group',
  options?: Record<string, unknown>,
) {
  const sender = chatType === 'group' ? { user_id: 'u1', group_id: `g-${chatStreamId}` } : { user_id: 'u1' };
  return app.request('POST', '/chat/send?wait=15000', {
    token,
    body: {
      message,
      chat_stream_id: chatStreamId,
      platform: 'qq',
      sender_info: sender,
      ...(options ? { options } : {}),
    },
  });
}

async function actionOf(tenantId: string, messageId: string): Promise<string | undefined> {
  const { rows } = await app.t.admin<{ action_name: string }>(
    `SELECT action_name FROM action_records WHERE tenant_id = $1 AND message_id = $2`,
    [tenantId, messageId],
  );
  return rows[0]?.action_name;
}

async function replyCalls(tenantId: string, chatStreamId: string): Promise<number> {
  const { rows } = await app.t.admin<{ n: string }>(
    `SELECT count(*) AS n FROM llm_usage WHERE tenant_id = $1 AND chat_stream_id = $2 AND request_type = 'replyer'`,
    [tenantId, chatStreamId],
  );
  return Number(rows[0]?.n);
}

describe('plugins in the heartflow', () => {
  it('a command intercepts the message before the planner: answered by the plugin, no LLM call', async () => {
    const res = await send(acme, '/roll 2d6', 'cmd-1');
    expect(res.body.data).toMatchObject({ status: 'replied' });
    expect(res.body.data.response).toMatch(/^🎲 2d6: \d+ \(\d \+ \d\)$/);
    expect(await actionOf('acme', res.body.data.message_id as string)).toBe('plugin.dice.roll');
    expect(await replyCalls('acme', 'cmd-1')).toBe(0);
  });

  it('the same plugin installed but disabled in another tenant does nothing there', async () => {
    const res = await send(globex, '/roll 2d6', 'cmd-1', 'private');
    expect(res.body.data).toMatchObject({ status: 'replied' });
    expect(res.body.data.response).not.toMatch(/🎲/);
    expect(await actionOf('globex', res.body.data.message_id as string)).toBe('reply');
    expect(await replyCalls('globex', 'cmd-1')).toBe(1);
  });

  it('enabling and disabling it there takes effect from the very next message (the workers cache enabled plugins)', async () => {
    // The worker has just read globex's enabled plugins (the test above): a cached list that only
    // the change notice of the plugin routes can renew within its 5 s lifetime.
    expect((await send(globex, '/roll 1d6', 'cmd-2', 'private')).body.data.response).not.toMatch(/🎲/);
    expect((await app.request('POST', '/plugins/dice/enable', { token: globex })).status).toBe(200);
    const enabled = await send(globex, '/roll 1d6', 'cmd-2', 'private');
    expect(enabled.body.data.response).toMatch(/^🎲 1d6: \d+/);
    expect((await app.request('POST', '/plugins/dice/disable', { token: globex })).status).toBe(200);
    const disabled = await send(globex, '/roll 1d6', 'cmd-2', 'private');
    expect(disabled.body.data.response).not.toMatch(/🎲/);
  });

  it('an on_message handler answers keywords in the chats configured, and only there', async () => {
    const hit = await send(acme, '大家早安', 'kw-1');
    expect(hit.body.data).toMatchObject({ status: 'replied', response: '早安呀～' });
    expect(await actionOf('acme', hit.body.data.message_id as string)).toBe(
      'plugin.keyword_replies.reply_to_keywords',
    );
    const other = await send(acme, '大家早安', 'kw-2', 'private');
    expect(other.body.data.status).toBe('replied');
    expect(other.body.data.response).not.toBe('早安呀～');
  });

  it('a plugin that hangs past its budget or throws does not keep the message from its answer', async () => {
    // `faulty`'s on_message handler throws on every message; `/hang` never returns (300 ms budget).
    const started = Date.now();
    const hung = await send(acme, '/hang', 'faulty-1', 'private');
    expect(hung.body.data).toMatchObject({ status: 'replied' });
    expect(typeof hung.body.data.response).toBe('string');
    expect(await actionOf('acme', hung.body.data.message_id as string)).toBe('reply');
    expect(Date.now() - started).toBeLessThan(10_000);
    const thrown = await send(acme, '/throw', 'faulty-2', 'private');
    expect(thrown.body.data).toMatchObject({ status: 'replied' });
    expect(await actionOf('acme', thrown.body.data.message_id as string)).toBe('reply');
    // A command that crashes the sandbox thread: the message is answered all the same.
    const crashed = await send(acme, '/exit', 'faulty-3', 'private');
    expect(crashed.body.data).toMatchObject({ status: 'replied' });
    expect(typeof crashed.body.data.response).toBe('string');
    expect(await actionOf('acme', crashed.body.data.message_id as string)).toBe('reply');
    // The restarted thread serves commands again.
    await waitFor(async () =>
      (await send(acme, '/ok', 'faulty-4', 'private')).body.data.response === 'fine' ? true : undefined,
    );
  });
});

describe('emoji in the heartflow', () => {
  /** A group chat where the bot is fully willing and emotional: chatter gets an emoji 90 % of the time. */
  async function eagerStream(id: string): Promise<void> {
    created(
      await app.request('POST', '/chat/streams', {
        token: acme,
        body: { chat_stream_id: id, platform: 'qq', chat_type: 'group' },
      }),
    );
    const put = await app.request('PUT', '/config', {
      token: acme,
      body: {
        category: 'heartflow',
        scope: 'chat',
        chat_stream_id: id,
        config: { talk_value: 1, emotion_sensitivity: 1 },
      },
    });
    expect(put.status).toBe(200);
    await refocus(id);
  }

  /** Puts the chat back into the eager state (a reply lowers the bot's willingness). */
  async function refocus(id: string): Promise<void> {
    const now = Date.now();
    const state = {
      state: 'focused',
      willingness: 1,
      lastUpdatedAt: now,
      lastFocusAt: now,
      messagesSinceReply: 0,
      replyStreak: 0,
      interest: 1,
      noReplyUntilCall: false,
    };
    await app.t.admin(
      `UPDATE chat_streams SET heartflow_state = $2 WHERE tenant_id = 'acme' AND chat_stream_id = $1`,
      [id, JSON.stringify(state)],
    );
  }

  async function emojiConfig(id: string, config: Record<string, unknown>): Promise<void> {
    const put = await app.request('PUT', '/config', {
      token: acme,
      body: { category: 'emoji', scope: 'chat', chat_stream_id: id, config },
    });
    expect(put.status).toBe(200);
  }

  async function recordOf(messageId: string) {
    const { rows } = await app.t.admin<{ action_name: string; action_data: Record<string, unknown> }>(
      `SELECT action_name, action_data FROM action_records WHERE tenant_id = 'acme' AND message_id = $1`,
      [messageId],
    );
    return rows[0];
  }

  it("answers chatter with the tenant's pack emoji for the planner's emotion, and records the use", async () => {
    const replies: { id: string; response: string }[] = [];
    for (let i = 0; i < 5; i++) {
      await eagerStream(`emo-${i}`);
      const res = await send(acme, '哈哈哈哈', `emo-${i}`);
      replies.push({ id: res.body.data.message_id as string, response: res.body.data.response as string });
    }
    const emoji = replies.filter((r) => r.response === '[表情:笑哭]');
    expect(emoji.length).toBeGreaterThan(0);
    for (const r of emoji) expect(await actionOf('acme', r.id)).toBe('emoji');
    const { rows } = await app.t.admin<{
      trigger_type: string;
      emotion: string;
      segments: { type: string }[];
    }>(
      `SELECT u.trigger_type, u.emotion, m.segments FROM emoji_usage u JOIN messages m
         ON m.tenant_id = u.tenant_id AND m.message_id = u.message_id
       WHERE u.tenant_id = 'acme' AND u.trigger_type = 'heartflow'`,
    );
    expect(rows.length).toBe(emoji.length);
    expect(rows[0]).toMatchObject({
      trigger_type: 'heartflow',
      emotion: 'happy',
      segments: [{ type: 'emoji' }],
    });
  });

  it('emoji.cooldown_seconds: a second automatic emoji in the same chat is refused (text reply, reason recorded), another chat still gets one', async () => {
    await eagerStream('cool-1');
    await emojiConfig('cool-1', { cooldown_seconds: 3600 });
    let first: string | undefined;
    for (let i = 0; i < 5 && first === undefined; i++) {
      await refocus('cool-1');
      const res = await send(acme, '哈哈哈哈', 'cool-1');
      if (res.body.data.response === '[表情:笑哭]') first = res.body.data.message_id as string;
    }
    expect(first).toBeDefined();
    const refused: string[] = [];
    for (let i = 0; i < 4; i++) {
      await refocus('cool-1');
      const res = await send(acme, '哈哈哈哈', 'cool-1');
      expect(res.body.data.response).not.toBe('[表情:笑哭]');
      const record = await recordOf(res.body.data.message_id as string);
      if (record?.action_data.emoji_refused === 'cooldown') refused.push(record.action_name);
    }
    // The planner picks an emoji for 90 % of these messages: each such pick was refused and
    // answered by a text reply.
    expect(refused.length).toBeGreaterThan(0);
    expect(new Set(refused)).toEqual(new Set(['reply']));
    // The cooldown is per chat: another eager chat answers with an emoji.
    const other: string[] = [];
    for (let i = 0; i < 5; i++) {
      await eagerStream(`cool-other-${i}`);
      other.push((await send(acme, '哈哈哈哈', `cool-other-${i}`)).body.data.response as string);
    }
    expect(other).toContain('[表情:笑哭]');
  });

  it('emoji.max_per_hour at chat scope: 0 refuses every automatic emoji of that chat only', async () => {
    const refused: string[] = [];
    for (let i = 0; i < 5; i++) {
      await eagerStream(`cap-${i}`);
      await emojiConfig(`cap-${i}`, { max_per_hour: 0 });
      const res = await send(acme, '哈哈哈哈', `cap-${i}`);
      expect(res.body.data.status).toBe('replied');
      expect(res.body.data.response).not.toBe('[表情:笑哭]');
      const record = await recordOf(res.body.data.message_id as string);
      expect(record?.action_name).toBe('reply');
      if (record?.action_data.emoji_refused === 'max_per_hour')
        refused.push(res.body.data.message_id as string);
    }
    expect(refused.length).toBeGreaterThan(0);
    // An explicit POST /emoji/send is not automatic: the chat's cap does not apply to it.
    const sent = await app.request('POST', '/emoji/send', {
      token: acme,
      body: { chat_stream_id: 'cap-0', emotion: '开心', trigger_type: 'auto' },
    });
    expect(sent.status).toBe(200);
    expect(sent.body.data).toMatchObject({ content: '[表情:笑哭]', source: 'pack' });
  });

  it('never answers with an emoji when the message turns emoji off', async () => {
    for (let i = 0; i < 5; i++) {
      await eagerStream(`noemo-${i}`);
      const res = await send(acme, '哈哈哈哈', `noemo-${i}`, 'group', { enable_emoji: false });
      expect(res.body.data.status).toBe('replied');
      expect(await actionOf('acme', res.body.data.message_id as string)).toBe('reply');
    }
  });
});
