/**
 * Upgrades never lose data: for every version, apply the migrations up to it (writing data after
 * each, for two tenants), then apply the rest and check that every row survives with the values it
 * had, tenant columns included. A migration that drops a column holding data, or changes its type,
 * fails here unless its file declares the data migration it carries
 * (`-- data-migration: <table>.<column>`); so does one that rewrites values.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import pg from 'pg';

import { migrate, MIGRATIONS_DIR } from '../../src/db/migrate';
import { createLogger } from '../../src/logger';
import { testEnv } from '../support/env';

const logger = createLogger({ level: 'silent' });
const created: string[] = [];
const dirs: string[] = [];

/**
 * Data written right after each migration, as the owner, for tenants `ua` and `ub`. A migration
 * that creates a table adds its rows here (the coverage test below insists).
 */
const SEEDS: Record<number, string> = {
  1: `
    INSERT INTO tenants (tenant_id, name) VALUES ('ua', '甲'), ('ub', '乙');
    INSERT INTO platform_users (username, password_hash) VALUES ('root', 'h');
    INSERT INTO chat_streams (tenant_id, chat_stream_id, agent_id, platform, group_id, group_name)
      SELECT t, 'c1', 'default', 'qq', 'g1', '群😀' FROM unnest(ARRAY['ua', 'ub']) t;
    INSERT INTO messages (tenant_id, message_id, agent_id, platform, chat_stream_id, direction, content, status)
      SELECT t, 'm' || n, 'default', 'qq', 'c1', 'in', '你好 ' || n, 'replied'
      FROM unnest(ARRAY['ua', 'ub']) t, generate_series(1, 5) n;
    INSERT INTO memory_chest (tenant_id, memory_id, agent_id, platform, chat_stream_id, scope, content)
      SELECT t, 'mem1', 'default', 'qq', 'c1', 'chat', '喜欢火锅' FROM unnest(ARRAY['ua', 'ub']) t;
    INSERT INTO llm_usage (tenant_id, agent_id, provider, model_name, request_type, status, cost)
      SELECT t, 'default', 'p', 'm', 'chat', 'success', 0.000123 FROM unnest(ARRAY['ua', 'ub']) t;
    INSERT INTO expression (tenant_id, expression_id, agent_id, platform, chat_stream_id, situation, style)
      SELECT t, 'e1', 'default', 'qq', 'c1', '情景', '风格' FROM unnest(ARRAY['ua', 'ub']) t;
    INSERT INTO action_records (tenant_id, action_id, agent_id, platform, chat_stream_id, action_name)
      SELECT t, 'a1', 'default', 'qq', 'c1', 'reply' FROM unnest(ARRAY['ua', 'ub']) t;
    INSERT INTO jargon (tenant_id, jargon_id, agent_id, term) SELECT t, 'j1', 'default', '梗' FROM unnest(ARRAY['ua', 'ub']) t;
    INSERT INTO person_info (tenant_id, person_id, agent_id, platform, user_id)
      SELECT t, 'p1', 'default', 'qq', '42' FROM unnest(ARRAY['ua', 'ub']) t;
    INSERT INTO group_info (tenant_id, agent_id, platform, group_id, member_list)
      SELECT t, 'default', 'qq', 'g1', '[{"id": 1}]' FROM unnest(ARRAY['ua', 'ub']) t;
    INSERT INTO users (tenant_id, username, password_hash, role) SELECT t, 'admin', 'h', 'tenant_admin' FROM unnest(ARRAY['ua', 'ub']) t;
    INSERT INTO api_keys (tenant_id, key_id, name, role, agent_id, key_hash)
      SELECT t, 'k1', 'key', 'agent', 'default', '\\x01'::bytea FROM unnest(ARRAY['ua', 'ub']) t;
    INSERT INTO refresh_tokens (tenant_id, token_id, family_id, username, token_hash, expires_at)
      SELECT t, 'r1', 'f1', 'admin', '\\x02'::bytea, now() + interval '1 day' FROM unnest(ARRAY['ua', 'ub']) t;
    INSERT INTO emoji_packs (tenant_id, pack_id, name) SELECT t, 'pk', '包' FROM unnest(ARRAY['ua', 'ub']) t;
    INSERT INTO emojis (tenant_id, emoji_id, pack_id, emoji, emotion, tags)
      SELECT t, 'em1', 'pk', '😂', '开心', '{a,b}' FROM unnest(ARRAY['ua', 'ub']) t;
    INSERT INTO tenant_plugins (tenant_id, plugin_id) SELECT t, 'plug' FROM unnest(ARRAY['ua', 'ub']) t;
    INSERT INTO config_entries (tenant_id, category, scope, config) SELECT t, 'llm', 'tenant', '{"x": 1}' FROM unnest(ARRAY['ua', 'ub']) t;
    INSERT INTO config_history (tenant_id, category, scope, version, config)
      SELECT t, 'llm', 'tenant', 1, '{"x": 1}' FROM unnest(ARRAY['ua', 'ub']) t;
    INSERT INTO usage_stats (tenant_id, granularity, bucket_start, agent_id, messages_in)
      SELECT t, 'hour', '2026-01-01T00:00:00Z', 'default', 3 FROM unnest(ARRAY['ua', 'ub']) t;
    INSERT INTO audit_log (tenant_id, actor, action) SELECT t, 'admin', 'test' FROM unnest(ARRAY['ua', 'ub']) t;`,
  2: `INSERT INTO platform_refresh_tokens (token_id, family_id, username, token_hash, expires_at)
      VALUES ('pr1', 'pf1', 'root', '\\x03'::bytea, now() + interval '1 day');`,
  3: `INSERT INTO agent_accounts (tenant_id, platform, account_id, agent_id)
      SELECT t, 'qq', '10000', 'default' FROM unnest(ARRAY['ua', 'ub']) t;`,
  4: `UPDATE chat_streams SET heartflow_state = '{"willingness": 0.5}' WHERE tenant_id IN ('ua', 'ub');`,
  5: `
    UPDATE chat_streams SET memory_scanned_id = 'm3', memory_scanned_at = '2026-01-01T00:00:00Z' WHERE tenant_id IN ('ua', 'ub');
    INSERT INTO deliveries (tenant_id, message_id, agent_id, platform, chat_stream_id, status, webhook_url)
      SELECT t, 'm1', 'default', 'qq', 'c1', 'delivered', 'https://example.test/hook' FROM unnest(ARRAY['ua', 'ub']) t;`,
  6: `
    INSERT INTO import_checkpoints (tenant_id, agent_id, source_table, generation, last_source_id)
      SELECT t, 'default', 'messages', '0.x', 5 FROM unnest(ARRAY['ua', 'ub']) t;
    INSERT INTO llm_usage (tenant_id, agent_id, provider, model_name, request_type, status, import_ref)
      SELECT t, 'default', 'p', 'm', 'chat', 'success', 'maibot:default:llm_usage:1' FROM unnest(ARRAY['ua', 'ub']) t;`,
  10: `
    INSERT INTO emoji_usage (tenant_id, emoji_id, pack_id, emoji, emotion, agent_id, platform, chat_stream_id, trigger_type)
      SELECT t, 'em1', 'pk', '😂', '开心', 'default', 'qq', 'c1', 'manual' FROM unnest(ARRAY['ua', 'ub']) t;
    INSERT INTO plugin_state (tenant_id, plugin_id, key, value)
      SELECT t, 'plug', 'k', '{"n": 1}' FROM unnest(ARRAY['ua', 'ub']) t;`,
  11: `
    INSERT INTO usage_stats (tenant_id, granularity, bucket_start, agent_id, messages_in)
      SELECT t, 'day', '2026-01-01T00:00:00Z', 'default', 3 FROM unnest(ARRAY['ua', 'ub']) t;
    INSERT INTO usage_feature_stats (tenant_id, granularity, bucket_start, agent_id, feature, llm_requests, cost)
      SELECT t, 'hour', '2026-01-01T00:00:00Z', 'default', 'reply', 2, 0.5 FROM unnest(ARRAY['ua', 'ub']) t;`,
  13: `
    INSERT INTO usage_tenant_totals (tenant_id, granularity, bucket_start, messages_in, replies, no_replies,
                                     failures, llm_requests, prompt_tokens, completion_tokens, cost)
      SELECT t, 'day', '2026-01-02T00:00:00Z', 5, 4, 1, 0, 3, 30, 6, 0.5 FROM unnest(ARRAY['ua', 'ub']) t;`,
  14: `
    INSERT INTO memory_chest (tenant_id, memory_id, agent_id, scope, content)
      SELECT t, 'mem14', 'default', 'agent', '喜欢吃火锅 hotpot' FROM unnest(ARRAY['ua', 'ub']) t;`,
};

