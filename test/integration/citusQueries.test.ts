/**
 * Which of the application's SQL statements Citus could route to one shard. A process composed as
 * `npm start` runs it is driven over HTTP through a representative workload (tenants, users, API
 * keys, agents and their config, sends answered by the workers, an OneBot event, listings, memory
 * extraction, usage statistics, webhook deliveries, the admin queue endpoints, tenant deletion);
 * every statement the application role sends is captured (test/support/sqlCapture.ts), parsed and
 * classified (test/support/sqlRouting.ts). A statement that touches a distributed table without
 * `tenant_id = <value>` (relying on RLS alone, which Citus does not route on) is multi-shard and
 * must be listed, with its reason, in test/support/citusAllowlist.ts and docs/citus.md.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import { Queue } from 'bullmq';

import { tenantQueueName } from '../../src/queues/names';
import { MULTI_SHARD_ALLOWED } from '../support/citusAllowlist';
import { CITUS_DOC, readCatalogLayout } from '../support/citusLayout';
import { type RuntimeHarness, startRuntimeHarness } from '../support/runtimeHarness';
import { type CapturedStatement, captureSql, type SqlCapture } from '../support/sqlCapture';
import { routeSql, type RoutingResult } from '../support/sqlRouting';
import { waitFor } from '../support/waitFor';

let h: RuntimeHarness;
let capture: SqlCapture;
let webhook: Server;
let webhookHits = 0;

beforeAll(async () => {
  capture = captureSql();
  webhook = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      webhookHits++;
      res.end('{}');
    });
  });
  await new Promise<void>((r) => webhook.listen(0, '127.0.0.1', r));
  h = await startRuntimeHarness();
}, 60_000);

afterAll(async () => {
  await h?.close();
  capture?.stop();
  await new Promise((r) => webhook?.close(r));
});

const onebotEvent = () =>
  JSON.parse(
    readFileSync(path.join(__dirname, '../fixtures/onebot-v11/group-message-at-bot.json'), 'utf8'),
  ) as Record<string, unknown>;

/** Everything a tenant, its operators, its adapters and the platform admin do, over HTTP. */
async function workload(): Promise<void> {
  const admin = await h.adminBearer();
  const ok = async (
    method: string,
    url: string,
    o: Parameters<RuntimeHarness['call']>[2],
    expected: number,
  ) => {
    const res = await h.call(method, url, o);
    expect([method, url, res.status]).toEqual([method, url, expected]);
    return res.data;
  };
  const key = await h.tenantWithKey('acme');
  await h.tenantWithKey('globex');
  const owner = (await ok(
    'POST',
    '/auth/login',
    { body: { tenant_id: 'acme', username: 'owner', password: 'acme-admin-password' } },
    200,
  )) as { access_token: string; refresh_token: string };
  const bearer = owner.access_token;

  // Platform admin views.
  await ok('GET', '/tenants?limit=10&search=ac', { bearer: admin }, 200);
  await ok('GET', '/tenants/acme', { bearer: admin }, 200);
  await ok('PUT', '/tenants/acme', { bearer: admin, body: { description: 'citus workload' } }, 200);
  await ok('GET', '/system/info', { bearer: admin }, 200);

  // Tenant users, sessions and keys.
  await ok(
    'POST',
    '/tenants/acme/users',
    { bearer, body: { username: 'op', password: 'operator-password-1', role: 'operator' } },
    201,
  );
  await ok('GET', '/tenants/acme/users', { bearer }, 200);
  await ok('GET', '/auth/me', { bearer }, 200);
  const refreshed = (await ok(
    'POST',
    '/auth/refresh',
    { body: { refresh_token: owner.refresh_token } },
    200,
  )) as { refresh_token: string };
  const spare = (await ok(
    'POST',
    '/auth/api-keys',
    { bearer, body: { name: 'spare', role: 'reader' } },
    201,
  )) as { key_id: string };
  await ok('GET', '/auth/api-keys', { bearer }, 200);
  await ok('DELETE', `/auth/api-keys/${spare.key_id}`, { bearer }, 200);

  // Agents and their config: bot account (agent_accounts), webhook delivery.
  await ok('POST', '/agents', { bearer, body: { agent_id: 'helper', name: 'Helper' } }, 201);
  await ok('GET', '/agents', { bearer }, 200);
  await ok('PUT', '/agents/helper', { bearer, body: { description: 'second agent' } }, 200);
  await ok('GET', '/agents/helper', { bearer }, 200);
  await ok('DELETE', '/agents/helper', { bearer }, 200);
  await ok(
    'PUT',
    '/agents/default/config',
    {
      bearer,
      body: {
        accounts: [{ platform: 'qq', account_id: '1145141919', nickname: '麦麦' }],
        delivery: {
          webhook_url: `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hook`,
          webhook_secret: 'citus-secret',
        },
      },
    },
    200,
  );
  await ok('GET', '/agents/default/config', { bearer }, 200);

  // Messages: sends answered by the workers (heartflow, memory, stats, delivery follow), a batch, OneBot.
  for (const [i, message] of [
    '@麦麦 你好',
    '@麦麦 我喜欢猫，记住我的生日是五月一日',
    '@麦麦 我讨厌下雨天',
  ].entries()) {
    const sent = await ok(
      'POST',
      '/chat/send?wait=20000',
      { apiKey: key, body: { message, chat_stream_id: 'c1', platform: 'qq', client_message_id: `cm-${i}` } },
      200,
    );
    expect(sent.status).toBe('replied');
  }
  await ok(
    'POST',
    '/chat/send/batch',
    {
      apiKey: key,
      body: {
        messages: [
          { message: '批量一', chat_stream_id: 'c2', platform: 'qq' },
          { message: '批量二', chat_stream_id: 'c2', platform: 'qq' },
        ],
      },
    },
    200,
  );
  await ok('POST', '/adapters/onebot/v11', { apiKey: key, body: onebotEvent() }, 200);

  // Reads of what was written.
  const streams = await ok('GET', '/chat/streams?limit=10', { bearer }, 200);
  expect(streams).toBeDefined();
  await ok('GET', '/chat/streams/c1', { bearer }, 200);
  const page = (await ok('GET', '/chat/c1/messages?limit=2', { bearer }, 200)) as {
    messages: { message_id: string }[];
    next_cursor?: string;
  };
  const messageId = page.messages[0]!.message_id;
  await ok('GET', `/chat/messages/${messageId}`, { bearer }, 200);
  await ok('GET', `/chat/messages/${messageId}/status`, { bearer }, 200);
  if (page.next_cursor)
    await ok(
      'GET',
      `/chat/c1/messages?limit=2&before=${encodeURIComponent(page.next_cursor)}`,
      { bearer },
      200,
    );

  // The workers' follow-ups: memories, usage buckets, webhook deliveries.
  // The usage buckets wait for their minute to end: run them now.
  const stats = new Queue(tenantQueueName('acme', 'stats'), { connection: h.redis.redis, prefix: h.prefix });
  const followedUp = async () =>
    (await Promise.all((await stats.getDelayed()).map((job) => job.promote()))) &&
    webhookHits >= 3 &&
    (await h.t.admin('SELECT 1 FROM memory_chest LIMIT 1')).rowCount! > 0 &&
    (await h.t.admin('SELECT 1 FROM usage_stats LIMIT 1')).rowCount! > 0;
  try {
    await waitFor(async () => ((await followedUp()) ? true : undefined), 30_000);
  } finally {
    await stats.close();
  }
  await ok('GET', '/tenants/acme/statistics', { bearer }, 200);

  // Operators: queues.
  await ok('GET', '/admin/queues?limit=10', { bearer: admin }, 200);
  await ok('GET', '/admin/queues/acme', { bearer: admin }, 200);
  await ok('GET', '/admin/queues/acme/jobs?state=completed', { bearer: admin }, 200);
  await ok('POST', '/admin/queues/acme/pause', { bearer: admin }, 200);
  await ok('POST', '/admin/queues/acme/resume', { bearer: admin }, 200);
  await ok('POST', '/admin/queues/acme/retry-failed', { bearer: admin }, 200);
  const board = await fetch(`${h.runtime.url}/api/v1/admin/ui/api/queues`, {
    headers: { authorization: `Bearer ${admin}` },
  });
  expect(board.status).toBe(200);
  await ok(
    'PUT',
    '/admin/tenants/acme/scheduling',
    { bearer: admin, body: { weight: 2, max_concurrency: 5 } },
    200,
  );

  // Ends: a stream, a session, a tenant.
  await ok('DELETE', '/chat/streams/c2', { bearer }, 200);
  await ok('POST', '/auth/logout', { bearer, body: { refresh_token: refreshed.refresh_token } }, 200);
  await ok('DELETE', '/tenants/globex', { bearer: admin }, 200);
}

