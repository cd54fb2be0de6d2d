/**
 * Noisy neighbours, end to end (`npm run bench:isolation`). Black box over HTTP, as adapters call
 * it: agent API keys, `POST /chat/send?wait=…` and `POST /adapters/onebot/v11?wait=…`, the real
 * heartflow with the `local` LLM provider, real PostgreSQL and Redis. For each topology (`single`:
 * `npm start`; `split`: 1 API + 2 workers as `ecosystem.config.js` runs them):
 *
 *   before   30 s  nine quiet tenants, 2 messages/s each (Poisson, seeded), `?wait`
 *   batch    30 s  + one tenant floods with batches of 100 as fast as the server takes them
 *   single   30 s  + the same tenant with 200 concurrent single sends instead
 *   after    30 s  quiet tenants alone again (the flood's backlog drains)
 *   solo     60 s  the flood alone (batch then single), no quiet tenants: the capacity it gets alone
 *
 * Then every accepted message is followed to its final status in the database (none may be lost
 * or stuck). Reports per phase: the quiet round trip (client side) and enqueue→start / start→reply
 * (server side), the noisy tenant's accepted/s, processed/s and 429s, every 5xx, CPU and event-loop
 * delay per process, and `/health` and `/admin/queues` latency. Writes
 * bench/results/isolation-<timestamp>.json and an SVG chart (quiet p99 over time beside the noisy
 * rate) next to it. About 12 minutes.
 *
 * Knobs: BENCH_TOPOLOGIES (`single,split`), BENCH_PHASE_MS (30000), BENCH_FLOOD_BATCH_SENDERS (4),
 * BENCH_FLOOD_SINGLE_SENDERS (200), BENCH_FLOOD_IGNORE_RETRY_AFTER (0), BENCH_NOISY_RATE (0: the
 * default send rates; else the noisy tenant's and its key's messages/s), BENCH_SOLO (1),
 * BENCH_CHART_OUT (also write the chart there), BENCH_SERVER_ENV (`K=V,K=V`: extra server environment), BENCH_CPU_PROF=1 (V8 CPU profiles of the server
 * processes next to their logs).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { Redis } from 'ioredis';
import pg from 'pg';

import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { resolveServices } from '../src/services/localServices';
import { recreateDatabase, withDatabase } from './lib/dataset';
import { isolationChart } from './lib/isolation/chart';
import type { FloodCommand, FloodResult } from './lib/isolation/flood';
import { adminToken, type BenchTenant, createTenant } from './lib/isolation/http';
import { startMachineSampler } from './lib/isolation/machine';
import { startOperatorProbe } from './lib/isolation/operators';
import { startQuietTenants } from './lib/isolation/quiet';
import { type PhaseWindow, printSummary, summarize, TARGETS, type TopologyRun } from './lib/isolation/report';
import { startTopology, type TopologyName } from './lib/isolation/topology';
import { clearPrefix, sleep, writeResult, writeResultFile } from './lib/queueBench';

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const DATABASE = 'maihive_bench_isolation';
const PREFIX = 'mhbiso';
const ADMIN = { username: 'benchadmin', password: 'bench-admin-password-0123' };

const SETTINGS = {
  topologies: (process.env.BENCH_TOPOLOGIES ?? 'single,split').split(',') as TopologyName[],
  phase_ms: env('BENCH_PHASE_MS', 30_000),
  quiet: { tenants: 9, rate_per_tenant: 2, wait_ms: 20_000, streams_per_tenant: 3, seed: 20261207 },
  flood: {
    batch_senders: env('BENCH_FLOOD_BATCH_SENDERS', 4),
    single_senders: env('BENCH_FLOOD_SINGLE_SENDERS', 200),
    streams: 20,
    ignore_retry_after: env('BENCH_FLOOD_IGNORE_RETRY_AFTER', 0) === 1,
    /**
     * Send rate (messages/s) the operator grants the noisy tenant and its API key; 0 keeps the
     * defaults (200 per tenant, 100 per credential), so the flood then meets its rate limit first.
     */
    rate_per_second: env('BENCH_NOISY_RATE', 0),
  },
  solo: env('BENCH_SOLO', 1) === 1,
  drain_max_ms: 300_000,
};