const MIGRATION_FILE = /^(\d+)\.do\..*\.sql$/;

function migrationFiles(dir: string): { version: number; file: string }[] {
  return readdirSync(dir)
    .map((file) => ({ file, m: MIGRATION_FILE.exec(file) }))
    .filter((x): x is { file: string; m: RegExpExecArray } => x.m !== null)
    .map((x) => ({ version: Number(x.m[1]), file: x.file }))
    .sort((a, b) => a.version - b.version);
}

/** One directory per version holding the migrations up to it (Postgrator migrates to the newest). */
function stagedDirs(source: string): Map<number, string> {
  const files = migrationFiles(source);
  const staged = new Map<number, string>();
  for (const { version } of files) {
    const dir = mkdtempSync(path.join(os.tmpdir(), `maihive-upto-${version}-`));
    dirs.push(dir);
    for (const f of files.filter((x) => x.version <= version))
      copyFileSync(path.join(source, f.file), path.join(dir, f.file));
    staged.set(version, dir);
  }
  return staged;
}

async function emptyDatabase(): Promise<{ url: string; client: pg.Client }> {
  const name = `maihive_t_${process.pid}_${randomBytes(4).toString('hex')}`;
  const server = new pg.Client({ connectionString: testEnv('serverUrl') });
  await server.connect();
  try {
    await server.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await server.end();
  }
  created.push(name);
  const u = new URL(testEnv('serverUrl'));
  u.pathname = `/${name}`;
  const client = new pg.Client({ connectionString: u.toString() });
  await client.connect();
  return { url: u.toString(), client };
}

