/**
 * MaiBot 0.10–0.11 (peewee): `chat_streams`, `messages`, `memory_chest`, `llm_usage`, `emoji`, … as
 * in `src/common/database/database_model.py` at tag 0.11.6-beta (and 0.11.0-beta for
 * `memory_chest`, `memory_conflicts`, `group_info`, which 0.11.6 no longer has). Times are Unix
 * seconds except `llm_usage.timestamp` and `online_time` (naive DATETIME text).
 */
import type { SourceRow, SqlValue } from '../sqliteSource';
import type { TargetRow } from '../targets';
import {
  bool,
  compact,
  fromDateTime,
  fromUnixSeconds,
  importKey,
  int,
  json,
  jsonArray,
  jsonObject,
  type MapContext,
  type MapResult,
  num,
  one,
  platformOf,
  skip,
  text,
} from './common';
import type { Generation } from './generation';
import { chatStreamRow, emojiPackRow, llmStatus, personKey, recreatedChat, streamFor } from './shared';

type Ctx = Pick<MapContext, 'agentId' | 'defaultPlatform'>;

export function mapChatStreamV0(row: Readonly<Record<string, SqlValue>>, ctx: Ctx): TargetRow | null {
  const maibotId = text(row.stream_id);
  if (!maibotId) return null;
  return chatStreamRow(ctx.agentId, {
    maibotId,
    platform: platformOf(row.platform, ctx.defaultPlatform),
    groupId: text(row.group_id),
    groupName: text(row.group_name),
    userId: text(row.user_id),
    created: fromUnixSeconds(row.create_time),
    lastActive: fromUnixSeconds(row.last_active_time),
    maibot: {
      stream_id: maibotId,
      user_platform: text(row.user_platform),
      user_nickname: text(row.user_nickname),
      user_cardname: text(row.user_cardname),
      group_platform: text(row.group_platform),
    },
  });
}

/** A chat that rows refer to but `chat_streams` lacks, rebuilt from a message's `chat_info_*`. */
export function orphanChatV0(
  chatId: string,
  sample: Readonly<Record<string, SqlValue>> | undefined,
  ctx: Ctx,
): TargetRow {
  const s = sample ?? {};
  const row = mapChatStreamV0(
    {
      stream_id: chatId,
      platform: s.chat_info_platform ?? null,
      group_id: s.chat_info_group_id ?? null,
      group_name: s.chat_info_group_name ?? null,
      group_platform: s.chat_info_group_platform ?? null,
      user_id: s.chat_info_user_id ?? null,
      user_platform: s.chat_info_user_platform ?? null,
      user_nickname: s.chat_info_user_nickname ?? null,
      user_cardname: s.chat_info_user_cardname ?? null,
      create_time: s.chat_info_create_time ?? null,
      last_active_time: s.chat_info_last_active_time ?? null,
    },
    ctx,
  )!;
  return recreatedChat(row);
}

export function mapMessageV0(row: SourceRow, ctx: MapContext): MapResult {
  const stream = streamFor(text(row.chat_id), ctx);
  if (!stream) return skip('message without chat_id');
  const createdAt = fromUnixSeconds(row.time);
  if (!createdAt) return skip('message without a valid time');
  const sender = text(row.user_id);
  const fromBot = sender !== null && ctx.botUserIds.has(sender);
  return one('messages', importKey(ctx.agentId, 'messages', row.rowid), {
    message_id: importKey(ctx.agentId, 'messages', row.rowid),
    agent_id: ctx.agentId,
    platform: stream.platform,
    chat_stream_id: stream.chatStreamId,
    direction: fromBot ? 'out' : 'in',
    client_message_id: text(row.message_id),
    reply_to: text(row.reply_to),
    sender_user_id: sender,
    sender_nickname: text(row.user_nickname),
    sender_cardname: text(row.user_cardname),
    content: text(row.processed_plain_text) ?? text(row.display_message) ?? '',
    segments: [],
    is_mentioned: bool(row.is_mentioned) || bool(row.is_at),
    interest: num(row.interest_value),
    // Imported history is settled: inbound rows must never look queued to the heartflow worker.
    status: fromBot ? 'sent' : 'no_reply',
    created_at: createdAt,
    processed_at: createdAt,
  });
}

function mapMemoryChest(row: SourceRow, ctx: MapContext): MapResult {
  const chatId = text(row.chat_id);
  const stream = streamFor(chatId, ctx);
  const key = importKey(ctx.agentId, 'memory_chest', row.rowid);
  return one('memory_chest', key, {
    memory_id: key,
    agent_id: ctx.agentId,
    platform: stream?.platform ?? null,
    chat_stream_id: stream?.chatStreamId ?? null,
    scope: stream ? 'chat' : 'agent',
    title: text(row.title),
    content: text(row.content) ?? '',
    memory_type: 'fact',
    tags: [],
    metadata: { maibot: compact({ table: 'memory_chest', id: row.rowid, chat_id: chatId }) },
    locked: bool(row.locked),
    access_count: 0,
    created_at: undefined,
    updated_at: undefined,
  });
}