interface Flooder {
  child: ChildProcess;
  run(c: Omit<FloodCommand, 'type'>): Promise<FloodResult>;
  close(): void;
}

async function startFlooder(): Promise<Flooder> {
  const child = fork(path.join(__dirname, 'lib', 'isolation', 'flood.ts'), [], {
    execArgv: ['--import', 'tsx'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`flood client exited with ${code}`)));
    child.once('message', () => resolve());
  });
  return {
    child,
    run: (c) =>
      new Promise((resolve) => {
        const onMessage = (m: FloodResult) => {
          if (m.type !== 'flood-done') return;
          child.off('message', onMessage);
          resolve(m);
        };
        child.on('message', onMessage);
        child.send({ type: 'flood', ...c });
      }),
    close: () => child.send({ type: 'exit' }),
  };
}

/** Waits until every accepted message has a final status; returns how many do not. */
async function followToTheEnd(pool: pg.Pool, ids: Map<string, string[]>, maxMs: number) {
  const deadline = Date.now() + maxMs;
  const started = Date.now();
  for (;;) {
    const statuses: Record<string, number> = {};
    let missing = 0;
    let pending = 0;
    for (const [tenant, list] of ids) {
      for (let i = 0; i < list.length; i += 10_000) {
        const chunk = list.slice(i, i + 10_000);
        const { rows } = await pool.query<{ status: string; n: string }>(
          `SELECT status, count(*) AS n FROM messages WHERE tenant_id = $1 AND message_id = ANY($2::text[]) GROUP BY status`,
          [tenant, chunk],
        );
        let found = 0;
        for (const r of rows) {
          statuses[r.status] = (statuses[r.status] ?? 0) + Number(r.n);
          found += Number(r.n);
          if (!['replied', 'no_reply', 'failed'].includes(r.status)) pending += Number(r.n);
        }
        missing += chunk.length - found;
      }
    }
    if ((missing === 0 && pending === 0) || Date.now() > deadline) {
      return { statuses, missing, not_final: pending, drain_ms: Date.now() - started };
    }
    await sleep(1000);
  }
}

/** Noisy messages processed (final) per second, from `processed_at`, between `from` and `to`. */
async function processedPerSecond(
  pool: pg.Pool,
  tenant: string,
  from: number,
  to: number,
): Promise<number[]> {
  const { rows } = await pool.query<{ s: number; n: string }>(
    `SELECT floor(extract(epoch FROM processed_at) * 1000 - $2::float8)::bigint / 1000 AS s, count(*) AS n
       FROM messages
      WHERE tenant_id = $1 AND direction = 'in' AND processed_at >= to_timestamp($2::float8 / 1000)
        AND processed_at < to_timestamp($3::float8 / 1000)
      GROUP BY 1 ORDER BY 1`,
    [tenant, from, to],
  );
  const out = new Array<number>(Math.ceil((to - from) / 1000)).fill(0);
  for (const r of rows) if (Number(r.s) < out.length) out[Number(r.s)] = Number(r.n);
  return out;
}

