import { RateLimitError } from '../../src/errors';
import { type LlmCallRequest, LlmClient } from '../../src/llm/llmClient';
import { LlmQuotaExceededError, RedisLlmQuota } from '../../src/llm/llmQuota';
import { SecretBox } from '../../src/llm/secretBox';
import { LlmSettings } from '../../src/llm/types';
import { enqueueMemory, memoryJobId } from '../../src/workers/jobs';
import type { WorkerPool } from '../../src/workers/workerPool';
import { OpenAiStub } from '../support/openaiStub';
import { startTestApp, type TestApp } from '../support/testApp';
import { startTestPool } from '../support/testPool';

let app: TestApp;
let pool: WorkerPool | undefined;
const stub = new OpenAiStub();
const tokens = new Map<string, string>();
const RATES = { rate_limit_per_second: 1000, credential_rate_limit_per_second: 1000 };
/** Every stub answer reports 40 + 20 tokens. */
const ANSWER = {
  kind: 'success',
  content: '好的',
  usage: { prompt_tokens: 40, completion_tokens: 20 },
} as const;

async function addTenant(tenantId: string, settings: Record<string, unknown>): Promise<void> {
  await app.t.admin(`INSERT INTO tenants (tenant_id, name, settings) VALUES ($1, $1, $2)`, [
    tenantId,
    JSON.stringify({ ...RATES, ...settings }),
  ]);
  await app.t.admin(`UPDATE agents SET name = '麦麦' WHERE tenant_id = $1 AND agent_id = 'default'`, [
    tenantId,
  ]);
  const token = await app.tokenFor({ role: 'tenant_admin', tenantId });
  tokens.set(tenantId, token);
  const res = await app.request('PUT', '/agents/default/config', {
    token,
    body: {
      llm: {
        provider: 'openai',
        base_url: stub.baseUrl,
        models: [`m-${tenantId}`],
        api_key: `sk-${tenantId}`,
      },
    },
  });
  expect(res.status).toBe(200);
  stub.on(`m-${tenantId}`, ANSWER);
}

/**
 * The stub's requests for a model made by the replyer: memory jobs (enqueued for a sample of
 * batches) may call the same model, with their own prompts.
 */
function replyerRequests(model: string) {
  return stub.requestsFor(model).filter((r) => {
    const first = (r.body.messages as { content: string }[])[0]?.content ?? '';
    return !first.startsWith('You extract') && !first.startsWith('Summarise');
  });
}

let streamNo = 0;
/** One mention in a stream of its own, waiting for its outcome. */
async function mention(tenantId: string) {
  streamNo += 1;
  const res = await app.request('POST', '/chat/send?wait=10000', {
    token: tokens.get(tenantId)!,
    // No memory jobs: they call the model too and would count against the same quota.
    body: {
      message: '@麦麦 我喜欢吃火锅，帮个忙？', // memorable: without the option it would queue a memory job
      chat_stream_id: `q-${streamNo}`,
      platform: 'qq',
      options: { enable_memory: false },
    },
  });
  expect(res.status).toBe(200);
  return res.body.data as { message_id: string; status: string; error?: string | null; response?: string };
}

async function mentions(tenantId: string, n: number) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await mention(tenantId));
  return out;
}

beforeAll(async () => {
  await stub.start();
  app = await startTestApp();
  await addTenant('acme', { quotas: { daily_llm_requests: 2 } });
  await addTenant('globex', {});
  await addTenant('initech', { quotas: { monthly_tokens: 100 } });
  pool = await startTestPool(app);
});

afterAll(async () => {
  await pool?.close();
  await app.close();
  await stub.close();
});

