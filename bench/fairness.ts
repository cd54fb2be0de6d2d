/**
 * Fair-scheduling benchmark (`npm run bench:fairness`): the real `Dispatcher` (per-tenant BullMQ
 * queues, `FairScheduler` picks, `getNextJob`) with jobs that sleep 20 ms at concurrency 50, fed
 * by producers in a child process (`lib/fairProducer.ts`) that add jobs with `TenantQueues` and
 * announce them as the ingress does. Measures, in one run so that ratios are against baselines on
 * the same (shared, noisy) machine:
 *
 *  (a) quiet tenants' dwell (enqueue → processing start) while a noisy tenant floods, against the
 *      same quiet load without the flood;
 *  (b) Jain's index of per-tenant completions over 1 s windows, equal weights, all backlogged;
 *  (c) share error with weights 3:2:1, all backlogged;
 *  (d) the same flood through one shared FIFO queue and a plain BullMQ `Worker` (throughput, dwell);
 *  (e) Redis commands per job and connections, 10 vs 1,000 tenants; plus a max_concurrency phase.
 *
 * About 3–5 minutes (flood rounds alternate dispatcher/FIFO, ABBA). Smaller runs: BENCH_FLOOD_JOBS,
 * BENCH_FLOOD_ROUNDS, BENCH_FLOOD_CHUNK, BENCH_QUIET_BASELINE_MS, BENCH_EQUAL_JOBS, BENCH_SCALE_JOBS.
 * Writes bench/results/fairness-<timestamp>.json and fairness-latest.json, and the same names in
 * .svg: per-tenant completions over time, one chart per flood run, equal weights and 3:2:1.
 */
import { type ChildProcess, fork } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';

import { type Job, Worker } from 'bullmq';
import { Redis } from 'ioredis';

import { loadConfig } from '../src/config';
import { systemClock } from '../src/domain/clock';
import { createLogger, type Logger } from '../src/logger';
import { Dispatcher } from '../src/queues/dispatcher';
import type { TenantSchedule } from '../src/queues/fairScheduler';
import { keyspace } from '../src/redis/keys';
import { resolveServices } from '../src/services/localServices';
import type { BenchJobData, ProducerReply, ProducerRequest } from './lib/fairProducer';
import {
  clearPrefix,
  type CommandCount,
  commandStats,
  commandStatsDelta,
  connectionCount,
  countDelta,
  histogram,
  installCommandCounter,
  jainIndex,
  rateChart,
  redisCpuSeconds,
  round,
  sleep,
  writeResult,
  writeResultFile,
} from './lib/queueBench';
import { formatTable, latencyStats, percentile } from './lib/stats';
import { type SvgChartOptions, svgCharts } from './lib/svgChart';

const PREFIX = 'mhbfair';
/** Connection name of this process's consumer connections (BullMQ names its own `mhbfair:…`). */
const CONSUMER_NAME = 'mhbfair-consumer';
const STATS_NAME = 'mhbfstats';
const FIFO_QUEUE = 'bench-fifo';
const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

const SETTINGS = {
  job_ms: 20,
  concurrency: 50,
  flood: {
    jobs: env('BENCH_FLOOD_JOBS', 50_000),
    chunk: env('BENCH_FLOOD_CHUNK', 100),
    rounds: env('BENCH_FLOOD_ROUNDS', 2),
  },
  quiet: { tenants: 9, per_second: 5, baseline_ms: env('BENCH_QUIET_BASELINE_MS', 10_000) },
  equal: { tenants: 10, jobs_each: env('BENCH_EQUAL_JOBS', 2_000), window_ms: 1000 },
  weighted: { weights: [3, 2, 1], jobs_each: 10_000, measure_ms: env('BENCH_WEIGHTED_MS', 6_000) },
  cap: { max_concurrency: 5, other_tenants: 3, jobs_each: 3_000, measure_ms: 5_000 },
  scale: { tenant_counts: [10, 1000], total_jobs: env('BENCH_SCALE_JOBS', 5_000), producer_concurrency: 16 },
};
const TARGETS = {
  quiet_p99_ms: 50,
  quiet_p99_ratio: 1.5,
  jain: 0.99,
  share_error: 0.02,
  throughput_ratio: 0.95,
  round_trips_per_job: 3,
};
const UNCAPPED: TenantSchedule = { weight: 1, maxConcurrency: Infinity, paused: false };

/** What happened to every job a consumer started, in arrays indexed by start order. */
class Recorder {
  readonly tenant: string[] = [];
  readonly cls: BenchJobData['c'][] = [];
  /** `job.timestamp`: when the producer added it (same machine clock). */
  readonly enq: number[] = [];
  readonly start: number[] = [];
  readonly end: number[] = [];
  readonly running = new Map<string, number>();
  readonly maxRunning = new Map<string, number>();
  readonly doneBy = new Map<string, number>();
  done = 0;
  private waiters: { test: () => boolean; resolve: () => void }[] = [];

