/**
 * The OneBot v11 reverse WebSocket end to end: a client playing NapCat connects to one of two API
 * processes, sends a group message that @s the bot, and the reply, made by a real worker with the
 * offline provider, comes back as a `send_group_msg` action on that socket, delivered by a
 * durable delivery job (retried while the socket is away, once after a reconnect).
 */
import type { Job } from 'bullmq';

import type { WorkerPool } from '../../src/workers/workerPool';
import { BOT_QQ, createKey, replyIn, seedChatTenants } from '../support/chatSockets';
import { FakeNapCat, groupMessageAt } from '../support/fakeNapCat';
import { type SecondProcess, startSecondProcess } from '../support/secondProcess';
import { startTestApp, type TestApp } from '../support/testApp';
import { startTestPool } from '../support/testPool';
import { waitFor } from '../support/waitFor';

let app: TestApp;
let other: SecondProcess;
let pool: WorkerPool;
let acmeKey: string;
let globexKey: string;
let operatorKey: string;
const clients: FakeNapCat[] = [];

async function connect(url: string, o: Parameters<typeof FakeNapCat.connect>[1]): Promise<FakeNapCat> {
  const client = await FakeNapCat.connect(url, o);
  clients.push(client);
  return client;
}

interface DeliveryState {
  status: string;
  attempts: number;
  platform_message_id: string | null;
  webhook_url: string;
  last_error: string | null;
}

function deliveryOf(tenantId: string, messageId: string): Promise<DeliveryState | undefined> {
  return app.t
    .admin<DeliveryState>(
      `SELECT status, attempts, platform_message_id, webhook_url, last_error FROM deliveries
       WHERE tenant_id = $1 AND message_id = $2`,
      [tenantId, messageId],
    )
    .then((r) => r.rows[0]);
}

function deliveryJob(tenantId: string, messageId: string): Promise<Job | undefined> {
  return app.deps.queues.queue(tenantId, 'delivery').getJob(`delivery.${messageId}`);
}