/** 0.11.6 `chat_history`: summarised conversation segments, kept as `summary` memories of the chat. */
export function mapChatHistory(row: SourceRow, ctx: MapContext, table = 'chat_history'): MapResult {
  const chatId = text(row.chat_id ?? row.session_id);
  const stream = streamFor(chatId, ctx);
  const key = importKey(ctx.agentId, table, row.rowid);
  const start = fromUnixSeconds(row.start_time) ?? fromDateTime(row.start_timestamp);
  const end = fromUnixSeconds(row.end_time) ?? fromDateTime(row.end_timestamp);
  const keywords = jsonArray(row.keywords).map(String);
  return one('memory_chest', key, {
    memory_id: key,
    agent_id: ctx.agentId,
    platform: stream?.platform ?? null,
    chat_stream_id: stream?.chatStreamId ?? null,
    scope: stream ? 'chat' : 'agent',
    title: text(row.theme),
    content: text(row.summary) ?? '',
    memory_type: 'summary',
    tags: keywords,
    metadata: {
      maibot: compact({
        table,
        id: row.rowid,
        chat_id: chatId,
        participants: json(row.participants),
        original_text: text(row.original_text ?? row.original_messages),
        key_point: json(row.key_point),
        start_time: start?.toISOString(),
        end_time: end?.toISOString(),
        forget_times: int(row.forget_times ?? row.query_forget_count),
      }),
    },
    locked: false,
    access_count: int(row.count ?? row.query_count) ?? 0,
    created_at: start ?? undefined,
    updated_at: end ?? start ?? undefined,
  });
}

function mapLlmUsage(row: SourceRow, ctx: MapContext): MapResult {
  const key = importKey(ctx.agentId, 'llm_usage', row.rowid);
  const status = llmStatus(text(row.status));
  const timeCost = num(row.time_cost);
  return one('llm_usage', key, {
    import_ref: key,
    agent_id: ctx.agentId,
    platform: null,
    chat_stream_id: null,
    provider: text(row.model_api_provider) ?? 'unknown',
    model_name: text(row.model_name) ?? 'unknown',
    request_type: text(row.request_type) ?? 'unknown',
    prompt_tokens: int(row.prompt_tokens) ?? 0,
    completion_tokens: int(row.completion_tokens) ?? 0,
    total_tokens: int(row.total_tokens) ?? 0,
    cost: (num(row.cost) ?? 0).toFixed(6),
    latency_ms: timeCost === null ? null : Math.round(timeCost * 1000),
    status: status.status,
    error: status.error,
    created_at: fromDateTime(row.timestamp) ?? undefined,
  });
}

function mapEmoji(row: SourceRow, ctx: MapContext): MapResult {
  const hash = text(row.emoji_hash);
  if (!hash) return skip('emoji without a hash');
  const pack = emojiPackRow(ctx.agentId);
  const key = importKey(ctx.agentId, 'emoji', row.rowid);
  const emotion = text(row.emotion) ?? '';
  const tags = emotion
    .split(/[,，]/)
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
  if (!bool(row.is_registered)) tags.push('maibot:unregistered');
  if (bool(row.is_banned)) tags.push('maibot:banned');
  const path = text(row.full_path);
  if (path) tags.push(`maibot:path:${path}`);
  return {
    rows: {
      emoji_packs: [pack],
      emojis: [
        {
          key,
          values: {
            emoji_id: key,
            pack_id: pack.values.pack_id,
            image_hash: hash,
            image_data: null,
            format: text(row.format),
            description: text(row.description),
            emotion,
            tags,
            usage_count: int(row.usage_count) ?? 0,
            last_used_at: fromUnixSeconds(row.last_used_time),
            created_at: fromUnixSeconds(row.record_time) ?? undefined,
          },
        },
      ],
    },
  };
}

function mapActionRecord(row: SourceRow, ctx: MapContext): MapResult {
  const stream = streamFor(text(row.chat_id), ctx);
  if (!stream) return skip('action without chat_id');
  const key = importKey(ctx.agentId, 'action_records', row.rowid);
  const data = jsonObject(row.action_data);
  return one('action_records', key, {
    action_id: key,
    agent_id: ctx.agentId,
    platform: stream.platform,
    chat_stream_id: stream.chatStreamId,
    action_name: text(row.action_name) ?? 'unknown',
    action_data: {
      ...data,
      maibot: compact({
        action_id: text(row.action_id),
        prompt_display: text(row.action_prompt_display),
        build_into_prompt: bool(row.action_build_into_prompt),
      }),
    },
    reasoning: text(row.action_reasoning),
    done: bool(row.action_done),
    created_at: fromUnixSeconds(row.time) ?? undefined,
  });
}

