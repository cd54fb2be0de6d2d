/**
 * `npm run bench:scale`: does MaiHive go faster with more API and worker processes?
 *
 * Builds dist/ and runs it as `ecosystem.config.js` does, under a private pm2 (its own PM2_HOME):
 * the API instances in pm2's cluster mode (the pm2 daemon hands connections to them round-robin),
 * the workers as fork-mode processes, on the real PostgreSQL and a private Redis (AOF on, as in
 * production; private so that its CPU is this bench's alone). Four configurations in one run:
 * 1 API × 1 worker, 1 × 2, 2 × 1, 2 × 2, each with a fresh Redis prefix and its own tenants'
 * traffic, the heartflow answering with the built-in `local` provider.
 *
 * Each configuration, after BENCH_WARMUP_S (5 s):
 * - closed loop, BENCH_MEASURE_S (25 s): BENCH_SENDERS senders (48) over BENCH_TENANTS tenants
 *   (8), each on a chat stream of its own, each sending `POST /chat/send?wait=20000` with the
 *   tenant's agent API key and sending the next message once the last is answered: replies/s (answered
 *   `replied`) and the round trip's p50/p99 say what the whole path sustains;
 * - ingress, BENCH_INGRESS_S (8 s): the same senders without `?wait` (answered once queued), the
 *   work left queued: sends/s says what the API tier accepts while the workers run;
 * - every message accepted in the closed loop is then looked up in PostgreSQL (all `replied`?).
 *
 * CPU per message of every process involved, from /proc/<pid>/stat before and after each phase:
 * the API instances, the workers, the pm2 daemon (it accepts the connections in cluster mode), Redis,
 * and the PostgreSQL backends connected to the bench's database (shared background processes such as
 * the WAL writer are not counted), plus the whole machine's busy time (other users of the machine
 * included). The busiest process, or the machine's cores, is named as the bottleneck.
 *
 * Writes bench/results/scale-<time>.json; prints a table with ratios against 1 × 1 of the same run.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { Redis } from 'ioredis';
import pg from 'pg';

import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { resolveServices } from '../src/services/localServices';
import { startPrivateRedis } from '../src/services/privateServers';
import { recreateDatabase, withDatabase } from './lib/dataset';
import { adminToken, type BenchTenant, createTenant, dataOf, request } from './lib/isolation/http';
import { startPm2Deployment } from './lib/pm2Deployment';
import { type CpuDelta, cpuDelta, cpuSnapshot, type ProcessGroups } from './lib/processCpu';
import { round, writeResult } from './lib/queueBench';
import { formatTable, latencyStats } from './lib/stats';

const ROOT = path.resolve(__dirname, '..');
const DATABASE = 'maihive_bench_scale';
const ADMIN = { username: 'root', password: 'bench-scale-root-password' };
const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const SETTINGS = {
  senders: num('BENCH_SENDERS', 48),
  tenants: num('BENCH_TENANTS', 8),
  warmup_s: num('BENCH_WARMUP_S', 5),
  measure_s: num('BENCH_MEASURE_S', 25),
  ingress_s: num('BENCH_INGRESS_S', 8),
  wait_ms: 20_000,
  worker_concurrency: num('BENCH_WORKER_CONCURRENCY', 20),
};
const CONFIGURATIONS: readonly { api: number; workers: number }[] = [
  { api: 1, workers: 1 },
  { api: 1, workers: 2 },
  { api: 2, workers: 1 },
  { api: 2, workers: 2 },
];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Answer {
  /** ms since the phase started. */
  sent: number;
  done: number;
  status: number;
  outcome?: string;
  messageId?: string;
}

