import path from 'node:path';

import type { WorkerPool } from '../../src/workers/workerPool';
import { created } from '../support/fixtures';
import { OpenAiStub, type RecordedRequest } from '../support/openaiStub';
import { startTestApp, type TestApp } from '../support/testApp';
import { startTestPool } from '../support/testPool';
import { waitFor } from '../support/waitFor';

/**
 * Plugin actions reach the planner LLM (the OpenAI stub), which chooses one; the worker runs it in
 * the sandbox. acme has the `forecast` plugin enabled, globex installed but disabled: globex is
 * never offered its actions. Each tenant's agent talks to its own model, so the stub tells their
 * requests apart.
 */

const stub = new OpenAiStub();
let app: TestApp;
let pool: WorkerPool;
let acme: string;
let globex: string;

const PLANNER_MARK = '行动规划器';
const REPLY = '普通的回答';

function systemOf(r: RecordedRequest): string {
  const messages = r.body.messages as { role: string; content: string }[];
  return messages.find((m) => m.role === 'system')?.content ?? '';
}
const isPlanner = (r: RecordedRequest) => systemOf(r).includes(PLANNER_MARK);
/** The reply prompt (`buildReplyPrompt`); memory extraction calls are neither. */
const isReplyer = (r: RecordedRequest) => systemOf(r).includes('回复最后一条来自');

/** The planner chooses the first of `weather`, `broken`, `stuck` it is offered, else `reply`. */
function answer(body: Record<string, unknown>): string {
  const system = (body.messages as { role: string; content: string }[])[0]?.content ?? '';
  if (!system.includes(PLANNER_MARK)) return REPLY;
  if (system.includes('- weather：'))
    return '```json\n{"action": "weather", "reason": "有人问天气", "parameters": {"city": "北京"}}\n```';
  if (system.includes('- broken：')) return '{"action": "broken", "reason": "试试"}';
  if (system.includes('- stuck：')) return '{"action": "stuck", "reason": "试试"}';
  return '{"action": "reply", "reason": "闲聊"}';
}

beforeAll(async () => {
  await stub.start();
  stub.on('model-acme', { kind: 'dynamic', answer });
  stub.on('model-globex', { kind: 'dynamic', answer });
  app = await startTestApp({
    env: { MAIHIVE_PLUGIN_DIR: path.join(__dirname, '..', 'fixtures', 'plugin-actions') },
  });
  const platformAdmin = await app.tokenFor({ role: 'platform_admin' });
  for (const tenantId of ['acme', 'globex']) {
    created(
      await app.request('POST', '/tenants', {
        token: platformAdmin,
        body: { tenant_id: tenantId, name: tenantId, settings: { rate_limit_per_second: 1000 } },
      }),
    );
    await app.t.admin(`UPDATE agents SET name = '麦麦', config = $2 WHERE tenant_id = $1`, [
      tenantId,
      JSON.stringify({ llm: { provider: 'openai', base_url: stub.baseUrl, models: [`model-${tenantId}`] } }),
    ]);
  }
  acme = await app.tokenFor({ role: 'tenant_admin', tenantId: 'acme' });
  globex = await app.tokenFor({ role: 'tenant_admin', tenantId: 'globex' });
  const install = (token: string, body: Record<string, unknown>) =>
    app.request('POST', '/plugins/install', { token, body });
  created(await install(acme, { plugin_id: 'forecast', permissions: ['message_send'], auto_enable: true }));
  created(
    await install(globex, { plugin_id: 'forecast', permissions: ['message_send'], auto_enable: false }),
  );
  created(await install(acme, { plugin_id: 'dice', permissions: ['message_send'], auto_enable: true }));
  created(await install(acme, { plugin_id: 'polish', permissions: ['message_send'], auto_enable: true }));
  pool = await startTestPool(app, { plugins: app.deps.plugins.catalog });
  // The pool's sandbox thread loads the plugin modules before the 300 ms budgets apply.
  await waitFor(async () =>
    /^🎲/.test(String((await send(acme, '/roll', 'warm-up')).body.data.response)) ? true : undefined,
  );
});

