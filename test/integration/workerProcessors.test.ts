import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { type Job, QueueEvents, Worker } from 'bullmq';
import type { Redis } from 'ioredis';

import { EffectiveConfigReader } from '../../src/configuration/effectiveConfig';
import type { Database } from '../../src/db/database';
import { listDeadLetters } from '../../src/db/repositories/deliveries';
import { insertMessages, type NewMessage } from '../../src/db/repositories/messages';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyWebhookSignature } from '../../src/delivery/signature';
import { AgentConfig, AgentConfigPatch, applyAgentConfigPatch } from '../../src/domain/agentConfig';
import { createIsolationContext } from '../../src/domain/isolationContext';
import { percentile } from '../../src/domain/usageBuckets';
import { UnrecoverableJobError } from '../../src/errors';
import { LlmClient } from '../../src/llm/llmClient';
import { SecretBox } from '../../src/llm/secretBox';
import { tenantQueueName } from '../../src/queues/names';
import { asBullmqFailure, retryDecision } from '../../src/queues/retryDecision';
import { TenantQueues } from '../../src/queues/tenantQueues';
import { keyspace } from '../../src/redis/keys';
import {
  type DeliveryDeps,
  deliveryJobRunner,
  processDeliveryJob,
  retryDeadLetter,
  WebhookDeliveryError,
} from '../../src/workers/deliveryProcessor';
import { enqueueDelivery, enqueueStats, type MemoryJobData, memoryJobId } from '../../src/workers/jobs';
import { type MemoryDeps, processMemoryJob } from '../../src/workers/memoryProcessor';
import { processStatsJob } from '../../src/workers/statsProcessor';
import { OpenAiStub } from '../support/openaiStub';
import { createTestDatabase, createTestRedis, type TestDatabase } from '../support/testDatabase';

let t: TestDatabase;
let redisHandle: ReturnType<typeof createTestRedis>;
let redis: Redis;
let bullPrefix: string;
const stub = new OpenAiStub();
const T0 = Date.UTC(2030, 0, 1, 10, 0, 0);
let now = T0;
const clock = { now: () => now };

beforeAll(async () => {
  t = await createTestDatabase();
  redisHandle = createTestRedis();
  redis = redisHandle.redis;
  bullPrefix = redisHandle.appPrefix;
  await stub.start();
  await t.admin(`INSERT INTO tenants (tenant_id, name) VALUES ('acme', 'Acme'), ('globex', 'Globex')`);
  await t.admin(
    `INSERT INTO agents (tenant_id, agent_id, name, config) VALUES
       ('acme', 'bot', '麦麦', '{}'),
       ('acme', 'smart', 'Smart', $1),
       ('acme', 'hook', 'Hook', '{}'),
       ('globex', 'hook', 'G', '{}')`,
    [JSON.stringify({ llm: { provider: 'openai', base_url: stub.baseUrl, models: ['mem-model'] } })],
  );
});

