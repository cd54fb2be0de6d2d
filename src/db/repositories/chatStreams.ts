import type { TenantDb } from '../database';

export interface ChatStreamRow {
  tenant_id: string;
  chat_stream_id: string;
  agent_id: string;
  platform: string;
  chat_type: 'group' | 'private';
  group_id: string | null;
  group_name: string | null;
  user_id: string | null;
  participants: unknown[];
  metadata: Record<string, unknown>;
  status: 'active' | 'archived';
  created_at: Date;
  last_active_at: Date;
}

export interface NewChatStream {
  chatStreamId: string;
  agentId: string;
  platform: string;
  chatType?: 'group' | 'private';
  groupId?: string | null;
  groupName?: string | null;
  userId?: string | null;
  participants?: unknown[];
  metadata?: Record<string, unknown>;
}

const INSERT_COLUMNS = `(tenant_id, chat_stream_id, agent_id, platform, chat_type, group_id, group_name, user_id,
                         participants, metadata)`;

function values(db: TenantDb, s: NewChatStream): unknown[] {
  return [
    db.ctx.tenantId,
    s.chatStreamId,
    s.agentId,
    s.platform,
    s.chatType ?? 'group',
    s.groupId ?? null,
    s.groupName ?? null,
    s.userId ?? null,
    JSON.stringify(s.participants ?? []),
    JSON.stringify(s.metadata ?? {}),
  ];
}

export async function createChatStream(db: TenantDb, s: NewChatStream): Promise<ChatStreamRow> {
  const { rows } = await db.query<ChatStreamRow>(
    `INSERT INTO chat_streams ${INSERT_COLUMNS} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *`,
    values(db, s),
  );
  return rows[0]!;
}

/**
 * The stream a message belongs to, created on its first message. Returns the stored row, whose
 * agent and platform win over the ones given (a stream never changes owner).
 */
export async function upsertChatStream(db: TenantDb, s: NewChatStream): Promise<ChatStreamRow> {
  const { rows } = await db.query<ChatStreamRow>(
    `INSERT INTO chat_streams ${INSERT_COLUMNS} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (tenant_id, chat_stream_id) DO UPDATE SET last_active_at = now()
     RETURNING *`,
    values(db, s),
  );
  return rows[0]!;
}

export async function getChatStream(db: TenantDb, chatStreamId: string): Promise<ChatStreamRow | undefined> {
  const { rows } = await db.query<ChatStreamRow>(
    'SELECT * FROM chat_streams WHERE tenant_id = $1 AND chat_stream_id = $2',
    [db.ctx.tenantId, chatStreamId],
  );
  return rows[0];
}

export async function countChatStreams(db: TenantDb): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    'SELECT count(*) AS n FROM chat_streams WHERE tenant_id = $1',
    [db.ctx.tenantId],
  );
  return Number(rows[0]?.n ?? 0);
}

export async function deleteChatStream(db: TenantDb, chatStreamId: string): Promise<boolean> {
  const result = await db.query('DELETE FROM chat_streams WHERE tenant_id = $1 AND chat_stream_id = $2', [
    db.ctx.tenantId,
    chatStreamId,
  ]);
  return result.rowCount === 1;
}
