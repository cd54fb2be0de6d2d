import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { TenantDb } from '../../src/db/database';
import { createIsolationContext } from '../../src/domain/isolationContext';
import { IsolationViolationError, RateLimitError } from '../../src/errors';
import {
  type LlmCallRequest,
  type LlmCallResult,
  LlmClient,
  type LlmClientOptions,
} from '../../src/llm/llmClient';
import { SecretBox } from '../../src/llm/secretBox';
import { LlmError, LlmSettings, type LlmSettingsInput } from '../../src/llm/types';
import { OpenAiStub } from '../support/openaiStub';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

let t: TestDatabase;
const stub = new OpenAiStub();
const box = new SecretBox(randomBytes(32));
const API_KEY = 'sk-test-live-0123456789';
const T0 = Date.UTC(2030, 0, 1);

beforeAll(async () => {
  t = await createTestDatabase();
  await stub.start();
  await t.admin(`INSERT INTO tenants (tenant_id, name) VALUES ('acme', 'Acme'), ('globex', 'Globex')`);
  await t.admin(
    `INSERT INTO agents (tenant_id, agent_id, name) VALUES ('acme', 'bot1', 'Bot'), ('globex', 'gbot', 'G')`,
  );
});
afterAll(async () => {
  await stub.close();
  await t.close();
});
beforeEach(async () => {
  stub.reset();
  await t.admin('DELETE FROM llm_usage');
});

interface Harness {
  client: LlmClient;
  delays: number[];
  clock: { now: () => number; advance: (ms: number) => void };
}

function harness(options: Partial<LlmClientOptions> = {}): Harness {
  let now = T0;
  const clock = { now: () => now, advance: (ms: number) => void (now += ms) };
  const delays: number[] = [];
  const client = new LlmClient({
    logger: t.logger,
    clock,
    rng: () => 0.5,
    sleep: (ms) => {
      delays.push(ms);
      return Promise.resolve();
    },
    secretBox: box,
    ...options,
  });
  return { client, delays, clock };
}

function settings(over: Partial<LlmSettingsInput> = {}): LlmSettings {
  return LlmSettings.parse({
    provider: 'openai',
    base_url: stub.baseUrl,
    models: ['m-a', 'm-b'],
    api_key_encrypted: box.encrypt(API_KEY),
    temperature: 0.3,
    max_tokens: 64,
    timeout_ms: 2000,
    max_retries: 2,
    cost_per_1k_tokens: { prompt: 0.5, completion: 1.5 },
    ...over,
  });
}

function request(over: Partial<LlmCallRequest> = {}): LlmCallRequest {
  return {
    tenantId: 'acme',
    agentId: 'bot1',
    platform: 'qq',
    chatStreamId: 'chat_1',
    messageId: 'msg_1',
    requestType: 'replyer',
    messages: [
      { role: 'system', content: '你是麦麦。' },
      { role: 'user', content: '你好' },
    ],
    settings: settings(),
    ...over,
  };
}

const acme = createIsolationContext({ tenantId: 'acme' });

/** Runs a call inside acme's unit of work; an LlmError is caught there so its usage rows commit. */
function inUnitOfWork(
  client: LlmClient,
  over: Partial<LlmCallRequest> = {},
): Promise<LlmCallResult | LlmError> {
  return t.db.withTenant(acme, async (db: TenantDb) => {
    try {
      return await client.complete(request({ db, ...over }));
    } catch (err) {
      if (err instanceof LlmError) return err;
      throw err;
    }
  });
}

async function usageRows() {
  const { rows } = await t.admin<{
    model_name: string;
    provider: string;
    status: string;
    prompt_tokens: number;
    completion_tokens: number;
    total_tokens: number;
    cost: string;
    latency_ms: number;
    error: string | null;
    request_type: string;
    platform: string | null;
    chat_stream_id: string | null;
    message_id: string | null;
  }>(`SELECT * FROM llm_usage WHERE tenant_id = 'acme' ORDER BY usage_id`);
  return rows;
}

