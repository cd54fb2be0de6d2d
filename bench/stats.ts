/**
 * Statistics benchmark (`npm run bench:stats`): 1,000 tenants with 90 days of usage buckets as the
 * stats jobs and their retention leave them (day buckets for 90 days, hour buckets for the 35 days
 * hours are kept, per agent and per feature), then `GET /stats/usage` and `GET /stats/tenants`
 * over HTTP against the real app. Target: p95 ≤ 20 ms each (the seed: 65 ms average). Baseline
 * in the same run: `GET /system/info` (authenticated, one small query), so the ratios hold on a
 * shared machine. Writes bench/results/stats-<timestamp>.json and stats-latest.json.
 */
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { createApp } from '../src/api/app';
import { compose } from '../src/composition';
import { loadConfig } from '../src/config';
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
    await c.query('VACUUM (ANALYZE) usage_stats, usage_feature_stats, tenants');
  });
  return Number(process.hrtime.bigint() - start) / 1e6;
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
    await recreateDatabase(services.databaseAdminUrl, DATABASE, config.appRole, logger);
    console.log(`loading ${SHAPE.tenants} tenants × ${SHAPE.dayBuckets} days of buckets…`);
    const loadMs = await load(adminUrl);
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
