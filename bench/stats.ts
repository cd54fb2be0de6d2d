/**
 * Statistics benchmark (`npm run bench:stats`): 1,000 tenants with 90 days of usage buckets as the
 * stats jobs and their retention leave them (day buckets for 90 days, hour buckets for the 35 days
 * hours are kept, per agent and per feature), then `GET /stats/usage` and `GET /stats/tenants`
 * over HTTP against the real app. Target: p95 ≤ 20 ms each (the seed: 65 ms average). Baseline
 * in the same run: `GET /system/info` (authenticated, one small query), so the ratios hold on a
 * shared machine. Also PostgreSQL's own execution time of `/stats/tenants`' statement against the
 * summed-buckets statement migration 013 replaced (EXPLAIN ANALYZE, interleaved). Writes
 * bench/results/stats-<timestamp>.json and stats-latest.json.
 */
import { once } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { createApp } from '../src/api/app';
import { compose } from '../src/composition';
import { loadConfig } from '../src/config';
import type { PlatformDb } from '../src/db/database';
import { usageByTenant } from '../src/db/repositories/usageRollups';
import { createLogger } from '../src/logger';
import { resolveServices } from '../src/services/localServices';
import { recreateDatabase, withClient, withDatabase } from './lib/dataset';
import { type LatencyStats, latencyStats, seededRandom } from './lib/stats';

const DATABASE = 'maihive_bench_stats';
const SHAPE = { tenants: 1000, dayBuckets: 90, hourBucketDays: 35 };
const REQUESTS = { perCase: 400, warmup: 40 };
const TARGET_P95_MS = 20;

