/**
 * OneBot over plain HTTP: NapCat's `X-Signature` on events POSTed to `/adapters/onebot/v11` when
 * the agent has a secret, and replies delivered through the agent's OneBot HTTP API
 * (`delivery.onebot_http`), where NapCat's HTTP 200 with a non-zero retcode is a failure.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { oneBotSignature } from '../../src/api/onebot/signature';
import type { WorkerPool } from '../../src/workers/workerPool';
import { startTestApp, type TestApp } from '../support/testApp';
import { startTestPool } from '../support/testPool';
import { waitFor } from '../support/waitFor';

const BOT_QQ = '1145141919';
const SECRET = 'napcat-http-token';
let app: TestApp;
let acmeAdmin: string;
let globexAdmin: string;
let acmeKey: string;
let globexKey: string;

function fixture(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(__dirname, '../fixtures', path), 'utf8')) as Record<string, unknown>;
}

/** POSTs an event as NapCat's HTTP client does: the body as serialised, signed when asked. */
function post(apiKey: string, event: Record<string, unknown>, signature?: string) {
  const rawBody = JSON.stringify(event);
  return app.request('POST', '/adapters/onebot/v11', {
    apiKey,
    rawBody,
    headers: {
      'content-type': 'application/json',
      ...(signature === undefined ? {} : { 'x-signature': signature }),
    },
  });
}

beforeAll(async () => {
  app = await startTestApp();
  await app.t.admin(
    `INSERT INTO tenants (tenant_id, name, settings) VALUES
       ('acme', 'Acme', '{"rate_limit_per_second": 1000, "credential_rate_limit_per_second": 1000}'),
       ('globex', 'Globex', '{"rate_limit_per_second": 1000, "credential_rate_limit_per_second": 1000}')`,
  );
  await app.t.admin(
    `INSERT INTO agents (tenant_id, agent_id, name) VALUES ('acme', 'bot1', '麦麦'), ('globex', 'gbot', '小G')
     ON CONFLICT DO NOTHING`,
  );
  acmeAdmin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'acme' });
  globexAdmin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'globex' });
  const accounts = [{ platform: 'qq', account_id: BOT_QQ, nickname: '麦麦' }];
  const acme = await app.request('PUT', '/agents/bot1/config', {
    token: acmeAdmin,
    body: { accounts, onebot: { secret: SECRET } },
  });
  const globex = await app.request('PUT', '/agents/gbot/config', { token: globexAdmin, body: { accounts } });
  if (acme.status !== 200 || globex.status !== 200) throw new Error('configuring the agents failed');
  const key = async (token: string, agentId: string) => {
    const res = await app.request('POST', '/auth/api-keys', {
      token,
      body: { name: 'napcat', role: 'agent', agent_id: agentId },
    });
    return res.body.data.api_key as string;
  };
  acmeKey = await key(acmeAdmin, 'bot1');
  globexKey = await key(globexAdmin, 'gbot');
});

afterAll(async () => {
  await app.close();
});

describe('X-Signature on POST /adapters/onebot/v11', () => {
  it('stores the secret sealed and shows it masked', async () => {
    const res = await app.request('GET', '/agents/bot1/config', { token: acmeAdmin });
    expect(res.body.data.config).toMatchObject({ onebot: { secret: '***' } });
    const { rows } = await app.t.admin<{ config: { onebot: Record<string, string> } }>(
      `SELECT config FROM agents WHERE tenant_id = 'acme' AND agent_id = 'bot1'`,
    );
    expect(rows[0]?.config.onebot.secret).toBeUndefined();
    expect(app.secretBox.decrypt(rows[0]!.config.onebot.secret_encrypted!)).toBe(SECRET);
  });

  it('accepts an event signed with the agent’s secret', async () => {
    const event = fixture('onebot-v11/group-message-at-bot.json');
    const res = await post(acmeKey, event, oneBotSignature(SECRET, JSON.stringify(event)));
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ agent_id: 'bot1', status: 'queued' });
  });

  it('refuses a missing, wrong or malformed signature with 401, ignored events included', async () => {
    const event = { ...fixture('onebot-v11/group-message-plain.json'), message_id: 99001 };
    const signed = oneBotSignature(SECRET, JSON.stringify(event));
    for (const signature of [
      undefined,
      oneBotSignature('another-secret', JSON.stringify(event)),
      'sha1=zz',
      'md5=1',
    ]) {
      const res = await post(acmeKey, event, signature);
      expect(res.status).toBe(401);
      expect(res.body.error?.code).toBe('UNAUTHORIZED');
    }
    // Signed over other bytes than those sent (the same event serialised differently).
    const res = await post(acmeKey, { ...event, font: 15 }, signed);
    expect(res.status).toBe(401);
    const heartbeat = fixture('onebot-v11/meta-heartbeat.json');
    expect((await post(acmeKey, heartbeat)).status).toBe(401);
    expect((await post(acmeKey, heartbeat, oneBotSignature(SECRET, JSON.stringify(heartbeat)))).status).toBe(
      200,
    );
  });

  it('asks nothing of an agent without a secret (another tenant answering as the same QQ number)', async () => {
    const res = await post(globexKey, {
      ...fixture('onebot-v11/group-message-plain.json'),
      message_id: 99002,
    });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ tenant_id: 'globex', agent_id: 'gbot' });
  });
});