type Columns = Map<string, Map<string, string>>; // table → column → type

async function columns(c: pg.Client): Promise<Columns> {
  const { rows } = await c.query<{ table_name: string; column_name: string; t: string }>(
    `SELECT c.table_name, c.column_name, format_type(a.atttypid, a.atttypmod) AS t
     FROM information_schema.columns c
     JOIN pg_attribute a ON a.attrelid = (quote_ident(c.table_schema) || '.' || quote_ident(c.table_name))::regclass
                        AND a.attname = c.column_name
     JOIN information_schema.tables tb ON tb.table_schema = c.table_schema AND tb.table_name = c.table_name
     WHERE c.table_schema = 'public' AND tb.table_type = 'BASE TABLE' AND c.table_name <> 'schemaversion'`,
  );
  const out: Columns = new Map();
  for (const r of rows) {
    const m = out.get(r.table_name) ?? new Map<string, string>();
    m.set(r.column_name, r.t);
    out.set(r.table_name, m);
  }
  return out;
}

/** Every row of every table, as JSON, sorted. */
async function snapshot(c: pg.Client, cols: Columns): Promise<Map<string, Record<string, unknown>[]>> {
  const out = new Map<string, Record<string, unknown>[]>();
  for (const table of cols.keys()) {
    const { rows } = await c.query<{ j: Record<string, unknown> }>(
      `SELECT to_jsonb(x) AS j FROM ${pg.escapeIdentifier(table)} x ORDER BY to_jsonb(x)::text`,
    );
    out.set(
      table,
      rows.map((r) => r.j),
    );
  }
  return out;
}

/** `-- data-migration: table.column` declarations of a migration file. */
function declaredDataMigrations(sql: string): Set<string> {
  return new Set([...sql.matchAll(/--\s*data-migration:\s*([\w.]+)/g)].map((m) => m[1]!));
}

/**
 * Migrates a fresh database to `from` (seeding after each step), then through the rest; returns
 * what was lost or changed, an empty list when the upgrade is safe.
 */
