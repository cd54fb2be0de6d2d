import { startWorkerPool, type WorkerPool, type WorkerPoolOptions } from '../../src/workers/workerPool';
import { testEnv } from './env';
import type { TestApp } from './testApp';

/**
 * A worker pool wired to a test app's database, Redis prefix, tenant directory and server key
 * (4 heartflow slots unless `overrides` say otherwise).
 */
export function startTestPool(app: TestApp, overrides: Partial<WorkerPoolOptions> = {}): Promise<WorkerPool> {
  return startWorkerPool({
    redisUrl: testEnv('redisUrl'),
    db: app.deps.db,
    keys: app.deps.keys,
    tenants: app.deps.tenants,
    logger: app.t.logger,
    clock: app.deps.clock,
    concurrency: 4,
    secretBox: app.secretBox,
    ...overrides,
  });
}
