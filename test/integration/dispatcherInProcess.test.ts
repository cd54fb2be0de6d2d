import type { Job } from 'bullmq';

import { systemClock } from '../../src/domain/clock';
import { createLogger, type Logger } from '../../src/logger';
import { Dispatcher } from '../../src/queues/dispatcher';
import { TenantQueues } from '../../src/queues/tenantQueues';
import { keyspace } from '../../src/redis/keys';
import { createTestRedis } from '../support/testDatabase';

const handle = createTestRedis();
const { redis, prefix } = handle;

afterAll(async () => {
  await handle.close();
  redis.disconnect();
});

function dispatcher(
  process: (job: Job, tenantId: string, log: Logger) => Promise<unknown>,
  concurrency = 1,
): Dispatcher {
  return new Dispatcher({
    kind: 'stats',
    connection: redis,
    keys: keyspace(prefix),
    concurrency,
    logger: createLogger({ level: 'silent' }),
    clock: systemClock,
    scheduleOf: () => Promise.resolve({ weight: 1, maxConcurrency: Infinity, paused: false }),
    process,
  });
}

describe('Dispatcher.close', () => {
  it('returns the same promise on every call, settled once the running job has finished', async () => {
    let release = () => undefined as void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let started = () => undefined as void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const d = dispatcher(async () => {
      started();
      await gate;
    });
    await d.start();
    const queues = new TenantQueues(redis, prefix);
    try {
      await queues.queue('acme', 'stats').add('stats', { tenantId: 'acme' });
      await queues.announce('acme', 'stats');
    } finally {
      await queues.close();
    }
    await running;
    const first = d.close();
    const second = d.close();
    expect(second).toBe(first);
    let closed = false;
    void first.then(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(closed).toBe(false); // still waiting for the job in flight
    release();
    await expect(first).resolves.toBeUndefined();
    expect(d.close()).toBe(first);
  });
});

describe('the logger a processor gets', () => {
  it('is a child carrying the kind, the tenant and the job id', async () => {
    let bindings: Record<string, unknown> | undefined;
    let jobId: string | undefined;
    let done = () => undefined as void;
    const ran = new Promise<void>((resolve) => (done = resolve));
    const d = dispatcher((job, _tenantId, log) => {
      bindings = log.bindings();
      jobId = job.id;
      done();
      return Promise.resolve();
    });
    await d.start();
    const queues = new TenantQueues(redis, prefix);
    try {
      await queues.queue('globex', 'stats').add('stats', { tenantId: 'globex' });
      await queues.announce('globex', 'stats');
      await ran;
    } finally {
      await queues.close();
      await d.close();
    }
    expect(bindings).toMatchObject({ kind: 'stats', tenant_id: 'globex', job_id: jobId });
  });
});

describe('a tenant whose jobs come one at a time', () => {
  it('costs about one fetch per job, however many slots are free', async () => {
    // Each job is added only after the previous one ended: never a backlog. A chain that found the
    // queue empty once made the dispatcher treat the tenant as backlogged, and every other job
    // then sent a burst of fetches (up to the tenant's cap), all but one of them empty.
    let done = () => undefined as void;
    const d = dispatcher(() => {
      done();
      return Promise.resolve();
    }, 20);
    await d.start();
    const queues = new TenantQueues(redis, prefix);
    const jobs = 12;
    try {
      for (let i = 0; i < jobs; i++) {
        const ran = new Promise<void>((resolve) => (done = resolve));
        await queues.queue('initech', 'stats').add('stats', { tenantId: 'initech', i });
        await queues.announce('initech', 'stats');
        await ran;
        // The job's completion (and its chained fetch) is over before the next job arrives.
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
    } finally {
      await queues.close();
      await d.close();
    }
    expect(d.counters.fetchHits).toBe(jobs);
    // One fetch per job, plus a spare now and then (the periodic refresh of the active set).
    expect(d.counters.fetches).toBeLessThanOrEqual(jobs + 4);
  });
});
