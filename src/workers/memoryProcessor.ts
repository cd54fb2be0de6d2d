import type { Job } from 'bullmq';

import type { ConfigContext } from '../configuration/effectiveConfig';
import type { Database, TenantDb } from '../db/database';
import { getAgent } from '../db/repositories/agents';
import { type LlmUsageRecord, recordLlmUsage } from '../db/repositories/llmUsage';
import {
  advanceScannedCursor,
  advanceSummarizedCursor,
  countInboundBetween,
  cursorAtTime,
  evictMemoriesOverCap,
  getMemoryCursors,
  insertMemoriesIfAbsent,
  type MemoryInsert,
  messageCursor,
  type StreamCursor,
  type StreamMessage,
  streamMessagesBetween,
} from '../db/repositories/memoryExtraction';
import { AgentConfig, storedAgentConfig } from '../domain/agentConfig';
import type { Clock } from '../domain/clock';
import { type MemoryWorkerSettings, memoryWorkerSettingsOf } from '../domain/configuration/memory';
import type { EffectiveConfig } from '../domain/configuration/precedence';
import { type ChatStreamContext, createChatStreamContext } from '../domain/isolationContext';
import {
  buildExtractionPrompt,
  buildHeuristicSummary,
  buildSummaryPrompt,
  type ConversationLine,
  DEFAULT_SCOPE_POLICY,
  DEFAULT_SUMMARY_THRESHOLDS,
  extractHeuristicMemories,
  type ExtractionContext,
  type MemoryCandidate,
  parseExtraction,
  parseSummary,
  type ScopePolicy,
  type SourceMessage,
  summaryDue,
  summaryImportance,
  summaryMemoryId,
  type SummaryThresholds,
} from '../domain/memory';
import { agentLlmSettings } from '../llm/agentSettings';
import type { LlmClient } from '../llm/llmClient';
import { LlmQuotaExceededError } from '../llm/llmQuota';
import type { SecretBox } from '../llm/secretBox';
import type { LlmSettings } from '../llm/types';
import { LlmError } from '../llm/types';
import type { Logger } from '../logger';
import type { TenantQueues } from '../queues/tenantQueues';
import { assertJobTenant, enqueueStats, type MemoryJobData } from './jobs';

export interface MemoryDeps {
  db: Database;
  llm: LlmClient;
  logger: Logger;
  clock: Clock;
  /**
   * The chat's effective configuration (the pool's `EffectiveConfigReader`): its `memory` category
   * (`enabled`, `retention_days`, `summary_messages`) and the `llm` the extraction calls.
   */
  config: { effectiveConfig(ctx: ConfigContext): Promise<EffectiveConfig> };
  /**
   * When summaries are due. Default `DEFAULT_SUMMARY_THRESHOLDS` (20 messages / 6 h); a chat's
   * `memory.summary_messages` replaces `everyMessages`.
   */
  thresholds?: SummaryThresholds;
  /** Scope of extracted memories. Default `DEFAULT_SCOPE_POLICY`. */
  policy?: ScopePolicy;
  /** Inbound messages read per extraction round. Default 200. */
  batchSize?: number;
  /** Most summaries one job writes (a long backlog is caught up over several jobs). Default 5. */
  maxSummariesPerJob?: number;
  /** Seals agents' LLM API keys for the client. */
  secretBox?: SecretBox;
  /**
   * Where the usage statistics of the job's LLM calls are scheduled for recompute (as the
   * heartflow does for its calls); without it their buckets wait for another job of the minute.
   */
  queues?: TenantQueues;
}

export interface MemoryJobResult {
  /** Inbound messages looked at for facts and preferences. */
  scanned: number;
  /** Memories newly stored (facts, preferences and summaries). */
  stored: number;
  summaries: number;
  /** Memories of the agent removed over its `memory.max_long_term`. */
  evicted: number;
  extractor: 'heuristic' | 'llm';
  /** Why nothing was done, if so (`disabled`: the chat's `memory.enabled` is off). */
  skipped?: 'unknown_stream' | 'unknown_message' | 'disabled';
}

/** Bot messages kept with a summary's conversation at most. */
const MAX_SUMMARY_LINES = 400;

function sourceOf(m: StreamMessage): SourceMessage {
  return {
    messageId: m.message_id,
    content: m.content,
    senderUserId: m.sender_user_id,
    senderName: m.sender_cardname ?? m.sender_nickname,
    at: m.created_at.getTime(),
  };
}

function cursorOfMessage(m: StreamMessage): StreamCursor {
  return { at: m.cursor_at, messageId: m.message_id };
}

