import type { Redis } from 'ioredis';

import type { Database } from '../db/database';
import { type OutcomeRow, storeBatchOutcome } from '../db/repositories/heartflow';
import type { LlmUsageRecord } from '../db/repositories/llmUsage';
import type { MessageRow, NewMessage } from '../db/repositories/messages';
import { hasDeliveryRoute } from '../delivery/routes';
import type { StoredAgentDeliverySettings } from '../domain/agentConfig';
import type { Clock } from '../domain/clock';
import type { HeartflowDecision, HeartflowState } from '../domain/heartflow';
import type { ChatStreamContext } from '../domain/isolationContext';
import { shouldEnqueueMemory } from '../domain/memory/trigger';
import { publishMessageDone, publishStreamEvent } from '../queues/messageEvents';
import type { TenantQueues } from '../queues/tenantQueues';
import type { Keyspace } from '../redis/keys';
import { enqueueDelivery, enqueueMemory, enqueueStats } from './jobs';

/** The LLM's answer to a batch: text, or the error that stood in for it, and what it cost. */
export interface Reply {
  text: string | null;
  tokens: number | null;
  error: string | null;
  /**
   * The reply could not be generated for a fault (the LLM failed after its retries), not by policy
   * (a spent quota): the job that answered fails, so operators see and retry it.
   */
  fault?: boolean;
  /** The fault was Redis being unreachable (a failover, a restart): the job is retried, not failed. */
  transient?: boolean;
  usage: LlmUsageRecord[];
  /** Segments of the reply beyond its text (an emoji image: `emoji/emojiSender.ts`). */
  segments?: unknown[];
}

/** One heartflow pass over a chat stream's pending messages, decided and answered. */
export interface BatchResult {
  decision: HeartflowDecision;
  target: MessageRow;
  covered: MessageRow[];
  mentionedIds: Set<string>;
  reply: Reply;
  state: HeartflowState;
  startedAt: number;
  /** More of the action record's `action_data` (a plugin action's parameters, the planner's choice). */
  actionData?: Record<string, unknown>;
}

/** What storing a batch uses of the heartflow's dependencies. */
export interface BatchStoreDeps {
  db: Database;
  redis: Redis;
  keys: Keyspace;
  clock: Clock;
  /** Follow-up jobs (memory, stats, webhook delivery) are enqueued here after each batch. */
  queues?: TenantQueues | undefined;
}

/**
 * Stores the reply, the action, every covered message's outcome and the stream state in one
 * statement, then announces the outcomes and enqueues the follow-ups.
 */
export async function storeBatch(
  deps: BatchStoreDeps,
  ctx: ChatStreamContext,
  enableMemory: boolean,
  /** The chat's effective delivery settings (`deliverySettingsOf`). */
  delivery: StoredAgentDeliverySettings,
  b: BatchResult,
): Promise<void> {
  const finishedAt = deps.clock.now();
  const replyId = `${b.target.message_id}.r`;
  const answered = b.reply.text !== null;
  const outcomes = batchOutcomes(b, finishedAt);
  await deps.db.withTenantAtOnce(ctx, (db) =>
    storeBatchOutcome(db, {
      chatStreamId: ctx.chatStreamId,
      usage: b.reply.usage,
      reply: b.reply.text === null ? undefined : replyMessage(ctx, b, b.reply.text, replyId, finishedAt),
      action: {
        actionId: `${b.target.message_id}.a`,
        agentId: ctx.agentId,
        platform: ctx.platform,
        chatStreamId: ctx.chatStreamId,
        messageId: b.target.message_id,
        actionName: b.decision.action,
        actionData: {
          probability: b.decision.replyProbability,
          // For GET /heartflow/analysis: the target's emotion and the stream's interest after the batch.
          emotion: b.decision.emotion ?? null,
          interest: b.state.interest,
          covered: b.covered.length,
          reply_id: answered ? replyId : null,
          ...b.actionData,
        },
        reasoning: b.decision.reason,
      },
      outcomes,
      state: b.state,
    }),
  );
  // Store first, then announce: a waiter subscribing late finds the outcome in the table.
  await announceOutcomes(deps, ctx, outcomes, finishedAt);
  // After the announcements: nobody waits for these. Only a chat with a webhook (at any scope), or a
  // QQ reply (OneBot reverse WebSocket or HTTP API), has replies to deliver (the job checks again).
  const deliverable =
    answered &&
    (await hasDeliveryRoute(deps.redis, deps.keys.prefix, delivery, {
      tenantId: ctx.tenantId,
      agentId: ctx.agentId,
      platform: ctx.platform,
      chatStreamId: ctx.chatStreamId,
    }));
  if (deps.queues)
    await enqueueFollowUps(deps.queues, ctx, b, deliverable ? replyId : null, finishedAt, enableMemory);
}

