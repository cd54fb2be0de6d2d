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

import { Queue } from 'bullmq';
import express from 'express';
import { Redis } from 'ioredis';
import pino, { type LevelWithSilent } from 'pino';

import { createApp } from '../../src/api/app';
import { compose } from '../../src/composition';
import { loadConfig } from '../../src/config';
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

/** What the parent reads between phases: cumulative CPU µs and the memory figures, bytes. */
export interface ChildStats {
  type: 'stats';
  cpuUs: number;
  rss: number;
  maxRss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

function stats(): ChildStats {
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  return {
    type: 'stats',
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
  let app: express.Express;
  if (mode === 'app') {
    const composition = await compose({
      config,
      logger,
      databaseUrl: process.env.BENCH_DATABASE_URL!,
      redisUrl: process.env.BENCH_REDIS_URL!,
    });
    app = createApp(composition.deps);
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
      // Only with --expose-gc (the bench passes it to both modes): a full collection first shows
      // what is live rather than what V8 has not collected yet.
      if (msg.gc) global.gc?.();
      process.send!(stats());
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