afterAll(async () => {
  await pool?.close();
  await app?.close();
  await stub.close();
});

function send(token: string, message: string, chatStreamId: string, wait = true) {
  return app.request('POST', `/chat/send${wait ? '?wait=15000' : ''}`, {
    token,
    body: { message, chat_stream_id: chatStreamId, platform: 'qq', sender_info: { user_id: 'u1' } },
  });
}

async function actionOf(
  tenantId: string,
  messageId: string,
): Promise<{ action_name: string; reasoning: string; action_data: Record<string, unknown> } | undefined> {
  const { rows } = await app.t.admin<{
    action_name: string;
    reasoning: string;
    action_data: Record<string, unknown>;
  }>(
    `SELECT action_name, reasoning, action_data FROM action_records WHERE tenant_id = $1 AND message_id = $2`,
    [tenantId, messageId],
  );
  return rows[0];
}

async function requestTypes(tenantId: string, chatStreamId: string): Promise<string[]> {
  const { rows } = await app.t.admin<{ request_type: string }>(
    `SELECT request_type FROM llm_usage WHERE tenant_id = $1 AND chat_stream_id = $2 ORDER BY request_type`,
    [tenantId, chatStreamId],
  );
  return rows.map((r) => r.request_type);
}

describe('plugin actions in the planner', () => {
  it('offers a keyword action when asked about the weather; the planner chooses it and the sandbox runs it', async () => {
    stub.requests.length = 0;
    const res = await send(acme, '北京今天天气怎么样？', 'act-1');
    // The planner call's tokens (the stub reports 10 + 5) are the message's.
    expect(res.body.data).toMatchObject({ status: 'replied', response: '北京：晴，25°C', tokens_used: 15 });
    const planner = stub.requestsFor('model-acme').filter(isPlanner);
    expect(planner).toHaveLength(1);
    const system = systemOf(planner[0]!);
    expect(system).toContain('- weather：查询一个城市的天气并告诉大家');
    expect(system).toContain('"city": 要查询的城市名');
    expect(system).toContain('- wave：');
    expect(system).not.toContain('hidden');
    // The action answered: no reply generated.
    expect(stub.requestsFor('model-acme').filter(isReplyer)).toHaveLength(0);
    const action = await actionOf('acme', res.body.data.message_id as string);
    expect(action).toMatchObject({
      action_name: 'plugin.forecast.weather',
      reasoning: 'planner_llm',
      action_data: {
        planner: { offered: ['weather', 'wave'], choice: 'weather', reason: '有人问天气' },
        plugin: {
          parameters: { city: '北京' },
          // The PluginAPI was bound to the message's context.
          data: {
            context: { agent_id: 'default', platform: 'qq', chat_stream_id: 'act-1' },
            asked: '北京今天天气怎么样？',
          },
        },
      },
    });
    expect(await requestTypes('acme', 'act-1')).toEqual(['planner']);
  });

  it('leaves the keyword action out when no message has its keyword; a plain reply follows', async () => {
    stub.requests.length = 0;
    const res = await send(acme, '今天吃什么好呢', 'act-2');
    expect(res.body.data).toMatchObject({ status: 'replied', response: REPLY, tokens_used: 30 });
    const planner = stub.requestsFor('model-acme').filter(isPlanner);
    expect(planner).toHaveLength(1);
    expect(systemOf(planner[0]!)).not.toContain('weather');
    expect(systemOf(planner[0]!)).toContain('- wave：');
    const action = await actionOf('acme', res.body.data.message_id as string);
    expect(action).toMatchObject({
      action_name: 'reply',
      action_data: { planner: { offered: ['wave'], choice: 'reply' } },
    });
    expect(await requestTypes('acme', 'act-2')).toEqual(['planner', 'replyer']);
  });

  it('never offers a disabled plugin: the other tenant is answered without a planner call', async () => {
    stub.requests.length = 0;
    const res = await send(globex, '北京今天天气怎么样？', 'act-1');
    expect(res.body.data).toMatchObject({ status: 'replied', response: REPLY });
    const requests = stub.requestsFor('model-globex');
    expect(requests.filter(isReplyer)).toHaveLength(1);
    expect(requests.filter(isPlanner)).toHaveLength(0);
    for (const r of requests) expect(JSON.stringify(r.body)).not.toContain('weather');
    expect((await actionOf('globex', res.body.data.message_id as string))?.action_name).toBe('reply');
  });

  it('answers the message as usual when the chosen action throws or overruns its budget', async () => {
    for (const [text, stream, reason] of [
      ['这个坏掉了吗', 'act-3', 'error'],
      ['是不是卡住了', 'act-4', 'timeout'],
    ] as const) {
      const started = Date.now();
      const res = await send(acme, text, stream);
      expect(res.body.data).toMatchObject({ status: 'replied', response: REPLY });
      expect(Date.now() - started).toBeLessThan(10_000);
      const action = await actionOf('acme', res.body.data.message_id as string);
      expect(action).toMatchObject({ action_name: 'reply', action_data: { plugin_error: { reason } } });
      expect(await requestTypes('acme', stream)).toEqual(['planner', 'replyer']);
    }
  });

  it('runs an action called by name (`/weather`) without asking the planner', async () => {
    stub.requests.length = 0;
    const res = await send(acme, '/weather', 'act-5');
    expect(res.body.data).toMatchObject({ status: 'replied', response: '?：晴，25°C' });
    expect(stub.requestsFor('model-acme').filter((r) => isPlanner(r) || isReplyer(r))).toHaveLength(0);
    expect(await actionOf('acme', res.body.data.message_id as string)).toMatchObject({
      action_name: 'plugin.forecast.weather',
      reasoning: 'plugin_command',
    });
  });
});