function insertOf(
  c: MemoryCandidate,
  ctx: ChatStreamContext,
  metadata: Record<string, unknown>,
  expiresAt: Date | undefined,
): MemoryInsert {
  return {
    expiresAt,
    memoryId: c.memoryId,
    agentId: ctx.agentId,
    scope: c.scope,
    platform: ctx.platform,
    chatStreamId: ctx.chatStreamId,
    title: c.title,
    content: c.content,
    memoryType: c.memoryType,
    importance: c.importance,
    tags: c.tags,
    metadata: {
      extractor: c.extractor,
      source_message_ids: c.sourceMessageIds,
      ...(c.senderUserId ? { sender_user_id: c.senderUserId } : {}),
      ...metadata,
    },
  };
}

interface JobSetup {
  chatType: 'group' | 'private';
  scanned: StreamCursor | null;
  summarized: StreamCursor | null;
  upTo: StreamCursor | undefined;
  config: AgentConfig;
  agentName: string;
  memory: MemoryWorkerSettings;
}

/**
 * One memory job of a chat stream: extracts facts and preferences from the inbound messages not
 * yet looked at (up to the job's point), then writes every summary that is due. Each round stores
 * its memories and moves its cursor in one transaction, and memory ids are derived from content
 * and source messages, so a re-run or a duplicate job stores nothing twice. The agent's LLM
 * extracts and summarises when it is a remote provider; the built-in `local` provider has no such
 * ability, so the heuristics do (and they stand in whenever the model fails or answers garbage).
 */
export async function processMemoryJob(deps: MemoryDeps, data: MemoryJobData): Promise<MemoryJobResult> {
  const ctx = createChatStreamContext({
    tenantId: data.tenantId,
    agentId: data.agentId,
    platform: data.platform,
    chatStreamId: data.chatStreamId,
  });
  const chatStreamId = data.chatStreamId;
  // The chat's own memory settings and LLM, at whichever scope they are set.
  const effective = await deps.config.effectiveConfig(ctx);
  const memory = memoryWorkerSettingsOf(effective.memory);
  if (!memory.enabled) {
    deps.logger.debug({ chat_stream_id: chatStreamId }, 'memory job skipped: memory is off for this chat');
    return { scanned: 0, stored: 0, summaries: 0, evicted: 0, extractor: 'heuristic', skipped: 'disabled' };
  }
  const setup = await deps.db.withTenant(ctx, async (db): Promise<JobSetup | undefined> => {
    const cursors = await getMemoryCursors(db, chatStreamId);
    if (!cursors) return undefined;
    const agent = await getAgent(db, data.agentId);
    const upTo =
      data.upToMessageId !== undefined
        ? await messageCursor(db, chatStreamId, data.upToMessageId)
        : await cursorAtTime(db, chatStreamId, new Date(data.upToTime ?? deps.clock.now()));
    return {
      ...cursors,
      upTo,
      config: {
        ...storedAgentConfig(agent?.config),
        llm: AgentConfig.shape.llm.safeParse(effective.llm.values).data,
      },
      agentName: agent?.name ?? 'MaiBot',
      memory,
    };
  });
  const settings = setup ? agentLlmSettings(setup.config, deps.secretBox) : undefined;
  const result: MemoryJobResult = {
    scanned: 0,
    stored: 0,
    summaries: 0,
    evicted: 0,
    extractor: settings && settings.provider !== 'local' ? 'llm' : 'heuristic',
  };
  if (!setup || !settings) return { ...result, skipped: 'unknown_stream' };
  if (!setup.upTo) return { ...result, skipped: data.upToMessageId ? 'unknown_message' : undefined };
  const run: RunContext = { deps, ctx, setup, settings, upTo: setup.upTo, result, usageMinutes: new Set() };
  try {
    await extractFacts(run);
    await writeSummaries(run);
  } finally {
    // The calls recorded so far (a failed round keeps the ones before it) are counted under
    // feature `memory` once their minute's and hour's buckets are recomputed.
    if (deps.queues && run.usageMinutes.size > 0) {
      const now = deps.clock.now();
      await Promise.all(
        [...run.usageMinutes].map((minute) => enqueueStats(deps.queues!, ctx.tenantId, minute, now)),
      );
    }
  }
  deps.logger.debug({ chat_stream_id: chatStreamId, ...result }, 'memory job finished');
  return result;
}

interface RunContext {
  deps: MemoryDeps;
  ctx: ChatStreamContext;
  setup: JobSetup;
  settings: LlmSettings;
  /** Minutes (ms) holding the `llm_usage` rows this job stored. */
  usageMinutes: Set<number>;
  upTo: StreamCursor;
  result: MemoryJobResult;
}

