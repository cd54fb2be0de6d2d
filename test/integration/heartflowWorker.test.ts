import { type ChildProcess, fork } from 'node:child_process';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import { verifyWebhookSignature } from '../../src/delivery/signature';
import { newId } from '../../src/domain/ids';
import { createIsolationContext } from '../../src/domain/isolationContext';
import { deliveryJobId } from '../../src/queues/deliveryJobs';
import type { HeartflowJobData } from '../../src/queues/tenantQueues';
import type { WorkerPool } from '../../src/workers/workerPool';
import { testEnv } from '../support/env';
import { OpenAiStub } from '../support/openaiStub';
import { startTestApp, type TestApp } from '../support/testApp';
import { startTestPool } from '../support/testPool';
import { waitFor } from '../support/waitFor';

let app: TestApp;
let pool: WorkerPool | undefined;
let token: string;
const stub = new OpenAiStub();

async function startPool(): Promise<WorkerPool> {
  pool = await startTestPool(app, {
    concurrency: 8,
    lockDurationMs: 2000,
    stalledIntervalMs: 500,
    streamLockTtlMs: 1500,
  });
  return pool;
}

async function stopPool(): Promise<void> {
  await pool?.close();
  pool = undefined;
}

function send(body: Record<string, unknown>, wait = 10_000) {
  return app.request('POST', `/chat/send?wait=${wait}`, { token, body });
}

/** Resolves once every message of `ids` (tenant acme) is replied. */
async function allReplied(ids: string[]): Promise<void> {
  await waitFor(async () => {
    const { rows } = await app.t.admin<{ n: string }>(
      `SELECT count(*) AS n FROM messages WHERE tenant_id = 'acme' AND message_id = ANY($1) AND status = 'replied'`,
      [ids],
    );
    return Number(rows[0]?.n) === ids.length ? true : undefined;
  });
}

/** LLM calls made to reply in a stream (a memory job of the stream may call the model too). */
async function replyCalls(chatStreamId: string): Promise<number> {
  const { rows } = await app.t.admin<{ n: string }>(
    `SELECT count(*) AS n FROM llm_usage WHERE tenant_id = 'acme' AND chat_stream_id = $1 AND request_type = 'replyer'`,
    [chatStreamId],
  );
  return Number(rows[0]?.n);
}

beforeAll(async () => {
  await stub.start();
  app = await startTestApp();
  await app.t.admin(
    `INSERT INTO tenants (tenant_id, name, settings) VALUES ('acme', 'Acme', '{"rate_limit_per_second": 1000, "credential_rate_limit_per_second": 1000}'),
                                                            ('globex', 'Globex', '{}')`,
  );
  await app.t.admin(`UPDATE agents SET name = '麦麦' WHERE tenant_id = 'acme' AND agent_id = 'default'`);
  token = await app.tokenFor({ role: 'tenant_admin', tenantId: 'acme' });
});

afterAll(async () => {
  await stopPool();
  await app.close();
  await stub.close();
});

afterEach(async () => {
  await stopPool();
});