describe('the catalog and events', () => {
  it("lists the actions' activation, parameters and requirements", async () => {
    const res = await app.request('GET', '/plugins?status=enabled', { token: acme });
    const forecast = (
      res.body.data.plugins as { plugin_id: string; components: { actions: Record<string, unknown>[] } }[]
    ).find((p) => p.plugin_id === 'forecast');
    expect(forecast?.components.actions).toEqual([
      {
        name: 'weather',
        description: '查询一个城市的天气并告诉大家',
        activation_type: 'keyword',
        activation_keywords: ['天气', 'weather'],
        action_parameters: { city: '要查询的城市名' },
        action_require: ['有人问天气时使用'],
      },
      expect.objectContaining({ name: 'wave', activation_type: 'always', activation_keywords: [] }),
      expect.objectContaining({ name: 'hidden', activation_type: 'never' }),
      expect.objectContaining({ name: 'broken', activation_type: 'keyword', activation_keywords: ['坏掉'] }),
      expect.objectContaining({ name: 'stuck', activation_type: 'keyword' }),
    ]);
  });

  it('post_llm replaces the generated reply and after_send hears the reply that was stored', async () => {
    const res = await send(acme, '今天吃什么好呢', 'ev-1');
    expect(res.body.data).toMatchObject({ status: 'replied', response: `✨ ${REPLY} ✨` });
    // after_send runs once the reply is stored (and announced): wait for it.
    const stored = await waitFor(async () => {
      const { rows } = await app.t.admin<{ value: unknown }>(
        `SELECT value FROM plugin_state WHERE tenant_id = 'acme' AND plugin_id = 'polish' AND key = 'last_sent'`,
      );
      return rows[0]?.value;
    });
    expect(stored).toEqual({ to: '今天吃什么好呢', reply: `✨ ${REPLY} ✨` });
  });
});

