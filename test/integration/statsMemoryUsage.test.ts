import { insertMessages } from '../../src/db/repositories/messages';
import { systemClock } from '../../src/domain/clock';
import { createIsolationContext } from '../../src/domain/isolationContext';
import { LlmClient } from '../../src/llm/llmClient';
import type { StatsJobData } from '../../src/workers/jobs';
import { processMemoryJob } from '../../src/workers/memoryProcessor';
import { processStatsJob } from '../../src/workers/statsProcessor';
import { createTenants } from '../support/fixtures';
import { OpenAiStub } from '../support/openaiStub';
import { startTestApp, type TestApp } from '../support/testApp';

/**
 * A memory extraction's LLM call is usage like a reply's: the memory job schedules the recompute
 * of its minute and hour (as the heartflow does for its calls), and its tokens show up under
 * feature `memory`, exactly.
 */

const PRICES = { 'stub-mem': { prompt: 2, completion: 4 } };
const MEM = { prompt: 77, completion: 13 };
const COST = (MEM.prompt * 2 + MEM.completion * 4) / 1000;

let app: TestApp;
const stub = new OpenAiStub();

beforeAll(async () => {
  await stub.start();
  stub.on('stub-mem', {
    kind: 'success',
    content: '{"memories": []}',
    usage: { prompt_tokens: MEM.prompt, completion_tokens: MEM.completion },
  });
  app = await startTestApp({ env: { LLM_PRICES: JSON.stringify(PRICES) } });
  await createTenants(app, ['acme', 'globex']);
  await app.t.admin(
    `INSERT INTO agents (tenant_id, agent_id, name, config) VALUES ('acme', 'm', 'Mia', $1)`,
    [JSON.stringify({ llm: { provider: 'openai', base_url: stub.baseUrl, models: ['stub-mem'] } })],
  );
}, 60_000);

afterAll(async () => {
  await app.close();
  await stub.close();
});

it("counts a memory extraction call's tokens under feature memory, with its stats scheduled by the memory job", async () => {
  const token = await app.tokenFor({ role: 'tenant_admin', tenantId: 'acme' });
  // One inbound message of two hours ago for the memory job to look at (its own figures belong to
  // that hour, which no job here recomputes): the only LLM call is the extraction's.
  await app.t.admin(
    `INSERT INTO chat_streams (tenant_id, chat_stream_id, agent_id, platform, chat_type)
     VALUES ('acme', 'm1', 'm', 'qq', 'group')`,
  );
  const messageId = 'msg_mem_000001';
  await app.deps.db.withTenant(createIsolationContext({ tenantId: 'acme' }), (db) =>
    insertMessages(db, [
      {
        messageId,
        agentId: 'm',
        platform: 'qq',
        chatStreamId: 'm1',
        direction: 'in',
        content: '我叫小明，我喜欢猫',
        senderUserId: 'u1',
        senderNickname: '小明',
        createdAt: new Date(Date.now() - 2 * 3_600_000),
      },
    ]),
  );
  const llm = new LlmClient({ logger: app.t.logger, prices: PRICES });
  const result = await processMemoryJob(
    {
      db: app.deps.db,
      llm,
      logger: app.t.logger,
      clock: systemClock,
      config: app.deps.configReader,
      queues: app.deps.queues,
    },
    { tenantId: 'acme', agentId: 'm', platform: 'qq', chatStreamId: 'm1', upToMessageId: messageId },
  );
  expect(result).toMatchObject({ scanned: 1, extractor: 'llm' });
  expect(stub.requestsFor('stub-mem')).toHaveLength(1);
  const { rows } = await app.t.admin<{ created_at: Date; request_type: string }>(
    `SELECT created_at, request_type FROM llm_usage WHERE tenant_id = 'acme'`,
  );
  expect(rows.map((r) => r.request_type)).toEqual(['memory']);
  const at = rows[0]!.created_at.getTime();

  // The memory job scheduled the minute and the hour of its call.
  const stats = app.deps.queues.queue('acme', 'stats');
  const scheduled = (await stats.getDelayed()).map((j) => j.data as StatsJobData);
  expect(scheduled.map((d) => [d.granularity, d.bucketStart]).sort()).toEqual([
    ['hour', at - (at % 3_600_000)],
    ['minute', at - (at % 60_000)],
  ]);
  // What the stats workers do with them.
  for (const data of scheduled) await processStatsJob({ db: app.deps.db, logger: app.t.logger }, data);

  const res = await app.request('GET', '/stats/usage?period=1d&group_by=hour', { token });
  expect(res.status).toBe(200);
  expect(res.body.data.by_feature).toEqual([
    {
      feature: 'memory',
      llm_requests: 1,
      tokens_in: MEM.prompt,
      tokens_out: MEM.completion,
      cost: COST,
    },
  ]);
  expect(res.body.data.totals).toMatchObject({
    llm_requests: 1,
    tokens_in: MEM.prompt,
    tokens_out: MEM.completion,
    cost: COST,
  });
  expect(res.body.data.by_agent).toEqual([
    expect.objectContaining({ agent_id: 'm', llm_requests: 1, tokens_in: MEM.prompt }),
  ]);
  // The minute bucket too, and nothing in another tenant.
  const minute = await app.t.admin(
    `SELECT tenant_id, feature, llm_requests, prompt_tokens::int, completion_tokens::int FROM usage_feature_stats
     WHERE granularity = 'minute' ORDER BY tenant_id`,
  );
  expect(minute.rows).toEqual([
    {
      tenant_id: 'acme',
      feature: 'memory',
      llm_requests: 1,
      prompt_tokens: MEM.prompt,
      completion_tokens: MEM.completion,
    },
  ]);
  const admin = await app.tokenFor({ role: 'platform_admin' });
  const tenants = await app.request('GET', '/stats/tenants?period=24h&sort=tokens', { token: admin });
  expect(tenants.status).toBe(200);
  const byId = new Map(
    (tenants.body.data.tenants as { tenant_id: string; tokens_in: number }[]).map((t) => [t.tenant_id, t]),
  );
  expect(byId.get('acme')).toMatchObject({
    llm_requests: 1,
    tokens_in: MEM.prompt,
    tokens_out: MEM.completion,
  });
  expect(byId.get('globex')).toMatchObject({ llm_requests: 0, tokens_in: 0 });
});
