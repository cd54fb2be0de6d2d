import type { Redis } from 'ioredis';

import type { TenantDirectory } from '../auth/tenantDirectory';
import type { Database } from '../db/database';
import { deleteTenant, getTenantForUpdate, updateTenant } from '../db/repositories/tenants';
import { JOB_KINDS } from '../queues/names';
import type { TenantQueues } from '../queues/tenantQueues';
import { scanEach } from '../redis/connect';
import type { Keyspace } from '../redis/keys';

export interface TenantDeletionDeps {
  db: Database;
  redis: Redis;
  keys: Keyspace;
  queues: TenantQueues;
  tenants: TenantDirectory;
  /** This process's telemetry: flushed before each sweep, so its pending figures of the tenant go too. */
  telemetry?: { flush(): Promise<void> };
}

/** Deletes every key matching a SCAN pattern (on every master of a cluster); returns how many went. */
async function deleteMatching(redis: Redis, pattern: string): Promise<number> {
  let removed = 0;
  for await (const keys of scanEach(redis, pattern)) {
    // One DEL per key: in Redis Cluster a multi-key DEL must stay in one slot, and SCAN batches
    // need not. The tenant's keys share a hash tag, but this stays correct without relying on it.
    const pipeline = redis.pipeline();
    for (const key of keys) pipeline.del(key);
    const results = (await pipeline.exec()) ?? [];
    removed += results.filter(([err, n]) => err === null && n === 1).length;
  }
  return removed;
}

/**
 * Removes a tenant from everywhere: its queues and jobs, every Redis key with its hash tag, its
 * entries in the dispatchers' shared sets, and its row (which cascades to every row of every
 * tenant table). Undefined when the tenant does not exist.
 *
 * Order matters for retries: the tenant is suspended first (its credentials stop at once, in every
 * process), then Redis is cleaned, and the row goes last. If a step fails the tenant stays,
 * suspended, and the same DELETE can simply be repeated. Redis is swept once more after the row is
 * gone, for what a worker that was finishing one of the tenant's jobs wrote meanwhile.
 */
export async function deleteTenantEverywhere(
  deps: TenantDeletionDeps,
  tenantId: string,
): Promise<{ redisKeys: number } | undefined> {
  const exists = await deps.db.withPlatform(async (db) => {
    if (!(await getTenantForUpdate(db, tenantId))) return false;
    await updateTenant(db, tenantId, { status: 'suspended' });
    return true;
  });
  if (!exists) return undefined;
  await deps.tenants.invalidate(tenantId);
  await deps.queues.obliterateTenant(tenantId);
  const sweep = async () => {
    await deps.telemetry?.flush().catch(() => undefined);
    const shared = deps.redis.pipeline();
    for (const kind of JOB_KINDS) {
      shared.srem(deps.keys.activeTenants(kind), tenantId);
      shared.srem(deps.keys.failedTenants(kind), tenantId);
    }
    await shared.exec();
    return deleteMatching(deps.redis, deps.keys.tenantHashTagPattern(tenantId));
  };
  const redisKeys = await sweep();
  await deps.db.withPlatform((db) => deleteTenant(db, tenantId));
  // A request between the suspension and now may have cached the suspended meta again.
  await deps.tenants.invalidate(tenantId);
  return { redisKeys: redisKeys + (await sweep()) };
}
