import type { TenantDb } from '../database';

export type MemoryScope = 'agent' | 'platform' | 'chat';
export type MemoryType = 'preference' | 'fact' | 'conversation' | 'emotion' | 'summary';

export interface MemoryRow {
  tenant_id: string;
  memory_id: string;
  agent_id: string;
  platform: string | null;
  chat_stream_id: string | null;
  scope: MemoryScope;
  title: string | null;
  content: string;
  memory_type: MemoryType;
  importance: number;
  tags: string[];
  metadata: Record<string, unknown>;
  locked: boolean;
  access_count: number;
  last_accessed: Date | null;
  expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface NewMemory {
  memoryId: string;
  agentId: string;
  scope: MemoryScope;
  /** Required for `platform` and `chat` scope, ignored for `agent`. */
  platform?: string | null;
  /** Required for `chat` scope, ignored otherwise. */
  chatStreamId?: string | null;
  content: string;
  title?: string | null;
  memoryType?: MemoryType;
  importance?: number;
  tags?: string[];
  metadata?: Record<string, unknown>;
  expiresAt?: Date | null;
}

export async function storeMemory(db: TenantDb, m: NewMemory): Promise<MemoryRow> {
  const platform = m.scope === 'agent' ? null : (m.platform ?? null);
  const chat = m.scope === 'chat' ? (m.chatStreamId ?? null) : null;
  const { rows } = await db.query<MemoryRow>(
    `INSERT INTO memory_chest (tenant_id, memory_id, agent_id, platform, chat_stream_id, scope, title, content,
                               memory_type, importance, tags, metadata, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING *`,
    [
      db.ctx.tenantId,
      m.memoryId,
      m.agentId,
      platform,
      chat,
      m.scope,
      m.title ?? null,
      m.content,
      m.memoryType ?? 'fact',
      m.importance ?? 0.5,
      m.tags ?? [],
      JSON.stringify(m.metadata ?? {}),
      m.expiresAt ?? null,
    ],
  );
  return rows[0]!;
}

export interface MemoryFilter {
  agentId?: string | undefined;
  scope?: MemoryScope | undefined;
  platform?: string | undefined;
  chatStreamId?: string | undefined;
  limit?: number;
}

/** Memories of the unit's tenant, narrowed by any of agent, scope, platform and chat; newest first. */
export async function listMemories(db: TenantDb, f: MemoryFilter = {}): Promise<MemoryRow[]> {
  const { rows } = await db.query<MemoryRow>(
    `SELECT * FROM memory_chest
     WHERE tenant_id = $1
       AND ($2::text IS NULL OR agent_id = $2)
       AND ($3::text IS NULL OR scope = $3)
       AND ($4::text IS NULL OR platform = $4)
       AND ($5::text IS NULL OR chat_stream_id = $5)
       AND (expires_at IS NULL OR expires_at > now())
     ORDER BY created_at DESC, memory_id DESC
     LIMIT $6`,
    [
      db.ctx.tenantId,
      f.agentId ?? null,
      f.scope ?? null,
      f.platform ?? null,
      f.chatStreamId ?? null,
      f.limit ?? 100,
    ],
  );
  return rows;
}

export async function getMemory(db: TenantDb, memoryId: string): Promise<MemoryRow | undefined> {
  const { rows } = await db.query<MemoryRow>(
    'SELECT * FROM memory_chest WHERE tenant_id = $1 AND memory_id = $2',
    [db.ctx.tenantId, memoryId],
  );
  return rows[0];
}

export async function updateMemoryContent(db: TenantDb, memoryId: string, content: string): Promise<boolean> {
  const result = await db.query(
    'UPDATE memory_chest SET content = $3, updated_at = now() WHERE tenant_id = $1 AND memory_id = $2',
    [db.ctx.tenantId, memoryId, content],
  );
  return result.rowCount === 1;
}

export async function deleteMemory(db: TenantDb, memoryId: string): Promise<boolean> {
  const result = await db.query('DELETE FROM memory_chest WHERE tenant_id = $1 AND memory_id = $2', [
    db.ctx.tenantId,
    memoryId,
  ]);
  return result.rowCount === 1;
}
