import { createIsolationContext } from '../../src/domain/isolationContext';
import { LlmClient } from '../../src/llm/llmClient';
import { LlmSettings } from '../../src/llm/types';
import { processStatsJob } from '../../src/workers/statsProcessor';
import type { WorkerPool } from '../../src/workers/workerPool';
import { OpenAiStub } from '../support/openaiStub';
import { type Envelope, startTestApp, type TestApp } from '../support/testApp';
import { startTestPool } from '../support/testPool';

/**
 * A known workload (replies through the stub OpenAI server with fixed token counts, silent
 * messages, memory and emoji calls) and the statistics it must give, figure by figure.
 */

const PRICES = { 'stub-a': { prompt: 0.5, completion: 1.5 }, '*': { prompt: 1, completion: 2 } };
const A = { prompt: 40, completion: 6 }; // stub-a, priced by its own entry
const B = { prompt: 100, completion: 20 }; // stub-b, priced by `*`
const costA = (A.prompt * 0.5 + A.completion * 1.5) / 1000;
const costB = (B.prompt * 1 + B.completion * 2) / 1000;
const round = (v: number) => Math.round(v * 1e6) / 1e6;

let app: TestApp;
let pool: WorkerPool | undefined;
const stub = new OpenAiStub();
let started: number;

function agentConfig(model: string) {
  return JSON.stringify({ llm: { provider: 'openai', base_url: stub.baseUrl, models: [model] } });
}

async function send(tenantId: string, agentId: string, stream: string, message: string): Promise<string> {
  const token = await app.tokenFor({ role: 'tenant_admin', tenantId });
  const res = await app.request('POST', '/chat/send?wait=15000', {
    token,
    body: {
      message,
      chat_stream_id: stream,
      platform: 'qq',
      agent_id: agentId,
      options: { enable_memory: false },
    },
  });
  return String(res.body.data.status);
}

/** A memory or emoji call of an agent as the workers make them (metered in a tenant unit of work). */
async function directCall(tenantId: string, agentId: string, requestType: 'memory' | 'emoji', model: string) {
  const llm = new LlmClient({ logger: app.t.logger, prices: PRICES });
  const settings = LlmSettings.parse({ provider: 'openai', base_url: stub.baseUrl, models: [model] });
  await app.deps.db.withTenant(createIsolationContext({ tenantId }), (db) =>
    llm.complete({
      tenantId,
      agentId,
      requestType,
      messages: [{ role: 'user', content: 'x' }],
      settings,
      db,
    }),
  );
}

async function recomputeHours(tenantId: string): Promise<void> {
  const H = 3_600_000;
  const hours = new Set([started - (started % H), Date.now() - (Date.now() % H)]);
  for (const bucketStart of hours) {
    await processStatsJob(
      { db: app.deps.db, logger: app.t.logger },
      { tenantId, granularity: 'hour', bucketStart },
    );
  }
}

async function get(path: string, token: string, headers: Record<string, string> = {}) {
  return app.request('GET', path, { token, headers });
}

type Figures = Record<string, number>;
const figures = (f: Partial<Figures>): Figures => ({
  messages_in: 0,
  replies: 0,
  no_replies: 0,
  failures: 0,
  llm_requests: 0,
  tokens_in: 0,
  tokens_out: 0,
  cost: 0,
  ...f,
});

// acme: 5 replies by agent a (stub-a), 3 by agent b (stub-b), 2 silent messages of agent a
// (talk_value 0, no call); plus one memory call of a and one emoji call of b. globex: 2 replies.
const ACME_A = figures({
  messages_in: 7,
  replies: 5,
  no_replies: 2,
  llm_requests: 6,
  tokens_in: 6 * A.prompt,
  tokens_out: 6 * A.completion,
  cost: round(6 * costA),
});
const ACME_B = figures({
  messages_in: 3,
  replies: 3,
  llm_requests: 4,
  tokens_in: 4 * B.prompt,
  tokens_out: 4 * B.completion,
  cost: round(4 * costB),
});
const GLOBEX = figures({
  messages_in: 2,
  replies: 2,
  llm_requests: 2,
  tokens_in: 2 * A.prompt,
  tokens_out: 2 * A.completion,
  cost: round(2 * costA),
});
const add = (x: Figures, y: Figures): Figures =>
  Object.fromEntries(Object.keys(x).map((k) => [k, k === 'cost' ? round(x[k]! + y[k]!) : x[k]! + y[k]!]));
const ACME = add(ACME_A, ACME_B);