/** Day rows for 90 days and hour rows for 35 days, per tenant (agent `default`, feature `reply`). */
async function load(adminUrl: string): Promise<number> {
  const start = process.hrtime.bigint();
  await withClient(adminUrl, async (c) => {
    await c.query(`INSERT INTO tenants (tenant_id, name)
      SELECT 'bench_t' || lpad(t::text, 4, '0'), 'Bench tenant ' || t FROM generate_series(0, ${SHAPE.tenants - 1}) t`);
    const figures = (g: string, step: string, count: number) => `
      SELECT t.tenant_id, '${g}', date_trunc('${g}', now()) - n * interval '${step}', 'default',
             m, m - m / 5, m / 5, 0, m, m * 300, m * 40, round((m * 0.0021)::numeric, 6)
      FROM tenants t, generate_series(0, ${count - 1}) n,
           LATERAL (SELECT 1 + (hashtext(t.tenant_id || n) & 255) AS m) x
      WHERE t.tenant_id LIKE 'bench_t%'`;
    const hours = SHAPE.hourBucketDays * 24;
    for (const [g, step, count] of [
      ['day', '1 day', SHAPE.dayBuckets],
      ['hour', '1 hour', hours],
    ] as const) {
      await c.query(`INSERT INTO usage_stats (tenant_id, granularity, bucket_start, agent_id, messages_in, replies,
                       no_replies, failures, llm_requests, prompt_tokens, completion_tokens, cost)
                     ${figures(g, step, count)}`);
      await c.query(`INSERT INTO usage_feature_stats (tenant_id, granularity, bucket_start, agent_id, feature,
                       llm_requests, prompt_tokens, completion_tokens, cost)
                     SELECT tenant_id, g, b, a, 'reply', l, p, co, cost FROM (${figures(g, step, count)})
                       AS f(tenant_id, g, b, a, mi, r, nr, fa, l, p, co, cost)`);
    }
    // The running totals the hour jobs keep: migration 013's own back-fill statement.
    const migration = await readFile(path.join('migrations', '013.do.usage-tenant-totals.sql'), 'utf8');
    await c.query(migration.slice(migration.indexOf('INSERT INTO usage_tenant_totals')));
    await c.query('VACUUM (ANALYZE) usage_stats, usage_feature_stats, usage_tenant_totals, tenants');
  });
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/**
 * The cross-tenant statement before migration 013: every bucket of the period summed per tenant.
 * Kept here only as the same-run reference of `explainTenants`.
 */
const SUMMED_BUCKETS = `WITH u AS (
    SELECT tenant_id, sum(messages_in) AS messages_in, sum(replies) AS replies, sum(no_replies) AS no_replies,
      sum(failures) AS failures, sum(llm_requests) AS llm_requests, sum(prompt_tokens) AS prompt_tokens,
      sum(completion_tokens) AS completion_tokens, sum(cost) AS cost FROM usage_stats
    WHERE granularity = $1 AND bucket_start >= $2 AND bucket_start < $3
    GROUP BY tenant_id
  )
  SELECT t.tenant_id, t.name, coalesce(u.messages_in, 0) AS messages_in, coalesce(u.replies, 0) AS replies,
         coalesce(u.no_replies, 0) AS no_replies, coalesce(u.failures, 0) AS failures,
         coalesce(u.llm_requests, 0) AS llm_requests, coalesce(u.prompt_tokens, 0) AS prompt_tokens,
         coalesce(u.completion_tokens, 0) AS completion_tokens, coalesce(u.cost, 0) AS cost,
         count(*) OVER () AS total
  FROM tenants t LEFT JOIN u ON u.tenant_id = t.tenant_id
  ORDER BY coalesce(u.cost, 0) DESC, t.tenant_id DESC
  LIMIT $4 OFFSET $5`;

interface ExplainCase {
  name: string;
  summed_buckets_ms: LatencyStats;
  running_totals_ms: LatencyStats;
  ratio_p50: number;
}

/**
 * PostgreSQL's own execution time (`EXPLAIN (ANALYZE)`) of `/stats/tenants`' statement, as the
 * application role in a platform unit (RLS on), against the summed-buckets statement it replaced,
 * interleaved in the same run: less sensitive to a loaded machine than HTTP round trips.
 */
async function explainTenants(appUrl: string): Promise<ExplainCase[]> {
  const DAY_MS = 86_400_000;
  const rounds = 40;
  const now = Date.now();
  const dayEnd = now - (now % DAY_MS) + DAY_MS;
  const hourEnd = now - (now % 3_600_000) + 3_600_000;
  const periods = [
    { name: '24h (hours)', granularity: 'hour' as const, from: hourEnd - DAY_MS, to: hourEnd },
    { name: '7d (days)', granularity: 'day' as const, from: dayEnd - 7 * DAY_MS, to: dayEnd },
    { name: '30d (days)', granularity: 'day' as const, from: dayEnd - 30 * DAY_MS, to: dayEnd },
    { name: '90d (days)', granularity: 'day' as const, from: dayEnd - 90 * DAY_MS, to: dayEnd },
  ];
  return withClient(appUrl, async (c) => {
    await c.query(`SELECT set_config('app.platform_access', 'on', false)`);
    const executionMs = async (text: string, params: unknown[]) => {
      const { rows } = await c.query<{ 'QUERY PLAN': [{ 'Execution Time': number }] }>(
        `EXPLAIN (ANALYZE, FORMAT JSON) ${text}`,
        params,
      );
      return rows[0]!['QUERY PLAN'][0]['Execution Time'];
    };
    // usageByTenant's own statement and parameters, captured from the repository function.
    const captured = async (p: (typeof periods)[number]) => {
      let statement = { text: '', values: [] as unknown[] };
      const capture = {
        query: (text: string, values: unknown[]) => {
          statement = { text, values };
          return Promise.resolve({ rows: [], rowCount: 0 });
        },
      } as unknown as PlatformDb;
      await usageByTenant(capture, {
        granularity: p.granularity,
        from: new Date(p.from),
        to: new Date(p.to),
        sort: 'cost',
        order: 'desc',
        limit: 20,
        offset: 0,
      });
      return statement;
    };
    const out: ExplainCase[] = [];
    for (const p of periods) {
      const params = [p.granularity, new Date(p.from), new Date(p.to), 20, 0];
      const totals = await captured(p);
      const summed: number[] = [];
      const running: number[] = [];
      for (let i = 0; i < rounds; i++) {
        summed.push(await executionMs(SUMMED_BUCKETS, params));
        running.push(await executionMs(totals.text, totals.values));
      }
      const a = latencyStats(summed);
      const b = latencyStats(running);
      out.push({
        name: p.name,
        summed_buckets_ms: a,
        running_totals_ms: b,
        ratio_p50: Math.round((b.p50_ms / a.p50_ms) * 100) / 100,
      });
    }
    return out;
  });
}

async function measure(
  name: string,
  paths: () => string,
  token: () => string,
  base: string,
): Promise<{ name: string; example: string } & LatencyStats> {
  const one = async () => {
    const p = paths();
    const t0 = process.hrtime.bigint();
    const res = await fetch(`${base}/api/v1${p}`, { headers: { authorization: `Bearer ${token()}` } });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`${p}: HTTP ${res.status}`);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  for (let i = 0; i < REQUESTS.warmup; i++) await one();
  const samples: number[] = [];
  for (let i = 0; i < REQUESTS.perCase; i++) samples.push(await one());
  return { name, example: paths(), ...latencyStats(samples) };
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const config = loadConfig({ ...process.env, LOG_LEVEL: 'warn', REDIS_PREFIX: 'mh-bench-stats' });
  const logger = createLogger({ level: 'warn' });
  const services = await resolveServices(config, logger, { database: DATABASE });
  try {
    const adminUrl = withDatabase(services.databaseAdminUrl, DATABASE);
    // BENCH_STATS_REUSE=1 measures the database a previous run loaded (loading takes minutes on
    // a busy machine); the schema must be current (the run that loaded it ran the migrations).
    let loadMs = 0;
    if (process.env.BENCH_STATS_REUSE === '1') {
      console.log(`reusing the loaded database ${DATABASE}`);
    } else {
      await recreateDatabase(services.databaseAdminUrl, DATABASE, config.appRole, logger);
      console.log(`loading ${SHAPE.tenants} tenants × ${SHAPE.dayBuckets} days of buckets…`);
      loadMs = await load(adminUrl);
    }
    const { rows } = await withClient(adminUrl, (c) =>
      c.query<{ g: string; n: string }>(
        `SELECT granularity AS g, count(*)::text AS n FROM usage_stats GROUP BY 1 ORDER BY 1`,
      ),
    );
    const rowCounts = Object.fromEntries(rows.map((r) => [r.g, Number(r.n)]));
    console.log(`loaded in ${(loadMs / 1000).toFixed(1)} s:`, rowCounts);

    const composition = await compose({
      config,
      logger,
      databaseUrl: withDatabase(services.databaseUrl, DATABASE),
      redisUrl: services.redisUrl,
    });
    const server = createApp(composition.deps).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const issue = async (role: 'platform_admin' | 'tenant_admin', tenantId?: string) =>
        (await composition.deps.tokens.issueAccessToken({ sub: 'bench', role, tenantId })).token;
      const rand = seededRandom(14);
      const tenantTokens = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          issue('tenant_admin', `bench_t${String(i * 20).padStart(4, '0')}`),
        ),
      );
      const adminToken = await issue('platform_admin');
      const anyTenant = () => tenantTokens[Math.floor(rand() * tenantTokens.length)]!;
      const admin = () => adminToken;
      const sorts = ['cost', 'messages_in', 'tokens', 'llm_requests', 'tenant_id'];
      const cases = [
        await measure('baseline GET /system/info', () => '/system/info', anyTenant, base),
        await measure(
          'GET /stats/usage?period=30d&group_by=day',
          () => '/stats/usage?period=30d&group_by=day',
          anyTenant,
          base,
        ),
        await measure(
          'GET /stats/usage?period=90d&group_by=day',
          () => '/stats/usage?period=90d&group_by=day',
          anyTenant,
          base,
        ),
        await measure(
          'GET /stats/usage?period=7d&group_by=hour',
          () => '/stats/usage?period=7d&group_by=hour',
          anyTenant,
          base,
        ),
        await measure(
          'GET /stats/usage?period=30d&group_by=hour',
          () => '/stats/usage?period=30d&group_by=hour',
          anyTenant,
          base,
        ),
        await measure(
          'GET /stats/tenants?period=7d (sort varies, page 1-5)',
          () =>
            `/stats/tenants?period=7d&sort=${sorts[Math.floor(rand() * sorts.length)]}&page=${1 + Math.floor(rand() * 5)}`,
          admin,
          base,
        ),
        await measure(
          'GET /stats/tenants?period=30d&sort=cost',
          () => '/stats/tenants?period=30d&sort=cost',
          admin,
          base,
        ),
        await measure(
          'GET /stats/tenants?period=24h&sort=cost (hours)',
          () => '/stats/tenants?period=24h&sort=cost',
          admin,
          base,
        ),
      ];
      const baseline = cases[0]!;
      console.log('EXPLAIN ANALYZE of /stats/tenants: summed buckets (before 013) vs running totals…');
      const explain = await explainTenants(withDatabase(services.databaseUrl, DATABASE));
      const result = {
        benchmark: 'stats',
        started_at: startedAt.toISOString(),
        finished_at: new Date().toISOString(),
        machine: {
          cpus: os.cpus().length,
          cpu_model: os.cpus()[0]?.model,
          node: process.version,
          loadavg: os.loadavg(),
        },
        explain_stats_tenants: explain,
        shape: { ...SHAPE, usage_stats_rows: rowCounts, load_ms: Math.round(loadMs) },
        requests: REQUESTS,
        target_p95_ms: TARGET_P95_MS,
        cases: cases.map((c) => ({
          ...c,
          p95_vs_baseline: Math.round((c.p95_ms / baseline.p95_ms) * 100) / 100,
          meets_target: c === baseline ? undefined : c.p95_ms <= TARGET_P95_MS,
        })),
      };
      const dir = path.join('bench', 'results');
      await mkdir(dir, { recursive: true });
      const file = path.join(dir, `stats-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
      const json = `${JSON.stringify(result, null, 2)}\n`;
      await writeFile(file, json);
      await writeFile(path.join(dir, 'stats-latest.json'), json);
      for (const c of result.cases) {
        console.log(
          `${c.name.padEnd(56)} p50 ${c.p50_ms.toFixed(2).padStart(7)}  p95 ${c.p95_ms.toFixed(2).padStart(7)}  p99 ${c.p99_ms
            .toFixed(2)
            .padStart(
              7,
            )} ms  ×${c.p95_vs_baseline} ${c.meets_target === undefined ? '' : c.meets_target ? 'ok' : 'MISSED'}`,
        );
      }
      for (const e of explain) {
        console.log(
          `EXPLAIN /stats/tenants ${e.name.padEnd(12)} summed buckets p50 ${e.summed_buckets_ms.p50_ms.toFixed(2)} ms, running totals p50 ${e.running_totals_ms.p50_ms.toFixed(2)} ms (×${e.ratio_p50})`,
        );
      }
      console.log(
        `load average ${os
          .loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')}`,
      );
      console.log(`\nwrote ${file} and bench/results/stats-latest.json`);
    } finally {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await composition.close();
    }
  } finally {
    await services.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
