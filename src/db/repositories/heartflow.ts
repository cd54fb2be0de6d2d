import type { TenantDb } from '../database';
import type { MessageRow, MessageStatus } from './messages';

/**
 * Claims the stream's pending inbound messages (queued, or left `processing` by a worker that
 * died), oldest first, and marks them `processing`. The caller holds the stream's lock.
 */
export async function claimPendingMessages(
  db: TenantDb,
  chatStreamId: string,
  limit: number,
): Promise<MessageRow[]> {
  const { rows } = await db.query<MessageRow>(
    `UPDATE messages SET status = 'processing'
     WHERE tenant_id = $1 AND message_id IN (
       SELECT message_id FROM messages
       WHERE tenant_id = $1 AND chat_stream_id = $2 AND direction = 'in' AND status IN ('queued', 'processing')
       ORDER BY created_at, message_id LIMIT $3)
     RETURNING *`,
    [db.ctx.tenantId, chatStreamId, limit],
  );
  return rows.sort(
    (a, b) => a.created_at.getTime() - b.created_at.getTime() || a.message_id.localeCompare(b.message_id),
  );
}

export async function hasPendingMessages(db: TenantDb, chatStreamId: string): Promise<boolean> {
  const { rows } = await db.query(
    `SELECT 1 FROM messages WHERE tenant_id = $1 AND chat_stream_id = $2 AND direction = 'in'
       AND status IN ('queued', 'processing') LIMIT 1`,
    [db.ctx.tenantId, chatStreamId],
  );
  return rows.length > 0;
}

export interface StreamHeartflow {
  heartflow_state: unknown;
  heartflow_config: unknown;
  chat_type: 'group' | 'private';
}

export async function getStreamHeartflow(
  db: TenantDb,
  chatStreamId: string,
): Promise<StreamHeartflow | undefined> {
  const { rows } = await db.query<StreamHeartflow>(
    `SELECT heartflow_state, heartflow_config, chat_type FROM chat_streams
     WHERE tenant_id = $1 AND chat_stream_id = $2`,
    [db.ctx.tenantId, chatStreamId],
  );
  return rows[0];
}

export async function saveStreamHeartflowState(
  db: TenantDb,
  chatStreamId: string,
  state: unknown,
): Promise<void> {
  await db.query(
    `UPDATE chat_streams SET heartflow_state = $3, last_active_at = now()
     WHERE tenant_id = $1 AND chat_stream_id = $2`,
    [db.ctx.tenantId, chatStreamId, JSON.stringify(state)],
  );
}

export interface OutcomeRow {
  messageId: string;
  status: MessageStatus;
  response: string | null;
  actionsTaken: unknown[];
  tokensUsed: number | null;
  queueWaitMs: number;
  processingTimeMs: number;
  error: string | null;
}

/** Final statuses of a batch's messages in one statement. */
export async function setOutcomes(db: TenantDb, outcomes: readonly OutcomeRow[]): Promise<void> {
  if (outcomes.length === 0) return;
  const col = <T>(f: (o: OutcomeRow) => T) => outcomes.map(f);
  await db.query(
    `UPDATE messages m SET status = o.status, response = o.response, actions_taken = o.actions,
            tokens_used = o.tokens, queue_wait_ms = o.wait, processing_time_ms = o.took, error = o.error,
            processed_at = now()
     FROM unnest($2::text[], $3::text[], $4::text[], $5::jsonb[], $6::int[], $7::int[], $8::int[], $9::text[])
          AS o(id, status, response, actions, tokens, wait, took, error)
     WHERE m.tenant_id = $1 AND m.message_id = o.id`,
    [
      db.ctx.tenantId,
      col((o) => o.messageId),
      col((o) => o.status),
      col((o) => o.response),
      col((o) => JSON.stringify(o.actionsTaken)),
      col((o) => o.tokensUsed),
      col((o) => Math.round(o.queueWaitMs)),
      col((o) => Math.round(o.processingTimeMs)),
      col((o) => o.error),
    ],
  );
}

export interface ActionRecord {
  actionId: string;
  agentId: string;
  platform: string;
  chatStreamId: string;
  messageId: string | null;
  actionName: string;
  actionData: Record<string, unknown>;
  reasoning: string;
}

/** Idempotent on the action id, so a retried batch records each action once. */
export async function recordAction(db: TenantDb, a: ActionRecord): Promise<void> {
  await db.query(
    `INSERT INTO action_records (tenant_id, action_id, agent_id, platform, chat_stream_id, message_id, action_name,
                                 action_data, reasoning, done)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, true)
     ON CONFLICT (tenant_id, action_id) DO NOTHING`,
    [
      db.ctx.tenantId,
      a.actionId,
      a.agentId,
      a.platform,
      a.chatStreamId,
      a.messageId,
      a.actionName,
      JSON.stringify(a.actionData),
      a.reasoning,
    ],
  );
}