  begin(tenant: string, cls: BenchJobData['c'], enq: number): number {
    const i = this.start.push(Date.now()) - 1;
    this.tenant.push(tenant);
    this.cls.push(cls);
    this.enq.push(enq);
    this.end.push(NaN);
    const r = (this.running.get(tenant) ?? 0) + 1;
    this.running.set(tenant, r);
    if (r > (this.maxRunning.get(tenant) ?? 0)) this.maxRunning.set(tenant, r);
    return i;
  }

  finish(i: number): void {
    this.end[i] = Date.now();
    const tenant = this.tenant[i]!;
    this.running.set(tenant, this.running.get(tenant)! - 1);
    this.done++;
    this.doneBy.set(this.cls[i]!, (this.doneBy.get(this.cls[i]!) ?? 0) + 1);
    this.waiters = this.waiters.filter((w) => (w.test() ? (w.resolve(), false) : true));
  }

  /** Resolves when `test` holds after a completion; rejects after `timeoutMs`. */
  until(test: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      this.waiters.push({
        test,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  indexes(pred: (i: number) => boolean): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.start.length; i++) if (pred(i)) out.push(i);
    return out;
  }
}

interface Consumer {
  close(): Promise<void>;
}

interface Env {
  redisUrl: string;
  logger: Logger;
  stats: Redis;
  producer: Producer;
  counter: ReturnType<typeof installCommandCounter>;
}

/** The real Dispatcher, its `process` recording and sleeping `job_ms`. */
async function startDispatcher(e: Env, rec: Recorder, schedules = new Map<string, TenantSchedule>()) {
  const connection = new Redis(e.redisUrl, { maxRetriesPerRequest: null, connectionName: CONSUMER_NAME });
  const dispatcher = new Dispatcher({
    kind: 'heartflow',
    connection,
    keys: keyspace(PREFIX),
    concurrency: SETTINGS.concurrency,
    process: async (job: Job, tenantId: string) => {
      const i = rec.begin(tenantId, (job.data as BenchJobData).c, job.timestamp);
      await sleep(SETTINGS.job_ms);
      rec.finish(i);
    },
    // eslint-disable-next-line @typescript-eslint/require-await
    scheduleOf: async (tenantId) => schedules.get(tenantId) ?? UNCAPPED,
    logger: e.logger,
    clock: systemClock,
  });
  await dispatcher.start();
  return {
    dispatcher,
    async close() {
      await dispatcher.close();
      await connection.quit();
    },
  };
}

/** The baseline: one shared queue, a plain BullMQ Worker with the same concurrency. */
async function startFifo(e: Env, rec: Recorder): Promise<Consumer> {
  const connection = new Redis(e.redisUrl, { maxRetriesPerRequest: null, connectionName: CONSUMER_NAME });
  const worker = new Worker(
    FIFO_QUEUE,
    async (job: Job) => {
      const data = job.data as BenchJobData;
      const i = rec.begin(data.t, data.c, job.timestamp);
      await sleep(SETTINGS.job_ms);
      rec.finish(i);
    },
    { connection, prefix: PREFIX, concurrency: SETTINGS.concurrency },
  );
  worker.on('error', (err) => e.logger.warn({ err: err.message }, 'fifo worker error'));
  await worker.waitUntilReady();
  return {
    async close() {
      await worker.close();
      await connection.quit();
    },
  };
}

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;
type Request = WithoutId<ProducerRequest>;

class Producer {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private constructor(private readonly child: ChildProcess) {
    child.on('message', (m: ProducerReply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error) p.reject(new Error(`producer: ${m.error}`));
      else p.resolve(m.result);
    });
  }

  static start(redisUrl: string): Promise<Producer> {
    const child = fork(path.join(__dirname, 'lib/fairProducer.ts'), [], {
      env: {
        ...process.env,
        BENCH_PREFIX: PREFIX,
        BENCH_REDIS_URL: redisUrl,
        BENCH_CONNECTION_NAME: 'mhbfprod',
      },
      execArgv: ['--import', 'tsx'],
    });
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`producer exited with ${code}`)));
      const producer = new Producer(child);
      producer.pending.set(0, { resolve: () => resolve(producer), reject });
    });
  }

  request<T = unknown>(r: Request): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ ...r, id });
    });
  }

  commands(): Promise<CommandCount> {
    return this.request<CommandCount>({ op: 'commands' });
  }

  async close(): Promise<void> {
    this.child.removeAllListeners('exit');
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    await this.request({ op: 'close' }).catch(() => undefined);
    await exited;
  }
}

