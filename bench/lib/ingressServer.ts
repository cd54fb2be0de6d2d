/**
 * Child process of `bench/ingress.ts`: serves the whole MaiHive app (`--mode app`), the minimal
 * route a user would write without MaiHive — Express parsing JSON and `queue.add` on one BullMQ
 * queue (`--mode queue`, the baseline the send path is judged against) — or a bare Express JSON
 * echo route (`--mode echo`, the floor), all with the same Node flags, so they are compared in the
 * same process setup. Reports its port and, on request, its CPU time and memory over IPC.
 */
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

import { Queue } from 'bullmq';
import express from 'express';
import { Redis } from 'ioredis';
import pino, { type LevelWithSilent } from 'pino';

import { createApp } from '../../src/api/app';
import { compose } from '../../src/composition';
import { loadConfig } from '../../src/config';
import type { IngressGovernor } from '../../src/ingress/ingressGovernor';
import { createLogger } from '../../src/logger';

type Message =
  | { type: 'stats'; gc?: boolean }
  | { type: 'profile'; action: 'start' }
  | { type: 'profile'; action: 'stop'; file: string }
  | { type: 'heap'; action: 'start' }
  | { type: 'heap'; action: 'stop'; file: string }
  | { type: 'close' };

/**
 * CPU profiling of a measured run only (start-up and warm-up left out), through the inspector: the
 * parent asks for it when BENCH_PROFILE_DIR is set, and reads the file with any `.cpuprofile` viewer.
 */
const profiler = new Session();
async function profile(msg: Extract<Message, { type: 'profile' }>): Promise<void> {
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) =>
      profiler.post(method, params, (err, result) => (err ? reject(err) : resolve(result))),
    );
  if (msg.action === 'start') {
    profiler.connect();
    await post('Profiler.enable');
    await post('Profiler.start');
  } else {
    const { profile: data } = (await post('Profiler.stop')) as { profile: unknown };
    profiler.disconnect();
    await writeFile(msg.file, JSON.stringify(data));
  }
  process.send!({ type: 'profiled' });
}

/**
 * Allocation sampling of a measured run (BENCH_HEAP_PROFILE_DIR): every sampled allocation, the
 * ones collected since included, so the profile sums to what the run allocated (bytes per send),
 * not to what is still live. Read with any `.heapprofile` viewer.
 */
async function heapProfile(msg: Extract<Message, { type: 'heap' }>): Promise<void> {
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) =>
      profiler.post(method, params, (err, result) => (err ? reject(err) : resolve(result))),
    );
  if (msg.action === 'start') {
    profiler.connect();
    await post('HeapProfiler.enable');
    await post('HeapProfiler.startSampling', {
      samplingInterval: 1024,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  } else {
    const { profile: data } = (await post('HeapProfiler.stopSampling')) as { profile: unknown };
    profiler.disconnect();
    await writeFile(msg.file, JSON.stringify(data));
  }
  process.send!({ type: 'profiled' });
}

/**
 * Redis commands this process has sent (every connection: ioredis's `sendCommand`), by name; a
 * pipelined batch counts each command it carries. Per request, the steadiest measure of what a
 * send asks of Redis.
 */
const redisCommands: Record<string, number> = {};
{
  const proto = Redis.prototype as unknown as { sendCommand: (...args: unknown[]) => unknown };
  const original = proto.sendCommand;
  proto.sendCommand = function (this: unknown, ...args: unknown[]) {
    const name = (args[0] as { name?: string } | undefined)?.name ?? '?';
    redisCommands[name] = (redisCommands[name] ?? 0) + 1;
    return original.apply(this, args);
  };
}

/** Garbage collections so far: count, total and longest pause, ms. */
const gc = { count: 0, totalMs: 0, maxMs: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gc.count++;
    gc.totalMs += entry.duration;
    gc.maxMs = Math.max(gc.maxMs, entry.duration);
  }
}).observe({ entryTypes: ['gc'] });

/**
 * The event-loop delay as the ingress gate sees it (p99 of 500 ms windows, 10 ms resolution):
 * the windows so far and the worst one, so that a run can tell whether the governor's bound was hit.
 */
const loop = { windows: 0, over200: 0, worstP99Ms: 0 };
{
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  setInterval(() => {
    const p99 = delay.percentile(99) / 1e6;
    loop.windows++;
    if (p99 > 200) loop.over200++;
    loop.worstP99Ms = Math.max(loop.worstP99Ms, p99);
    delay.reset();
  }, 500).unref();
}

/**
 * BENCH_TRACE_GOVERNOR=1: prints (stderr) every event-loop delay reading the ingress gate hands
 * its governor above 100 ms, and every refusal's reason, with the ms since start.
 */
