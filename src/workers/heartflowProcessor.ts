import type { Redis } from 'ioredis';

import type { EffectiveConfigReader } from '../configuration/effectiveConfig';
import type { Database, TenantDb } from '../db/database';
import { recordEmojiUse } from '../db/repositories/emoji';
import {
  claimWithHistory,
  type InboundMessage,
  replyContext,
  requeueFailed,
  storeInbound,
  type StreamHeartflow,
} from '../db/repositories/heartflow';
import { memoriesForPrompt } from '../db/repositories/memorySearch';
import { type MessageRow, recentMessages } from '../db/repositories/messages';
import { AgentConfig } from '../domain/agentConfig';
import type { Clock } from '../domain/clock';
import type { EffectiveConfig } from '../domain/configuration/precedence';
import { emojiEnabled } from '../domain/emoji';
import {
  applyDecision,
  buildReplyPrompt,
  coalesce,
  detectMention,
  type HeartflowConfig,
  type HeartflowDecision,
  interestOf,
  plan,
  type PromptMemory,
  storedHeartflowConfig,
  storedHeartflowState,
  updateOnMessage,
  utcOffsetMinutes,
} from '../domain/heartflow';
import { type ChatStreamContext, createChatStreamContext } from '../domain/isolationContext';
import { mulberry32, seedFromString } from '../domain/random';
import { pickEmoji, useOf } from '../emoji/emojiSender';
import { agentLlmSettings } from '../llm/agentSettings';
import type { LlmClient } from '../llm/llmClient';
import { LlmQuotaExceededError } from '../llm/llmQuota';
import type { SecretBox } from '../llm/secretBox';
import type { Logger } from '../logger';
import type { PluginRuntime } from '../plugins/pluginRuntime';
import type { HeartflowJobData, TenantQueues } from '../queues/tenantQueues';
import { isRedisUnavailable } from '../redis/availability';
import type { Keyspace } from '../redis/keys';
import { type Reply, storeBatch } from './batchOutcome';
import { actionNames, actionReply, afterLlm, afterSend, enabledPlugins, intercept } from './heartflowPlugins';
import {
  BUSY_TENANT_JOBS_PER_S,
  GATHER_MS,
  HOT_STREAM_GAP_MS,
  isSweep,
  scheduleSweep,
  SWEEP_GRACE_MS,
  type SweepJobData,
  type TenantHeat,
} from './hotStreams';
import type { InboundWriter } from './inboundWriter';
import { StreamLock } from './streamLock';

export interface HeartflowDeps {
  db: Database;
  redis: Redis;
  keys: Keyspace;
  llm: LlmClient;
  logger: Logger;
  clock: Clock;
  /** Where the heartflow, LLM, memory and emoji settings of each chat are read. */
  config: EffectiveConfigReader;
  /** Most messages answered as one batch. Default 50. */
  maxBatch?: number;
  /** TTL of a chat stream's lock, ms (renewed while held). Default 15000. */
  streamLockTtlMs?: number;
  /** Seals agents' LLM API keys for the client. */
  secretBox?: SecretBox;
  /** Follow-up jobs (memory, stats, webhook delivery) are enqueued here after each batch. */
  queues?: TenantQueues;
  /** Group commit of inbound messages (the pool's); without it each is stored on its own. */
  inbound?: InboundWriter;
  /** Per-tenant job rates of this process; without it no tenant counts as busy (no gathering). */
  heat?: TenantHeat;
  /** Plugins (commands, handlers, actions); without it messages are answered without plugins. */
  plugins?: PluginRuntime;
}

const BATCH_LIMIT = 200;
/**
 * A job picked within this many ms of its message's arrival tries the stream's lock before it
 * stores the message (see `processHeartflowJob`). Default for `HeartflowDeps`.
 */
const LOCK_FIRST_MAX_WAIT_MS = 100;
const HISTORY = 20;

