import type { Redis } from 'ioredis';

import type { Database } from '../db/database';
import {
  findPlatformRefreshToken,
  findRefreshToken,
  insertPlatformRefreshToken,
  insertRefreshToken,
  markPlatformRefreshTokenUsed,
  markRefreshTokenUsed,
  type NewRefreshToken,
  type RefreshTokenRow,
  revokePlatformRefreshFamily,
  revokeRefreshFamily,
} from '../db/repositories/refreshTokens';
import { findPlatformUser, findUser } from '../db/repositories/users';
import type { Clock } from '../domain/clock';
import { newId } from '../domain/ids';
import { createIsolationContext, isIdentifier } from '../domain/isolationContext';
import type { Role } from '../domain/roles';
import { UnauthorizedError } from '../errors';
import type { Keyspace } from '../redis/keys';
import type { TenantDirectory } from './tenantDirectory';
import { makeOpaqueSecret, parseOpaqueSecret, secretMatches, type TokenService } from './tokens';

/** Stands for "no tenant" in a platform admin's refresh token (`*` is never a tenant id). */
export const PLATFORM_MARKER = '*';

/**
 * Seconds a revoked family (and token id) is remembered in Redis beyond the access-token lifetime,
 * to cover clock skew between processes.
 */
const REVOCATION_MARGIN_SECONDS = 60;

/** Who a session belongs to: a tenant user, or a platform admin (no tenant). */
export interface SessionSubject {
  username: string;
  role: Role;
  tenantId: string | undefined;
}

export interface Session {
  subject: SessionSubject;
  accessToken: string;
  /** Seconds the access token is valid. */
  expiresIn: number;
  refreshToken: string;
  /** Seconds the refresh token is valid. */
  refreshExpiresIn: number;
  familyId: string;
}

export interface RefreshTokenDeps {
  db: Database;
  redis: Redis;
  keys: Keyspace;
  tokens: TokenService;
  tenants: TenantDirectory;
  clock: Clock;
  /** Refresh-token lifetime, seconds. */
  refreshTtlSeconds: number;
}

type RotateOutcome =
  | { kind: 'invalid' }
  | { kind: 'reused'; familyId: string }
  | { kind: 'rotated'; subject: SessionSubject; familyId: string; refreshToken: string };

/**
 * Sessions: an access token (JWT) plus an opaque refresh token
 * `mhr.<base64url(tenant or '*')>.<token_id>.<secret>` in a family. Every refresh spends the token
 * and issues the next one of the family; presenting a spent token again means it was stolen (or
 * the client is confused), so the whole family is revoked, in PostgreSQL (no more refreshes) and in
 * Redis (the family's access tokens stop working at the next request).
 */
export class RefreshTokens {
  constructor(private readonly deps: RefreshTokenDeps) {}

  /** Starts a new family for a user who has just proven who they are. */
  async startSession(subject: SessionSubject): Promise<Session> {
    const familyId = newId('fam', this.deps.clock.now());
    const { value, row } = this.newToken(subject, familyId);
    if (subject.tenantId === undefined) {
      await this.deps.db.withPlatform((db) => insertPlatformRefreshToken(db, row));
    } else {
      await this.deps.db.withTenant(this.ctx(subject.tenantId), (db) => insertRefreshToken(db, row));
    }
    return this.session(subject, familyId, value);
  }

  /** Spends a refresh token and returns the next pair of its family; any failure is the same 401. */
  async rotate(presented: string): Promise<Session> {
    const parsed = parseOpaqueSecret('mhr', presented);
    if (!parsed) throw new UnauthorizedError();
    let outcome: RotateOutcome;
    if (parsed.tenantId === PLATFORM_MARKER) {
      outcome = await this.deps.db.withPlatform((db) =>
        this.rotateIn(parsed.id, parsed.secret, {
          find: (id) => findPlatformRefreshToken(db, id),
          markUsed: (id) => markPlatformRefreshTokenUsed(db, id),
          revokeFamily: (fam) => revokePlatformRefreshFamily(db, fam),
          insert: (row) => insertPlatformRefreshToken(db, row),
          subject: async (username) => {
            const user = await findPlatformUser(db, username);
            return user?.status === 'active'
              ? { username, role: 'platform_admin', tenantId: undefined }
              : undefined;
          },
        }),
      );
    } else {
      const tenantId = parsed.tenantId;
      if (!isIdentifier(tenantId)) throw new UnauthorizedError();
      const tenant = await this.deps.tenants.get(tenantId);
      if (tenant?.status !== 'active') throw new UnauthorizedError();
      outcome = await this.deps.db.withTenant(this.ctx(tenantId), (db) =>
        this.rotateIn(parsed.id, parsed.secret, {
          find: (id) => findRefreshToken(db, id),
          markUsed: (id) => markRefreshTokenUsed(db, id),
          revokeFamily: (fam) => revokeRefreshFamily(db, fam),
          insert: (row) => insertRefreshToken(db, row),
          subject: async (username) => {
            const user = await findUser(db, username);
            return user?.status === 'active' ? { username, role: user.role, tenantId } : undefined;
          },
        }),
      );
    }
    if (outcome.kind === 'reused') {
      // The PostgreSQL revocation has committed; now the family's access tokens.
      await this.markFamilyRevoked(
        parsed.tenantId === PLATFORM_MARKER ? undefined : parsed.tenantId,
        outcome.familyId,
      );
      throw new UnauthorizedError();
    }
    if (outcome.kind === 'invalid') throw new UnauthorizedError();
    return this.session(outcome.subject, outcome.familyId, outcome.refreshToken);
  }

