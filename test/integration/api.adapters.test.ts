import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { HeartflowJobData } from '../../src/queues/tenantQueues';
import { startTestApp, type TestApp } from '../support/testApp';

let app: TestApp;
let bot1: string;
let bot2: string;
let admin: string;
let globexAdmin: string;

const BOT_QQ = '1145141919';

function fixture(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(__dirname, '../fixtures', path), 'utf8')) as Record<string, unknown>;
}

async function jobData(tenantId: string, messageId: string): Promise<HeartflowJobData> {
  const job = await app.deps.queues.queue(tenantId, 'heartflow').getJob(messageId);
  expect(job).toBeDefined();
  return job!.data as HeartflowJobData;
}

/**
 * Plays the worker for a send held by `?wait`: finds its job, then announces a reply until the
 * request answers (the waiter subscribes just after enqueuing, so an early announcement is lost).
 */
async function replyWhileWaiting<T>(
  pending: Promise<T>,
  clientMessageId: string,
  response: string,
): Promise<T> {
  let settled = false;
  void pending.finally(() => (settled = true));
  const queue = app.deps.queues.queue('acme', 'heartflow');
  while (!settled) {
    const jobs = await queue.getJobs(['prioritized', 'waiting']);
    const job = jobs.find((j) => (j.data as HeartflowJobData).clientMessageId === clientMessageId);
    if (job?.id) {
      const done = { message_id: job.id, status: 'replied', response, tokens_used: 12 };
      await app.deps.redis.publish(app.deps.keys.messageDone('acme'), JSON.stringify(done));
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return pending;
}

beforeAll(async () => {
  app = await startTestApp();
  await app.t.admin(`INSERT INTO tenants (tenant_id, name) VALUES ('acme', 'Acme'), ('globex', 'Globex')`);
  await app.t.admin(
    `INSERT INTO agents (tenant_id, agent_id, name) VALUES
       ('acme', 'default', 'Default'), ('acme', 'bot1', 'Bot one'), ('acme', 'bot2', 'Bot two'),
       ('globex', 'default', 'Default'), ('globex', 'gbot', 'G bot')
     ON CONFLICT DO NOTHING`,
  );
  // The same QQ account is a bot of both tenants: each tenant's credential must reach its own agent.
  await app.t.admin(
    `INSERT INTO agent_accounts (tenant_id, platform, account_id, agent_id, nickname, aliases) VALUES
       ('acme', 'qq', $1, 'bot1', '麦麦', '{麦麦子}'),
       ('globex', 'qq', $1, 'gbot', '小G', '{}')`,
    [BOT_QQ],
  );
  bot1 = await app.tokenFor({ role: 'agent', tenantId: 'acme', agentId: 'bot1' });
  bot2 = await app.tokenFor({ role: 'agent', tenantId: 'acme', agentId: 'bot2' });
  admin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'acme' });
  globexAdmin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'globex' });
});
afterAll(async () => {
  await app.close();
});

