import { writeFileSync } from 'node:fs';

import initSqlJs, { type Database as SqlJsDatabase } from 'sql.js';

/**
 * Populated MaiBot databases, built in the test from the real schemas: 0.x as peewee creates it
 * (shared/fixtures/maibot-legacy/schema.sql, 0.11.0-beta, plus `jargon` and `chat_history` of
 * 0.11.6-beta) and 1.x as the frozen v2 schema of MaiBot 1.2.1 plus 1.2.1's later columns and
 * tables. Deterministic (seeded), with Chinese text, emoji, NULLs where allowed, and rows that break
 * assumptions: messages and actions of a chat that no longer exists, a memory of an unknown chat, a
 * NUL in a message, JSON columns that are not JSON.
 */

export const SCHEMA_V0 = `
CREATE TABLE chat_streams (id INTEGER PRIMARY KEY, stream_id TEXT NOT NULL UNIQUE, create_time REAL NOT NULL,
  group_platform TEXT, group_id TEXT, group_name TEXT, last_active_time REAL NOT NULL, platform TEXT NOT NULL,
  user_platform TEXT NOT NULL, user_id TEXT NOT NULL, user_nickname TEXT NOT NULL, user_cardname TEXT);
CREATE TABLE messages (id INTEGER PRIMARY KEY, message_id TEXT NOT NULL, time REAL NOT NULL, chat_id TEXT NOT NULL,
  reply_to TEXT, interest_value REAL, key_words TEXT, key_words_lite TEXT, is_mentioned INTEGER, is_at INTEGER,
  reply_probability_boost REAL, chat_info_stream_id TEXT NOT NULL, chat_info_platform TEXT NOT NULL,
  chat_info_user_platform TEXT NOT NULL, chat_info_user_id TEXT NOT NULL, chat_info_user_nickname TEXT NOT NULL,
  chat_info_user_cardname TEXT, chat_info_group_platform TEXT, chat_info_group_id TEXT, chat_info_group_name TEXT,
  chat_info_create_time REAL NOT NULL, chat_info_last_active_time REAL NOT NULL, user_platform TEXT, user_id TEXT,
  user_nickname TEXT, user_cardname TEXT, processed_plain_text TEXT, display_message TEXT, priority_mode TEXT,
  priority_info TEXT, additional_config TEXT, is_emoji INTEGER NOT NULL DEFAULT 0, is_picid INTEGER NOT NULL DEFAULT 0,
  is_command INTEGER NOT NULL DEFAULT 0, is_notify INTEGER NOT NULL DEFAULT 0, selected_expressions TEXT);
CREATE INDEX messages_chat_id ON messages (chat_id);
CREATE TABLE llm_usage (id INTEGER PRIMARY KEY, model_name TEXT NOT NULL, model_assign_name TEXT, model_api_provider TEXT,
  user_id TEXT NOT NULL, request_type TEXT NOT NULL, endpoint TEXT NOT NULL, prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL, total_tokens INTEGER NOT NULL, cost REAL NOT NULL, time_cost REAL,
  status TEXT NOT NULL, timestamp DATETIME NOT NULL);
CREATE TABLE emoji (id INTEGER PRIMARY KEY, full_path TEXT NOT NULL UNIQUE, format TEXT NOT NULL, emoji_hash TEXT NOT NULL,
  description TEXT NOT NULL, query_count INTEGER NOT NULL DEFAULT 0, is_registered INTEGER NOT NULL DEFAULT 0,
  is_banned INTEGER NOT NULL DEFAULT 0, emotion TEXT, record_time REAL NOT NULL, register_time REAL,
  usage_count INTEGER NOT NULL DEFAULT 0, last_used_time REAL);
CREATE TABLE action_records (id INTEGER PRIMARY KEY, action_id TEXT NOT NULL, time REAL NOT NULL, action_reasoning TEXT,
  action_name TEXT NOT NULL, action_data TEXT NOT NULL, action_done INTEGER NOT NULL DEFAULT 0,
  action_build_into_prompt INTEGER NOT NULL DEFAULT 0, action_prompt_display TEXT NOT NULL, chat_id TEXT NOT NULL,
  chat_info_stream_id TEXT NOT NULL, chat_info_platform TEXT NOT NULL);
CREATE TABLE images (id INTEGER PRIMARY KEY, image_id TEXT NOT NULL DEFAULT '', emoji_hash TEXT NOT NULL, description TEXT,
  path TEXT NOT NULL UNIQUE, count INTEGER NOT NULL DEFAULT 1, timestamp REAL NOT NULL, type TEXT NOT NULL,
  vlm_processed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE image_descriptions (id INTEGER PRIMARY KEY, type TEXT NOT NULL, image_description_hash TEXT NOT NULL,
  description TEXT NOT NULL, timestamp REAL NOT NULL);
CREATE TABLE online_time (id INTEGER PRIMARY KEY, timestamp TEXT NOT NULL, duration INTEGER NOT NULL,
  start_timestamp DATETIME NOT NULL, end_timestamp DATETIME NOT NULL);
CREATE TABLE person_info (id INTEGER PRIMARY KEY, is_known INTEGER NOT NULL DEFAULT 0, person_id TEXT NOT NULL UNIQUE,
  person_name TEXT, name_reason TEXT, platform TEXT NOT NULL, user_id TEXT NOT NULL, nickname TEXT, memory_points TEXT,
  know_times REAL, know_since REAL, last_know REAL);
CREATE TABLE group_info (id INTEGER PRIMARY KEY, group_id TEXT NOT NULL UNIQUE, group_name TEXT, platform TEXT NOT NULL,
  group_impression TEXT, member_list TEXT, topic TEXT, create_time REAL, last_active REAL, member_count INTEGER DEFAULT 0);
CREATE TABLE expression (id INTEGER PRIMARY KEY, situation TEXT NOT NULL, style TEXT NOT NULL, context TEXT, up_content TEXT,
  last_active_time REAL NOT NULL, chat_id TEXT NOT NULL, create_date REAL);
CREATE TABLE memory_chest (id INTEGER PRIMARY KEY, title TEXT NOT NULL, content TEXT NOT NULL, chat_id TEXT,
  locked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE memory_conflicts (id INTEGER PRIMARY KEY, conflict_content TEXT NOT NULL, answer TEXT, create_time REAL NOT NULL,
  update_time REAL NOT NULL, context TEXT, chat_id TEXT, raise_time REAL);
CREATE TABLE jargon (id INTEGER PRIMARY KEY, content TEXT NOT NULL, raw_content TEXT, meaning TEXT, chat_id TEXT NOT NULL,
  is_global INTEGER NOT NULL DEFAULT 0, count INTEGER NOT NULL DEFAULT 0, is_jargon INTEGER, last_inference_count INTEGER,
  is_complete INTEGER NOT NULL DEFAULT 0, inference_with_context TEXT, inference_content_only TEXT);
CREATE TABLE chat_history (id INTEGER PRIMARY KEY, chat_id TEXT NOT NULL, start_time REAL NOT NULL, end_time REAL NOT NULL,
  original_text TEXT NOT NULL, participants TEXT NOT NULL, theme TEXT NOT NULL, keywords TEXT NOT NULL, summary TEXT NOT NULL,
  key_point TEXT, count INTEGER NOT NULL DEFAULT 0, forget_times INTEGER NOT NULL DEFAULT 0);
`;

