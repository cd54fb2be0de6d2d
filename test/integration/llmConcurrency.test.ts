import { performance } from 'node:perf_hooks';

import { Redis } from 'ioredis';

import { type LlmCallRequest, LlmClient } from '../../src/llm/llmClient';
import { LlmConcurrencyTimeoutError, RedisLlmConcurrency } from '../../src/llm/llmConcurrency';
import { LlmError, LlmSettings } from '../../src/llm/types';
import { createLogger } from '../../src/logger';
import { keyspace } from '../../src/redis/keys';
import { testEnv } from '../support/env';
import { OpenAiStub } from '../support/openaiStub';
import { startTestApp } from '../support/testApp';
import { createTestRedis } from '../support/testDatabase';
import { startTestPool } from '../support/testPool';

const stub = new OpenAiStub();
const logger = createLogger({ level: 'silent' });
let testRedis: ReturnType<typeof createTestRedis>;
let keys: ReturnType<typeof keyspace>;
/** One connection per simulated process; all closed after the file. */
const connections: Redis[] = [];

function connection(): Redis {
  const redis = new Redis(testEnv('redisUrl'), { maxRetriesPerRequest: null });
  connections.push(redis);
  return redis;
}

/** A worker process's LLM client: its own Redis connection and guard, limit 2 per tenant. */
function processClient(options: { slotWaitMs?: number } = {}): LlmClient {
  return new LlmClient({
    logger,
    sleep: () => Promise.resolve(),
    concurrency: new RedisLlmConcurrency({ redis: connection(), keys, maxPerTenant: 2 }),
    ...options,
  });
}

function request(tenantId: string, model: string, over: Partial<LlmSettings> = {}): LlmCallRequest {
  return {
    tenantId,
    agentId: 'default',
    requestType: 'replyer',
    messages: [{ role: 'user', content: 'hi' }],
    settings: LlmSettings.parse({
      provider: 'openai',
      base_url: stub.baseUrl,
      models: [model],
      timeout_ms: 2000,
      max_retries: 0,
      ...over,
    }),
  };
}

/** Holders of a tenant's slots, once releases sent without waiting have landed. */
async function holders(tenantId: string): Promise<number> {
  await testRedis.redis.ping();
  await Promise.all(connections.map((c) => c.ping()));
  return testRedis.redis.zcard(keys.llmSlots(tenantId));
}

beforeAll(async () => {
  await stub.start();
  testRedis = createTestRedis();
  keys = keyspace(testRedis.prefix.replace(/:$/, ''));
});

afterAll(async () => {
  for (const c of connections) c.disconnect();
  await testRedis.close();
  await stub.close();
});

beforeEach(() => stub.reset());

