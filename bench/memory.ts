/**
 * Memory benchmark (`npm run bench:memory [-- --memories=N]`): memory search and store at scale.
 * Loads N memories (default 1,000,000) over 10 tenants, a tenth of them in the searched tenant,
 * with synthetic Chinese, English and mixed texts (bench/lib/memoryText.ts); then measures, as
 * the application role under row-level security:
 *   * search p50/p95/p99 of Chinese and of English queries (searchMemories in a read unit,
 *     `Database.readTenant`, as GET /memory/search runs it), and search + access count in one
 *     transaction (as the heartflow prompt runs it);
 *   * a same-run baseline: the naive substring scan of the tenant's memories (strpos, no index);
 *   * store throughput, single (storeOrStrengthen, one unit of work per memory) and batched
 *     (insertMemoriesIfAbsent, 500 per statement);
 *   * the sizes of the table and of the search index.
 * Writes bench/results/memory-<timestamp>.json and memory-latest.json. `--reuse` keeps an earlier
 * run's database, `--no-http` skips the HTTP part, `--server-cpu-prof` writes a CPU profile of
 * the HTTP server to bench/results/memory-logs/cpuprof/.
 */
import os from 'node:os';
import path from 'node:path';

import pg from 'pg';

import { loadConfig } from '../src/config';
import { Database, type TenantDb } from '../src/db/database';
import { migrate } from '../src/db/migrate';
import { storeOrStrengthen } from '../src/db/repositories/memories';
import { insertMemoriesIfAbsent, type MemoryInsert } from '../src/db/repositories/memoryExtraction';
import { searchMemories, touchMemories } from '../src/db/repositories/memorySearch';
import { createIsolationContext } from '../src/domain/isolationContext';
import { createLogger } from '../src/logger';
import { resolveServices } from '../src/services/localServices';
import { recreateDatabase, tenantId, withClient, withDatabase } from './lib/dataset';
import { adminToken, dataOf, request } from './lib/isolation/http';
import { startTopology } from './lib/isolation/topology';
import { chineseQuery, englishQuery, memoryText } from './lib/memoryText';
import { writeResult } from './lib/queueBench';
import { latencyStats, msSince, seededRandom, timed } from './lib/stats';

const DATABASE = 'maihive_bench_memory';
const TENANTS = 10;
const SEARCHED = tenantId(0);
const LOAD_BATCH = 5_000;
const LOAD_CONNECTIONS = 2;
const SEARCHES = { perLanguage: 400, warmup: 50, baseline: 20, limit: 10, explained: 200, http: 250 };
const STORES = { single: 500, batches: 20, batchSize: 500 };
const TARGETS = { search_p95_ms: 10, batched_store_per_s: 2_000 };

function sizeArg(): number {
  const arg = process.argv.find((a) => a.startsWith('--memories='));
  const n = arg ? Number(arg.slice('--memories='.length)) : 1_000_000;
  if (!Number.isInteger(n) || n < TENANTS * 100)
    throw new Error(`--memories must be an integer >= ${TENANTS * 100}`);
  return n;
}

function row(memoryId: string, content: string, i: number, factOnly?: boolean): MemoryInsert {
  return {
    memoryId,
    agentId: 'default',
    scope: i % 3 === 0 ? 'agent' : i % 3 === 1 ? 'platform' : 'chat',
    platform: i % 3 === 0 ? null : 'qq',
    chatStreamId: i % 3 === 2 ? `c${i % 50}` : null,
    title: null,
    content,
    memoryType: factOnly
      ? 'fact'
      : (['fact', 'preference', 'conversation', 'emotion', 'summary'] as const)[i % 5]!,
    importance: Math.round(((i * 7919) % 100) / 10) / 10,
    tags: [],
    metadata: {},
  };
}

/**
 * Bulk load as the owner: multi-row inserts (unnest, 500 rows a statement) on LOAD_CONNECTIONS
 * connections at once without waiting for the WAL flush (synchronous_commit off), the GIN index
 * dropped during the load and built after it. Most of a row's cost is the SQL tokenizer of the
 * generated `search_vector` column, so the load runs as fast as the connections keep cores busy.
 */