/** Every covered message's outcome (pure): the batch's answer for those who called the bot. */
export function batchOutcomes(b: BatchResult, finishedAt: number): OutcomeRow[] {
  const answered = b.reply.text !== null;
  const failed = b.reply.error !== null;
  const actions = [{ type: b.decision.action, reason: b.decision.reason, target: b.target.message_id }];
  return b.covered.map((m) => {
    // Everyone who called the bot in the batch gets the batch's answer; the rest were heard.
    const gotAnswer = answered && (m.message_id === b.target.message_id || b.mentionedIds.has(m.message_id));
    return {
      messageId: m.message_id,
      status: failed ? 'failed' : gotAnswer ? 'replied' : 'no_reply',
      response: gotAnswer ? b.reply.text : null,
      actionsTaken:
        m.message_id === b.target.message_id ? actions : [{ type: 'coalesced', into: b.target.message_id }],
      tokensUsed: m.message_id === b.target.message_id ? b.reply.tokens : null,
      queueWaitMs: Math.max(0, b.startedAt - m.created_at.getTime()),
      processingTimeMs: finishedAt - b.startedAt,
      error: failed ? b.reply.error : null,
    };
  });
}

function replyMessage(
  ctx: ChatStreamContext,
  b: BatchResult,
  text: string,
  replyId: string,
  finishedAt: number,
): NewMessage {
  return {
    messageId: replyId,
    agentId: ctx.agentId,
    platform: ctx.platform,
    chatStreamId: ctx.chatStreamId,
    direction: 'out',
    content: text,
    segments: b.reply.segments ?? [],
    replyTo: b.target.message_id,
    status: 'sent',
    createdAt: new Date(finishedAt),
  };
}

/**
 * `messageDone` (for `?wait`) and the stream event (for SSE) of every outcome, sent together, in
 * order, on one connection: one round trip for the batch.
 */
async function announceOutcomes(
  deps: BatchStoreDeps,
  ctx: ChatStreamContext,
  outcomes: OutcomeRow[],
  finishedAt: number,
): Promise<void> {
  const announcements: Promise<void>[] = [];
  for (const o of outcomes) {
    const done = publishMessageDone(deps.redis, deps.keys, ctx.tenantId, {
      message_id: o.messageId,
      status: o.status as 'replied' | 'no_reply' | 'failed',
      response: o.response,
      actions_taken: o.actionsTaken,
      tokens_used: o.tokensUsed,
      queue_wait_ms: o.queueWaitMs,
      processing_time_ms: o.processingTimeMs,
      error: o.error,
    });
    const event = publishStreamEvent(deps.redis, deps.keys, {
      type:
        o.status === 'replied'
          ? 'message.replied'
          : o.status === 'failed'
            ? 'message.failed'
            : 'message.no_reply',
      message_id: o.messageId,
      tenant_id: ctx.tenantId,
      agent_id: ctx.agentId,
      platform: ctx.platform,
      chat_stream_id: ctx.chatStreamId,
      at: new Date(finishedAt).toISOString(),
      response: o.response,
      error: o.error,
    });
    announcements.push(done, event);
  }
  await Promise.all(announcements);
}

/**
 * After a batch is stored: memory extraction when the batch says something memorable (or on a
 * sample), the usage buckets its messages and LLM calls fall into, and the webhook delivery of the
 * reply. Job ids derive from the batch, so a retried batch enqueues nothing twice.
 */
async function enqueueFollowUps(
  queues: TenantQueues,
  ctx: ChatStreamContext,
  b: BatchResult,
  replyId: string | null,
  finishedAt: number,
  enableMemory: boolean,
): Promise<void> {
  const where = {
    tenantId: ctx.tenantId,
    agentId: ctx.agentId,
    platform: ctx.platform,
    chatStreamId: ctx.chatStreamId,
  };
  const messages = b.covered.map((m) => ({ messageId: m.message_id, content: m.content }));
  if (shouldEnqueueMemory({ enableMemory, messages })) {
    await enqueueMemory(queues, { ...where, upToMessageId: b.covered[b.covered.length - 1]!.message_id });
  }
  const minutes = new Set(
    [...b.covered.map((m) => m.created_at.getTime()), finishedAt].map((t) => t - (t % 60_000)),
  );
  const enqueued = [...minutes].map((minute) => enqueueStats(queues, ctx.tenantId, minute, finishedAt));
  if (replyId) {
    enqueued.push(
      enqueueDelivery(queues, { tenantId: ctx.tenantId, agentId: ctx.agentId, messageId: replyId }),
    );
  }
  await Promise.all(enqueued);
}