/** Redis traffic of a phase: server-side `INFO commandstats` and both processes' own counts. */
async function measureCommands(e: Env) {
  const [server, consumer, producer] = [
    await commandStats(e.stats),
    e.counter.snapshot(),
    await e.producer.commands(),
  ];
  const cpu = process.cpuUsage();
  const redisCpu = await redisCpuSeconds(e.stats);
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  return async (jobs: number) => {
    delay.disable();
    const cpu2 = process.cpuUsage(cpu);
    const redisCpu2 = await redisCpuSeconds(e.stats);
    const [server2, consumer2, producer2] = [
      await commandStats(e.stats),
      e.counter.snapshot(),
      await e.producer.commands(),
    ];
    const s = commandStatsDelta(server, server2);
    const c = countDelta(consumer, consumer2);
    const p = countDelta(producer, producer2);
    const per = (n: number) => round(n / jobs, 3);
    return {
      jobs,
      per_job: {
        consumer_commands: per(c.commands),
        producer_commands: per(p.commands),
        all_commands: per(c.commands + p.commands),
        consumer_round_trips: per(c.roundTrips),
        producer_round_trips: per(p.roundTrips),
        all_round_trips: per(c.roundTrips + p.roundTrips),
        server_calls_incl_inside_scripts: per(s.total_calls),
        server_script_calls: per(s.script_calls),
        /** CPU of this (consumer) process per job, µs: less sensitive to a busy machine than wall time. */
        consumer_cpu_us: round((cpu2.user + cpu2.system) / jobs, 1),
        /** Redis server CPU per job, µs (server-wide: other clients of a shared server count too). */
        redis_cpu_us: round(((redisCpu2 - redisCpu) * 1e6) / jobs, 1),
      },
      /** Event-loop delay of the consumer process over the phase, ms. */
      consumer_event_loop_delay_ms: {
        p50: round(delay.percentile(50) / 1e6, 2),
        p99: round(delay.percentile(99) / 1e6, 2),
        max: round(delay.max / 1e6, 2),
      },
      consumer: c,
      producer: p,
      server: s,
    };
  };
}

const quietTenants = () => Array.from({ length: SETTINGS.quiet.tenants }, (_, i) => `quiet${i}`);

/** Phase (a)/(d) without the flood: the quiet tenants alone. */
async function quietBaseline(e: Env) {
  const rec = new Recorder();
  const consumer = await startDispatcher(e, rec);
  const quiet = await e.producer.request<{ sent: number; schedule_lag: unknown }>({
    op: 'quiet',
    mode: 'tenant',
    tenants: quietTenants(),
    perSecond: SETTINGS.quiet.per_second,
    maxMs: SETTINGS.quiet.baseline_ms,
  });
  await rec.until(() => rec.done >= quiet.sent, 30_000, 'the quiet jobs');
  await consumer.close();
  const dwell = rec.indexes(() => true).map((i) => rec.start[i]! - rec.enq[i]!);
  return { sent: quiet.sent, schedule_lag_ms: quiet.schedule_lag, dwell_ms: latencyStats(dwell) };
}

