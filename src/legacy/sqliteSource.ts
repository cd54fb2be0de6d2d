import { readFile, stat } from 'node:fs/promises';

import initSqlJs, { type Database as SqlJsDatabase } from 'sql.js';

/** A cell as SQLite hands it over. */
export type SqlValue = number | string | Uint8Array | null;
/** One source row, by column name, plus its `rowid` (the import's cursor). */
export type SourceRow = Readonly<Record<string, SqlValue>> & { readonly rowid: number };

/** The file is not a readable SQLite database (missing, truncated, corrupt, something else). */
export class SourceFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SourceFileError';
  }
}

const SQLITE_MAGIC = 'SQLite format 3\0';

/**
 * Checks the 100-byte header before handing the bytes to SQLite: the magic string, and that the
 * file is as long as the header says (page size × page count). SQLite itself reads a truncated file
 * until it reaches a missing page, which would fail halfway through an import.
 */
export function checkSqliteHeader(bytes: Uint8Array): void {
  if (bytes.length < 100 || Buffer.from(bytes.subarray(0, 16)).toString('latin1') !== SQLITE_MAGIC) {
    throw new SourceFileError('not a SQLite database (no "SQLite format 3" header)');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const rawPageSize = view.getUint16(16);
  const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
  const pageCount = view.getUint32(28);
  // The in-header size is valid only when "version-valid-for" equals the change counter.
  const sizeValid = view.getUint32(92) === view.getUint32(24) && pageCount > 0;
  if (sizeValid && bytes.length < pageSize * pageCount) {
    throw new SourceFileError(
      `SQLite file is truncated: ${bytes.length} bytes, the header says ${pageSize * pageCount}`,
    );
  }
}

/**
 * A MaiBot database opened read-only in memory with sql.js (SQLite compiled to wasm: installs
 * without native builds, and Node 20 has no `node:sqlite`). The whole file is held in memory, which
 * suits MaiBot databases (tens to a few hundred MB).
 */
export class SqliteSource {
  private constructor(private readonly db: SqlJsDatabase) {}

  static async open(path: string): Promise<SqliteSource> {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (err) {
      throw new SourceFileError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
    }
    checkSqliteHeader(bytes);
    await refusePendingWal(path);
    const SQL = await initSqlJs();
    let db: SqlJsDatabase | undefined;
    try {
      db = new SQL.Database(bytes);
      // Reads every page once: a corrupt file fails here, before anything is written.
      const check = db.exec('PRAGMA quick_check');
      const verdict = check[0]?.values[0]?.[0];
      if (verdict !== 'ok') throw new Error(String(verdict));
    } catch (err) {
      db?.close();
      if (err instanceof SourceFileError) throw err;
      throw new SourceFileError(`SQLite file is damaged: ${(err as Error).message}`, { cause: err });
    }
    return new SqliteSource(db);
  }

  /** Tables (not SQLite's own) with their column names. */
  tables(): Map<string, Set<string>> {
    const result = new Map<string, Set<string>>();
    const names = this.db.exec(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    );
    for (const [name] of names[0]?.values ?? []) {
      const table = String(name);
      const cols = this.db.exec(`PRAGMA table_info(${quoteIdent(table)})`);
      result.set(table, new Set((cols[0]?.values ?? []).map((row) => String(row[1]))));
    }
    return result;
  }

  count(table: string): number {
    const r = this.db.exec(`SELECT count(*) FROM ${quoteIdent(table)}`);
    return Number(r[0]?.values[0]?.[0] ?? 0);
  }

  /** Rows with `rowid > after`, in rowid order, at most `limit`. */
  page(table: string, after: number, limit: number): SourceRow[] {
    const stmt = this.db.prepare(
      `SELECT rowid AS "__rowid", * FROM ${quoteIdent(table)} WHERE rowid > ? ORDER BY rowid LIMIT ?`,
    );
    try {
      stmt.bind([after, limit]);
      // Column names once per page and rows as arrays: getAsObject asks for the names every row.
      const names = stmt.getColumnNames();
      const rows: SourceRow[] = [];
      while (stmt.step()) {
        const values = stmt.get();
        const obj: Record<string, SqlValue> = {};
        for (let i = 1; i < names.length; i++) obj[names[i]!] = values[i] ?? null;
        rows.push({ ...obj, rowid: Number(values[0]) });
      }
      return rows;
    } finally {
      stmt.free();
    }
  }

  /** Every row of a table, a page at a time. */
  *scan(table: string, pageSize = 5000, after = 0): Generator<SourceRow[]> {
    let cursor = after;
    for (;;) {
      const rows = this.page(table, cursor, pageSize);
      if (rows.length === 0) return;
      yield rows;
      cursor = rows[rows.length - 1]!.rowid;
    }
  }

  /** A query of the importer's own (fixed SQL over known tables), rows as objects. */
  query(sql: string, params: SqlValue[] = []): Record<string, SqlValue>[] {
    const stmt = this.db.prepare(sql);
    try {
      stmt.bind(params);
      const rows: Record<string, SqlValue>[] = [];
      while (stmt.step()) rows.push(stmt.getAsObject());
      return rows;
    } finally {
      stmt.free();
    }
  }

  close(): void {
    this.db.close();
  }
}

/** Bytes of a WAL file's header: a longer one holds frames, i.e. writes not in the main file yet. */
const WAL_HEADER_BYTES = 32;

/**
 * MaiBot runs SQLite in WAL mode: while it runs (or after a crash), recent writes live in
 * `<file>-wal`, not in the file. sql.js reads the main file only, so it would import stale data
 * without a word; refuse instead. A clean MaiBot shutdown checkpoints and removes the WAL.
 */
async function refusePendingWal(path: string): Promise<void> {
  const wal = await stat(`${path}-wal`).catch(() => undefined);
  if (wal && wal.size > WAL_HEADER_BYTES) {
    throw new SourceFileError(
      `${path}-wal holds ${wal.size} bytes of writes not yet in ${path}: stop MaiBot first (it folds them ` +
        `in on shutdown), or run: sqlite3 ${path} 'PRAGMA wal_checkpoint(TRUNCATE)'`,
    );
  }
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
