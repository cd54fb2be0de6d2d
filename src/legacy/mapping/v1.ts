/**
 * MaiBot 1.x (SQLModel): `chat_sessions`, `mai_messages`, `expressions`, `jargons`, … as in
 * `src/common/database/database_model.py` at tag 1.2.1 and the frozen v2 schema its migrations start
 * from (`migrations/frozen_v2_schema.py`). Times are naive DATETIME text (local time of the MaiBot
 * host); columns added after v2 are read when present.
 */
import type { SourceRow, SqlValue } from '../sqliteSource';
import type { TargetRow } from '../targets';
import {
  bool,
  compact,
  fromDateTime,
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
import { chatStreamRow, emojiPackRow, personKey, recreatedChat, streamFor } from './shared';
import { mapChatHistory } from './v0';

type Ctx = Pick<MapContext, 'agentId' | 'defaultPlatform'>;

export function mapChatSessionV1(row: Readonly<Record<string, SqlValue>>, ctx: Ctx): TargetRow | null {
  const maibotId = text(row.session_id);
  if (!maibotId) return null;
  return chatStreamRow(ctx.agentId, {
    maibotId,
    platform: platformOf(row.platform, ctx.defaultPlatform),
    groupId: text(row.group_id),
    groupName: text(row.group_name),
    userId: text(row.user_id),
    created: fromDateTime(row.created_timestamp),
    lastActive: fromDateTime(row.last_active_timestamp),
    maibot: {
      session_id: maibotId,
      user_nickname: text(row.user_nickname),
      user_cardname: text(row.user_cardname),
      account_id: text(row.account_id),
      scope: text(row.scope),
    },
  });
}

function orphanChatV1(
  chatId: string,
  sample: Readonly<Record<string, SqlValue>> | undefined,
  ctx: Ctx,
): TargetRow {
  const s = sample ?? {};
  const groupId = s.group_id ?? null;
  const row = mapChatSessionV1(
    {
      session_id: chatId,
      platform: s.platform ?? null,
      group_id: groupId,
      group_name: s.group_name ?? null,
      user_id: groupId ? null : (s.user_id ?? null),
      user_nickname: groupId ? null : (s.user_nickname ?? null),
      created_timestamp: s.timestamp ?? null,
      last_active_timestamp: s.timestamp ?? null,
    },
    ctx,
  )!;
  return recreatedChat(row);
}

export function mapMessageV1(row: SourceRow, ctx: MapContext): MapResult {
  const stream = streamFor(text(row.session_id), ctx);
  if (!stream) return skip('message without session_id');
  const createdAt = fromDateTime(row.timestamp);
  if (!createdAt) return skip('message without a valid timestamp');
  const sender = text(row.user_id);
  const fromBot = sender !== null && ctx.botUserIds.has(sender);
  const key = importKey(ctx.agentId, 'mai_messages', row.rowid);
  // raw_content is MaiBot's msgpack of the message segments; kept byte for byte (base64) so that
  // nothing is lost, since its segment types are MaiBot's own.
  const raw = row.raw_content;
  const segments =
    raw instanceof Uint8Array && raw.length > 0
      ? [{ type: 'maibot_raw_msgpack', data: Buffer.from(raw).toString('base64') }]
      : [];
  return one('messages', key, {
    message_id: key,
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
    segments,
    is_mentioned: bool(row.is_mentioned) || bool(row.is_at),
    interest: null,
    status: fromBot ? 'sent' : 'no_reply',
    created_at: createdAt,
    processed_at: createdAt,
  });
}

function mapLlmUsageV1(row: SourceRow, ctx: MapContext): MapResult {
  const key = importKey(ctx.agentId, 'llm_usage', row.rowid);
  const stream = streamFor(text(row.session_id), ctx);
  const timeCost = num(row.time_cost);
  return one('llm_usage', key, {
    import_ref: key,
    agent_id: ctx.agentId,
    platform: stream?.platform ?? null,
    chat_stream_id: stream?.chatStreamId ?? null,
    provider: text(row.model_api_provider_name) ?? 'unknown',
    model_name: text(row.model_name) ?? 'unknown',
    request_type: text(row.request_type) ?? text(row.task_name) ?? 'unknown',
    prompt_tokens: int(row.prompt_tokens) ?? 0,
    completion_tokens: int(row.completion_tokens) ?? 0,
    total_tokens: int(row.total_tokens) ?? 0,
    cost: (num(row.cost) ?? 0).toFixed(6),
    latency_ms: timeCost === null ? null : Math.round(timeCost * 1000),
    // 1.x records only calls that answered.
    status: 'success',
    error: null,
    created_at: fromDateTime(row.timestamp) ?? undefined,
  });
}

function mapImageV1(row: SourceRow, ctx: MapContext): MapResult {
  // SQLAlchemy stores the enum's name ('EMOJI'); older rows may hold its value ('emoji').
  const type = (text(row.image_type) ?? 'emoji').toLowerCase();
  if (type !== 'emoji') return skip('picture (not an emoji): no image table here');
  const hash = text(row.image_hash);
  if (!hash) return skip('emoji without a hash');
  const pack = emojiPackRow(ctx.agentId);
  const key = importKey(ctx.agentId, 'images', row.rowid);
  const emotion = text(row.emotion) ?? '';
  const tags = emotion
    .split(/[,，]/)
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
  if (!bool(row.is_registered)) tags.push('maibot:unregistered');
  if (bool(row.is_banned)) tags.push('maibot:banned');
  if (bool(row.no_file_flag)) tags.push('maibot:no_file');
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
            format: path?.split('.').pop()?.toLowerCase() ?? null,
            description: text(row.description),
            emotion,
            tags,
            usage_count: int(row.query_count) ?? 0,
            last_used_at: fromDateTime(row.last_used_time),
            created_at: fromDateTime(row.record_time) ?? undefined,
          },
        },
      ],
    },
  };
}