beforeAll(async () => {
  await stub.start();
  stub.on('stub-a', {
    kind: 'success',
    content: '好的',
    usage: { prompt_tokens: A.prompt, completion_tokens: A.completion },
  });
  stub.on('stub-b', {
    kind: 'success',
    content: '收到',
    usage: { prompt_tokens: B.prompt, completion_tokens: B.completion },
  });
  app = await startTestApp({ env: { LLM_PRICES: JSON.stringify(PRICES) } });
  await app.t.admin(
    `INSERT INTO tenants (tenant_id, name, settings) VALUES
       ('acme', 'Acme', '{"rate_limit_per_second": 1000, "credential_rate_limit_per_second": 1000}'),
       ('globex', 'Globex', '{}'), ('initech', 'Initech', '{}')`,
  );
  await app.t.admin(
    `INSERT INTO agents (tenant_id, agent_id, name, config) VALUES
       ('acme', 'a', 'Ann', $1), ('acme', 'b', 'Bob', $2), ('globex', 'a', 'Ann', $1)`,
    [agentConfig('stub-a'), agentConfig('stub-b')],
  );
  pool = await startTestPool(app, { concurrency: 4, llmPrices: app.deps.config.llmPrices });
  started = Date.now();
  const statuses: string[] = [];
  for (let i = 0; i < 5; i++) statuses.push(await send('acme', 'a', `a-${i}`, '@Ann 你好'));
  for (let i = 0; i < 3; i++) statuses.push(await send('acme', 'b', `b-${i}`, '@Bob 你好'));
  const acmeAdmin = await app.tokenFor({ role: 'tenant_admin', tenantId: 'acme' });
  await app.request('POST', '/chat/streams', {
    token: acmeAdmin,
    body: { chat_stream_id: 'quiet', platform: 'qq', chat_type: 'group', agent_id: 'a' },
  });
  const quiet = await app.request('PUT', '/config', {
    token: acmeAdmin,
    body: { category: 'heartflow', scope: 'chat', chat_stream_id: 'quiet', config: { talk_value: 0 } },
  });
  if (quiet.status !== 200) throw new Error(`PUT /config: ${quiet.status}`);
  statuses.push(await send('acme', 'a', 'quiet', '今天天气不错'));
  statuses.push(await send('acme', 'a', 'quiet', '是啊'));
  for (let i = 0; i < 2; i++) statuses.push(await send('globex', 'a', `g-${i}`, '@Ann 在吗'));
  if (
    statuses.join() !==
    [...Array<string>(8).fill('replied'), 'no_reply', 'no_reply', 'replied', 'replied'].join()
  ) {
    throw new Error(`the workload did not run as planned: ${statuses.join()}`);
  }
  await pool.close();
  pool = undefined;
  await directCall('acme', 'a', 'memory', 'stub-a');
  await directCall('acme', 'b', 'emoji', 'stub-b');
  for (const tenantId of ['acme', 'globex', 'initech']) await recomputeHours(tenantId);
}, 120_000);

afterAll(async () => {
  await pool?.close();
  await app.close();
  await stub.close();
});

function totalsOf(body: Envelope) {
  return body.data.totals as Figures;
}