/** Phase (a) (`dispatcher`) or (d) (`fifo`): the noisy flood plus the quiet open-loop load. */
async function floodPhase(e: Env, kind: 'dispatcher' | 'fifo') {
  const rec = new Recorder();
  const consumer = kind === 'dispatcher' ? await startDispatcher(e, rec) : await startFifo(e, rec);
  const mode = kind === 'dispatcher' ? 'tenant' : 'fifo';
  const n = SETTINGS.flood.jobs;
  const commands = await measureCommands(e);
  const quietP = e.producer.request<{ sent: number; schedule_lag: unknown }>({
    op: 'quiet',
    mode,
    tenants: quietTenants(),
    perSecond: SETTINGS.quiet.per_second,
    maxMs: 600_000,
  });
  await sleep(1000);
  const flood = await e.producer.request<{ ms: number }>({
    op: 'flood',
    mode,
    tenant: 'noisy',
    jobs: n,
    chunk: SETTINGS.flood.chunk,
  });
  const addedAt = Date.now();
  const connections = await connectionCount(e.stats, 'mhbfair');
  await rec.until(() => (rec.doneBy.get('flood') ?? 0) >= n, 300_000, 'the flood');
  await e.producer.request({ op: 'stop-quiet' });
  const quiet = await quietP;
  await rec.until(() => rec.done >= n + quiet.sent, 300_000, 'the quiet jobs');
  const traffic = await commands(rec.done);
  /** The dispatcher's own counts: fetches, completions that fetched the next job, empty reads. */
  const glue = 'dispatcher' in consumer ? { ...(consumer.dispatcher as Dispatcher).counters } : undefined;
  await consumer.close();

  const floodIdx = rec.indexes((i) => rec.cls[i] === 'flood');
  const floodStarts = floodIdx.map((i) => rec.start[i]!);
  const from = Math.min(...floodStarts);
  const to = Math.max(...floodStarts);
  // Quiet jobs enqueued while the noisy tenant had a backlog.
  const during = rec.indexes((i) => rec.cls[i] === 'quiet' && rec.enq[i]! >= from && rec.enq[i]! <= to);
  const dwellOf = (idx: number[]) => latencyStats(idx.map((i) => rec.start[i]! - rec.enq[i]!));
  const dwell = dwellOf(during);
  const ends = [...rec.end].sort((a, b) => a - b);
  const floodEnds = floodIdx.map((i) => rec.end[i]!).sort((a, b) => a - b);
  const t10 = percentile(floodEnds, 10);
  const t90 = percentile(floodEnds, 90);
  const inSteady = ends.filter((t) => t > t10 && t <= t90).length;
  const steady = (inSteady * 1000) / (t90 - t10);
  const overall = (rec.done * 1000) / (ends[ends.length - 1]! - Math.min(...rec.start));

  const bucketMs = 1000;
  const t0 = Math.min(...rec.start);
  const buckets = Math.ceil((ends[ends.length - 1]! - t0) / bucketMs);
  const series = {
    noisy: histogram(floodEnds, t0, bucketMs, buckets),
    'quiet (9 tenants)': histogram(
      rec.indexes((i) => rec.cls[i] === 'quiet').map((i) => rec.end[i]!),
      t0,
      bucketMs,
      buckets,
    ),
  };
  const chart = rateChart(`${kind}: completions per second during the flood`, bucketMs, series);
  const plot: SvgChartOptions = {
    title: `Flood, ${kind === 'dispatcher' ? 'fair dispatcher' : 'shared FIFO'}: noisy tenant vs 9 quiet tenants`,
    bucketMs,
    series,
    yScale: 'log',
  };
  return {
    kind,
    flood_jobs: n,
    flood_add_ms: flood.ms,
    quiet_sent: quiet.sent,
    quiet_schedule_lag_ms: quiet.schedule_lag,
    flood_backlog_window_ms: to - from,
    quiet_dwell_during_flood_ms: dwell,
    /** The same, split: while the producer was still adding the flood, and after (backlog only). */
    quiet_dwell_while_flood_added_ms: dwellOf(during.filter((i) => rec.enq[i]! <= addedAt)),
    quiet_dwell_after_flood_added_ms: dwellOf(during.filter((i) => rec.enq[i]! > addedAt)),
    throughput_jobs_per_s: { steady_10_to_90_pct: Math.round(steady), overall: Math.round(overall) },
    connections,
    redis: traffic,
    dispatcher_glue: glue,
    chart,
    plot,
    samples: {
      during: during.map((i) => rec.start[i]! - rec.enq[i]!),
      after: during.filter((i) => rec.enq[i]! > addedAt).map((i) => rec.start[i]! - rec.enq[i]!),
    },
  };
}

/** (b): equal weights, every tenant backlogged; Jain's index of completions per 1 s window. */
async function equalPhase(e: Env) {
  const tenants = Array.from({ length: SETTINGS.equal.tenants }, (_, i) => `eq${i}`);
  const each = SETTINGS.equal.jobs_each;
  const produced = await e.producer.request<{ ms: number }>({
    op: 'backlog',
    mode: 'tenant',
    counts: Object.fromEntries(tenants.map((t) => [t, each])),
    chunk: 500,
  });
  const rec = new Recorder();
  const commands = await measureCommands(e);
  const consumer = await startDispatcher(e, rec);
  await rec.until(() => rec.done >= tenants.length * each, 300_000, 'the backlogs');
  const traffic = await commands(rec.done);
  await consumer.close();

  const t0 = Math.min(...rec.start);
  // Every tenant is backlogged until its last job starts.
  const lastStart = Math.min(
    ...tenants.map((t) => Math.max(...rec.indexes((i) => rec.tenant[i] === t).map((i) => rec.start[i]!))),
  );
  const w = SETTINGS.equal.window_ms;
  const windows = Math.floor((lastStart - t0) / w);
  const perTenant = tenants.map((t) =>
    histogram(
      rec.indexes((i) => rec.tenant[i] === t).map((i) => rec.end[i]!),
      t0,
      w,
      windows,
    ),
  );
  const jain = Array.from({ length: windows }, (_, k) => jainIndex(perTenant.map((h) => h[k]!)));
  const series = Object.fromEntries(tenants.map((t, j) => [t, perTenant[j]!]));
  const chart = rateChart('equal weights: completions per tenant', w, series);
  const plot: SvgChartOptions = { title: 'Equal weights: completions per tenant', bucketMs: w, series };
  return {
    tenants: tenants.length,
    jobs_each: each,
    add_ms: produced.ms,
    backlogged_ms: lastStart - t0,
    windows,
    jain_per_window: jain.map((j) => round(j, 5)),
    jain_min: round(Math.min(...jain), 5),
    jain_mean: round(jain.reduce((a, b) => a + b, 0) / jain.length, 5),
    completions_per_window: perTenant,
    redis: traffic,
    chart,
    plot,
  };
}

