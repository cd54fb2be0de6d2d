import type { TenantDb } from '../database';

export interface TenantPluginRow {
  plugin_id: string;
  status: 'enabled' | 'disabled';
  config: Record<string, unknown>;
  permissions: string[];
  installed_at: Date;
  updated_at: Date;
}

export async function listTenantPlugins(db: TenantDb): Promise<TenantPluginRow[]> {
  const { rows } = await db.query<TenantPluginRow>(
    `SELECT plugin_id, status, config, permissions, installed_at, updated_at FROM tenant_plugins
     WHERE tenant_id = $1 ORDER BY plugin_id`,
    [db.ctx.tenantId],
  );
  return rows;
}

export async function enabledTenantPlugins(db: TenantDb): Promise<TenantPluginRow[]> {
  const { rows } = await db.query<TenantPluginRow>(
    `SELECT plugin_id, status, config, permissions, installed_at, updated_at FROM tenant_plugins
     WHERE tenant_id = $1 AND status = 'enabled' ORDER BY plugin_id`,
    [db.ctx.tenantId],
  );
  return rows;
}

export async function getTenantPlugin(db: TenantDb, pluginId: string): Promise<TenantPluginRow | undefined> {
  const { rows } = await db.query<TenantPluginRow>(
    `SELECT plugin_id, status, config, permissions, installed_at, updated_at FROM tenant_plugins
     WHERE tenant_id = $1 AND plugin_id = $2`,
    [db.ctx.tenantId, pluginId],
  );
  return rows[0];
}

/** Installs a plugin for the tenant; undefined when it is installed already. */
export async function installTenantPlugin(
  db: TenantDb,
  p: {
    pluginId: string;
    status: 'enabled' | 'disabled';
    config: Record<string, unknown>;
    permissions: string[];
  },
): Promise<TenantPluginRow | undefined> {
  const { rows } = await db.query<TenantPluginRow>(
    `INSERT INTO tenant_plugins (tenant_id, plugin_id, status, config, permissions) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT DO NOTHING
     RETURNING plugin_id, status, config, permissions, installed_at, updated_at`,
    [db.ctx.tenantId, p.pluginId, p.status, p.config, p.permissions],
  );
  return rows[0];
}

export async function updateTenantPlugin(
  db: TenantDb,
  pluginId: string,
  change: { status?: 'enabled' | 'disabled'; config?: Record<string, unknown> },
): Promise<TenantPluginRow | undefined> {
  const { rows } = await db.query<TenantPluginRow>(
    `UPDATE tenant_plugins SET status = coalesce($3, status), config = coalesce($4, config), updated_at = now()
     WHERE tenant_id = $1 AND plugin_id = $2
     RETURNING plugin_id, status, config, permissions, installed_at, updated_at`,
    [db.ctx.tenantId, pluginId, change.status ?? null, change.config ?? null],
  );
  return rows[0];
}

export async function getPluginState(db: TenantDb, pluginId: string, key: string): Promise<unknown> {
  const { rows } = await db.query<{ value: unknown }>(
    `SELECT value FROM plugin_state WHERE tenant_id = $1 AND plugin_id = $2 AND key = $3`,
    [db.ctx.tenantId, pluginId, key],
  );
  return rows[0]?.value ?? null;
}

export async function setPluginState(
  db: TenantDb,
  pluginId: string,
  key: string,
  value: unknown,
): Promise<void> {
  await db.query(
    `INSERT INTO plugin_state (tenant_id, plugin_id, key, value) VALUES ($1, $2, $3, $4)
     ON CONFLICT (tenant_id, plugin_id, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`,
    [db.ctx.tenantId, pluginId, key, JSON.stringify(value)],
  );
}

export async function deletePluginState(db: TenantDb, pluginId: string, key: string): Promise<void> {
  await db.query(`DELETE FROM plugin_state WHERE tenant_id = $1 AND plugin_id = $2 AND key = $3`, [
    db.ctx.tenantId,
    pluginId,
    key,
  ]);
}

/** Messages in and replies out of the tenant since a time (the daily-usage plugin). */
export async function messageCountsSince(db: TenantDb, since: Date): Promise<{ in: number; out: number }> {
  const { rows } = await db.query<{ inbound: string; outbound: string }>(
    `SELECT count(*) FILTER (WHERE direction = 'in') AS inbound, count(*) FILTER (WHERE direction = 'out') AS outbound
     FROM messages WHERE tenant_id = $1 AND created_at >= $2`,
    [db.ctx.tenantId, since],
  );
  return { in: Number(rows[0]?.inbound ?? 0), out: Number(rows[0]?.outbound ?? 0) };
}