/** When a memory stored now expires (`memory.retention_days`), if ever. */
function expiryOf(run: RunContext): Date | undefined {
  const ms = run.setup.memory.retentionMs;
  return ms === undefined ? undefined : new Date(run.deps.clock.now() + ms);
}

function extractionContext(run: RunContext): ExtractionContext {
  return {
    agentId: run.ctx.agentId,
    platform: run.ctx.platform,
    chatStreamId: run.ctx.chatStreamId,
    chatType: run.setup.chatType,
    policy: run.deps.policy ?? DEFAULT_SCOPE_POLICY,
  };
}

async function extractFacts(run: RunContext): Promise<void> {
  const { deps, ctx } = run;
  const batchSize = Math.min(deps.batchSize ?? 200, run.setup.memory.maxShortTerm ?? Infinity);
  let after = run.setup.scanned;
  for (;;) {
    const batch = await deps.db.withTenant(ctx, (db) =>
      streamMessagesBetween(db, {
        chatStreamId: ctx.chatStreamId,
        after,
        upTo: run.upTo,
        inboundOnly: true,
        limit: batchSize,
      }),
    );
    const last = batch[batch.length - 1];
    if (!last) return;
    const sources = batch.map(sourceOf);
    const { candidates, usage } = await extractCandidates(run, sources);
    await deps.db.withTenant(ctx, async (db) => {
      for (const u of usage) noteUsage(run, await recordLlmUsage(db, u));
      const inserted = await insertMemoriesIfAbsent(
        db,
        candidates.map((c) => insertOf(c, ctx, {}, expiryOf(run))),
      );
      run.result.stored += inserted.length;
      if (inserted.length > 0) await evictOverCap(run, db);
      await advanceScannedCursor(db, ctx.chatStreamId, cursorOfMessage(last));
    });
    run.result.scanned += batch.length;
    after = cursorOfMessage(last);
    if (batch.length < batchSize) return;
  }
}

/** `memory.max_long_term`, in the unit of work that stored the new memories. */
async function evictOverCap(run: RunContext, db: TenantDb): Promise<void> {
  const cap = run.setup.memory.maxLongTerm;
  if (cap === undefined) return;
  run.result.evicted += (await evictMemoriesOverCap(db, run.ctx.agentId, cap)).length;
}

function noteUsage(run: RunContext, at: Date): void {
  const t = at.getTime();
  run.usageMinutes.add(t - (t % 60_000));
}

async function extractCandidates(
  run: RunContext,
  sources: SourceMessage[],
): Promise<{ candidates: MemoryCandidate[]; usage: LlmUsageRecord[] }> {
  const ectx = extractionContext(run);
  if (run.settings.provider === 'local')
    return { candidates: extractHeuristicMemories(sources, ectx), usage: [] };
  const last = sources[sources.length - 1]!;
  try {
    const answer = await run.deps.llm.complete({
      tenantId: run.ctx.tenantId,
      agentId: run.ctx.agentId,
      platform: run.ctx.platform,
      chatStreamId: run.ctx.chatStreamId,
      messageId: last.messageId,
      requestType: 'memory',
      messages: buildExtractionPrompt(sources),
      settings: run.settings,
    });
    const parsed = parseExtraction(answer.content, sources, ectx);
    if (parsed.ok) return { candidates: parsed.candidates, usage: answer.usage };
    run.deps.logger.warn(
      { chat_stream_id: run.ctx.chatStreamId, reason: parsed.reason },
      'memory extraction answer unusable; using heuristics',
    );
    return { candidates: extractHeuristicMemories(sources, ectx), usage: answer.usage };
  } catch (err) {
    if (err instanceof LlmQuotaExceededError) {
      return { candidates: extractHeuristicMemories(sources, ectx), usage: [] };
    }
    if (!(err instanceof LlmError)) throw err;
    run.deps.logger.warn(
      { chat_stream_id: run.ctx.chatStreamId, llm_error_kind: err.kind, err },
      'memory extraction call failed; using heuristics',
    );
    return { candidates: extractHeuristicMemories(sources, ectx), usage: err.usage };
  }
}

