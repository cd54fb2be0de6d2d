/**
 * A heartflow worker in a process of its own, for tests that kill it (SIGKILL recovery). Reads
 * its wiring from the environment, says `ready` over IPC once it fetches jobs.
 */
import { Redis } from 'ioredis';

import { TenantDirectory } from '../../src/auth/tenantDirectory';
import { Database } from '../../src/db/database';
import { systemClock } from '../../src/domain/clock';
import { createLogger } from '../../src/logger';
import { keyspace } from '../../src/redis/keys';
import { startWorkerPool } from '../../src/workers/workerPool';

async function main(): Promise<void> {
  const logger = createLogger({ level: 'silent' });
  const env = (name: string) => process.env[name] ?? '';
  const db = new Database({
    url: env('MH_DB_URL'),
    poolMax: 4,
    connectTimeoutMs: 5000,
    statementTimeoutMs: 15000,
    logger,
  });
  const redis = new Redis(env('MH_REDIS_URL'));
  const keys = keyspace(env('MH_PREFIX'));
  await startWorkerPool({
    redisUrl: env('MH_REDIS_URL'),
    db,
    keys,
    tenants: new TenantDirectory(db, redis, keys),
    logger,
    clock: systemClock,
    concurrency: 4,
    lockDurationMs: Number(env('MH_LOCK_MS')),
    stalledIntervalMs: Number(env('MH_STALLED_MS')),
    streamLockTtlMs: Number(env('MH_STREAM_LOCK_MS')),
    ...(env('MH_CONFIG_TTL_MS') ? { configCacheTtlMs: Number(env('MH_CONFIG_TTL_MS')) } : {}),
  });
  process.send?.('ready');
}

void main();