afterAll(async () => {
  await stub.close();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${bullPrefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
  await redisHandle.close();
  await t.close();
});

beforeEach(() => {
  now = T0;
  stub.reset();
});

let seq = 0;
/** Stores messages of a stream (creating it), `gapMs` apart from `start`; returns their ids. */
async function seed(
  tenantId: string,
  agentId: string,
  stream: string,
  contents: readonly string[],
  o: { chatType?: 'group' | 'private'; start?: number; gapMs?: number; direction?: 'in' | 'out' } = {},
): Promise<string[]> {
  await t.admin(
    `INSERT INTO chat_streams (tenant_id, chat_stream_id, agent_id, platform, chat_type)
     VALUES ($1, $2, $3, 'qq', $4) ON CONFLICT DO NOTHING`,
    [tenantId, stream, agentId, o.chatType ?? 'group'],
  );
  const start = o.start ?? T0 - 3_600_000;
  const rows: NewMessage[] = contents.map((content, i) => ({
    messageId: `msg_${String(++seq).padStart(6, '0')}`,
    agentId,
    platform: 'qq',
    chatStreamId: stream,
    direction: o.direction ?? 'in',
    content,
    senderUserId: `u${i % 3}`,
    senderNickname: ['张三', 'Bob', '李四'][i % 3]!,
    createdAt: new Date(start + i * (o.gapMs ?? 1000)),
  }));
  await t.db.withTenant(createIsolationContext({ tenantId }), (db) => insertMessages(db, rows));
  return rows.map((r) => r.messageId);
}

/**
 * The workers' one configuration read, uncached (TTL 0): rows written by a test are seen by the
 * next job at once.
 */
function configReader(db: Database = t.db): EffectiveConfigReader {
  return new EffectiveConfigReader({
    db,
    redis,
    keys: keyspace(redisHandle.prefix.replace(/:$/, '')),
    tenants: { get: () => Promise.resolve(undefined) },
    clock,
    logger: t.logger,
    ttlMs: 0,
  });
}

/** Sets a category's values at one scope of acme's configuration, as PUT /config stores them. */
async function setConfig(
  tenantId: string,
  category: string,
  target:
    { scope: 'tenant' } | { scope: 'chat'; chatStreamId: string } | { scope: 'platform'; platform: string },
  config: Record<string, unknown>,
): Promise<void> {
  await t.admin(
    `INSERT INTO config_entries (tenant_id, category, scope, platform, chat_stream_id, config, version)
     VALUES ($1, $2, $3, $4, $5, $6, 1)`,
    [
      tenantId,
      category,
      target.scope,
      'platform' in target ? target.platform : null,
      'chatStreamId' in target ? target.chatStreamId : null,
      JSON.stringify(config),
    ],
  );
}

function memoryDeps(db: Database = t.db, extra: Partial<MemoryDeps> = {}): MemoryDeps {
  return {
    db,
    config: configReader(db),
    llm: new LlmClient({ logger: t.logger, clock, sleep: () => Promise.resolve(), rng: () => 0.5 }),
    logger: t.logger,
    clock,
    ...extra,
  };
}

async function memoriesOf(stream: string, agentId = 'bot') {
  const { rows } = await t.admin<{
    memory_id: string;
    memory_type: string;
    scope: string;
    content: string;
    chat_stream_id: string | null;
    metadata: Record<string, unknown>;
  }>(
    `SELECT memory_id, memory_type, scope, content, chat_stream_id, metadata FROM memory_chest
     WHERE tenant_id = 'acme' AND agent_id = $2 AND (chat_stream_id = $1 OR scope = 'agent')
     ORDER BY memory_id`,
    [stream, agentId],
  );
  return rows.sort((a, b) => a.memory_type.localeCompare(b.memory_type) || (a.content < b.content ? -1 : 1));
}

const chatter = (n: number) => Array.from({ length: n }, (_, i) => `今天的第${i}条闲聊，大家讨论咖啡和电影`);

describe('memory jobs', () => {
  it('stores facts and preferences, not questions, and a summary once 20 inbound messages are in', async () => {
    const contents = [
      '我喜欢猫',
      'My name is Bob',
      '我是不是很笨？',
      'Do you like cats?',
      '我是程序员',
      ...chatter(20),
    ];
    const ids = await seed('acme', 'bot', 'g1', contents);
    await seed('acme', 'bot', 'g1', ['好的，我记住了'], { direction: 'out', start: T0 - 3_600_000 + 500 });
    const job: MemoryJobData = {
      tenantId: 'acme',
      agentId: 'bot',
      platform: 'qq',
      chatStreamId: 'g1',
      upToMessageId: ids[ids.length - 1]!,
    };
    const first = await processMemoryJob(memoryDeps(), job);
    expect(first).toMatchObject({ scanned: 25, summaries: 1, extractor: 'heuristic' });
    const stored = await memoriesOf('g1');
    expect(stored.filter((m) => m.memory_type !== 'summary').map((m) => [m.memory_type, m.content])).toEqual([
      ['fact', "Bob's name is Bob"],
      ['fact', 'Bob是程序员'],
      ['preference', '张三喜欢猫'],
    ]);
    expect(stored.every((m) => m.scope === 'chat' && m.chat_stream_id === 'g1')).toBe(true);
    const summaries = stored.filter((m) => m.memory_type === 'summary');
    expect(summaries).toHaveLength(1);
    expect(summaries[0]!.metadata).toMatchObject({
      message_count: 20,
      source_message_ids: [ids[0], ids[19]],
      extractor: 'heuristic',
    });
    expect(summaries[0]!.content).toContain('20条消息');
    expect(first.stored).toBe(4);

    // The same job again (a retry, a duplicate) stores nothing.
    const again = await processMemoryJob(memoryDeps(), job);
    expect(again).toMatchObject({ scanned: 0, stored: 0, summaries: 0 });
    expect(await memoriesOf('g1')).toEqual(stored);
    expect(memoryJobId(job)).toBe(`memory.g1.${job.upToMessageId}`);
  });

  it("reads the chat's memory settings through the effective configuration: one chat only", async () => {
    const contents = ['我喜欢猫', 'My name is Bob', ...chatter(4)];
    const last: Record<string, string> = {};
    for (const chat of ['m-off', 'm-ret', 'm-plain']) {
      const ids = await seed('acme', 'bot', chat, contents);
      last[chat] = ids[ids.length - 1]!;
    }
    await setConfig('acme', 'memory', { scope: 'chat', chatStreamId: 'm-off' }, { enabled: false });
    await setConfig(
      'acme',
      'memory',
      { scope: 'chat', chatStreamId: 'm-ret' },
      { retention_days: 30, summary_messages: 5 },
    );
    const run = (chat: string) =>
      processMemoryJob(memoryDeps(), {
        tenantId: 'acme',
        agentId: 'bot',
        platform: 'qq',
        chatStreamId: chat,
        upToMessageId: last[chat]!,
      });
    const stored = async (chat: string) =>
      (
        await t.admin<{ memory_type: string; expires_at: Date | null }>(
          `SELECT memory_type, expires_at FROM memory_chest WHERE tenant_id = 'acme' AND chat_stream_id = $1`,
          [chat],
        )
      ).rows;

    // Memory off for m-off: the job does nothing there.
    expect(await run('m-off')).toMatchObject({ scanned: 0, stored: 0, skipped: 'disabled' });
    expect(await stored('m-off')).toEqual([]);
    // m-ret: every memory expires 30 days on, and a summary is due after 5 messages.
    expect(await run('m-ret')).toMatchObject({ scanned: 6, summaries: 1 });
    const kept = await stored('m-ret');
    expect(kept.length).toBeGreaterThanOrEqual(3);
    expect(kept.every((m) => m.expires_at?.getTime() === T0 + 30 * 86_400_000)).toBe(true);
    // The chat beside them keeps the defaults: no expiry, no summary before 20 messages.
    expect(await run('m-plain')).toMatchObject({ scanned: 6, summaries: 0 });
    const plain = await stored('m-plain');
    expect(plain.length).toBeGreaterThanOrEqual(2);
    expect(plain.every((m) => m.expires_at === null && m.memory_type !== 'summary')).toBe(true);
  });

  it('summarises a shorter tail once it is old enough, and only up to the job’s point', async () => {
    const ids = await seed('acme', 'bot', 'g2', chatter(6), { start: T0 - 7 * 3_600_000 });
    const later = await seed('acme', 'bot', 'g2', chatter(2), { start: T0 });
    const deps = memoryDeps(t.db, {
      thresholds: { everyMessages: 20, maxAgeMs: 6 * 3_600_000, minMessages: 5 },
    });
    const r = await processMemoryJob(deps, {
      tenantId: 'acme',
      agentId: 'bot',
      platform: 'qq',
      chatStreamId: 'g2',
      upToMessageId: ids[5]!,
    });
    expect(r).toMatchObject({ scanned: 6, summaries: 1 });
    const [summary] = (await memoriesOf('g2')).filter((m) => m.memory_type === 'summary');
    expect(summary!.metadata).toMatchObject({ message_count: 6, source_message_ids: [ids[0], ids[5]] });
    // The two newer messages are a fresh tail: not due yet.
    const r2 = await processMemoryJob(deps, {
      tenantId: 'acme',
      agentId: 'bot',
      platform: 'qq',
      chatStreamId: 'g2',
      upToMessageId: later[1]!,
    });
    expect(r2).toMatchObject({ scanned: 2, summaries: 0 });
  });

  it('stores what someone says about themselves in a private chat agent-wide', async () => {
    await seed('acme', 'bot', 'p1', ['我喜欢猫', '记住，周五下午开会'], { chatType: 'private' });
    await processMemoryJob(memoryDeps(), {
      tenantId: 'acme',
      agentId: 'bot',
      platform: 'qq',
      chatStreamId: 'p1',
    });
    const { rows } = await t.admin<{ scope: string; content: string; chat_stream_id: string | null }>(
      `SELECT scope, content, chat_stream_id FROM memory_chest
       WHERE tenant_id = 'acme' AND (chat_stream_id = 'p1' OR scope = 'agent') ORDER BY scope`,
    );
    expect(rows).toEqual([
      { scope: 'agent', content: '张三喜欢猫', chat_stream_id: null },
      { scope: 'chat', content: 'Bob让我记住：“周五下午开会”', chat_stream_id: 'p1' },
    ]);
  });

  it('writes one summary when two jobs of a stream race', async () => {
    const ids = await seed('acme', 'bot', 'g3', chatter(20));
    const job = {
      tenantId: 'acme',
      agentId: 'bot',
      platform: 'qq',
      chatStreamId: 'g3',
      upToMessageId: ids[19]!,
    };
    const [a, b] = await Promise.all([
      processMemoryJob(memoryDeps(), job),
      processMemoryJob(memoryDeps(t.openDatabase()), job),
    ]);
    expect(a.summaries + b.summaries).toBe(1);
    expect((await memoriesOf('g3')).filter((m) => m.memory_type === 'summary')).toHaveLength(1);
  });

  it('extracts with the agent’s LLM when it is not local, recording its usage', async () => {
    const ids = await seed('acme', 'smart', 's1', ['我喜欢爬山', '今天好累']);
    stub.on('mem-model', {
      kind: 'success',
      content: `{"type":"preference","content":"张三喜欢爬山","importance":0.7,"about":"speaker","message_id":"${ids[0]}"}`,
      usage: { prompt_tokens: 120, completion_tokens: 30 },
    });
    const r = await processMemoryJob(memoryDeps(), {
      tenantId: 'acme',
      agentId: 'smart',
      platform: 'qq',
      chatStreamId: 's1',
    });
    expect(r).toMatchObject({ extractor: 'llm', stored: 1 });
    const stored = await memoriesOf('s1', 'smart');
    expect(stored.map((m) => [m.content, m.metadata.extractor])).toEqual([['张三喜欢爬山', 'llm']]);
    expect(stub.requestsFor('mem-model')).toHaveLength(1);
    const usage = await t.admin(
      `SELECT request_type, prompt_tokens, status FROM llm_usage WHERE tenant_id = 'acme' AND agent_id = 'smart'`,
    );
    expect(usage.rows).toEqual([{ request_type: 'memory', prompt_tokens: 120, status: 'success' }]);
  });

  it('falls back to the heuristics when the model answers something that is not JSON lines', async () => {
    await seed('acme', 'smart', 's2', ['我是医生']);
    stub.on('mem-model', { kind: 'success', content: 'Sure! The user is a doctor.' });
    const r = await processMemoryJob(memoryDeps(), {
      tenantId: 'acme',
      agentId: 'smart',
      platform: 'qq',
      chatStreamId: 's2',
    });
    expect(r.stored).toBe(1);
    const stored = await memoriesOf('s2', 'smart');
    expect(stored.map((m) => [m.content, m.metadata.extractor])).toEqual([['张三是医生', 'heuristic']]);
  });

  it('memory.max_long_term: storing over the cap removes the agent’s least valuable memories, no one else’s', async () => {
    await t.admin(
      `INSERT INTO agents (tenant_id, agent_id, name, config) VALUES
         ('acme', 'capped', 'C', '{}'), ('acme', 'beside', 'B', '{}'), ('globex', 'capped', 'G', '{}')`,
    );
    const old = new Date(T0 - 10 * 86_400_000);
    const recent = new Date(T0 - 86_400_000);
    // [tenant, agent, id, importance, last_accessed, created_at, locked]
    const rows: [string, string, string, number, Date | null, Date, boolean][] = [
      ['acme', 'capped', 'low-never-read', 0.1, null, recent, false],
      ['acme', 'capped', 'low-read', 0.1, recent, old, false],
      ['acme', 'capped', 'tie-older', 0.2, null, old, false],
      ['acme', 'capped', 'tie-newer', 0.2, null, recent, false],
      ['acme', 'capped', 'locked-zero', 0, null, old, true],
      ['acme', 'capped', 'high', 0.9, null, old, false],
      ['acme', 'beside', 'beside-zero', 0, null, old, false],
      ['globex', 'capped', 'globex-zero', 0, null, old, false],
    ];
    for (const [tenant, agent, id, importance, accessed, at, locked] of rows) {
      await t.admin(
        `INSERT INTO memory_chest (tenant_id, memory_id, agent_id, scope, content, importance, last_accessed,
                                   created_at, locked)
         VALUES ($1, $2, $3, 'agent', $2, $4, $5, $6, $7)`,
        [tenant, id, agent, importance, accessed, at, locked],
      );
    }
    const ids = await seed('acme', 'capped', 'cap-1', ['我喜欢猫', 'My name is Bob']);
    await setConfig('acme', 'memory', { scope: 'chat', chatStreamId: 'cap-1' }, { max_long_term: 5 });
    const r = await processMemoryJob(memoryDeps(), {
      tenantId: 'acme',
      agentId: 'capped',
      platform: 'qq',
      chatStreamId: 'cap-1',
      upToMessageId: ids[1]!,
    });
    // 6 + 2 new = 8 over a cap of 5: the three least valuable unlocked ones go — lowest importance
    // first, the never-read before the read one, then of a tie the older.
    expect(r).toMatchObject({ stored: 2, evicted: 3 });
    const left = async (tenant: string, agent: string) =>
      (
        await t.admin<{ memory_id: string; importance: number }>(
          `SELECT memory_id, importance FROM memory_chest WHERE tenant_id = $1 AND agent_id = $2 ORDER BY memory_id`,
          [tenant, agent],
        )
      ).rows;
    const kept = await left('acme', 'capped');
    expect(kept).toHaveLength(5);
    expect(kept.map((m) => m.memory_id).filter((id) => !id.startsWith('mem_'))).toEqual([
      'high',
      'locked-zero',
      'tie-newer',
    ]);
    expect(kept.filter((m) => m.memory_id.startsWith('mem_')).every((m) => m.importance > 0.2)).toBe(true);
    // Another agent of the tenant and the other tenant's agent of the same id are untouched.
    expect((await left('acme', 'beside')).map((m) => m.memory_id)).toEqual(['beside-zero']);
    expect((await left('globex', 'capped')).map((m) => m.memory_id)).toEqual(['globex-zero']);

    // Another chat of the agent without the override (no cap by default) removes nothing.
    const more = await seed('acme', 'capped', 'cap-2', ['我是程序员']);
    expect(
      await processMemoryJob(memoryDeps(), {
        tenantId: 'acme',
        agentId: 'capped',
        platform: 'qq',
        chatStreamId: 'cap-2',
        upToMessageId: more[0]!,
      }),
    ).toMatchObject({ stored: 1, evicted: 0 });
    expect(await left('acme', 'capped')).toHaveLength(6);
  });

  it('memory.max_short_term: the extraction reads at most that many messages per round (per LLM call)', async () => {
    const ids = await seed('acme', 'smart', 's-short', [
      '我喜欢爬山',
      '今天好累',
      '我是医生',
      '周末去海边',
      '好的',
    ]);
    stub.on('mem-model', { kind: 'success', content: '' });
    await setConfig('acme', 'memory', { scope: 'chat', chatStreamId: 's-short' }, { max_short_term: 2 });
    const r = await processMemoryJob(memoryDeps(), {
      tenantId: 'acme',
      agentId: 'smart',
      platform: 'qq',
      chatStreamId: 's-short',
      upToMessageId: ids[4]!,
    });
    expect(r).toMatchObject({ scanned: 5, extractor: 'llm' });
    // 5 messages in rounds of 2: three extraction calls, each shown at most 2 messages.
    const calls = stub.requestsFor('mem-model');
    expect(calls).toHaveLength(3);
    const shown = calls.map((c) => ids.filter((id) => JSON.stringify(c.body).includes(id)).length);
    expect(shown).toEqual([2, 2, 1]);
  });

  it('skips a stream that does not exist in the job’s tenant', async () => {
    const r = await processMemoryJob(memoryDeps(), {
      tenantId: 'globex',
      agentId: 'hook',
      platform: 'qq',
      chatStreamId: 'g1',
    });
    expect(r.skipped).toBe('unknown_stream');
  });
});

describe('stats jobs', () => {
  const M = Date.UTC(2030, 0, 2, 8, 15); // a minute bucket
  const H = Date.UTC(2030, 0, 2, 8); // its hour

  async function addOutcome(agentId: string, at: number, status: string, wait: number, took: number) {
    const [id] = await seed('acme', agentId, `st-${agentId}`, ['hi'], { start: at });
    await t.admin(
      `UPDATE messages SET status = $2, queue_wait_ms = $3, processing_time_ms = $4, processed_at = created_at
       WHERE tenant_id = 'acme' AND message_id = $1`,
      [id, status, wait, took],
    );
  }

  async function addUsage(agentId: string, at: number, prompt: number, completion: number, cost: number) {
    await t.admin(
      `INSERT INTO llm_usage (tenant_id, agent_id, provider, model_name, request_type, prompt_tokens,
                              completion_tokens, total_tokens, cost, status, created_at)
       VALUES ('acme', $1, 'local', 'maihive-local', 'replyer', $2::int, $3::int, $2::int + $3::int, $4, 'success', $5)`,
      [agentId, prompt, completion, cost, new Date(at)],
    );
  }

  async function bucketRows(granularity: string, start: number) {
    const { rows } = await t.admin<{
      agent_id: string;
      messages_in: number;
      replies: number;
      queue_wait_ms_p50: number | null;
    }>(
      `SELECT agent_id, messages_in, replies, no_replies, failures, llm_requests, prompt_tokens::int,
              completion_tokens::int, cost::float8 AS cost, queue_wait_ms_p50, queue_wait_ms_p99,
              processing_ms_p50, processing_ms_p99
       FROM usage_stats WHERE tenant_id = 'acme' AND granularity = $1 AND bucket_start = $2 ORDER BY agent_id`,
      [granularity, new Date(start)],
    );
    return rows;
  }

  it('recomputes minute and hour buckets from messages and llm_usage, idempotently', async () => {
    const waits = [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560];
    for (const [i, w] of waits.entries()) {
      await addOutcome('bot', M + i * 1000, i < 6 ? 'replied' : i < 9 ? 'no_reply' : 'failed', w, 100 + i);
    }
    await addOutcome('hook', M + 30_000, 'replied', 7, 70);
    await addOutcome('bot', M + 120_000, 'replied', 9, 90); // another minute, same hour
    await addOutcome('bot', M - 16 * 60_000, 'replied', 1, 1); // the hour before
    await addUsage('bot', M + 5000, 100, 20, 0.5);
    await addUsage('bot', M + 6000, 50, 10, 0.25);
    await addUsage('smart', M + 7000, 10, 1, 0.01); // LLM use without messages
    await addUsage('bot', M + 60_000, 1000, 1000, 1); // next minute

    const run = () =>
      Promise.all([
        processStatsJob(
          { db: t.db, logger: t.logger },
          { tenantId: 'acme', granularity: 'minute', bucketStart: M },
        ),
        processStatsJob(
          { db: t.db, logger: t.logger },
          { tenantId: 'acme', granularity: 'hour', bucketStart: H },
        ),
      ]);
    await run();
    const minute = await bucketRows('minute', M);
    expect(minute).toEqual([
      {
        agent_id: 'bot',
        messages_in: 10,
        replies: 6,
        no_replies: 3,
        failures: 1,
        llm_requests: 2,
        prompt_tokens: 150,
        completion_tokens: 30,
        cost: 0.75,
        queue_wait_ms_p50: percentile(waits, 50),
        queue_wait_ms_p99: 2560,
        processing_ms_p50: 104,
        processing_ms_p99: 109,
      },
      expect.objectContaining({
        agent_id: 'hook',
        messages_in: 1,
        replies: 1,
        llm_requests: 0,
        queue_wait_ms_p50: 7,
      }),
      expect.objectContaining({
        agent_id: 'smart',
        messages_in: 0,
        llm_requests: 1,
        queue_wait_ms_p50: null,
      }),
    ]);
    expect(minute[0]!.queue_wait_ms_p50).toBe(80);
    const hour = await bucketRows('hour', H);
    expect(hour.find((r) => r.agent_id === 'bot')).toMatchObject({
      messages_in: 11,
      replies: 7,
      llm_requests: 3,
      prompt_tokens: 1150,
      cost: 1.75,
    });

    // Retries and duplicates rewrite the same figures.
    await run();
    await run();
    expect(await bucketRows('minute', M)).toEqual(minute);
    expect(await bucketRows('hour', H)).toEqual(hour);

    // A late message of the minute is counted once on the next run; an agent whose figures are gone leaves.
    await addOutcome('bot', M + 59_000, 'replied', 3, 3);
    await t.admin(`DELETE FROM llm_usage WHERE tenant_id = 'acme' AND agent_id = 'smart'`);
    await run();
    const after = await bucketRows('minute', M);
    expect(after.map((r) => [r.agent_id, r.messages_in, r.replies])).toEqual([
      ['bot', 11, 7],
      ['hook', 1, 1],
    ]);
  });

  it('never writes another tenant’s figures', async () => {
    await processStatsJob(
      { db: t.db, logger: t.logger },
      { tenantId: 'globex', granularity: 'minute', bucketStart: M },
    );
    const { rows } = await t.admin(`SELECT count(*)::int AS n FROM usage_stats WHERE tenant_id = 'globex'`);
    expect(rows[0]).toEqual({ n: 0 });
  });

  it('rejects an unaligned bucket as unrecoverable', async () => {
    await expect(
      processStatsJob(
        { db: t.db, logger: t.logger },
        { tenantId: 'acme', granularity: 'minute', bucketStart: M + 1 },
      ),
    ).rejects.toBeInstanceOf(UnrecoverableJobError);
  });

  it('collapses a burst of stats triggers into one delayed job per bucket', async () => {
    const queues = new TenantQueues(redis, bullPrefix);
    try {
      for (let i = 0; i < 5; i++) await enqueueStats(queues, 'acme', M + i * 1000, M + 10_000);
      const jobs = await queues.queue('acme', 'stats').getJobs(['delayed', 'waiting']);
      expect(jobs.map((j) => (j.data as { granularity: string }).granularity).sort()).toEqual([
        'hour',
        'minute',
      ]);
      const minuteJob = jobs.find((j) => (j.data as { granularity: string }).granularity === 'minute')!;
      expect(minuteJob.data).toEqual({ tenantId: 'acme', granularity: 'minute', bucketStart: M });
      expect(minuteJob.opts.delay).toBe(60_000 + 5000 - 10_000);
      await queues.queue('acme', 'stats').obliterate({ force: true });
    } finally {
      await queues.close();
    }
  });
});

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A real webhook receiver on port 0 answering from a script of statuses (the last one repeats). */
class Receiver {
  readonly received: Received[] = [];
  private statuses: number[] = [200];
  private delayMs = 0;
  private server: Server | undefined;
  url = '';

  answer(statuses: number[], delayMs = 0): void {
    this.statuses = [...statuses];
    this.delayMs = delayMs;
    this.received.length = 0;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        const status = this.statuses.length > 1 ? this.statuses.shift()! : this.statuses[0]!;
        const timer = setTimeout(() => {
          if (res.destroyed) return;
          res.writeHead(status, { 'content-type': 'text/plain' });
          res.end(status < 300 ? 'ok' : 'nope');
        }, this.delayMs);
        res.on('close', () => clearTimeout(timer));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks/maihive`;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

describe('delivery jobs', () => {
  const receiver = new Receiver();
  const SECRET = 'acme-webhook-secret';
  /** The worker's server key, which sealed acme's secret. */
  const box = new SecretBox(randomBytes(32));
  let deps: DeliveryDeps;

  /** Stores an agent's delivery settings as the API does: the secret sealed. */
  async function storeSealed(tenantId: string, agentId: string, delivery: Record<string, unknown>) {
    const config = applyAgentConfigPatch(AgentConfig.parse({}), AgentConfigPatch.parse({ delivery }), box);
    await t.admin(`UPDATE agents SET config = $3 WHERE tenant_id = $1 AND agent_id = $2`, [
      tenantId,
      agentId,
      JSON.stringify(config),
    ]);
  }

  beforeAll(async () => {
    await receiver.start();
    await storeSealed('acme', 'hook', { webhook_url: receiver.url, webhook_secret: SECRET });
    // globex's row is from before secrets were sealed: plaintext.
    await t.admin(`UPDATE agents SET config = $1 WHERE tenant_id = 'globex' AND agent_id = 'hook'`, [
      JSON.stringify({ delivery: { webhook_url: receiver.url, webhook_secret: 'globex-secret' } }),
    ]);
    deps = { db: t.db, logger: t.logger, clock, config: configReader(), timeoutMs: 500, secretBox: box };
  });

  afterAll(async () => {
    await receiver.close();
  });

  async function reply(agentId = 'hook', tenantId = 'acme', stream = `d-${agentId}`): Promise<string> {
    const [question] = await seed(tenantId, agentId, stream, ['@bot 在吗'], { start: T0 });
    const replyId = `${question}.r`;
    await t.db.withTenant(createIsolationContext({ tenantId }), (db) =>
      insertMessages(db, [
        {
          messageId: replyId,
          agentId,
          platform: 'qq',
          chatStreamId: stream,
          direction: 'out',
          content: '在的！有什么可以帮你？',
          replyTo: question,
          createdAt: new Date(T0 + 1500),
        },
      ]),
    );
    return replyId;
  }

  const data = (messageId: string, tenantId = 'acme', agentId = 'hook') => ({ tenantId, agentId, messageId });

  async function deliveryRow(messageId: string) {
    const { rows } = await t.admin(
      `SELECT status, attempts, last_http_status, last_error FROM deliveries WHERE message_id = $1`,
      [messageId],
    );
    return rows[0];
  }

  it('posts the reply as a signed JSON body that verifies, once', async () => {
    const { rows } = await t.admin<{ config: { delivery: Record<string, string> } }>(
      `SELECT config FROM agents WHERE tenant_id = 'acme' AND agent_id = 'hook'`,
    );
    // Stored sealed only; the worker opens it to sign.
    expect(JSON.stringify(rows[0]?.config)).not.toContain(SECRET);
    expect(rows[0]?.config.delivery.webhook_secret_encrypted).toMatch(/^v1:/);
    receiver.answer([200]);
    const id = await reply();
    const outcome = await processDeliveryJob(deps, data(id), { attempt: 1, maxAttempts: 6 });
    expect(outcome).toEqual({ status: 'delivered', httpStatus: 200, attempt: 1 });
    expect(receiver.received).toHaveLength(1);
    const got = receiver.received[0]!;
    expect(JSON.parse(got.body)).toEqual({
      event: 'message.replied',
      tenant_id: 'acme',
      agent_id: 'hook',
      platform: 'qq',
      chat_stream_id: 'd-hook',
      message_id: id,
      reply_to: id.slice(0, -2),
      content: '在的！有什么可以帮你？',
      created_at: new Date(T0 + 1500).toISOString(),
    });
    expect(got.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(got.headers['x-maihive-delivery']).toBe(id);
    expect(got.headers[TIMESTAMP_HEADER.toLowerCase()]).toBe(String(T0 / 1000));
    const verify = (secret: string, body = got.body) =>
      verifyWebhookSignature({
        secret,
        body,
        timestampHeader: got.headers[TIMESTAMP_HEADER.toLowerCase()] as string,
        signatureHeader: got.headers[SIGNATURE_HEADER.toLowerCase()] as string,
        nowMs: T0 + 1000,
      });
    expect(verify(SECRET)).toEqual({ ok: true });
    expect(verify('globex-secret')).toEqual({ ok: false, reason: 'mismatch' });
    expect(verify(SECRET, got.body.replace('在的', '不在'))).toEqual({ ok: false, reason: 'mismatch' });
    expect(await deliveryRow(id)).toEqual({
      status: 'delivered',
      attempts: 1,
      last_http_status: 200,
      last_error: null,
    });

    // A duplicate job does not post again.
    expect(await processDeliveryJob(deps, data(id), { attempt: 1, maxAttempts: 6 })).toEqual({
      status: 'skipped',
      reason: 'already_delivered',
    });
    expect(receiver.received).toHaveLength(1);
  });

  it('retries on 500 and a timeout, then succeeds', async () => {
    receiver.answer([500, 200]);
    const id = await reply();
    await expect(processDeliveryJob(deps, data(id), { attempt: 1, maxAttempts: 3 })).rejects.toBeInstanceOf(
      WebhookDeliveryError,
    );
    expect(await deliveryRow(id)).toBeUndefined();
    const ok = await processDeliveryJob(deps, data(id), { attempt: 2, maxAttempts: 3 });
    expect(ok).toEqual({ status: 'delivered', httpStatus: 200, attempt: 2 });
    expect(receiver.received.map((r) => r.headers['x-maihive-attempt'])).toEqual(['1', '2']);

    receiver.answer([200], 2000);
    const slow = await reply();
    const err = await processDeliveryJob(deps, data(slow), { attempt: 1, maxAttempts: 3 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WebhookDeliveryError);
    expect((err as Error).message).toContain('timed out');
  });

  it('dead-letters after the last attempt, and an operator can requeue it', async () => {
    receiver.answer([503]);
    const id = await reply();
    for (const attempt of [1, 2]) {
      await expect(processDeliveryJob(deps, data(id), { attempt, maxAttempts: 3 })).rejects.toBeInstanceOf(
        WebhookDeliveryError,
      );
    }
    expect(await deliveryRow(id)).toBeUndefined();
    await expect(processDeliveryJob(deps, data(id), { attempt: 3, maxAttempts: 3 })).rejects.toBeInstanceOf(
      WebhookDeliveryError,
    );
    expect(await deliveryRow(id)).toEqual({
      status: 'dead_letter',
      attempts: 3,
      last_http_status: 503,
      last_error: 'HTTP 503',
    });
    const listed = await t.db.withTenant(createIsolationContext({ tenantId: 'acme' }), (db) =>
      listDeadLetters(db, { limit: 10 }),
    );
    expect(listed.items.map((d) => d.message_id)).toContain(id);
    const other = await t.db.withTenant(createIsolationContext({ tenantId: 'globex' }), (db) =>
      listDeadLetters(db, { limit: 10 }),
    );
    expect(other.total).toBe(0);

    const queues = new TenantQueues(redis, bullPrefix);
    try {
      expect(await retryDeadLetter({ db: t.db, queues }, 'globex', id)).toBe(false);
      expect(await retryDeadLetter({ db: t.db, queues }, 'acme', id)).toBe(true);
      expect(await deliveryRow(id)).toMatchObject({ status: 'requeued' });
      const job = await queues.queue('acme', 'delivery').getJob(`delivery.${id}.r1`);
      expect(job?.data).toEqual(data(id));
      await queues.queue('acme', 'delivery').obliterate({ force: true });
    } finally {
      await queues.close();
    }
  });

  it("sends a chat's replies to the webhook its own scope sets, signed only with that scope's secret", async () => {
    const chatReceiver = new Receiver();
    await chatReceiver.start();
    try {
      receiver.answer([200]);
      chatReceiver.answer([200]);
      // d-vip overrides the URL only: the agent's secret must not sign for another receiver.
      const unsigned = await reply('hook', 'acme', 'd-vip');
      await setConfig(
        'acme',
        'delivery',
        { scope: 'chat', chatStreamId: 'd-vip' },
        { webhook_url: chatReceiver.url },
      );
      expect(await processDeliveryJob(deps, data(unsigned), { attempt: 1, maxAttempts: 6 })).toMatchObject({
        status: 'delivered',
      });
      expect(receiver.received).toHaveLength(0);
      expect(chatReceiver.received).toHaveLength(1);
      expect(chatReceiver.received[0]!.headers[SIGNATURE_HEADER.toLowerCase()]).toBeUndefined();
      expect(JSON.parse(chatReceiver.received[0]!.body)).toMatchObject({ chat_stream_id: 'd-vip' });

      // d-vip2 sets URL and secret (sealed, as PUT /config stores it): signed with its own secret.
      const signed = await reply('hook', 'acme', 'd-vip2');
      chatReceiver.answer([200]);
      await setConfig(
        'acme',
        'delivery',
        { scope: 'chat', chatStreamId: 'd-vip2' },
        { webhook_url: chatReceiver.url, webhook_secret_encrypted: box.encrypt('vip-secret') },
      );
      await processDeliveryJob(deps, data(signed), { attempt: 1, maxAttempts: 6 });
      const got = chatReceiver.received[0]!;
      const verify = (secret: string) =>
        verifyWebhookSignature({
          secret,
          body: got.body,
          timestampHeader: got.headers[TIMESTAMP_HEADER.toLowerCase()] as string,
          signatureHeader: got.headers[SIGNATURE_HEADER.toLowerCase()] as string,
          nowMs: T0,
        });
      expect(verify('vip-secret')).toEqual({ ok: true });
      expect(verify(SECRET).ok).toBe(false);

      // The agent's other chats still go to the agent's webhook.
      const usual = await reply();
      await processDeliveryJob(deps, data(usual), { attempt: 1, maxAttempts: 6 });
      expect(receiver.received).toHaveLength(1);
      expect(JSON.parse(receiver.received[0]!.body)).toMatchObject({ chat_stream_id: 'd-hook' });
    } finally {
      await chatReceiver.close();
    }
  });

  it('still signs with a secret stored in plaintext before secrets were sealed', async () => {
    receiver.answer([200]);
    const id = await reply('hook', 'globex');
    expect(await processDeliveryJob(deps, data(id, 'globex'), { attempt: 1, maxAttempts: 6 })).toMatchObject({
      status: 'delivered',
    });
    const got = receiver.received[0]!;
    const verdict = verifyWebhookSignature({
      secret: 'globex-secret',
      body: got.body,
      timestampHeader: got.headers[TIMESTAMP_HEADER.toLowerCase()] as string,
      signatureHeader: got.headers[SIGNATURE_HEADER.toLowerCase()] as string,
      nowMs: T0,
    });
    expect(verdict).toEqual({ ok: true });
  });

  it('dead-letters, sending nothing, when the server key cannot open the sealed secret', async () => {
    receiver.answer([200]);
    const id = await reply();
    const wrongKey = { ...deps, secretBox: new SecretBox(randomBytes(32)) };
    const err = await processDeliveryJob(wrongKey, data(id), { attempt: 1, maxAttempts: 6 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UnrecoverableJobError);
    expect((err as Error).message).toMatch(/webhook secret cannot be opened with MAIHIVE_SECRET_KEY/);
    expect(receiver.received).toHaveLength(0);
    expect(await deliveryRow(id)).toMatchObject({ status: 'dead_letter', last_http_status: null });
  });

  it('gives up at once on a 4xx refusal', async () => {
    receiver.answer([404]);
    const id = await reply();
    await expect(processDeliveryJob(deps, data(id), { attempt: 1, maxAttempts: 6 })).rejects.toBeInstanceOf(
      UnrecoverableJobError,
    );
    expect(await deliveryRow(id)).toMatchObject({
      status: 'dead_letter',
      attempts: 1,
      last_http_status: 404,
    });
  });

  it('skips agents without a webhook, inbound messages, and messages of another tenant', async () => {
    receiver.answer([200]);
    const plain = await reply('bot');
    expect(
      await processDeliveryJob(deps, data(plain, 'acme', 'bot'), { attempt: 1, maxAttempts: 6 }),
    ).toEqual({
      status: 'skipped',
      reason: 'no_webhook',
    });
    const acmeReply = await reply();
    expect(
      await processDeliveryJob(deps, data(acmeReply.slice(0, -2)), { attempt: 1, maxAttempts: 6 }),
    ).toEqual({
      status: 'skipped',
      reason: 'not_a_reply',
    });
    // globex's job naming acme's message: not found in globex, so never sent with globex's secret.
    expect(await processDeliveryJob(deps, data(acmeReply, 'globex'), { attempt: 1, maxAttempts: 6 })).toEqual(
      {
        status: 'skipped',
        reason: 'message_not_found',
      },
    );
    expect(receiver.received).toHaveLength(0);
  });

  it('runs under a real BullMQ worker: backoff retries, then success; a refusal fails at once', async () => {
    receiver.answer([503, 503, 200]);
    const retried = await reply();
    const queues = new TenantQueues(redis, bullPrefix);
    const name = tenantQueueName('acme', 'delivery');
    const runner = deliveryJobRunner(deps);
    const workerConnection = redis.duplicate({ maxRetriesPerRequest: null });
    const eventsConnection = redis.duplicate({ maxRetriesPerRequest: null });
    // The retry-or-fail decision the dispatcher applies to what the processor throws.
    const decided = (job: Job) =>
      runner(job, 'acme').catch((err: Error) => {
        throw asBullmqFailure(
          err,
          retryDecision(err, { attemptsMade: job.attemptsMade, attempts: job.opts.attempts ?? 1 }),
        );
      });
    const worker = new Worker(name, decided, {
      connection: workerConnection,
      prefix: bullPrefix,
    });
    const events = new QueueEvents(name, { connection: eventsConnection, prefix: bullPrefix });
    try {
      await events.waitUntilReady();
      const fast = { attempts: 4, backoff: { type: 'exponential' as const, delay: 20 } };
      await enqueueDelivery(queues, data(retried), { jobOptions: fast });
      const job = (await queues.queue('acme', 'delivery').getJob(`delivery.${retried}`))!;
      await expect(job.waitUntilFinished(events, 10_000)).resolves.toEqual({
        status: 'delivered',
        httpStatus: 200,
        attempt: 3,
      });
      expect(receiver.received.map((r) => r.headers['x-maihive-attempt'])).toEqual(['1', '2', '3']);

      receiver.answer([400]);
      const refused = await reply();
      await enqueueDelivery(queues, data(refused), { jobOptions: fast });
      const refusedJob = (await queues.queue('acme', 'delivery').getJob(`delivery.${refused}`))!;
      await expect(refusedJob.waitUntilFinished(events, 10_000)).rejects.toThrow(/refused/);
      expect(receiver.received).toHaveLength(1);
      expect(await deliveryRow(refused)).toMatchObject({ status: 'dead_letter', last_http_status: 400 });

      // Enqueueing the same reply again is a no-op (deterministic job id).
      await enqueueDelivery(queues, data(retried), { jobOptions: fast });
      expect(
        await queues.queue('acme', 'delivery').getJobCounts('waiting', 'delayed', 'completed'),
      ).toMatchObject({
        waiting: 0,
        delayed: 0,
        completed: 1,
      });
    } finally {
      await worker.close();
      await events.close();
      workerConnection.disconnect();
      eventsConnection.disconnect();
      await queues.queue('acme', 'delivery').obliterate({ force: true });
      await queues.close();
    }
  });
});