function mapExpression(row: SourceRow, ctx: MapContext): MapResult {
  const stream = streamFor(text(row.chat_id), ctx);
  const key = importKey(ctx.agentId, 'expression', row.rowid);
  const lastActive = fromUnixSeconds(row.last_active_time);
  return one('expression', key, {
    expression_id: key,
    agent_id: ctx.agentId,
    platform: stream?.platform ?? null,
    chat_stream_id: stream?.chatStreamId ?? null,
    situation: text(row.situation) ?? '',
    style: text(row.style) ?? '',
    context: text(row.context) ?? text(row.up_content),
    count: num(row.count) ?? 1,
    last_active_at: lastActive ?? undefined,
    created_at: fromUnixSeconds(row.create_date) ?? lastActive ?? undefined,
  });
}

function mapJargon(row: SourceRow, ctx: MapContext): MapResult {
  const global = bool(row.is_global);
  const stream = global ? undefined : streamFor(text(row.chat_id), ctx);
  const key = importKey(ctx.agentId, 'jargon', row.rowid);
  return one('jargon', key, {
    jargon_id: key,
    agent_id: ctx.agentId,
    platform: stream?.platform ?? null,
    chat_stream_id: stream?.chatStreamId ?? null,
    term: text(row.content) ?? '',
    meaning: text(row.meaning),
    count: int(row.count) ?? 0,
    is_global: global,
    created_at: undefined,
    updated_at: undefined,
  });
}

export function mapPersonInfoV0(row: SourceRow, ctx: MapContext): MapResult {
  const personId = text(row.person_id);
  const userId = text(row.user_id);
  if (!personId || !userId) return skip('person without person_id or user_id');
  const key = personKey(ctx.agentId, personId);
  return one('person_info', key, {
    person_id: key,
    agent_id: ctx.agentId,
    platform: platformOf(row.platform, ctx.defaultPlatform),
    user_id: userId,
    person_name: text(row.person_name),
    name_reason: text(row.name_reason),
    nickname: text(row.nickname),
    is_known: bool(row.is_known),
    memory_points: jsonArray(row.memory_points),
    know_times: int(row.know_times) ?? 0,
    know_since: fromUnixSeconds(row.know_since),
    last_know: fromUnixSeconds(row.last_know),
  });
}

function mapGroupInfo(row: SourceRow, ctx: MapContext): MapResult {
  const groupId = text(row.group_id);
  if (!groupId) return skip('group without group_id');
  const platform = platformOf(row.platform, ctx.defaultPlatform);
  return one('group_info', `${ctx.agentId}/${platform}/${groupId}`, {
    agent_id: ctx.agentId,
    platform,
    group_id: groupId,
    group_name: text(row.group_name),
    group_impression: text(row.group_impression),
    member_list: jsonArray(row.member_list),
    topic: text(row.topic),
    member_count: int(row.member_count) ?? 0,
    created_at: fromUnixSeconds(row.create_time) ?? undefined,
    last_active_at: fromUnixSeconds(row.last_active),
  });
}

export const V0: Generation = {
  name: '0.x',
  chats: { table: 'chat_streams', idColumn: 'stream_id' },
  mapChat: mapChatStreamV0,
  orphanChat: orphanChatV0,
  chatReferences: [
    { table: 'messages', column: 'chat_id' },
    { table: 'action_records', column: 'chat_id' },
    { table: 'expression', column: 'chat_id' },
    { table: 'jargon', column: 'chat_id' },
    { table: 'memory_chest', column: 'chat_id' },
    { table: 'chat_history', column: 'chat_id' },
  ],
  tables: [
    { source: 'messages', targets: ['messages'], map: mapMessageV0 },
    { source: 'memory_chest', targets: ['memory_chest'], map: mapMemoryChest },
    { source: 'chat_history', targets: ['memory_chest'], map: (r, c) => mapChatHistory(r, c) },
    { source: 'llm_usage', targets: ['llm_usage'], map: mapLlmUsage },
    { source: 'emoji', targets: ['emoji_packs', 'emojis'], map: mapEmoji },
    { source: 'action_records', targets: ['action_records'], map: mapActionRecord },
    { source: 'expression', targets: ['expression'], map: mapExpression },
    { source: 'jargon', targets: ['jargon'], map: mapJargon },
    { source: 'person_info', targets: ['person_info'], map: mapPersonInfoV0 },
    { source: 'group_info', targets: ['group_info'], map: mapGroupInfo },
  ],
  noHome: {
    images: 'image metadata (files on disk; no image table here)',
    image_descriptions: 'VLM description cache',
    emoji_description_cache: 'VLM description cache',
    online_time: 'bot uptime log',
    memory_conflicts: 'memory questions awaiting answers',
    thinking_back: 'question-answer cache',
  },
};
