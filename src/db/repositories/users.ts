import type { TenantRole } from '../../domain/roles';
import type { PlatformDb, TenantDb } from '../database';

export interface UserRow {
  tenant_id: string;
  username: string;
  password_hash: string;
  role: TenantRole;
  status: 'active' | 'disabled';
  created_at: Date;
  last_login_at: Date | null;
}

/** A user without its password hash: the only shape that leaves the repository for listings. */
export type PublicUser = Omit<UserRow, 'password_hash'>;

export async function createUser(
  db: TenantDb,
  u: { username: string; passwordHash: string; role: TenantRole },
): Promise<PublicUser> {
  const { rows } = await db.query<PublicUser>(
    `INSERT INTO users (tenant_id, username, password_hash, role) VALUES ($1, $2, $3, $4)
     RETURNING tenant_id, username, role, status, created_at, last_login_at`,
    [db.ctx.tenantId, u.username, u.passwordHash, u.role],
  );
  return rows[0]!;
}

export async function findUser(db: TenantDb, username: string): Promise<UserRow | undefined> {
  const { rows } = await db.query<UserRow>('SELECT * FROM users WHERE tenant_id = $1 AND username = $2', [
    db.ctx.tenantId,
    username,
  ]);
  return rows[0];
}

export async function listUsers(
  db: TenantDb,
  opts: { limit: number; offset: number },
): Promise<{ rows: PublicUser[]; total: number }> {
  const { rows } = await db.query<PublicUser & { total: string }>(
    `SELECT tenant_id, username, role, status, created_at, last_login_at, count(*) OVER () AS total
     FROM users WHERE tenant_id = $1 ORDER BY username LIMIT $2 OFFSET $3`,
    [db.ctx.tenantId, opts.limit, opts.offset],
  );
  return { rows: rows.map(({ total: _t, ...u }) => u), total: Number(rows[0]?.total ?? 0) };
}

export async function touchUserLogin(db: TenantDb, username: string): Promise<void> {
  await db.query('UPDATE users SET last_login_at = now() WHERE tenant_id = $1 AND username = $2', [
    db.ctx.tenantId,
    username,
  ]);
}

export interface PlatformUserRow {
  username: string;
  password_hash: string;
  status: 'active' | 'disabled';
  created_at: Date;
  last_login_at: Date | null;
}

export async function findPlatformUser(
  db: PlatformDb,
  username: string,
): Promise<PlatformUserRow | undefined> {
  const { rows } = await db.query<PlatformUserRow>('SELECT * FROM platform_users WHERE username = $1', [
    username,
  ]);
  return rows[0];
}

/** Creates a platform admin unless one with that name exists; true when created. */
export async function ensurePlatformUser(
  db: PlatformDb,
  username: string,
  passwordHash: string,
): Promise<boolean> {
  const result = await db.query(
    'INSERT INTO platform_users (username, password_hash) VALUES ($1, $2) ON CONFLICT (username) DO NOTHING',
    [username, passwordHash],
  );
  return result.rowCount === 1;
}

export async function touchPlatformUserLogin(db: PlatformDb, username: string): Promise<void> {
  await db.query('UPDATE platform_users SET last_login_at = now() WHERE username = $1', [username]);
}

export async function countUsers(db: TenantDb): Promise<number> {
  const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM users WHERE tenant_id = $1', [
    db.ctx.tenantId,
  ]);
  return Number(rows[0]?.n ?? 0);
}