/**
 * One heartflow job = one inbound message. The message is stored (idempotent on its id), and
 * whoever holds the chat stream's lock answers every pending message of the stream in coalesced
 * batches: a burst of 50 mentions costs one LLM call, not 50. A job that finds the lock taken
 * marks the stream dirty once its message is stored and leaves it to the holder, which takes
 * another pass before it lets the lock go (`StreamLock`: no database read to find out).
 * A worker that dies mid-batch leaves messages `processing`; the retried job claims them again,
 * and the reply's id is derived from the message it answers, so it is stored (and delivered) once.
 */
export async function processHeartflowJob(
  deps: HeartflowDeps,
  data: HeartflowJobData | SweepJobData,
): Promise<FailedAnswer[]> {
  const ctx = createChatStreamContext({
    tenantId: data.tenantId,
    agentId: data.agentId,
    platform: data.platform,
    chatStreamId: data.chatStreamId,
  });
  // A retried job whose pass failed: its failed messages are answered again, once, by this run.
  if (data.rerun?.length) await deps.db.withTenant(ctx, (db) => requeueFailed(db, data.rerun!));
  if (isSweep(data)) return sweepStream(deps, data);
  const inbound: InboundMessage = {
    stream: {
      chatStreamId: data.chatStreamId,
      agentId: data.agentId,
      platform: data.platform,
      chatType: data.chatType,
      groupId: data.sender.groupId,
      groupName: data.sender.groupName,
      userId: data.chatType === 'private' ? data.sender.userId : null,
    },
    message: {
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
  };
  const lock = streamLock(deps, data.tenantId, data.chatStreamId);
  const now = deps.clock.now();
  const busy = (deps.heat?.record(data.tenantId, now) ?? 0) >= BUSY_TENANT_JOBS_PER_S;
  // A fresh message of a free stream (the quiet case) is stored in the same unit of work that
  // claims it. One that waited in the queue probably has company (a backlog of its stream), as
  // has a busy tenant's: it is stored first, with others of its tenant (group commit), and
  // handed to the stream's holder, so that the holder's next pass answers the lot.
  const fresh = !busy && now - data.receivedAt < LOCK_FIRST_MAX_WAIT_MS;
  let storeFirst: InboundMessage | undefined = inbound;
  if (!(fresh && (await lock.take()))) {
    await storeOne(deps, ctx, inbound);
    if (!(await lock.takeOrMark())) return [];
    storeFirst = undefined;
  }
  return holdStream(deps, ctx, lock, {
    busy,
    enableMemory: data.options.enableMemory,
    enableEmoji: data.options.enableEmoji,
    storeFirst,
    generation: 0,
    gathered: false,
  });
}

/** Stores one inbound message, through the pool's group commit when there is one. */
async function storeOne(deps: HeartflowDeps, ctx: ChatStreamContext, inbound: InboundMessage): Promise<void> {
  if (deps.inbound) await deps.inbound.store(ctx.tenantId, inbound);
  else await deps.db.withTenant(ctx, (db) => storeInbound(db, [inbound]));
}

function streamLock(deps: HeartflowDeps, tenantId: string, chatStreamId: string, token?: string): StreamLock {
  const keys = {
    lock: deps.keys.streamLock(tenantId, chatStreamId),
    dirty: deps.keys.streamDirty(tenantId, chatStreamId),
    lastPass: deps.keys.streamLastPass(tenantId, chatStreamId),
  };
  return new StreamLock(deps.redis, keys, deps.streamLockTtlMs, token);
}

/**
 * A delayed pass over a busy stream (`hotStreams.ts`): it adopts the lock its holder handed over
 * and answers everything gathered meanwhile. Should the lock have expired (the sweep waited in a
 * backlog), it takes the stream like any job; a stream held by someone else has its mark.
 */
async function sweepStream(deps: HeartflowDeps, data: SweepJobData): Promise<FailedAnswer[]> {
  const ctx = createChatStreamContext({
    tenantId: data.tenantId,
    agentId: data.agentId,
    platform: data.platform,
    chatStreamId: data.chatStreamId,
  });
  const lock = streamLock(deps, data.tenantId, data.chatStreamId, data.lockToken);
  if (!(await lock.adopt()) && !(await lock.takeOrMark())) return [];
  const busy = (deps.heat?.rate(data.tenantId, deps.clock.now()) ?? 0) >= BUSY_TENANT_JOBS_PER_S;
  return holdStream(deps, ctx, lock, {
    busy,
    enableMemory: data.enableMemory,
    enableEmoji: data.enableEmoji ?? true,
    storeFirst: undefined,
    generation: data.generation + 1,
    gathered: true,
  });
}

/** Messages a pass could not answer for a fault (their outcome is stored `failed`), and why. */
export interface FailedAnswer {
  messageIds: string[];
  error: string;
  /** The fault was Redis being unreachable (the LLM call's quota or slot): worth another attempt. */
  transient?: boolean;
}

interface Holding {
  /** The tenant is busy: its hot streams gather before a pass. */
  busy: boolean;
  enableMemory: boolean;
  /** `options.enable_emoji` of the job's message (see `emojiEnabled`). */
  enableEmoji: boolean;
  /** The job's own message, stored in the first pass's unit of work. */
  storeFirst: InboundMessage | undefined;
  /** Sweeps the lock went through so far. */
  generation: number;
  /** The first pass comes right after a gathering (a sweep): no gathering before it. */
  gathered: boolean;
}

/**
 * Answers the stream's pending messages in passes while holding its lock, until no message is
 * left; a busy tenant's hot stream hands the lock to a sweep instead of passing at once.
 */
async function holdStream(
  deps: HeartflowDeps,
  ctx: ChatStreamContext,
  lock: StreamLock,
  h: Holding,
): Promise<FailedAnswer[]> {
  let { storeFirst, gathered } = h;
  const failures: FailedAnswer[] = [];
  try {
    for (;;) {
      const last = lock.lastPassEndedAt;
      const hot = last !== undefined && deps.clock.now() - last < HOT_STREAM_GAP_MS;
      if (h.busy && hot && !gathered && deps.queues) {
        if (storeFirst) await storeOne(deps, ctx, storeFirst);
        const sweep: SweepJobData = {
          sweep: true,
          tenantId: ctx.tenantId,
          agentId: ctx.agentId,
          platform: ctx.platform,
          chatStreamId: ctx.chatStreamId,
          lockToken: lock.token,
          generation: h.generation,
          enableMemory: h.enableMemory,
          enableEmoji: h.enableEmoji,
        };
        await scheduleSweep(deps.queues, sweep, GATHER_MS);
        await lock.handOver(GATHER_MS + SWEEP_GRACE_MS);
        return failures;
      }
      failures.push(...(await answerPending(deps, ctx, h, storeFirst)));
      storeFirst = undefined;
      gathered = false;
      if (await lock.releaseUnlessDirty(deps.clock.now())) return failures;
    }
  } catch (err) {
    await lock.release().catch(() => undefined);
    throw err;
  }
}

interface StreamContext {
  pending: MessageRow[];
  agentConfig: AgentConfig;
  agentName: string;
  heartflow: StreamHeartflow | undefined;
  /** The stream's latest messages (newest first) and the memories found for them, for the prompt. */
  history: MessageRow[];
  memories: PromptMemory[];
}

/**
 * Claims the pending messages and reads everything a reply needs, in one unit of work of two
 * statements (storing the job's own message first, when given).
 */
async function loadStream(
  db: TenantDb,
  ctx: ChatStreamContext,
  store: InboundMessage | undefined,
  now: number,
  memoryLimit: number,
): Promise<StreamContext> {
  if (store) await storeInbound(db, [store]);
  const { pending, history } = await claimWithHistory(db, ctx.chatStreamId, BATCH_LIMIT, HISTORY);
  if (pending.length === 0) {
    return {
      pending,
      agentConfig: AgentConfig.parse({}),
      agentName: 'MaiBot',
      heartflow: undefined,
      history,
      memories: [],
    };
  }
  const context = await replyContext(db, ctx.agentId, ctx.chatStreamId);
  const memories = await memoriesForPrompt(
    db,
    ctx,
    pending.map((m) => m.content),
    { limit: memoryLimit, now },
  );
  const parsed = AgentConfig.safeParse(context.agent?.config ?? {});
  return {
    pending,
    agentConfig: parsed.success ? parsed.data : AgentConfig.parse({}),
    agentName: context.agent?.name ?? 'MaiBot',
    heartflow: context.heartflow,
    history,
    memories,
  };
}

/** What a pass reads of a chat's effective configuration. */
interface ChatSettings {
  heartflow: HeartflowConfig;
  llm: AgentConfig['llm'];
  memoryEnabled: boolean;
  /** Memories of the agent put into a reply prompt. */
  promptMemories: number;
}

function chatSettings(effective: EffectiveConfig): ChatSettings {
  const heartflow = storedHeartflowConfig(effective.heartflow.values);
  const memory = effective.memory.values;
  const memoryEnabled = memory.enabled !== false;
  return {
    // Emoji switched off (category `emoji`) means no emoji answers either.
    heartflow: {
      ...heartflow,
      enable_auto_emoji: heartflow.enable_auto_emoji && effective.emoji.values.enabled !== false,
    },
    llm: AgentConfig.shape.llm.safeParse(effective.llm.values).data,
    memoryEnabled,
    promptMemories: memoryEnabled ? Number(memory.prompt_memories ?? 20) : 0,
  };
}

/**
 * `enableMemory`: the `options.enable_memory` of the message whose job answers (a coalesced batch
 * takes it from the job that holds the stream's lock; the others' options are not stored).
 */
async function answerPending(
  deps: HeartflowDeps,
  ctx: ChatStreamContext,
  options: Pick<Holding, 'enableMemory' | 'enableEmoji'>,
  store?: InboundMessage,
): Promise<FailedAnswer[]> {
  const { enableMemory } = options;
  const failures: FailedAnswer[] = [];
  const startedAt = deps.clock.now();
  const settings = chatSettings(await deps.config.effectiveConfig(ctx));
  const stream = await deps.db.withTenant(ctx, (db) =>
    loadStream(db, ctx, store, startedAt, settings.promptMemories),
  );
  if (stream.pending.length === 0) return failures;
  // The chat's effective `enable_auto_emoji` (and the `emoji` category) and the message's option.
  const config = {
    ...settings.heartflow,
    enable_auto_emoji: emojiEnabled({
      messageOption: options.enableEmoji,
      chatAutoEmoji: settings.heartflow.enable_auto_emoji,
    }),
  };
  let state = storedHeartflowState(stream.heartflow?.heartflow_state, startedAt);
  const account = stream.agentConfig.accounts.find((a) => a.platform === ctx.platform);
  const bot = {
    accountId: account?.account_id ?? ctx.agentId,
    nickname: account?.nickname ?? stream.agentName,
    aliases: account?.aliases ?? [],
  };
  const byId = new Map(stream.pending.map((m) => [m.message_id, m]));
  const plugins = await enabledPlugins(deps, ctx.tenantId);
  const batches = coalesce(
    stream.pending.map((m) => ({
      id: m.message_id,
      at: m.created_at.getTime(),
      mentioned: detectMention(m.content, bot, m.is_mentioned).mentioned,
    })),
    { maxBatch: deps.maxBatch ?? 50 },
  );

  for (const [index, batch] of batches.entries()) {
    const planned = batch.messages.map((b) => {
      const m = byId.get(b.id)!;
      const interest = interestOf(m.content, { mentioned: b.mentioned });
      state = updateOnMessage(state, { mentioned: b.mentioned, interest, at: b.at });
      return { id: m.message_id, text: m.content, mentioned: b.mentioned };
    });
    // Commands and `on_message` handlers answer the newest message before the planner runs.
    const newest = byId.get(planned[planned.length - 1]!.id)!;
    const intercepted = await intercept(deps, ctx, plugins, newest);
    const now = deps.clock.now();
    const decision =
      intercepted?.decision ??
      plan({
        state,
        config,
        messages: planned,
        now,
        rng: mulberry32(seedFromString(batch.targetMessageId)),
        chatType: stream.heartflow?.chat_type ?? 'group',
        utcOffsetMinutes: utcOffsetMinutes(config.timezone, now),
        pluginActions: actionNames(plugins),
      });
    state = applyDecision(state, decision, now);
    const target = intercepted ? newest : byId.get(batch.targetMessageId)!;
    // The first batch's history came with the claim; a later one (a backlog of more than one
    // batch) reads it again, to see the replies of the batches before it.
    const history =
      index === 0
        ? stream.history
        : await deps.db.withTenant(ctx, (db) => recentMessages(db, ctx.chatStreamId, HISTORY));
    const reply =
      intercepted?.reply ??
      (await actionReply(deps, ctx, plugins, decision, target)) ??
      (await afterLlm(
        deps,
        ctx,
        plugins,
        target,
        await produceReply(deps, ctx, { ...stream, settings }, history, decision, target),
      ));
    const covered = batch.messages.map((b) => byId.get(b.id)!);
    await storeBatch(deps, ctx, enableMemory && settings.memoryEnabled, stream.agentConfig, {
      decision,
      target,
      covered,
      mentionedIds: new Set(batch.messages.filter((b) => b.mentioned).map((b) => b.id)),
      reply,
      state,
      startedAt,
    });
    if (reply.text !== null) await afterSend(deps, ctx, plugins, target, reply.text);
    if (reply.fault && reply.error !== null) {
      failures.push({
        messageIds: covered.map((m) => m.message_id),
        error: reply.error,
        ...(reply.transient ? { transient: true } : {}),
      });
    }
  }
  return failures;
}

/**
 * The `emoji` action: one of the tenant's emoji for the planner's emotion (weighted, seeded by the
 * message so a retried pass picks the same), or the Unicode fallback; the use is recorded.
 */
async function emojiReply(
  deps: HeartflowDeps,
  ctx: ChatStreamContext,
  decision: HeartflowDecision,
  target: MessageRow,
): Promise<Reply> {
  const rng = mulberry32(seedFromString(`${target.message_id}:emoji`));
  const m = await deps.db.withTenant(ctx, async (db) => {
    const picked = await pickEmoji(db, ctx.platform, decision.emotion, rng);
    await recordEmojiUse(db, useOf(picked, ctx, decision.emotion, 'heartflow', `${target.message_id}.r`));
    return picked;
  });
  return { text: m.text, segments: m.segments, tokens: null, error: null, usage: [] };
}

async function produceReply(
  deps: HeartflowDeps,
  ctx: ChatStreamContext,
  stream: StreamContext & { settings: ChatSettings },
  history: MessageRow[],
  decision: HeartflowDecision,
  target: MessageRow,
): Promise<Reply> {
  if (decision.action === 'emoji') return emojiReply(deps, ctx, decision, target);
  if (decision.action !== 'reply') return { text: null, tokens: null, error: null, usage: [] };
  const persona = {
    name: stream.agentName,
    description: stream.agentConfig.persona,
    style: stream.agentConfig.reply_style,
  };
  const messages = buildReplyPrompt({
    persona,
    recentMessages: [...history].reverse().map((m) => ({
      id: m.message_id,
      sender:
        m.direction === 'out'
          ? stream.agentName
          : (m.sender_cardname ?? m.sender_nickname ?? m.sender_user_id ?? 'user'),
      content: m.content,
      isBot: m.direction === 'out',
      at: m.created_at.getTime(),
    })),
    memories: stream.memories,
    target: { id: target.message_id, sender: target.sender_nickname ?? 'user', content: target.content },
    config: stream.settings.heartflow,
  });
  try {
    const result = await deps.llm.complete({
      tenantId: ctx.tenantId,
      agentId: ctx.agentId,
      platform: ctx.platform,
      chatStreamId: ctx.chatStreamId,
      messageId: target.message_id,
      requestType: 'replyer',
      messages,
      settings: agentLlmSettings({ ...stream.agentConfig, llm: stream.settings.llm }, deps.secretBox),
      hints: { personaName: stream.agentName, memories: stream.memories.map((m) => m.content) },
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
        { message_id: target.message_id, quota: err.quota, limit: err.limit },
        'reply refused: tenant LLM quota exceeded',
      );
    } else {
      deps.logger.warn({ err, message_id: target.message_id }, 'reply generation failed');
    }
    return {
      text: null,
      tokens: null,
      error: (err as Error).message,
      fault: !(err instanceof LlmQuotaExceededError),
      transient: isRedisUnavailable(err),
      usage,
    };
  }
}
