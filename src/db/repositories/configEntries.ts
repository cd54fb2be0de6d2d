import type { TenantDb } from '../database';

/**
 * Configuration values per category and scope (`config_entries`) and their history
 * (`config_history`), migration 009. An agent's `llm`/`delivery`/`memory` values are the agent
 * row's (`agents.config`), read here with the rest so that a tenant's whole configuration is one
 * statement.
 */

/** Which scope a row is for: only the column of its scope is set (agent, platform or chat). */
export interface ConfigTarget {
  category: string;
  scope: 'tenant' | 'agent' | 'platform' | 'chat';
  agentId: string | null;
  platform: string | null;
  chatStreamId: string | null;
}

export interface ConfigEntryRow {
  category: string;
  scope: ConfigTarget['scope'];
  agent_id: string | null;
  platform: string | null;
  chat_stream_id: string | null;
  config: Record<string, unknown>;
  version: number;
}

/** Everything a tenant has configured: its entries and each agent's config sections. */
export interface TenantConfigRows {
  entries: ConfigEntryRow[];
  agents: { agent_id: string; config: Record<string, unknown> }[];
}

export async function tenantConfigRows(db: TenantDb): Promise<TenantConfigRows> {
  const { rows } = await db.query<TenantConfigRows>(
    `SELECT
       (SELECT coalesce(json_agg(json_build_object('category', category, 'scope', scope, 'agent_id', agent_id,
                 'platform', platform, 'chat_stream_id', chat_stream_id, 'config', config, 'version', version)), '[]')
          FROM config_entries WHERE tenant_id = $1) AS entries,
       (SELECT coalesce(json_agg(json_build_object('agent_id', agent_id, 'config',
                 jsonb_build_object('llm', config->'llm', 'delivery', config->'delivery', 'memory', config->'memory'))), '[]')
          FROM agents WHERE tenant_id = $1) AS agents`,
    [db.ctx.tenantId],
  );
  return rows[0]!;
}

const MATCH = `tenant_id = $1 AND category = $2 AND scope = $3 AND agent_id IS NOT DISTINCT FROM $4
  AND platform IS NOT DISTINCT FROM $5 AND chat_stream_id IS NOT DISTINCT FROM $6`;

function targetValues(db: TenantDb, t: ConfigTarget): unknown[] {
  return [db.ctx.tenantId, t.category, t.scope, t.agentId, t.platform, t.chatStreamId];
}

/** The scope's stored values, locked for the change (undefined when it sets nothing). */
export async function configEntryForUpdate(
  db: TenantDb,
  t: ConfigTarget,
): Promise<ConfigEntryRow | undefined> {
  const { rows } = await db.query<ConfigEntryRow>(
    `SELECT * FROM config_entries WHERE ${MATCH} FOR UPDATE`,
    targetValues(db, t),
  );
  return rows[0];
}

/** Stores the scope's values as `version`, or removes the row when `config` is undefined. */
export async function saveConfigEntry(
  db: TenantDb,
  t: ConfigTarget,
  config: Record<string, unknown> | undefined,
  version: number,
  by: string,
): Promise<void> {
  if (config === undefined) {
    await db.query(`DELETE FROM config_entries WHERE ${MATCH}`, targetValues(db, t));
    return;
  }
  await db.query(
    `INSERT INTO config_entries (tenant_id, category, scope, agent_id, platform, chat_stream_id, config, version, updated_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (tenant_id, category, scope, agent_id, platform, chat_stream_id)
     DO UPDATE SET config = EXCLUDED.config, version = EXCLUDED.version, updated_by = EXCLUDED.updated_by, updated_at = now()`,
    [...targetValues(db, t), JSON.stringify(config), version, by],
  );
}

/** The scope's latest version in the history (0 before its first change). */
export async function latestConfigVersion(db: TenantDb, t: ConfigTarget): Promise<number> {
  const { rows } = await db.query<{ v: number }>(
    `SELECT coalesce(max(version), 0)::int AS v FROM config_history WHERE ${MATCH}`,
    targetValues(db, t),
  );
  return rows[0]!.v;
}

export interface ConfigChange {
  version: number;
  action: 'put' | 'reset';
  /** The scope's values after the change, secrets masked. */
  config: Record<string, unknown>;
  /** Per key changed: `{from, to}`, secrets masked. */
  changes: Record<string, { from: unknown; to: unknown }>;
  changedBy: string;
}

export async function recordConfigChange(db: TenantDb, t: ConfigTarget, c: ConfigChange): Promise<Date> {
  const { rows } = await db.query<{ created_at: Date }>(
    `INSERT INTO config_history (tenant_id, category, scope, agent_id, platform, chat_stream_id, version, config,
                                 changed_by, action, changes)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING created_at`,
    [
      ...targetValues(db, t),
      c.version,
      JSON.stringify(c.config),
      c.changedBy,
      c.action,
      JSON.stringify(c.changes),
    ],
  );
  return rows[0]!.created_at;
}

export interface ConfigHistoryRow {
  category: string;
  scope: ConfigTarget['scope'];
  agent_id: string | null;
  platform: string | null;
  chat_stream_id: string | null;
  version: number;
  action: 'put' | 'reset';
  config: Record<string, unknown>;
  changes: Record<string, { from: unknown; to: unknown }>;
  changed_by: string | null;
  created_at: Date;
}

/** The tenant's latest changes, newest first, of one category or all; of one agent's scopes or all. */
export async function configHistory(
  db: TenantDb,
  filter: { category: string | undefined; agentId: string | undefined; limit: number },
): Promise<ConfigHistoryRow[]> {
  const { rows } = await db.query<ConfigHistoryRow>(
    `SELECT category, scope, agent_id, platform, chat_stream_id, version, action, config, changes, changed_by, created_at
       FROM config_history
      WHERE tenant_id = $1 AND ($2::text IS NULL OR category = $2) AND ($3::text IS NULL OR agent_id = $3)
      ORDER BY created_at DESC, history_id DESC LIMIT $4`,
    [db.ctx.tenantId, filter.category ?? null, filter.agentId ?? null, filter.limit],
  );
  return rows;
}
