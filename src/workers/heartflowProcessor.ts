import type { Redis } from 'ioredis';

import type { Database, TenantDb } from '../db/database';
import { getAgent } from '../db/repositories/agents';
import { upsertChatStream } from '../db/repositories/chatStreams';
import {
  claimPendingMessages,
  getStreamHeartflow,
  hasPendingMessages,
  type OutcomeRow,
  recordAction,
  saveStreamHeartflowState,
  setOutcomes,
} from '../db/repositories/heartflow';
import { recordLlmUsage } from '../db/repositories/llmUsage';
import { listMemories } from '../db/repositories/memories';
import { insertMessages, type MessageRow, recentMessages } from '../db/repositories/messages';
import { AgentConfig } from '../domain/agentConfig';
import type { Clock } from '../domain/clock';
import {
  applyDecision,
  buildReplyPrompt,
  coalesce,
  detectMention,
  type HeartflowDecision,
  interestOf,
  plan,
  storedHeartflowConfig,
  storedHeartflowState,
  updateOnMessage,
} from '../domain/heartflow';
import { createIsolationContext, type IsolationContext } from '../domain/isolationContext';
import { shouldEnqueueMemory } from '../domain/memory/trigger';
import { mulberry32, seedFromString } from '../domain/random';
import { publishMessageDone, publishStreamEvent } from '../ingress/messageEvents';
import { agentLlmSettings } from '../llm/agentSettings';
import type { LlmClient } from '../llm/llmClient';
import { LlmQuotaExceededError } from '../llm/llmQuota';
import type { SecretBox } from '../llm/secretBox';
import type { Logger } from '../logger';
import type { Keyspace } from '../queues/names';
import type { HeartflowJobData, TenantQueues } from '../queues/tenantQueues';
import { emojiFor } from './emojiFallback';
import { enqueueDelivery, enqueueMemory, enqueueStats } from './jobs';
import { StreamLock } from './streamLock';

export interface HeartflowDeps {
  db: Database;
  redis: Redis;
  keys: Keyspace;
  llm: LlmClient;
  logger: Logger;
  clock: Clock;
  /** Most messages answered as one batch. Default 50. */
  maxBatch?: number;
  /** TTL of a chat stream's lock, ms (renewed while held). Default 15000. */
  streamLockTtlMs?: number;
  /** Seals agents' LLM API keys for the client. */
  secretBox?: SecretBox;
  /** Follow-up jobs (memory, stats, webhook delivery) are enqueued here after each batch. */
  queues?: TenantQueues;
}

const BATCH_LIMIT = 200;
const HISTORY = 20;

/**
 * One heartflow job = one inbound message. The message is stored first (idempotent on its id),
 * then whoever holds the chat stream's lock answers every pending message of the stream in
 * coalesced batches: a burst of 50 mentions costs one LLM call, not 50. A job that finds the lock
 * taken leaves its stored message to the holder, which looks again after releasing the lock.
 * A worker that dies mid-batch leaves messages `processing`; the retried job claims them again,
 * and the reply's id is derived from the message it answers, so it is stored (and delivered) once.
 */
export async function processHeartflowJob(deps: HeartflowDeps, data: HeartflowJobData): Promise<void> {
  const ctx = createIsolationContext({
    tenantId: data.tenantId,
    agentId: data.agentId,
    platform: data.platform,
    chatStreamId: data.chatStreamId,
  });
  await deps.db.withTenant(ctx, async (db) => {
    await upsertChatStream(db, {
      chatStreamId: data.chatStreamId,
      agentId: data.agentId,
      platform: data.platform,
      chatType: data.chatType,
      groupId: data.sender.groupId,
      groupName: data.sender.groupName,
      userId: data.chatType === 'private' ? data.sender.userId : null,
    });
    await insertMessages(db, [
      {
        messageId: data.messageId,
        agentId: data.agentId,
        platform: data.platform,
        chatStreamId: data.chatStreamId,
        direction: 'in',
        content: data.content,
        clientMessageId: data.clientMessageId,
        replyTo: data.replyTo,
        senderUserId: data.sender.userId,
        senderNickname: data.sender.nickname,
        senderCardname: data.sender.cardname,
        segments: data.segments,
        isMentioned: data.mentioned,
        createdAt: new Date(data.receivedAt),
      },
    ]);
  });

  const lock = new StreamLock(
    deps.redis,
    deps.keys.streamLock(data.tenantId, data.chatStreamId),
    deps.streamLockTtlMs,
  );
  // Release, then look again: a message stored while we held the lock is never left behind.
  while (await lock.acquire()) {
    try {
      await answerPending(deps, ctx, data.options.enableMemory);
    } finally {
      await lock.release();
    }
    const more = await deps.db.withTenant(ctx, (db) => hasPendingMessages(db, ctx.chatStreamId!));
    if (!more) break;
  }
}

interface StreamContext {
  pending: MessageRow[];
  agentConfig: AgentConfig;
  agentName: string;
  heartflow: Awaited<ReturnType<typeof getStreamHeartflow>>;
}