export const SCHEMA_V1 = `
CREATE TABLE action_records (id INTEGER NOT NULL, action_id VARCHAR(255) NOT NULL, timestamp DATETIME,
  session_id VARCHAR(255) NOT NULL, action_name VARCHAR(255) NOT NULL, action_reasoning VARCHAR, action_data VARCHAR,
  action_builtin_prompt VARCHAR, action_display_prompt VARCHAR, PRIMARY KEY (id));
CREATE TABLE binary_data (id INTEGER NOT NULL, data_hash VARCHAR(255) NOT NULL, full_path VARCHAR(1024) NOT NULL, PRIMARY KEY (id));
CREATE TABLE chat_history (id INTEGER NOT NULL, session_id VARCHAR(255) NOT NULL, start_timestamp DATETIME,
  end_timestamp DATETIME, query_count INTEGER NOT NULL, query_forget_count INTEGER NOT NULL,
  original_messages VARCHAR NOT NULL, participants VARCHAR NOT NULL, theme VARCHAR NOT NULL, keywords VARCHAR NOT NULL,
  summary VARCHAR NOT NULL, PRIMARY KEY (id));
CREATE TABLE chat_sessions (id INTEGER NOT NULL, session_id VARCHAR(255) NOT NULL, created_timestamp DATETIME,
  last_active_timestamp DATETIME, user_id VARCHAR(255), group_id VARCHAR(255), platform VARCHAR(100) NOT NULL,
  user_nickname VARCHAR(255), user_cardname VARCHAR(255), group_name VARCHAR(255), account_id VARCHAR(255),
  scope VARCHAR(255), PRIMARY KEY (id));
CREATE UNIQUE INDEX ix_chat_sessions_session_id ON chat_sessions (session_id);
CREATE TABLE command_records (id INTEGER NOT NULL, timestamp DATETIME, session_id VARCHAR(255) NOT NULL,
  command_name VARCHAR(255) NOT NULL, command_data VARCHAR, command_result VARCHAR, PRIMARY KEY (id));
CREATE TABLE expressions (id INTEGER NOT NULL, situation VARCHAR(255) NOT NULL, style VARCHAR(255) NOT NULL,
  content_list VARCHAR NOT NULL, count INTEGER NOT NULL, last_active_time DATETIME, create_time DATETIME,
  session_id VARCHAR(255), checked BOOLEAN NOT NULL, rejected BOOLEAN NOT NULL, modified_by VARCHAR(4), PRIMARY KEY (id));
CREATE TABLE images (id INTEGER NOT NULL, image_hash VARCHAR(255) NOT NULL, description VARCHAR NOT NULL,
  full_path VARCHAR(1024) NOT NULL, image_type VARCHAR(5), emotion VARCHAR, query_count INTEGER NOT NULL,
  is_registered BOOLEAN NOT NULL, is_banned BOOLEAN NOT NULL, no_file_flag BOOLEAN NOT NULL, record_time DATETIME,
  register_time DATETIME, last_used_time DATETIME, vlm_processed BOOLEAN NOT NULL, PRIMARY KEY (id));
CREATE TABLE jargons (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, content VARCHAR(255) NOT NULL, raw_content TEXT,
  meaning TEXT NOT NULL, session_id_dict TEXT NOT NULL, count INTEGER NOT NULL, is_jargon BOOLEAN,
  is_complete BOOLEAN NOT NULL, is_global BOOLEAN NOT NULL, last_inference_count INTEGER NOT NULL,
  inference_with_context TEXT, inference_with_content_only TEXT, created_timestamp DATETIME, updated_timestamp DATETIME);
CREATE TABLE llm_usage (id INTEGER NOT NULL, model_name VARCHAR(255) NOT NULL, model_assign_name VARCHAR(255),
  model_api_provider_name VARCHAR(255) NOT NULL, endpoint VARCHAR(255), user_type VARCHAR(6),
  request_type VARCHAR(50) NOT NULL, time_cost FLOAT, timestamp DATETIME, prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL, total_tokens INTEGER NOT NULL, cost FLOAT NOT NULL, session_id VARCHAR(255),
  task_name VARCHAR(100), PRIMARY KEY (id));
CREATE TABLE mai_messages (id INTEGER NOT NULL, message_id VARCHAR(255) NOT NULL, timestamp DATETIME,
  platform VARCHAR(100) NOT NULL, user_id VARCHAR(255) NOT NULL, user_nickname VARCHAR(255) NOT NULL,
  user_cardname VARCHAR(255), group_id VARCHAR(255), group_name VARCHAR(255), is_mentioned BOOLEAN NOT NULL,
  is_at BOOLEAN NOT NULL, session_id VARCHAR(255) NOT NULL, reply_to VARCHAR(255), is_emoji BOOLEAN NOT NULL,
  is_picture BOOLEAN NOT NULL, is_command BOOLEAN NOT NULL, is_notify BOOLEAN NOT NULL, raw_content BLOB,
  processed_plain_text VARCHAR, display_message VARCHAR, additional_config VARCHAR, reply_frequency FLOAT, PRIMARY KEY (id));
CREATE TABLE online_time (id INTEGER NOT NULL, timestamp DATETIME, duration_minutes INTEGER NOT NULL,
  start_timestamp DATETIME, end_timestamp DATETIME, PRIMARY KEY (id));
CREATE TABLE person_info (id INTEGER NOT NULL, is_known BOOLEAN NOT NULL, person_id VARCHAR(255) NOT NULL,
  person_name VARCHAR(255), name_reason VARCHAR, platform VARCHAR(100) NOT NULL, user_id VARCHAR(255) NOT NULL,
  user_nickname VARCHAR(255) NOT NULL, group_cardname VARCHAR, memory_points VARCHAR, know_counts INTEGER NOT NULL,
  first_known_time DATETIME, last_known_time DATETIME, PRIMARY KEY (id));
CREATE TABLE thinking_questions (id INTEGER NOT NULL, question VARCHAR NOT NULL, context VARCHAR,
  found_answer BOOLEAN NOT NULL, answer VARCHAR, thinking_steps VARCHAR, created_timestamp DATETIME,
  updated_timestamp DATETIME, PRIMARY KEY (id));
CREATE TABLE tool_records (id INTEGER NOT NULL, tool_id VARCHAR(255) NOT NULL, timestamp DATETIME,
  session_id VARCHAR(255) NOT NULL, tool_name VARCHAR(255) NOT NULL, tool_reasoning VARCHAR, tool_data VARCHAR,
  tool_builtin_prompt VARCHAR, tool_display_prompt VARCHAR, PRIMARY KEY (id));
CREATE TABLE bot_platform_accounts (id INTEGER PRIMARY KEY, platform VARCHAR(100) NOT NULL, account_id VARCHAR(255) NOT NULL,
  disabled BOOLEAN NOT NULL DEFAULT 0, first_seen_at DATETIME NOT NULL, last_seen_at DATETIME NOT NULL);
CREATE TABLE statistics_message_hourly (id INTEGER PRIMARY KEY, bucket_time DATETIME NOT NULL, chat_id VARCHAR(255) NOT NULL,
  chat_name VARCHAR(255) NOT NULL, chat_type VARCHAR(20) NOT NULL, message_count INTEGER NOT NULL DEFAULT 0,
  latest_timestamp DATETIME NOT NULL);
`;

