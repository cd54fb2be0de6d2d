import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

import { errors as joseErrors, type JWTHeaderParameters, jwtVerify, SignJWT } from 'jose';

import { newId } from '../domain/ids';
import type { Role } from '../domain/roles';
import { UnauthorizedError } from '../errors';
import { type JwtKey, type JwtKeySet, publicJwks } from '../jwtKeys';

export const JWT_ISSUER = 'maihive';
export const JWT_AUDIENCE = 'maihive-api';
const HMAC_ALGORITHM = 'HS256';

/**
 * Verified access tokens remembered per `TokenService` (least recently used dropped first). A hit
 * skips only the signature check and claim parsing: the full token string is the key, so a token differing
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

export type TokenServiceOptions = {
  /** Access-token lifetime in seconds. */
  accessTtlSeconds: number;
  now?: () => number;
} & (
  | {
      /** HS256 secret, ≥ 32 bytes (the default mode). */
      secret: string;
      keys?: undefined;
    }
  | {
      /** Asymmetric keys with `kid` rotation (`JWT_KEYS_FILE`); HS256 and `none` are then refused. */
      keys: JwtKeySet;
      secret?: undefined;
    }
);

/**
 * Signs and verifies access tokens. The algorithm is pinned by the server: HS256 with the secret,
 * or, with a key set, the algorithm of the key the token's `kid` names. `alg: none`, HS/RS
 * confusion, an unknown or missing `kid` and a `kid` paired with another algorithm are refused.
 */
export class TokenService {
  private readonly secret: Uint8Array | undefined;
  private readonly keySet: JwtKeySet | undefined;
  private readonly signingKey: JwtKey | undefined;
  /** Algorithms a token may name at all: HS256, or those of the key set. */
  private readonly algorithms: string[];
  private readonly now: () => number;
  /** token → its claims, in least-recently-used order (Map keeps insertion order). */
  private readonly verified = new Map<string, Readonly<AccessClaims>>();

  constructor(private readonly options: TokenServiceOptions) {
    this.now = options.now ?? Date.now;
    if (options.keys !== undefined) {
      this.keySet = options.keys;
      this.signingKey = options.keys.keys.get(options.keys.activeKid);
      if (!this.signingKey?.privateKey) throw new Error('the active JWT key has no private part');
      this.algorithms = [...new Set([...options.keys.keys.values()].map((k) => k.alg))];
    } else {
      this.secret = new TextEncoder().encode(options.secret);
      this.algorithms = [HMAC_ALGORITHM];
    }
  }

  get accessTtlSeconds(): number {
    return this.options.accessTtlSeconds;
  }

  /** The public keys that verify tokens (`GET /auth/jwks.json`); empty in HS256 mode, which has none. */
  publicKeys(): { keys: Readonly<Record<string, string>>[] } {
    return this.keySet ? publicJwks(this.keySet) : { keys: [] };
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
    const signing = this.signingKey;
    const jwt = new SignJWT(payload)
      .setProtectedHeader(
        signing ? { alg: signing.alg, kid: signing.kid, typ: 'JWT' } : { alg: HMAC_ALGORITHM, typ: 'JWT' },
      )
      .setSubject(claims.sub)
      .setIssuer(JWT_ISSUER)
      .setAudience(JWT_AUDIENCE)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(jti);
    const token = await jwt.sign(signing ? signing.privateKey! : this.secret!);
    return { token, jti, expiresAt: exp };
  }

  /** Verifies signature, algorithm (and `kid`), issuer, audience and expiry; any failure is the same 401. */
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
      const key = this.keySet ? (header: JWTHeaderParameters) => this.verificationKey(header) : this.secret!;
      const { payload } = await jwtVerify(token, key, {
        algorithms: this.algorithms,
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

  /** The key a token's header names by `kid`, used only with that key's own algorithm. */
  private verificationKey(header: JWTHeaderParameters) {
    const key = header.kid === undefined ? undefined : this.keySet!.keys.get(header.kid);
    if (!key || header.alg !== key.alg) throw new UnauthorizedError();
    return key.publicKey;
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
