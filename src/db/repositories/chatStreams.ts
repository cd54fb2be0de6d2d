import type { TenantDb } from '../database';
import type { Statement } from '../statement';

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

function values(tenantId: string, s: NewChatStream): unknown[] {
  return [
    tenantId,
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
    values(db.ctx.tenantId, s),
  );
  return rows[0]!;
}

/**
 * The stream a message belongs to, created on its first message. Returns the stored row, whose
 * agent and platform win over the ones given (a stream never changes owner).
 */
export async function upsertChatStream(db: TenantDb, s: NewChatStream): Promise<ChatStreamRow> {
  const { text, values } = upsertChatStreamsStatement(db.ctx.tenantId, [s]);
  const { rows } = await db.query<ChatStreamRow>(text, values);
  return rows[0]!;
}

/**
 * `upsertChatStream` for several streams as one statement, to combine with others
 * (`combineStatements`). A stream named twice is written once (the first entry wins).
 */
export function upsertChatStreamsStatement(tenantId: string, streams: readonly NewChatStream[]): Statement {
  const seen = new Set<string>();
  const unique = streams.filter((s) => !seen.has(s.chatStreamId) && seen.add(s.chatStreamId));
  const col = <T>(f: (s: NewChatStream) => T) => unique.map(f);
  return {
    text: `INSERT INTO chat_streams ${INSERT_COLUMNS}
     SELECT $1, s.* FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                                $8::text[], $9::jsonb[], $10::jsonb[]) AS s
     ON CONFLICT (tenant_id, chat_stream_id) DO UPDATE SET last_active_at = now()
     RETURNING *`,
    values: [
      tenantId,
      col((s) => s.chatStreamId),
      col((s) => s.agentId),
      col((s) => s.platform),
      col((s) => s.chatType ?? 'group'),
      col((s) => s.groupId ?? null),
      col((s) => s.groupName ?? null),
      col((s) => s.userId ?? null),
      col((s) => JSON.stringify(s.participants ?? [])),
      col((s) => JSON.stringify(s.metadata ?? {})),
    ],
  };
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

export interface ChatStreamFilter {
  platform?: string | undefined;
  status?: 'active' | 'archived' | undefined;
  agentId?: string | undefined;
  limit: number;
  offset: number;
}

/** One page of the unit's tenant's chat streams, newest first, with the total that match. */
export async function listChatStreams(
  db: TenantDb,
  f: ChatStreamFilter,
): Promise<{ rows: ChatStreamRow[]; total: number }> {
  const where = `tenant_id = $1 AND ($2::text IS NULL OR platform = $2) AND ($3::text IS NULL OR status = $3)
                 AND ($4::text IS NULL OR agent_id = $4)`;
  const params = [db.ctx.tenantId, f.platform ?? null, f.status ?? null, f.agentId ?? null];
  const count = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM chat_streams WHERE ${where}`,
    params,
  );
  const { rows } = await db.query<ChatStreamRow>(
    `SELECT * FROM chat_streams WHERE ${where}
     ORDER BY created_at DESC, chat_stream_id DESC LIMIT $5 OFFSET $6`,
    [...params, f.limit, f.offset],
  );
  return { rows, total: Number(count.rows[0]?.n ?? 0) };
}

/** Messages (both directions) per chat stream, for the given streams only. */
export async function messageCountsOf(
  db: TenantDb,
  chatStreamIds: readonly string[],
): Promise<Map<string, number>> {
  if (chatStreamIds.length === 0) return new Map();
  const { rows } = await db.query<{ chat_stream_id: string; n: string }>(
    `SELECT chat_stream_id, count(*) AS n FROM messages
     WHERE tenant_id = $1 AND chat_stream_id = ANY($2::text[]) GROUP BY chat_stream_id`,
    [db.ctx.tenantId, chatStreamIds],
  );
  return new Map(rows.map((r) => [r.chat_stream_id, Number(r.n)]));
}

/** Ids of an agent's chat streams (to forget them outside the database when the agent goes). */
export async function chatStreamIdsOfAgent(db: TenantDb, agentId: string): Promise<string[]> {
  const { rows } = await db.query<{ chat_stream_id: string }>(
    'SELECT chat_stream_id FROM chat_streams WHERE tenant_id = $1 AND agent_id = $2',
    [db.ctx.tenantId, agentId],
  );
  return rows.map((r) => r.chat_stream_id);
}

/** Ids of every chat stream of the unit's tenant (seeds the ingress's set of known streams). */
export async function allChatStreamIds(db: TenantDb): Promise<string[]> {
  const { rows } = await db.query<{ chat_stream_id: string }>(
    'SELECT chat_stream_id FROM chat_streams WHERE tenant_id = $1',
    [db.ctx.tenantId],
  );
  return rows.map((r) => r.chat_stream_id);
}