/** Small seeded generator (mulberry32): the same fixture on every run. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PHRASES = [
  '今天吃什么',
  '哈哈哈哈😂',
  '麦麦在吗？',
  '明天下雨吗🌧️',
  '这个表情包好可爱🥰',
  '晚安～',
  '有人打游戏吗🎮',
  '笑死我了',
  '👍👍',
  '谁懂啊',
];
const NAMES = ['小明', '阿花', '老王', 'Bob', '张三', '李四', '🐱猫猫', '路人甲'];

export const BOT_ID = '10000';
export const ORPHAN_CHAT = 'ffffffffffffffffffffffffffffffff';

export interface FixtureCounts {
  chats: number;
  messages: number;
}

function hex(n: number, width = 32): string {
  return n.toString(16).padStart(width, '0');
}

function insertAll(db: SqlJsDatabase, sql: string, rows: unknown[][]): void {
  const stmt = db.prepare(sql);
  for (const r of rows) stmt.run(r as (string | number | null | Uint8Array)[]);
  stmt.free();
}

function datetime(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}000`;
}

/** A MaiBot 0.x database with `messages` messages over `chats` chats (+ one chat that no longer exists). */
export async function buildMaiBotV0(
  path: string,
  opts: { chats?: number; messages?: number; seed?: number } = {},
): Promise<FixtureCounts> {
  const chats = opts.chats ?? 24;
  const messages = opts.messages ?? 10_500;
  const rand = seeded(opts.seed ?? 16);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const SQL = await initSqlJs();
  const db = new SQL.Database();
  db.run(SCHEMA_V0);
  db.run('BEGIN');
  const t0 = 1_717_000_000.25;
  const streamIds = Array.from({ length: chats }, (_, i) => hex(0xabc000 + i));
  insertAll(
    db,
    'INSERT INTO chat_streams VALUES (?,?,?,?,?,?,?,?,?,?,?,?)',
    streamIds.map((id, i) => {
      const group = i % 6 !== 5;
      return [
        i + 1,
        id,
        t0 + i,
        group ? 'qq' : null,
        group ? String(700000 + i) : null,
        group ? `测试群${i}号🎉` : null,
        t0 + 86400 + i,
        'qq',
        'qq',
        String(20000 + i),
        pick(NAMES),
        i % 3 === 0 ? null : '群名片',
      ];
    }),
  );
  const allChats = [...streamIds, ORPHAN_CHAT];
  const rows: unknown[][] = [];
  for (let i = 1; i <= messages; i++) {
    const chat = allChats[i % allChats.length]!;
    // The bot speaks in every chat; each other user in one.
    const fromBot = i % 7 === 0;
    const user = fromBot ? BOT_ID : String(30000 + (i % allChats.length) * 10 + Math.floor(rand() * 3));
    const text = i === 7 ? '含有\0空字符' : `${pick(PHRASES)} #${i}`;
    rows.push([
      i,
      `m${i}`,
      t0 + i * 1.5 + 0.123456,
      chat,
      fromBot ? `m${i - 1}` : null,
      i % 4 === 0 ? null : rand(),
      null,
      null,
      i % 9 === 0 ? 1 : 0,
      i % 11 === 0 ? 1 : null,
      null,
      chat,
      'qq',
      'qq',
      '20000',
      '群主',
      null,
      chat === ORPHAN_CHAT ? 'qq' : null,
      chat === ORPHAN_CHAT ? '999999' : null,
      chat === ORPHAN_CHAT ? '已解散的群😢' : null,
      t0,
      t0 + 100,
      'qq',
      user,
      fromBot ? '麦麦' : pick(NAMES),
      i % 2 === 0 ? null : '名片',
      i % 13 === 0 ? null : text,
      text,
      null,
      null,
      null,
      0,
      0,
      0,
      0,
      null,
    ]);
  }
  insertAll(db, `INSERT INTO messages VALUES (${Array(36).fill('?').join(',')})`, rows);
  insertAll(
    db,
    'INSERT INTO memory_chest VALUES (?,?,?,?,?)',
    Array.from({ length: 50 }, (_, i) => [
      i + 1,
      `记忆${i}`,
      `用户喜欢${pick(PHRASES)}`,
      i % 5 === 0 ? null : i === 7 ? hex(0xdead) : pick(streamIds),
      i % 4 === 0 ? 1 : 0,
    ]),
  );
  insertAll(
    db,
    'INSERT INTO memory_conflicts VALUES (?,?,?,?,?,?,?,?)',
    Array.from({ length: 5 }, (_, i) => [i + 1, `冲突${i}`, null, t0, t0, null, pick(streamIds), null]),
  );
  insertAll(
    db,
    'INSERT INTO llm_usage VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)',
    Array.from({ length: 300 }, (_, i) => [
      i + 1,
      'deepseek-chat',
      i % 3 ? 'replyer' : null,
      i % 7 ? 'DeepSeek' : null,
      'system',
      'chat.replyer',
      'chat/completions',
      100 + i,
      20 + i,
      120 + 2 * i,
      0.00012345678 * i,
      i % 10 ? 1.234 : null,
      i % 17 === 0 ? 'error: 429' : 'success',
      datetime(t0 + i * 60),
    ]),
  );
  insertAll(
    db,
    'INSERT INTO emoji VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)',
    Array.from({ length: 30 }, (_, i) => [
      i + 1,
      `data/emoji/${i}.png`,
      'png',
      hex(0xe000 + i, 64),
      `表情${i}：开心😄`,
      i,
      i % 3 ? 1 : 0,
      i === 4 ? 1 : 0,
      i % 5 ? '开心,快乐' : null,
      t0 + i,
      null,
      i * 2,
      i % 2 ? t0 + 500 : null,
    ]),
  );
  // The same picture saved twice under two paths: one emoji here (unique by image hash).
  insertAll(db, 'INSERT INTO emoji VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)', [
    [
      31,
      'data/emoji/copy-of-0.png',
      'png',
      hex(0xe000, 64),
      '重复的表情',
      0,
      1,
      0,
      '开心',
      t0 + 99,
      null,
      0,
      null,
    ],
  ]);
  insertAll(
    db,
    'INSERT INTO action_records VALUES (?,?,?,?,?,?,?,?,?,?,?,?)',
    Array.from({ length: 200 }, (_, i) => {
      const chat = i === 3 ? ORPHAN_CHAT : pick(streamIds);
      return [
        i + 1,
        `act${i}`,
        t0 + i,
        i % 2 ? '因为想回复' : null,
        i % 3 ? 'reply' : 'no_reply',
        i === 5 ? 'not json' : JSON.stringify({ target: `m${i}`, 文本: '好的' }),
        i % 2,
        0,
        `显示${i}`,
        chat,
        chat,
        'qq',
      ];
    }),
  );
  insertAll(
    db,
    'INSERT INTO images VALUES (?,?,?,?,?,?,?,?,?)',
    Array.from({ length: 20 }, (_, i) => [
      i + 1,
      `img${i}`,
      hex(i, 64),
      '一张图',
      `data/image/${i}.jpg`,
      1,
      t0,
      'image',
      1,
    ]),
  );
  insertAll(
    db,
    'INSERT INTO image_descriptions VALUES (?,?,?,?,?)',
    Array.from({ length: 10 }, (_, i) => [i + 1, 'image', hex(i, 64), '描述', t0]),
  );
  insertAll(
    db,
    'INSERT INTO online_time VALUES (?,?,?,?,?)',
    Array.from({ length: 5 }, (_, i) => [
      i + 1,
      datetime(t0),
      60,
      datetime(t0 + i * 3600),
      datetime(t0 + i * 3600 + 3600),
    ]),
  );
  insertAll(
    db,
    'INSERT INTO person_info VALUES (?,?,?,?,?,?,?,?,?,?,?,?)',
    Array.from({ length: 100 }, (_, i) => [
      i + 1,
      i % 2,
      hex(0xbeef00 + i),
      i % 3 ? `人物${i}` : null,
      null,
      'qq',
      String(30000 + i),
      pick(NAMES),
      // i = 3: Python json.dumps escapes, half an emoji and a NUL, which jsonb refuses as they are
      i === 2
        ? '不是JSON'
        : i === 3
          ? '["\\u559c\\u597d:\\ud83d", "\\u0000x"]'
          : JSON.stringify([`喜好:吃火锅🍲:${i}`]),
      i % 4 ? i * 1.0 : null,
      i % 4 ? t0 : null,
      null,
    ]),
  );
  insertAll(
    db,
    'INSERT INTO group_info VALUES (?,?,?,?,?,?,?,?,?,?)',
    Array.from({ length: 20 }, (_, i) => [
      i + 1,
      String(700000 + i),
      `测试群${i}号🎉`,
      'qq',
      i % 2 ? '热闹' : null,
      JSON.stringify([{ user_id: '1' }]),
      null,
      t0,
      i % 2 ? t0 + 10 : null,
      10 + i,
    ]),
  );
  insertAll(
    db,
    'INSERT INTO expression VALUES (?,?,?,?,?,?,?,?)',
    Array.from({ length: 60 }, (_, i) => [
      i + 1,
      `当有人说${pick(PHRASES)}`,
      '回复“哈哈”',
      i % 2 ? '上下文' : null,
      null,
      t0 + i,
      pick(streamIds),
      i % 3 ? t0 : null,
    ]),
  );
  insertAll(
    db,
    'INSERT INTO jargon VALUES (?,?,?,?,?,?,?,?,?,?,?,?)',
    Array.from({ length: 40 }, (_, i) => [
      i + 1,
      `黑话${i}`,
      null,
      i % 4 ? `意思${i}` : null,
      pick(streamIds),
      i % 5 === 0 ? 1 : 0,
      i,
      null,
      null,
      0,
      null,
      null,
    ]),
  );
  insertAll(
    db,
    'INSERT INTO chat_history VALUES (?,?,?,?,?,?,?,?,?,?,?,?)',
    Array.from({ length: 20 }, (_, i) => [
      i + 1,
      pick(streamIds),
      t0 + i * 100,
      t0 + i * 100 + 50,
      '原文……',
      JSON.stringify(['小明', '阿花']),
      `主题${i}`,
      JSON.stringify(['火锅', '游戏']),
      `总结${i}😊`,
      null,
      i,
      0,
    ]),
  );
  db.run('COMMIT');
  writeFileSync(path, db.export());
  db.close();
  return { chats, messages };
}

