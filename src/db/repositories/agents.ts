import { NotFoundError } from '../../errors';
import type { TenantDb } from '../database';

export interface AgentRow {
  tenant_id: string;
  agent_id: string;
  name: string;
  description: string | null;
  status: 'active' | 'inactive';
  default_platform: string | null;
  config: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

export interface NewAgent {
  agentId: string;
  name: string;
  description?: string | null;
  defaultPlatform?: string | null;
  config?: Record<string, unknown>;
}

export async function createAgent(db: TenantDb, a: NewAgent): Promise<AgentRow> {
  const { rows } = await db.query<AgentRow>(
    `INSERT INTO agents (tenant_id, agent_id, name, description, default_platform, config)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
    [
      db.ctx.tenantId,
      a.agentId,
      a.name,
      a.description ?? null,
      a.defaultPlatform ?? null,
      JSON.stringify(a.config ?? {}),
    ],
  );
  return rows[0]!;
}

export async function getAgent(db: TenantDb, agentId: string): Promise<AgentRow | undefined> {
  const { rows } = await db.query<AgentRow>('SELECT * FROM agents WHERE tenant_id = $1 AND agent_id = $2', [
    db.ctx.tenantId,
    agentId,
  ]);
  return rows[0];
}

export async function listAgents(db: TenantDb): Promise<AgentRow[]> {
  const { rows } = await db.query<AgentRow>('SELECT * FROM agents WHERE tenant_id = $1 ORDER BY agent_id', [
    db.ctx.tenantId,
  ]);
  return rows;
}

export interface AgentPatch {
  name?: string;
  description?: string | null;
  status?: 'active' | 'inactive';
  defaultPlatform?: string | null;
  /** Replaces the stored config as a whole (callers merge first). */
  config?: Record<string, unknown>;
}

export async function updateAgent(
  db: TenantDb,
  agentId: string,
  patch: AgentPatch,
): Promise<AgentRow | undefined> {
  const { rows } = await db.query<AgentRow>(
    `UPDATE agents SET name = coalesce($3, name),
                       description = CASE WHEN $4::boolean THEN $5 ELSE description END,
                       status = coalesce($6, status),
                       default_platform = CASE WHEN $7::boolean THEN $8 ELSE default_platform END,
                       config = coalesce($9::jsonb, config),
                       updated_at = now()
     WHERE tenant_id = $1 AND agent_id = $2 RETURNING *`,
    [
      db.ctx.tenantId,
      agentId,
      patch.name ?? null,
      patch.description !== undefined,
      patch.description ?? null,
      patch.status ?? null,
      patch.defaultPlatform !== undefined,
      patch.defaultPlatform ?? null,
      patch.config === undefined ? null : JSON.stringify(patch.config),
    ],
  );
  return rows[0];
}

export async function deleteAgent(db: TenantDb, agentId: string): Promise<boolean> {
  const result = await db.query('DELETE FROM agents WHERE tenant_id = $1 AND agent_id = $2', [
    db.ctx.tenantId,
    agentId,
  ]);
  return result.rowCount === 1;
}

/** The agent, or 404 AGENT_NOT_FOUND: also for another tenant's agent, which RLS and the filter hide. */
export async function requireAgent(db: TenantDb, agentId: string): Promise<AgentRow> {
  const agent = await getAgent(db, agentId);
  if (!agent) throw new NotFoundError('AGENT_NOT_FOUND', `agent ${agentId} not found`);
  return agent;
}

export async function countAgents(db: TenantDb): Promise<number> {
  const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM agents WHERE tenant_id = $1', [
    db.ctx.tenantId,
  ]);
  return Number(rows[0]?.n ?? 0);
}

/** A listed agent with its activity: last chat activity, messages and memories. */
export interface AgentSummaryRow extends AgentRow {
  last_active: Date | null;
  message_count: number;
  memory_count: number;
}

export interface AgentFilter {
  status?: 'active' | 'inactive' | undefined;
  /** Only this agent (agent-bound credentials see their own agent only). */
  agentId?: string | undefined;
  limit: number;
  offset: number;
}

/**
 * One page of agents by id, with the total that match. Activity is computed for the page's rows only.
 * Each subquery names `tenant_id = $1` itself (not `p.tenant_id`): an explicit tenant predicate on
 * every table is what lets Citus route the statement to one shard (docs/citus.md).
 */
export async function listAgentPage(
  db: TenantDb,
  f: AgentFilter,
): Promise<{ rows: AgentSummaryRow[]; total: number }> {
  const where = `tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR agent_id = $3)`;
  const params = [db.ctx.tenantId, f.status ?? null, f.agentId ?? null];
  const count = await db.query<{ n: string }>(`SELECT count(*) AS n FROM agents WHERE ${where}`, params);
  const { rows } = await db.query<
    AgentRow & { last_active: Date | null; message_count: string; memory_count: string }
  >(
    `WITH page AS (SELECT * FROM agents WHERE ${where} ORDER BY agent_id LIMIT $4 OFFSET $5)
     SELECT p.*,
            (SELECT max(s.last_active_at) FROM chat_streams s
              WHERE s.tenant_id = $1 AND s.agent_id = p.agent_id) AS last_active,
            (SELECT count(*) FROM messages m
              WHERE m.tenant_id = $1 AND m.agent_id = p.agent_id) AS message_count,
            (SELECT count(*) FROM memory_chest c
              WHERE c.tenant_id = $1 AND c.agent_id = p.agent_id) AS memory_count
     FROM page p ORDER BY p.agent_id`,
    [...params, f.limit, f.offset],
  );
  return {
    rows: rows.map((r) => ({
      ...r,
      message_count: Number(r.message_count),
      memory_count: Number(r.memory_count),
    })),
    total: Number(count.rows[0]?.n ?? 0),
  };
}

/** The agent, locked until the unit of work ends (read-modify-write of its config). */
export async function getAgentForUpdate(db: TenantDb, agentId: string): Promise<AgentRow | undefined> {
  const { rows } = await db.query<AgentRow>(
    'SELECT * FROM agents WHERE tenant_id = $1 AND agent_id = $2 FOR UPDATE',
    [db.ctx.tenantId, agentId],
  );
  return rows[0];
}

/**
 * The tenant's agents whose config holds a secret (LLM API key, webhook secret), locked until the
 * unit of work ends: with `plaintextOnly`, those still holding one in plaintext; else also those
 * holding one sealed.
 */
export async function agentsWithSecretsForUpdate(
  db: TenantDb,
  options: { plaintextOnly: boolean },
): Promise<Pick<AgentRow, 'agent_id' | 'config'>[]> {
  const { rows } = await db.query<Pick<AgentRow, 'agent_id' | 'config'>>(
    `SELECT agent_id, config FROM agents
     WHERE tenant_id = $1
       AND (config->'llm' ? 'api_key' OR config->'delivery' ? 'webhook_secret'
            OR (NOT $2::boolean AND (config->'llm' ? 'api_key_encrypted'
                                     OR config->'delivery' ? 'webhook_secret_encrypted')))
     ORDER BY agent_id FOR UPDATE`,
    [db.ctx.tenantId, options.plaintextOnly],
  );
  return rows;
}

/** Replaces the stored config without touching `updated_at` (maintenance, not a user's change). */
export async function replaceAgentConfig(
  db: TenantDb,
  agentId: string,
  config: Record<string, unknown>,
): Promise<void> {
  await db.query('UPDATE agents SET config = $3::jsonb WHERE tenant_id = $1 AND agent_id = $2', [
    db.ctx.tenantId,
    agentId,
    JSON.stringify(config),
  ]);
}
