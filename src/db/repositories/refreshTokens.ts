import type { PlatformDb, TenantDb } from '../database';

/**
 * Refresh tokens of tenant users (`refresh_tokens`, tenant-owned) and of platform admins
 * (`platform_refresh_tokens`, platform-level). Only a SHA-256 of the secret is stored.
 */
export interface RefreshTokenRow {
  token_id: string;
  family_id: string;
  username: string;
  token_hash: Buffer;
  created_at: Date;
  expires_at: Date;
  used_at: Date | null;
  revoked_at: Date | null;
}

export interface NewRefreshToken {
  tokenId: string;
  familyId: string;
  username: string;
  tokenHash: Buffer;
  expiresAt: Date;
}

const COLUMNS = 'token_id, family_id, username, token_hash, created_at, expires_at, used_at, revoked_at';

export async function insertRefreshToken(db: TenantDb, t: NewRefreshToken): Promise<void> {
  await db.query(
    `INSERT INTO refresh_tokens (tenant_id, token_id, family_id, username, token_hash, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [db.ctx.tenantId, t.tokenId, t.familyId, t.username, t.tokenHash, t.expiresAt],
  );
}

export async function findRefreshToken(db: TenantDb, tokenId: string): Promise<RefreshTokenRow | undefined> {
  const { rows } = await db.query<RefreshTokenRow>(
    `SELECT ${COLUMNS} FROM refresh_tokens WHERE tenant_id = $1 AND token_id = $2`,
    [db.ctx.tenantId, tokenId],
  );
  return rows[0];
}

/**
 * Spends a token. False when it was already spent or revoked, including by a concurrent refresh
 * that won the row lock: the caller treats that as re-use.
 */
export async function markRefreshTokenUsed(db: TenantDb, tokenId: string): Promise<boolean> {
  const result = await db.query(
    `UPDATE refresh_tokens SET used_at = now()
     WHERE tenant_id = $1 AND token_id = $2 AND used_at IS NULL AND revoked_at IS NULL`,
    [db.ctx.tenantId, tokenId],
  );
  return result.rowCount === 1;
}

/** Revokes every token of a family; returns how many were still live. */
export async function revokeRefreshFamily(db: TenantDb, familyId: string): Promise<number> {
  const result = await db.query(
    `UPDATE refresh_tokens SET revoked_at = now()
     WHERE tenant_id = $1 AND family_id = $2 AND revoked_at IS NULL`,
    [db.ctx.tenantId, familyId],
  );
  return result.rowCount ?? 0;
}

export async function insertPlatformRefreshToken(db: PlatformDb, t: NewRefreshToken): Promise<void> {
  await db.query(
    `INSERT INTO platform_refresh_tokens (token_id, family_id, username, token_hash, expires_at)
     VALUES ($1, $2, $3, $4, $5)`,
    [t.tokenId, t.familyId, t.username, t.tokenHash, t.expiresAt],
  );
}

export async function findPlatformRefreshToken(
  db: PlatformDb,
  tokenId: string,
): Promise<RefreshTokenRow | undefined> {
  const { rows } = await db.query<RefreshTokenRow>(
    `SELECT ${COLUMNS} FROM platform_refresh_tokens WHERE token_id = $1`,
    [tokenId],
  );
  return rows[0];
}

export async function markPlatformRefreshTokenUsed(db: PlatformDb, tokenId: string): Promise<boolean> {
  const result = await db.query(
    `UPDATE platform_refresh_tokens SET used_at = now()
     WHERE token_id = $1 AND used_at IS NULL AND revoked_at IS NULL`,
    [tokenId],
  );
  return result.rowCount === 1;
}

export async function revokePlatformRefreshFamily(db: PlatformDb, familyId: string): Promise<number> {
  const result = await db.query(
    `UPDATE platform_refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL`,
    [familyId],
  );
  return result.rowCount ?? 0;
}
