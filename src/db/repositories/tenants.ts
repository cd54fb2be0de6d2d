import type { PlatformDb } from '../database';

export interface TenantRow {
  tenant_id: string;
  name: string;
  description: string | null;
  status: 'active' | 'suspended';
  settings: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

export interface NewTenant {
  tenantId: string;
  name: string;
  description?: string | null;
  settings?: Record<string, unknown>;
}

/** Creates a tenant (its `default` agent is created by a trigger in the same transaction). */
export async function createTenant(db: PlatformDb, t: NewTenant): Promise<TenantRow> {
  const { rows } = await db.query<TenantRow>(
    `INSERT INTO tenants (tenant_id, name, description, settings) VALUES ($1, $2, $3, $4) RETURNING *`,
    [t.tenantId, t.name, t.description ?? null, JSON.stringify(t.settings ?? {})],
  );
  return rows[0]!;
}

export async function getTenant(db: PlatformDb, tenantId: string): Promise<TenantRow | undefined> {
  const { rows } = await db.query<TenantRow>('SELECT * FROM tenants WHERE tenant_id = $1', [tenantId]);
  return rows[0];
}

/** One page of tenants (oldest first), matching `search` in id or name, with the total that match. */
export async function listTenants(
  db: PlatformDb,
  opts: { limit: number; offset: number; search?: string | undefined },
): Promise<{ rows: TenantRow[]; total: number }> {
  const pattern = opts.search ? `%${opts.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null;
  const where = '$1::text IS NULL OR tenant_id ILIKE $1 OR name ILIKE $1';
  // Counted apart from the page, so that a page past the end still reports the total.
  const count = await db.query<{ n: string }>(`SELECT count(*) AS n FROM tenants WHERE ${where}`, [pattern]);
  const { rows } = await db.query<TenantRow>(
    `SELECT * FROM tenants WHERE ${where} ORDER BY created_at, tenant_id LIMIT $2 OFFSET $3`,
    [pattern, opts.limit, opts.offset],
  );
  return { rows, total: Number(count.rows[0]?.n ?? 0) };
}

/** The tenant, locked until the unit of work ends (read-modify-write of its settings). */
export async function getTenantForUpdate(db: PlatformDb, tenantId: string): Promise<TenantRow | undefined> {
  const { rows } = await db.query<TenantRow>('SELECT * FROM tenants WHERE tenant_id = $1 FOR UPDATE', [
    tenantId,
  ]);
  return rows[0];
}

export interface TenantPatch {
  name?: string;
  description?: string | null;
  status?: 'active' | 'suspended';
  /** Replaces the stored settings as a whole (callers merge and validate first). */
  settings?: Record<string, unknown>;
}

export async function updateTenant(
  db: PlatformDb,
  tenantId: string,
  patch: TenantPatch,
): Promise<TenantRow | undefined> {
  const { rows } = await db.query<TenantRow>(
    `UPDATE tenants SET name = coalesce($2, name),
                        description = CASE WHEN $3::boolean THEN $4 ELSE description END,
                        status = coalesce($5, status),
                        settings = coalesce($6::jsonb, settings),
                        updated_at = now()
     WHERE tenant_id = $1 RETURNING *`,
    [
      tenantId,
      patch.name ?? null,
      patch.description !== undefined,
      patch.description ?? null,
      patch.status ?? null,
      patch.settings === undefined ? null : JSON.stringify(patch.settings),
    ],
  );
  return rows[0];
}

export interface TenantCounts {
  agentCount: number;
  chatStreamCount: number;
}

/** Agent and chat-stream counts of these tenants, in one round trip (`maihive_tenant_counts`, migration 003). */
export async function tenantCounts(
  db: PlatformDb,
  tenantIds: readonly string[],
): Promise<Map<string, TenantCounts>> {
  if (tenantIds.length === 0) return new Map();
  const { rows } = await db.query<{ tenant_id: string; agent_count: string; chat_stream_count: string }>(
    'SELECT * FROM maihive_tenant_counts($1::text[])',
    [tenantIds],
  );
  return new Map(
    rows.map((r) => [
      r.tenant_id,
      { agentCount: Number(r.agent_count), chatStreamCount: Number(r.chat_stream_count) },
    ]),
  );
}

/** Deletes the tenant; composite foreign keys cascade to every row of every tenant table. */
export async function deleteTenant(db: PlatformDb, tenantId: string): Promise<boolean> {
  const result = await db.query('DELETE FROM tenants WHERE tenant_id = $1', [tenantId]);
  return result.rowCount === 1;
}

/** Number of tenants (every status), for `/system/info`. */
export async function countTenants(db: PlatformDb): Promise<number> {
  const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM tenants');
  return Number(rows[0]?.n ?? 0);
}

/** Ids of the `limit` most recently created tenants, newest first (the queue dashboard's list). */
export async function recentTenantIds(db: PlatformDb, limit: number): Promise<string[]> {
  const { rows } = await db.query<{ tenant_id: string }>(
    'SELECT tenant_id FROM tenants ORDER BY created_at DESC, tenant_id LIMIT $1',
    [limit],
  );
  return rows.map((r) => r.tenant_id);
}

/** Every tenant id, in id order (platform-wide maintenance passes). */
export async function allTenantIds(db: PlatformDb): Promise<string[]> {
  const { rows } = await db.query<{ tenant_id: string }>('SELECT tenant_id FROM tenants ORDER BY tenant_id');
  return rows.map((r) => r.tenant_id);
}
