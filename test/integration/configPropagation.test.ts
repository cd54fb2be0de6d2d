import { type ChildProcess, fork } from 'node:child_process';
import path from 'node:path';

import { createTenant } from '../../src/db/repositories/tenants';
import { testEnv } from '../support/env';
import { startTestApp, type TestApp } from '../support/testApp';

/**
 * A configuration change made through the API reaches a heartflow worker running in another
 * process: the worker's cache TTL is 10 minutes here, so only the pub/sub notice can explain it.
 */

let app: TestApp;
let worker: ChildProcess | undefined;
let token: string;
const TENANT = 'prop';

beforeAll(async () => {
  app = await startTestApp();
  await app.deps.db.withPlatform((db) => createTenant(db, { tenantId: TENANT, name: TENANT, settings: {} }));
  token = await app.tokenFor({ role: 'tenant_admin', tenantId: TENANT });
  worker = fork(path.join(__dirname, '../support/workerChild.ts'), [], {
    execArgv: ['--import', 'tsx'],
    env: {
      ...process.env,
      MH_DB_URL: app.t.appUrl,
      MH_REDIS_URL: testEnv('redisUrl'),
      MH_PREFIX: app.deps.keys.prefix,
      MH_LOCK_MS: '5000',
      MH_STALLED_MS: '1000',
      MH_STREAM_LOCK_MS: '5000',
      MH_CONFIG_TTL_MS: '600000',
    },
  });
  await new Promise<void>((resolve) => worker!.once('message', () => resolve()));
}, 60_000);

afterAll(async () => {
  if (worker && worker.exitCode === null) {
    worker.kill('SIGKILL');
    await new Promise((r) => worker!.once('exit', r));
  }
  await app.close();
});

async function putTalkValue(scope: 'tenant' | 'chat', talkValue: number, chatStreamId?: string) {
  const res = await app.request('PUT', '/config', {
    token,
    body: {
      category: 'heartflow',
      scope,
      ...(chatStreamId ? { chat_stream_id: chatStreamId } : {}),
      config: { talk_value: talkValue },
    },
  });
  expect(res.status).toBe(200);
}

let n = 0;
/** Sends an unmentioned message and returns the probability the worker's planner rolled against. */
async function plannedProbability(chatStreamId: string): Promise<number> {
  const res = await app.request('POST', '/chat/send?wait=20000', {
    token,
    body: { message: `大家觉得这部新电影怎么样？第${++n}次问`, chat_stream_id: chatStreamId, platform: 'qq' },
  });
  expect(['replied', 'no_reply']).toContain(res.body.data.status);
  const { rows } = await app.t.admin<{ p: number }>(
    `SELECT (action_data->>'probability')::float8 AS p FROM action_records WHERE tenant_id = $1 AND message_id = $2`,
    [TENANT, res.body.data.message_id],
  );
  return rows[0]!.p;
}

describe('configuration propagation to a running worker', () => {
  it('the next message of the changed chat follows the new talk_value; other chats keep theirs', async () => {
    for (const id of ['p1', 'p2']) {
      const res = await app.request('POST', '/chat/streams', {
        token,
        body: { chat_stream_id: id, platform: 'qq', chat_type: 'group' },
      });
      expect(res.status).toBe(201);
    }
    await putTalkValue('tenant', 0);
    // Both chats at talk_value 0: the worker has read (and cached) the tenant's configuration.
    expect(await plannedProbability('p1')).toBe(0);
    expect(await plannedProbability('p2')).toBe(0);

    await putTalkValue('chat', 1, 'p1');
    await new Promise((r) => setTimeout(r, 1000));
    expect(await plannedProbability('p1')).toBeGreaterThan(0);
    expect(await plannedProbability('p2')).toBe(0);

    // Back to 0 and the very next message, sent at once, follows too (well under a second).
    await putTalkValue('chat', 0, 'p1');
    expect(await plannedProbability('p1')).toBe(0);
  }, 60_000);
});
