import type { Job } from 'bullmq';

import type { Database } from '../db/database';
import { getMessage, type MessageRow, type MessageStatus } from '../db/repositories/messages';
import type { IsolationContext } from '../domain/isolationContext';
import type { HeartflowJobData, TenantQueues } from '../queues/tenantQueues';
import { mapRedisError, withDeadline } from '../redis/availability';

/** `GET /chat/messages/{id}/status` (API.md § Chat and messages). */
export interface MessageStatusView {
  message_id: string;
  status: MessageStatus;
  response?: string | null;
  actions_taken?: unknown[] | null;
  tokens_used?: number | null;
  queue_wait_ms?: number | null;
  processing_time_ms?: number | null;
  error?: string | null;
}

/** `GET /chat/messages/{id}` and the items of a stream's history. */
export interface MessageView extends MessageStatusView {
  tenant_id: string;
  agent_id: string;
  platform: string;
  chat_stream_id: string;
  direction: 'in' | 'out';
  content: string;
  client_message_id: string | null;
  reply_to: string | null;
  sender_info: { user_id: string | null; username: string | null; cardname: string | null };
  is_mentioned: boolean;
  created_at: string;
  processed_at: string | null;
}

export interface LookupDeps {
  db: Database;
  queues: TenantQueues;
}

/** ms a job lookup may take before the request fails with 503. */
const JOB_LOOKUP_TIMEOUT_MS = 4000;

/** BullMQ job states as message statuses: a job waiting for a retry is queued again. */
function statusOfJobState(state: string): MessageStatus {
  if (state === 'active') return 'processing';
  if (state === 'failed') return 'failed';
  // 'completed' without a stored outcome: the worker finished but its row is not visible yet.
  if (state === 'completed') return 'processing';
  return 'queued';
}

export function statusFromRow(row: MessageRow): MessageStatusView {
  return {
    message_id: row.message_id,
    status: row.status,
    response: row.response,
    actions_taken: row.actions_taken,
    tokens_used: row.tokens_used,
    queue_wait_ms: row.queue_wait_ms,
    processing_time_ms: row.processing_time_ms,
    error: row.error,
  };
}

export function viewFromRow(row: MessageRow): MessageView {
  return {
    ...statusFromRow(row),
    tenant_id: row.tenant_id,
    agent_id: row.agent_id,
    platform: row.platform,
    chat_stream_id: row.chat_stream_id,
    direction: row.direction,
    content: row.content,
    client_message_id: row.client_message_id,
    reply_to: row.reply_to,
    sender_info: {
      user_id: row.sender_user_id,
      username: row.sender_nickname,
      cardname: row.sender_cardname,
    },
    is_mentioned: row.is_mentioned,
    created_at: row.created_at.toISOString(),
    processed_at: row.processed_at?.toISOString() ?? null,
  };
}

/**
 * What a client is told about a message whose job failed before the message was stored. The job's
 * own failure reason is for operators (`GET /admin/queues/…/jobs`): it may be a database's or
 * another internal error text, which must not reach API clients.
 */
const STORE_FAILED =
  'the message could not be processed (internal error); operators see the reason in its job';

function viewFromJob(job: Job<HeartflowJobData>, status: MessageStatus): MessageView {
  const d = job.data;
  return {
    message_id: d.messageId,
    status,
    response: null,
    actions_taken: null,
    tokens_used: null,
    queue_wait_ms: null,
    processing_time_ms: null,
    error: status === 'failed' ? STORE_FAILED : null,
    tenant_id: d.tenantId,
    agent_id: d.agentId,
    platform: d.platform,
    chat_stream_id: d.chatStreamId,
    direction: 'in',
    content: d.content,
    client_message_id: d.clientMessageId,
    reply_to: d.replyTo,
    sender_info: { user_id: d.sender.userId, username: d.sender.nickname, cardname: d.sender.cardname },
    is_mentioned: d.mentioned,
    created_at: new Date(d.receivedAt).toISOString(),
    processed_at: null,
  };
}

/** The message's heartflow job and its state, when it is still in the tenant's queue and visible to `ctx`. */
async function findJob(
  queues: TenantQueues,
  ctx: IsolationContext,
  messageId: string,
): Promise<{ job: Job<HeartflowJobData>; status: MessageStatus } | undefined> {
  const lookup = async () => {
    const job = (await queues.queue(ctx.tenantId, 'heartflow').getJob(messageId)) as
      Job<HeartflowJobData> | undefined;
    // The queue is the tenant's own; the checks guard against a foreign payload all the same.
    if (!job?.data || job.data.tenantId !== ctx.tenantId) return undefined;
    if (ctx.agentId !== undefined && job.data.agentId !== ctx.agentId) return undefined;
    return { job, status: statusOfJobState(await job.getState()) };
  };
  try {
    return await withDeadline(lookup(), JOB_LOOKUP_TIMEOUT_MS, 'Redis');
  } catch (err) {
    throw mapRedisError(err);
  }
}

/**
 * A message's status: from the table once the worker stored an outcome, else from its job
 * (waiting → queued, active → processing, failed → failed). Undefined when neither knows it in
 * `ctx`, which is how another tenant's (or agent's) message looks.
 */
export async function readMessageStatus(
  deps: LookupDeps,
  ctx: IsolationContext,
  messageId: string,
): Promise<MessageStatusView | undefined> {
  const row = await deps.db.withTenantAtOnce(ctx, (db) => getMessage(db, messageId));
  if (row && row.status !== 'queued') return statusFromRow(row);
  const found = await findJob(deps.queues, ctx, messageId);
  if (found) {
    const { status } = found;
    return {
      message_id: messageId,
      status,
      ...(status === 'failed' ? { error: STORE_FAILED } : {}),
    };
  }
  return row ? statusFromRow(row) : undefined;
}

/** The stored message with its reply, or the queued job's data while it is not stored yet. */
export async function readMessage(
  deps: LookupDeps,
  ctx: IsolationContext,
  messageId: string,
): Promise<MessageView | undefined> {
  const row = await deps.db.withTenant(ctx, (db) => getMessage(db, messageId));
  if (row && row.status !== 'queued') return viewFromRow(row);
  const found = await findJob(deps.queues, ctx, messageId);
  if (found)
    return row ? { ...viewFromRow(row), status: found.status } : viewFromJob(found.job, found.status);
  return row ? viewFromRow(row) : undefined;
}
