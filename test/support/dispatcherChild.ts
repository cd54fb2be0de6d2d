/**
 * A `Dispatcher` in a process of its own, for tests of what several worker processes do together.
 * Its jobs sleep `data.sleepMs` and record themselves in Redis: a log of starts in order, and per
 * tenant the jobs running now and the most ever running at once, counted across every process.
 * Wiring from the environment; says `ready` over IPC once it fetches jobs, stops on `close`.
 */
import { Redis } from 'ioredis';

import { systemClock } from '../../src/domain/clock';
import { createLogger } from '../../src/logger';
import { Dispatcher } from '../../src/queues/dispatcher';
import type { TenantSchedule } from '../../src/queues/fairScheduler';
import { keyspace } from '../../src/redis/keys';
import { type ChildJobData, recordKeys } from './dispatcherRecord';

const START = `
local now = redis.call('INCR', KEYS[1])
if now > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], now) end
redis.call('RPUSH', KEYS[3], ARGV[1])
return now`;

async function main(): Promise<void> {
  const env = (name: string) => process.env[name] ?? '';
  const prefix = env('MH_PREFIX');
  const schedules = JSON.parse(env('MH_SCHEDULES')) as Record<string, TenantSchedule>;
  const connection = new Redis(env('MH_REDIS_URL'), { maxRetriesPerRequest: null });
  const keys = recordKeys(prefix);
  const dispatcher = new Dispatcher({
    kind: 'heartflow',
    connection,
    keys: keyspace(prefix),
    concurrency: Number(env('MH_CONCURRENCY')),
    logger: createLogger({ level: 'silent' }),
    clock: systemClock,
    seed: process.pid,
    scheduleOf: (tenantId) =>
      Promise.resolve(schedules[tenantId] ?? { weight: 1, maxConcurrency: Infinity, paused: false }),
    process: async (job, tenantId) => {
      const { sleepMs } = job.data as ChildJobData;
      await connection.eval(
        START,
        3,
        keys.running(tenantId),
        keys.peak(tenantId),
        keys.log,
        `${tenantId}:${job.id}`,
      );
      await new Promise((resolve) => setTimeout(resolve, sleepMs));
      await connection.decr(keys.running(tenantId));
    },
  });
  await dispatcher.start();
  process.on('message', (m) => {
    if (m !== 'close') return;
    void dispatcher.close().then(() => {
      connection.disconnect();
      process.exit(0);
    });
  });
  process.send?.('ready');
}

void main();