async function load(adminUrl: string, total: number) {
  const rng = seededRandom(11);
  const start = process.hrtime.bigint();
  const owner = new pg.Pool({
    connectionString: adminUrl,
    max: LOAD_CONNECTIONS,
    options: '-c synchronous_commit=off',
  });
  try {
    await owner.query(`INSERT INTO tenants (tenant_id, name)
      SELECT 'bench_t' || lpad(t::text, 3, '0'), 'Bench tenant ' || t FROM generate_series(0, ${TENANTS - 1}) t`);
    // Rebuilt after the load as the migrations define it (migration 012's operator class, which
    // the app needs for an indexed search under RLS, and its pending-list limit).
    const { rows: def } = await owner.query<{ d: string }>(
      `SELECT pg_get_indexdef('memory_chest_search'::regclass) AS d`,
    );
    await owner.query('DROP INDEX memory_chest_search');
    const searched = Math.round(total / 10);
    let generated = 0;
    let loaded = 0;
    // One batch of LOAD_BATCH rows at a time per connection; texts are drawn in order from one
    // seeded generator, so the data set does not depend on the connections' timing.
    const nextBatch = () => {
      if (generated >= total) return undefined;
      const n = Math.min(LOAD_BATCH, total - generated);
      const byTenant = new Map<string, MemoryInsert[]>();
      for (let k = 0; k < n; k++) {
        const i = generated + k;
        // The first tenth goes to the searched tenant, the rest round-robin to the nine others.
        const t = i < searched ? SEARCHED : tenantId(1 + (i % (TENANTS - 1)));
        const list = byTenant.get(t) ?? [];
        list.push(row(`mem_b${i}`, memoryText(rng), i));
        byTenant.set(t, list);
      }
      generated += n;
      return { n, byTenant };
    };
    const loader = async () => {
      for (let batch = nextBatch(); batch; batch = nextBatch()) {
        for (const [t, list] of batch.byTenant) {
          for (let k = 0; k < list.length; k += 500) {
            await insertMemoriesIfAbsent(
              {
                ctx: createIsolationContext({ tenantId: t }),
                query: (q, p) => owner.query(q, p as unknown[]),
                rawSql: (q, p) => owner.query(q, p as unknown[]),
              },
              list.slice(k, k + 500),
            );
          }
        }
        const before = loaded;
        loaded += batch.n;
        if (Math.floor(loaded / 100_000) > Math.floor(before / 100_000))
          console.log(`  ${loaded} loaded (${(msSince(start) / 1000).toFixed(0)} s)`);
      }
    };
    await Promise.all(Array.from({ length: LOAD_CONNECTIONS }, loader));
    const loadMs = msSince(start);
    const indexMs = await timed(() =>
      owner.query(`SET maintenance_work_mem = '256MB';
                   ${def[0]!.d}`),
    );
    await owner.query('VACUUM (ANALYZE) memory_chest');
    const { rows } = await owner.query<{ table: string; search: string; all: string }>(
      `SELECT pg_relation_size('memory_chest')::text AS table, pg_relation_size('memory_chest_search')::text AS search,
              pg_total_relation_size('memory_chest')::text AS all`,
    );
    return {
      load_ms: Math.round(loadMs),
      load_connections: LOAD_CONNECTIONS,
      rows_per_s_loaded: Math.round((total * 1000) / loadMs),
      search_index_build_ms: Math.round(indexMs),
      table_bytes: Number(rows[0]!.table),
      search_index_bytes: Number(rows[0]!.search),
      total_relation_bytes: Number(rows[0]!.all),
    };
  } finally {
    await owner.end();
  }
}

/**
 * `--reuse`: the database of an earlier run, if it holds exactly the bench's memories of this
 * size (stores of that run removed, new migrations applied), else undefined (load afresh).
 */
async function reusable(adminUrl: string, total: number, appRole: string) {
  try {
    const n = await withClient(adminUrl, async (c) => {
      await c.query(`DELETE FROM memory_chest WHERE memory_id NOT LIKE 'mem\\_b%'`);
      return Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM memory_chest')).rows[0]!.n);
    });
    if (n !== total) return undefined;
  } catch {
    return undefined;
  }
  await migrate({ adminUrl, appRole, logger: createLogger({ level: 'warn' }) });
  return withClient(adminUrl, async (c) => {
    await c.query('VACUUM (ANALYZE) memory_chest');
    const { rows } = await c.query<{ table: string; search: string; all: string }>(
      `SELECT pg_relation_size('memory_chest')::text AS table, pg_relation_size('memory_chest_search')::text AS search,
              pg_total_relation_size('memory_chest')::text AS all`,
    );
    return {
      reused: true,
      table_bytes: Number(rows[0]!.table),
      search_index_bytes: Number(rows[0]!.search),
      total_relation_bytes: Number(rows[0]!.all),
    };
  });
}

