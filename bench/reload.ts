/**
 * `npm run bench:reload`: a graceful `pm2 reload` drops no request and loses no job.
 *
 * Builds dist/, starts `ecosystem.config.js` under a private pm2 (its own PM2_HOME) with
 * BENCH_API_INSTANCES API instances in cluster mode (default 2) and BENCH_WORKER_INSTANCES workers
 * (default 2), creates a tenant over HTTP, and sends `POST /chat/send` continuously at BENCH_RATE
 * messages/s (default 40) with an agent API key: BENCH_BEFORE_S seconds (default 10), then `pm2
 * reload ecosystem.config.js` while sending, then BENCH_AFTER_S seconds (default 10) after the reload
 * has returned. A client does what a real one does on a dropped connection, a 503 or a 429: it
 * re-sends the same message with the same Idempotency-Key (after Retry-After; up to 5 times). Then every accepted message is followed to
 * its final status in PostgreSQL, and its replies are counted.
 *
 * Passes when: every message was accepted (no request failed for good), none is missing or
 * unfinished after the drain, none was answered twice. Writes bench/results/reload-<time>.json.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { Redis } from 'ioredis';
import pg from 'pg';

import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { resolveServices } from '../src/services/localServices';
import { recreateDatabase, withDatabase } from './lib/dataset';
import { adminToken, createTenant, dataOf, request } from './lib/isolation/http';
import { type Pm2Deployment, startPm2Deployment } from './lib/pm2Deployment';
import { writeResult } from './lib/queueBench';

const ROOT = path.resolve(__dirname, '..');
const DATABASE = 'maihive_bench_reload';
const PREFIX = 'bench.reload';
const ADMIN = { username: 'root', password: 'bench-reload-root-password' };
const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const SETTINGS = {
  api_instances: num('BENCH_API_INSTANCES', 2),
  worker_instances: num('BENCH_WORKER_INSTANCES', 2),
  rate_per_s: num('BENCH_RATE', 40),
  before_s: num('BENCH_BEFORE_S', 10),
  after_s: num('BENCH_AFTER_S', 10),
  drain_max_ms: num('BENCH_DRAIN_MS', 120_000),
  max_attempts: 5,
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Send {
  key: string;
  at: number;
  attempts: { at: number; status: number; error?: string }[];
  messageId?: string;
}

/** Sends one message, re-sending it with the same Idempotency-Key when no answer came back. */
async function send(base: string, apiKey: string, i: number, t0: number): Promise<Send> {
  const s: Send = { key: randomUUID(), at: Date.now() - t0, attempts: [] };
  for (let attempt = 0; attempt < SETTINGS.max_attempts; attempt++) {
    const r = await request(base, 'POST', '/chat/send', {
      headers: { 'x-api-key': apiKey, 'idempotency-key': s.key },
      body: { message: `@麦麦 reload ${i}`, chat_stream_id: `reload-${i % 10}`, platform: 'qq' },
      timeoutMs: 30_000,
    });
    const code = (r.json as { error?: { code?: string } } | undefined)?.error?.code;
    s.attempts.push({
      at: Date.now() - t0,
      status: r.status,
      ...(r.status === 0 ? { error: String(r.json) } : code ? { error: `${r.status} ${code}` } : {}),
    });
    if (r.status >= 200 && r.status < 300) {
      s.messageId = dataOf<{ message_id: string }>(r).message_id;
      return s;
    }
    // A connection that broke, a 503 while a process stops, or a 429 shedding load: try again as
    // clients do (after Retry-After when given).
    if (r.status !== 0 && r.status !== 503 && r.status !== 429) return s;
    const retryAfterS = Number(r.headers['retry-after']);
    await sleep(Number.isFinite(retryAfterS) && retryAfterS > 0 ? retryAfterS * 1000 : 200 * (attempt + 1));
  }
  return s;
}

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({ level: 'warn' });
  const services = await resolveServices(config, logger);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'maihive-bench-reload-'));
  const pool = new pg.Pool({ connectionString: withDatabase(services.databaseAdminUrl, DATABASE), max: 2 });
  let deployment: Pm2Deployment | undefined;
  try {
    console.log('building dist/ (npm run build)');
    execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'ignore' });
    await recreateDatabase(services.databaseAdminUrl, DATABASE, config.appRole, logger);
    console.log(
      `pm2 start ecosystem.config.js (${SETTINGS.api_instances} API, ${SETTINGS.worker_instances} workers)`,
    );
    deployment = await startPm2Deployment({
      name: 'reload',
      tmpDir: dataDir,
      databaseAdminUrl: withDatabase(services.databaseAdminUrl, DATABASE),
      redisUrl: services.redisUrl,
      redisPrefix: PREFIX,
      dataDir: path.join(dataDir, 'data'),
      apiInstances: SETTINGS.api_instances,
      workerInstances: SETTINGS.worker_instances,
      bootstrapAdmin: `${ADMIN.username}:${ADMIN.password}`,
    });
    const { base, pm2 } = deployment;
    const bearer = await adminToken(base, ADMIN.username, ADMIN.password);
    const tenant = await createTenant(base, bearer, 'reload', {
      rate_limit_per_second: 10_000,
      credential_rate_limit_per_second: 10_000,
    });

    const t0 = Date.now();
    const sends: Promise<Send>[] = [];
    let sending = true;
    const sender = (async () => {
      const interval = 1000 / SETTINGS.rate_per_s;
      for (let i = 0; sending; i++) {
        sends.push(send(base, tenant.apiKey, i, t0));
        await sleep(Math.max(0, t0 + (i + 1) * interval - Date.now()));
      }
    })();
    await sleep(SETTINGS.before_s * 1000);
    const reloadFrom = Date.now() - t0;
    console.log(`pm2 reload ecosystem.config.js at ${reloadFrom} ms`);
    await pm2('reload', 'ecosystem.config.js');
    const reloadTo = Date.now() - t0;
    console.log(`reload returned after ${reloadTo - reloadFrom} ms`);
    await sleep(SETTINGS.after_s * 1000);
    sending = false;
    await sender;
    const results = await Promise.all(sends);

    const accepted = results.filter((s) => s.messageId !== undefined);
    const failed = results.filter((s) => s.messageId === undefined);
    const retried = results.filter((s) => s.attempts.length > 1);
    const ids = accepted.map((s) => s.messageId!);
    const drainFrom = Date.now();
    let fate: { statuses: Record<string, number>; missing: number; not_final: number };
    for (;;) {
      const { rows } = await pool.query<{ status: string; n: string }>(
        `SELECT status, count(*) AS n FROM messages
          WHERE tenant_id = 'reload' AND message_id = ANY($1::text[]) GROUP BY status`,
        [ids],
      );
      const statuses = Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
      const found = rows.reduce((n, r) => n + Number(r.n), 0);
      const notFinal = rows
        .filter((r) => !['replied', 'no_reply', 'failed'].includes(r.status))
        .reduce((n, r) => n + Number(r.n), 0);
      fate = { statuses, missing: ids.length - found, not_final: notFinal };
      if ((fate.missing === 0 && fate.not_final === 0) || Date.now() - drainFrom > SETTINGS.drain_max_ms)
        break;
      await sleep(1000);
    }
    const { rows: twice } = await pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM (
         SELECT reply_to FROM messages
          WHERE tenant_id = 'reload' AND direction = 'out' AND reply_to = ANY($1::text[])
          GROUP BY reply_to HAVING count(*) > 1) d`,
      [ids],
    );
    const { stdout: list } = await pm2('jlist');
    const processes = (
      JSON.parse(list) as { name: string; pm2_env: { restart_time: number; status: string } }[]
    ).map((p) => ({ name: p.name, status: p.pm2_env.status, restarts: p.pm2_env.restart_time }));
    const summary = {
      sent: results.length,
      accepted: accepted.length,
      failed_for_good: failed.length,
      failed_statuses: failed.map((s) => s.attempts.map((a) => a.error ?? a.status)),
      retried: retried.length,
      retried_attempts: retried.map((s) => s.attempts),
      fate,
      answered_twice: Number(twice[0]!.n),
      reload_ms: reloadTo - reloadFrom,
      drain_ms: Date.now() - drainFrom,
      processes,
    };
    const pass =
      summary.failed_for_good === 0 &&
      fate.missing === 0 &&
      fate.not_final === 0 &&
      summary.answered_twice === 0;
    console.log(
      `sent ${summary.sent}, accepted ${summary.accepted}, failed for good ${summary.failed_for_good}, ` +
        `re-sent after a dropped connection, 503 or 429 ${summary.retried}; final: ${JSON.stringify(fate.statuses)}, ` +
        `missing ${fate.missing}, unfinished ${fate.not_final}, answered twice ${summary.answered_twice}; ` +
        `reload took ${summary.reload_ms} ms → ${pass ? 'PASS' : 'FAIL'}`,
    );
    const finishedAt = new Date();
    const files = await writeResult(
      'reload',
      {
        settings: SETTINGS,
        machine: { cpus: os.cpus().length, load: os.loadavg() },
        pass,
        summary,
        finished_at: finishedAt,
      },
      finishedAt,
    );
    console.log(`wrote ${files.join(', ')}`);
    if (!pass) process.exitCode = 1;
  } finally {
    await deployment?.stop();
    await pool.end();
    const redis = new Redis(services.redisUrl);
    const keys = await redis.keys(`${PREFIX}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    await services.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