describe('delivery through the OneBot HTTP API (delivery.onebot_http)', () => {
  let napcat: Server;
  let napcatUrl: string;
  let pool: WorkerPool;
  const calls: { path: string; headers: IncomingHttpHeaders; body: Record<string, unknown> }[] = [];
  let answer: (path: string) => { status: number; body: unknown } = () => ({
    status: 200,
    body: { status: 'ok', retcode: 0, data: { message_id: 424242 }, message: '', wording: '' },
  });

  beforeAll(async () => {
    napcat = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString('utf8')));
      req.on('end', () => {
        calls.push({
          path: req.url ?? '',
          headers: req.headers,
          body: JSON.parse(text) as Record<string, unknown>,
        });
        const a = answer(req.url ?? '');
        res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.body));
      });
    });
    napcat.listen(0, '127.0.0.1');
    await new Promise((r) => napcat.once('listening', r));
    napcatUrl = `http://127.0.0.1:${(napcat.address() as AddressInfo).port}`;
    const res = await app.request('PUT', '/agents/gbot/config', {
      token: globexAdmin,
      body: { delivery: { onebot_http: { base_url: napcatUrl, access_token: 'napcat-api-token' } } },
    });
    if (res.status !== 200) throw new Error('configuring onebot_http failed');
    pool = await startTestPool(app);
  });

  it('stores the access token sealed and shows it masked', async () => {
    const res = await app.request('GET', '/agents/gbot/config', { token: globexAdmin });
    expect(res.body.data.config).toMatchObject({
      delivery: { onebot_http: { base_url: napcatUrl, access_token: '***' } },
    });
    const { rows } = await app.t.admin<{ config: { delivery: { onebot_http: Record<string, string> } } }>(
      `SELECT config FROM agents WHERE tenant_id = 'globex' AND agent_id = 'gbot'`,
    );
    const stored = rows[0]!.config.delivery.onebot_http;
    expect(stored.access_token).toBeUndefined();
    expect(app.secretBox.decrypt(stored.access_token_encrypted!)).toBe('napcat-api-token');
  });

  afterAll(async () => {
    await pool.close();
    await new Promise((r) => napcat.close(r));
  });

  function delivery(messageId: string) {
    return app.t
      .admin<{ status: string; platform_message_id: string | null; last_error: string | null }>(
        `SELECT status, platform_message_id, last_error FROM deliveries WHERE tenant_id = 'globex' AND message_id = $1`,
        [messageId],
      )
      .then((r) => r.rows[0]);
  }

  async function replyOf(chatStreamId: string): Promise<{ message_id: string; content: string }> {
    return waitFor(async () => {
      const { rows } = await app.t.admin<{ message_id: string; content: string }>(
        `SELECT message_id, content FROM messages WHERE tenant_id = 'globex' AND chat_stream_id = $1 AND direction = 'out'`,
        [chatStreamId],
      );
      return rows[0];
    });
  }

  it('POSTs send_private_msg with the bearer token and keeps the returned message_id', async () => {
    const event = fixture('onebot-v11/private-friend-message.json');
    expect((await post(globexKey, event)).status).toBe(200);
    const reply = await replyOf('qq-p-2345678901');
    const done = await waitFor(async () => {
      const d = await delivery(reply.message_id);
      return d?.status === 'delivered' ? d : undefined;
    });
    expect(done.platform_message_id).toBe('424242');
    const call = calls.find((c) => c.path === '/send_private_msg');
    expect(call?.headers.authorization).toBe('Bearer napcat-api-token');
    expect(call?.body).toEqual({
      user_id: 2345678901,
      message: [
        { type: 'reply', data: { id: '1873945150' } },
        { type: 'text', data: { text: reply.content } },
      ],
    });
  });

  it('treats HTTP 200 with a non-zero retcode as a failure (dead letter)', async () => {
    answer = () => ({
      status: 200,
      body: { status: 'failed', retcode: 1404, data: null, message: 'no such group' },
    });
    const event = { ...fixture('onebot-v11/group-message-at-bot.json'), message_id: 99100, group_id: 778899 };
    expect((await post(globexKey, event)).status).toBe(200);
    const reply = await replyOf('qq-g-778899');
    const dead = await waitFor(async () => {
      const d = await delivery(reply.message_id);
      return d?.status === 'dead_letter' ? d : undefined;
    });
    expect(dead.last_error).toBe('retcode 1404: no such group');
    expect(calls.filter((c) => c.path === '/send_group_msg' && c.body.group_id === 778899)).toHaveLength(1);
  });
});
