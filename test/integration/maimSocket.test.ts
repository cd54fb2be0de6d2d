/**
 * maim_message WebSockets end to end: a client playing a MaiBot adapter (plain mode and API-Server
 * mode) connects to one of two API processes, sends the fixture's group message that mentions the
 * bot, and the reply, made by a real worker with the offline provider, comes back on that socket
 * as a `MessageBase`, delivered by a durable delivery job.
 */
import { once } from 'node:events';

import type { WorkerPool } from '../../src/workers/workerPool';
import { BOT_QQ, replyIn, seedChatTenants } from '../support/chatSockets';
import { FakeMaimAdapter, maimGroupMessage, toApiReceive } from '../support/fakeMaimAdapter';
import { freePort } from '../support/freePort';
import { type SecondProcess, startSecondProcess } from '../support/secondProcess';
import { startTestApp, type TestApp } from '../support/testApp';
import { startTestPool } from '../support/testPool';
import { waitFor } from '../support/waitFor';

const LISTENER_HOST = 'maim-acme.example.test';
let app: TestApp;
let other: SecondProcess;
let pool: WorkerPool;
let acmeKey: string;
let globexKey: string;
let listenerPort: number;
const clients: FakeMaimAdapter[] = [];

async function connect(
  url: string,
  o: Parameters<typeof FakeMaimAdapter.connect>[1],
): Promise<FakeMaimAdapter> {
  const client = await FakeMaimAdapter.connect(url, o);
  clients.push(client);
  return client;
}

async function clientIdsIn(tenantId: string, chatStreamId: string): Promise<string[]> {
  const { rows } = await app.t.admin<{ client_message_id: string }>(
    `SELECT client_message_id FROM messages WHERE tenant_id = $1 AND chat_stream_id = $2 AND direction = 'in'
     ORDER BY client_message_id`,
    [tenantId, chatStreamId],
  );
  return rows.map((r) => r.client_message_id);
}

function countIn(tenantId: string, chatStreamId: string, direction: 'in' | 'out'): Promise<number> {
  return app.t
    .admin<{ n: string }>(
      `SELECT count(*) AS n FROM messages WHERE tenant_id = $1 AND chat_stream_id = $2 AND direction = $3`,
      [tenantId, chatStreamId, direction],
    )
    .then((r) => Number(r.rows[0]?.n));
}

interface DeliveryState {
  status: string;
  attempts: number;
  platform_message_id: string | null;
  webhook_url: string;
}

function deliveredOf(tenantId: string, messageId: string, withPlatformId = false): Promise<DeliveryState> {
  return waitFor(async () => {
    const { rows } = await app.t.admin<DeliveryState>(
      `SELECT status, attempts, platform_message_id, webhook_url FROM deliveries
       WHERE tenant_id = $1 AND message_id = $2`,
      [tenantId, messageId],
    );
    const d = rows[0];
    if (d?.status !== 'delivered') return undefined;
    return withPlatformId && d.platform_message_id === null ? undefined : d;
  });
}

