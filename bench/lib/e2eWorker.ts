/**
 * Child process of `bench/e2e.ts`: one heartflow worker pool (the fair dispatcher feeding
 * `processHeartflowJob`, local LLM provider) wired from the environment, as `npm run start:worker`
 * would run it. Says `ready` over IPC; answers `rss` (after a GC when `--expose-gc`) and `close`.
 */
import { Redis } from 'ioredis';

import { TenantDirectory } from '../../src/auth/tenantDirectory';
import { Database } from '../../src/db/database';
import { systemClock } from '../../src/domain/clock';
import { createLogger } from '../../src/logger';
import { keyspace } from '../../src/redis/keys';
import { startWorkerPool } from '../../src/workers/workerPool';

type Message = { type: 'rss'; gc?: boolean } | { type: 'close' };

export interface WorkerMemory {
  type: 'rss';
  rss: number;
  heap_used: number;
  /** Picks of the fair scheduler so far (one per job started). */
  picks: number;
}

async function main(): Promise<void> {
  const env = (name: string) => process.env[name] ?? '';
  const logger = createLogger({ level: 'silent' });
  const db = new Database({
    url: env('E2E_DB_URL'),
    poolMax: Number(env('E2E_DB_POOL') || 20),
    connectTimeoutMs: 5000,
    statementTimeoutMs: 15000,
    logger,
    applicationName: 'maihive-bench-e2e-worker',
  });
  const redis = new Redis(env('E2E_REDIS_URL'));
  const keys = keyspace(env('E2E_PREFIX'));
  const pool = await startWorkerPool({
    redisUrl: env('E2E_REDIS_URL'),
    db,
    keys,
    tenants: new TenantDirectory(db, redis, keys),
    logger,
    clock: systemClock,
    concurrency: Number(env('E2E_CONCURRENCY') || 20),
  });
  process.on('message', (m: Message) => {
    if (m.type === 'rss') {
      if (m.gc) global.gc?.();
      const mem = process.memoryUsage();
      const reply: WorkerMemory = {
        type: 'rss',
        rss: mem.rss,
        heap_used: mem.heapUsed,
        picks: pool.dispatcher.snapshot().picks,
      };
      process.send!(reply);
    }
    if (m.type === 'close') {
      void (async () => {
        await pool.close();
        await db.close();
        redis.disconnect();
        process.exit(0);
      })();
    }
  });
  process.send!({ type: 'ready' });
}

void main();