/** `action_records` and `tool_records` (a tool call is an action here, named `tool:<name>`). */
function mapRecordV1(table: 'action_records' | 'tool_records') {
  return (row: SourceRow, ctx: MapContext): MapResult => {
    const stream = streamFor(text(row.session_id), ctx);
    if (!stream) return skip('record without session_id');
    const key = importKey(ctx.agentId, table, row.rowid);
    const isTool = table === 'tool_records';
    return one('action_records', key, {
      action_id: key,
      agent_id: ctx.agentId,
      platform: stream.platform,
      chat_stream_id: stream.chatStreamId,
      action_name: isTool ? `tool:${text(row.tool_name) ?? 'unknown'}` : (text(row.action_name) ?? 'unknown'),
      action_data: {
        ...jsonObject(isTool ? row.tool_data : row.action_data),
        maibot: compact({
          table,
          id: text(isTool ? row.tool_id : row.action_id),
          builtin_prompt: text(isTool ? row.tool_builtin_prompt : row.action_builtin_prompt),
          display_prompt: text(isTool ? row.tool_display_prompt : row.action_display_prompt),
        }),
      },
      reasoning: text(isTool ? row.tool_reasoning : row.action_reasoning),
      done: true,
      created_at: fromDateTime(row.timestamp) ?? undefined,
    });
  };
}

function mapExpressionV1(row: SourceRow, ctx: MapContext): MapResult {
  const stream = streamFor(text(row.session_id), ctx);
  const key = importKey(ctx.agentId, 'expressions', row.rowid);
  const lastActive = fromDateTime(row.last_active_time);
  const contents = jsonArray(row.content_list);
  return one('expression', key, {
    expression_id: key,
    agent_id: ctx.agentId,
    platform: stream?.platform ?? null,
    chat_stream_id: stream?.chatStreamId ?? null,
    situation: text(row.situation) ?? '',
    style: text(row.style) ?? '',
    context: contents.length > 0 ? JSON.stringify(contents) : null,
    count: num(row.count) ?? 0,
    last_active_at: lastActive ?? undefined,
    created_at: fromDateTime(row.create_time) ?? lastActive ?? undefined,
  });
}