async function loadStream(db: TenantDb, ctx: IsolationContext): Promise<StreamContext> {
  const pending = await claimPendingMessages(db, ctx.chatStreamId!, BATCH_LIMIT);
  const agent = await getAgent(db, ctx.agentId!);
  const parsed = AgentConfig.safeParse(agent?.config ?? {});
  return {
    pending,
    agentConfig: parsed.success ? parsed.data : AgentConfig.parse({}),
    agentName: agent?.name ?? 'MaiBot',
    heartflow: await getStreamHeartflow(db, ctx.chatStreamId!),
  };
}

/**
 * `enableMemory`: the `options.enable_memory` of the message whose job answers (a coalesced batch
 * takes it from the job that holds the stream's lock; the others' options are not stored).
 */
async function answerPending(
  deps: HeartflowDeps,
  ctx: IsolationContext,
  enableMemory: boolean,
): Promise<void> {
  const startedAt = deps.clock.now();
  const stream = await deps.db.withTenant(ctx, (db) => loadStream(db, ctx));
  if (stream.pending.length === 0) return;
  const config = storedHeartflowConfig(stream.heartflow?.heartflow_config);
  let state = storedHeartflowState(stream.heartflow?.heartflow_state, startedAt);
  const account = stream.agentConfig.accounts.find((a) => a.platform === ctx.platform);
  const bot = {
    accountId: account?.account_id ?? ctx.agentId!,
    nickname: account?.nickname ?? stream.agentName,
    aliases: account?.aliases ?? [],
  };
  const byId = new Map(stream.pending.map((m) => [m.message_id, m]));
  const batches = coalesce(
    stream.pending.map((m) => ({
      id: m.message_id,
      at: m.created_at.getTime(),
      mentioned: detectMention(m.content, bot, m.is_mentioned).mentioned,
    })),
    { maxBatch: deps.maxBatch ?? 50 },
  );

  for (const batch of batches) {
    const planned = batch.messages.map((b) => {
      const m = byId.get(b.id)!;
      const interest = interestOf(m.content, { mentioned: b.mentioned });
      state = updateOnMessage(state, { mentioned: b.mentioned, interest, at: b.at });
      return { id: m.message_id, text: m.content, mentioned: b.mentioned };
    });
    const now = deps.clock.now();
    const decision = plan({
      state,
      config,
      messages: planned,
      now,
      rng: mulberry32(seedFromString(batch.targetMessageId)),
      chatType: stream.heartflow?.chat_type ?? 'group',
    });
    state = applyDecision(state, decision, now);
    const target = byId.get(batch.targetMessageId)!;
    const reply = await produceReply(deps, ctx, stream, decision, target);
    await storeBatch(deps, ctx, enableMemory, {
      decision,
      target,
      covered: batch.messages.map((b) => byId.get(b.id)!),
      mentionedIds: new Set(batch.messages.filter((b) => b.mentioned).map((b) => b.id)),
      reply,
      state,
      startedAt,
    });
  }
}

interface Reply {
  text: string | null;
  tokens: number | null;
  error: string | null;
  usage: Parameters<typeof recordLlmUsage>[1][];
}

async function produceReply(
  deps: HeartflowDeps,
  ctx: IsolationContext,
  stream: StreamContext,
  decision: HeartflowDecision,
  target: MessageRow,
): Promise<Reply> {
  if (decision.action === 'emoji')
    return { text: emojiFor(decision.emotion), tokens: null, error: null, usage: [] };
  if (decision.action !== 'reply') return { text: null, tokens: null, error: null, usage: [] };
  const { history, memories } = await deps.db.withTenant(ctx, async (db) => ({
    history: await recentMessages(db, ctx.chatStreamId!, HISTORY),
    memories: await listMemories(db, { agentId: ctx.agentId, limit: 20 }),
  }));
  const persona = {
    name: stream.agentName,
    description: stream.agentConfig.persona,
    style: stream.agentConfig.reply_style,
  };
  const messages = buildReplyPrompt({
    persona,
    recentMessages: history.reverse().map((m) => ({
      id: m.message_id,
      sender:
        m.direction === 'out'
          ? stream.agentName
          : (m.sender_cardname ?? m.sender_nickname ?? m.sender_user_id ?? 'user'),
      content: m.content,
      isBot: m.direction === 'out',
      at: m.created_at.getTime(),
    })),
    memories: memories.map((m) => ({ content: m.content, importance: m.importance })),
    target: { id: target.message_id, sender: target.sender_nickname ?? 'user', content: target.content },
    config: storedHeartflowConfig(stream.heartflow?.heartflow_config),
  });
  try {
    const result = await deps.llm.complete({
      tenantId: ctx.tenantId,
      agentId: ctx.agentId!,
      platform: ctx.platform,
      chatStreamId: ctx.chatStreamId,
      messageId: target.message_id,
      requestType: 'replyer',
      messages,
      settings: agentLlmSettings(stream.agentConfig, deps.secretBox),
      hints: { personaName: stream.agentName, memories: memories.map((m) => m.content) },
    });
    return {
      text: result.content,
      tokens: result.promptTokens + result.completionTokens,
      error: null,
      usage: result.usage,
    };
  } catch (err) {
    const usage = (err as { usage?: Reply['usage'] }).usage ?? [];
    if (err instanceof LlmQuotaExceededError) {
      // Not a fault: the message is `failed` with the quota as its reason, and the job is done.
      deps.logger.info(
        { tenant_id: ctx.tenantId, message_id: target.message_id, quota: err.quota, limit: err.limit },
        'reply refused: tenant LLM quota exceeded',
      );
    } else {
      deps.logger.warn(
        { err, tenant_id: ctx.tenantId, message_id: target.message_id },
        'reply generation failed',
      );
    }
    return { text: null, tokens: null, error: (err as Error).message, usage };
  }
}