async function measureSearch(app: Database, queries: string[], touch: boolean) {
  const ctx = createIsolationContext({ tenantId: SEARCHED });
  const samples: number[] = [];
  let hits = 0;
  for (const [i, query] of queries.entries()) {
    const search = async (db: TenantDb) => {
      const r = await searchMemories(db, { query, limit: SEARCHES.limit, now: Date.now() });
      hits += r.memories.length;
      return r.memories.map((m) => m.memory_id);
    };
    // As GET /memory/search runs it (a read unit: one round trip); with the access count, as a
    // prompt does (search and count in one transaction).
    const ms = await timed(() =>
      touch
        ? app.withTenant(ctx, async (db) => touchMemories(db, await search(db)))
        : app.readTenant(ctx, search),
    );
    if (i >= SEARCHES.warmup) samples.push(ms);
  }
  return { ...latencyStats(samples), mean_results: Math.round((hits / queries.length) * 10) / 10 };
}

/** The naive way: a substring scan of the tenant's memories (what an unindexed LIKE does). */
async function measureBaseline(app: Database, queries: string[]) {
  const ctx = createIsolationContext({ tenantId: SEARCHED });
  const samples: number[] = [];
  for (const query of queries) {
    const needle = query.split(' ').at(-1)!;
    samples.push(
      await timed(() =>
        app.withTenant(ctx, (db) =>
          db.query(
            `SELECT memory_id FROM memory_chest WHERE tenant_id = $1 AND strpos(lower(content), $2) > 0
             ORDER BY importance DESC, created_at DESC LIMIT 10`,
            [SEARCHED, needle],
          ),
        ),
      ),
    );
  }
  return latencyStats(samples);
}

const BENCH_ADMIN = { username: 'benchadmin', password: 'bench-admin-password-0123' };

/**
 * Search as a user meets it: the server started like `npm start` (every role in one process,
 * `src/main.ts` through tsx) on the bench database, an agent API key of the searched tenant's
 * `default` agent, `GET /memory/search` one request at a time over a keep-alive connection;
 * beside it, interleaved request by request, the same-run baseline `GET /auth/me` (the same
 * authentication, no database work) so that the ratio holds on a loaded machine.
 */
async function measureHttp(adminUrl: string, redisUrl: string, zh: string[], en: string[]) {
  const logDir = path.resolve(__dirname, 'results', 'memory-logs');
  const topology = await startTopology('single', {
    databaseAdminUrl: adminUrl,
    redisUrl,
    redisPrefix: 'mhbmem',
    bootstrapAdmin: `${BENCH_ADMIN.username}:${BENCH_ADMIN.password}`,
    jwtSecret: 'bench-jwt-secret-bench-jwt-secret-0123456789',
    secretKey: 'bench-server-key-bench-server-key-0123456789',
    dataDir: path.join(os.tmpdir(), `maihive-bench-memory-${process.pid}`),
    logDir,
    // The periodic purge stays out of the measurement.
    extraEnv: { MEMORY_PURGE_INTERVAL_MS: '0' },
    // `--server-cpu-prof`: a V8 CPU profile of the server, written when it stops.
    nodeOptions: process.argv.includes('--server-cpu-prof')
      ? ['--cpu-prof', `--cpu-prof-dir=${path.join(logDir, 'cpuprof')}`]
      : undefined,
  });
  try {
    const admin = await adminToken(topology.url, BENCH_ADMIN.username, BENCH_ADMIN.password);
    const made = await request(topology.url, 'POST', '/auth/api-keys', {
      headers: { authorization: `Bearer ${admin}`, 'x-tenant-id': SEARCHED },
      body: { name: 'bench-memory', role: 'agent', agent_id: 'default' },
    });
    if (made.status !== 201) throw new Error(`api key: HTTP ${made.status} ${JSON.stringify(made.json)}`);
    const headers = { 'x-api-key': dataOf<{ api_key: string }>(made).api_key };
    const one = async (p: string) => {
      const t0 = performance.now();
      const res = await request(topology.url, 'GET', p, { headers });
      const ms = performance.now() - t0;
      if (res.status !== 200)
        throw new Error(`${p}: HTTP ${res.status} ${JSON.stringify(res.json).slice(0, 300)}`);
      return { ms, res };
    };
    const run = async (queries: string[]) => {
      const search: number[] = [];
      const baseline: number[] = [];
      let hits = 0;
      for (const [i, query] of queries.entries()) {
        const q = `/memory/search?limit=${SEARCHES.limit}&query=${encodeURIComponent(query)}`;
        const s = await one(q);
        const b = await one('/auth/me');
        hits += dataOf<{ memories: unknown[] }>(s.res).memories.length;
        if (i < SEARCHES.warmup) continue;
        search.push(s.ms);
        baseline.push(b.ms);
      }
      const st = latencyStats(search);
      const bt = latencyStats(baseline);
      return {
        search: { ...st, mean_results: Math.round((hits / queries.length) * 10) / 10 },
        baseline_auth_me: bt,
        p95_over_baseline: Math.round((st.p95_ms / bt.p95_ms) * 100) / 100,
      };
    };
    return { zh: await run(zh), en: await run(en) };
  } finally {
    await topology.stop();
  }
}