/** A jargon belongs to one chat when `session_id_dict` names exactly one and it is not global. */
function mapJargonV1(row: SourceRow, ctx: MapContext): MapResult {
  const global = bool(row.is_global);
  const sessions = json(row.session_id_dict);
  const ids =
    sessions !== null && typeof sessions === 'object' && !Array.isArray(sessions)
      ? Object.keys(sessions)
      : [];
  const stream = !global && ids.length === 1 ? streamFor(ids[0]!, ctx) : undefined;
  const key = importKey(ctx.agentId, 'jargons', row.rowid);
  return one('jargon', key, {
    jargon_id: key,
    agent_id: ctx.agentId,
    platform: stream?.platform ?? null,
    chat_stream_id: stream?.chatStreamId ?? null,
    term: text(row.content) ?? '',
    meaning: text(row.meaning),
    count: int(row.count) ?? 0,
    is_global: global,
    created_at: fromDateTime(row.created_timestamp) ?? undefined,
    updated_at: fromDateTime(row.updated_timestamp) ?? undefined,
  });
}

function mapPersonInfoV1(row: SourceRow, ctx: MapContext): MapResult {
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
    nickname: text(row.user_nickname),
    is_known: bool(row.is_known),
    memory_points: jsonArray(row.memory_points),
    know_times: int(row.know_counts) ?? 0,
    know_since: fromDateTime(row.first_known_time),
    last_know: fromDateTime(row.last_known_time),
  });
}

export const V1: Generation = {
  name: '1.x',
  chats: { table: 'chat_sessions', idColumn: 'session_id' },
  mapChat: mapChatSessionV1,
  orphanChat: orphanChatV1,
  chatReferences: [
    { table: 'mai_messages', column: 'session_id' },
    { table: 'action_records', column: 'session_id' },
    { table: 'tool_records', column: 'session_id' },
    { table: 'expressions', column: 'session_id' },
    { table: 'chat_history', column: 'session_id' },
  ],
  tables: [
    { source: 'mai_messages', targets: ['messages'], map: mapMessageV1 },
    { source: 'chat_history', targets: ['memory_chest'], map: (r, c) => mapChatHistory(r, c) },
    { source: 'llm_usage', targets: ['llm_usage'], map: mapLlmUsageV1 },
    { source: 'images', targets: ['emoji_packs', 'emojis'], map: mapImageV1 },
    { source: 'action_records', targets: ['action_records'], map: mapRecordV1('action_records') },
    { source: 'tool_records', targets: ['action_records'], map: mapRecordV1('tool_records') },
    { source: 'expressions', targets: ['expression'], map: mapExpressionV1 },
    { source: 'jargons', targets: ['jargon'], map: mapJargonV1 },
    { source: 'person_info', targets: ['person_info'], map: mapPersonInfoV1 },
  ],
  noHome: {
    binary_data: 'paths of stored files (the bytes are not in the database)',
    online_time: 'bot uptime log',
    thinking_questions: 'question-answer cache',
    command_records: 'command log',
    bot_platform_accounts:
      "the bot's accounts (read to tell its own messages; configure agent accounts here)",
    statistics_aggregation_cursors: 'statistics bookkeeping',
    statistics_message_hourly: 'derived statistics (recomputed here from messages)',
    statistics_tool_hourly: 'derived statistics',
    statistics_model_hourly: 'derived statistics (recomputed here from llm_usage)',
    high_frequency_terms: 'derived statistics',
    maisaka_monitor_events: 'MaiSaka monitor log',
    maisaka_reply_effects: 'MaiSaka reply evaluation',
    one_time_maintenance_tasks: 'MaiBot maintenance bookkeeping',
    behavior_experience_paths: 'behaviour learning',
    behavior_scene_clusters: 'behaviour learning',
    behavior_scene_tag_clusters: 'behaviour learning',
    behavior_actions: 'behaviour learning',
    behavior_outcomes: 'behaviour learning',
  },
};
