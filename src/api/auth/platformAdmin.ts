import { createHash, timingSafeEqual } from 'node:crypto';

import type { Request } from 'express';

import { Authenticator, principalOfToken, revocationKeys } from '../../auth/authenticate';
import type { Principal } from '../../auth/principal';
import type { Dependencies } from '../../dependencies';
import { ForbiddenError, UnauthorizedError } from '../../errors';

type GateDeps = Pick<
  Dependencies,
  'tokens' | 'tenants' | 'apiKeys' | 'db' | 'redis' | 'keys' | 'config' | 'clock'
>;

/**
 * Platform-admin checks for the few endpoints that cannot sit behind the API's authenticator:
 * `/metrics`, whose scraper presents a static token as a bearer (the authenticator would reject
 * it as a malformed JWT), and the dashboard, whose browser presents the access token in a cookie.
 * Missing or invalid credentials are 401; valid ones of any other role are 403.
 */
export class PlatformAdminGate {
  private readonly authenticator: Authenticator;

  constructor(private readonly deps: GateDeps) {
    this.authenticator = new Authenticator({
      tokens: deps.tokens,
      tenants: deps.tenants,
      apiKeys: deps.apiKeys,
      db: deps.db,
      redis: deps.redis,
      keys: deps.keys,
      legacyAnonymous: false,
      now: () => deps.clock.now(),
    });
  }

  /** The request's `Authorization` or `X-API-Key`, authenticated exactly as on every other route. */
  async fromRequest(req: Request): Promise<Principal> {
    return requirePlatformAdmin(await this.authenticator.authenticate(req));
  }

  /** An access token presented elsewhere than the headers: signature, expiry and revocation, then role. */
  async fromAccessToken(token: string): Promise<Principal> {
    return requirePlatformAdmin(await this.accessTokenPrincipal(token));
  }

  /** Whoever an access token presented elsewhere than the headers names (signature, expiry, revocation). */
  async accessTokenPrincipal(token: string): Promise<Principal> {
    const claims = await this.deps.tokens.verifyAccessToken(token);
    const revoked = await this.deps.redis.mget(...revocationKeys(this.deps.keys, claims));
    if (revoked.some((v) => v !== null)) throw new UnauthorizedError();
    return principalOfToken(claims);
  }

  /** True when `presented` is the configured `METRICS_TOKEN` (compared in constant time). */
  isMetricsToken(presented: string): boolean {
    const expected = this.deps.config.metricsToken;
    if (expected === undefined) return false;
    // Digests have one length, so the comparison neither throws nor leaks the token's length.
    const digest = (s: string) => createHash('sha256').update(s).digest();
    return timingSafeEqual(digest(presented), digest(expected));
  }
}

export function requirePlatformAdmin(principal: Principal | undefined): Principal {
  if (!principal || principal.kind === 'legacy_anonymous') throw new UnauthorizedError();
  if (principal.role !== 'platform_admin') throw new ForbiddenError('platform admins only');
  return principal;
}
