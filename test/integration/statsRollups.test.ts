import { processStatsJob } from '../../src/workers/statsProcessor';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

/** Day buckets summed from hours, and minutes and hours purged past retention, by the hour's stats job. */

let t: TestDatabase;
const H = 3_600_000;
const DAY = 24 * H;
const D0 = Date.UTC(2030, 0, 10);

beforeAll(async () => {
  t = await createTestDatabase();
  await t.admin(`INSERT INTO tenants (tenant_id, name) VALUES ('acme', 'Acme'), ('globex', 'Globex')`);
});
afterAll(async () => {
  await t.close();
});

/** Hour rows as an earlier run of the stats jobs left them (usage and per feature). */
async function seedHour(tenantId: string, at: number, agentId: string, n: number): Promise<void> {
  await t.admin(
    `INSERT INTO usage_stats (tenant_id, granularity, bucket_start, agent_id, messages_in, replies, llm_requests,
                              prompt_tokens, completion_tokens, cost, queue_wait_ms_p50)
     VALUES ($1, 'hour', $2, $3, $4, $4, $4, $4 * 10, $4 * 2, $4 * 0.001, 7)`,
    [tenantId, new Date(at), agentId, n],
  );
  await t.admin(
    `INSERT INTO usage_feature_stats (tenant_id, granularity, bucket_start, agent_id, feature, llm_requests,
                                      prompt_tokens, completion_tokens, cost)
     VALUES ($1, 'hour', $2, $3, 'reply', $4, $4 * 10, $4 * 2, $4 * 0.001)`,
    [tenantId, new Date(at), agentId, n],
  );
}

async function dayRows(tenantId: string, day: number): Promise<Record<string, unknown>[]> {
  const { rows } = await t.admin<Record<string, unknown>>(
    `SELECT agent_id, messages_in, replies, llm_requests, prompt_tokens::int, completion_tokens::int, cost::float8,
            queue_wait_ms_p50
     FROM usage_stats WHERE tenant_id = $1 AND granularity = 'day' AND bucket_start = $2 ORDER BY agent_id`,
    [tenantId, new Date(day)],
  );
  return rows;
}

it("an hour's job rewrites its day as the sum of the day's hours, per agent and feature", async () => {
  await seedHour('acme', D0 + 1 * H, 'a', 3);
  await seedHour('acme', D0 + 5 * H, 'a', 4);
  await seedHour('acme', D0 + 5 * H, 'b', 1);
  await seedHour('acme', D0 + DAY + H, 'a', 100); // the next day: not in this one
  await seedHour('globex', D0 + 2 * H, 'a', 50); // another tenant: never in acme's day
  // The job of hour 23 (no source rows of its own) still rolls its day up.
  await processStatsJob(
    { db: t.db, logger: t.logger },
    { tenantId: 'acme', granularity: 'hour', bucketStart: D0 + 23 * H },
  );
  expect(await dayRows('acme', D0)).toEqual([
    {
      agent_id: 'a',
      messages_in: 7,
      replies: 7,
      llm_requests: 7,
      prompt_tokens: 70,
      completion_tokens: 14,
      cost: 0.007,
      queue_wait_ms_p50: null,
    },
    {
      agent_id: 'b',
      messages_in: 1,
      replies: 1,
      llm_requests: 1,
      prompt_tokens: 10,
      completion_tokens: 2,
      cost: 0.001,
      queue_wait_ms_p50: null,
    },
  ]);
  const { rows: features } = await t.admin(
    `SELECT agent_id, feature, llm_requests FROM usage_feature_stats
     WHERE tenant_id = 'acme' AND granularity = 'day' AND bucket_start = $1 ORDER BY agent_id`,
    [new Date(D0)],
  );
  expect(features).toEqual([
    { agent_id: 'a', feature: 'reply', llm_requests: 7 },
    { agent_id: 'b', feature: 'reply', llm_requests: 1 },
  ]);
  expect(await dayRows('globex', D0)).toEqual([]);

  // A later run after an hour changed replaces the day rather than adding to it.
  await t.admin(
    `UPDATE usage_stats SET messages_in = 10 WHERE tenant_id = 'acme' AND granularity = 'hour' AND bucket_start = $1 AND agent_id = 'b'`,
    [new Date(D0 + 5 * H)],
  );
  await processStatsJob(
    { db: t.db, logger: t.logger },
    { tenantId: 'acme', granularity: 'hour', bucketStart: D0 + 23 * H },
  );
  expect((await dayRows('acme', D0)).map((r) => [r.agent_id, r.messages_in])).toEqual([
    ['a', 7],
    ['b', 10],
  ]);
});

it("purges the tenant's minutes and hours past retention, counted back from the hour, and keeps days", async () => {
  const now = D0 + 40 * DAY;
  await t.admin(
    `INSERT INTO usage_stats (tenant_id, granularity, bucket_start, agent_id, messages_in)
     SELECT tenant_id, g, $1::timestamptz - age, 'a', 1
     FROM unnest(ARRAY['acme', 'globex']) tenant_id,
          (VALUES ('minute', interval '47 hours'), ('minute', interval '49 hours'),
                  ('hour', interval '34 days'), ('hour', interval '36 days'), ('day', interval '38 days')) v(g, age)`,
    [new Date(now)],
  );
  const retention = { minuteHours: 48, hourDays: 35 };
  await processStatsJob(
    { db: t.db, logger: t.logger, retention },
    { tenantId: 'acme', granularity: 'hour', bucketStart: now },
  );
  const left = async (tenantId: string) =>
    (
      await t.admin<{ g: string; age: string }>(
        `SELECT granularity AS g, extract(epoch FROM $2::timestamptz - bucket_start)::text AS age FROM usage_stats
         WHERE tenant_id = $1 AND bucket_start >= $2::timestamptz - interval '60 days' AND bucket_start >= $3
         ORDER BY 1, 2`,
        [tenantId, new Date(now), new Date(D0 + 2 * DAY)],
      )
    ).rows.map((r) => `${r.g}:${Number(r.age) / 3600}h`);
  expect(await left('acme')).toEqual(['day:912h', 'hour:816h', 'minute:47h']);
  expect(await left('globex')).toEqual(['day:912h', 'hour:816h', 'hour:864h', 'minute:47h', 'minute:49h']);
});
