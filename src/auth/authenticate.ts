import type { Redis } from 'ioredis';

import type { Database } from '../db/database';
import { touchApiKey } from '../db/repositories/apiKeys';
import { createIsolationContext, isIdentifier } from '../domain/isolationContext';
import { UnauthorizedError } from '../errors';
import type { Keyspace } from '../redis/keys';
import type { ApiKeyDirectory } from './apiKeyDirectory';
import type { Principal } from './principal';
import type { HeaderSource } from './scope';
import type { TenantDirectory, TenantMeta } from './tenantDirectory';
import { type AccessClaims, parseOpaqueSecret, secretMatches, type TokenService } from './tokens';

export interface AuthenticatorDeps {
  tokens: TokenService;
  tenants: TenantDirectory;
  apiKeys: ApiKeyDirectory;
  db: Database;
  redis: Redis;
  keys: Keyspace;
  legacyAnonymous: boolean;
  now: () => number;
}

/**
 * `api_keys.last_used_at` is written at most once per this many ms per key: per process by the
 * in-memory map below (no extra statement on the hot path), across processes by the UPDATE's own
 * condition. The listing is therefore accurate to about a minute.
 */
export const API_KEY_TOUCH_INTERVAL_MS = 60_000;

/** Keys whose last use this process remembers; the oldest entry is dropped beyond this. */
const API_KEY_TOUCH_MEMORY = 10_000;

export const LEGACY_PRINCIPAL: Principal = Object.freeze({
  kind: 'legacy_anonymous',
  subject: 'anonymous',
  role: 'agent',
  tenantId: 'default',
  agentId: 'default',
});

/**
 * The Redis keys whose presence revokes an access token: its own id, and its refresh-token
 * family's (a logout or a detected refresh-token reuse). Read on every use of the token.
 */
export function revocationKeys(
  keys: Keyspace,
  claims: Pick<AccessClaims, 'jti' | 'fam' | 'role' | 'tenant_id'>,
): string[] {
  const owner = claims.role === 'platform_admin' ? undefined : claims.tenant_id;
  return claims.fam
    ? [keys.revokedToken(owner, claims.jti), keys.revokedFamily(owner, claims.fam)]
    : [keys.revokedToken(owner, claims.jti)];
}

/** The principal of a verified, unrevoked access token. */
export function principalOfToken(claims: AccessClaims): Principal {
  return {
    kind: claims.role === 'platform_admin' ? 'platform_admin' : 'user',
    subject: claims.sub,
    role: claims.role,
    tenantId: claims.tenant_id,
    agentId: claims.agent_id,
    tokenId: claims.jti,
    ...(claims.fam ? { familyId: claims.fam } : {}),
    expiresAt: claims.exp,
  };
}

/**
 * The tenant meta the authenticator read for a principal it made, so that the rest of the same
 * request (the send path) need not read it again. Keyed by the principal object, which lives as
 * long as its request.
 */
const tenantMetaSeen = new WeakMap<Principal, TenantMeta>();

/** The meta of `tenantId` as read while authenticating `principal` in this request, if it was. */
export function tenantMetaOf(principal: Principal, tenantId: string): TenantMeta | undefined {
  const meta = tenantMetaSeen.get(principal);
  return meta?.tenantId === tenantId ? meta : undefined;
}

/**
 * Establishes the principal of a request from `Authorization: Bearer <JWT>` or `X-API-Key`. Any
 * presented credential that fails (bad signature, expired, revoked, tenant suspended or deleted)
 * is the same 401; no credential leaves the request anonymous, which routes then refuse, unless
 * `LEGACY_ANONYMOUS` makes it the default tenant's agent.
 */
export class Authenticator {
  /** `tenant\0key id` → ms when this process last wrote (or decided to write) `last_used_at`. */
  private readonly keyTouchedAt = new Map<string, number>();

  constructor(private readonly deps: AuthenticatorDeps) {}

  /** `req`: the request's headers (an Express request, in the API). */
  async authenticate(req: HeaderSource): Promise<Principal | undefined> {
    const authorization = req.header('authorization');
    const apiKey = req.header('x-api-key');
    if (authorization !== undefined) {
      const m = /^Bearer\s+(\S+)$/i.exec(authorization);
      if (!m) throw new UnauthorizedError();
      // NapCat and other OneBot implementations send their configured access token as a bearer
      // token; an API key configured there arrives this way.
      if (m[1]!.startsWith('mhk.')) return this.fromApiKey(m[1]!);
      return this.fromToken(m[1]!);
    }
    if (apiKey !== undefined) return this.fromApiKey(apiKey);
    return this.deps.legacyAnonymous ? LEGACY_PRINCIPAL : undefined;
  }