beforeAll(async () => {
  listenerPort = await freePort();
  app = await startTestApp({
    env: { MAIM_LISTENERS: `${LISTENER_HOST}=acme/bot1,:${listenerPort}=acme/bot1` },
  });
  ({ acmeKey, globexKey } = await seedChatTenants(app, 'maibot-adapter'));
  await app.sockets.listenOnPorts('127.0.0.1');
  other = await startSecondProcess(app, { http: true });
  pool = await startTestPool(app);
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

afterAll(async () => {
  await pool.close();
  await other.close();
  await app.close();
});

describe('maim_message plain WebSocket (0.6.x)', () => {
  it('refuses a wrong key, and no key outside an operator listener (401)', async () => {
    await expect(FakeMaimAdapter.connect(app.url, { mode: 'plain' })).rejects.toMatchObject({ status: 401 });
    await expect(
      FakeMaimAdapter.connect(app.url, { mode: 'plain', token: `${acmeKey}x` }),
    ).rejects.toMatchObject({ status: 401 });
    await expect(
      FakeMaimAdapter.connect(app.url, { mode: 'plain', token: 'maibot', path: '/api/v1/adapters/maim/ws' }),
    ).rejects.toMatchObject({ status: 401 });
  });

  it('answers the fixture’s group message with a MessageBase reply on the socket held by the other process, and keeps the echoed QQ id', async () => {
    const adapter = await connect(other.url!, { mode: 'plain', token: acmeKey });
    adapter.send(maimGroupMessage({ messageId: '8001', groupId: '666001' }));
    const [reply] = await adapter.waitForReplies(1);
    const stored = await replyIn(app, 'acme', 'qq-g-666001');
    const group = { platform: 'qq', group_id: '666001', group_name: '技术交流群' };
    const bot = { platform: 'qq', user_id: BOT_QQ };
    expect(reply).toMatchObject({
      message_info: {
        platform: 'qq',
        message_id: stored.message_id,
        group_info: group,
        user_info: bot,
        receiver_info: { group_info: group, user_info: bot },
      },
      message_segment: {
        type: 'seglist',
        data: [
          { type: 'reply', data: '8001' },
          { type: 'text', data: stored.content },
        ],
      },
    });
    expect((await deliveredOf('acme', stored.message_id)).webhook_url).toBe('maim-ws://qq');

    // The adapter says which QQ message our reply became (`message_id_echo`): kept with the delivery.
    adapter.sendCustom('message_id_echo', { type: 'echo', echo: stored.message_id, actual_id: 1357924680 });
    expect((await deliveredOf('acme', stored.message_id, true)).platform_message_id).toBe('1357924680');
  });

  it('accepts integer ids and the maim path, and answers pings', async () => {
    const adapter = await connect(app.url, {
      mode: 'plain',
      token: acmeKey,
      path: '/api/v1/adapters/maim/ws',
    });
    const pong = once(adapter.ws, 'pong');
    adapter.ws.ping();
    await pong;
    const message = maimGroupMessage({ messageId: 8101, groupId: 666101 });
    const info = message.message_info as Record<string, unknown>;
    adapter.send({
      ...message,
      message_info: { ...info, user_info: { platform: 'qq', user_id: 2345678901 } },
    });
    const [reply] = await adapter.waitForReplies(1);
    expect(reply).toMatchObject({ message_info: { group_info: { group_id: '666101' } } });
  });

  it('serves an adapter without a token through the operator’s host and port listeners', async () => {
    const byHost = await connect(app.url, { mode: 'plain', host: LISTENER_HOST });
    byHost.send(maimGroupMessage({ messageId: '8201', groupId: '666201' }));
    expect(await byHost.waitForReplies(1)).toHaveLength(1);
    await replyIn(app, 'acme', 'qq-g-666201');

    const byPort = await connect(`http://127.0.0.1:${listenerPort}`, { mode: 'plain' });
    byPort.send(maimGroupMessage({ messageId: '8202', groupId: '666202' }));
    const [reply] = await byPort.waitForReplies(1);
    expect(reply).toMatchObject({ message_info: { group_info: { group_id: '666202' } } });
    // The listener's socket is the agent's: the newer one replaced the one by host name.
    expect(await byHost.closed).toEqual({ code: 4000, reason: 'replaced by a newer connection' });
  });

  it('answers a malformed MessageBase with an error frame, closes on a frame that is not JSON or too big', async () => {
    const adapter = await connect(app.url, { mode: 'plain', token: acmeKey });
    adapter.send({ message_info: { platform: 'qq' }, message_segment: { type: 'text', data: 'hi' } });
    const error = await adapter.waitFor((f) => f.message_type_name === 'error');
    expect(error).toMatchObject({ is_custom_message: true, content: { code: 'VALIDATION_ERROR' } });
    adapter.send('not json');
    expect(await adapter.closed).toMatchObject({ code: 1007 });
    const big = await connect(app.url, { mode: 'plain', token: acmeKey });
    big.send({ padding: 'x'.repeat(app.deps.config.maxBodyBytes + 10) });
    expect(await big.closed).toMatchObject({ code: 1009 });
  });
});

describe('maim_message API-Server mode (0.6.x)', () => {
  it('refuses a wrong or missing x-apikey (401) and accepts ?api_key=', async () => {
    await expect(FakeMaimAdapter.connect(app.url, { mode: 'api', token: 'maibot' })).rejects.toMatchObject({
      status: 401,
    });
    await expect(FakeMaimAdapter.connect(app.url, { mode: 'api' })).rejects.toMatchObject({ status: 401 });
    const adapter = await connect(app.url, { mode: 'api', token: acmeKey, query: true });
    const msgId = adapter.sendStd(
      toApiReceive(maimGroupMessage({ messageId: '9001', groupId: '777001' }), 'k'),
    );
    await adapter.waitFor((f) => f.type === 'sys_ack');
    expect(adapter.acksOf(msgId)).toHaveLength(1);
    // Its reply comes here too (and not to the next test's socket).
    expect(await adapter.waitForReplies(1)).toHaveLength(1);
  });

  it('acknowledges every frame, takes a re-sent frame once, and delivers the reply when the adapter acknowledges it', async () => {
    const adapter = await connect(other.url!, { mode: 'api', token: acmeKey });
    const payload = toApiReceive(maimGroupMessage({ messageId: '9101', groupId: '777101' }), 'k');
    const msgId = adapter.sendStd(payload);
    const [reply] = await adapter.waitForReplies(1);
    const stored = await replyIn(app, 'acme', 'qq-g-777101');
    const group = { platform: 'qq', group_id: '777101', group_name: '技术交流群' };
    expect(reply).toMatchObject({
      message_info: {
        platform: 'qq',
        message_id: stored.message_id,
        receiver_info: { group_info: group, user_info: { platform: 'qq', user_id: BOT_QQ } },
      },
      message_segment: {
        type: 'seglist',
        data: [
          { type: 'reply', data: '9101' },
          { type: 'text', data: stored.content },
        ],
      },
      message_dim: { platform: 'qq' },
    });
    // Only the key's id names the connection in our frames, never the key.
    expect(JSON.stringify(adapter.frames)).not.toContain(acmeKey);
    expect(await deliveredOf('acme', stored.message_id)).toMatchObject({ webhook_url: 'maim-ws://qq' });

    // A client re-sends a frame it has no ack for after a reconnect: acknowledged again, taken once
    // (told by its msg_id alone: even a frame whose message differs is not taken again).
    const again = await connect(app.url, { mode: 'api', token: acmeKey, uuid: adapter.uuid });
    again.sendStd(toApiReceive(maimGroupMessage({ messageId: '9102', groupId: '777101' }), 'k'), msgId);
    await again.waitFor((f) => f.type === 'sys_ack');
    expect(again.acksOf(msgId)).toHaveLength(1);
    expect(adapter.acksOf(msgId)).toHaveLength(1);
    // A frame after it is taken; by then the re-sent one would have been stored too.
    again.sendStd(toApiReceive(maimGroupMessage({ messageId: '9103', groupId: '777101' }), 'k'));
    await waitFor(async () => (await clientIdsIn('acme', 'qq-g-777101')).includes('9103') || undefined);
    expect(await clientIdsIn('acme', 'qq-g-777101')).toEqual(['9101', '9103']);

    const echoId = again.sendCustom('message_id_echo', {
      type: 'echo',
      echo: stored.message_id,
      actual_id: '24680',
    });
    await again.waitFor(
      (f) => f.type === 'sys_ack' && (f.meta as { acked_msg_id?: string }).acked_msg_id === echoId,
    );
    expect((await deliveredOf('acme', stored.message_id, true)).platform_message_id).toBe('24680');
    // The reply to the later frame comes here (and not to the next test's socket).
    expect(await again.waitForReplies(1)).toHaveLength(1);
  });

  it('counts a reply delivered only once the adapter acknowledges its frame', async () => {
    const adapter = await connect(app.url, { mode: 'api', token: acmeKey });
    adapter.autoAck = false;
    adapter.sendStd(toApiReceive(maimGroupMessage({ messageId: '9151', groupId: '777151' }), 'k'));
    await adapter.waitForReplies(1);
    const frame = adapter.frames.find((f) => f.type === 'sys_std')!;
    const stored = await replyIn(app, 'acme', 'qq-g-777151');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const { rows } = await app.t.admin(
      `SELECT 1 FROM deliveries WHERE tenant_id = 'acme' AND message_id = $1`,
      [stored.message_id],
    );
    expect(rows).toEqual([]);
    adapter.send({
      ver: 1,
      msg_id: 'ack-1',
      type: 'sys_ack',
      meta: { uuid: adapter.uuid, acked_msg_id: frame.msg_id, timestamp: Date.now() / 1000 },
      payload: { status: 'received' },
    });
    expect(await deliveredOf('acme', stored.message_id)).toMatchObject({ attempts: 1 });
  });

  it('retries while the adapter is away and delivers once after it reconnects to another process', async () => {
    const first = await connect(app.url, { mode: 'api', token: acmeKey });
    const msgId = first.sendStd(
      toApiReceive(maimGroupMessage({ messageId: '9201', groupId: '777201' }), 'k'),
    );
    await first.waitFor((f) => f.type === 'sys_ack');
    expect(first.acksOf(msgId)).toHaveLength(1);
    await first.close();
    const stored = await replyIn(app, 'acme', 'qq-g-777201');
    await waitFor(async () => {
      const job = await app.deps.queues.queue('acme', 'delivery').getJob(`delivery.${stored.message_id}`);
      return (job?.attemptsMade ?? 0) >= 1 || undefined;
    });
    expect(first.replies()).toEqual([]);

    const second = await connect(other.url!, { mode: 'api', token: acmeKey, uuid: first.uuid });
    const [reply] = await second.waitForReplies(1);
    expect(reply).toMatchObject({ message_info: { message_id: stored.message_id } });
    const delivered = await deliveredOf('acme', stored.message_id);
    expect(delivered.attempts).toBeGreaterThanOrEqual(2);
    expect(second.replies()).toHaveLength(1);
    expect(await countIn('acme', 'qq-g-777201', 'out')).toBe(1);
  });

  it('answers a frame that is no envelope with an error frame and keeps the socket', async () => {
    const adapter = await connect(app.url, { mode: 'api', token: acmeKey });
    adapter.send({ hello: 'world' });
    const error = await adapter.waitFor((f) => f.type === 'custom_error');
    expect(error).toMatchObject({ payload: { code: 'VALIDATION_ERROR' } });
    const bad = adapter.sendStd({ message_info: { platform: 'qq' } });
    await adapter.waitFor((f) => f.type === 'sys_ack');
    // A malformed message is refused for good: acknowledged (so not re-sent), with the reason.
    expect(adapter.acksOf(bad)).toHaveLength(1);
    expect(adapter.frames.filter((f) => f.type === 'custom_error')).toHaveLength(2);
  });
});

describe('tenants on maim_message sockets', () => {
  it('gives another tenant’s adapter none of this tenant’s replies', async () => {
    const globex = await connect(app.url, { mode: 'api', token: globexKey });
    const acme = await connect(other.url!, { mode: 'plain', token: acmeKey });
    acme.send(maimGroupMessage({ messageId: '9301', groupId: '777301' }));
    await acme.waitForReplies(1);
    const stored = await replyIn(app, 'acme', 'qq-g-777301');
    await deliveredOf('acme', stored.message_id);
    expect(globex.replies()).toEqual([]);

    globex.sendStd(toApiReceive(maimGroupMessage({ messageId: '9302', groupId: '777302' }), 'k'));
    const [mine] = await globex.waitForReplies(1);
    expect(mine).toMatchObject({ message_info: { receiver_info: { group_info: { group_id: '777302' } } } });
    expect(acme.replies()).toHaveLength(1);
    // And a globex adapter echoing an acme reply's id changes nothing of acme's.
    const echoId = globex.sendCustom('message_id_echo', {
      type: 'echo',
      echo: stored.message_id,
      actual_id: '666',
    });
    await globex.waitFor(() => globex.acksOf(echoId).length > 0);
    expect((await deliveredOf('acme', stored.message_id)).platform_message_id).toBeNull();
  });
});