/** Closed-loop senders until `ms` have passed; sender k sends to tenant k mod n, stream `scale-k`. */
async function closedLoop(
  base: string,
  tenants: BenchTenant[],
  ms: number,
  waitMs: number | undefined,
): Promise<Answer[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: SETTINGS.senders });
  const t0 = Date.now();
  const answers: Answer[] = [];
  let i = 0;
  await Promise.all(
    Array.from({ length: SETTINGS.senders }, async (_, k) => {
      const tenant = tenants[k % tenants.length]!;
      while (Date.now() - t0 < ms) {
        const sent = Date.now() - t0;
        const r = await request(base, 'POST', `/chat/send${waitMs ? `?wait=${waitMs}` : ''}`, {
          agent,
          headers: { 'x-api-key': tenant.apiKey },
          body: { message: `@麦麦 scale ${i++}`, chat_stream_id: `scale-${k}`, platform: 'qq' },
          timeoutMs: (waitMs ?? 0) + 30_000,
        });
        const ok = r.status >= 200 && r.status < 300;
        const data = ok ? dataOf<{ status: string; message_id: string }>(r) : undefined;
        answers.push({
          sent,
          done: Date.now() - t0,
          status: r.status,
          ...(data ? { outcome: data.status, messageId: data.message_id } : {}),
        });
        // A refusal (429 shedding, 503): back off a little, as a client would.
        if (!ok) await sleep(50);
      }
    }),
  );
  agent.destroy();
  return answers;
}

interface PhaseResult {
  answers: number;
  accepted_per_s: number;
  replied_per_s: number;
  refused: Record<string, number>;
  round_trip_ms: { p50: number; p99: number };
  cpu: CpuDelta;
  /** CPU per accepted message, µs, per group. */
  cpu_us_per_message: Record<string, number>;
}

function phaseResult(answers: Answer[], cpu: CpuDelta, seconds: number): PhaseResult {
  const accepted = answers.filter((a) => a.messageId !== undefined);
  const refused: Record<string, number> = {};
  for (const a of answers) if (!a.messageId) refused[String(a.status)] = (refused[String(a.status)] ?? 0) + 1;
  const rt = latencyStats(accepted.map((a) => a.done - a.sent));
  return {
    answers: answers.length,
    accepted_per_s: round(accepted.length / seconds, 1),
    replied_per_s: round(accepted.filter((a) => a.outcome === 'replied').length / seconds, 1),
    refused,
    round_trip_ms: { p50: round(rt.p50_ms, 1), p99: round(rt.p99_ms, 1) },
    cpu,
    cpu_us_per_message: Object.fromEntries(
      Object.entries(cpu.seconds).map(([g, s]) => [g, Math.round((s * 1e6) / Math.max(1, accepted.length))]),
    ),
  };
}

/** The process (or the machine) that ran out of CPU first in a phase. */
function bottleneck(cpu: CpuDelta): string {
  const cores = os.cpus().length;
  const [busiest, percent] = Object.entries(cpu.per_process_percent).sort((a, b) => b[1] - a[1])[0] ?? [
    '-',
    0,
  ];
  const top = `busiest process ${busiest} at ${percent} % of a core`;
  if (cpu.machine_busy_percent >= 90 * cores)
    return `the machine's ${cores} cores (${cpu.machine_busy_percent} % busy); ${top}`;
  if (percent >= 85) return `${busiest} (${percent} % of a core: one event loop saturated)`;
  return `no process saturated (${top}, machine ${cpu.machine_busy_percent} %): latency-bound`;
}

