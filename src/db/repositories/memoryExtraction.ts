import type { TenantDb } from '../database';
import type { MemoryScope, MemoryType } from './memories';

/**
 * A point in a chat stream's message order. `at` is PostgreSQL's text form of `created_at`: a JS
 * `Date` would drop the microseconds and put a cursor before the very message it names.
 */
export interface StreamCursor {
  at: string;
  messageId: string;
}

export interface MemoryCursors {
  chatType: 'group' | 'private';
  /** Facts/preferences extracted up to here (inclusive); null = from the start. */
  scanned: StreamCursor | null;
  /** Conversation summarised up to here (inclusive); null = from the start. */
  summarized: StreamCursor | null;
}

interface CursorRow {
  chat_type: 'group' | 'private';
  memory_scanned_at: string | null;
  memory_scanned_id: string | null;
  memory_summarized_at: string | null;
  memory_summarized_id: string | null;
}

function cursorOf(at: string | null, id: string | null): StreamCursor | null {
  return at && id ? { at, messageId: id } : null;
}

export async function getMemoryCursors(
  db: TenantDb,
  chatStreamId: string,
): Promise<MemoryCursors | undefined> {
  const { rows } = await db.query<CursorRow>(
    `SELECT chat_type, memory_scanned_at::text, memory_scanned_id, memory_summarized_at::text,
            memory_summarized_id
     FROM chat_streams WHERE tenant_id = $1 AND chat_stream_id = $2`,
    [db.ctx.tenantId, chatStreamId],
  );
  const r = rows[0];
  if (!r) return undefined;
  return {
    chatType: r.chat_type,
    scanned: cursorOf(r.memory_scanned_at, r.memory_scanned_id),
    summarized: cursorOf(r.memory_summarized_at, r.memory_summarized_id),
  };
}

/** Where a message sits in its stream's order (for `upToMessageId`). */
export async function messageCursor(
  db: TenantDb,
  chatStreamId: string,
  messageId: string,
): Promise<StreamCursor | undefined> {
  const { rows } = await db.query<{ at: string }>(
    `SELECT created_at::text AS at FROM messages
     WHERE tenant_id = $1 AND chat_stream_id = $2 AND message_id = $3`,
    [db.ctx.tenantId, chatStreamId, messageId],
  );
  const r = rows[0];
  return r ? { at: r.at, messageId } : undefined;
}

/** The stream's last message at or before a time (for `upToTime`), if any. */
export async function cursorAtTime(
  db: TenantDb,
  chatStreamId: string,
  at: Date,
): Promise<StreamCursor | undefined> {
  const { rows } = await db.query<{ at: string; message_id: string }>(
    `SELECT created_at::text AS at, message_id FROM messages
     WHERE tenant_id = $1 AND chat_stream_id = $2 AND created_at <= $3
     ORDER BY created_at DESC, message_id DESC LIMIT 1`,
    [db.ctx.tenantId, chatStreamId, at],
  );
  const r = rows[0];
  return r ? { at: r.at, messageId: r.message_id } : undefined;
}

export interface StreamMessage {
  message_id: string;
  direction: 'in' | 'out';
  content: string;
  sender_user_id: string | null;
  sender_nickname: string | null;
  sender_cardname: string | null;
  created_at: Date;
  /** `created_at` exactly, for cursors. */
  cursor_at: string;
}

/**
 * A stream's messages strictly after `after` and at or before `upTo`, oldest first. `inboundOnly`
 * leaves out the bot's messages; `limit` counts returned rows.
 */
export async function streamMessagesBetween(
  db: TenantDb,
  args: {
    chatStreamId: string;
    after: StreamCursor | null;
    upTo: StreamCursor;
    inboundOnly: boolean;
    limit: number;
  },
): Promise<StreamMessage[]> {
  const { rows } = await db.query<StreamMessage>(
    `SELECT message_id, direction, content, sender_user_id, sender_nickname, sender_cardname, created_at,
            created_at::text AS cursor_at
     FROM messages
     WHERE tenant_id = $1 AND chat_stream_id = $2
       AND ($3::timestamptz IS NULL OR (created_at, message_id) > ($3::timestamptz, $4))
       AND (created_at, message_id) <= ($5::timestamptz, $6)
       AND ($7::boolean IS FALSE OR direction = 'in')
     ORDER BY created_at, message_id
     LIMIT $8`,
    [
      db.ctx.tenantId,
      args.chatStreamId,
      args.after?.at ?? null,
      args.after?.messageId ?? null,
      args.upTo.at,
      args.upTo.messageId,
      args.inboundOnly,
      args.limit,
    ],
  );
  return rows;
}

/** Inbound messages after `after` up to `upTo`: how many, and when the oldest came. */
export async function countInboundBetween(
  db: TenantDb,
  args: { chatStreamId: string; after: StreamCursor | null; upTo: StreamCursor },
): Promise<{ count: number; oldestAt: Date | null }> {
  const { rows } = await db.query<{ count: string; oldest: Date | null }>(
    `SELECT count(*) AS count, min(created_at) AS oldest FROM messages
     WHERE tenant_id = $1 AND chat_stream_id = $2 AND direction = 'in'
       AND ($3::timestamptz IS NULL OR (created_at, message_id) > ($3::timestamptz, $4))
       AND (created_at, message_id) <= ($5::timestamptz, $6)`,
    [
      db.ctx.tenantId,
      args.chatStreamId,
      args.after?.at ?? null,
      args.after?.messageId ?? null,
      args.upTo.at,
      args.upTo.messageId,
    ],
  );
  return { count: Number(rows[0]?.count ?? 0), oldestAt: rows[0]?.oldest ?? null };
}