  /** Ends a family at once: no more refreshes, and its access tokens stop working. */
  async revokeFamily(tenantId: string | undefined, familyId: string): Promise<void> {
    if (tenantId === undefined) {
      await this.deps.db.withPlatform((db) => revokePlatformRefreshFamily(db, familyId));
    } else {
      await this.deps.db.withTenant(this.ctx(tenantId), (db) => revokeRefreshFamily(db, familyId));
    }
    await this.markFamilyRevoked(tenantId, familyId);
  }

  /** Revokes one access token until it would have expired anyway. */
  async revokeAccessToken(
    tenantId: string | undefined,
    jti: string,
    expiresAtSeconds: number,
  ): Promise<void> {
    const remaining = expiresAtSeconds - Math.floor(this.deps.clock.now() / 1000);
    if (remaining <= 0) return;
    await this.deps.redis.set(
      this.deps.keys.revokedToken(tenantId, jti),
      '1',
      'EX',
      remaining + REVOCATION_MARGIN_SECONDS,
    );
  }

  /**
   * Runs inside one unit of work, so that spending the old token and storing the next one commit
   * together. Never throws for a bad token: a re-use must commit its family revocation, so it is
   * returned as an outcome and turned into a 401 after the commit.
   */
  private async rotateIn(
    tokenId: string,
    secret: string,
    store: {
      find(id: string): Promise<RefreshTokenRow | undefined>;
      markUsed(id: string): Promise<boolean>;
      revokeFamily(familyId: string): Promise<number>;
      insert(row: NewRefreshToken): Promise<void>;
      subject(username: string): Promise<SessionSubject | undefined>;
    },
  ): Promise<RotateOutcome> {
    const row = await store.find(tokenId);
    // The secret is checked first: knowing a token id alone must not let anyone revoke a family.
    if (!row || !secretMatches(secret, row.token_hash) || row.revoked_at !== null) return { kind: 'invalid' };
    if (row.used_at !== null) {
      await store.revokeFamily(row.family_id);
      return { kind: 'reused', familyId: row.family_id };
    }
    if (row.expires_at.getTime() <= this.deps.clock.now()) return { kind: 'invalid' };
    const subject = await store.subject(row.username);
    if (!subject) return { kind: 'invalid' };
    // Loses to a concurrent refresh of the same token: that is a re-use too.
    if (!(await store.markUsed(row.token_id))) {
      await store.revokeFamily(row.family_id);
      return { kind: 'reused', familyId: row.family_id };
    }
    const next = this.newToken(subject, row.family_id);
    await store.insert(next.row);
    return { kind: 'rotated', subject, familyId: row.family_id, refreshToken: next.value };
  }

  private newToken(subject: SessionSubject, familyId: string): { value: string; row: NewRefreshToken } {
    const now = this.deps.clock.now();
    const tokenId = newId('rt', now);
    const { value, hash } = makeOpaqueSecret('mhr', subject.tenantId ?? PLATFORM_MARKER, tokenId);
    return {
      value,
      row: {
        tokenId,
        familyId,
        username: subject.username,
        tokenHash: hash,
        expiresAt: new Date(now + this.deps.refreshTtlSeconds * 1000),
      },
    };
  }

  private async session(subject: SessionSubject, familyId: string, refreshToken: string): Promise<Session> {
    const access = await this.deps.tokens.issueAccessToken({
      sub: subject.username,
      role: subject.role,
      tenantId: subject.tenantId,
      familyId,
    });
    return {
      subject,
      accessToken: access.token,
      expiresIn: this.deps.tokens.accessTtlSeconds,
      refreshToken,
      refreshExpiresIn: this.deps.refreshTtlSeconds,
      familyId,
    };
  }

  private async markFamilyRevoked(tenantId: string | undefined, familyId: string): Promise<void> {
    await this.deps.redis.set(
      this.deps.keys.revokedFamily(tenantId, familyId),
      '1',
      'EX',
      this.deps.tokens.accessTtlSeconds + REVOCATION_MARGIN_SECONDS,
    );
  }

  private ctx(tenantId: string) {
    return createIsolationContext({ tenantId });
  }
}
