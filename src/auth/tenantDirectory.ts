import type { Redis } from 'ioredis';

import type { Database } from '../db/database';
import { getTenant, type TenantRow } from '../db/repositories/tenants';
import type { Keyspace } from '../redis/keys';

/** What the ingress needs to know about a tenant on every request, cached in Redis. */
export interface TenantMeta {
  tenantId: string;
  name: string;
  status: 'active' | 'suspended';
  settings: Record<string, unknown>;
}

const CACHE_TTL_SECONDS = 300;

/**
 * Distinct cached values whose parse is remembered. Keyed by the exact cached text, so a changed
 * tenant (status, settings) is a new text and parsed afresh: this saves the parse, never a read.
 */
const PARSED_ENTRIES = 1000;

/**
 * Tenant status and settings, read through a Redis cache shared by every API process. Writers
 * (tenant update, suspend, delete) call `invalidate`, so a suspended or deleted tenant's
 * credentials stop working at the next request in every process, not after a TTL.
 *
 * The metas it returns are frozen and shared: callers may key per-process memos on them.
 */
export class TenantDirectory {
  private readonly parsed = new Map<string, Readonly<TenantMeta> | undefined>();

  constructor(
    private readonly db: Database,
    private readonly redis: Redis,
    private readonly keys: Keyspace,
  ) {}

  async get(tenantId: string): Promise<TenantMeta | undefined> {
    return this.resolve(tenantId, await this.redis.get(this.cacheKey(tenantId)));
  }

  /** The Redis key `get` reads, for callers that fetch it in a round trip they make anyway (MGET). */
  cacheKey(tenantId: string): string {
    return this.keys.tenantMeta(tenantId);
  }

  /**
   * What `get` answers, given the value the caller read at `cacheKey(tenantId)` (null when it was
   * not cached: then the tenant is loaded from PostgreSQL and cached, as `get` does).
   */
  async resolve(tenantId: string, cached: string | null): Promise<TenantMeta | undefined> {
    if (cached !== null) {
      const meta = this.parse(cached);
      // Caches verify the tenant of what they return.
      return meta?.tenantId === tenantId ? meta : undefined;
    }
    const row = await this.db.withPlatform((db) => getTenant(db, tenantId));
    const meta = row ? toMeta(row) : undefined;
    await this.redis.set(
      this.cacheKey(tenantId),
      JSON.stringify(meta ?? { missing: true }),
      'EX',
      meta ? CACHE_TTL_SECONDS : 5,
    );
    return meta;
  }

  async invalidate(tenantId: string): Promise<void> {
    await this.redis.del(this.cacheKey(tenantId));
  }

  private parse(cached: string): Readonly<TenantMeta> | undefined {
    if (this.parsed.has(cached)) return this.parsed.get(cached);
    const value = JSON.parse(cached) as TenantMeta | { missing: true };
    const meta = 'missing' in value ? undefined : deepFreeze(value);
    if (this.parsed.size >= PARSED_ENTRIES) this.parsed.delete(this.parsed.keys().next().value!);
    this.parsed.set(cached, meta);
    return meta;
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

export function toMeta(row: TenantRow): TenantMeta {
  return { tenantId: row.tenant_id, name: row.name, status: row.status, settings: row.settings };
}
