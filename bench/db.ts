/**
 * Database benchmark (`npm run bench:db`): the cost of tenant scoping (RLS + per-transaction
 * settings) on the hot read and on batched inserts, against the same SQL run as the owner without
 * RLS. Variants run interleaved in rotating rounds, so ratios hold up on a shared machine even when
 * absolute numbers drift. Writes bench/results/db-<timestamp>.json and db-latest.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import pg from 'pg';

import { loadConfig } from '../src/config';
import { Database, type TenantDb } from '../src/db/database';
import { insertMessages, type NewMessage, recentMessages } from '../src/db/repositories/messages';
import { createIsolationContext, type IsolationContext } from '../src/domain/isolationContext';
import { createLogger } from '../src/logger';
import { resolveServices } from '../src/services/localServices';
import { loadDataset, recreateDatabase, streamId, tenantId, withDatabase } from './lib/dataset';
import { ownerHandle, ownerTx } from './lib/ownerDb';
import { printDbSummary } from './lib/report';
import { concurrentRun, interleavedRounds, latencyStats, seededRandom, type Variant } from './lib/stats';

const DATABASE = 'maihive_bench';
const SHAPE = { tenants: 100, streamsPerTenant: 20, messages: 1_000_000 };
const READ_LIMIT = 50;
const READS = { perVariant: 5_000, rounds: 100, warmup: 500 };
const CONCURRENT_READS = { concurrency: 8, perVariant: 4_000, rounds: 4 };
const INSERTS = { batches: 200, batchSize: 100, rounds: 40, warmup: 10 };
const TARGETS = { readP99Ratio: 1.2, insertRatio: 0.8 };

type Stream = IsolationContext;

const read = (db: TenantDb) => recentMessages(db, db.ctx.chatStreamId!, READ_LIMIT);

/** EXPLAIN (ANALYZE, BUFFERS) of `recentMessages`' own SQL, as the app role inside a unit of work. */
function explainScopedRead(app: Database, ctx: IsolationContext): Promise<string[]> {
  return app.withTenant(ctx, async (db) => {
    let plan: string[] = [];
    const query = async <R extends pg.QueryResultRow>(text: string, params?: readonly unknown[]) => {
      const result = await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${text}`, params);
      plan = result.rows.map((r) => r['QUERY PLAN']);
      return result as unknown as pg.QueryResult<R>;
    };
    await read({ ctx, query, rawSql: query });
    return plan;
  });
}

async function measureConcurrentReads(variants: Variant<Stream>[], pick: (n: number) => Stream[]) {
  const acc = new Map(variants.map((v) => [v.name, { ops: 0, wallMs: 0, samples: [] as number[] }]));
  for (let r = 0; r < CONCURRENT_READS.rounds; r++) {
    const keys = pick(CONCURRENT_READS.perVariant / CONCURRENT_READS.rounds);
    for (const v of r % 2 === 0 ? variants : [...variants].reverse()) {
      const { wallMs, samplesMs } = await concurrentRun(keys, CONCURRENT_READS.concurrency, (k) => v.run(k));
      const a = acc.get(v.name)!;
      a.ops += keys.length;
      a.wallMs += wallMs;
      a.samples.push(...samplesMs);
    }
  }
  return Object.fromEntries(
    [...acc].map(([name, a]) => {
      const opsPerS = Math.round((a.ops * 1000) / a.wallMs);
      return [
        name,
        { ops: a.ops, wall_ms: Math.round(a.wallMs), ops_per_s: opsPerS, latency: latencyStats(a.samples) },
      ];
    }),
  );
}

async function measureInserts(app: Database, owner: pg.Pool, pick: (n: number) => Stream[]) {
  let seq = 0;
  const batch = (ctx: Stream, prefix: string): NewMessage[] => {
    const id = `${prefix}${seq++}`;
    return Array.from({ length: INSERTS.batchSize }, (_, j) => ({
      messageId: `${id}-${j}`,
      agentId: 'default',
      platform: 'qq',
      chatStreamId: ctx.chatStreamId!,
      direction: 'in' as const,
      content: `bench insert ${id} ${j} ${'x'.repeat(40)}`,
      senderUserId: `u${j}`,
      senderNickname: `user ${j}`,
    }));
  };
  const checked = async (ids: Promise<string[]>) => {
    if ((await ids).length !== INSERTS.batchSize) throw new Error('an insert batch lost rows');
  };
  const variants: Variant<Stream>[] = [
    {
      name: 'scoped',
      run: (ctx) => app.withTenant(ctx, (db) => checked(insertMessages(db, batch(ctx, 's')))),
    },
    {
      name: 'plain',
      run: (ctx) => ownerTx(owner, ctx, (db) => checked(insertMessages(db, batch(ctx, 'p')))),
    },
  ];
  await interleavedRounds(variants, 1, () => pick(INSERTS.warmup));
  const samples = await interleavedRounds(variants, INSERTS.rounds, () =>
    pick(INSERTS.batches / INSERTS.rounds),
  );
  return Object.fromEntries(
    [...samples].map(([name, s]) => {
      const rows = s.length * INSERTS.batchSize;
      const rowsPerS = Math.round((rows * 1000) / s.reduce((a, b) => a + b, 0));
      return [name, { batches: s.length, rows, rows_per_s: rowsPerS, batch_latency: latencyStats(s) }];
    }),
  );
}

async function bench(app: Database, owner: pg.Pool) {
  const streams: Stream[] = [];
  for (let t = 0; t < SHAPE.tenants; t++)
    for (let s = 0; s < SHAPE.streamsPerTenant; s++)
      streams.push(
        createIsolationContext({
          tenantId: tenantId(t),
          agentId: 'default',
          platform: 'qq',
          chatStreamId: streamId(s),
        }),
      );
  const random = seededRandom(20_240_601);
  const pick = (n: number) =>
    Array.from({ length: n }, () => streams[Math.floor(random() * streams.length)]!);
  const readVariants: Variant<Stream>[] = [
    { name: 'scoped', run: (ctx) => app.withTenant(ctx, read) },
    { name: 'unscoped_tx', run: (ctx) => ownerTx(owner, ctx, read) },
    { name: 'bare_owner', run: (ctx) => read(ownerHandle(owner, ctx)) },
  ];

  // Correctness first: RLS must return exactly the rows that the explicit WHERE selects.
  for (const ctx of pick(20)) {
    const [a, b] = await Promise.all([app.withTenant(ctx, read), ownerTx(owner, ctx, read)]);
    const ids = (rows: { message_id: string }[]) => rows.map((r) => r.message_id).join();
    if (a.length !== READ_LIMIT || ids(a) !== ids(b)) throw new Error(`scoped read differs for ${ctx.scope}`);
  }
  const plan = await explainScopedRead(app, streams[0]!);
  console.log('\nEXPLAIN (ANALYZE, BUFFERS) of the scoped read (app role, RLS):');
  console.log(plan.map((l) => `  ${l}`).join('\n'));

  console.log(`\nreads: ${READS.perVariant} per variant, concurrency 1, ${READS.rounds} rotating rounds…`);
  await interleavedRounds(readVariants, 1, () => pick(READS.warmup));
  const readSamples = await interleavedRounds(readVariants, READS.rounds, () =>
    pick(READS.perVariant / READS.rounds),
  );
  const reads = Object.fromEntries([...readSamples].map(([name, s]) => [name, latencyStats(s)]));
  console.log(
    `reads: ${CONCURRENT_READS.perVariant} per variant, concurrency ${CONCURRENT_READS.concurrency}…`,
  );
  const readsConcurrent = await measureConcurrentReads(readVariants.slice(0, 2), pick);
  console.log(
    `inserts: ${INSERTS.batches} batches of ${INSERTS.batchSize} per variant, ${INSERTS.rounds} rounds…`,
  );
  const inserts = await measureInserts(app, owner, pick);

  const ratio = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;
  const readP99 = ratio(reads.scoped!.p99_ms, reads.unscoped_tx!.p99_ms);
  const insert = ratio(inserts.scoped!.rows_per_s, inserts.plain!.rows_per_s);
  const ratios = {
    scoped_read_p99_ratio: {
      value: readP99,
      target: `<= ${TARGETS.readP99Ratio}`,
      pass: readP99 <= TARGETS.readP99Ratio,
    },
    scoped_insert_throughput_ratio: {
      value: insert,
      target: `>= ${TARGETS.insertRatio}`,
      pass: insert >= TARGETS.insertRatio,
    },
    informational: {
      scoped_read_p50_ratio: ratio(reads.scoped!.p50_ms, reads.unscoped_tx!.p50_ms),
      scoped_read_mean_ratio: ratio(reads.scoped!.mean_ms, reads.unscoped_tx!.mean_ms),
      scoped_read_vs_bare_p50_ratio: ratio(reads.scoped!.p50_ms, reads.bare_owner!.p50_ms),
      scoped_read_c8_throughput_ratio: ratio(
        readsConcurrent.scoped!.ops_per_s,
        readsConcurrent.unscoped_tx!.ops_per_s,
      ),
    },
  };
  const explain = {
    uses_messages_stream_recent: plan.some((l) => l.includes('messages_stream_recent')),
    // The good plan walks the index in order and stops after LIMIT rows; a bitmap scan + sort reads the whole stream.
    ordered_index_scan: plan.some((l) => /Index Scan (Backward )?using messages_stream_recent/.test(l)),
    sorts: plan.some((l) => /->\s+Sort\b/.test(l)),
    plan,
  };
  return {
    isolation_level: streams[0]!.level,
    explain,
    reads,
    reads_concurrent: readsConcurrent,
    inserts,
    ratios,
  };
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const config = loadConfig();
  const logger = createLogger({ level: 'warn' });
  const services = await resolveServices(config, logger, { database: DATABASE });
  try {
    // Always the bench database on the resolved server, never a configured application database.
    const adminUrl = withDatabase(services.databaseAdminUrl, DATABASE);
    await recreateDatabase(services.databaseAdminUrl, DATABASE, config.appRole, logger);
    console.log(
      `loading ${SHAPE.messages} messages (${SHAPE.tenants} tenants × ${SHAPE.streamsPerTenant} streams)…`,
    );
    const loadMs = await loadDataset(adminUrl, SHAPE);
    console.log(`loaded in ${(loadMs / 1000).toFixed(1)} s`);

    const owner = new pg.Pool({
      connectionString: adminUrl,
      max: 8,
      application_name: 'maihive-bench-owner',
    });
    const app = new Database({
      url: withDatabase(services.databaseUrl, DATABASE),
      poolMax: 8,
      connectTimeoutMs: config.db.connectTimeoutMs,
      statementTimeoutMs: config.db.statementTimeoutMs,
      logger,
      applicationName: 'maihive-bench',
    });
    try {
      const { rows } = await owner.query<{ bypass: boolean; version: string; bytes: string }>(
        `SELECT rolsuper OR rolbypassrls AS bypass, current_setting('server_version') AS version,
                pg_total_relation_size('messages')::text AS bytes FROM pg_roles WHERE rolname = current_user`,
      );
      const info = rows[0]!;
      if (!info.bypass)
        throw new Error('the owner role must be superuser or BYPASSRLS for the unscoped baseline');
      const measured = await bench(app, owner);

      const cpus = os.cpus();
      const finishedAt = new Date();
      const result = {
        benchmark: 'db',
        started_at: startedAt.toISOString(),
        finished_at: finishedAt.toISOString(),
        machine: {
          cpus: cpus.length,
          cpu_model: cpus[0]?.model ?? 'unknown',
          os: `${os.type()} ${os.release()} ${os.arch()}`,
          total_mem_gb: Math.round(os.totalmem() / 2 ** 30),
          node: process.version,
          pg_server_version: info.version,
        },
        dataset: { ...SHAPE, messages_table_bytes: Number(info.bytes), load_ms: Math.round(loadMs) },
        settings: {
          read_limit: READ_LIMIT,
          reads: READS,
          concurrent_reads: CONCURRENT_READS,
          inserts: INSERTS,
        },
        ...measured,
      };
      const dir = path.resolve(__dirname, 'results');
      await mkdir(dir, { recursive: true });
      const file = path.join(dir, `db-${finishedAt.toISOString().replace(/[:.]/g, '-')}.json`);
      const json = `${JSON.stringify(result, null, 2)}\n`;
      await writeFile(file, json);
      await writeFile(path.join(dir, 'db-latest.json'), json);

      console.log(
        `\nmachine: ${cpus.length} × ${result.machine.cpu_model}, node ${process.version}, PostgreSQL ${info.version}`,
      );
      printDbSummary({
        readLimit: READ_LIMIT,
        concurrency: CONCURRENT_READS.concurrency,
        batchSize: INSERTS.batchSize,
        reads: measured.reads,
        readsConcurrent: measured.reads_concurrent,
        inserts: measured.inserts,
        readP99: measured.ratios.scoped_read_p99_ratio,
        insertThroughput: measured.ratios.scoped_insert_throughput_ratio,
        explain: measured.explain,
      });
      console.log(`\nwrote ${path.relative(process.cwd(), file)} and bench/results/db-latest.json`);
    } finally {
      await app.close();
      await owner.end();
    }
  } finally {
    await services.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