/**
 * PostgreSQL's own time for the search statements (EXPLAIN ANALYZE's execution time, summed over
 * a search's statements), as the application role under RLS: a figure the machine's other load
 * inflates far less than wall-clock latencies (no client, no scheduling of this process).
 */
async function measureServerTime(app: Database, queries: string[]) {
  const ctx = createIsolationContext({ tenantId: SEARCHED });
  const samples: number[] = [];
  for (const query of queries) {
    await app.withTenant(ctx, async (db) => {
      let ms = 0;
      const explaining = {
        ...db,
        ctx: db.ctx,
        query: async (text: string, params?: readonly unknown[]) => {
          const r = await db.query<{ 'QUERY PLAN': [{ 'Execution Time': number }] }>(
            `EXPLAIN (ANALYZE, FORMAT JSON) ${text}`,
            params,
          );
          ms += r.rows[0]!['QUERY PLAN'][0]['Execution Time'];
          // The rows themselves (the stages that follow depend on them), untimed.
          return db.query(text, params);
        },
      } as unknown as typeof db;
      await searchMemories(explaining, { query, limit: SEARCHES.limit, now: Date.now() });
      samples.push(ms);
    });
  }
  return latencyStats(samples);
}

async function measureStores(app: Database) {
  const rng = seededRandom(99);
  const ctx = createIsolationContext({ tenantId: SEARCHED });
  const singleMs = await timed(async () => {
    for (let i = 0; i < STORES.single; i++) {
      await app.withTenant(ctx, (db) =>
        storeOrStrengthen(db, { ...row(`mem_s${i}`, memoryText(rng), i, true), expiresAt: null }),
      );
    }
  });
  const batchedMs = await timed(async () => {
    for (let b = 0; b < STORES.batches; b++) {
      const list = Array.from({ length: STORES.batchSize }, (_, k) =>
        row(`mem_x${b}_${k}`, memoryText(rng), k),
      );
      await app.withTenant(ctx, (db) => insertMemoriesIfAbsent(db, list));
    }
  });
  const batched = STORES.batches * STORES.batchSize;
  return {
    single: {
      memories: STORES.single,
      ms: Math.round(singleMs),
      per_s: Math.round((STORES.single * 1000) / singleMs),
    },
    batched: {
      memories: batched,
      batch_size: STORES.batchSize,
      ms: Math.round(batchedMs),
      per_s: Math.round((batched * 1000) / batchedMs),
    },
  };
}

