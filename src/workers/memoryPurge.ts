import type { Redis } from 'ioredis';

import type { Database } from '../db/database';
import { purgeExpiredMemories } from '../db/repositories/memoryStatistics';
import { allTenantIds } from '../db/repositories/tenants';
import { createIsolationContext } from '../domain/isolationContext';
import type { Logger } from '../logger';
import type { Keyspace } from '../redis/keys';

/** Most expired memories one statement deletes (one short transaction each). */
export const MEMORY_PURGE_BATCH = 1000;

export interface MemoryPurgeResult {
  tenants: number;
  purged: number;
}

/**
 * Deletes every tenant's expired memories: tenant after tenant, each in units of work of its own
 * (under the tenant's row-level security) of at most `batchSize` rows, through the partial expiry
 * index, until a batch comes back short. Reads already hide expired rows; this reclaims them for
 * tenants that store nothing new (a store purges up to 100 of its tenant's). `signal` stops it
 * between batches.
 */
export async function purgeAllExpiredMemories(
  db: Database,
  o: { batchSize?: number; signal?: AbortSignal } = {},
): Promise<MemoryPurgeResult> {
  const batchSize = o.batchSize ?? MEMORY_PURGE_BATCH;
  const result: MemoryPurgeResult = { tenants: 0, purged: 0 };
  const tenantIds = await db.withPlatform((p) => allTenantIds(p));
  for (const tenantId of tenantIds) {
    const ctx = createIsolationContext({ tenantId });
    let purgedHere = 0;
    for (;;) {
      if (o.signal?.aborted) return result;
      const n = await db.withTenant(ctx, (t) => purgeExpiredMemories(t, batchSize));
      purgedHere += n;
      if (n < batchSize) break;
    }
    if (purgedHere > 0) {
      result.tenants++;
      result.purged += purgedHere;
    }
  }
  return result;
}

export interface MemoryPurgerOptions {
  db: Database;
  redis: Redis;
  keys: Keyspace;
  logger: Logger;
  /** Time between purges, ms (`MEMORY_PURGE_INTERVAL_MS`). */
  intervalMs: number;
  batchSize?: number;
}

/**
 * The periodic purge of expired memories in the workers: every `intervalMs` one worker process
 * (whichever takes the round's Redis lease first; the others skip the round) runs
 * `purgeAllExpiredMemories`. The first round is one interval after start.
 */
export class MemoryPurger {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private readonly stop = new AbortController();

  constructor(private readonly o: MemoryPurgerOptions) {}

  start(): void {
    this.timer ??= setInterval(() => {
      this.running ??= this.runRound().finally(() => (this.running = undefined));
    }, this.o.intervalMs);
    this.timer.unref();
  }

  /**
   * One round if this process gets the round's lease (a Redis key living for most of the
   * interval), else undefined.
   */
  async runRound(): Promise<MemoryPurgeResult | undefined> {
    try {
      const lease = await this.o.redis.set(
        this.o.keys.memoryPurgeLease(),
        String(process.pid),
        'PX',
        Math.max(1, Math.floor(this.o.intervalMs * 0.9)),
        'NX',
      );
      if (lease !== 'OK') return undefined;
      const result = await purgeAllExpiredMemories(this.o.db, {
        signal: this.stop.signal,
        ...(this.o.batchSize ? { batchSize: this.o.batchSize } : {}),
      });
      if (result.purged > 0) this.o.logger.info(result, 'expired memories purged');
      return result;
    } catch (err) {
      this.o.logger.warn({ err }, 'purging expired memories failed; next round retries');
      return undefined;
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.stop.abort();
    await this.running;
  }
}