/** Preloads backlogs, runs the dispatcher `measureMs`, closes it; the rest of the backlog is dropped. */
async function backloggedRun(
  e: Env,
  counts: Record<string, number>,
  schedules: Map<string, TenantSchedule>,
  measureMs: number,
) {
  await e.producer.request({ op: 'backlog', mode: 'tenant', counts, chunk: 500 });
  const rec = new Recorder();
  const consumer = await startDispatcher(e, rec, schedules);
  await sleep(measureMs);
  const stoppedAt = Date.now();
  await consumer.close();
  await clearPrefix(e.stats, `${PREFIX}:`);
  const t0 = Math.min(...rec.start);
  // The window ends when a tenant ran out of work (its last job started), or at the stop.
  const drainedAt = Object.entries(counts).map(([t, n]) => {
    const starts = rec.indexes((i) => rec.tenant[i] === t).map((i) => rec.start[i]!);
    return starts.length >= n ? Math.max(...starts) : Infinity;
  });
  const t1 = Math.min(stoppedAt, ...drainedAt);
  return { rec, t0, t1 };
}

/** (c): weights 3:2:1, all backlogged: observed shares of completions against w_i / Σw. */
async function weightedPhase(e: Env) {
  const weights = SETTINGS.weighted.weights;
  const tenants = weights.map((w) => `w${w}`);
  const schedules = new Map(weights.map((w, i) => [tenants[i]!, { ...UNCAPPED, weight: w }]));
  const { rec, t0, t1 } = await backloggedRun(
    e,
    Object.fromEntries(tenants.map((t) => [t, SETTINGS.weighted.jobs_each])),
    schedules,
    SETTINGS.weighted.measure_ms,
  );
  const ended = rec.indexes((i) => rec.end[i]! > t0 && rec.end[i]! <= t1);
  const total = ended.length;
  const sum = weights.reduce((a, b) => a + b, 0);
  const shares = tenants.map((t, j) => {
    const observed = ended.filter((i) => rec.tenant[i] === t).length / total;
    const expected = weights[j]! / sum;
    return {
      tenant: t,
      weight: weights[j]!,
      observed: round(observed, 4),
      expected: round(expected, 4),
      error: round(Math.abs(observed - expected) / expected, 4),
    };
  });
  const bucketMs = 500;
  const buckets = Math.floor((t1 - t0) / bucketMs);
  const series = Object.fromEntries(
    tenants.map((t) => [
      t,
      histogram(
        rec.indexes((i) => rec.tenant[i] === t).map((i) => rec.end[i]!),
        t0,
        bucketMs,
        buckets,
      ),
    ]),
  );
  const chart = rateChart('weights 3:2:1: completions per tenant', bucketMs, series);
  const plot: SvgChartOptions = { title: 'Weights 3:2:1: completions per tenant', bucketMs, series };
  return {
    window_ms: t1 - t0,
    completions: total,
    shares,
    share_error: Math.max(...shares.map((s) => s.error)),
    chart,
    plot,
  };
}

/** A tenant with max_concurrency 5 among uncapped backlogged tenants: its running jobs never exceed 5. */
async function capPhase(e: Env) {
  const cap = SETTINGS.cap.max_concurrency;
  const others = Array.from({ length: SETTINGS.cap.other_tenants }, (_, i) => `free${i}`);
  const schedules = new Map([['capped', { ...UNCAPPED, maxConcurrency: cap }]]);
  const counts = Object.fromEntries(['capped', ...others].map((t) => [t, SETTINGS.cap.jobs_each]));
  const { rec, t0, t1 } = await backloggedRun(e, counts, schedules, SETTINGS.cap.measure_ms);
  const started = (t: string) => rec.indexes((i) => rec.tenant[i] === t && rec.start[i]! <= t1).length;
  return {
    max_concurrency: cap,
    observed_max_running: rec.maxRunning.get('capped') ?? 0,
    violations: Math.max(0, (rec.maxRunning.get('capped') ?? 0) - cap),
    window_ms: t1 - t0,
    capped_jobs_per_s: Math.round((started('capped') * 1000) / (t1 - t0)),
    capped_jobs_per_s_bound: Math.round((cap * 1000) / SETTINGS.job_ms),
    others_jobs_per_s: Math.round((others.reduce((a, t) => a + started(t), 0) * 1000) / (t1 - t0)),
    others_max_running: Object.fromEntries(others.map((t) => [t, rec.maxRunning.get(t) ?? 0])),
  };
}

