import type { Redis } from 'ioredis';

import type { EffectiveConfigReader } from '../configuration/effectiveConfig';
import type { Database, TenantDb } from '../db/database';
import { recordEmojiUse } from '../db/repositories/emoji';
import {
  claimWithHistory,
  type InboundMessage,
  requeueFailed,
  storeInbound,
  type StreamHeartflow,
} from '../db/repositories/heartflow';
import { memoriesForPrompt } from '../db/repositories/memorySearch';
import { type MessageRow, recentMessages } from '../db/repositories/messages';
import { AgentConfig, type StoredAgentDeliverySettings } from '../domain/agentConfig';
import type { Clock } from '../domain/clock';
import { deliverySettingsOf } from '../domain/configuration/delivery';
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
import { AutoEmojiLimiter, type AutoEmojiLimits, autoEmojiLimitsOf } from '../emoji/autoEmojiLimit';
import { pickEmoji, useOf } from '../emoji/emojiSender';
import { agentLlmSettings } from '../llm/agentSettings';
import type { LlmClient } from '../llm/llmClient';
import { LlmQuotaExceededError } from '../llm/llmQuota';
import type { SecretBox } from '../llm/secretBox';
import type { LlmSettings } from '../llm/types';
import type { Logger } from '../logger';
import type { PluginRuntime } from '../plugins/pluginRuntime';
import type { HeartflowJobData, TenantQueues } from '../queues/tenantQueues';
import { isRedisUnavailable } from '../redis/availability';
import type { Keyspace } from '../redis/keys';
import { type Reply, storeBatch } from './batchOutcome';
import {
  actionReplyOf,
  activatedActions,
  afterLlm,
  afterSend,
  choosePluginAction,
  enabledPlugins,
  interceptCommands,
  type OfferedAction,
  onMessage,
  pluginActions,
  runAction,
} from './heartflowPlugins';
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
  else await deps.db.withTenantAtOnce(ctx, (db) => storeInbound(db, [inbound]));
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
 * Claims the pending messages and reads the agent and the stream's state (one statement), then the
 * memories for the prompt, in one unit of work (storing the job's own message first, when given).
 */
async function loadStream(
  db: TenantDb,
  ctx: ChatStreamContext,
  store: InboundMessage | undefined,
  now: number,
  memoryLimit: number,
): Promise<StreamContext> {
  // Written together, one round trip (the unit's connection keeps their order: the claim sees
  // the stored message); `Promise.all` so that the claim's rejection is handled if the store fails.
  const [, { pending, history, context }] = await Promise.all([
    store ? storeInbound(db, [store]) : undefined,
    claimWithHistory(db, ctx.agentId, ctx.chatStreamId, BATCH_LIMIT, HISTORY),
  ]);
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
  /** Where replies are pushed (webhook, OneBot HTTP API), at whatever scope they are set. */
  delivery: StoredAgentDeliverySettings;
  llm: AgentConfig['llm'];
  memoryEnabled: boolean;
  /** Memories of the agent put into a reply prompt. */
  promptMemories: number;
  /** `emoji.cooldown_seconds` and `emoji.max_per_hour` of the planner's automatic emoji. */
  emojiLimits: AutoEmojiLimits;
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
    delivery: deliverySettingsOf(effective.delivery),
    memoryEnabled,
    promptMemories: memoryEnabled ? Number(memory.prompt_memories ?? 20) : 0,
    emojiLimits: autoEmojiLimitsOf(effective.emoji.values),
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
  // The claim (and the store of a fresh message) need not wait for the disk: the job ends only
  // after its messages' outcomes are written by a synchronous commit, which flushes this one's WAL
  // with its own; should PostgreSQL crash before that, the job fails and its retry claims again.
  // One WAL flush per pass instead of two (bench:isolation's single-send flood: COMMITs waiting for
  // WALWrite/WALSync were the largest PostgreSQL wait while the quiet tenants' replies stalled).
  const stream = await deps.db.withTenant(
    ctx,
    (db) => loadStream(db, ctx, store, startedAt, settings.promptMemories),
    { synchronousCommit: false },
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

  const offered = pluginActions(plugins);
  const plannerSettings = agentLlmSettings({ ...stream.agentConfig, llm: settings.llm }, deps.secretBox);

  for (const [index, batch] of batches.entries()) {
    const messages = batch.messages.map((b) => byId.get(b.id)!);
    const mentionedOf = new Map(batch.messages.map((b) => [b.id, b.mentioned]));
    // Commands answer every message of the batch they match, each on its own, before the planner.
    const commands = await interceptCommands(deps, ctx, plugins, messages);
    for (const b of batch.messages) {
      const m = byId.get(b.id)!;
      const interest = interestOf(m.content, { mentioned: b.mentioned });
      state = updateOnMessage(state, { mentioned: b.mentioned, interest, at: b.at });
      const command = commands.get(b.id);
      if (!command) continue;
      state = applyDecision(state, command.decision, deps.clock.now());
      await storeBatch(deps, ctx, enableMemory && settings.memoryEnabled, settings.delivery, {
        decision: command.decision,
        target: m,
        covered: [m],
        mentionedIds: new Set(b.mentioned ? [b.id] : []),
        reply: command.reply,
        state,
        startedAt,
      });
      if (command.reply.text !== null) await afterSend(deps, ctx, plugins, m, command.reply.text);
    }
    const rest = messages.filter((m) => !commands.has(m.message_id));
    const newest = rest[rest.length - 1];
    if (newest === undefined) continue;
    const planned = rest.map((m) => ({
      id: m.message_id,
      text: m.content,
      mentioned: mentionedOf.get(m.message_id) ?? false,
    }));
    // The batch's target without the commands answered: its last mention, else its last message.
    const restTarget = [...planned].reverse().find((p) => p.mentioned)?.id ?? newest.message_id;
    // An `on_message` handler may answer the newest message before the planner runs.
    const heard = await onMessage(deps, ctx, plugins, newest);
    const now = deps.clock.now();
    const planWith = (cfg: HeartflowConfig) =>
      plan({
        state,
        config: cfg,
        messages: planned,
        now,
        rng: mulberry32(seedFromString(restTarget)),
        chatType: stream.heartflow?.chat_type ?? 'group',
        utcOffsetMinutes: utcOffsetMinutes(cfg.timezone, now),
        pluginActions: offered.map((o) => o.spec.name),
      });
    let decision = heard?.decision ?? planWith(config);
    const target = heard
      ? newest
      : byId.get(decision.reason === 'plugin_command' ? decision.targetMessageId! : restTarget)!;
    // Replies already sent in a row before this one (the reply prompt mentions them).
    const continuousReplies = state.continuousReplies;
    // The first batch's history came with the claim; a later one (a backlog of more than one
    // batch) reads it again, to see the replies of the batches before it.
    const history =
      index === 0
        ? stream.history
        : await deps.db.withTenantAtOnce(ctx, (db) => recentMessages(db, ctx.chatStreamId, HISTORY));
    const acted = heard
      ? undefined
      : await pluginAction(deps, ctx, {
          offered,
          decision,
          planned,
          rest,
          history,
          target,
          botName: stream.agentName,
          settings: plannerSettings,
        });
    if (acted) decision = acted.decision;
    let actionData = acted?.actionData;
    if (!heard && !acted?.reply && decision.action === 'emoji') {
      // An automatic emoji within `emoji.cooldown_seconds` of the chat's last one, or over its
      // `emoji.max_per_hour`: the batch is planned as if emoji were off (the same draw, so the
      // rule planner's text reply), and the refusal is kept in the action record.
      const refused = await new AutoEmojiLimiter(deps.redis, deps.keys).take(
        { tenantId: ctx.tenantId, chatStreamId: ctx.chatStreamId, messageId: target.message_id, now },
        settings.emojiLimits,
      );
      if (refused) {
        decision = planWith({ ...config, enable_auto_emoji: false });
        actionData = { ...actionData, emoji_refused: refused };
      }
    }
    state = applyDecision(state, decision, now);
    let reply =
      heard?.reply ??
      acted?.reply ??
      (await afterLlm(
        deps,
        ctx,
        plugins,
        target,
        await produceReply(deps, ctx, { ...stream, settings, continuousReplies }, history, decision, target),
      ));
    if (acted?.usage.length) {
      // The planner call's tokens count toward the message's `tokens_used` like the reply's.
      const planner = acted.usage.reduce((n, u) => n + u.promptTokens + u.completionTokens, 0);
      reply = {
        ...reply,
        usage: [...acted.usage, ...reply.usage],
        tokens: planner > 0 || reply.tokens !== null ? (reply.tokens ?? 0) + planner : null,
      };
    }
    await storeBatch(deps, ctx, enableMemory && settings.memoryEnabled, settings.delivery, {
      decision,
      target,
      covered: rest,
      mentionedIds: new Set(planned.filter((p) => p.mentioned).map((p) => p.id)),
      reply,
      state,
      startedAt,
      ...(actionData ? { actionData } : {}),
    });
    if (reply.text !== null) await afterSend(deps, ctx, plugins, target, reply.text);
    if (reply.fault && reply.error !== null) {
      failures.push({
        messageIds: rest.map((m) => m.message_id),
        error: reply.error,
        ...(reply.transient ? { transient: true } : {}),
      });
    }
  }
  return failures;
}

/** What a plugin action changed of a batch's answer. */
interface ActedAction {
  decision: HeartflowDecision;
  /** The action's answer; undefined: answered as the rule planner decided (the action failed or none was chosen). */
  reply: Reply | undefined;
  /** The planner call's usage, stored with the batch. */
  usage: Reply['usage'];
  /** Recorded in the action record's `action_data`. */
  actionData: Record<string, unknown> | undefined;
}

/**
 * Plugin actions for a batch the rule planner answers: `/name` runs one directly; otherwise, when
 * the rule planner replies (text or emoji) and some action is activated, the planner LLM chooses
 * between a plain reply and those actions (not with the built-in `local` provider, which cannot
 * plan). A chosen action runs in the sandbox bound to the message's context; one that fails or
 * overruns its budget leaves the message to the normal reply.
 */
async function pluginAction(
  deps: HeartflowDeps,
  ctx: ChatStreamContext,
  input: {
    offered: OfferedAction[];
    decision: HeartflowDecision;
    planned: { id: string; text: string }[];
    rest: MessageRow[];
    history: MessageRow[];
    target: MessageRow;
    botName: string;
    settings: LlmSettings;
  },
): Promise<ActedAction | undefined> {
  const { decision, target } = input;
  let chosen: { offered: OfferedAction; parameters: Record<string, unknown>; reason: string } | undefined;
  let usage: Reply['usage'] = [];
  let actionData: Record<string, unknown> | undefined;
  if (decision.reason === 'plugin_command') {
    const offered = input.offered.find((o) => o.spec.name === decision.action);
    if (offered) chosen = { offered, parameters: {}, reason: 'plugin_command' };
  } else if (
    (decision.action === 'reply' || decision.action === 'emoji') &&
    input.settings.provider !== 'local'
  ) {
    const active = activatedActions(
      input.offered,
      input.planned.map((p) => p.text),
      target.message_id,
    );
    if (active.length === 0) return undefined;
    const restIds = new Set(input.rest.map((m) => m.message_id));
    const chat = [...input.history]
      .reverse()
      .filter((m) => !restIds.has(m.message_id))
      .concat(input.rest)
      .map((m) => ({
        sender: m.sender_cardname ?? m.sender_nickname ?? m.sender_user_id ?? 'user',
        content: m.content,
        isBot: m.direction === 'out',
      }));
    const planned = await choosePluginAction(
      deps,
      ctx,
      { actions: active, chat, botName: input.botName, target },
      input.settings,
    );
    usage = planned.usage;
    actionData = {
      planner: {
        offered: active.map((a) => a.spec.name),
        choice: planned.choice?.action ?? null,
        reason: planned.choice?.reason ?? null,
      },
    };
    const offered = active.find((a) => a.spec.name === planned.choice?.action);
    if (offered && planned.choice)
      chosen = { offered, parameters: planned.choice.parameters, reason: 'planner_llm' };
  }
  if (!chosen)
    return usage.length > 0 || actionData ? { decision, reply: undefined, usage, actionData } : undefined;
  const run = await runAction(deps, ctx, chosen.offered, chosen.parameters, target);
  if (!run || run.outcome.error !== null) {
    // The message is answered as if the action were not there (an explicit `/name` by a reply).
    return {
      decision: decision.reason === 'plugin_command' ? { ...decision, action: 'reply' } : decision,
      reply: undefined,
      usage,
      actionData: {
        ...actionData,
        plugin_error: { action: run?.action ?? chosen.offered.spec.name, ...run?.outcome.error },
      },
    };
  }
  return {
    decision: {
      ...decision,
      action: run.action,
      reason: chosen.reason === 'planner_llm' ? 'planner_llm' : 'plugin_command',
      replyProbability: 1,
    },
    reply: actionReplyOf(run),
    usage,
    actionData: { ...actionData, plugin: { parameters: chosen.parameters, data: run.outcome.data ?? null } },
  };
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
  stream: StreamContext & { settings: ChatSettings; continuousReplies: number },
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
    continuousReplies: stream.continuousReplies,
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
