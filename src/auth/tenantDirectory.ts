import type { Redis } from 'ioredis';

import type { Database } from '../db/database';
import { getTenant, type TenantRow } from '../db/repositories/tenants';
import type { Keyspace } from '../queues/names';

/** What the ingress needs to know about a tenant on every request, cached in Redis. */
export interface TenantMeta {
  tenantId: string;
  name: string;
  status: 'active' | 'suspended';
  settings: Record<string, unknown>;
}

const CACHE_TTL_SECONDS = 300;

/**
 * Tenant status and settings, read through a Redis cache shared by every API process. Writers
 * (tenant update, suspend, delete) call `invalidate`, so a suspended or deleted tenant's
 * credentials stop working at the next request in every process, not after a TTL.
 */
export class TenantDirectory {
  constructor(
    private readonly db: Database,
    private readonly redis: Redis,
    private readonly keys: Keyspace,
  ) {}

  async get(tenantId: string): Promise<TenantMeta | undefined> {
    const key = this.keys.tenantMeta(tenantId);
    const cached = await this.redis.get(key);
    if (cached !== null) {
      const meta = JSON.parse(cached) as TenantMeta | { missing: true };
      // Caches verify the tenant of what they return.
      return 'missing' in meta || meta.tenantId !== tenantId ? undefined : meta;
    }
    const row = await this.db.withPlatform((db) => getTenant(db, tenantId));
    const meta = row ? toMeta(row) : undefined;
    await this.redis.set(key, JSON.stringify(meta ?? { missing: true }), 'EX', meta ? CACHE_TTL_SECONDS : 5);
    return meta;
  }

  async invalidate(tenantId: string): Promise<void> {
    await this.redis.del(this.keys.tenantMeta(tenantId));
  }
}

export function toMeta(row: TenantRow): TenantMeta {
  return { tenantId: row.tenant_id, name: row.name, status: row.status, settings: row.settings };
}
