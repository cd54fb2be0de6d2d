import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';

import type { Role } from '../api/auth/principal';
import { newId } from '../domain/ids';
import { UnauthorizedError } from '../errors';

export const JWT_ISSUER = 'maihive';
export const JWT_AUDIENCE = 'maihive-api';
const ALGORITHM = 'HS256';

/**
 * Verified access tokens remembered per `TokenService` (least recently used dropped first). A hit
 * skips only the HMAC and claim parsing: the full token string is the key, so a token differing
 * in any byte (payload or signature) is verified afresh, and the expiry is checked on every hit.
 * Revocation is not cached here; the authenticator asks Redis on every request.
 */
export const VERIFIED_TOKEN_CACHE_SIZE = 10_000;

export interface AccessClaims {
  sub: string;
  role: Role;
  tenant_id?: string;
  agent_id?: string;
  /** Refresh-token family; logout revokes it, and with it every access token issued in it. */
  fam?: string;
  jti: string;
  exp: number;
  iat: number;
}

export interface TokenServiceOptions {
  /** HS256 secret, ≥ 32 bytes. */
  secret: string;
  /** Access-token lifetime in seconds. */
  accessTtlSeconds: number;
  now?: () => number;
}

/** Signs and verifies access tokens. The algorithm is pinned: `alg: none` or RS/HS confusion is refused. */
export class TokenService {
  private readonly key: Uint8Array;
  private readonly now: () => number;
  /** token → its claims, in least-recently-used order (Map keeps insertion order). */
  private readonly verified = new Map<string, Readonly<AccessClaims>>();

  constructor(private readonly options: TokenServiceOptions) {
    this.key = new TextEncoder().encode(options.secret);
    this.now = options.now ?? Date.now;
  }

  get accessTtlSeconds(): number {
    return this.options.accessTtlSeconds;
  }

  async issueAccessToken(claims: {
    sub: string;
    role: Role;
    tenantId?: string | undefined;
    agentId?: string | undefined;
    familyId?: string | undefined;
  }): Promise<{ token: string; jti: string; expiresAt: number }> {
    const iat = Math.floor(this.now() / 1000);
    const exp = iat + this.options.accessTtlSeconds;
    const jti = newId('at');
    const payload: Record<string, unknown> = { role: claims.role };
    if (claims.tenantId) payload.tenant_id = claims.tenantId;
    if (claims.agentId) payload.agent_id = claims.agentId;
    if (claims.familyId) payload.fam = claims.familyId;
    const token = await new SignJWT(payload)
      .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
      .setSubject(claims.sub)
      .setIssuer(JWT_ISSUER)
      .setAudience(JWT_AUDIENCE)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(jti)
      .sign(this.key);
    return { token, jti, expiresAt: exp };
  }

  /** Verifies signature, algorithm, issuer, audience and expiry; any failure is the same 401. */
  async verifyAccessToken(token: string): Promise<AccessClaims> {
    const cached = this.verified.get(token);
    if (cached !== undefined) {
      this.verified.delete(token);
      // jose's rule: expired once `exp <= now` in whole seconds.
      if (cached.exp > Math.floor(this.now() / 1000)) {
        this.verified.set(token, cached);
        return cached;
      }
    }
    const claims = await this.verifyUncached(token);
    // A token with `nbf` would need that checked on every hit too; ours never carry one.
    if (!('nbf' in claims)) {
      if (this.verified.size >= VERIFIED_TOKEN_CACHE_SIZE) {
        this.verified.delete(this.verified.keys().next().value!);
      }
      this.verified.set(token, claims);
    }
    return claims;
  }

  private async verifyUncached(token: string): Promise<Readonly<AccessClaims>> {
    try {
      const { payload } = await jwtVerify(token, this.key, {
        algorithms: [ALGORITHM],
        issuer: JWT_ISSUER,
        audience: JWT_AUDIENCE,
        requiredClaims: ['exp', 'jti', 'sub'],
        currentDate: new Date(this.now()),
      });
      if (typeof payload.role !== 'string') throw new UnauthorizedError();
      // Frozen: the same object is handed to every later request presenting this token.
      return Object.freeze(payload) as unknown as Readonly<AccessClaims>;
    } catch (err) {
      if (err instanceof UnauthorizedError || err instanceof joseErrors.JOSEError)
        throw new UnauthorizedError(undefined, { cause: err });
      throw err;
    }
  }
}

/**
 * Opaque secrets that name their tenant, so they can be looked up inside that tenant's unit of
 * work (no cross-tenant index): `<kind>.<base64url(tenant)>.<id>.<secret>`. Only a SHA-256 of the
 * 32-byte random secret is stored; that is enough for a high-entropy secret.
 */
export interface OpaqueSecret {
  tenantId: string;
  id: string;
  secret: string;
}

export function makeOpaqueSecret(
  kind: 'mhk' | 'mhr',
  tenantId: string,
  id: string,
): { value: string; hash: Buffer } {
  const secret = randomBytes(32).toString('base64url');
  const value = [kind, Buffer.from(tenantId).toString('base64url'), id, secret].join('.');
  return { value, hash: hashSecret(secret) };
}

export function parseOpaqueSecret(kind: 'mhk' | 'mhr', value: string): OpaqueSecret | undefined {
  const parts = value.split('.');
  if (parts.length !== 4 || parts[0] !== kind) return undefined;
  const [, tenant, id, secret] = parts as [string, string, string, string];
  if (!tenant || !id || !secret) return undefined;
  return { tenantId: Buffer.from(tenant, 'base64url').toString('utf8'), id, secret };
}

export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

export function secretMatches(secret: string, storedHash: Buffer): boolean {
  const actual = hashSecret(secret);
  return actual.length === storedHash.length && timingSafeEqual(actual, storedHash);
}