async function writeSummaries(run: RunContext): Promise<void> {
  const { deps, ctx } = run;
  const base = deps.thresholds ?? DEFAULT_SUMMARY_THRESHOLDS;
  const every = run.setup.memory.summaryMessages;
  const thresholds = every === undefined ? base : { ...base, everyMessages: every };
  let from = run.setup.summarized;
  for (let i = 0; i < (deps.maxSummariesPerJob ?? 5); i++) {
    const chunk = await deps.db.withTenant(ctx, async (db) => {
      const pending = await countInboundBetween(db, {
        chatStreamId: ctx.chatStreamId,
        after: from,
        upTo: run.upTo,
      });
      const due = summaryDue(
        { count: pending.count, oldestAt: pending.oldestAt?.getTime() ?? null },
        deps.clock.now(),
        thresholds,
      );
      if (due === 0) return undefined;
      const inbound = await streamMessagesBetween(db, {
        chatStreamId: ctx.chatStreamId,
        after: from,
        upTo: run.upTo,
        inboundOnly: true,
        limit: due,
      });
      const last = inbound[inbound.length - 1];
      if (!last) return undefined;
      // The bot's messages between the chunk's inbound ones belong to the conversation too.
      const lines = await streamMessagesBetween(db, {
        chatStreamId: ctx.chatStreamId,
        after: from,
        upTo: cursorOfMessage(last),
        inboundOnly: false,
        limit: due + MAX_SUMMARY_LINES,
      });
      return { inbound, lines, last };
    });
    if (!chunk) return;
    const first = chunk.inbound[0]!;
    const lines: ConversationLine[] = chunk.lines.map((m) => ({
      messageId: m.message_id,
      sender:
        m.direction === 'out'
          ? run.setup.agentName
          : (m.sender_cardname ?? m.sender_nickname ?? m.sender_user_id ?? 'user'),
      content: m.content,
      isBot: m.direction === 'out',
      at: m.created_at.getTime(),
    }));
    const { draft, usage, extractor } = await summarise(run, lines, chunk.last.message_id);
    const to = cursorOfMessage(chunk.last);
    const summary: MemoryCandidate = {
      memoryId: summaryMemoryId(
        { agentId: ctx.agentId, chatStreamId: ctx.chatStreamId },
        first.message_id,
        chunk.last.message_id,
        first.created_at.getTime(),
      ),
      memoryType: 'summary',
      scope: 'chat',
      title: draft.title,
      content: draft.content,
      importance: summaryImportance(chunk.inbound.length),
      tags: ['auto', 'summary', ...draft.keywords.slice(0, 3)],
      sourceMessageIds: [first.message_id, chunk.last.message_id],
      senderUserId: null,
      extractor,
      at: first.created_at.getTime(),
    };
    const won = await deps.db.withTenant(ctx, async (db) => {
      for (const u of usage) noteUsage(run, await recordLlmUsage(db, u));
      // Compare-and-set: a job that summarised these messages first wins; this one stores nothing.
      if (!(await advanceSummarizedCursor(db, ctx.chatStreamId, from, to))) return false;
      const inserted = await insertMemoriesIfAbsent(db, [
        insertOf(
          summary,
          ctx,
          { message_count: chunk.inbound.length, keywords: draft.keywords },
          expiryOf(run),
        ),
      ]);
      run.result.stored += inserted.length;
      run.result.summaries += inserted.length;
      if (inserted.length > 0) await evictOverCap(run, db);
      return true;
    });
    if (!won) return;
    from = to;
  }
}

async function summarise(
  run: RunContext,
  lines: ConversationLine[],
  lastMessageId: string,
): Promise<{
  draft: { title: string; content: string; keywords: string[] };
  usage: LlmUsageRecord[];
  extractor: 'heuristic' | 'llm';
}> {
  const heuristic = buildHeuristicSummary(lines);
  if (run.settings.provider === 'local') return { draft: heuristic, usage: [], extractor: 'heuristic' };
  try {
    const answer = await run.deps.llm.complete({
      tenantId: run.ctx.tenantId,
      agentId: run.ctx.agentId,
      platform: run.ctx.platform,
      chatStreamId: run.ctx.chatStreamId,
      messageId: lastMessageId,
      requestType: 'summary',
      messages: buildSummaryPrompt(lines),
      settings: run.settings,
    });
    const text = parseSummary(answer.content);
    if (text === undefined) return { draft: heuristic, usage: answer.usage, extractor: 'heuristic' };
    return { draft: { ...heuristic, content: text }, usage: answer.usage, extractor: 'llm' };
  } catch (err) {
    if (err instanceof LlmQuotaExceededError) return { draft: heuristic, usage: [], extractor: 'heuristic' };
    if (!(err instanceof LlmError)) throw err;
    run.deps.logger.warn(
      { chat_stream_id: run.ctx.chatStreamId, llm_error_kind: err.kind, err },
      'summary call failed; using the heuristic summary',
    );
    return { draft: heuristic, usage: err.usage, extractor: 'heuristic' };
  }
}

/** The Dispatcher's `process` for memory jobs. */
export function memoryJobRunner(deps: MemoryDeps) {
  return (job: Job, tenantId: string, log: Logger = deps.logger): Promise<MemoryJobResult> => {
    assertJobTenant(job, tenantId);
    return processMemoryJob({ ...deps, logger: log }, job.data as MemoryJobData);
  };
}
