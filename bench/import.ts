/**
 * Import benchmark (`npm run bench:import`): a MaiBot 0.x and a 1.x database of 100,000 messages
 * each (plus every other table of the test fixtures) imported into a fresh tenant as the application
 * role, then verified. Rows/s counts every source row read, over the import's whole run (file
 * opened, checked, planned, written). Target ≥ 20,000 rows/s. Writes
 * bench/results/import-<timestamp>.json and import-latest.json.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { loadConfig } from '../src/config';
import { Database } from '../src/db/database';
import { importContext, importMaiBot, openSource } from '../src/legacy/importer';
import { verifyImport } from '../src/legacy/verify';
import { createLogger } from '../src/logger';
import { resolveServices } from '../src/services/localServices';
import { buildMaiBotV0, buildMaiBotV1 } from '../test/support/maibotFixture';
import { recreateDatabase, withClient, withDatabase } from './lib/dataset';

const DATABASE = 'maihive_bench_import';
const MESSAGES = 100_000;
const CHATS = 200;
const TARGET_ROWS_PER_S = 20_000;

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({ level: 'warn' });
  const services = await resolveServices(config, logger, { database: DATABASE });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'maihive-bench-import-'));
  try {
    await recreateDatabase(services.databaseAdminUrl, DATABASE, config.appRole, logger);
    const adminUrl = withDatabase(services.databaseAdminUrl, DATABASE);
    await withClient(adminUrl, (c) =>
      c.query(`INSERT INTO tenants (tenant_id, name) VALUES ('bench_v0', 'v0'), ('bench_v1', 'v1')`),
    );
    // Always the bench database on the resolved server, as the application role (RLS applies).
    const db = new Database({
      url: withDatabase(services.databaseUrl, DATABASE),
      ...config.db,
      statementTimeoutMs: 120_000,
      logger,
    });
    const startedAt = new Date();
    const loadBefore = os.loadavg()[0];
    const runs = [];
    try {
      for (const [name, build] of [
        ['0.x', buildMaiBotV0],
        ['1.x', buildMaiBotV1],
      ] as const) {
        const file = path.join(dir, `maibot-${name}.db`);
        const t0 = performance.now();
        await build(file, { chats: CHATS, messages: MESSAGES });
        const buildMs = performance.now() - t0;
        const tenantId = name === '0.x' ? 'bench_v0' : 'bench_v1';
        const report = await importMaiBot(db, { sqlitePath: file, tenantId, agentId: 'default' });
        const ctx = importContext(tenantId, 'default');
        const v0 = performance.now();
        const { source, plan } = await openSource(db, ctx, { sqlitePath: file, agentId: 'default' });
        const lines = await verifyImport(db, ctx, source, plan).finally(() => source.close());
        const verifyMs = performance.now() - v0;
        const rowsPerS = Math.round((report.rowsRead * 1000) / report.elapsedMs);
        runs.push({
          generation: name,
          fixture_build_ms: Math.round(buildMs),
          rows_read: report.rowsRead,
          rows_imported: report.tables.reduce((n, t) => n + t.imported, 0),
          import_ms: report.elapsedMs,
          rows_per_s: rowsPerS,
          verify_ms: Math.round(verifyMs),
          verified: lines.every((l) => l.ok),
          tables: report.tables,
          no_home: report.noHome,
        });
        console.log(
          `MaiBot ${name}: ${report.rowsRead} rows in ${(report.elapsedMs / 1000).toFixed(2)} s = ${rowsPerS} rows/s ` +
            `(target ≥ ${TARGET_ROWS_PER_S}); verify ${(verifyMs / 1000).toFixed(2)} s, ${lines.every((l) => l.ok) ? 'all tables match' : 'MISMATCH'}`,
        );
      }
    } finally {
      await db.close();
    }
    const cpus = os.cpus();
    const finishedAt = new Date();
    const result = {
      benchmark: 'import',
      started_at: startedAt.toISOString(),
      finished_at: finishedAt.toISOString(),
      machine: {
        cpus: cpus.length,
        cpu_model: cpus[0]?.model ?? 'unknown',
        os: `${os.type()} ${os.release()} ${os.arch()}`,
        node: process.version,
        // The machine is shared: the 1-minute load average before and after, for context.
        load_avg_1m: { before: loadBefore, after: os.loadavg()[0] },
      },
      dataset: { messages: MESSAGES, chats: CHATS },
      target_rows_per_s: TARGET_ROWS_PER_S,
      runs,
      target_met: runs.every((r) => r.rows_per_s >= TARGET_ROWS_PER_S && r.verified),
    };
    const out = path.resolve(__dirname, 'results');
    await mkdir(out, { recursive: true });
    const file = path.join(out, `import-${finishedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    const json = `${JSON.stringify(result, null, 2)}\n`;
    await writeFile(file, json);
    await writeFile(path.join(out, 'import-latest.json'), json);
    console.log(`\nwrote ${path.relative(process.cwd(), file)} and bench/results/import-latest.json`);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await services.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
