import type { TenantDb } from '../database';
import type { Statement } from '../statement';

export type MessageStatus = 'queued' | 'processing' | 'replied' | 'no_reply' | 'failed' | 'sent';

export interface MessageRow {
  tenant_id: string;
  message_id: string;
  agent_id: string;
  platform: string;
  chat_stream_id: string;
  direction: 'in' | 'out';
  client_message_id: string | null;
  reply_to: string | null;
  sender_user_id: string | null;
  sender_nickname: string | null;
  sender_cardname: string | null;
  content: string;
  segments: unknown[];
  is_mentioned: boolean;
  interest: number | null;
  status: MessageStatus;
  response: string | null;
  actions_taken: unknown[] | null;
  tokens_used: number | null;
  queue_wait_ms: number | null;
  processing_time_ms: number | null;
  error: string | null;
  created_at: Date;
  processed_at: Date | null;
}

export interface NewMessage {
  messageId: string;
  agentId: string;
  platform: string;
  chatStreamId: string;
  direction: 'in' | 'out';
  content: string;
  clientMessageId?: string | null;
  replyTo?: string | null;
  senderUserId?: string | null;
  senderNickname?: string | null;
  senderCardname?: string | null;
  segments?: unknown[];
  isMentioned?: boolean;
  status?: MessageStatus;
  createdAt?: Date;
}

/**
 * Inserts messages in one statement (`unnest` over column arrays, never a variable `VALUES` list).
 * Idempotent on `(tenant_id, message_id)`: a message stored twice (a retried job) stays one row.
 * Returns the ids that were new.
 */
export async function insertMessages(db: TenantDb, messages: readonly NewMessage[]): Promise<string[]> {
  if (messages.length === 0) return [];
  const { text, values } = insertMessagesStatement(db.ctx.tenantId, messages);
  const { rows } = await db.query<{ message_id: string }>(text, values);
  return rows.map((r) => r.message_id);
}

/** `insertMessages` as a statement, to combine with others (`combineStatements`); no rows is a no-op. */
export function insertMessagesStatement(tenantId: string, messages: readonly NewMessage[]): Statement {
  const col = <T>(f: (m: NewMessage) => T) => messages.map(f);
  return {
    text: `INSERT INTO messages (tenant_id, message_id, agent_id, platform, chat_stream_id, direction, content,
                           client_message_id, reply_to, sender_user_id, sender_nickname, sender_cardname,
                           segments, is_mentioned, status, created_at)
     SELECT $1, m.* FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                                $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                                $13::jsonb[], $14::boolean[], $15::text[], $16::timestamptz[]) AS m
     ON CONFLICT (tenant_id, message_id) DO NOTHING
     RETURNING message_id`,
    values: [
      tenantId,
      col((m) => m.messageId),
      col((m) => m.agentId),
      col((m) => m.platform),
      col((m) => m.chatStreamId),
      col((m) => m.direction),
      col((m) => m.content),
      col((m) => m.clientMessageId ?? null),
      col((m) => m.replyTo ?? null),
      col((m) => m.senderUserId ?? null),
      col((m) => m.senderNickname ?? null),
      col((m) => m.senderCardname ?? null),
      col((m) => JSON.stringify(m.segments ?? [])),
      col((m) => m.isMentioned ?? false),
      col((m) => m.status ?? (m.direction === 'in' ? 'queued' : 'sent')),
      col((m) => m.createdAt ?? new Date()),
    ],
  };
}

export async function getMessage(db: TenantDb, messageId: string): Promise<MessageRow | undefined> {
  const { rows } = await db.query<MessageRow>(
    'SELECT * FROM messages WHERE tenant_id = $1 AND message_id = $2',
    [db.ctx.tenantId, messageId],
  );
  return rows[0];
}

/** Cursor into a stream's history: the `(created_at, message_id)` of the oldest row already seen. */
export interface HistoryCursor {
  createdAt: Date;
  messageId: string;
}

/** The newest `limit` messages of a chat stream (both directions), newest first, before a cursor. */
export async function recentMessages(
  db: TenantDb,
  chatStreamId: string,
  limit: number,
  before?: HistoryCursor,
): Promise<MessageRow[]> {
  const { rows } = await db.query<MessageRow>(
    `SELECT * FROM messages
     WHERE tenant_id = $1 AND chat_stream_id = $2
       AND ($3::timestamptz IS NULL OR (created_at, message_id) < ($3, $4))
     ORDER BY created_at DESC, message_id DESC
     LIMIT $5`,
    [db.ctx.tenantId, chatStreamId, before?.createdAt ?? null, before?.messageId ?? null, limit],
  );
  return rows;
}

export interface MessageOutcome {
  status: MessageStatus;
  response?: string | null;
  actionsTaken?: unknown[] | null;
  tokensUsed?: number | null;
  queueWaitMs?: number | null;
  processingTimeMs?: number | null;
  error?: string | null;
}

export async function setMessageOutcome(
  db: TenantDb,
  messageId: string,
  o: MessageOutcome,
): Promise<boolean> {
  const result = await db.query(
    `UPDATE messages SET status = $3, response = $4, actions_taken = $5, tokens_used = $6,
                         queue_wait_ms = $7, processing_time_ms = $8, error = $9,
                         processed_at = CASE WHEN $3 IN ('queued', 'processing') THEN NULL ELSE now() END
     WHERE tenant_id = $1 AND message_id = $2`,
    [
      db.ctx.tenantId,
      messageId,
      o.status,
      o.response ?? null,
      o.actionsTaken === undefined || o.actionsTaken === null ? null : JSON.stringify(o.actionsTaken),
      o.tokensUsed ?? null,
      o.queueWaitMs ?? null,
      o.processingTimeMs ?? null,
      o.error ?? null,
    ],
  );
  return result.rowCount === 1;
}

export async function countMessages(db: TenantDb): Promise<number> {
  const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM messages WHERE tenant_id = $1', [
    db.ctx.tenantId,
  ]);
  return Number(rows[0]?.n ?? 0);
}

/** A row of a history page, with its position as exact text (`created_at` to the microsecond). */
export type HistoryRow = MessageRow & { position_at: string };

/**
 * Like `recentMessages`, for cursors handed to clients: the cursor's time is PostgreSQL's text
 * form with microseconds, so rows within one millisecond are neither skipped nor repeated (a JS
 * `Date` would round them to the millisecond).
 */
export async function historyPage(
  db: TenantDb,
  chatStreamId: string,
  limit: number,
  before?: { createdAt: string; messageId: string },
): Promise<HistoryRow[]> {
  const { rows } = await db.query<HistoryRow>(
    `SELECT *, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS position_at
     FROM messages
     WHERE tenant_id = $1 AND chat_stream_id = $2
       AND ($3::timestamptz IS NULL OR (created_at, message_id) < ($3::timestamptz, $4::text))
     ORDER BY created_at DESC, message_id DESC
     LIMIT $5`,
    [db.ctx.tenantId, chatStreamId, before?.createdAt ?? null, before?.messageId ?? null, limit],
  );
  return rows;
}