interface BatchResult {
  decision: HeartflowDecision;
  target: MessageRow;
  covered: MessageRow[];
  mentionedIds: Set<string>;
  reply: Reply;
  state: unknown;
  startedAt: number;
}

/** Stores the reply, the action, every covered message's outcome and the stream state together. */
async function storeBatch(
  deps: HeartflowDeps,
  ctx: IsolationContext,
  enableMemory: boolean,
  b: BatchResult,
): Promise<void> {
  const finishedAt = deps.clock.now();
  const replyId = `${b.target.message_id}.r`;
  const answered = b.reply.text !== null;
  const failed = b.reply.error !== null;
  const actions = [{ type: b.decision.action, reason: b.decision.reason, target: b.target.message_id }];
  const outcomes: OutcomeRow[] = b.covered.map((m) => {
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
  await deps.db.withTenant(ctx, async (db) => {
    for (const u of b.reply.usage) await recordLlmUsage(db, u);
    if (answered) {
      await insertMessages(db, [
        {
          messageId: replyId,
          agentId: ctx.agentId!,
          platform: ctx.platform!,
          chatStreamId: ctx.chatStreamId!,
          direction: 'out',
          content: b.reply.text!,
          replyTo: b.target.message_id,
          status: 'sent',
          createdAt: new Date(finishedAt),
        },
      ]);
    }
    await recordAction(db, {
      actionId: `${b.target.message_id}.a`,
      agentId: ctx.agentId!,
      platform: ctx.platform!,
      chatStreamId: ctx.chatStreamId!,
      messageId: b.target.message_id,
      actionName: b.decision.action,
      actionData: {
        probability: b.decision.replyProbability,
        covered: b.covered.length,
        reply_id: answered ? replyId : null,
      },
      reasoning: b.decision.reason,
    });
    await setOutcomes(db, outcomes);
    await saveStreamHeartflowState(db, ctx.chatStreamId!, b.state);
  });
  if (deps.queues)
    await enqueueFollowUps(deps.queues, ctx, b, answered ? replyId : null, finishedAt, enableMemory);
  // Store first, then announce: a waiter subscribing late finds the outcome in the table.
  for (const o of outcomes) {
    await publishMessageDone(deps.redis, deps.keys, ctx.tenantId, {
      message_id: o.messageId,
      status: o.status as 'replied' | 'no_reply' | 'failed',
      response: o.response,
      actions_taken: o.actionsTaken,
      tokens_used: o.tokensUsed,
      queue_wait_ms: o.queueWaitMs,
      processing_time_ms: o.processingTimeMs,
      error: o.error,
    });
    await publishStreamEvent(deps.redis, deps.keys, {
      type:
        o.status === 'replied'
          ? 'message.replied'
          : o.status === 'failed'
            ? 'message.failed'
            : 'message.no_reply',
      message_id: o.messageId,
      tenant_id: ctx.tenantId,
      agent_id: ctx.agentId!,
      platform: ctx.platform!,
      chat_stream_id: ctx.chatStreamId!,
      at: new Date(finishedAt).toISOString(),
      response: o.response,
      error: o.error,
    });
  }
}

/**
 * After a batch is stored: memory extraction when the batch says something memorable (or on a
 * sample), the usage buckets its messages and LLM calls fall into, and the webhook delivery of the
 * reply. Job ids derive from the batch, so a retried batch enqueues nothing twice.
 */
async function enqueueFollowUps(
  queues: TenantQueues,
  ctx: IsolationContext,
  b: BatchResult,
  replyId: string | null,
  finishedAt: number,
  enableMemory: boolean,
): Promise<void> {
  const where = {
    tenantId: ctx.tenantId,
    agentId: ctx.agentId!,
    platform: ctx.platform!,
    chatStreamId: ctx.chatStreamId!,
  };
  const messages = b.covered.map((m) => ({ messageId: m.message_id, content: m.content }));
  if (shouldEnqueueMemory({ enableMemory, messages })) {
    await enqueueMemory(queues, { ...where, upToMessageId: b.covered[b.covered.length - 1]!.message_id });
  }
  const minutes = new Set(
    [...b.covered.map((m) => m.created_at.getTime()), finishedAt].map((t) => t - (t % 60_000)),
  );
  for (const minute of minutes) await enqueueStats(queues, ctx.tenantId, minute, finishedAt);
  if (replyId)
    await enqueueDelivery(queues, { tenantId: ctx.tenantId, agentId: ctx.agentId!, messageId: replyId });
}