async function upgradeProblems(source: string, staged: Map<number, string>, from: number): Promise<string[]> {
  const { url, client } = await emptyDatabase();
  const problems: string[] = [];
  try {
    const versions = [...staged.keys()];
    for (const v of versions.filter((x) => x <= from)) {
      await migrate({ adminUrl: url, appRole: testEnv('appRole'), logger, migrationsDir: staged.get(v)! });
      if (SEEDS[v]) await client.query(SEEDS[v]);
    }
    const beforeCols = await columns(client);
    const before = await snapshot(client, beforeCols);
    const declared = new Set<string>();
    for (const v of versions.filter((x) => x > from)) {
      const colsBefore = await columns(client);
      await migrate({ adminUrl: url, appRole: testEnv('appRole'), logger, migrationsDir: staged.get(v)! });
      const colsAfter = await columns(client);
      const file = migrationFiles(source).find((f) => f.version === v)!.file;
      const allowed = declaredDataMigrations(readFileSync(path.join(source, file), 'utf8'));
      for (const a of allowed) declared.add(a);
      for (const [table, cols] of colsBefore) {
        if ((before.get(table)?.length ?? 0) === 0) continue;
        for (const [col, type] of cols) {
          if (allowed.has(`${table}.${col}`)) continue;
          const now = colsAfter.get(table)?.get(col);
          if (now === undefined) problems.push(`${file} drops ${table}.${col}, which holds data`);
          else if (now !== type) problems.push(`${file} changes ${table}.${col} from ${type} to ${now}`);
        }
      }
    }
    const after = await snapshot(client, await columns(client));
    for (const [table, rows] of before) {
      const kept = beforeCols.get(table)!;
      const project = (r: Record<string, unknown>) =>
        JSON.stringify(
          Object.fromEntries(
            [...kept.keys()].filter((k) => !declared.has(`${table}.${k}`)).map((k) => [k, r[k]]),
          ),
        );
      const was = rows.map(project).sort();
      const now = (after.get(table) ?? []).map(project).sort();
      if (now.length !== was.length)
        problems.push(`${table}: ${was.length} rows before, ${now.length} after`);
      else if (JSON.stringify(was) !== JSON.stringify(now)) problems.push(`${table}: row values changed`);
    }
  } finally {
    await client.end();
  }
  return problems;
}

// One database per test, each dropped here: on a loaded machine that takes longer than the
// default 30 s hook timeout (which then leaves this client's socket open).
afterAll(async () => {
  const server = new pg.Client({ connectionString: testEnv('serverUrl') });
  await server.connect();
  try {
    for (const name of created)
      await server.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await server.end();
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe('upgrade safety', () => {
  const staged = stagedDirs(MIGRATIONS_DIR);
  const versions = [...staged.keys()];

  it('the seeds put rows of both tenants in every table, so every column is exercised', async () => {
    const { url, client } = await emptyDatabase();
    try {
      for (const v of versions) {
        await migrate({ adminUrl: url, appRole: testEnv('appRole'), logger, migrationsDir: staged.get(v)! });
        if (SEEDS[v]) await client.query(SEEDS[v]);
      }
      const empty: string[] = [];
      for (const [table, cols] of await columns(client)) {
        const sql = cols.has('tenant_id')
          ? `SELECT count(DISTINCT tenant_id) FILTER (WHERE tenant_id IN ('ua', 'ub')) AS n FROM ${pg.escapeIdentifier(table)}`
          : `SELECT least(count(*), 2) AS n FROM ${pg.escapeIdentifier(table)}`;
        const { rows } = await client.query<{ n: string }>(sql);
        if (Number(rows[0]!.n) < (cols.has('tenant_id') ? 2 : 1)) empty.push(table);
      }
      expect(empty).toEqual([]); // a new table needs rows in SEEDS under its migration's number
    } finally {
      await client.end();
    }
  }, 60_000);

  it.each(versions.slice(0, -1))(
    'data written at version %i survives every later migration',
    async (from) => {
      expect(await upgradeProblems(MIGRATIONS_DIR, staged, from)).toEqual([]);
    },
    60_000,
  );

  describe('catches a migration that loses data', () => {
    const last = versions[versions.length - 1]!;
    const withExtra = (sql: string) => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'maihive-bad-'));
      dirs.push(dir);
      for (const f of migrationFiles(MIGRATIONS_DIR))
        copyFileSync(path.join(MIGRATIONS_DIR, f.file), path.join(dir, f.file));
      writeFileSync(path.join(dir, `${String(last + 1).padStart(3, '0')}.do.extra.sql`), sql);
      return dir;
    };

    it('a dropped column, a changed type, a rewritten value', async () => {
      const dir = withExtra(`
        ALTER TABLE group_info DROP COLUMN topic;
        ALTER TABLE person_info ALTER COLUMN user_id TYPE varchar(3);
        UPDATE messages SET content = content || '!' WHERE message_id = 'm1';`);
      const problems = await upgradeProblems(dir, stagedDirs(dir), last);
      expect(problems).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/drops group_info\.topic/),
          expect.stringMatching(/changes person_info\.user_id from text to character varying\(3\)/),
          'messages: row values changed',
        ]),
      );
    }, 60_000);

    it('passes when the migration declares its data migration', async () => {
      const dir = withExtra(`
        -- data-migration: messages.content (an explicit rewrite of the text)
        UPDATE messages SET content = content || '!' WHERE message_id = 'm1';`);
      expect(await upgradeProblems(dir, stagedDirs(dir), last)).toEqual([]);
    }, 60_000);
  });
});