describe('per-tenant LLM concurrency across worker processes', () => {
  it('never has more than 2 calls of a tenant in flight across two processes, and leaves another tenant unaffected', async () => {
    stub.on('m-acme', { kind: 'success', content: 'acme', delayMs: 250 });
    stub.on('m-globex', { kind: 'success', content: 'globex', delayMs: 250 });
    const processes = [processClient(), processClient()];
    const acme = processes.flatMap((c) =>
      Array.from({ length: 4 }, () => c.complete(request('acme', 'm-acme'))),
    );
    const globex = processes.flatMap((c) =>
      Array.from({ length: 2 }, () => c.complete(request('globex', 'm-globex'))),
    );
    const [acmeResults, globexResults] = await Promise.all([Promise.all(acme), Promise.all(globex)]);

    expect(acmeResults.map((r) => r.content)).toEqual(Array<string>(8).fill('acme'));
    expect(globexResults.map((r) => r.content)).toEqual(Array<string>(4).fill('globex'));
    // Each process alone would allow 2, so 4 together without the shared slots.
    expect(stub.maxInFlightByModel.get('m-acme')).toBe(2);
    expect(stub.maxInFlightByModel.get('m-globex')).toBe(2);
    expect(stub.maxInFlight).toBe(4);
    // globex ran its own 2 at a time beside acme's backlog (two rounds), not behind it: all of its
    // requests were sent before acme's third round began.
    const order = stub.requests.map((r) => r.model);
    const acmeFifth = order.map((m, i) => (m === 'm-acme' ? i : -1)).filter((i) => i >= 0)[4]!;
    expect(order.lastIndexOf('m-globex')).toBeLessThan(acmeFifth);
    expect(await holders('acme')).toBe(0);
    expect(await holders('globex')).toBe(0);
  });

  it('gives a slot back after a failed call too, retries included', async () => {
    stub.on('m-fail', { kind: 'error', status: 500 });
    const c = processClient();
    await expect(c.complete(request('failing', 'm-fail', { max_retries: 2 }))).rejects.toMatchObject({
      kind: 'server_error',
    });
    expect(stub.requestsFor('m-fail')).toHaveLength(3);
    expect(await holders('failing')).toBe(0);
  });

  it('frees the slots of a holder that crashed once their leases end, so calls proceed', async () => {
    // A "process" takes both slots for calls with a 300 ms timeout (lease 300 + 100 ms), then dies.
    const doomed = new Redis(testEnv('redisUrl'), { maxRetriesPerRequest: null });
    const crashed = new RedisLlmConcurrency({ redis: doomed, keys, maxPerTenant: 2, leaseMarginMs: 100 });
    for (let i = 0; i < 2; i++) {
      expect(await crashed.acquire('crashy', { callTimeoutMs: 300, waitMs: 0 })).toBeDefined();
    }
    doomed.disconnect();
    expect(await holders('crashy')).toBe(2);

    stub.on('m-crashy', { kind: 'success', content: 'after the lease' });
    const started = performance.now();
    const result = await processClient({ slotWaitMs: 5000 }).complete(request('crashy', 'm-crashy'));

    expect(result.content).toBe('after the lease');
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    expect(stub.requestsFor('m-crashy')).toHaveLength(1);
    expect(await holders('crashy')).toBe(0);
  });

  it('fails the call with LlmConcurrencyTimeoutError, making no request, when no slot frees in time', async () => {
    const other = new RedisLlmConcurrency({ redis: connection(), keys, maxPerTenant: 2 });
    const held = [
      await other.acquire('busy', { callTimeoutMs: 10_000, waitMs: 0 }),
      await other.acquire('busy', { callTimeoutMs: 10_000, waitMs: 0 }),
    ];
    expect(await other.acquire('busy', { callTimeoutMs: 10_000, waitMs: 0 })).toBeUndefined();
    stub.on('m-busy', { kind: 'success', content: 'never' });
    const started = performance.now();
    const err = await processClient({ slotWaitMs: 200 })
      .complete(request('busy', 'm-busy'))
      .catch((e: unknown) => e);

    const waited = performance.now() - started;
    expect(err).toBeInstanceOf(LlmConcurrencyTimeoutError);
    expect(err).toBeInstanceOf(LlmError);
    expect(err).toMatchObject({ kind: 'timeout', limit: 2, usage: [] });
    expect((err as Error).message).toMatch(/no LLM call slot free within 200 ms/);
    expect(waited).toBeGreaterThanOrEqual(190);
    expect(waited).toBeLessThan(2000);
    expect(stub.requestsFor('m-busy')).toHaveLength(0);

    await Promise.all(held.map((s) => s!.release()));
    expect(await holders('busy')).toBe(0);
    await expect(processClient().complete(request('busy', 'm-busy'))).resolves.toMatchObject({
      content: 'never',
    });
  });
});

describe('a call without a free slot in the heartflow', () => {
  it('fails the message with the reason, like any LLM failure, without calling the model', async () => {
    const app = await startTestApp();
    const pool = await startTestPool(app, { llmMaxConcurrencyPerTenant: 1 });
    try {
      await app.t.admin(
        `INSERT INTO tenants (tenant_id, name, settings)
         VALUES ('acme', 'Acme', '{"rate_limit_per_second": 1000, "credential_rate_limit_per_second": 1000}')`,
      );
      await app.t.admin(`UPDATE agents SET name = '麦麦' WHERE tenant_id = 'acme' AND agent_id = 'default'`);
      const token = await app.tokenFor({ role: 'tenant_admin', tenantId: 'acme' });
      const llm = { provider: 'openai', base_url: stub.baseUrl, models: ['m-full'], timeout_ms: 300 };
      const config = await app.request('PUT', '/agents/default/config', { token, body: { llm } });
      expect(config.status).toBe(200);
      stub.on('m-full', { kind: 'success', content: 'never' });
      // Another worker process holds acme's only slot for a long call.
      const other = new RedisLlmConcurrency({ redis: connection(), keys: app.deps.keys, maxPerTenant: 1 });
      const held = await other.acquire('acme', { callTimeoutMs: 30_000, waitMs: 0 });
      expect(held).toBeDefined();

      const res = await app.request('POST', '/chat/send?wait=10000', {
        token,
        body: { message: '@麦麦 在吗？', chat_stream_id: 'full-1', platform: 'qq' },
      });
      expect(res.body.data).toMatchObject({ status: 'failed' });
      expect(res.body.data.error).toMatch(/no LLM call slot free within 300 ms/);
      expect(stub.requestsFor('m-full')).toHaveLength(0);
      await held!.release();
    } finally {
      await pool.close();
      await app.close();
    }
  });
});
