/**
 * What an import will do with a source file, worked out before anything is written: the
 * generation, the chats (those of the chats table and those only referred to), the bot's own user
 * ids, and which tables have a home. Reads the source only.
 */
import type { MapContext, StreamRef } from './mapping/common';
import type { Generation, SourceTableSpec } from './mapping/generation';
import { quoteIdent, type SourceRow, type SqliteSource, type SqlValue } from './sqliteSource';
import type { TargetRow } from './targets';

export interface NoHomeTable {
  readonly table: string;
  readonly rows: number;
  readonly why: string;
}

export interface SourcePlan {
  readonly generation: Generation;
  readonly context: MapContext;
  /** How the bot's user ids were found (shown in the summary). */
  readonly botIdsFrom: string;
  /** Chat streams for chats that rows refer to but the chats table lacks. */
  readonly orphanChats: readonly TargetRow[];
  /** The generation's tables present in the file, in import order. */
  readonly tables: readonly SourceTableSpec[];
  readonly noHome: readonly NoHomeTable[];
  readonly chatsRows: number;
}

export interface PlanOptions {
  agentId: string;
  defaultPlatform: string;
  /** Bot user ids given on the command line or configured as the agent's accounts. */
  botUserIds: readonly string[];
}

export function planSource(source: SqliteSource, generation: Generation, options: PlanOptions): SourcePlan {
  const tables = source.tables();
  const base = { agentId: options.agentId, defaultPlatform: options.defaultPlatform };
  const chatsTable = quoteIdent(generation.chats.table);
  const chatsId = quoteIdent(generation.chats.idColumn);

  const streams = new Map<string, StreamRef>();
  for (const page of source.scan(generation.chats.table)) {
    for (const row of page) {
      const mapped = generation.mapChat(row, base);
      const id = row[generation.chats.idColumn];
      if (mapped && typeof id === 'string') streams.set(id, streamRef(mapped));
    }
  }

  const orphanChats: TargetRow[] = [];
  let sampleRef: { table: string; column: string } | undefined;
  for (const ref of generation.chatReferences) {
    if (!tables.get(ref.table)?.has(ref.column)) continue;
    sampleRef ??= ref;
    const col = quoteIdent(ref.column);
    const ids = source.query(
      `SELECT DISTINCT ${col} AS id FROM ${quoteIdent(ref.table)}
       WHERE ${col} IS NOT NULL AND ${col} <> '' AND ${col} NOT IN (SELECT ${chatsId} FROM ${chatsTable} WHERE ${chatsId} IS NOT NULL)`,
    );
    for (const { id } of ids) {
      if (typeof id !== 'string' || streams.has(id)) continue;
      const sample = sampleFor(source, sampleRef, id);
      const row = generation.orphanChat(id, sample, base);
      streams.set(id, streamRef(row));
      orphanChats.push(row);
    }
  }

  const { ids: botUserIds, from: botIdsFrom } = botIds(source, tables, generation, options.botUserIds);
  const known = new Set([generation.chats.table, ...generation.tables.map((t) => t.source)]);
  const noHome: NoHomeTable[] = [...tables.keys()]
    .filter((t) => !known.has(t))
    .map((t) => ({ table: t, rows: source.count(t), why: generation.noHome[t] ?? 'unknown table' }));

  return {
    generation,
    context: { ...base, streams, botUserIds: new Set(botUserIds) },
    botIdsFrom,
    orphanChats,
    tables: generation.tables.filter((t) => tables.has(t.source)),
    noHome,
    chatsRows: source.count(generation.chats.table),
  };
}

function streamRef(row: TargetRow): StreamRef {
  return { chatStreamId: String(row.values.chat_stream_id), platform: String(row.values.platform) };
}

function sampleFor(
  source: SqliteSource,
  ref: { table: string; column: string },
  id: string,
): Readonly<Record<string, SqlValue>> | undefined {
  return source.query(
    `SELECT * FROM ${quoteIdent(ref.table)} WHERE ${quoteIdent(ref.column)} = ? ORDER BY rowid LIMIT 1`,
    [id],
  )[0];
}

/**
 * The bot's own user ids: given ones, else the accounts MaiBot 1.x recorded, else the sender who
 * speaks in the most chats (the bot is in every chat it answers in) when that is clear-cut.
 */
function botIds(
  source: SqliteSource,
  tables: ReadonlyMap<string, ReadonlySet<string>>,
  generation: Generation,
  given: readonly string[],
): { ids: string[]; from: string } {
  if (given.length > 0) return { ids: [...given], from: 'given' };
  const found = new Set<string>();
  if (tables.get('bot_platform_accounts')?.has('account_id')) {
    for (const r of source.query('SELECT DISTINCT account_id AS id FROM bot_platform_accounts')) {
      if (typeof r.id === 'string' && r.id) found.add(r.id);
    }
  }
  if (tables.get('chat_sessions')?.has('account_id')) {
    for (const r of source.query(
      'SELECT DISTINCT account_id AS id FROM chat_sessions WHERE account_id IS NOT NULL',
    )) {
      if (typeof r.id === 'string' && r.id) found.add(r.id);
    }
  }
  if (found.size > 0) return { ids: [...found], from: 'MaiBot bot accounts' };
  const messages = generation.name === '1.x' ? 'mai_messages' : 'messages';
  const chat = generation.name === '1.x' ? 'session_id' : 'chat_id';
  if (!tables.get(messages)?.has('user_id')) return { ids: [], from: 'none found' };
  const top = source.query(
    `SELECT user_id AS id, count(DISTINCT ${chat}) AS n FROM ${messages} WHERE user_id IS NOT NULL
     GROUP BY user_id ORDER BY n DESC LIMIT 2`,
  );
  const chats = Number(source.query(`SELECT count(DISTINCT ${chat}) AS n FROM ${messages}`)[0]?.n ?? 0);
  const [first, second] = top;
  const n1 = Number(first?.n ?? 0);
  const n2 = Number(second?.n ?? 0);
  if (typeof first?.id === 'string' && n1 >= 2 && n1 * 2 >= chats && n1 > n2 * 2) {
    return { ids: [first.id], from: `inferred (speaks in ${n1} of ${chats} chats)` };
  }
  return { ids: [], from: 'none found (pass --bot-user-id)' };
}

export type { SourceRow };