/** A MaiBot 1.x database (frozen v2 schema + 1.2.1 columns), same shape of data as `buildMaiBotV0`. */
export async function buildMaiBotV1(
  path: string,
  opts: { chats?: number; messages?: number; seed?: number } = {},
): Promise<FixtureCounts> {
  const chats = opts.chats ?? 22;
  const messages = opts.messages ?? 10_200;
  const rand = seeded(opts.seed ?? 61);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const SQL = await initSqlJs();
  const db = new SQL.Database();
  db.run(SCHEMA_V1);
  db.run('BEGIN');
  const t0 = 1_730_000_000;
  const sessions = Array.from({ length: chats }, (_, i) => hex(0x5e5000 + i));
  insertAll(
    db,
    'INSERT INTO chat_sessions VALUES (?,?,?,?,?,?,?,?,?,?,?,?)',
    sessions.map((id, i) => {
      const group = i % 4 !== 3;
      return [
        i + 1,
        id,
        datetime(t0 + i),
        datetime(t0 + 9000 + i),
        group ? null : String(40000 + i),
        group ? String(800000 + i) : null,
        'qq',
        group ? null : pick(NAMES),
        null,
        group ? `一点五群${i}` : null,
        BOT_ID,
        null,
      ];
    }),
  );
  insertAll(db, 'INSERT INTO bot_platform_accounts VALUES (?,?,?,?,?,?)', [
    [1, 'qq', BOT_ID, 0, datetime(t0), datetime(t0)],
  ]);
  const all = [...sessions, ORPHAN_CHAT];
  const msgRows: unknown[][] = [];
  for (let i = 1; i <= messages; i++) {
    const s = all[i % all.length]!;
    const fromBot = i % 4 === 0;
    const text = `${pick(PHRASES)} v1#${i}`;
    msgRows.push([
      i,
      `mm${i}`,
      datetime(t0 + i * 2),
      'qq',
      fromBot ? BOT_ID : String(50000 + (i % 30)),
      fromBot ? '麦麦' : pick(NAMES),
      i % 3 ? null : '卡片',
      s === ORPHAN_CHAT ? '888888' : null,
      s === ORPHAN_CHAT ? '消失的群' : null,
      i % 10 === 0 ? 1 : 0,
      0,
      s,
      fromBot ? `mm${i - 1}` : null,
      0,
      0,
      0,
      0,
      i % 6 === 0 ? null : new Uint8Array([0x92, 0xa4, i & 0xff, 0x00]),
      i % 17 === 0 ? null : text,
      text,
      null,
      null,
    ]);
  }
  insertAll(db, `INSERT INTO mai_messages VALUES (${Array(22).fill('?').join(',')})`, msgRows);
  insertAll(
    db,
    'INSERT INTO llm_usage VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)',
    Array.from({ length: 250 }, (_, i) => [
      i + 1,
      'qwen-max',
      null,
      'SiliconFlow',
      null,
      null,
      'replyer',
      0.8,
      datetime(t0 + i * 30),
      10 * i,
      5 * i,
      15 * i,
      0.0001 * i,
      i % 2 ? pick(sessions) : '',
      'replyer',
    ]),
  );
  insertAll(
    db,
    'INSERT INTO images VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)',
    Array.from({ length: 40 }, (_, i) => [
      i + 1,
      hex(0xf000 + i, 64),
      `图片描述${i}🖼️`,
      `data/images/${i}.${i % 2 ? 'gif' : 'png'}`,
      i % 4 === 0 ? 'IMAGE' : 'EMOJI',
      i % 3 ? '开心' : null,
      i,
      1,
      0,
      0,
      datetime(t0 + i),
      null,
      null,
      1,
    ]),
  );
  insertAll(
    db,
    'INSERT INTO action_records VALUES (?,?,?,?,?,?,?,?,?)',
    Array.from({ length: 150 }, (_, i) => [
      i + 1,
      `a${i}`,
      datetime(t0 + i),
      i === 1 ? ORPHAN_CHAT : pick(sessions),
      'reply',
      null,
      JSON.stringify({ ok: true }),
      null,
      `展示${i}`,
    ]),
  );
  insertAll(
    db,
    'INSERT INTO tool_records VALUES (?,?,?,?,?,?,?,?,?)',
    Array.from({ length: 30 }, (_, i) => [
      i + 1,
      `t${i}`,
      datetime(t0 + i),
      pick(sessions),
      'search',
      '查一下',
      JSON.stringify({ q: '天气' }),
      null,
      null,
    ]),
  );
  insertAll(
    db,
    'INSERT INTO expressions VALUES (?,?,?,?,?,?,?,?,?,?,?)',
    Array.from({ length: 50 }, (_, i) => [
      i + 1,
      `情景${i}`,
      `风格${i}`,
      JSON.stringify(['说法一', '说法二😀']),
      i,
      datetime(t0 + i),
      datetime(t0),
      i % 5 ? pick(sessions) : null,
      0,
      0,
      null,
    ]),
  );
  insertAll(
    db,
    'INSERT INTO jargons (id, content, raw_content, meaning, session_id_dict, count, is_jargon, is_complete, is_global, last_inference_count, created_timestamp, updated_timestamp) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)',
    Array.from({ length: 30 }, (_, i) => [
      i + 1,
      `梗${i}`,
      null,
      `含义${i}`,
      JSON.stringify(i % 3 ? { [pick(sessions)]: 2 } : { [sessions[0]!]: 1, [sessions[1]!]: 1 }),
      i,
      1,
      0,
      i % 7 === 0 ? 1 : 0,
      0,
      datetime(t0),
      datetime(t0 + 5),
    ]),
  );
  insertAll(
    db,
    'INSERT INTO person_info VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)',
    Array.from({ length: 80 }, (_, i) => [
      i + 1,
      1,
      hex(0xcafe00 + i),
      `人${i}`,
      null,
      'qq',
      String(50000 + i),
      pick(NAMES),
      null,
      i % 2 ? JSON.stringify(['印象:好人:1']) : null,
      i,
      datetime(t0),
      null,
    ]),
  );
  insertAll(
    db,
    'INSERT INTO chat_history VALUES (?,?,?,?,?,?,?,?,?,?,?)',
    Array.from({ length: 15 }, (_, i) => [
      i + 1,
      pick(sessions),
      datetime(t0 + i),
      datetime(t0 + i + 60),
      2,
      0,
      '原始消息',
      '[]',
      `主题${i}`,
      '["梗"]',
      `概括${i}`,
    ]),
  );
  insertAll(
    db,
    'INSERT INTO online_time VALUES (?,?,?,?,?)',
    Array.from({ length: 4 }, (_, i) => [i + 1, datetime(t0), 60, datetime(t0), datetime(t0 + 3600)]),
  );
  insertAll(
    db,
    'INSERT INTO thinking_questions VALUES (?,?,?,?,?,?,?,?)',
    Array.from({ length: 3 }, (_, i) => [i + 1, `问题${i}`, null, 0, null, null, datetime(t0), datetime(t0)]),
  );
  insertAll(
    db,
    'INSERT INTO command_records VALUES (?,?,?,?,?,?)',
    Array.from({ length: 6 }, (_, i) => [i + 1, datetime(t0), pick(sessions), '/help', null, null]),
  );
  insertAll(
    db,
    'INSERT INTO binary_data VALUES (?,?,?)',
    Array.from({ length: 7 }, (_, i) => [i + 1, hex(i, 64), `data/bin/${i}`]),
  );
  insertAll(
    db,
    'INSERT INTO statistics_message_hourly VALUES (?,?,?,?,?,?,?)',
    Array.from({ length: 12 }, (_, i) => [
      i + 1,
      datetime(t0 + i * 3600),
      pick(sessions),
      '群',
      'group',
      5,
      datetime(t0),
    ]),
  );
  db.run('COMMIT');
  writeFileSync(path, db.export());
  db.close();
  return { chats, messages };
}
