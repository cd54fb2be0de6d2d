import type { TenantDb } from '../database';
import { combineStatements, type Statement } from '../statement';
import { type NewChatStream, upsertChatStreamsStatement } from './chatStreams';
import { type LlmUsageRecord, llmUsageStatement } from './llmUsage';
import { insertMessagesStatement, type MessageRow, type MessageStatus, type NewMessage } from './messages';

/** What a pass of the heartflow claims and reads of its stream in one statement. */
export interface ClaimedStream {
  /** The claimed messages, oldest first. */
  pending: MessageRow[];
  /** The stream's latest messages, newest first (claimed ones included, as they were). */
  history: MessageRow[];
  /** The agent and the stream's heartflow, read by the same statement. */
  context: ReplyContext;
}

/**
 * What a reply needs besides the messages and memories: the agent and the stream's heartflow.
 * (Memories come from the memory search, `memoriesForPrompt`, the one users search with.)
 */
export interface ReplyContext {
  agent: { name: string; config: Record<string, unknown> } | undefined;
  heartflow: StreamHeartflow | undefined;
}

type ClaimRow = MessageRow & {
  part: 'pending' | 'history' | 'context';
  agent: ReplyContext['agent'] | null;
  heartflow: StreamHeartflow | null;
};

/**
 * Claims the stream's pending inbound messages (queued, or left `processing` by a worker that
 * died), oldest first, at most `limit`, and marks them `processing`; reads the stream's latest
 * `historyLimit` messages; and reads the agent and the stream's heartflow state (one row of their
 * own, its message columns NULL): one statement, one round trip. The history comes from the
 * statement's snapshot, so the messages just claimed are in it with the status they had before.
 * The caller holds the stream's lock.
 */
export async function claimWithHistory(
  db: TenantDb,
  agentId: string,
  chatStreamId: string,
  limit: number,
  historyLimit: number,
): Promise<ClaimedStream> {
  const { rows } = await db.query<ClaimRow>(
    `WITH claimed AS (
       UPDATE messages SET status = 'processing'
       WHERE tenant_id = $1 AND message_id IN (
         SELECT message_id FROM messages
         WHERE tenant_id = $1 AND chat_stream_id = $2 AND direction = 'in' AND status IN ('queued', 'processing')
         ORDER BY created_at, message_id LIMIT $3)
       RETURNING *),
     recent AS (
       SELECT * FROM messages WHERE tenant_id = $1 AND chat_stream_id = $2
       ORDER BY created_at DESC, message_id DESC LIMIT $4)
     SELECT 'pending' AS part, claimed.*, NULL::json AS agent, NULL::json AS heartflow FROM claimed
     UNION ALL
     SELECT 'history' AS part, recent.*, NULL::json, NULL::json FROM recent
     UNION ALL
     SELECT 'context' AS part, (NULL::messages).*,
       (SELECT json_build_object('name', a.name, 'config', a.config) FROM agents a
         WHERE a.tenant_id = $1 AND a.agent_id = $5),
       (SELECT json_build_object('heartflow_state', s.heartflow_state, 'chat_type', s.chat_type) FROM chat_streams s
         WHERE s.tenant_id = $1 AND s.chat_stream_id = $2)`,
    [db.ctx.tenantId, chatStreamId, limit, historyLimit, agentId],
  );
  const byTime = (a: MessageRow, b: MessageRow) =>
    a.created_at.getTime() - b.created_at.getTime() || a.message_id.localeCompare(b.message_id);
  const strip = ({ part: _part, agent: _agent, heartflow: _heartflow, ...row }: ClaimRow): MessageRow => row;
  const context = rows.find((r) => r.part === 'context');
  return {
    pending: rows
      .filter((r) => r.part === 'pending')
      .map(strip)
      .sort(byTime),
    history: rows
      .filter((r) => r.part === 'history')
      .map(strip)
      .sort((a, b) => byTime(b, a)),
    context: { agent: context?.agent ?? undefined, heartflow: context?.heartflow ?? undefined },
  };
}

/** A stream's heartflow state (its settings are configuration: `EffectiveConfigReader`). */
export interface StreamHeartflow {
  heartflow_state: unknown;
  chat_type: 'group' | 'private';
}

export async function saveStreamHeartflowState(
  db: TenantDb,
  chatStreamId: string,
  state: unknown,
): Promise<void> {
  const { text, values } = saveStreamHeartflowStateStatement(db.ctx.tenantId, chatStreamId, state);
  await db.query(text, values);
}