interface Finding {
  caller: string;
  text: string;
  result: RoutingResult;
}

describe('Citus routing of the statements the application sends', () => {
  const findings: Finding[] = [];

  beforeAll(async () => {
    await workload();
    const layout = await readCatalogLayout(h.t.admin);
    const schema = {
      distributed: new Set(layout.distributed),
      tableFunctions: new Set(layout.tableFunctions),
    };
    const seen = new Map<string, CapturedStatement>();
    for (const s of capture.statements) if (s.user === h.t.appRole) seen.set(`${s.caller}\n${s.text}`, s);
    for (const s of seen.values()) {
      for (const result of await routeSql(s.text, schema))
        findings.push({ caller: s.caller, text: s.text, result });
    }
  }, 120_000);

  it('captured a workload that reaches every kind of statement', () => {
    const kinds = new Set(findings.map((f) => f.result.routing));
    expect([...kinds].sort()).toEqual(
      expect.arrayContaining(['multi-shard', 'no-table', 'platform', 'single-tenant', 'utility']),
    );
    const tables = new Set(
      findings.filter((f) => f.result.routing === 'single-tenant').flatMap((f) => f.result.tables),
    );
    // The tables the workload writes and reads on the hot paths.
    expect([...tables]).toEqual(
      expect.arrayContaining([
        'agents',
        'agent_accounts',
        'api_keys',
        'chat_streams',
        'deliveries',
        'llm_usage',
        'memory_chest',
        'messages',
        'usage_stats',
        'users',
      ]),
    );
  });

  it('sends no multi-shard statement that is not in the allowlist', () => {
    const unlisted = findings
      .filter((f) => f.result.routing === 'multi-shard' && MULTI_SHARD_ALLOWED[f.caller] === undefined)
      .map(
        (f) => `${f.caller} [${f.result.unpinned.join(', ')}]: ${f.text.replace(/\s+/g, ' ').slice(0, 200)}`,
      );
    expect(unlisted).toEqual([]);
  });

  it('keeps no stale allowlist entry: every listed sender was seen sending a multi-shard statement', () => {
    const senders = new Set(findings.filter((f) => f.result.routing === 'multi-shard').map((f) => f.caller));
    expect(Object.keys(MULTI_SHARD_ALLOWED).filter((caller) => !senders.has(caller))).toEqual([]);
  });

  it('documents every allowlisted sender in docs/citus.md', () => {
    const doc = readFileSync(CITUS_DOC, 'utf8');
    const undocumented = Object.keys(MULTI_SHARD_ALLOWED).filter((caller) => !doc.includes(`\`${caller}\``));
    expect(undocumented).toEqual([]);
  });
});
