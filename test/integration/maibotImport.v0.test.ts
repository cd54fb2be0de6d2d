/**
 * `import-maibot` with a MaiBot 0.x database built in the test (10,500 messages over 24 chats plus
 * one chat that no longer exists): the seed's migration test (counts equal, T+A+C+P set), re-import,
 * a killed import resumed, another tenant untouched, dry run, bad files.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import initSqlJs from 'sql.js';

import { UnknownSchemaError } from '../../src/legacy/detect';
import {
  importContext,
  importMaiBot,
  type ImportReport,
  openSource,
  ORPHAN_CHATS,
} from '../../src/legacy/importer';
import { SourceFileError } from '../../src/legacy/sqliteSource';
import { verifyImport } from '../../src/legacy/verify';
import { BOT_ID, buildMaiBotV0, buildMaiBotV1, ORPHAN_CHAT } from '../support/maibotFixture';
import { importedContent, tenantSnapshot } from '../support/tenantSnapshot';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

let t: TestDatabase;
let dir: string;
let file: string;

const opts = (tenantId: string) => ({ sqlitePath: file, tenantId, agentId: 'default' });

async function verify(tenantId: string, sqlitePath = file) {
  const ctx = importContext(tenantId, 'default');
  const { source, plan } = await openSource(t.db, ctx, { sqlitePath, agentId: 'default' });
  try {
    return await verifyImport(t.db, ctx, source, plan);
  } finally {
    source.close();
  }
}

const byTable = (r: ImportReport) => Object.fromEntries(r.tables.map((x) => [x.source, x]));

beforeAll(async () => {
  t = await createTestDatabase();
  dir = mkdtempSync(path.join(tmpdir(), 'maibot-v0-'));
  file = path.join(dir, 'MaiBot.db');
  await buildMaiBotV0(file);
  for (const id of ['alpha', 'beta', 'gamma', 'delta'])
    await t.admin(`INSERT INTO tenants (tenant_id, name) VALUES ($1, $1)`, [id]);
}, 60_000);

afterAll(async () => {
  await t.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('import-maibot, MaiBot 0.x', () => {
  let first: ImportReport;

  beforeAll(async () => {
    first = await importMaiBot(t.db, opts('alpha'));
  }, 120_000);

  it('imports every table with a home, with counts equal to the source', async () => {
    expect(first.generation).toBe('0.x');
    const tables = byTable(first);
    expect(tables.chat_streams).toMatchObject({ read: 24, imported: 24 });
    expect(tables[ORPHAN_CHATS]!.imported).toBe(2); // the dissolved group, and a memory's unknown chat
    expect(tables.messages).toMatchObject({ read: 10_500, imported: 10_500, skipped: {} });
    expect(tables.memory_chest).toMatchObject({ read: 50, imported: 50 });
    expect(tables.llm_usage).toMatchObject({ read: 300, imported: 300 });
    expect(tables.emoji).toMatchObject({
      read: 31,
      imported: 30,
      skipped: { 'image_hash already used by another emojis row': 1 },
    });
    expect(tables.action_records).toMatchObject({ read: 200, imported: 200 });
    for (const [table, n] of [
      ['person_info', 100],
      ['group_info', 20],
      ['expression', 60],
      ['jargon', 40],
      ['chat_history', 20],
    ] as const)
      expect(tables[table]).toMatchObject({ read: n, imported: n });

    const counts = await t.admin<{ t: string; n: string }>(
      `SELECT 'messages' t, count(*)::text n FROM messages WHERE tenant_id = 'alpha'
       UNION ALL SELECT 'chat_streams', count(*)::text FROM chat_streams WHERE tenant_id = 'alpha'
       UNION ALL SELECT 'memory_chest', count(*)::text FROM memory_chest WHERE tenant_id = 'alpha'`,
    );
    expect(Object.fromEntries(counts.rows.map((r) => [r.t, Number(r.n)]))).toEqual({
      messages: 10_500,
      chat_streams: 26,
      memory_chest: 70,
    });
  });

  it('lists what has no home with counts', () => {
    expect(Object.fromEntries(first.noHome.map((n) => [n.table, n.rows]))).toEqual({
      images: 20,
      image_descriptions: 10,
      online_time: 5,
      memory_conflicts: 5,
    });
  });

  it('fills tenant, agent, platform and chat stream on messages, memories and chat streams', async () => {
    const { rows } = await t.admin<{ bad: string }>(
      `SELECT (SELECT count(*) FROM messages WHERE tenant_id = 'alpha'
                 AND (agent_id IS DISTINCT FROM 'default' OR platform IS DISTINCT FROM 'qq' OR chat_stream_id IS NULL))
            + (SELECT count(*) FROM chat_streams WHERE tenant_id = 'alpha' AND (agent_id <> 'default' OR platform <> 'qq'))
            + (SELECT count(*) FROM memory_chest WHERE tenant_id = 'alpha'
                 AND (agent_id <> 'default' OR (scope = 'chat' AND (platform IS NULL OR chat_stream_id IS NULL)))) AS bad`,
    );
    expect(Number(rows[0]!.bad)).toBe(0);
    const scopes = await t.admin<{ scope: string; n: string }>(
      `SELECT scope, count(*)::text n FROM memory_chest WHERE tenant_id = 'alpha' GROUP BY scope ORDER BY scope`,
    );
    // memories without a chat stay agent-wide (10 of 50); chat history summaries are per chat.
    expect(scopes.rows).toEqual([
      { scope: 'agent', n: '10' },
      { scope: 'chat', n: '60' },
    ]);
  });

  it("keeps text, emoji and NULLs, recreates a vanished chat, and marks the bot's messages as replies", async () => {
    const { rows } = await t.admin<Record<string, unknown>>(
      `SELECT client_message_id, direction, status, reply_to, content, sender_cardname, interest, chat_stream_id
       FROM messages WHERE tenant_id = 'alpha' AND client_message_id IN ('m5', 'm7', 'm8', 'm14', 'm24')
       ORDER BY client_message_id`,
    );
    const m = Object.fromEntries(rows.map((r) => [r.client_message_id as string, r]));
    expect(m.m14).toMatchObject({ direction: 'out', status: 'sent', reply_to: 'm13', sender_cardname: null });
    expect(m.m5).toMatchObject({
      direction: 'in',
      status: 'no_reply',
      reply_to: null,
      sender_cardname: '名片',
    });
    expect(m.m7!.content).toBe('含有空字符'); // NUL cannot be stored in text
    expect(m.m8!.interest).toBeNull();
    expect(m.m24!.chat_stream_id).toBe('qq-g-999999'); // where MaiHive's adapters put that group
    const out = await t.admin<{ n: string }>(
      `SELECT count(*)::text n FROM messages WHERE tenant_id = 'alpha' AND direction = 'out' AND sender_user_id = $1`,
      [BOT_ID],
    );
    expect(Number(out.rows[0]!.n)).toBe(1500);
    expect(first.botIdsFrom).toMatch(/inferred/);
    const orphan = await t.admin(
      `SELECT group_id, group_name, metadata FROM chat_streams WHERE tenant_id = 'alpha' AND chat_stream_id = $1`,
      ['qq-g-999999'],
    );
    expect(orphan.rows[0]).toMatchObject({
      group_id: '999999',
      group_name: '已解散的群😢',
      metadata: { maibot: { recreated: true, stream_id: ORPHAN_CHAT } },
    });
    const emoji = await t.admin(
      `SELECT description FROM emojis WHERE tenant_id = 'alpha' ORDER BY emoji_id LIMIT 1`,
    );
    expect(String(emoji.rows[0]!.description)).toMatch(/😄/);
  });

  it('verifies: counts and checksums match for every table', async () => {
    const lines = await verify('alpha');
    expect(lines.filter((l) => !l.ok)).toEqual([]);
    expect(lines.find((l) => l.source === 'messages')).toMatchObject({ expected: 10_500, found: 10_500 });
  });

  it('re-importing imports nothing twice', async () => {
    const before = await tenantSnapshot(t, 'alpha');
    const again = await importMaiBot(t.db, opts('alpha'));
    expect(again.tables.reduce((n, x) => n + x.imported, 0)).toBe(0);
    const after = await tenantSnapshot(t, 'alpha');
    delete before.import_checkpoints;
    delete after.import_checkpoints;
    expect(after).toEqual(before);
  });

  it('verification reports a row changed after the import', async () => {
    await t.admin(
      `UPDATE messages SET content = content || '!' WHERE tenant_id = 'alpha' AND client_message_id = 'm100'`,
    );
    try {
      const bad = (await verify('alpha')).filter((l) => !l.ok);
      expect(bad.map((l) => l.source)).toEqual(['messages']);
      expect(bad[0]!.found).toBe(10_500);
    } finally {
      await t.admin(
        `UPDATE messages SET content = rtrim(content, '!') WHERE tenant_id = 'alpha' AND client_message_id = 'm100'`,
      );
    }
  });

  it('a killed import, run again, ends with the same rows, and tenant alpha stays byte-identical', async () => {
    const alpha = await tenantSnapshot(t, 'alpha');
    const abort = new AbortController();
    let seen = 0;
    const stopped = await importMaiBot(t.db, {
      ...opts('beta'),
      batchSize: 1000,
      signal: abort.signal,
      progress: {
        start() {},
        finish() {},
        advance(table, rows) {
          if (table === 'messages' && (seen += rows) >= 3000) abort.abort();
        },
      },
    });
    expect(stopped.interrupted).toBe(true);
    // Batches already in flight when the signal came still commit; nothing after them starts.
    const partial = await t.admin<{ n: string }>(
      `SELECT count(*)::text n FROM messages WHERE tenant_id = 'beta'`,
    );
    const written = Number(partial.rows[0]!.n);
    expect(written).toBeGreaterThanOrEqual(3000);
    expect(written).toBeLessThan(10_500);
    const checkpoint = await t.admin<{ last: string }>(
      `SELECT last_source_id::text AS last FROM import_checkpoints WHERE tenant_id = 'beta' AND source_table = 'messages'`,
    );
    expect(Number(checkpoint.rows[0]!.last)).toBeLessThanOrEqual(written);

    const resumed = await importMaiBot(t.db, { ...opts('beta'), batchSize: 1000 });
    expect(resumed.interrupted).toBe(false);
    expect(byTable(resumed).messages!.imported).toBe(10_500 - written);
    expect(byTable(resumed).chat_streams!.read).toBe(0); // finished before the stop: not read again
    expect((await verify('beta')).filter((l) => !l.ok)).toEqual([]);
    expect(await importedContent(t, 'beta')).toEqual(await importedContent(t, 'alpha'));
    expect(await tenantSnapshot(t, 'alpha')).toEqual(alpha);
  });

  it('a dry run reads and maps everything and writes nothing', async () => {
    const before = await tenantSnapshot(t, 'gamma');
    const dry = await importMaiBot(t.db, { ...opts('gamma'), dryRun: true });
    expect(dry.dryRun).toBe(true);
    expect(byTable(dry).messages).toMatchObject({ read: 10_500, imported: 10_500 });
    expect(await tenantSnapshot(t, 'gamma')).toEqual(before);
  });

  it('a truncated file, a non-MaiBot SQLite file and a non-SQLite file fail with nothing written', async () => {
    const before = await tenantSnapshot(t, 'delta');
    const { readFileSync } = await import('node:fs');
    const bytes = readFileSync(file);
    const truncated = path.join(dir, 'truncated.db');
    writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
    await expect(importMaiBot(t.db, { ...opts('delta'), sqlitePath: truncated })).rejects.toThrow(
      SourceFileError,
    );

    const SQL = await initSqlJs();
    const other = new SQL.Database();
    other.run('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes VALUES (1, 42)');
    const otherFile = path.join(dir, 'other.db');
    writeFileSync(otherFile, other.export());
    other.close();
    await expect(importMaiBot(t.db, { ...opts('delta'), sqlitePath: otherFile })).rejects.toThrow(
      UnknownSchemaError,
    );
    await expect(importMaiBot(t.db, { ...opts('delta'), sqlitePath: otherFile })).rejects.toThrow(
      /found notes/,
    );

    const text = path.join(dir, 'notes.txt');
    writeFileSync(text, 'hello, not a database'.repeat(20));
    await expect(importMaiBot(t.db, { ...opts('delta'), sqlitePath: text })).rejects.toThrow(SourceFileError);
    await expect(
      importMaiBot(t.db, { ...opts('delta'), sqlitePath: path.join(dir, 'missing.db') }),
    ).rejects.toThrow(SourceFileError);
    // MaiBot's WAL mode: writes still in MaiBot.db-wal would be missed.
    const walCopy = path.join(dir, 'running.db');
    writeFileSync(walCopy, bytes);
    writeFileSync(`${walCopy}-wal`, Buffer.alloc(4096, 1));
    await expect(importMaiBot(t.db, { ...opts('delta'), sqlitePath: walCopy })).rejects.toThrow(
      /running\.db-wal holds 4096 bytes of writes not yet in .*stop MaiBot first/,
    );
    expect(await tenantSnapshot(t, 'delta')).toEqual(before);
  });

  it('refuses a 1.x database for an agent that has a 0.x import, writing nothing', async () => {
    const v1 = path.join(dir, 'MaiBot-1x.db');
    await buildMaiBotV1(v1, { chats: 3, messages: 50 });
    const before = await tenantSnapshot(t, 'alpha');
    await expect(importMaiBot(t.db, { ...opts('alpha'), sqlitePath: v1 })).rejects.toThrow(
      /already has an import from a MaiBot 0\.x database; a 1\.x one would bring the same history again/,
    );
    expect(await tenantSnapshot(t, 'alpha')).toEqual(before);
  });

  it('refuses an agent the tenant does not have', async () => {
    await expect(importMaiBot(t.db, { ...opts('delta'), agentId: 'ghost' })).rejects.toThrow(
      /no agent ghost/,
    );
  });
});
