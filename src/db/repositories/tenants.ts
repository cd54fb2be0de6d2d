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

export async function listTenants(
  db: PlatformDb,
  opts: { limit: number; offset: number; search?: string | undefined },
): Promise<{ rows: TenantRow[]; total: number }> {
  const pattern = opts.search ? `%${opts.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null;
  const { rows } = await db.query<TenantRow & { total: string }>(
    `SELECT *, count(*) OVER () AS total FROM tenants
     WHERE $1::text IS NULL OR tenant_id ILIKE $1 OR name ILIKE $1
     ORDER BY created_at, tenant_id LIMIT $2 OFFSET $3`,
    [pattern, opts.limit, opts.offset],
  );
  return { rows, total: Number(rows[0]?.total ?? 0) };
}

/** Deletes the tenant; composite foreign keys cascade to every row of every tenant table. */
export async function deleteTenant(db: PlatformDb, tenantId: string): Promise<boolean> {
  const result = await db.query('DELETE FROM tenants WHERE tenant_id = $1', [tenantId]);
  return result.rowCount === 1;
}
