import type { TenantRole } from '../../domain/roles';
import type { TenantDb } from '../database';

export interface ApiKeyRow {
  tenant_id: string;
  key_id: string;
  name: string;
  role: TenantRole;
  agent_id: string | null;
  key_hash: Buffer;
  created_by: string | null;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

export async function findApiKey(db: TenantDb, keyId: string): Promise<ApiKeyRow | undefined> {
  const { rows } = await db.query<ApiKeyRow>('SELECT * FROM api_keys WHERE tenant_id = $1 AND key_id = $2', [
    db.ctx.tenantId,
    keyId,
  ]);
  return rows[0];
}

/**
 * Records that a key was used at `at`, unless it was already recorded less than `minIntervalMs`
 * before (so concurrent processes write the row at most about once per interval). Returns whether
 * the row was written.
 */
export async function touchApiKey(
  db: TenantDb,
  args: { keyId: string; at: Date; minIntervalMs: number },
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE api_keys SET last_used_at = $3
     WHERE tenant_id = $1 AND key_id = $2
       AND (last_used_at IS NULL OR last_used_at <= $3::timestamptz - make_interval(secs => $4::float8 / 1000))`,
    [db.ctx.tenantId, args.keyId, args.at, args.minIntervalMs],
  );
  return rowCount === 1;
}

/** An API key without its hash: the only shape that leaves the repository for listings. */
export type PublicApiKey = Omit<ApiKeyRow, 'key_hash'>;

const PUBLIC_COLUMNS =
  'tenant_id, key_id, name, role, agent_id, created_by, created_at, expires_at, revoked_at, last_used_at';

export interface NewApiKey {
  keyId: string;
  name: string;
  role: TenantRole;
  agentId: string | null;
  keyHash: Buffer;
  createdBy: string | null;
  expiresAt: Date | null;
}

export async function createApiKey(db: TenantDb, k: NewApiKey): Promise<PublicApiKey> {
  const { rows } = await db.query<PublicApiKey>(
    `INSERT INTO api_keys (tenant_id, key_id, name, role, agent_id, key_hash, created_by, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${PUBLIC_COLUMNS}`,
    [db.ctx.tenantId, k.keyId, k.name, k.role, k.agentId, k.keyHash, k.createdBy, k.expiresAt],
  );
  return rows[0]!;
}

/** Newest first: key ids start with their creation time, so the primary key gives the order. */
export async function listApiKeys(
  db: TenantDb,
  opts: { limit: number; offset: number },
): Promise<{ rows: PublicApiKey[]; total: number }> {
  const { rows } = await db.query<PublicApiKey>(
    `SELECT ${PUBLIC_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY key_id DESC LIMIT $2 OFFSET $3`,
    [db.ctx.tenantId, opts.limit, opts.offset],
  );
  // Counted separately so that a page past the end still reports the real total.
  const count = await db.query<{ total: string }>(
    'SELECT count(*) AS total FROM api_keys WHERE tenant_id = $1',
    [db.ctx.tenantId],
  );
  return { rows, total: Number(count.rows[0]?.total ?? 0) };
}

/** Revokes a key (idempotent: a revoked key keeps its first revocation time); undefined when unknown. */
export async function revokeApiKey(db: TenantDb, keyId: string): Promise<PublicApiKey | undefined> {
  const { rows } = await db.query<PublicApiKey>(
    `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
     WHERE tenant_id = $1 AND key_id = $2 RETURNING ${PUBLIC_COLUMNS}`,
    [db.ctx.tenantId, keyId],
  );
  return rows[0];
}