export function saveStreamHeartflowStateStatement(
  tenantId: string,
  chatStreamId: string,
  state: unknown,
): Statement {
  return {
    text: `UPDATE chat_streams SET heartflow_state = $3, last_active_at = now()
     WHERE tenant_id = $1 AND chat_stream_id = $2`,
    values: [tenantId, chatStreamId, JSON.stringify(state)],
  };
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
/**
 * Puts messages a failed pass left `failed` back in the queue (`queued`, outcome cleared), so
 * the next pass over their stream answers them; other statuses are left alone. Returns how many.
 */
export async function requeueFailed(db: TenantDb, messageIds: readonly string[]): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE messages SET status = 'queued', response = NULL, actions_taken = NULL, tokens_used = NULL,
            processing_time_ms = NULL, error = NULL, processed_at = NULL
      WHERE tenant_id = $1 AND message_id = ANY($2::text[]) AND direction = 'in' AND status = 'failed'`,
    [db.ctx.tenantId, messageIds],
  );
  return rowCount ?? 0;
}

export async function setOutcomes(db: TenantDb, outcomes: readonly OutcomeRow[]): Promise<void> {
  if (outcomes.length === 0) return;
  const { text, values } = setOutcomesStatement(db.ctx.tenantId, outcomes);
  await db.query(text, values);
}

export function setOutcomesStatement(tenantId: string, outcomes: readonly OutcomeRow[]): Statement {
  const col = <T>(f: (o: OutcomeRow) => T) => outcomes.map(f);
  return {
    text: `UPDATE messages m SET status = o.status, response = o.response, actions_taken = o.actions,
            tokens_used = o.tokens, queue_wait_ms = o.wait, processing_time_ms = o.took, error = o.error,
            processed_at = now()
     FROM unnest($2::text[], $3::text[], $4::text[], $5::jsonb[], $6::int[], $7::int[], $8::int[], $9::text[])
          AS o(id, status, response, actions, tokens, wait, took, error)
     WHERE m.tenant_id = $1 AND m.message_id = o.id`,
    values: [
      tenantId,
      col((o) => o.messageId),
      col((o) => o.status),
      col((o) => o.response),
      col((o) => JSON.stringify(o.actionsTaken)),
      col((o) => o.tokensUsed),
      col((o) => Math.round(o.queueWaitMs)),
      col((o) => Math.round(o.processingTimeMs)),
      col((o) => o.error),
    ],
  };
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
  const { text, values } = recordActionStatement(db.ctx.tenantId, a);
  await db.query(text, values);
}

export function recordActionStatement(tenantId: string, a: ActionRecord): Statement {
  return {
    text: `INSERT INTO action_records (tenant_id, action_id, agent_id, platform, chat_stream_id, message_id, action_name,
                                 action_data, reasoning, done)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, true)
     ON CONFLICT (tenant_id, action_id) DO NOTHING`,
    values: [
      tenantId,
      a.actionId,
      a.agentId,
      a.platform,
      a.chatStreamId,
      a.messageId,
      a.actionName,
      JSON.stringify(a.actionData),
      a.reasoning,
    ],
  };
}

/** An inbound message and the chat stream it belongs to (created on the stream's first message). */
export interface InboundMessage {
  stream: NewChatStream;
  message: NewMessage;
}

/**
 * Stores inbound messages, creating their chat streams on a stream's first message (else
 * touching its `last_active_at`): one statement, one round trip, however many. Idempotent on
 * the message ids.
 */
export async function storeInbound(db: TenantDb, items: readonly InboundMessage[]): Promise<void> {
  if (items.length === 0) return;
  const { text, values } = combineStatements([
    upsertChatStreamsStatement(
      db.ctx.tenantId,
      items.map((i) => i.stream),
    ),
    insertMessagesStatement(
      db.ctx.tenantId,
      items.map((i) => i.message),
    ),
  ]);
  await db.query(text, values);
}

/** What answering one coalesced batch writes. */
export interface BatchOutcome {
  chatStreamId: string;
  /** LLM calls made for the batch (one row per HTTP attempt). */
  usage: readonly LlmUsageRecord[];
  /** The bot's reply, when it answered. */
  reply: NewMessage | undefined;
  action: ActionRecord;
  outcomes: readonly OutcomeRow[];
  state: unknown;
}

/**
 * Everything a batch's answer writes — usage, the reply, the action, every covered message's
 * outcome and the stream's heartflow state — as one statement: one round trip for the whole
 * write, inside the caller's unit of work.
 */
export async function storeBatchOutcome(db: TenantDb, b: BatchOutcome): Promise<void> {
  const tenantId = db.ctx.tenantId;
  const { text, values } = combineStatements([
    llmUsageStatement(tenantId, b.usage),
    insertMessagesStatement(tenantId, b.reply ? [b.reply] : []),
    recordActionStatement(tenantId, b.action),
    setOutcomesStatement(tenantId, b.outcomes),
    saveStreamHeartflowStateStatement(tenantId, b.chatStreamId, b.state),
  ]);
  await db.query(text, values);
}