function traceGovernor(governor: IngressGovernor): void {
  const t0 = Date.now();
  const setLoopDelay = governor.setLoopDelay.bind(governor);
  governor.setLoopDelay = (ms: number) => {
    const inFlight = governor.snapshot().inFlight;
    if (ms > 100 || inFlight > 100) {
      process.stderr.write(
        `[governor] +${Date.now() - t0} ms loop delay p99 ${ms.toFixed(0)} ms, in flight ${inFlight}\n`,
      );
    }
    setLoopDelay(ms);
  };
  const admit = governor.admit.bind(governor);
  let last = '';
  governor.admit = (tenantId, limits) => {
    const d = admit(tenantId, limits);
    if (!d.admitted) {
      const line = `${d.reason} inFlight ${d.inFlight} limit ${d.limit}`;
      if (line !== last) process.stderr.write(`[governor] +${Date.now() - t0} ms refused: ${line}\n`);
      last = line;
    }
    return d;
  };
}

/** What the parent reads between phases: cumulative CPU µs and the memory figures, bytes. */
export interface ChildStats {
  type: 'stats';
  /** Requests the ingress governor refused so far (app mode; 0 otherwise). */
  shed: number;
  /** Requests the ingress governor counts in progress now (app mode; 0 otherwise). */
  inFlight: number;
  redisCommands: Record<string, number>;
  gc: { count: number; totalMs: number; maxMs: number };
  loop: { windows: number; over200: number; worstP99Ms: number };
  cpuUs: number;
  rss: number;
  maxRss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

function stats(governor: { shed: number; inFlight: number }): ChildStats {
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  return {
    type: 'stats',
    ...governor,
    redisCommands: { ...redisCommands },
    gc: { ...gc },
    loop: { ...loop },
    cpuUs: cpu.user + cpu.system,
    rss: mem.rss,
    // resourceUsage reports kilobytes.
    maxRss: process.resourceUsage().maxRSS * 1024,
    heapUsed: mem.heapUsed,
    heapTotal: mem.heapTotal,
    external: mem.external,
    arrayBuffers: mem.arrayBuffers,
  };
}

async function main(): Promise<void> {
  const mode = process.argv[process.argv.indexOf('--mode') + 1];
  // The bench runs silent; BENCH_LOG_LEVEL=info measures the access log too, its lines going to
  // BENCH_LOG_FILE (default /dev/null).
  const level = (process.env.BENCH_LOG_LEVEL ?? 'silent') as LevelWithSilent;
  // Production settings need a server key for stored secrets; the bench stores none of value.
  const benchSecret = 'bench-server-key-bench-server-key-0123456789';
  const config = loadConfig({ MAIHIVE_SECRET_KEY: benchSecret, ...process.env, LOG_LEVEL: level });
  const dest = process.env.BENCH_LOG_FILE ?? '/dev/null';
  const logger = createLogger({ level, destination: pino.destination({ dest, sync: false }) });
  let close: () => Promise<unknown> = () => Promise.resolve();
  let governor = () => ({ shed: 0, inFlight: 0 });
  let app: express.Express;
  if (mode === 'app') {
    const composition = await compose({
      config,
      logger,
      databaseUrl: process.env.BENCH_DATABASE_URL!,
      redisUrl: process.env.BENCH_REDIS_URL!,
    });
    app = createApp(composition.deps);
    governor = () => {
      const { shed, inFlight } = composition.deps.ingress.governor.snapshot();
      return { shed, inFlight };
    };
    if (process.env.BENCH_TRACE_GOVERNOR === '1') traceGovernor(composition.deps.ingress.governor);
    close = () => composition.close();
  } else if (mode === 'queue') {
    const connection = new Redis(process.env.BENCH_REDIS_URL!, { maxRetriesPerRequest: null });
    const queue = new Queue('baseline', { connection, prefix: `${process.env.REDIS_PREFIX}:baseline` });
    app = express();
    app.use(express.json({ limit: config.maxBodyBytes }));
    app.post('/api/v1/chat/send', (req, res, next) => {
      queue
        .add('message', req.body as unknown, { removeOnComplete: true })
        .then((job) => res.json({ success: true, data: { message_id: job.id, status: 'queued' } }), next);
    });
    close = async () => {
      await queue.close();
      connection.disconnect();
    };
  } else {
    app = express();
    app.use(express.json({ limit: config.maxBodyBytes }));
    app.post('/api/v1/chat/send', (req, res) => {
      res.json({ success: true, data: req.body as unknown });
    });
  }
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  process.send!({ type: 'ready', port: (server.address() as AddressInfo).port });
  process.on('message', (msg: Message) => {
    if (msg.type === 'stats') {
      if (process.env.BENCH_TRACE_GOVERNOR === '1')
        process.stderr.write(`[governor] stats ${JSON.stringify(loop)}\n`);
      // Only with --expose-gc (the bench passes it to both modes): a full collection first shows
      // what is live rather than what V8 has not collected yet.
      if (msg.gc) global.gc?.();
      process.send!(stats(governor()));
    }
    if (msg.type === 'profile') void profile(msg);
    if (msg.type === 'heap') void heapProfile(msg);
    if (msg.type === 'close') {
      server.close();
      server.closeAllConnections();
      void close().finally(() => process.exit(0));
    }
  });
}

void main();