describe('heartflow worker', () => {
  it('answers a mention end to end with the built-in local provider and stores the reply', async () => {
    await startPool();
    const res = await send({ message: '@麦麦 今天吃什么', chat_stream_id: 'local-1', platform: 'qq' });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ status: 'replied', tenant_id: 'acme' });
    expect(typeof res.body.data.response).toBe('string');
    expect((res.body.data.response as string).length).toBeGreaterThan(0);
    const rows = await app.t.admin<{ direction: string; content: string; reply_to: string | null }>(
      `SELECT direction, content, reply_to FROM messages WHERE tenant_id = 'acme' AND chat_stream_id = 'local-1'
       ORDER BY created_at`,
    );
    expect(rows.rows.map((r) => r.direction)).toEqual(['in', 'out']);
    expect(rows.rows[1]).toMatchObject({
      content: res.body.data.response,
      reply_to: res.body.data.message_id,
    });
    const usage = await app.t.admin(`SELECT provider, status FROM llm_usage WHERE tenant_id = 'acme'`);
    expect(usage.rows).toEqual([{ provider: 'local', status: 'success' }]);
  });

  it('claims without waiting for the disk, but writes the outcome with a synchronous commit', async () => {
    // What each status change of a message ran under, noted by a trigger as the owner.
    await app.t.admin(`CREATE TABLE commit_seen (message_id text, status text, sync text)`);
    await app.t.admin(`CREATE FUNCTION note_commit() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
      BEGIN
        INSERT INTO commit_seen VALUES (NEW.message_id, NEW.status, current_setting('synchronous_commit'));
        RETURN NEW;
      END $$`);
    await app.t.admin(`CREATE TRIGGER note_commit AFTER UPDATE OF status ON messages
                       FOR EACH ROW EXECUTE FUNCTION note_commit()`);
    try {
      await startPool();
      const res = await send({ message: '@麦麦 提交', chat_stream_id: 'sync-1', platform: 'qq' });
      expect(res.body.data).toMatchObject({ status: 'replied' });
      const { rows } = await app.t.admin<{ status: string; sync: string }>(
        `SELECT status, sync FROM commit_seen WHERE message_id = $1`,
        [res.body.data.message_id],
      );
      // The claim may be lost with PostgreSQL (the job's retry claims again); the outcome, which
      // ends the job, is durable, and flushes the claim's WAL with its own.
      expect(rows).toEqual([
        { status: 'processing', sync: 'off' },
        { status: 'replied', sync: 'on' },
      ]);
    } finally {
      await app.t.admin(`DROP TRIGGER note_commit ON messages`);
    }
  });

  it('always answers a mention but stays silent at talk_value 0 otherwise', async () => {
    await startPool();
    await app.request('POST', '/chat/streams', {
      token,
      body: { chat_stream_id: 'quiet-1', platform: 'qq', chat_type: 'group' },
    });
    const put = await app.request('PUT', '/config', {
      token,
      body: { category: 'heartflow', scope: 'chat', chat_stream_id: 'quiet-1', config: { talk_value: 0 } },
    });
    expect(put.status).toBe(200);
    const plain = await send({ message: '今天天气不错', chat_stream_id: 'quiet-1', platform: 'qq' });
    expect(plain.body.data.status).toBe('no_reply');
    const mention = await send({ message: '@麦麦 你在吗？', chat_stream_id: 'quiet-1', platform: 'qq' });
    expect(mention.body.data.status).toBe('replied');
  });

  it("gathers a busy tenant's busy stream into a pass about every second, answering every message", async () => {
    await startPool();
    // 60 mentions in 3 s on one stream (20/s: a busy tenant, a hot stream), each sent on its own.
    const sent: ReturnType<typeof send>[] = [];
    for (let i = 0; i < 60; i++) {
      sent.push(send({ message: `@麦麦 热闹${i}`, chat_stream_id: 'hot-1', platform: 'qq' }, 0));
      await new Promise((r) => setTimeout(r, 50));
    }
    await allReplied((await Promise.all(sent)).map((r) => r.body.data.message_id as string));
    // Answered one by one, that would be about 60 passes and calls; gathered, one pass per second
    // once the tenant counts as busy (its rate estimate needs most of a second to get there).
    expect(await replyCalls('hot-1')).toBeLessThanOrEqual(25);
  });

  it('coalesces a burst of mentions in one stream into a few LLM calls, answering every one', async () => {
    // Queue the burst before any worker runs, then let the pool loose on it.
    const sent = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        send({ message: `@麦麦 第${i}个问题？`, chat_stream_id: 'burst-1', platform: 'qq' }, 0),
      ),
    );
    expect(sent.every((r) => r.status === 200)).toBe(true);
    await startPool();
    await allReplied(sent.map((r) => r.body.data.message_id as string));
    const calls = await replyCalls('burst-1');
    const replies = await app.t.admin<{ n: string }>(
      `SELECT count(*) AS n FROM messages WHERE tenant_id = 'acme' AND chat_stream_id = 'burst-1' AND direction = 'out'`,
    );
    // How many passes it takes depends on how the pool's 20 jobs interleave (each pass answers what
    // was stored by then; 4–6 in practice): a third of the messages is far from one call each.
    expect(calls).toBeLessThanOrEqual(10);
    expect(Number(replies.rows[0]?.n)).toBe(calls);
  });

  it('replies through an OpenAI-compatible server when the agent is configured for one', async () => {
    stub.reset();
    stub.on('stub-model', {
      kind: 'success',
      content: '来自模型的回答',
      usage: { prompt_tokens: 40, completion_tokens: 6 },
    });
    await app.t.admin(
      `INSERT INTO agents (tenant_id, agent_id, name, config) VALUES ('acme', 'gpt', 'GPT', $1)`,
      [JSON.stringify({ llm: { provider: 'openai', base_url: stub.baseUrl, models: ['stub-model'] } })],
    );
    await startPool();
    const res = await send({
      message: '@GPT 你好',
      chat_stream_id: 'gpt-1',
      platform: 'qq',
      agent_id: 'gpt',
    });
    expect(res.body.data).toMatchObject({ status: 'replied', response: '来自模型的回答', tokens_used: 46 });
    expect(stub.requestsFor('stub-model')).toHaveLength(1);
  });

  it('tells the model when it has replied several times in a row (max_continuous_replies)', async () => {
    stub.reset();
    stub.on('streak-model', {
      kind: 'success',
      content: '好的',
      usage: { prompt_tokens: 10, completion_tokens: 2 },
    });
    await app.t.admin(
      `INSERT INTO agents (tenant_id, agent_id, name, config) VALUES ('acme', 'chatty', 'Chatty', $1)`,
      [JSON.stringify({ llm: { provider: 'openai', base_url: stub.baseUrl, models: ['streak-model'] } })],
    );
    const put = await app.request('PUT', '/config', {
      token,
      body: {
        category: 'heartflow',
        scope: 'agent',
        agent_id: 'chatty',
        config: { max_continuous_replies: 2 },
      },
    });
    expect(put.status).toBe(200);
    await startPool();
    for (const text of ['@Chatty 一', '@Chatty 二', '@Chatty 三']) {
      const res = await send({
        message: text,
        chat_stream_id: 'chatty-1',
        platform: 'qq',
        agent_id: 'chatty',
      });
      expect(res.body.data).toMatchObject({ status: 'replied' });
    }
    const systems = stub
      .requestsFor('streak-model')
      .map((r) => (r.body.messages as { role: string; content: string }[])[0]!)
      .filter((m) => m.role === 'system' && m.content.includes('回复最后一条'))
      .map((m) => m.content);
    expect(systems).toHaveLength(3);
    expect(systems[0]).not.toContain('连续回复');
    expect(systems[1]).not.toContain('连续回复');
    expect(systems[2]).toContain('你已经连续回复了2条消息，你回复的有点多了');
  });

  it("never runs a job under another tenant's context", async () => {
    await startPool();
    const forged: HeartflowJobData = {
      messageId: newId('msg'),
      tenantId: 'globex',
      agentId: 'default',
      platform: 'qq',
      chatStreamId: 'forged',
      chatType: 'group',
      content: 'injected',
      clientMessageId: null,
      replyTo: null,
      sender: { userId: null, nickname: null, cardname: null, groupId: null, groupName: null },
      segments: [],
      mentioned: true,
      options: { enableMemory: false, enableEmoji: false, priority: 'normal' },
      receivedAt: Date.now(),
      source: 'http',
    };
    const queue = app.deps.queues.queue('acme', 'heartflow');
    await queue.add('message', forged, { jobId: forged.messageId, attempts: 1 });
    await app.deps.queues.announce('acme', 'heartflow');
    const state = await waitFor(async () => {
      const s = await queue.getJobState(forged.messageId);
      return s === 'failed' ? s : undefined;
    });
    expect(state).toBe('failed');
    const stored = await app.t.admin(`SELECT 1 FROM messages WHERE message_id = $1`, [forged.messageId]);
    expect(stored.rows).toEqual([]);
    // Sanity: the real tenant's context is untouched by the attempt.
    expect(createIsolationContext({ tenantId: 'acme' }).tenantId).toBe('acme');
  });

  it('fails the job of a message whose reply could not be generated, and a retry answers it once', async () => {
    stub.reset();
    stub.on('down-model', { kind: 'error', status: 400, message: 'model not found' });
    await app.t.admin(
      `INSERT INTO agents (tenant_id, agent_id, name, config) VALUES ('acme', 'down', 'Down', $1)`,
      [
        JSON.stringify({
          llm: { provider: 'openai', base_url: stub.baseUrl, models: ['down-model'] },
        }),
      ],
    );
    await startPool();
    const sent = await send({
      message: '@Down 在吗',
      chat_stream_id: 'down-1',
      platform: 'qq',
      agent_id: 'down',
    });
    expect(sent.body.data.status).toBe('failed');
    const messageId = sent.body.data.message_id as string;

    // The failure is a failed job, with the reason, where operators look.
    const failedJob = await waitFor(async () => {
      const res = await app.request('GET', '/admin/queues/acme/jobs?state=failed&kind=heartflow', { token });
      const jobs = (res.body.data as { jobs: { job_id: string; failed_reason: string | null }[] }).jobs;
      return jobs.find((j) => j.failed_reason?.includes(messageId));
    });
    expect(failedJob.failed_reason).toMatch(/reply generation failed/);

    // Once the model answers, a retry of that job answers the message, once.
    stub.reset();
    stub.on('down-model', {
      kind: 'success',
      content: '我在',
      usage: { prompt_tokens: 5, completion_tokens: 2 },
    });
    const retried = await app.request(
      'POST',
      `/admin/queues/acme/jobs/${failedJob.job_id}/retry?kind=heartflow`,
      {
        token,
      },
    );
    expect(retried.status).toBe(200);
    await allReplied([messageId]);
    const status = await app.request('GET', `/chat/messages/${messageId}/status`, { token });
    expect(status.body.data).toMatchObject({ status: 'replied', response: '我在' });
    await waitFor(async () => {
      const res = await app.request('GET', '/admin/queues/acme/jobs?state=failed&kind=heartflow', { token });
      const jobs = (res.body.data as { jobs: { job_id: string }[] }).jobs;
      return jobs.some((j) => j.job_id === failedJob.job_id) ? undefined : true;
    });
    const replies = await app.t.admin<{ n: number }>(
      `SELECT count(*)::int AS n FROM messages WHERE tenant_id = 'acme' AND reply_to = $1 AND direction = 'out'`,
      [messageId],
    );
    expect(replies.rows[0]!.n).toBe(1);
    expect(stub.requestsFor('down-model')).toHaveLength(1);
  });

  it('recovers a job whose worker was killed mid-reply and answers it exactly once', async () => {
    stub.reset();
    // First call hangs (the worker dies waiting for it); the retry gets an answer.
    stub.on('slow-model', [
      { kind: 'slow', delayMs: 30_000, content: 'too late' },
      { kind: 'success', content: '恢复后的回答', usage: { prompt_tokens: 10, completion_tokens: 3 } },
    ]);
    await app.t.admin(
      `INSERT INTO agents (tenant_id, agent_id, name, config) VALUES ('acme', 'slow', 'Slow', $1)`,
      [
        JSON.stringify({
          llm: { provider: 'openai', base_url: stub.baseUrl, models: ['slow-model'], timeout_ms: 60_000 },
        }),
      ],
    );
    const child: ChildProcess = fork(path.join(__dirname, '../support/workerChild.ts'), [], {
      execArgv: ['--import', 'tsx'],
      env: {
        ...process.env,
        MH_DB_URL: app.t.appUrl,
        MH_REDIS_URL: testEnv('redisUrl'),
        MH_PREFIX: app.deps.keys.prefix,
        MH_LOCK_MS: '2000',
        MH_STALLED_MS: '500',
        MH_STREAM_LOCK_MS: '1500',
      },
    });
    await new Promise<void>((resolve) => child.once('message', () => resolve()));
    const res = await send(
      { message: '@Slow 在吗', chat_stream_id: 'kill-1', platform: 'qq', agent_id: 'slow' },
      0,
    );
    const messageId = res.body.data.message_id as string;
    await waitFor(() => (stub.requestsFor('slow-model').length === 1 ? true : undefined));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    await startPool();
    const final = await waitFor(async () => {
      const r = await app.request('GET', `/chat/messages/${messageId}/status`, { token });
      return r.body.data?.status === 'replied' ? r.body.data : undefined;
    }, 30_000);
    expect(final.response).toBe('恢复后的回答');
    const replies = await app.t.admin(
      `SELECT message_id FROM messages WHERE tenant_id = 'acme' AND chat_stream_id = 'kill-1' AND direction = 'out'`,
    );
    expect(replies.rows).toHaveLength(1);
  }, 60_000);
});