beforeAll(async () => {
  app = await startTestApp();
  ({ acmeKey, globexKey } = await seedChatTenants(app, 'napcat'));
  operatorKey = await createKey(app, 'acme', { name: 'ops', role: 'operator' });
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

describe('OneBot v11 reverse WebSocket', () => {
  it('refuses a missing or wrong token, and a key that is not bound to an agent (401)', async () => {
    await expect(FakeNapCat.connect(app.url, { selfId: BOT_QQ })).rejects.toMatchObject({ status: 401 });
    await expect(FakeNapCat.connect(app.url, { selfId: BOT_QQ, token: `${acmeKey}x` })).rejects.toMatchObject(
      {
        status: 401,
      },
    );
    await expect(FakeNapCat.connect(app.url, { selfId: BOT_QQ, token: 'not-a-key' })).rejects.toMatchObject({
      status: 401,
    });
    await expect(FakeNapCat.connect(app.url, { selfId: BOT_QQ, token: operatorKey })).rejects.toMatchObject({
      status: 401,
    });
  });

  it('closes a socket whose X-Self-ID is no bot account of the key’s agent, with the reason', async () => {
    const client = await connect(app.url, { selfId: '10001', token: acmeKey, lifecycle: false });
    expect(await client.closed).toEqual({
      code: 1008,
      reason: 'X-Self-ID 10001 is not a qq account of agent bot1',
    });
  });

  it('answers a group message that @s the bot with a send_group_msg action through the process holding the socket', async () => {
    // The socket is held by the second API process; the worker runs beside the first.
    const napcat = await connect(other.url!, { selfId: BOT_QQ, token: acmeKey });
    napcat.send(groupMessageAt(BOT_QQ, { messageId: 7001, groupId: 555001 }));
    const [action] = await napcat.waitForActions(1);
    const reply = await replyIn(app, 'acme', 'qq-g-555001');
    expect(action).toEqual({
      action: 'send_group_msg',
      params: {
        group_id: 555001,
        message: [
          { type: 'reply', data: { id: '7001' } },
          { type: 'text', data: { text: reply.content } },
        ],
      },
      echo: expect.any(String) as string,
    });
    // The platform's message id is kept with the reply's delivery.
    const delivered = await waitFor(async () => {
      const d = await deliveryOf('acme', reply.message_id);
      return d?.status === 'delivered' ? d : undefined;
    });
    expect(delivered).toMatchObject({ platform_message_id: '900000', webhook_url: `onebot-ws://${BOT_QQ}` });
  });

  it('accepts the token as ?access_token= and the CQ-string message format', async () => {
    const napcat = await connect(app.url, { selfId: BOT_QQ, token: acmeKey, query: true });
    const event = groupMessageAt(BOT_QQ, { messageId: 7101, groupId: 555101 });
    napcat.send({ ...event, message: `[CQ:at,qq=${BOT_QQ}] 在吗`, message_format: 'string' });
    const [action] = await napcat.waitForActions(1);
    expect(action).toMatchObject({ action: 'send_group_msg', params: { group_id: 555101 } });
  });

  it('retries while the socket is away and delivers once after NapCat reconnects', async () => {
    const first = await connect(app.url, { selfId: BOT_QQ, token: acmeKey });
    first.send(groupMessageAt(BOT_QQ, { messageId: 7201, groupId: 555201 }));
    await first.close();
    const reply = await replyIn(app, 'acme', 'qq-g-555201');
    // The first attempt found no socket: the job waits for its backoff, the reply is not re-made.
    await waitFor(
      async () => ((await deliveryJob('acme', reply.message_id))?.attemptsMade ?? 0) >= 1 || undefined,
    );
    expect(first.actions).toEqual([]);

    const second = await connect(other.url!, { selfId: BOT_QQ, token: acmeKey });
    const [action] = await second.waitForActions(1);
    expect(action).toMatchObject({ action: 'send_group_msg', params: { group_id: 555201 } });
    const job = await waitFor(async () => {
      const j = await deliveryJob('acme', reply.message_id);
      return (await j?.isCompleted()) ? j : undefined;
    });
    expect(job?.attemptsMade).toBeGreaterThanOrEqual(2);
    expect((await deliveryOf('acme', reply.message_id))?.status).toBe('delivered');
    expect(second.actions).toHaveLength(1);
    const { rows } = await app.t.admin<{ n: string }>(
      `SELECT count(*) AS n FROM messages WHERE tenant_id = 'acme' AND chat_stream_id = 'qq-g-555201' AND direction = 'out'`,
    );
    expect(Number(rows[0]?.n)).toBe(1);
  });

  it('gives another tenant’s socket for the same QQ number none of this tenant’s replies', async () => {
    const globex = await connect(app.url, { selfId: BOT_QQ, token: globexKey });
    const acme = await connect(other.url!, { selfId: BOT_QQ, token: acmeKey });
    acme.send(groupMessageAt(BOT_QQ, { messageId: 7301, groupId: 555301 }));
    await acme.waitForActions(1);
    const reply = await replyIn(app, 'acme', 'qq-g-555301');
    await waitFor(
      async () => (await deliveryOf('acme', reply.message_id))?.status === 'delivered' || undefined,
    );
    expect(globex.actions).toEqual([]);

    globex.send(groupMessageAt(BOT_QQ, { messageId: 7302, groupId: 555302 }));
    const [mine] = await globex.waitForActions(1);
    expect(mine).toMatchObject({ params: { group_id: 555302 } });
    expect(acme.actions).toHaveLength(1);
  });

  it('replaces an older connection of the same bot account, in the same or another process', async () => {
    const older = await connect(app.url, { selfId: BOT_QQ, token: acmeKey });
    const newer = await connect(app.url, { selfId: BOT_QQ, token: acmeKey });
    expect(await older.closed).toEqual({ code: 4000, reason: 'replaced by a newer connection' });
    const newest = await connect(other.url!, { selfId: BOT_QQ, token: acmeKey });
    expect(await newer.closed).toEqual({ code: 4000, reason: 'replaced by a newer connection' });
    newest.send(groupMessageAt(BOT_QQ, { messageId: 7401, groupId: 555401 }));
    expect(await newest.waitForActions(1)).toHaveLength(1);
  });

  it('dead-letters a reply NapCat refuses (retcode ≠ 0) without making it again', async () => {
    const napcat = await connect(app.url, { selfId: BOT_QQ, token: acmeKey });
    napcat.answer = () => ({
      status: 'failed',
      retcode: 1400,
      data: null,
      message: 'bad group',
      wording: '群不存在',
    });
    napcat.send(groupMessageAt(BOT_QQ, { messageId: 7501, groupId: 555501 }));
    await napcat.waitForActions(1);
    const reply = await replyIn(app, 'acme', 'qq-g-555501');
    const dead = await waitFor(async () => {
      const d = await deliveryOf('acme', reply.message_id);
      return d?.status === 'dead_letter' ? d : undefined;
    });
    expect(dead.last_error).toBe('retcode 1400: 群不存在');
    expect(napcat.actions).toHaveLength(1);
  });

  it('closes on a frame that is not JSON, and on one over the size limit, and keeps serving', async () => {
    const bad = await connect(app.url, { selfId: BOT_QQ, token: acmeKey });
    bad.send('this is not json');
    expect(await bad.closed).toMatchObject({ code: 1007 });
    const big = await connect(app.url, { selfId: BOT_QQ, token: acmeKey });
    big.send({ post_type: 'notice', padding: 'x'.repeat(app.deps.config.maxBodyBytes + 10) });
    expect(await big.closed).toMatchObject({ code: 1009 });
    const fine = await connect(app.url, { selfId: BOT_QQ, token: acmeKey });
    fine.send(groupMessageAt(BOT_QQ, { messageId: 7601, groupId: 555601 }));
    expect(await fine.waitForActions(1)).toHaveLength(1);
  });
});
