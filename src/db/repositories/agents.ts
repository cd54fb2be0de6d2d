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

export async function updateAgent(
  db: TenantDb,
  agentId: string,
  patch: { name?: string; description?: string | null; status?: 'active' | 'inactive' },
): Promise<AgentRow | undefined> {
  const { rows } = await db.query<AgentRow>(
    `UPDATE agents SET name = coalesce($3, name),
                       description = CASE WHEN $4::boolean THEN $5 ELSE description END,
                       status = coalesce($6, status), updated_at = now()
     WHERE tenant_id = $1 AND agent_id = $2 RETURNING *`,
    [
      db.ctx.tenantId,
      agentId,
      patch.name ?? null,
      'description' in patch,
      patch.description ?? null,
      patch.status ?? null,
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
