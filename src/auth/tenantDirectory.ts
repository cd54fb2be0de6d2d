import type { Redis } from 'ioredis';

import type { Database } from '../db/database';
import { getTenant, type TenantRow } from '../db/repositories/tenants';
import { TenantSnapshots } from '../domain/tenantSnapshots';
import type { ChannelHub } from '../redis/channelHub';
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
 * Longest a process answers `get` from its own copy, ms. Changes reach every process at once by
 * pub/sub (`invalidate` → `watch`); this only bounds staleness when a notice is lost.
 */
export const LOCAL_TTL_MS = 2000;
/** Tenants whose meta a process keeps (oldest dropped beyond it). */
const LOCAL_ENTRIES = 10_000;

/**
 * Distinct cached values whose parse is remembered. Keyed by the exact cached text, so a changed
 * tenant (status, settings) is a new text and parsed afresh: this saves the parse, never a read.
 */
const PARSED_ENTRIES = 1000;

/**
 * Tenant status and settings, read through a Redis cache shared by every API process. Writers
 * (tenant update, suspend, delete) call `invalidate`, so a suspended or deleted tenant's
 * credentials stop working at the next request in every process, not after a TTL: authentication
 * reads the Redis copy (in the round trip it makes for the credential anyway). Other readers (the
 * send path's settings, the workers' configuration and LLM quotas, login) use `get`, which also
 * keeps each tenant for `LOCAL_TTL_MS` in the process; `invalidate` drops that copy here and, by
 * pub/sub, in every process that `watch`es, so a change reaches them within a Redis round trip.
 *
 * The metas it returns are frozen and shared: callers may key per-process memos on them.
 */
export class TenantDirectory {
  private readonly parsed = new Map<string, Readonly<TenantMeta> | undefined>();
  private readonly local: TenantSnapshots<TenantMeta | undefined>;

  constructor(
    private readonly db: Database,
    private readonly redis: Redis,
    private readonly keys: Keyspace,
    now: () => number = Date.now,
  ) {
    this.local = new TenantSnapshots(
      async (tenantId) => this.resolve(tenantId, await this.redis.get(this.cacheKey(tenantId))),
      { clock: { now }, ttlMs: LOCAL_TTL_MS, maxTenants: LOCAL_ENTRIES },
    );
  }

  get(tenantId: string): Promise<TenantMeta | undefined> {
    return this.local.get(tenantId);
  }

  /** Follows every process's `invalidate`; resolves once subscribed. Returns the unsubscribe. */
  watch(channels: ChannelHub): Promise<() => void> {
    return channels.subscribe(this.keys.tenantChanged(), (tenantId) => this.forget(tenantId));
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
    this.forget(tenantId);
    await this.redis.del(this.cacheKey(tenantId));
    await this.redis.publish(this.keys.tenantChanged(), tenantId);
  }

  private forget(tenantId: string): void {
    this.local.forget(tenantId);
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