describe('tenant LLM quotas in the heartflow', () => {
  it('gives a tenant with daily_llm_requests=2 two LLM calls, then fails its messages with the reason', async () => {
    const outcomes = await mentions('acme', 3);

    expect(outcomes.map((o) => o.status)).toEqual(['replied', 'replied', 'failed']);
    expect(outcomes[2]?.error).toMatch(/LLM quota exceeded: the tenant's 2 LLM requests of this UTC day/);
    expect(replyerRequests('m-acme')).toHaveLength(2);
    const status = await app.request('GET', `/chat/messages/${outcomes[2]!.message_id}/status`, {
      token: tokens.get('acme')!,
    });
    expect(status.body.data).toMatchObject({ status: 'failed', error: outcomes[2]?.error });
    // The refused job completed: no retry, no failed job, no further call.
    await new Promise((r) => setTimeout(r, 300));
    expect(replyerRequests('m-acme')).toHaveLength(2);
    expect(await app.deps.queues.queue('acme', 'heartflow').getJobCounts('failed', 'delayed')).toEqual({
      failed: 0,
      delayed: 0,
    });
    const day = new Date().toISOString().slice(0, 10);
    expect(await app.deps.redis.get(app.deps.keys.quotaCounter('acme', 'llm_requests', day))).toBe('2');
    // options.enable_memory = false is honoured: the answered messages queued no memory job.
    expect(await app.deps.queues.queue('acme', 'memory').count()).toBe(0);
  });

  it('leaves another tenant unaffected by one whose quota is spent', async () => {
    expect((await mention('acme')).status).toBe('failed');
    const outcomes = await mentions('globex', 3);
    expect(outcomes.map((o) => o.status)).toEqual(['replied', 'replied', 'replied']);
    expect(replyerRequests('m-globex')).toHaveLength(3);
  });

  it('refuses calls once monthly_tokens are used up (60 tokens a call, 100 allowed)', async () => {
    const outcomes = await mentions('initech', 3);

    expect(outcomes.map((o) => o.status)).toEqual(['replied', 'replied', 'failed']);
    expect(outcomes[2]?.error).toMatch(/the tenant's 100 LLM tokens of this UTC month are used up/);
    expect(replyerRequests('m-initech')).toHaveLength(2);
    const month = new Date().toISOString().slice(0, 7);
    expect(await app.deps.redis.get(app.deps.keys.quotaCounter('initech', 'llm_tokens', month))).toBe('120');
  });
});

describe('tenant LLM quotas in memory jobs', () => {
  /** Runs a memory job of the tenant's first mention stream through the pool, to completion. */
  async function runMemoryJob(tenantId: string, chatStreamId: string): Promise<void> {
    const data = { tenantId, agentId: 'default', platform: 'qq', chatStreamId };
    await enqueueMemory(app.deps.queues, data);
    const queue = app.deps.queues.queue(tenantId, 'memory');
    const deadline = Date.now() + 10_000;
    while ((await queue.getJobState(memoryJobId(data))) !== 'completed') {
      if (Date.now() > deadline) throw new Error('memory job did not complete in time');
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const extractions = (model: string) =>
    stub.requestsFor(model).filter((r) => {
      const first = (r.body.messages as { content: string }[])[0]?.content ?? '';
      return first.startsWith('You extract');
    });

  it('meters them like the heartflow: a spent quota means no call, unlike an open one', async () => {
    const open = await mention('globex');
    const spent = await mention('acme');
    expect(spent.status).toBe('failed'); // acme's 2 requests of the day are gone

    const streamOf = async (tenantId: string, messageId: string) => {
      const res = await app.request('GET', `/chat/messages/${messageId}`, { token: tokens.get(tenantId)! });
      return (res.body.data as { chat_stream_id: string }).chat_stream_id;
    };
    const globexBefore = extractions('m-globex').length;
    await runMemoryJob('globex', await streamOf('globex', open.message_id));
    expect(extractions('m-globex').length).toBe(globexBefore + 1);

    const acmeBefore = extractions('m-acme').length;
    await runMemoryJob('acme', await streamOf('acme', spent.message_id));
    expect(extractions('m-acme').length).toBe(acmeBefore);
    const day = new Date().toISOString().slice(0, 10);
    expect(await app.deps.redis.get(app.deps.keys.quotaCounter('acme', 'llm_requests', day))).toBe('2');
  });
});

describe('RedisLlmQuota with the LLM client', () => {
  const box = new SecretBox(Buffer.alloc(32, 7));
  let now = Date.UTC(2026, 11, 2, 23, 59, 0);
  const clock = { now: () => now };
  const limits = new Map<string, { daily_llm_requests?: number; monthly_tokens?: number }>();
  const quota = () =>
    new RedisLlmQuota({
      redis: app.deps.redis,
      keys: app.deps.keys,
      clock,
      quotasOf: (tenantId) => Promise.resolve(limits.get(tenantId) ?? {}),
    });
  const client = () =>
    new LlmClient({
      logger: app.t.logger,
      clock,
      sleep: () => Promise.resolve(),
      secretBox: box,
      maxConcurrentPerTenant: 20,
      quota: quota(),
    });
  const call = (c: LlmClient, tenantId: string, model: string, over: Partial<LlmCallRequest> = {}) =>
    c.complete({
      tenantId,
      agentId: 'default',
      requestType: 'replyer',
      messages: [{ role: 'user', content: 'hi' }],
      settings: LlmSettings.parse({
        provider: 'openai',
        base_url: stub.baseUrl,
        models: [model],
        api_key_encrypted: box.encrypt('sk-direct'),
        max_retries: 2,
      }),
      ...over,
    });
  const requestsToday = async (tenantId: string) =>
    Number(
      await app.deps.redis.get(
        app.deps.keys.quotaCounter(tenantId, 'llm_requests', new Date(now).toISOString().slice(0, 10)),
      ),
    );

  it('lets exactly the quota through when calls race for the last requests', async () => {
    limits.set('race', { daily_llm_requests: 3 });
    stub.on('m-race', { ...ANSWER, delayMs: 50 });
    const c = client();
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => call(c, 'race', 'm-race')));

    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(refused).toHaveLength(7);
    for (const r of refused) {
      expect(r.reason).toBeInstanceOf(LlmQuotaExceededError);
      expect(r.reason).toBeInstanceOf(RateLimitError);
      expect(r.reason).toMatchObject({
        code: 'QUOTA_EXCEEDED',
        status: 429,
        quota: 'daily_llm_requests',
        limit: 3,
        details: { quota: 'daily_llm_requests', limit: 3, used: 3 },
      });
    }
    expect(stub.requestsFor('m-race')).toHaveLength(3);
    expect(await requestsToday('race')).toBe(3);
  });

  it('counts every HTTP call of a retried call, and gives back a call that made none', async () => {
    limits.set('retry', { daily_llm_requests: 10 });
    stub.on('m-retry', [{ kind: 'error', status: 500 }, ANSWER]);
    const c = client();
    await call(c, 'retry', 'm-retry');
    expect(stub.requestsFor('m-retry')).toHaveLength(2);
    expect(await requestsToday('retry')).toBe(2);

    const unopenable = LlmSettings.parse({
      provider: 'openai',
      base_url: stub.baseUrl,
      models: ['m-retry'],
      api_key_encrypted: new SecretBox(Buffer.alloc(32, 9)).encrypt('sk-other'),
    });
    await expect(call(c, 'retry', 'm-retry', { settings: unopenable })).rejects.toMatchObject({
      kind: 'rejected',
    });
    expect(await requestsToday('retry')).toBe(2);
  });

  it('tells how long until the UTC day ends, and allows calls again on the next day', async () => {
    limits.set('midnight', { daily_llm_requests: 1 });
    stub.on('m-midnight', ANSWER);
    now = Date.UTC(2026, 11, 2, 23, 59, 0);
    const c = client();
    await call(c, 'midnight', 'm-midnight');
    const refused = await call(c, 'midnight', 'm-midnight').catch((e: unknown) => e);
    expect(refused).toMatchObject({ quota: 'daily_llm_requests', retryAfterSeconds: 60 });

    now += 61_000;
    await expect(call(c, 'midnight', 'm-midnight')).resolves.toMatchObject({ content: '好的' });
    expect(stub.requestsFor('m-midnight')).toHaveLength(2);
  });

  it('counts tokens per UTC month and refuses once they reach monthly_tokens', async () => {
    limits.set('tokens', { monthly_tokens: 150 });
    stub.on('m-tokens', ANSWER);
    now = Date.UTC(2026, 11, 31, 12, 0, 0);
    const c = client();
    await call(c, 'tokens', 'm-tokens');
    await call(c, 'tokens', 'm-tokens');
    await call(c, 'tokens', 'm-tokens'); // 120 < 150 before it: allowed, 180 after
    const refused = await call(c, 'tokens', 'm-tokens').catch((e: unknown) => e);
    expect(refused).toMatchObject({ quota: 'monthly_tokens', limit: 150, used: 180 });
    expect(stub.requestsFor('m-tokens')).toHaveLength(3);

    now = Date.UTC(2027, 0, 1, 0, 0, 1);
    await expect(call(c, 'tokens', 'm-tokens')).resolves.toMatchObject({ content: '好的' });
  });
});