describe('commands in a gathered batch', () => {
  /** Holds the stream's lock so that sent messages are stored and left for one later pass. */
  async function holdStream(tenantId: string, chatStreamId: string): Promise<() => Promise<void>> {
    const key = app.deps.keys.streamLock(tenantId, chatStreamId);
    expect(await app.deps.redis.set(key, 'test-holder', 'PX', 60_000, 'NX')).toBe('OK');
    return async () => {
      await app.deps.redis.del(key);
    };
  }

  async function stored(tenantId: string, ids: string[]): Promise<void> {
    await waitFor(async () => {
      const { rows } = await app.t.admin(
        `SELECT 1 FROM messages WHERE tenant_id = $1 AND message_id = ANY($2)`,
        [tenantId, ids],
      );
      return rows.length === ids.length ? true : undefined;
    });
  }

  async function replies(tenantId: string, ids: string[]) {
    const { rows } = await app.t.admin<{ reply_to: string; content: string }>(
      `SELECT reply_to, content FROM messages WHERE tenant_id = $1 AND direction = 'out' AND reply_to = ANY($2)
       ORDER BY created_at, message_id`,
      [tenantId, ids],
    );
    return rows;
  }

  it('answers every message of the batch a command matches, once each, and the rest by the planner', async () => {
    const release = await holdStream('acme', 'batch-1');
    const ids: string[] = [];
    for (const text of ['/roll', '大家好', '/roll 2d6']) {
      const res = await send(acme, text, 'batch-1', false);
      expect(res.status).toBe(200);
      ids.push(res.body.data.message_id as string);
    }
    await stored('acme', ids);
    await release();
    stub.requests.length = 0;
    // The next message's job takes the free stream and answers all four in one pass.
    const last = await send(acme, '今天吃什么好呢', 'batch-1');
    expect(last.body.data).toMatchObject({ status: 'replied', response: REPLY });
    ids.push(last.body.data.message_id as string);

    const { rows } = await app.t.admin<{ message_id: string; status: string; response: string | null }>(
      `SELECT message_id, status, response FROM messages WHERE tenant_id = 'acme' AND message_id = ANY($1)`,
      [ids],
    );
    const byId = new Map(rows.map((r) => [r.message_id, r]));
    expect(byId.get(ids[0]!)).toMatchObject({
      status: 'replied',
      response: expect.stringMatching(/^🎲 d6: \d$/) as unknown,
    });
    expect(byId.get(ids[2]!)).toMatchObject({
      status: 'replied',
      response: expect.stringMatching(/^🎲 2d6: \d+ \(\d \+ \d\)$/) as unknown,
    });
    expect((await actionOf('acme', ids[0]!))?.action_name).toBe('plugin.dice.roll');
    expect((await actionOf('acme', ids[2]!))?.action_name).toBe('plugin.dice.roll');
    // The planner saw the two other messages, not the commands.
    const planner = stub.requestsFor('model-acme').filter(isPlanner);
    expect(planner).toHaveLength(1);
    const chat = (planner[0]!.body.messages as { content: string }[])[1]!.content;
    expect(chat).toContain('大家好');
    expect(chat).toContain('今天吃什么好呢');
    expect((await actionOf('acme', ids[3]!))?.action_name).toBe('reply');
    const before = await replies('acme', ids);
    expect(before.map((r) => r.reply_to).sort()).toEqual([ids[0], ids[2], ids[3]].sort());

    // A retried pass (the messages claimed again, as after a killed worker) answers nothing twice.
    await app.t.admin(
      `UPDATE messages SET status = 'processing' WHERE tenant_id = 'acme' AND message_id = ANY($1)`,
      [ids],
    );
    const again = await send(acme, '再来一条', 'batch-1');
    expect(again.body.data.status).toBe('replied');
    expect(await replies('acme', ids)).toEqual(before);
    const { rows: records } = await app.t.admin<{ n: string }>(
      `SELECT count(*) AS n FROM action_records WHERE tenant_id = 'acme' AND message_id = ANY($1)`,
      [ids],
    );
    expect(Number(records[0]!.n)).toBe(3);
  });
});