function ok(content: string, prompt = 12, completion = 5) {
  return {
    kind: 'success' as const,
    content,
    usage: { prompt_tokens: prompt, completion_tokens: completion },
  };
}

describe('LlmClient against an OpenAI-compatible server', () => {
  it('sends model, messages, temperature, max_tokens and the decrypted key as a Bearer token', async () => {
    stub.on('m-a', ok('你好呀', 12, 5));
    const { client } = harness();
    const result = await inUnitOfWork(client);

    expect(result).toMatchObject({
      content: '你好呀',
      model: 'm-a',
      provider: 'openai',
      promptTokens: 12,
      completionTokens: 5,
      attempts: 1,
      cost: 0.0135, // 12 × 0.5/1000 + 5 × 1.5/1000
    });
    const [sent] = stub.requests;
    expect(stub.requests).toHaveLength(1);
    expect(sent?.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(sent?.body).toEqual({
      model: 'm-a',
      messages: request().messages,
      temperature: 0.3,
      max_tokens: 64,
      stream: false,
    });
    const rows = await usageRows();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      model_name: 'm-a',
      provider: 'openai',
      status: 'success',
      prompt_tokens: 12,
      completion_tokens: 5,
      total_tokens: 17,
      cost: '0.013500',
      request_type: 'replyer',
      platform: 'qq',
      chat_stream_id: 'chat_1',
      message_id: 'msg_1',
      error: null,
    });
    expect(rows[0]?.latency_ms).toBeGreaterThanOrEqual(0);
  });

  it('sends no Authorization header when no key is configured', async () => {
    stub.on('m-a', ok('hi'));
    await harness().client.complete(request({ settings: settings({ api_key_encrypted: undefined }) }));
    expect(stub.requests[0]?.headers.authorization).toBeUndefined();
  });

  it('retries an HTTP 500 with jittered exponential backoff and then succeeds', async () => {
    stub.on('m-a', [{ kind: 'error', status: 500 }, { kind: 'error', status: 503 }, ok('third time')]);
    const { client, delays } = harness();
    const result = await inUnitOfWork(client);

    expect(result).toMatchObject({ content: 'third time', model: 'm-a', attempts: 3 });
    expect(stub.requestsFor('m-b')).toHaveLength(0);
    // rng 0.5 → ¾ of the ceiling: 500 ms, then 1000 ms.
    expect(delays).toEqual([375, 750]);
    expect((await usageRows()).map((r) => r.status)).toEqual(['error', 'error', 'success']);
    expect((await usageRows())[0]?.error).toContain('HTTP 500');
  });

  it('waits as long as Retry-After says on HTTP 429', async () => {
    stub.on('m-a', [{ kind: 'error', status: 429, headers: { 'retry-after': '2' } }, ok('after the wait')]);
    const { client, delays } = harness();
    const result = await client.complete(request());

    expect(result).toMatchObject({ content: 'after the wait', model: 'm-a', attempts: 2 });
    expect(delays).toEqual([2000]);
  });

  it('fails over at once when Retry-After asks for longer than it will wait', async () => {
    stub.on('m-a', { kind: 'error', status: 429, headers: { 'retry-after': '3600' } });
    stub.on('m-b', ok('from b'));
    const { client, delays } = harness({ maxRetryAfterMs: 10_000 });
    const result = await client.complete(request());

    expect(result).toMatchObject({ content: 'from b', model: 'm-b', attempts: 2 });
    expect(delays).toEqual([]);
  });

  it('times out, retries, then fails over to the second model', async () => {
    stub.on('m-a', { kind: 'slow', delayMs: 3000 });
    stub.on('m-b', ok('b answers'));
    const { client, delays } = harness();
    const result = await inUnitOfWork(client, { settings: settings({ timeout_ms: 200, max_retries: 1 }) });

    expect(result).toMatchObject({ content: 'b answers', model: 'm-b', attempts: 3 });
    expect(stub.requests.map((r) => r.model)).toEqual(['m-a', 'm-a', 'm-b']);
    expect(delays).toEqual([375]);
    const rows = await usageRows();
    expect(rows.map((r) => [r.model_name, r.status])).toEqual([
      ['m-a', 'timeout'],
      ['m-a', 'timeout'],
      ['m-b', 'success'],
    ]);
    expect(rows[0]?.latency_ms).toBeGreaterThanOrEqual(190);
  });

  it('times out a server that sends headers and then stalls mid-body', async () => {
    stub.on('m-a', { kind: 'stall', delayMs: 3000 });
    stub.on('m-b', ok('b answers'));
    const result = await harness().client.complete(
      request({ settings: settings({ timeout_ms: 200, max_retries: 0 }) }),
    );
    expect(result).toMatchObject({ model: 'm-b', attempts: 2 });
    expect(result.usage.map((u) => u.status)).toEqual(['timeout', 'success']);
  });

  it('throws a retryable LlmError when every model fails, with each call recorded as error or timeout', async () => {
    stub.on('m-a', { kind: 'error', status: 502 });
    stub.on('m-b', { kind: 'slow', delayMs: 3000 });
    const { client } = harness();
    const err = await inUnitOfWork(client, { settings: settings({ timeout_ms: 200, max_retries: 1 }) });

    expect(err).toBeInstanceOf(LlmError);
    const e = err as LlmError;
    expect(e.kind).toBe('timeout');
    expect(e.retryable).toBe(true);
    expect(e.message).toMatch(/^all 4 LLM calls failed/);
    expect(e.attempts.map((a) => [a.model, a.kind])).toEqual([
      ['m-a', 'server_error'],
      ['m-a', 'server_error'],
      ['m-b', 'timeout'],
      ['m-b', 'timeout'],
    ]);
    expect(e.usage).toHaveLength(4);
    const rows = await usageRows();
    expect(rows.map((r) => [r.model_name, r.status, r.total_tokens, r.cost])).toEqual([
      ['m-a', 'error', 0, '0.000000'],
      ['m-a', 'error', 0, '0.000000'],
      ['m-b', 'timeout', 0, '0.000000'],
      ['m-b', 'timeout', 0, '0.000000'],
    ]);
    expect(rows.every((r) => r.error !== null)).toBe(true);
  });

  it('fails at once on HTTP 400, without retry or failover', async () => {
    stub.on('m-a', { kind: 'error', status: 400, message: 'max_tokens is too large' });
    stub.on('m-b', ok('never'));
    const { client, delays } = harness();
    const err = await inUnitOfWork(client);

    expect(err).toBeInstanceOf(LlmError);
    expect(err).toMatchObject({ kind: 'rejected', retryable: false, httpStatus: 400 });
    expect((err as LlmError).message).toContain('max_tokens is too large');
    expect(stub.requests.map((r) => r.model)).toEqual(['m-a']);
    expect(delays).toEqual([]);
    expect((await usageRows()).map((r) => r.status)).toEqual(['error']);
  });

  it('fails over past a model the endpoint does not serve (HTTP 404) without retrying it', async () => {
    stub.on('m-b', ok('b is real'));
    const result = await harness().client.complete(
      request({ settings: settings({ models: ['m-gone', 'm-b'] }) }),
    );
    expect(result).toMatchObject({ model: 'm-b', attempts: 2 });
    expect(stub.requestsFor('m-gone')).toHaveLength(1);
  });

  it('treats malformed JSON as a bad response and fails over to the next model', async () => {
    stub.on('m-a', { kind: 'malformed' });
    stub.on('m-b', ok('well-formed'));
    const { client } = harness();
    const result = await inUnitOfWork(client);

    expect(result).toMatchObject({ content: 'well-formed', model: 'm-b', attempts: 2 });
    expect(stub.requestsFor('m-a')).toHaveLength(1);
    const rows = await usageRows();
    expect(rows.map((r) => [r.model_name, r.status])).toEqual([
      ['m-a', 'error'],
      ['m-b', 'success'],
    ]);
    expect(rows[0]?.error).toContain('malformed JSON');
  });

  it('reports a bad_response LlmError when the only model answers a body without choices', async () => {
    stub.on('m-a', { kind: 'malformed', body: '{"object":"chat.completion","choices":[]}' });
    const err = await harness()
      .client.complete(request({ settings: settings({ models: ['m-a'] }) }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'bad_response', retryable: false });
  });

  it('retries a refused connection as a network failure', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const { client, delays } = harness();
    const err = await client
      .complete(request({ settings: settings({ base_url: `http://127.0.0.1:${port}/v1`, models: ['m-a'] }) }))
      .catch((e: unknown) => e);

    expect(err).toMatchObject({ kind: 'network', retryable: true });
    expect((err as LlmError).attempts).toHaveLength(3);
    expect(delays).toEqual([375, 750]);
  });

  it('tries a recently failed model after a healthy one, and first again once the penalty decays', async () => {
    const { client, clock } = harness({ penaltyHalfLifeMs: 60_000 });
    const s = settings({ max_retries: 0 });
    stub.on('m-a', [{ kind: 'error', status: 500 }, ok('a is back')]);
    stub.on('m-b', ok('b'));

    expect(await client.complete(request({ settings: s }))).toMatchObject({ model: 'm-b' });
    clock.advance(1000);
    expect(await client.complete(request({ settings: s }))).toMatchObject({ model: 'm-b' });
    expect(stub.requests.map((r) => r.model)).toEqual(['m-a', 'm-b', 'm-b']);

    clock.advance(10 * 60_000); // ten half-lives: the penalty is forgotten
    expect(await client.complete(request({ settings: s }))).toMatchObject({
      model: 'm-a',
      content: 'a is back',
    });
  });

  it('keeps one tenant’s failures from reordering another tenant’s models', async () => {
    const { client } = harness();
    const s = settings({ max_retries: 0 });
    stub.on('m-a', [{ kind: 'error', status: 500 }, ok('a for globex')]);
    stub.on('m-b', ok('b'));
    await client.complete(request({ settings: s }));
    const other = await client.complete(request({ tenantId: 'globex', agentId: 'gbot', settings: s }));
    expect(other).toMatchObject({ model: 'm-a', content: 'a for globex' });
  });

  it('never has more than maxConcurrentPerTenant calls of a tenant in flight, and does not hold up other tenants', async () => {
    stub.on('m-acme', { kind: 'success', content: 'acme', delayMs: 80 });
    stub.on('m-globex', { kind: 'success', content: 'globex', delayMs: 80 });
    const { client } = harness({ maxConcurrentPerTenant: 2 });
    const acmeCalls = Array.from({ length: 6 }, () =>
      client.complete(request({ settings: settings({ models: ['m-acme'] }) })),
    );
    const globexCalls = Array.from({ length: 3 }, () =>
      client.complete(
        request({ tenantId: 'globex', agentId: 'gbot', settings: settings({ models: ['m-globex'] }) }),
      ),
    );
    const results = await Promise.all([...acmeCalls, ...globexCalls]);

    expect(results.map((r) => r.content)).toEqual([
      ...Array<string>(6).fill('acme'),
      ...Array<string>(3).fill('globex'),
    ]);
    expect(stub.maxInFlightByModel.get('m-acme')).toBe(2);
    expect(stub.maxInFlightByModel.get('m-globex')).toBe(2);
    expect(stub.maxInFlight).toBe(4);
    const order = stub.requests.map((r) => r.model);
    expect(order.indexOf('m-globex')).toBeLessThan(order.lastIndexOf('m-acme'));
  });

  it('reserves quota before each call, books its usage after, and makes no call when refused', async () => {
    stub.on('m-a', ok('hi'));
    const asked: string[] = [];
    const booked: number[] = [];
    const { client } = harness({
      quota: {
        reserve: (tenantId) => {
          asked.push(tenantId);
          return tenantId === 'globex'
            ? Promise.reject(new RateLimitError('QUOTA_EXCEEDED', 'daily LLM requests used up', 3600))
            : Promise.resolve({ tenantId, requestsKey: 'r', tokensKey: 't' });
        },
        settle: (_ticket, usage) => {
          booked.push(usage.length);
          return Promise.resolve();
        },
      },
    });
    await client.complete(request());
    const refused = await client
      .complete(request({ tenantId: 'globex', agentId: 'gbot' }))
      .catch((e: unknown) => e);

    expect(asked).toEqual(['acme', 'globex']);
    expect(booked).toEqual([1]);
    expect(refused).toBeInstanceOf(RateLimitError);
    expect(refused).toMatchObject({ code: 'QUOTA_EXCEEDED' });
    expect(stub.requests).toHaveLength(1);
  });

  it('answers with the local provider by default, without any network, and records the call', async () => {
    const { client } = harness();
    const result = await inUnitOfWork(client, { settings: LlmSettings.parse({}) });

    expect(result).toMatchObject({ provider: 'local', model: 'maihive-local', attempts: 1, cost: 0 });
    expect((result as LlmCallResult).content).toContain('麦麦');
    expect(stub.requests).toHaveLength(0);
    const rows = await usageRows();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ provider: 'local', model_name: 'maihive-local', status: 'success' });
    expect(rows[0]?.prompt_tokens).toBeGreaterThan(0);
  });

  it('fails without calling when the stored key was sealed under another server key', async () => {
    const foreign = new SecretBox(randomBytes(32)).encrypt(API_KEY);
    const err = await harness()
      .client.complete(request({ settings: settings({ api_key_encrypted: foreign }) }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'rejected', retryable: false });
    expect(stub.requests).toHaveLength(0);
  });

  it('surfaces a failed usage write as the database error instead of retrying the model', async () => {
    stub.on('m-a', ok('answered'));
    const broken: TenantDb = {
      ctx: acme,
      query: () => Promise.reject(new Error('connection lost')),
      rawSql: () => Promise.reject(new Error('connection lost')),
    };
    await expect(harness().client.complete(request({ db: broken }))).rejects.toThrow('connection lost');
    expect(stub.requests).toHaveLength(1);
  });

  it('refuses to record a tenant’s usage in another tenant’s unit of work', async () => {
    const globex = createIsolationContext({ tenantId: 'globex' });
    await expect(
      t.db.withTenant(globex, (db) => harness().client.complete(request({ db }))),
    ).rejects.toBeInstanceOf(IsolationViolationError);
    expect(stub.requests).toHaveLength(0);
  });
});

describe('LlmSettings', () => {
  it('defaults to the local provider with documented defaults', () => {
    expect(LlmSettings.parse({})).toEqual({
      provider: 'local',
      models: [],
      temperature: 0.7,
      max_tokens: 512,
      timeout_ms: 20_000,
      max_retries: 2,
    });
  });

  it('requires a base_url and a model for the openai provider and rejects unknown keys', () => {
    expect(LlmSettings.safeParse({ provider: 'openai' }).success).toBe(false);
    expect(
      LlmSettings.safeParse({ provider: 'openai', base_url: 'http://x/v1', models: ['m'] }).success,
    ).toBe(true);
    expect(LlmSettings.safeParse({ api_key: 'sk-plain' }).success).toBe(false);
    expect(LlmSettings.safeParse({ temperature: 2.5 }).success).toBe(false);
  });
});