async function runTopology(
  name: TopologyName,
  adminUrl: string,
  redisUrl: string,
  appRole: string,
): Promise<TopologyRun> {
  const logger = createLogger({ level: 'warn' });
  const dbAdminUrl = withDatabase(adminUrl, DATABASE);
  await recreateDatabase(adminUrl, DATABASE, appRole, logger);
  const redis = new Redis(redisUrl);
  await clearPrefix(redis, PREFIX);
  const dataDir = path.join(os.tmpdir(), `maihive-bench-isolation-${process.pid}`);
  const logDir = path.resolve(__dirname, 'results', 'isolation-logs', name);
  console.log(`\n[${name}] starting (logs in ${path.relative(process.cwd(), logDir)})`);
  const topology = await startTopology(name, {
    databaseAdminUrl: dbAdminUrl,
    redisUrl,
    redisPrefix: PREFIX,
    bootstrapAdmin: `${ADMIN.username}:${ADMIN.password}`,
    jwtSecret: 'bench-jwt-secret-bench-jwt-secret-0123456789',
    secretKey: 'bench-server-key-bench-server-key-0123456789',
    dataDir,
    logDir,
    extraEnv: Object.fromEntries(
      (process.env.BENCH_SERVER_ENV ?? '')
        .split(',')
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    ),
    ...(process.env.BENCH_CPU_PROF === '1'
      ? { nodeOptions: ['--cpu-prof', `--cpu-prof-dir=${path.join(logDir, 'profiles')}`] }
      : {}),
  });
  const pool = new pg.Pool({ connectionString: dbAdminUrl, max: 2 });
  const flooder = await startFlooder();
  const machine = startMachineSampler(
    () =>
      new Map([
        ...topology.processes.map((p) => [p.child.pid!, p.name] as const),
        [flooder.child.pid!, 'flood-client'],
        [process.pid, 'bench'],
      ]),
  );
  try {
    const bearer = await adminToken(topology.url, ADMIN.username, ADMIN.password);
    const quietTenants: BenchTenant[] = [];
    for (let i = 1; i <= SETTINGS.quiet.tenants; i++) {
      quietTenants.push(await createTenant(topology.url, bearer, `quiet${String(i).padStart(2, '0')}`));
    }
    const noisyRate = SETTINGS.flood.rate_per_second;
    const noisy = await createTenant(
      topology.url,
      bearer,
      'noisy',
      noisyRate > 0
        ? { rate_limit_per_second: noisyRate, credential_rate_limit_per_second: noisyRate }
        : undefined,
    );
    const operators = startOperatorProbe(topology.url, bearer);
    const quiet = startQuietTenants({
      url: topology.url,
      tenants: quietTenants,
      ratePerTenant: SETTINGS.quiet.rate_per_tenant,
      waitMs: SETTINGS.quiet.wait_ms,
      streamsPerTenant: SETTINGS.quiet.streams_per_tenant,
      seed: SETTINGS.quiet.seed,
    });
    const t0 = Date.now();
    const phases: PhaseWindow[] = [];
    const processes: TopologyRun['processes'] = {};
    const phase = async (phaseName: string, body: () => Promise<unknown>) => {
      topology.markPhase(phaseName);
      const from = Date.now();
      console.log(`[${name}] ${phaseName}`);
      await body();
      phases.push({ name: phaseName, from, to: Date.now() });
      for (const r of await topology.report()) (processes[r.name] ??= {})[phaseName] = r;
    };
    const floodArgs = (mode: 'batch' | 'single', label: string) => ({
      url: topology.url,
      apiKey: noisy.apiKey,
      mode,
      concurrency: mode === 'batch' ? SETTINGS.flood.batch_senders : SETTINGS.flood.single_senders,
      durationMs: SETTINGS.phase_ms,
      streams: SETTINGS.flood.streams,
      ignoreRetryAfter: SETTINGS.flood.ignore_retry_after,
      label,
    });
    const floods: Record<string, FloodResult> = {};
    await phase('before', () => sleep(SETTINGS.phase_ms));
    await phase(
      'flood_batch',
      async () => (floods.flood_batch = await flooder.run(floodArgs('batch', 'fb'))),
    );
    await phase(
      'flood_single',
      async () => (floods.flood_single = await flooder.run(floodArgs('single', 'fs'))),
    );
    await phase('after', () => sleep(SETTINGS.phase_ms));
    await quiet.stop();
    await operators.stop();

    const accepted = new Map<string, string[]>();
    for (const s of quiet.samples) {
      if (s.message_id)
        (accepted.get(s.tenant) ?? accepted.set(s.tenant, []).get(s.tenant)!).push(s.message_id);
    }
    accepted.set(
      'noisy',
      Object.values(floods).flatMap((f) => f.accepted_ids),
    );
    console.log(
      `[${name}] following ${[...accepted.values()].reduce((a, l) => a + l.length, 0)} accepted messages to their end`,
    );
    const fate = await followToTheEnd(pool, accepted, SETTINGS.drain_max_ms);

    const noisyProcessed: Record<string, number[]> = {};
    for (const p of phases) noisyProcessed[p.name] = await processedPerSecond(pool, 'noisy', p.from, p.to);

    let solo: TopologyRun['solo'];
    if (SETTINGS.solo) {
      const soloPhases: PhaseWindow[] = [];
      const soloFloods: Record<string, FloodResult> = {};
      for (const mode of ['batch', 'single'] as const) {
        console.log(`[${name}] solo flood (${mode})`);
        const from = Date.now();
        soloFloods[mode] = await flooder.run(floodArgs(mode, `solo${mode[0]}`));
        soloPhases.push({ name: `solo_${mode}`, from, to: Date.now() });
      }
      const ids = new Map([['noisy', Object.values(soloFloods).flatMap((f) => f.accepted_ids)]]);
      const soloFate = await followToTheEnd(pool, ids, SETTINGS.drain_max_ms);
      const processed: Record<string, number[]> = {};
      for (const p of soloPhases) processed[p.name] = await processedPerSecond(pool, 'noisy', p.from, p.to);
      solo = { phases: soloPhases, floods: soloFloods, processed, fate: soloFate };
    }
    const exits = topology.processes.filter((p) => p.exited).map((p) => ({ name: p.name, code: p.exitCode }));
    return {
      name,
      t0,
      phases,
      quiet: quiet.samples,
      operators: operators.samples,
      floods,
      noisyProcessed,
      fate,
      processes,
      ticks: Object.fromEntries(topology.processes.map((p) => [p.name, p.ticks])),
      solo,
      crashed: exits,
      machine: machine.samples,
    };
  } finally {
    await machine.stop();
    flooder.close();
    await pool.end();
    await topology.stop();
    await clearPrefix(redis, PREFIX);
    redis.disconnect();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({ level: 'warn' });
  const services = await resolveServices(config, logger);
  try {
    const runs: TopologyRun[] = [];
    for (const t of SETTINGS.topologies)
      runs.push(await runTopology(t, services.databaseAdminUrl, services.redisUrl, config.appRole));
    const summaries = runs.map(summarize);
    // Every quiet round trip, for a closer look: [tenant, via, ms after t0, round trip ms, http,
    // status, enqueue→start ms, start→reply ms].
    const quietSamples = Object.fromEntries(
      runs.map((r) => [
        r.name,
        r.quiet.map((s) => [
          s.tenant,
          s.via,
          s.at - r.t0,
          s.done - s.at,
          s.http,
          s.status,
          s.queue_wait_ms,
          s.processing_ms,
          s.timing,
        ]),
      ]),
    );
    const finishedAt = new Date();
    printSummary(summaries);
    const files = await writeResult(
      'isolation',
      {
        settings: SETTINGS,
        targets: TARGETS,
        machine: { cpus: os.cpus().length, load: os.loadavg() },
        summaries,
        quiet_samples: quietSamples,
        finished_at: finishedAt,
      },
      finishedAt,
    );
    const svg = isolationChart(runs, summaries);
    const charts = await writeResultFile('isolation', 'svg', svg, finishedAt);
    if (process.env.BENCH_CHART_OUT) {
      await mkdir(path.dirname(process.env.BENCH_CHART_OUT), { recursive: true });
      await copyFile(charts[0]!, process.env.BENCH_CHART_OUT);
    }
    console.log(`\nwrote ${[...files, ...charts].join(', ')}`);
  } finally {
    await services.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