describe('follow-up jobs of the pool', () => {
  it('delivers the reply to the agent webhook, signed with the secret the API sealed, and verifiable', async () => {
    const received: { body: string; headers: IncomingHttpHeaders }[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ body, headers: req.headers });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    try {
      const created = await app.request('POST', '/agents', {
        token,
        body: {
          agent_id: 'hooked',
          name: 'Hooked',
          config: { delivery: { webhook_url: url, webhook_secret: 'hook-secret' } },
        },
      });
      expect(created.status).toBe(201);
      const masked = { webhook_url: url, webhook_secret: '***' };
      expect(created.body.data).toMatchObject({ config: { delivery: masked } });
      const read = await app.request('GET', '/agents/hooked/config', { token });
      expect(read.body.data).toMatchObject({ config: { delivery: masked } });
      expect(JSON.stringify([created.body, read.body])).not.toMatch(/hook-secret|_encrypted/);
      const { rows } = await app.t.admin<{ config: { delivery: Record<string, string> } }>(
        `SELECT config FROM agents WHERE tenant_id = 'acme' AND agent_id = 'hooked'`,
      );
      expect(JSON.stringify(rows[0]?.config)).not.toContain('hook-secret');
      expect(rows[0]?.config.delivery.webhook_secret).toBeUndefined();
      expect(app.secretBox.decrypt(rows[0]!.config.delivery.webhook_secret_encrypted!)).toBe('hook-secret');
      await startPool();
      const res = await send({
        message: '@Hooked 你好',
        chat_stream_id: 'hook-1',
        platform: 'qq',
        agent_id: 'hooked',
      });
      expect(res.body.data.status).toBe('replied');
      const delivery = await waitFor(() => received[0]);
      const payload = JSON.parse(delivery.body) as { content: string; reply_to: string };
      expect(payload).toMatchObject({ content: res.body.data.response, reply_to: res.body.data.message_id });
      const verdict = verifyWebhookSignature({
        secret: 'hook-secret',
        body: delivery.body,
        timestampHeader: delivery.headers['x-maihive-timestamp'] as string,
        signatureHeader: delivery.headers['x-maihive-signature'] as string,
        nowMs: Date.now(),
      });
      expect(verdict).toEqual({ ok: true });
    } finally {
      await new Promise((r) => receiver.close(r));
    }
  });
});