/** (e): the same number of jobs over 10 or 1,000 tenants, added one by one as the ingress does. */
async function scalePhase(e: Env, tenantCount: number) {
  const each = Math.max(1, Math.round(SETTINGS.scale.total_jobs / tenantCount));
  const tenants = Array.from({ length: tenantCount }, (_, i) => `s${tenantCount}_${i}`);
  const rec = new Recorder();
  const consumer = await startDispatcher(e, rec);
  const idle = await connectionCount(e.stats, 'mhbfair');
  const commands = await measureCommands(e);
  const produced = await e.producer.request<{ jobs: number; ms: number }>({
    op: 'trickle',
    counts: Object.fromEntries(tenants.map((t) => [t, each])),
    concurrency: SETTINGS.scale.producer_concurrency,
  });
  await rec.until(() => rec.done >= produced.jobs, 300_000, 'the scale jobs');
  const traffic = await commands(rec.done);
  const loaded = await connectionCount(e.stats, 'mhbfair');
  const registered = consumer.dispatcher.snapshot().registered;
  await consumer.close();
  const dwell = latencyStats(rec.indexes(() => true).map((i) => rec.start[i]! - rec.enq[i]!));
  return {
    tenants: tenantCount,
    jobs_each: each,
    jobs: produced.jobs,
    producer_ms: produced.ms,
    tenants_registered: registered,
    connections: {
      consumer_idle: idle.ours,
      consumer_after_all_tenants: loaded.ours,
      server_total: loaded.all,
    },
    dwell_ms: dwell,
    redis: traffic,
  };
}