describe('GET /stats/usage', () => {
  it('sums the known workload exactly, by hour and by day, per agent and per feature', async () => {
    const token = await app.tokenFor({ role: 'reader', tenantId: 'acme' });
    for (const group of ['hour', 'day']) {
      const res = await get(`/stats/usage?period=2d&group_by=${group}`, token);
      expect(res.status).toBe(200);
      expect(res.body.data).toMatchObject({ tenant_id: 'acme', period: '2d', group_by: group });
      expect(totalsOf(res.body)).toEqual(ACME);
      const buckets = res.body.data.buckets as (Figures & { bucket_start: string })[];
      expect(buckets).toHaveLength(group === 'hour' ? 48 : 2);
      // Every bucket is reported (zeros included) and they add up to the totals.
      const summed = buckets.reduce<Figures>((acc, b) => {
        const { bucket_start: _start, ...f } = b;
        return add(acc, f);
      }, figures({}));
      expect(summed).toEqual(ACME);
      expect(res.body.data.by_agent).toEqual([
        { agent_id: 'a', ...ACME_A },
        { agent_id: 'b', ...ACME_B },
      ]);
      expect(res.body.data.by_feature).toEqual([
        {
          feature: 'emoji',
          llm_requests: 1,
          tokens_in: B.prompt,
          tokens_out: B.completion,
          cost: round(costB),
        },
        {
          feature: 'memory',
          llm_requests: 1,
          tokens_in: A.prompt,
          tokens_out: A.completion,
          cost: round(costA),
        },
        {
          feature: 'reply',
          llm_requests: 8,
          tokens_in: 5 * A.prompt + 3 * B.prompt,
          tokens_out: 5 * A.completion + 3 * B.completion,
          cost: round(5 * costA + 3 * costB),
        },
      ]);
    }
  });

  it('narrows to one agent with agent_id, and an agent credential to its own agent', async () => {
    const token = await app.tokenFor({ role: 'reader', tenantId: 'acme' });
    const one = await get('/stats/usage?period=1d&agent_id=b', token);
    expect(totalsOf(one.body)).toEqual(ACME_B);
    const agentToken = await app.tokenFor({ role: 'agent', tenantId: 'acme', agentId: 'a' });
    const own = await get('/stats/usage?period=1d', agentToken);
    expect(own.status).toBe(200);
    expect(totalsOf(own.body)).toEqual(ACME_A);
    expect(own.body.data.by_agent).toEqual([{ agent_id: 'a', ...ACME_A }]);
  });

  it("shows each tenant only its own figures, and refuses another tenant's", async () => {
    const globex = await get(
      '/stats/usage?period=1d',
      await app.tokenFor({ role: 'tenant_admin', tenantId: 'globex' }),
    );
    expect(totalsOf(globex.body)).toEqual(GLOBEX);
    const initech = await get(
      '/stats/usage?period=1d',
      await app.tokenFor({ role: 'tenant_admin', tenantId: 'initech' }),
    );
    expect(totalsOf(initech.body)).toEqual(figures({}));
    expect(initech.body.data.by_feature).toEqual([]);
    const crossing = await get(
      '/stats/usage',
      await app.tokenFor({ role: 'tenant_admin', tenantId: 'globex' }),
      {
        'X-Tenant-ID': 'acme',
      },
    );
    expect(crossing.status).toBe(403);
    expect(crossing.body.error?.code).toBe('ISOLATION_VIOLATION');
    const admin = await get('/stats/usage?period=1d', await app.tokenFor({ role: 'platform_admin' }), {
      'X-Tenant-ID': 'globex',
    });
    expect(totalsOf(admin.body)).toEqual(GLOBEX);
  });

  it('validates period, group_by and unknown fields', async () => {
    const token = await app.tokenFor({ role: 'reader', tenantId: 'acme' });
    for (const q of [
      'period=0d',
      'period=30',
      'period=1w',
      'period=30m',
      'period=400d',
      'group_by=week',
      'bogus=1',
    ]) {
      const res = await get(`/stats/usage?${q}`, token);
      expect(res.status).toBe(400);
      expect(res.body.error?.code).toBe('VALIDATION_ERROR');
      expect((res.body.error?.details?.fields as unknown[]).length).toBeGreaterThan(0);
    }
    const tooLong = await get('/stats/usage?period=90d&group_by=hour', token);
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error?.details?.fields).toEqual([
      { path: 'period', issue: expect.stringContaining('35 days') as unknown },
    ]);
  });
});

describe('GET /stats/tenants', () => {
  it('lists every tenant with its exact figures, sorted and paginated', async () => {
    const token = await app.tokenFor({ role: 'platform_admin' });
    const res = await get('/stats/tenants?period=7d&sort=cost&order=desc', token);
    expect(res.status).toBe(200);
    const tenants = res.body.data.tenants as (Figures & { tenant_id: string })[];
    const byId = new Map(tenants.map((t) => [t.tenant_id, t]));
    expect(byId.get('acme')).toEqual({ tenant_id: 'acme', name: 'Acme', ...ACME });
    expect(byId.get('globex')).toEqual({ tenant_id: 'globex', name: 'Globex', ...GLOBEX });
    expect(byId.get('initech')).toEqual({ tenant_id: 'initech', name: 'Initech', ...figures({}) });
    expect(tenants.map((t) => t.tenant_id).slice(0, 2)).toEqual(['acme', 'globex']);
    const total = (res.body.data.pagination as { total: number }).total;
    expect(total).toBe(tenants.length);

    const page2 = await get('/stats/tenants?period=24h&sort=messages_in&order=asc&limit=1&page=2', token);
    expect(page2.body.data.pagination).toEqual({ page: 2, limit: 1, total, pages: total });
    const asc = await get(`/stats/tenants?period=24h&sort=messages_in&order=asc&limit=100`, token);
    const ascIds = (asc.body.data.tenants as { tenant_id: string }[]).map((t) => t.tenant_id);
    expect((page2.body.data.tenants as { tenant_id: string }[])[0]!.tenant_id).toBe(ascIds[1]);
    expect(ascIds.slice(-2)).toEqual(['globex', 'acme']);
  });

  it('is for platform admins only', async () => {
    for (const role of ['tenant_admin', 'operator', 'reader'] as const) {
      const res = await get('/stats/tenants', await app.tokenFor({ role, tenantId: 'acme' }));
      expect(res.status).toBe(403);
      expect(res.body.error?.code).toBe('FORBIDDEN');
    }
    expect((await app.request('GET', '/stats/tenants')).status).toBe(401);
  });

  it('validates its query', async () => {
    const token = await app.tokenFor({ role: 'platform_admin' });
    for (const q of ['sort=name', 'order=up', 'period=1x', 'limit=101', 'extra=1']) {
      expect((await get(`/stats/tenants?${q}`, token)).status).toBe(400);
    }
  });
});