export interface MemoryInsert {
  memoryId: string;
  agentId: string;
  scope: MemoryScope;
  platform: string | null;
  chatStreamId: string | null;
  title: string | null;
  content: string;
  memoryType: MemoryType;
  importance: number;
  tags: string[];
  metadata: Record<string, unknown>;
  /** When it expires (config `memory.retention_days`); undefined = kept until deleted. */
  expiresAt?: Date | undefined;
}

/**
 * Stores memories in one statement, skipping ids that exist: with ids derived from their content
 * or source messages, a re-run stores nothing twice. Returns the ids that were new.
 */
export async function insertMemoriesIfAbsent(db: TenantDb, rows: readonly MemoryInsert[]): Promise<string[]> {
  if (rows.length === 0) return [];
  const col = <T>(f: (m: MemoryInsert) => T) => rows.map(f);
  // tags travel as jsonb (unnest would flatten a text[][]) and become text[] per row.
  const { rows: inserted } = await db.query<{ memory_id: string }>(
    `INSERT INTO memory_chest (tenant_id, memory_id, agent_id, platform, chat_stream_id, scope, title, content,
                               memory_type, importance, tags, metadata, expires_at)
     SELECT $1, m.id, m.agent, m.platform, m.chat, m.scope, m.title, m.content, m.type, m.importance,
            ARRAY(SELECT jsonb_array_elements_text(m.tags)), m.metadata, m.expires
     FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                 $9::text[], $10::real[], $11::jsonb[], $12::jsonb[], $13::timestamptz[])
          AS m(id, agent, platform, chat, scope, title, content, type, importance, tags, metadata, expires)
     ON CONFLICT (tenant_id, memory_id) DO NOTHING
     RETURNING memory_id`,
    [
      db.ctx.tenantId,
      col((m) => m.memoryId),
      col((m) => m.agentId),
      col((m) => (m.scope === 'agent' ? null : m.platform)),
      col((m) => (m.scope === 'chat' ? m.chatStreamId : null)),
      col((m) => m.scope),
      col((m) => m.title),
      col((m) => m.content),
      col((m) => m.memoryType),
      col((m) => m.importance),
      col((m) => JSON.stringify(m.tags)),
      col((m) => JSON.stringify(m.metadata)),
      col((m) => m.expiresAt ?? null),
    ],
  );
  return inserted.map((r) => r.memory_id);
}

/**
 * `memory.max_long_term`: when the agent has more than `cap` memories (every scope, locked ones
 * counted), removes the least valuable unlocked ones — lowest importance, then least recently
 * accessed (never accessed first), then oldest — until it has `cap`. Returns the removed ids.
 * Runs in the caller's unit of work, under RLS (the tenant's rows only).
 */
export async function evictMemoriesOverCap(db: TenantDb, agentId: string, cap: number): Promise<string[]> {
  const { rows } = await db.query<{ memory_id: string }>(
    `DELETE FROM memory_chest m
      WHERE m.tenant_id = $1 AND m.memory_id IN (
        SELECT memory_id FROM memory_chest
         WHERE tenant_id = $1 AND agent_id = $2 AND NOT locked
         ORDER BY importance ASC, last_accessed ASC NULLS FIRST, created_at ASC, memory_id ASC
         LIMIT greatest((SELECT count(*) FROM memory_chest WHERE tenant_id = $1 AND agent_id = $2) - $3, 0))
      RETURNING m.memory_id`,
    [db.ctx.tenantId, agentId, cap],
  );
  return rows.map((r) => r.memory_id);
}

/** Moves the extraction cursor forward (never back: concurrent jobs may finish out of order). */
export async function advanceScannedCursor(
  db: TenantDb,
  chatStreamId: string,
  to: StreamCursor,
): Promise<void> {
  await db.query(
    `UPDATE chat_streams SET memory_scanned_at = $3::timestamptz, memory_scanned_id = $4
     WHERE tenant_id = $1 AND chat_stream_id = $2
       AND (memory_scanned_at IS NULL OR (memory_scanned_at, memory_scanned_id) < ($3::timestamptz, $4))`,
    [db.ctx.tenantId, chatStreamId, to.at, to.messageId],
  );
}

/**
 * Moves the summary cursor from `from` to `to` if it is still at `from` (compare-and-set). False
 * means another job summarised these messages first: the caller stores nothing.
 */
export async function advanceSummarizedCursor(
  db: TenantDb,
  chatStreamId: string,
  from: StreamCursor | null,
  to: StreamCursor,
): Promise<boolean> {
  const result = await db.query(
    `UPDATE chat_streams SET memory_summarized_at = $3::timestamptz, memory_summarized_id = $4
     WHERE tenant_id = $1 AND chat_stream_id = $2
       AND memory_summarized_id IS NOT DISTINCT FROM $5::text
       AND memory_summarized_at IS NOT DISTINCT FROM $6::timestamptz`,
    [db.ctx.tenantId, chatStreamId, to.at, to.messageId, from?.messageId ?? null, from?.at ?? null],
  );
  return result.rowCount === 1;
}