async function main(): Promise<void> {
  const loadAtStart = os.loadavg();
  const config = loadConfig();
  const logger = createLogger({ level: 'warn' });
  const services = await resolveServices(config, logger);
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'maihive-bench-scale-'));
  const redisServer = await startPrivateRedis({ logger, dataDir: path.join(tmp, 'redis') });
  const redis = new Redis(redisServer.url);
  const redisPid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);
  const adminUrl = withDatabase(services.databaseAdminUrl, DATABASE);
  const pool = new pg.Pool({ connectionString: adminUrl, max: 1 });
  const results: {
    api: number;
    workers: number;
    closed_loop: PhaseResult;
    ingress: PhaseResult;
    fate: Record<string, number>;
    bottleneck: { closed_loop: string; ingress: string };
  }[] = [];

  try {
    console.log('building dist/ (npm run build)');
    execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'ignore' });
    await recreateDatabase(services.databaseAdminUrl, DATABASE, config.appRole, logger);
    let tenants: BenchTenant[] | undefined;

    for (const c of CONFIGURATIONS) {
      console.log(`\n${c.api} API × ${c.workers} worker(s): pm2 start ecosystem.config.js`);
      const deployment = await startPm2Deployment({
        name: 'scale',
        tmpDir: tmp,
        databaseAdminUrl: adminUrl,
        redisUrl: redisServer.url,
        redisPrefix: `bench.scale.a${c.api}w${c.workers}`,
        dataDir: path.join(tmp, 'data'),
        apiInstances: c.api,
        workerInstances: c.workers,
        bootstrapAdmin: `${ADMIN.username}:${ADMIN.password}`,
        env: { WORKER_CONCURRENCY: String(SETTINGS.worker_concurrency) },
      });
      const { base, pm2, pm2Home } = deployment;
      try {
        if (!tenants) {
          const bearer = await adminToken(base, ADMIN.username, ADMIN.password);
          tenants = [];
          for (let t = 0; t < SETTINGS.tenants; t++)
            tenants.push(
              await createTenant(base, bearer, `scale-t${t}`, {
                rate_limit_per_second: 10_000,
                credential_rate_limit_per_second: 10_000,
                scheduling: { max_queue_size: 1_000_000 },
              }),
            );
        }
        const { stdout } = await pm2('jlist');
        const groups: ProcessGroups = new Map();
        for (const p of JSON.parse(stdout) as { name: string; pid: number }[])
          groups.set(p.pid, p.name === 'maihive-api' ? 'api' : 'worker');
        groups.set(Number(await readFile(path.join(pm2Home, 'pm2.pid'), 'utf8')), 'pm2');
        groups.set(redisPid, 'redis');
        groups.set(process.pid, 'bench');
        const withBackends = async () => {
          const { rows } = await pool.query<{ pid: number }>(
            'SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
            [DATABASE],
          );
          const all = new Map(groups);
          for (const r of rows) all.set(r.pid, 'postgres');
          return all;
        };

        await closedLoop(base, tenants, SETTINGS.warmup_s * 1000, SETTINGS.wait_ms);
        let before = await cpuSnapshot(await withBackends());
        const loop = await closedLoop(base, tenants, SETTINGS.measure_s * 1000, SETTINGS.wait_ms);
        const loopCpu = cpuDelta(before, await cpuSnapshot(await withBackends()));
        before = await cpuSnapshot(await withBackends());
        const ingress = await closedLoop(base, tenants, SETTINGS.ingress_s * 1000, undefined);
        const ingressCpu = cpuDelta(before, await cpuSnapshot(await withBackends()));

        const ids = loop.filter((a) => a.messageId).map((a) => a.messageId!);
        const { rows } = await pool.query<{ status: string; n: number }>(
          `SELECT status, count(*)::int AS n FROM messages
            WHERE direction = 'in' AND message_id = ANY($1::text[]) GROUP BY status`,
          [ids],
        );
        const fate = Object.fromEntries(rows.map((r) => [r.status, r.n]));
        fate.missing = ids.length - rows.reduce((n, r) => n + r.n, 0);
        const closed = phaseResult(loop, loopCpu, loopCpu.wall_s);
        const open = phaseResult(ingress, ingressCpu, ingressCpu.wall_s);
        const r = {
          ...c,
          closed_loop: closed,
          ingress: open,
          fate,
          bottleneck: { closed_loop: bottleneck(loopCpu), ingress: bottleneck(ingressCpu) },
        };
        results.push(r);
        console.log(
          `  closed loop: ${closed.replied_per_s} replied/s (${closed.accepted_per_s} answered/s), ` +
            `p50/p99 ${closed.round_trip_ms.p50}/${closed.round_trip_ms.p99} ms, refused ${JSON.stringify(closed.refused)}; ` +
            `fate ${JSON.stringify(fate)}; bottleneck: ${r.bottleneck.closed_loop}`,
        );
        console.log(
          `  ingress: ${open.accepted_per_s} sends/s, refused ${JSON.stringify(open.refused)}; bottleneck: ${r.bottleneck.ingress}`,
        );
      } finally {
        await deployment.stop();
      }
    }

    const base = results[0]!;
    const ratio = (x: number, b: number) => (b > 0 ? `${round(x / b, 2)}×` : '-');
    const us = (p: PhaseResult, g: string) => String(p.cpu_us_per_message[g] ?? 0);
    const pct = (p: PhaseResult, g: string) =>
      `${Math.round(((p.cpu.seconds[g] ?? 0) / p.cpu.wall_s) * 100)}`;
    console.log(
      `\nclosed loop (${SETTINGS.senders} senders, ?wait): per message CPU µs, process CPU % of a core`,
    );
    console.log(
      formatTable([
        [
          'API×worker',
          'replied/s',
          'vs 1×1',
          'p50 ms',
          'p99 ms',
          'api µs',
          'worker µs',
          'redis µs',
          'pg µs',
          'pm2 µs',
          'api %',
          'worker %',
          'redis %',
          'pg %',
          'machine %',
        ],
        ...results.map((r) => {
          const p = r.closed_loop;
          return [
            `${r.api}×${r.workers}`,
            String(p.replied_per_s),
            ratio(p.replied_per_s, base.closed_loop.replied_per_s),
            String(p.round_trip_ms.p50),
            String(p.round_trip_ms.p99),
            us(p, 'api'),
            us(p, 'worker'),
            us(p, 'redis'),
            us(p, 'postgres'),
            us(p, 'pm2'),
            pct(p, 'api'),
            pct(p, 'worker'),
            pct(p, 'redis'),
            pct(p, 'postgres'),
            String(p.cpu.machine_busy_percent),
          ];
        }),
      ]),
    );
    console.log(`\ningress (${SETTINGS.senders} senders, no wait, workers running)`);
    console.log(
      formatTable([
        ['API×worker', 'sends/s', 'vs 1×1', 'p99 ms', 'api µs', 'redis µs', 'pg µs', 'api %', 'machine %'],
        ...results.map((r) => {
          const p = r.ingress;
          return [
            `${r.api}×${r.workers}`,
            String(p.accepted_per_s),
            ratio(p.accepted_per_s, base.ingress.accepted_per_s),
            String(p.round_trip_ms.p99),
            us(p, 'api'),
            us(p, 'redis'),
            us(p, 'postgres'),
            pct(p, 'api'),
            String(p.cpu.machine_busy_percent),
          ];
        }),
      ]),
    );
    console.log('\nbottlenecks:');
    for (const r of results)
      console.log(
        `  ${r.api}×${r.workers}: closed loop — ${r.bottleneck.closed_loop}; ingress — ${r.bottleneck.ingress}`,
      );
    const lost = results.reduce((n, r) => n + (r.fate.missing ?? 0), 0);
    const load = os.loadavg();
    const fmt = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
    console.log(
      `\n${lost} closed-loop message(s) missing in PostgreSQL; load average ${fmt(loadAtStart)} at the start, ${fmt(load)} at the end`,
    );
    const finishedAt = new Date();
    const files = await writeResult(
      'scale',
      {
        settings: SETTINGS,
        topology:
          'dist/main.js under a private pm2 from ecosystem.config.js: API instances in cluster mode (the pm2 daemon balances connections), workers in fork mode; real PostgreSQL (shared server, own database); private Redis with AOF',
        machine: {
          cpus: os.cpus().length,
          cpu_model: os.cpus()[0]?.model ?? 'unknown',
          load_at_start: loadAtStart,
          load,
        },
        results,
        finished_at: finishedAt,
      },
      finishedAt,
    );
    console.log(`wrote ${files.join(', ')}`);
  } finally {
    await pool.end();
    redis.disconnect();
    await redisServer.stop();
    await services.close();
    await rm(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
