/**
 * 越权访问防护 on the chat sockets (OneBot v11 reverse WebSocket, maim_message): no credential,
 * a credential that is no agent key, a revoked key, or a self id the key's agent does not own is
 * refused; and a socket never receives another tenant's replies, even when both tenants' bots
 * have the same QQ number. Uses the chat-socket arrangement (`acme`, `globex`) and a real worker.
 */
import type { WorkerPool } from '../../src/workers/workerPool';
import { BOT_QQ, createKey, replyIn, seedChatTenants } from '../support/chatSockets';
import { FakeMaimAdapter, maimGroupMessage } from '../support/fakeMaimAdapter';
import { FakeNapCat, groupMessageAt } from '../support/fakeNapCat';
import { startTestApp, type TestApp } from '../support/testApp';
import { startTestPool } from '../support/testPool';

/** A QQ account only acme's bot has. */
const ACME_ONLY_QQ = '2000001';

import { WORLD_TIMEOUT_MS } from './support/twoTenants';

let app: TestApp;
let pool: WorkerPool;
let acmeKey: string;
let globexKey: string;
const clients: { close(): Promise<unknown> }[] = [];

beforeAll(async () => {
  app = await startTestApp();
  ({ acmeKey, globexKey } = await seedChatTenants(app, 'socket-security'));
  await app.t.admin(
    `INSERT INTO agent_accounts (tenant_id, platform, account_id, agent_id, nickname, aliases)
     VALUES ('acme', 'qq', $1, 'bot1', '麦麦', '{}')`,
    [ACME_ONLY_QQ],
  );
  pool = await startTestPool(app);
}, WORLD_TIMEOUT_MS);
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await pool.close();
  await app.close();
});

async function napcat(o: Parameters<typeof FakeNapCat.connect>[1]) {
  const c = await FakeNapCat.connect(app.url, o);
  clients.push(c);
  return c;
}
async function maim(o: Parameters<typeof FakeMaimAdapter.connect>[1]) {
  const c = await FakeMaimAdapter.connect(app.url, o);
  clients.push(c);
  return c;
}

describe('OneBot v11 reverse WebSocket', () => {
  it('refuses a socket without a token (401)', async () => {
    await expect(FakeNapCat.connect(app.url, { selfId: BOT_QQ })).rejects.toMatchObject({ status: 401 });
  });

  it('refuses a tenant admin’s JWT and a reader key: only agent keys drive a bot (401)', async () => {
    const jwt = await app.tokenFor({ role: 'tenant_admin', tenantId: 'acme' });
    await expect(FakeNapCat.connect(app.url, { selfId: BOT_QQ, token: jwt })).rejects.toMatchObject({
      status: 401,
    });
    const reader = await createKey(app, 'acme', { name: 'r', role: 'reader' });
    await expect(FakeNapCat.connect(app.url, { selfId: BOT_QQ, token: reader })).rejects.toMatchObject({
      status: 401,
    });
  });

  it('refuses a revoked agent key (401)', async () => {
    const admin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'acme' });
    const made = await app.request('POST', '/auth/api-keys', {
      token: admin,
      body: { name: 'soon revoked', role: 'agent', agent_id: 'bot1' },
    });
    await app.request('DELETE', `/auth/api-keys/${made.body.data.key_id as string}`, { token: admin });
    await expect(
      FakeNapCat.connect(app.url, { selfId: BOT_QQ, token: made.body.data.api_key as string }),
    ).rejects.toMatchObject({ status: 401 });
  });

  it('closes a socket of another tenant’s key that forges acme’s self id (1008)', async () => {
    const forged = await napcat({ selfId: ACME_ONLY_QQ, token: globexKey, lifecycle: false });
    expect((await forged.closed).code).toBe(1008);
  });

  it('gives globex’s socket for the same QQ number none of acme’s replies', async () => {
    const globex = await napcat({ selfId: BOT_QQ, token: globexKey });
    const acme = await napcat({ selfId: BOT_QQ, token: acmeKey });
    acme.send(groupMessageAt(BOT_QQ, { messageId: 8301, groupId: 655301 }));
    await acme.waitForActions(1);
    await replyIn(app, 'acme', 'qq-g-655301');
    expect(globex.actions).toEqual([]);
    // And nothing of acme's chat was stored for globex.
    const { rows } = await app.t.admin(
      `SELECT 1 FROM messages WHERE tenant_id = 'globex' AND chat_stream_id = 'qq-g-655301'`,
    );
    expect(rows).toEqual([]);
  });
});

describe('maim_message WebSocket', () => {
  it('refuses no key and a wrong key (401)', async () => {
    await expect(FakeMaimAdapter.connect(app.url, { mode: 'plain' })).rejects.toMatchObject({ status: 401 });
    await expect(
      FakeMaimAdapter.connect(app.url, { mode: 'api', token: `${acmeKey}x` }),
    ).rejects.toMatchObject({
      status: 401,
    });
  });

  it('gives globex’s adapter none of acme’s replies', async () => {
    const globex = await maim({ mode: 'api', token: globexKey });
    const acme = await maim({ mode: 'plain', token: acmeKey });
    acme.send(maimGroupMessage({ messageId: '9401', groupId: '877401' }));
    await acme.waitForReplies(1);
    await replyIn(app, 'acme', 'qq-g-877401');
    expect(globex.replies()).toEqual([]);
  });
});