describe('delivery set for one chat (PUT /config at chat scope)', () => {
  it("pushes that chat's replies to its own webhook, signed with its own secret; other chats have none", async () => {
    const received: { body: string; headers: IncomingHttpHeaders }[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ body, headers: req.headers });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/chat-hook`;
    try {
      for (const id of ['chat-hook-1', 'chat-hook-2']) {
        const created = await app.request('POST', '/chat/streams', {
          token,
          body: { chat_stream_id: id, platform: 'qq', chat_type: 'group' },
        });
        expect(created.status).toBe(201);
      }
      const put = await app.request('PUT', '/config', {
        token,
        body: {
          category: 'delivery',
          scope: 'chat',
          chat_stream_id: 'chat-hook-1',
          config: { webhook_url: url, webhook_secret: 'chat-secret' },
        },
      });
      expect(put.status).toBe(200);
      await startPool();
      const res = await send({ message: '@麦麦 你好', chat_stream_id: 'chat-hook-1', platform: 'qq' });
      expect(res.body.data.status).toBe('replied');
      const delivery = await waitFor(() => received[0]);
      expect(JSON.parse(delivery.body)).toMatchObject({
        chat_stream_id: 'chat-hook-1',
        reply_to: res.body.data.message_id,
      });
      const verdict = verifyWebhookSignature({
        secret: 'chat-secret',
        body: delivery.body,
        timestampHeader: delivery.headers['x-maihive-timestamp'] as string,
        signatureHeader: delivery.headers['x-maihive-signature'] as string,
        nowMs: Date.now(),
      });
      expect(verdict).toEqual({ ok: true });
      // The other chat of the same agent has no route: no delivery job at all.
      const other = await send({ message: '@麦麦 你好', chat_stream_id: 'chat-hook-2', platform: 'qq' });
      expect(other.body.data.status).toBe('replied');
      const jobOf = (messageId: unknown) =>
        app.deps.queues.queue('acme', 'delivery').getJob(deliveryJobId(`${messageId as string}.r`));
      expect(await jobOf(res.body.data.message_id)).toBeDefined();
      expect(await jobOf(other.body.data.message_id)).toBeUndefined();
      expect(received).toHaveLength(1);
    } finally {
      await new Promise((r) => receiver.close(r));
    }
  });
});

describe('worker process shutdown', () => {
  it('finishes the job in flight on SIGTERM, then exits 0', async () => {
    stub.reset();
    stub.on('term-model', { kind: 'success', content: '关机前的回答', delayMs: 1500 });
    await app.t.admin(
      `INSERT INTO agents (tenant_id, agent_id, name, config) VALUES ('acme', 'term', 'Term', $1)`,
      [JSON.stringify({ llm: { provider: 'openai', base_url: stub.baseUrl, models: ['term-model'] } })],
    );
    const child = fork(path.join(__dirname, '../../src/main.ts'), ['--role', 'worker'], {
      execArgv: ['--import', 'tsx'],
      env: {
        ...process.env,
        NODE_ENV: 'test',
        LOG_LEVEL: 'silent',
        DATABASE_URL: app.t.appUrl,
        DATABASE_ADMIN_URL: app.t.adminUrl,
        REDIS_URL: testEnv('redisUrl'),
        REDIS_PREFIX: app.deps.keys.prefix,
        JWT_SECRET: 'test-secret-that-is-at-least-32-bytes-long',
      },
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const res = await send(
      { message: '@Term 你好', chat_stream_id: 'term-1', platform: 'qq', agent_id: 'term' },
      0,
    );
    await waitFor(() => (stub.requestsFor('term-model').length === 1 ? true : undefined), 20_000);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const status = await app.request('GET', `/chat/messages/${res.body.data.message_id as string}/status`, {
      token,
    });
    expect(status.body.data).toMatchObject({ status: 'replied', response: '关机前的回答' });
  }, 60_000);
});