async function main(): Promise<void> {
  const total = sizeArg();
  const startedAt = new Date();
  const config = loadConfig();
  const logger = createLogger({ level: 'warn' });
  const services = await resolveServices(config, logger, { database: DATABASE });
  try {
    const adminUrl = withDatabase(services.databaseAdminUrl, DATABASE);
    let dataset: Record<string, number | boolean> | undefined = process.argv.includes('--reuse')
      ? await reusable(adminUrl, total, config.appRole)
      : undefined;
    if (dataset) console.log(`reusing the ${total} memories of ${DATABASE} (--reuse)`);
    else {
      await recreateDatabase(services.databaseAdminUrl, DATABASE, config.appRole, logger);
      console.log(
        `loading ${total} memories over ${TENANTS} tenants (${Math.round(total / 10)} in ${SEARCHED})…`,
      );
      const loaded = await load(adminUrl, total);
      console.log(
        `loaded in ${(loaded.load_ms / 1000).toFixed(1)} s, index built in ${loaded.search_index_build_ms} ms`,
      );
      dataset = loaded;
    }
    const app = new Database({
      url: withDatabase(services.databaseUrl, DATABASE),
      poolMax: 4,
      connectTimeoutMs: config.db.connectTimeoutMs,
      statementTimeoutMs: 60_000,
      logger,
      applicationName: 'maihive-bench-memory',
    });
    try {
      const rng = seededRandom(7);
      const n = SEARCHES.perLanguage + SEARCHES.warmup;
      const zh = Array.from({ length: n }, () => chineseQuery(rng));
      const en = Array.from({ length: n }, () => englishQuery(rng));
      const search = {
        zh: await measureSearch(app, zh, false),
        en: await measureSearch(app, en, false),
        zh_with_access_count: await measureSearch(app, zh.slice(0, 200), true),
        en_with_access_count: await measureSearch(app, en.slice(0, 200), true),
      };
      const serverTime = {
        zh: await measureServerTime(app, zh.slice(SEARCHES.warmup, SEARCHES.warmup + SEARCHES.explained)),
        en: await measureServerTime(app, en.slice(SEARCHES.warmup, SEARCHES.warmup + SEARCHES.explained)),
      };
      console.log('in process:', JSON.stringify({ search, serverTime }));
      const http = process.argv.includes('--no-http')
        ? undefined
        : await measureHttp(
            adminUrl,
            services.redisUrl,
            zh.slice(0, SEARCHES.http),
            en.slice(0, SEARCHES.http),
          );
      if (http) console.log('over HTTP:', JSON.stringify(http));
      const baseline = {
        zh: await measureBaseline(app, zh.slice(0, SEARCHES.baseline)),
        en: await measureBaseline(app, en.slice(0, SEARCHES.baseline)),
      };
      const store = await measureStores(app);
      const pgVersion = await withClient(
        adminUrl,
        async (c) =>
          (await c.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v,
      );
      const cpus = os.cpus();
      const finishedAt = new Date();
      const result = {
        benchmark: 'memory',
        started_at: startedAt.toISOString(),
        finished_at: finishedAt.toISOString(),
        machine: {
          cpus: cpus.length,
          cpu_model: cpus[0]?.model ?? 'unknown',
          load_avg_1m: Math.round(os.loadavg()[0]! * 100) / 100,
          node: process.version,
          pg_server_version: pgVersion,
        },
        dataset: {
          memories: total,
          tenants: TENANTS,
          searched_tenant_memories: Math.round(total / 10),
          ...dataset,
        },
        settings: { searches: SEARCHES, stores: STORES },
        search,
        search_postgres_execution_time: serverTime,
        search_over_http: http,
        baseline_substring_scan: baseline,
        ratios: {
          zh_p50_baseline_over_search: Math.round((baseline.zh.p50_ms / search.zh.p50_ms) * 10) / 10,
          en_p50_baseline_over_search: Math.round((baseline.en.p50_ms / search.en.p50_ms) * 10) / 10,
        },
        store,
        targets: TARGETS,
        met: {
          search_p95: search.zh.p95_ms <= TARGETS.search_p95_ms && search.en.p95_ms <= TARGETS.search_p95_ms,
          search_p95_over_http: http
            ? http.zh.search.p95_ms <= TARGETS.search_p95_ms && http.en.search.p95_ms <= TARGETS.search_p95_ms
            : undefined,
          batched_store: store.batched.per_s >= TARGETS.batched_store_per_s,
        },
      };
      const files = await writeResult('memory', result, finishedAt);
      console.log(
        JSON.stringify(
          {
            dataset: result.dataset,
            search,
            serverTime,
            http,
            baseline,
            ratios: result.ratios,
            store,
            met: result.met,
          },
          null,
          2,
        ),
      );
      console.log(`\nwrote ${files.join(' and ')}`);
    } finally {
      await app.close();
    }
  } finally {
    await services.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