describe('POST /adapters/onebot/v11', () => {
  it('queues a group message that mentions the bot, for the agent of self_id, with the mention in the job', async () => {
    const res = await app.request('POST', '/adapters/onebot/v11', {
      token: bot1,
      body: fixture('onebot-v11/group-message-at-bot.json'),
    });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      tenant_id: 'acme',
      agent_id: 'bot1',
      platform: 'qq',
      chat_stream_id: 'qq-g-123456789',
      status: 'queued',
      duplicate: false,
    });
    const messageId = res.body.data.message_id as string;
    expect(messageId).toMatch(/^msg_/);
    const job = await jobData('acme', messageId);
    expect(job).toMatchObject({
      agentId: 'bot1',
      chatType: 'group',
      content: '今天吃什么[表情包]',
      clientMessageId: '1873945021',
      replyTo: '1873945000',
      mentioned: true,
      source: 'onebot',
      sender: { userId: '2345678901', nickname: '小明', cardname: '明明', groupId: '123456789' },
    });
  });

  it('carries mentioned=false for a group message that does not mention the bot', async () => {
    const res = await app.request('POST', '/adapters/onebot/v11', {
      token: admin,
      body: fixture('onebot-v11/group-message-plain.json'),
    });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ agent_id: 'bot1', status: 'queued' });
    const job = await jobData('acme', res.body.data.message_id as string);
    expect(job).toMatchObject({ mentioned: false, content: '有人周末一起去爬山吗' });
  });

  it('queues a private message in the per-user stream', async () => {
    const res = await app.request('POST', '/adapters/onebot/v11', {
      token: bot1,
      body: fixture('onebot-v11/private-friend-message.json'),
    });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ chat_stream_id: 'qq-p-2345678901', status: 'queued' });
    const job = await jobData('acme', res.body.data.message_id as string);
    expect(job.chatType).toBe('private');
  });

  it('is idempotent: re-posting the same event returns the first message id with duplicate true', async () => {
    const event = { ...fixture('onebot-v11/group-message-plain.json'), message_id: 99001 };
    const first = await app.request('POST', '/adapters/onebot/v11', { token: bot1, body: event });
    const again = await app.request('POST', '/adapters/onebot/v11', { token: bot1, body: event });
    expect(first.status).toBe(200);
    expect(again.status).toBe(200);
    expect(first.body.data.duplicate).toBe(false);
    expect(again.body.data).toMatchObject({ duplicate: true, message_id: first.body.data.message_id });
  });

  it('acknowledges notice and meta events without queuing them', async () => {
    for (const name of ['notice-group-increase.json', 'meta-heartbeat.json']) {
      const res = await app.request('POST', '/adapters/onebot/v11', {
        token: bot1,
        body: fixture(`onebot-v11/${name}`),
      });
      expect(res.status).toBe(200);
      expect(res.body.data).toMatchObject({ ignored: true });
      expect(res.body.data.message_id).toBeUndefined();
    }
  });

  it('answers 404 AGENT_NOT_FOUND for a bot account no agent of the tenant has', async () => {
    const res = await app.request('POST', '/adapters/onebot/v11', {
      token: admin,
      body: { ...fixture('onebot-v11/group-message-plain.json'), self_id: 42 },
    });
    expect(res.status).toBe(404);
    expect(res.body.error?.code).toBe('AGENT_NOT_FOUND');
  });

  it("answers 403 ISOLATION_VIOLATION when an agent credential posts for another agent's account", async () => {
    const res = await app.request('POST', '/adapters/onebot/v11', {
      token: bot2,
      body: fixture('onebot-v11/group-message-plain.json'),
    });
    expect(res.status).toBe(403);
    expect(res.body.error?.code).toBe('ISOLATION_VIOLATION');
    const named = await app.request('POST', '/adapters/onebot/v11', {
      token: admin,
      headers: { 'x-agent-id': 'bot2' },
      body: fixture('onebot-v11/group-message-plain.json'),
    });
    expect(named.status).toBe(403);
    expect(named.body.error?.code).toBe('ISOLATION_VIOLATION');
  });

  it("maps the same bot account to each tenant's own agent", async () => {
    const res = await app.request('POST', '/adapters/onebot/v11', {
      token: globexAdmin,
      body: fixture('onebot-v11/group-message-at-bot.json'),
    });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ tenant_id: 'globex', agent_id: 'gbot', duplicate: false });
    await jobData('globex', res.body.data.message_id as string);
  });

  it('accepts the CQ-code string form', async () => {
    const event = fixture('onebot-v11/group-message-at-bot.json');
    const res = await app.request('POST', '/adapters/onebot/v11', {
      token: bot1,
      body: { ...event, message_id: 99002, message: event.raw_message, message_format: 'string' },
    });
    expect(res.status).toBe(200);
    const job = await jobData('acme', res.body.data.message_id as string);
    expect(job).toMatchObject({ mentioned: true, replyTo: '1873945000', content: '今天吃什么[图片]' });
  });

  it('holds the response with ?wait and returns the current status on timeout, without a quick reply', async () => {
    const res = await app.request('POST', '/adapters/onebot/v11?wait=200', {
      token: bot1,
      body: { ...fixture('onebot-v11/group-message-plain.json'), message_id: 99003 },
    });
    expect(res.status).toBe(200);
    expect(res.body.data.status).toBe('queued');
    expect(res.body.data.reply).toBeUndefined();
    expect((res.body as unknown as Record<string, unknown>).reply).toBeUndefined();
  });

  it('answers with the OneBot quick operation when the reply is ready within ?wait', async () => {
    const event = { ...fixture('onebot-v11/group-message-at-bot.json'), message_id: 99004 };
    const pending = app.request('POST', '/adapters/onebot/v11?wait=10000', { token: bot1, body: event });
    const res = await replyWhileWaiting(pending, '99004', '吃火锅吧');
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      status: 'replied',
      response: '吃火锅吧',
      reply: '吃火锅吧',
      at_sender: false,
      agent_id: 'bot1',
    });
    // NapCat/go-cqhttp read the quick operation at the top level of the body.
    expect(res.body).toMatchObject({ success: true, reply: '吃火锅吧', at_sender: false });
  });

  it('rejects a malformed message event with the failing fields, and a missing credential with 401', async () => {
    const bad = await app.request('POST', '/adapters/onebot/v11', {
      token: bot1,
      body: { ...fixture('onebot-v11/group-message-plain.json'), message: 42 },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error?.code).toBe('VALIDATION_ERROR');
    expect(bad.body.error?.details?.fields).toEqual(
      expect.arrayContaining([expect.objectContaining({ path: 'message' })]),
    );
    const anonymous = await app.request('POST', '/adapters/onebot/v11', {
      body: fixture('onebot-v11/group-message-plain.json'),
    });
    expect(anonymous.status).toBe(401);
  });
});