  private async fromToken(token: string): Promise<Principal> {
    const claims = await this.deps.tokens.verifyAccessToken(token);
    // Every role but platform_admin belongs to a tenant, which must exist and be active.
    const tenantId = claims.role === 'platform_admin' ? undefined : claims.tenant_id;
    if (claims.role !== 'platform_admin' && !isIdentifier(tenantId)) throw new UnauthorizedError();
    // Revocation (token, family) and the tenant's cached meta in one round trip, on every request:
    // a logout or a suspension takes effect at once.
    const keys = revocationKeys(this.deps.keys, claims);
    if (tenantId !== undefined) keys.push(this.deps.tenants.cacheKey(tenantId));
    const values = await this.deps.redis.mget(...keys);
    const cachedMeta = tenantId === undefined ? null : (values.pop() ?? null);
    if (values.some((v) => v !== null)) throw new UnauthorizedError();
    const tenant = tenantId === undefined ? undefined : await this.requireActiveTenant(tenantId, cachedMeta);
    const principal = principalOfToken(claims);
    if (tenant) tenantMetaSeen.set(principal, tenant);
    return principal;
  }

  /**
   * The tenant's meta and the key's cached facts in one Redis round trip (no PostgreSQL unless the
   * key is not cached); `last_used_at` is written at most once a minute per key and process.
   * Public for the adapters' WebSockets, whose clients present an API key as an access token.
   */
  async fromApiKey(value: string): Promise<Principal> {
    const parsed = parseOpaqueSecret('mhk', value);
    if (!parsed || !isIdentifier(parsed.tenantId) || !isIdentifier(parsed.id)) throw new UnauthorizedError();
    const { tenantId, id: keyId } = parsed;
    const { apiKeys, tenants } = this.deps;
    const [cachedMeta = null, cachedKey = null] = await this.deps.redis.mget(
      tenants.cacheKey(tenantId),
      apiKeys.cacheKey(tenantId, keyId),
    );
    const [tenant, key] = await Promise.all([
      this.requireActiveTenant(tenantId, cachedMeta),
      apiKeys.resolve(tenantId, keyId, cachedKey),
    ]);
    const now = this.deps.now();
    if (
      !key ||
      !secretMatches(parsed.secret, key.keyHash) ||
      key.revoked ||
      (key.expiresAt !== null && key.expiresAt <= now)
    ) {
      throw new UnauthorizedError();
    }
    if (this.touchDue(tenantId, keyId, now)) {
      await this.deps.db.withTenant(createIsolationContext({ tenantId }), (db) =>
        touchApiKey(db, { keyId, at: new Date(now), minIntervalMs: API_KEY_TOUCH_INTERVAL_MS }),
      );
    }
    const principal: Principal = {
      kind: 'api_key',
      subject: key.keyId,
      role: key.role,
      tenantId: key.tenantId,
      agentId: key.agentId ?? undefined,
    };
    tenantMetaSeen.set(principal, tenant);
    return principal;
  }

  /** Whether this process should record a use of the key now; if so, remembers that it did. */
  private touchDue(tenantId: string, keyId: string, now: number): boolean {
    const id = `${tenantId}\0${keyId}`;
    const last = this.keyTouchedAt.get(id);
    if (last !== undefined && now - last < API_KEY_TOUCH_INTERVAL_MS) return false;
    this.keyTouchedAt.delete(id);
    if (this.keyTouchedAt.size >= API_KEY_TOUCH_MEMORY) {
      this.keyTouchedAt.delete(this.keyTouchedAt.keys().next().value!);
    }
    this.keyTouchedAt.set(id, now);
    return true;
  }

  /** `cached`: what the caller already read at the tenant's cache key; undefined = read it now. */
  private async requireActiveTenant(tenantId: string, cached?: string | null): Promise<TenantMeta> {
    const { tenants } = this.deps;
    const meta = await (cached === undefined ? tenants.get(tenantId) : tenants.resolve(tenantId, cached));
    if (!meta || meta.status !== 'active') throw new UnauthorizedError();
    return meta;
  }
}