function verdict(value: number, op: '<=' | '>=' | '==', target: number) {
  const pass = op === '<=' ? value <= target : op === '>=' ? value >= target : value === target;
  return { value: round(value, 4), target: `${op} ${target}`, pass };
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const loadAtStart = os.loadavg()[0]!;
  const config = loadConfig();
  const logger = createLogger({ level: 'warn' });
  const services = await resolveServices(config, logger, { database: 'postgres' });
  const counter = installCommandCounter((c) => c.options.connectionName === STATS_NAME);
  const stats = new Redis(services.redisUrl, { connectionName: STATS_NAME });
  let producer: Producer | undefined;
  try {
    await clearPrefix(stats, `${PREFIX}:`);
    producer = await Producer.start(services.redisUrl);
    const e: Env = { redisUrl: services.redisUrl, logger, stats, producer, counter };
    const reset = () => clearPrefix(stats, `${PREFIX}:`);
    const t = () => `${((Date.now() - startedAt.getTime()) / 1000).toFixed(0)} s`;

    console.log(
      `[${t()}] (a) quiet load alone: ${SETTINGS.quiet.tenants} tenants × ${SETTINGS.quiet.per_second}/s for ${SETTINGS.quiet.baseline_ms} ms…`,
    );
    const baseline = await quietBaseline(e);
    await reset();
    const floods: Record<'dispatcher' | 'fifo', Awaited<ReturnType<typeof floodPhase>>[]> = {
      dispatcher: [],
      fifo: [],
    };
    for (let r = 0; r < SETTINGS.flood.rounds; r++) {
      for (const kind of r % 2 === 0
        ? (['dispatcher', 'fifo'] as const)
        : (['fifo', 'dispatcher'] as const)) {
        console.log(
          `[${t()}] (${kind === 'dispatcher' ? 'a' : 'd'}) flood of ${SETTINGS.flood.jobs} jobs + quiet load, ${kind}…`,
        );
        const result = await floodPhase(e, kind);
        floods[kind].push(result);
        console.log(
          `  ${result.throughput_jobs_per_s.steady_10_to_90_pct} jobs/s, quiet p99 dwell ${result.quiet_dwell_during_flood_ms.p99_ms} ms`,
          result.dispatcher_glue ? JSON.stringify(result.dispatcher_glue) : '',
        );
        await reset();
      }
    }
    console.log(
      `[${t()}] (b) ${SETTINGS.equal.tenants} tenants × ${SETTINGS.equal.jobs_each} jobs, equal weights…`,
    );
    const equal = await equalPhase(e);
    await reset();
    console.log(
      `[${t()}] (c) weights ${SETTINGS.weighted.weights.join(':')}, ${SETTINGS.weighted.measure_ms} ms…`,
    );
    const weighted = await weightedPhase(e);
    console.log(`[${t()}] max_concurrency ${SETTINGS.cap.max_concurrency} phase…`);
    const cap = await capPhase(e);
    const scale = [];
    for (const n of SETTINGS.scale.tenant_counts) {
      console.log(`[${t()}] (e) ${SETTINGS.scale.total_jobs} jobs over ${n} tenants…`);
      scale.push(await scalePhase(e, n));
      await reset();
    }

    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const disp = floods.dispatcher;
    const fifo = floods.fifo;
    // Quiet dwell pooled over the rounds (more samples for the p99).
    const pooled = latencyStats(disp.flatMap((f) => f.samples.during));
    const pooledAfterAdd = latencyStats(disp.flatMap((f) => f.samples.after));
    const quietP99 = pooled.p99_ms;
    const throughputRatio =
      mean(disp.map((f) => f.throughput_jobs_per_s.steady_10_to_90_pct)) /
      mean(fifo.map((f) => f.throughput_jobs_per_s.steady_10_to_90_pct));
    const [few, many] = [scale[0]!, scale[scale.length - 1]!];
    const steadyRoundTrips = equal.redis.per_job.consumer_commands;
    const targets = {
      quiet_p99_dwell_ms: verdict(quietP99, '<=', TARGETS.quiet_p99_ms),
      quiet_p99_dwell_vs_no_flood: verdict(
        quietP99 / baseline.dwell_ms.p99_ms,
        '<=',
        TARGETS.quiet_p99_ratio,
      ),
      jain_min_over_1s_windows: verdict(equal.jain_min, '>=', TARGETS.jain),
      share_error_3_2_1: verdict(weighted.share_error, '<=', TARGETS.share_error),
      throughput_vs_fifo: verdict(throughputRatio, '>=', TARGETS.throughput_ratio),
      cap_violations: verdict(cap.violations, '==', 0),
      connections_flat_10_vs_1000_tenants: verdict(
        many.connections.consumer_after_all_tenants - few.connections.consumer_after_all_tenants,
        '==',
        0,
      ),
      consumer_round_trips_per_job_steady: verdict(steadyRoundTrips, '<=', TARGETS.round_trips_per_job),
      // The whole path of a job as the ingress sends it: add + announce (producer), fetch + complete.
      // Concurrent senders share round trips (0.1 per job here), but each job waits for one: the
      // producer's side counts as at least 1.
      path_round_trips_per_job_10_tenants: verdict(
        round(
          few.redis.per_job.consumer_round_trips + Math.max(1, few.redis.per_job.producer_round_trips),
          3,
        ),
        '<=',
        TARGETS.round_trips_per_job,
      ),
    };
    const finishedAt = new Date();
    const strip = <T extends { chart: string }>(x: T) => ({
      ...x,
      chart: undefined,
      plot: undefined,
      samples: undefined,
    });
    const result = {
      benchmark: 'fairness',
      started_at: startedAt.toISOString(),
      finished_at: finishedAt.toISOString(),
      elapsed_s: Math.round((finishedAt.getTime() - startedAt.getTime()) / 1000),
      machine: {
        cpus: os.cpus().length,
        cpu_model: os.cpus()[0]?.model ?? 'unknown',
        node: process.version,
        redis: (/redis_version:(\S+)/.exec(await stats.info('server')) ?? [])[1],
        /** 1-minute load average at start and end: the machine is shared, other work competes. */
        load_avg_1m: { start: round(loadAtStart, 2), end: round(os.loadavg()[0]!, 2) },
      },
      settings: SETTINGS,
      notes: [
        'Dwell = processing start − job.timestamp (set by the producer process when it adds the job), same machine clock.',
        'Producers run in a child process; the noisy flood uses addBulk chunks of `flood.chunk` (100 = the most one /chat/send/batch request carries) with one announce per chunk, quiet and scale jobs one add + announce each.',
        'Jobs carry the heartflow job options (priority 5, attempts 3, removeOnComplete) in both the per-tenant queues and the FIFO baseline.',
        'Commands per job: "consumer" and "producer" are top-level commands each process wrote (a script call is one; a round trip is at most one command); "server_calls_incl_inside_scripts" is INFO commandstats, server-wide, counting the commands Lua scripts run, and other clients of a shared server.',
        'consumer_round_trips_per_job_steady is phase (b): every tenant backlogged, no empty fetches. path_round_trips_per_job_10_tenants adds the producer side as the ingress sends a job (TenantQueues.enqueueHeartflow: the add and the announce script written together), from phase (e) with 10 tenants; commands sent together on one connection in one tick count as one round trip (all_commands has them one by one), and the producer side counts at least one per job.',
      ],
      no_flood: baseline,
      flood: {
        dispatcher: disp.map(strip),
        fifo: fifo.map(strip),
        quiet_dwell_pooled_ms: pooled,
        quiet_dwell_after_flood_added_pooled_ms: pooledAfterAdd,
        throughput_ratio_per_round: disp.map((d, i) =>
          round(
            d.throughput_jobs_per_s.steady_10_to_90_pct / fifo[i]!.throughput_jobs_per_s.steady_10_to_90_pct,
            3,
          ),
        ),
      },
      equal: strip(equal),
      weighted: strip(weighted),
      cap,
      scale,
      targets,
    };
    const files = await writeResult('fairness', result, finishedAt);
    // One chart per flood run (numbered when there are several rounds), then (b) and (c).
    const numbered = (runs: typeof disp) =>
      runs.map((f, i) => ({
        ...f.plot,
        title: runs.length > 1 ? `${f.plot.title}, round ${i + 1}` : f.plot.title,
      }));
    const svgFiles = await writeResultFile(
      'fairness',
      'svg',
      svgCharts([...numbered(disp), ...numbered(fifo), equal.plot, weighted.plot]),
      finishedAt,
    );

    console.log('');
    for (const f of [...disp, ...fifo]) console.log(`${f.chart}\n`);
    console.log(`${equal.chart}\n`);
    console.log(`${weighted.chart}\n`);
    const d = (x: { p50_ms: number; p99_ms: number; max_ms: number; n: number }) => [
      String(x.n),
      x.p50_ms.toFixed(1),
      x.p99_ms.toFixed(1),
      x.max_ms.toFixed(1),
    ];
    console.log(
      formatTable([
        ['quiet dwell (ms)', 'n', 'p50', 'p99', 'max', 'jobs/s'],
        ['no flood, dispatcher', ...d(baseline.dwell_ms), '-'],
        ...disp.map((f, i) => [
          `flood, dispatcher #${i + 1}`,
          ...d(f.quiet_dwell_during_flood_ms),
          String(f.throughput_jobs_per_s.steady_10_to_90_pct),
        ]),
        ['flood, dispatcher, pooled', ...d(pooled), '-'],
        ['  of which after flood added', ...d(pooledAfterAdd), '-'],
        ...fifo.map((f, i) => [
          `flood, shared FIFO #${i + 1}`,
          ...d(f.quiet_dwell_during_flood_ms),
          String(f.throughput_jobs_per_s.steady_10_to_90_pct),
        ]),
      ]),
    );
    console.log('');
    const c = (name: string, r: { per_job: Record<string, number> }) => [
      name,
      String(r.per_job.consumer_commands),
      String(r.per_job.producer_commands),
      String(r.per_job.server_script_calls),
      String(r.per_job.server_calls_incl_inside_scripts),
      String(r.per_job.consumer_cpu_us),
      String(r.per_job.redis_cpu_us),
    ];
    console.log(
      formatTable([
        [
          'per job',
          'consumer cmds',
          'producer cmds',
          'server scripts',
          'server calls',
          'consumer µs',
          'redis µs',
        ],
        ...disp.map((f, i) => c(`flood, dispatcher #${i + 1}`, f.redis)),
        ...fifo.map((f, i) => c(`flood, shared FIFO #${i + 1}`, f.redis)),
        c('equal backlogs (steady)', equal.redis),
        ...scale.map((s) => c(`${s.tenants} tenants × ${s.jobs_each} (1 by 1)`, s.redis)),
      ]),
    );
    console.log('');
    console.log(
      formatTable([
        ['connections', 'consumer idle', 'consumer loaded', 'registered tenants'],
        ...scale.map((s) => [
          `${s.tenants} tenants`,
          String(s.connections.consumer_idle),
          String(s.connections.consumer_after_all_tenants),
          String(s.tenants_registered),
        ]),
      ]),
    );
    console.log(
      `\nmax_concurrency ${cap.max_concurrency}: observed max running ${cap.observed_max_running}, ${cap.capped_jobs_per_s} jobs/s (bound ${cap.capped_jobs_per_s_bound})`,
    );
    console.log(
      `weights 3:2:1 shares: ${weighted.shares.map((s) => `${s.tenant} ${s.observed} (exp ${s.expected})`).join(', ')}`,
    );
    console.log(
      `Jain per 1 s window: min ${equal.jain_min}, mean ${equal.jain_mean} over ${equal.windows} windows\n`,
    );
    for (const [name, v] of Object.entries(targets)) {
      console.log(
        `${name.padEnd(38)} ${String(v.value).padStart(9)} (target ${v.target}) ${v.pass ? 'PASS' : 'FAIL'}`,
      );
    }
    console.log(`\nwrote ${files.join(' and ')}`);
    console.log(`wrote ${svgFiles.join(' and ')}`);
  } finally {
    await producer?.close();
    await clearPrefix(stats, `${PREFIX}:`).catch(() => undefined);
    stats.disconnect();
    await services.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
