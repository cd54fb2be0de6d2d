/**
 * The MaiHive tables an import writes, column by column: what each mapped row holds, how a batch
 * is inserted (`unnest` over one array per column), and how a written row is read back for
 * verification. Column lists are constants of this file; nothing here comes from the source.
 */

/** How a column travels: the array type it is sent as, and how it is compared after a round trip. */
export type ColumnKind =
  | 'text'
  | 'int'
  | 'real' // float4: read back as float8, compared after Math.fround
  | 'numeric6' // numeric(14, 6): compared as toFixed(6)
  | 'bool'
  | 'ts'
  | 'jsonb'
  | 'textarr' // sent as a jsonb array, since unnest would flatten a text[][]
  | 'bytea';

export interface TargetColumn {
  readonly name: string;
  readonly kind: ColumnKind;
  /** SQL used when the mapped value is `undefined` (the source has no such value): the column's default. */
  readonly dflt?: string;
}

export interface TargetTable {
  readonly table: string;
  /** SQL expression naming a row uniquely within the tenant (what verification looks rows up by). */
  readonly keySql: string;
  /** Columns written, `tenant_id` excluded (it is the unit of work's tenant). */
  readonly columns: readonly TargetColumn[];
  /**
   * A column that is unique within the tenant besides the key (emojis: one row per image hash).
   * A row whose value another row here already holds is skipped with a reason rather than left to
   * conflict silently.
   */
  readonly natural?: string;
}

/** A mapped row: its verification key and a value per column of its target. */
export interface TargetRow {
  readonly key: string;
  readonly values: Readonly<Record<string, unknown>>;
}

const c = (name: string, kind: ColumnKind, dflt?: string): TargetColumn =>
  dflt === undefined ? { name, kind } : { name, kind, dflt };

export const TARGETS = {
  chat_streams: {
    table: 'chat_streams',
    keySql: 'chat_stream_id',
    columns: [
      c('chat_stream_id', 'text'),
      c('agent_id', 'text'),
      c('platform', 'text'),
      c('chat_type', 'text'),
      c('group_id', 'text'),
      c('group_name', 'text'),
      c('user_id', 'text'),
      c('metadata', 'jsonb'),
      c('status', 'text'),
      c('created_at', 'ts', 'now()'),
      c('last_active_at', 'ts', 'now()'),
    ],
  },
  messages: {
    table: 'messages',
    keySql: 'message_id',
    columns: [
      c('message_id', 'text'),
      c('agent_id', 'text'),
      c('platform', 'text'),
      c('chat_stream_id', 'text'),
      c('direction', 'text'),
      c('client_message_id', 'text'),
      c('reply_to', 'text'),
      c('sender_user_id', 'text'),
      c('sender_nickname', 'text'),
      c('sender_cardname', 'text'),
      c('content', 'text'),
      c('segments', 'jsonb'),
      c('is_mentioned', 'bool'),
      c('interest', 'real'),
      c('status', 'text'),
      c('created_at', 'ts', 'now()'),
      c('processed_at', 'ts'),
    ],
  },
  memory_chest: {
    table: 'memory_chest',
    keySql: 'memory_id',
    columns: [
      c('memory_id', 'text'),
      c('agent_id', 'text'),
      c('platform', 'text'),
      c('chat_stream_id', 'text'),
      c('scope', 'text'),
      c('title', 'text'),
      c('content', 'text'),
      c('memory_type', 'text'),
      c('tags', 'textarr'),
      c('metadata', 'jsonb'),
      c('locked', 'bool'),
      c('access_count', 'int'),
      c('created_at', 'ts', 'now()'),
      c('updated_at', 'ts', 'now()'),
    ],
  },
  llm_usage: {
    table: 'llm_usage',
    keySql: 'import_ref',
    columns: [
      c('import_ref', 'text'),
      c('agent_id', 'text'),
      c('platform', 'text'),
      c('chat_stream_id', 'text'),
      c('provider', 'text'),
      c('model_name', 'text'),
      c('request_type', 'text'),
      c('prompt_tokens', 'int'),
      c('completion_tokens', 'int'),
      c('total_tokens', 'int'),
      c('cost', 'numeric6'),
      c('latency_ms', 'int'),
      c('status', 'text'),
      c('error', 'text'),
      c('created_at', 'ts', 'now()'),
    ],
  },
  emoji_packs: {
    table: 'emoji_packs',
    keySql: 'pack_id',
    columns: [c('pack_id', 'text'), c('name', 'text'), c('description', 'text'), c('platform', 'text')],
  },
  emojis: {
    table: 'emojis',
    keySql: 'emoji_id',
    natural: 'image_hash',
    columns: [
      c('emoji_id', 'text'),
      c('pack_id', 'text'),
      c('image_hash', 'text'),
      c('image_data', 'bytea'),
      c('format', 'text'),
      c('description', 'text'),
      c('emotion', 'text'),
      c('tags', 'textarr'),
      c('usage_count', 'int'),
      c('last_used_at', 'ts'),
      c('created_at', 'ts', 'now()'),
    ],
  },
  action_records: {
    table: 'action_records',
    keySql: 'action_id',
    columns: [
      c('action_id', 'text'),
      c('agent_id', 'text'),
      c('platform', 'text'),
      c('chat_stream_id', 'text'),
      c('action_name', 'text'),
      c('action_data', 'jsonb'),
      c('reasoning', 'text'),
      c('done', 'bool'),
      c('created_at', 'ts', 'now()'),
    ],
  },
  expression: {
    table: 'expression',
    keySql: 'expression_id',
    columns: [
      c('expression_id', 'text'),
      c('agent_id', 'text'),
      c('platform', 'text'),
      c('chat_stream_id', 'text'),
      c('situation', 'text'),
      c('style', 'text'),
      c('context', 'text'),
      c('count', 'real'),
      c('last_active_at', 'ts', 'now()'),
      c('created_at', 'ts', 'now()'),
    ],
  },
  jargon: {
    table: 'jargon',
    keySql: 'jargon_id',
    columns: [
      c('jargon_id', 'text'),
      c('agent_id', 'text'),
      c('platform', 'text'),
      c('chat_stream_id', 'text'),
      c('term', 'text'),
      c('meaning', 'text'),
      c('count', 'int'),
      c('is_global', 'bool'),
      c('created_at', 'ts', 'now()'),
      c('updated_at', 'ts', 'now()'),
    ],
  },
  person_info: {
    table: 'person_info',
    keySql: 'person_id',
    columns: [
      c('person_id', 'text'),
      c('agent_id', 'text'),
      c('platform', 'text'),
      c('user_id', 'text'),
      c('person_name', 'text'),
      c('name_reason', 'text'),
      c('nickname', 'text'),
      c('is_known', 'bool'),
      c('memory_points', 'jsonb'),
      c('know_times', 'int'),
      c('know_since', 'ts'),
      c('last_know', 'ts'),
    ],
  },
  group_info: {
    table: 'group_info',
    keySql: "agent_id || '/' || platform || '/' || group_id",
    columns: [
      c('agent_id', 'text'),
      c('platform', 'text'),
      c('group_id', 'text'),
      c('group_name', 'text'),
      c('group_impression', 'text'),
      c('member_list', 'jsonb'),
      c('topic', 'text'),
      c('member_count', 'int'),
      c('created_at', 'ts', 'now()'),
      c('last_active_at', 'ts'),
    ],
  },
} as const satisfies Record<string, TargetTable>;

export type TargetName = keyof typeof TARGETS;
