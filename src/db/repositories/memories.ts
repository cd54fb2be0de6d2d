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

/** Every column but the generated search ones (`search_vector` is large, `content_key` internal). */
export const MEMORY_COLUMNS = `tenant_id, memory_id, agent_id, platform, chat_stream_id, scope, title, content,
  memory_type, importance, tags, metadata, locked, access_count, last_accessed, expires_at, created_at, updated_at`;

/** The SQL condition of an unexpired memory. */
export const UNEXPIRED = '(expires_at IS NULL OR expires_at > now())';

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
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING ${MEMORY_COLUMNS}`,
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
    `SELECT ${MEMORY_COLUMNS} FROM memory_chest
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
    `SELECT ${MEMORY_COLUMNS} FROM memory_chest WHERE tenant_id = $1 AND memory_id = $2`,
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

/** What `storeOrStrengthen` did: a new row, or an existing one saying the same, strengthened. */
export interface StoredMemory {
  row: MemoryRow;
  merged: boolean;
}

/**
 * Stores a memory unless an unexpired one of the same agent, scope, platform and chat already
 * says the same (equal `maihive_memory_key`: content without case, whitespace and punctuation).
 * Then that one is strengthened instead: importance max(old, new) plus a tenth of what is left to
 * 1, one more access, tags united, metadata merged, the later expiry (none wins). Two concurrent
 * stores of the same text serialise on an advisory lock of that key, so neither adds a copy.
 */
export async function storeOrStrengthen(db: TenantDb, m: NewMemory): Promise<StoredMemory> {
  const platform = m.scope === 'agent' ? null : (m.platform ?? null);
  const chat = m.scope === 'chat' ? (m.chatStreamId ?? null) : null;
  await db.query(
    `SELECT pg_advisory_xact_lock(hashtextextended('maihive:memory/' || $1 || '/' || $2 || '/' || $3 || '/'
       || coalesce($4, '') || '/' || coalesce($5, '') || '/' || maihive_memory_key($6), 0))`,
    [db.ctx.tenantId, m.agentId, m.scope, platform, chat, m.content],
  );
  const { rows } = await db.query<MemoryRow>(
    `UPDATE memory_chest o SET
       importance = least(1, greatest(o.importance, $7::real) + (1 - greatest(o.importance, $7::real)) / 10),
       access_count = o.access_count + 1, last_accessed = now(), updated_at = now(),
       tags = ARRAY(SELECT DISTINCT t FROM unnest(o.tags || $8::text[]) t ORDER BY t),
       metadata = o.metadata || $9::jsonb,
       expires_at = CASE WHEN o.expires_at IS NULL OR $10::timestamptz IS NULL THEN NULL
                         ELSE greatest(o.expires_at, $10::timestamptz) END
     WHERE o.memory_id = (
       SELECT memory_id FROM memory_chest
        WHERE tenant_id = $1 AND agent_id = $2 AND scope = $3 AND content_key = maihive_memory_key($6)
          AND platform IS NOT DISTINCT FROM $4 AND chat_stream_id IS NOT DISTINCT FROM $5 AND ${UNEXPIRED}
        ORDER BY created_at, memory_id LIMIT 1)
       AND o.tenant_id = $1
     RETURNING ${MEMORY_COLUMNS.replace(/(\w+)/g, 'o.$1')}`,
    [
      db.ctx.tenantId,
      m.agentId,
      m.scope,
      platform,
      chat,
      m.content,
      m.importance ?? 0.5,
      m.tags ?? [],
      JSON.stringify(m.metadata ?? {}),
      m.expiresAt ?? null,
    ],
  );
  if (rows[0]) return { row: rows[0], merged: true };
  return { row: await storeMemory(db, m), merged: false };
}

/** One scope's listing: `agent` (by agent), `platform` (by platform) or `chat` (by stream). */
export interface ScopeListing {
  scope: MemoryScope;
  agentId?: string | undefined;
  platform?: string | undefined;
  chatStreamId?: string | undefined;
  memoryType?: MemoryType | undefined;
  limit: number;
  offset: number;
}

/** A page of one scope's unexpired memories, newest first, with the total (one statement). */
export async function listScopePage(
  db: TenantDb,
  f: ScopeListing,
): Promise<{ rows: MemoryRow[]; total: number }> {
  const { rows } = await db.query<MemoryRow & { total: string }>(
    `SELECT ${MEMORY_COLUMNS}, count(*) OVER () AS total FROM memory_chest
     WHERE tenant_id = $1 AND scope = $2
       AND ($3::text IS NULL OR agent_id = $3)
       AND ($4::text IS NULL OR platform = $4)
       AND ($5::text IS NULL OR chat_stream_id = $5)
       AND ($6::text IS NULL OR memory_type = $6)
       AND ${UNEXPIRED}
     ORDER BY created_at DESC, memory_id DESC
     LIMIT $7 OFFSET $8`,
    [
      db.ctx.tenantId,
      f.scope,
      f.agentId ?? null,
      f.platform ?? null,
      f.chatStreamId ?? null,
      f.memoryType ?? null,
      f.limit,
      f.offset,
    ],
  );
  // A page past the end has no row to carry the total: count separately only then.
  if (rows.length === 0 && f.offset > 0) {
    const again = await listScopePage(db, { ...f, offset: 0, limit: 1 });
    return { rows: [], total: again.total };
  }
  return { rows: rows.map(({ total: _t, ...r }) => r), total: rows.length > 0 ? Number(rows[0]!.total) : 0 };
}

/** A memory read by id counts as an access: returned with its counters already moved. */
export async function readMemory(db: TenantDb, memoryId: string): Promise<MemoryRow | undefined> {
  const { rows } = await db.query<MemoryRow>(
    `UPDATE memory_chest SET access_count = access_count + 1, last_accessed = now()
     WHERE tenant_id = $1 AND memory_id = $2 AND ${UNEXPIRED}
     RETURNING ${MEMORY_COLUMNS}`,
    [db.ctx.tenantId, memoryId],
  );
  return rows[0];
}

export interface MemoryChanges {
  content?: string | undefined;
  title?: string | null | undefined;
  memoryType?: MemoryType | undefined;
  importance?: number | undefined;
  tags?: string[] | undefined;
  metadata?: Record<string, unknown> | undefined;
  /** null removes the expiry. */
  expiresAt?: Date | null | undefined;
}

/** Changes the given fields of an unexpired memory; undefined when there is none. */
export async function updateMemory(
  db: TenantDb,
  memoryId: string,
  c: MemoryChanges,
): Promise<MemoryRow | undefined> {
  const { rows } = await db.query<MemoryRow>(
    `UPDATE memory_chest SET
       content = coalesce($3, content),
       title = CASE WHEN $4::boolean THEN $5 ELSE title END,
       memory_type = coalesce($6, memory_type),
       importance = coalesce($7::real, importance),
       tags = coalesce($8::text[], tags),
       metadata = coalesce($9::jsonb, metadata),
       expires_at = CASE WHEN $10::boolean THEN $11::timestamptz ELSE expires_at END,
       updated_at = now()
     WHERE tenant_id = $1 AND memory_id = $2 AND ${UNEXPIRED}
     RETURNING ${MEMORY_COLUMNS}`,
    [
      db.ctx.tenantId,
      memoryId,
      c.content ?? null,
      c.title !== undefined,
      c.title ?? null,
      c.memoryType ?? null,
      c.importance ?? null,
      c.tags ?? null,
      c.metadata === undefined ? null : JSON.stringify(c.metadata),
      c.expiresAt !== undefined,
      c.expiresAt ?? null,
    ],
  );
  return rows[0];
}
