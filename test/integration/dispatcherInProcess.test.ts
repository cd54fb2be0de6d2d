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

function dispatcher(process: (job: Job, tenantId: string, log: Logger) => Promise<unknown>): Dispatcher {
  return new Dispatcher({
    kind: 'stats',
    connection: redis,
    keys: keyspace(prefix),
    concurrency: 1,
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
