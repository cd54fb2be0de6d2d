import { createHash } from 'node:crypto';

import { chatStreamIdFor } from '../../adapters/types';
import type { SqlValue } from '../sqliteSource';
import type { TargetRow } from '../targets';

/** Client-chosen identifiers here (chat streams, platforms): API.md § Conventions. */
const IDENTIFIER = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

/** What a mapping function needs besides the row: who the rows are for, and the chats known. */
export interface MapContext {
  readonly agentId: string;
  /** Platform for rows that name none (or one that is not a valid identifier). */
  readonly defaultPlatform: string;
  /** Chats by MaiBot id (`stream_id` / `chat_id` / `session_id`): their id and platform here. */
  readonly streams: ReadonlyMap<string, StreamRef>;
  /** The bot's own user ids, by platform: their messages are the bot's replies. */
  readonly botUserIds: ReadonlySet<string>;
}

export interface StreamRef {
  readonly chatStreamId: string;
  readonly platform: string;
}

/** A source row mapped to its rows here, or skipped with a reason (counted, never silent). */
export type MapResult = { rows: Record<string, TargetRow[]> } | { skip: string };

export const skip = (reason: string): MapResult => ({ skip: reason });

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * A string PostgreSQL accepts: NUL cannot be stored in `text` or `jsonb` (dropped), and a lone
 * UTF-16 surrogate (half an emoji, e.g. from a `\ud83d` escape in MaiBot's JSON) is refused by
 * `jsonb` and mangled in `text` (replaced by U+FFFD, as UTF-8 would).
 */
export function clean(s: string): string {
  const noNul = s.includes('\0') ? s.replace(/\0/g, '') : s;
  return noNul.replace(LONE_SURROGATE, '\uFFFD');
}

/** Text for PostgreSQL (see `clean`). */
export function text(value: SqlValue | undefined): string | null {
  if (value === null || value === undefined) return null;
  const s =
    typeof value === 'string'
      ? value
      : value instanceof Uint8Array
        ? Buffer.from(value).toString('utf8')
        : String(value);
  return clean(s);
}

export function num(value: SqlValue | undefined): number | null {
  if (value === null || value === undefined || value === '') return null;
  const n = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(n) ? n : null;
}

export function int(value: SqlValue | undefined): number | null {
  const n = num(value);
  return n === null ? null : Math.round(n);
}

export function bool(value: SqlValue | undefined): boolean {
  if (typeof value === 'string') return value === '1' || value.toLowerCase() === 'true';
  return value !== null && value !== undefined && Number(value) !== 0;
}

/** Unix seconds (MaiBot 0.x `DoubleField`s) to a Date, to the millisecond. */
export function fromUnixSeconds(value: SqlValue | undefined): Date | null {
  const n = num(value);
  if (n === null || n <= 0) return null;
  return new Date(Math.round(n * 1000));
}

const DATETIME = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/;

/**
 * A naive `DATETIME` text ('YYYY-MM-DD HH:MM:SS.ffffff', as peewee and SQLAlchemy write Python
 * `datetime.now()`) to a Date. MaiBot wrote local time of its host, so it is read in this
 * process's time zone: run the import with TZ set to the MaiBot host's zone. Numbers are taken as
 * Unix seconds (some rows were written with floats).
 */
export function fromDateTime(value: SqlValue | undefined): Date | null {
  if (typeof value === 'number') return fromUnixSeconds(value);
  const s = text(value)?.trim();
  if (!s) return null;
  const m = DATETIME.exec(s);
  if (!m) {
    const parsed = Date.parse(s);
    return Number.isNaN(parsed) ? null : new Date(parsed);
  }
  const ms = Math.round(Number(`0.${m[7] ?? '0'}`) * 1000);
  const d = new Date(
    Number(m[1]),
    Number(m[2]) - 1,
    Number(m[3]),
    Number(m[4]),
    Number(m[5]),
    Number(m[6]),
    ms,
  );
  return Number.isNaN(d.getTime()) ? null : d;
}

/** A MaiBot id as an identifier here: kept when valid (md5 hex always is), else a stable hash. */
export function identifier(raw: string): string {
  return IDENTIFIER.test(raw) ? raw : `mb-${createHash('sha256').update(raw).digest('hex').slice(0, 40)}`;
}

/**
 * The chat stream a MaiBot chat becomes: the one MaiHive's adapters put the same group or private
 * chat in (`<platform>-g-<group_id>`, `<platform>-p-<user_id>`), so live messages continue the
 * imported history. A chat with neither id keeps MaiBot's own id.
 */
export function chatStreamIdOf(
  platform: string,
  groupId: string | null,
  userId: string | null,
  maibotId: string,
): string {
  if (groupId) return chatStreamIdFor(platform, 'group', groupId);
  if (userId) return chatStreamIdFor(platform, 'private', userId);
  return identifier(maibotId);
}

export function platformOf(raw: SqlValue | undefined, fallback: string): string {
  const p = text(raw);
  return p !== null && IDENTIFIER.test(p) ? p : fallback;
}

/** Parses JSON text; what is not JSON is kept as a string value rather than lost. */
export function json(value: SqlValue | undefined): unknown {
  const s = text(value);
  if (s === null) return null;
  try {
    return JSON.parse(s, (_key, v: unknown) => (typeof v === 'string' ? clean(v) : v)) as unknown;
  } catch {
    return s;
  }
}

/** JSON that must be an array here (member lists, memory points): a non-array is wrapped. */
export function jsonArray(value: SqlValue | undefined): unknown[] {
  const v = json(value);
  if (v === null) return [];
  return Array.isArray(v) ? v : [v];
}

/** JSON that must be an object here (action data): a non-object is kept under `value`. */
export function jsonObject(value: SqlValue | undefined): Record<string, unknown> {
  const v = json(value);
  if (v === null) return {};
  return typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : { value: v };
}

/** The key of a row imported from MaiBot row `rowid` of `table` for `agentId`. */
export function importKey(agentId: string, table: string, rowid: number): string {
  return `maibot:${agentId}:${table}:${rowid}`;
}

/** Drops keys whose value is null or undefined (metadata stays small). */
export function compact(obj: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== null && v !== undefined));
}

export function one(target: string, key: string, values: Record<string, unknown>): MapResult {
  return { rows: { [target]: [{ key, values }] } };
}