describe('POST /adapters/maim', () => {
  it("queues a group MessageBase for the credential's agent, the quote as reply-to and the mention in the job", async () => {
    const base = fixture('maim/group-message.json') as { message_info: Record<string, unknown> };
    const res = await app.request('POST', '/adapters/maim', {
      token: bot1,
      body: { ...base, message_info: { ...base.message_info, message_id: 'maim-g-1' } },
    });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      tenant_id: 'acme',
      agent_id: 'bot1',
      platform: 'qq',
      chat_stream_id: 'qq-g-123456789',
      status: 'queued',
      duplicate: false,
    });
    const job = await jobData('acme', res.body.data.message_id as string);
    expect(job).toMatchObject({
      content: '今天吃什么[表情包]',
      replyTo: '1873945000',
      mentioned: true,
      source: 'maim',
      sender: { userId: '2345678901', groupName: '技术交流群' },
    });
    expect(job.segments[0]).toMatchObject({ type: 'quote', data: { to_bot: true } });
  });

  it('processes a QQ message once when it arrives through both adapters for the same agent', async () => {
    const viaOneBot = await app.request('POST', '/adapters/onebot/v11', {
      token: bot1,
      body: fixture('onebot-v11/group-message-at-bot.json'),
    });
    const viaMaim = await app.request('POST', '/adapters/maim', {
      token: bot1,
      body: fixture('maim/group-message.json'),
    });
    expect(viaMaim.status).toBe(200);
    expect(viaMaim.body.data).toMatchObject({ duplicate: true, message_id: viaOneBot.body.data.message_id });
  });

  it('queues a private MessageBase for the agent named by X-Agent-ID', async () => {
    const res = await app.request('POST', '/adapters/maim', {
      token: admin,
      headers: { 'x-agent-id': 'bot1' },
      body: fixture('maim/private-message.json'),
    });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      agent_id: 'bot1',
      chat_stream_id: 'qq-p-2345678901',
      status: 'queued',
    });
    const job = await jobData('acme', res.body.data.message_id as string);
    expect(job).toMatchObject({ mentioned: false, chatType: 'private' });
  });

  it('sees no mention when the agent has no account naming the @', async () => {
    const res = await app.request('POST', '/adapters/maim', {
      token: bot2,
      body: fixture('maim/group-message.json'),
    });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ agent_id: 'bot2', duplicate: false });
    const job = await jobData('acme', res.body.data.message_id as string);
    expect(job.mentioned).toBe(false);
    expect(job.content).toBe('@麦麦 今天吃什么[表情包]');
  });

  it('is idempotent per agent on the platform message id', async () => {
    const base = fixture('maim/private-message.json') as { message_info: Record<string, unknown> };
    const body = { ...base, message_info: { ...base.message_info, message_id: 'maim-77' } };
    const first = await app.request('POST', '/adapters/maim', { token: bot1, body });
    const again = await app.request('POST', '/adapters/maim', { token: bot1, body });
    expect(again.body.data).toMatchObject({ duplicate: true, message_id: first.body.data.message_id });
  });

  it('carries the reply text in data.response when it is ready within ?wait', async () => {
    const base = fixture('maim/private-message.json') as { message_info: Record<string, unknown> };
    const body = { ...base, message_info: { ...base.message_info, message_id: 'maim-wait-1' } };
    const pending = app.request('POST', '/adapters/maim?wait=10000', { token: bot1, body });
    const res = await replyWhileWaiting(pending, 'maim-wait-1', '记住啦');
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ status: 'replied', response: '记住啦' });
    expect(res.body.data.reply).toBeUndefined();
    expect((res.body as unknown as Record<string, unknown>).reply).toBeUndefined();
  });

  it('acknowledges a notify event without queuing it', async () => {
    const res = await app.request('POST', '/adapters/maim', {
      token: bot1,
      body: { ...fixture('maim/private-message.json'), message_segment: { type: 'notify', data: {} } },
    });
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({ ignored: true, reason: 'notify' });
  });

  it('refuses an agent credential naming another agent, and a malformed MessageBase', async () => {
    const other = await app.request('POST', '/adapters/maim', {
      token: bot1,
      headers: { 'x-agent-id': 'bot2' },
      body: fixture('maim/private-message.json'),
    });
    expect(other.status).toBe(403);
    expect(other.body.error?.code).toBe('ISOLATION_VIOLATION');
    const bad = await app.request('POST', '/adapters/maim', {
      token: bot1,
      body: { message_info: { platform: 'qq' }, message_segment: { type: 'text' } },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error?.code).toBe('VALIDATION_ERROR');
  });
});
