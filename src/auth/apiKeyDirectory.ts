import type { Redis } from 'ioredis';

import type { Database } from '../db/database';
import { type ApiKeyRow, findApiKey } from '../db/repositories/apiKeys';
import { createIsolationContext } from '../domain/isolationContext';
import type { TenantRole } from '../domain/roles';
import type { Keyspace } from '../redis/keys';

/** What authentication needs of an API key: the secret's hash, the role, and whether it still counts. */
export interface ApiKeyFacts {
  tenantId: string;
  keyId: string;
  /** sha256 of the secret. */
  keyHash: Buffer;
  role: TenantRole;
  agentId: string | null;
  /** ms since the epoch; null = never. */
  expiresAt: number | null;
  revoked: boolean;
}

/** How long a key's facts stay cached in Redis, s. Revocation does not wait for it (see `revoked`). */
const CACHE_TTL_SECONDS = 300;
/** How long "no such key" is remembered, s: an unknown id costs one read per this, not one per request. */
const MISSING_TTL_SECONDS = 5;

type Cached = {
  t: string;
  k: string;
  h: string;
  r: TenantRole;
  a: string | null;
  e: number | null;
  x: boolean;
};

/**
 * API keys as authentication sees them, through a Redis cache shared by every process, so that a
 * request with an API key costs no PostgreSQL round trip: the caller reads the cached entry in
 * the round trip it makes anyway for the tenant's meta (`cacheKey`, MGET), and `resolve` turns it
 * into facts, loading from PostgreSQL only on a miss (one read per key and process at a time).
 *
 * Revocation takes effect at the next request everywhere: `revoked` overwrites the entry with
 * the revoked facts after the database row is updated, and a load that read the row before the
 * revocation may only fill an empty entry (SET NX), never overwrite one.
 */
export class ApiKeyDirectory {
  private readonly loading = new Map<string, Promise<ApiKeyFacts | undefined>>();

  constructor(
    private readonly db: Database,
    private readonly redis: Redis,
    private readonly keys: Keyspace,
  ) {}

  cacheKey(tenantId: string, keyId: string): string {
    return this.keys.apiKey(tenantId, keyId);
  }

  /** The key's facts, given what the caller read at `cacheKey` (null when nothing was cached). */
  async resolve(tenantId: string, keyId: string, cached: string | null): Promise<ApiKeyFacts | undefined> {
    if (cached !== null) {
      const facts = parse(cached);
      // Caches verify the tenant and key of what they return.
      return facts?.tenantId === tenantId && facts.keyId === keyId ? facts : undefined;
    }
    const id = `${tenantId}\0${keyId}`;
    let load = this.loading.get(id);
    if (!load) {
      load = this.load(tenantId, keyId).finally(() => this.loading.delete(id));
      this.loading.set(id, load);
    }
    return load;
  }

  /**
   * Marks a key revoked in the cache: call after its database row is revoked. The tombstone
   * outlives any cached copy, and loads cannot overwrite it.
   */
  async revoked(tenantId: string, keyId: string): Promise<void> {
    await this.redis.set(
      this.cacheKey(tenantId, keyId),
      JSON.stringify({ revoked: true }),
      'EX',
      CACHE_TTL_SECONDS,
    );
  }

  private async load(tenantId: string, keyId: string): Promise<ApiKeyFacts | undefined> {
    const ctx = createIsolationContext({ tenantId });
    const row = await this.db.withTenant(ctx, (db) => findApiKey(db, keyId));
    const facts = row ? toFacts(row) : undefined;
    await this.redis.set(
      this.cacheKey(tenantId, keyId),
      facts ? serialize(facts) : JSON.stringify({ missing: true }),
      'EX',
      facts ? CACHE_TTL_SECONDS : MISSING_TTL_SECONDS,
      'NX',
    );
    return facts;
  }
}

function toFacts(row: ApiKeyRow): ApiKeyFacts {
  return {
    tenantId: row.tenant_id,
    keyId: row.key_id,
    keyHash: row.key_hash,
    role: row.role,
    agentId: row.agent_id,
    expiresAt: row.expires_at?.getTime() ?? null,
    revoked: row.revoked_at !== null,
  };
}

function serialize(f: ApiKeyFacts): string {
  const cached: Cached = {
    t: f.tenantId,
    k: f.keyId,
    h: f.keyHash.toString('base64'),
    r: f.role,
    a: f.agentId,
    e: f.expiresAt,
    x: f.revoked,
  };
  return JSON.stringify(cached);
}

function parse(text: string): ApiKeyFacts | undefined {
  // `{missing: true}` (no such key) and `{revoked: true}` (a tombstone) answer undefined too.
  let value: Partial<Cached>;
  try {
    value = JSON.parse(text) as Partial<Cached>;
  } catch {
    return undefined;
  }
  if (typeof value.t !== 'string' || typeof value.k !== 'string' || typeof value.h !== 'string') {
    return undefined;
  }
  return {
    tenantId: value.t,
    keyId: value.k,
    keyHash: Buffer.from(value.h, 'base64'),
    role: value.r!,
    agentId: value.a ?? null,
    expiresAt: value.e ?? null,
    revoked: value.x === true,
  };
}
