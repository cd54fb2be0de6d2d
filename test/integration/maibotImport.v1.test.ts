/**
 * `import-maibot` with a MaiBot 1.x database built in the test from the frozen v2 schema plus
 * 1.2.1's columns (10,200 messages over 22 sessions plus one that no longer exists).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { runImportCommand } from '../../src/legacy/command';
import {
  importContext,
  importMaiBot,
  type ImportReport,
  openSource,
  ORPHAN_CHATS,
} from '../../src/legacy/importer';
import { verifyImport } from '../../src/legacy/verify';
import { BOT_ID, buildMaiBotV1 } from '../support/maibotFixture';
import { tenantSnapshot } from '../support/tenantSnapshot';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

let t: TestDatabase;
let dir: string;
let file: string;
let report: ImportReport;

beforeAll(async () => {
  t = await createTestDatabase();
  dir = mkdtempSync(path.join(tmpdir(), 'maibot-v1-'));
  file = path.join(dir, 'MaiBot.db');
  await buildMaiBotV1(file);
  await t.admin(`INSERT INTO tenants (tenant_id, name) VALUES ('one', 'One'), ('two', 'Two')`);
  await t.admin(`INSERT INTO agents (tenant_id, agent_id, name) VALUES ('one', 'mai', '麦麦')`);
  report = await importMaiBot(t.db, { sqlitePath: file, tenantId: 'one', agentId: 'mai' });
}, 120_000);

afterAll(async () => {
  await t.close();
  rmSync(dir, { recursive: true, force: true });
});

const byTable = (r: ImportReport) => Object.fromEntries(r.tables.map((x) => [x.source, x]));

describe('import-maibot, MaiBot 1.x', () => {
  it('detects 1.x and imports sessions, messages and every table with a home', () => {
    expect(report.generation).toBe('1.x');
    const tables = byTable(report);
    expect(tables.chat_sessions).toMatchObject({ read: 22, imported: 22 });
    expect(tables[ORPHAN_CHATS]).toMatchObject({ read: 1, imported: 1 });
    expect(tables.mai_messages).toMatchObject({ read: 10_200, imported: 10_200, skipped: {} });
    expect(tables.llm_usage).toMatchObject({ read: 250, imported: 250 });
    expect(tables.action_records).toMatchObject({ read: 150, imported: 150 });
    expect(tables.tool_records).toMatchObject({ read: 30, imported: 30 });
    expect(tables.expressions).toMatchObject({ read: 50, imported: 50 });
    expect(tables.jargons).toMatchObject({ read: 30, imported: 30 });
    expect(tables.person_info).toMatchObject({ read: 80, imported: 80 });
    expect(tables.chat_history).toMatchObject({ read: 15, imported: 15 });
    // Pictures have no table here: counted as skipped with the reason, not dropped silently.
    expect(tables.images).toMatchObject({
      read: 40,
      imported: 30,
      skipped: { 'picture (not an emoji): no image table here': 10 },
    });
  });

  it('lists the tables without a home, with counts', () => {
    expect(Object.fromEntries(report.noHome.map((n) => [n.table, n.rows]))).toEqual({
      binary_data: 7,
      bot_platform_accounts: 1,
      command_records: 6,
      online_time: 4,
      statistics_message_hourly: 12,
      thinking_questions: 3,
    });
  });

  it("tells the bot's messages by its recorded account and keeps raw content", async () => {
    expect(report.botUserIds).toEqual([BOT_ID]);
    const { rows } = await t.admin<{ direction: string; n: string }>(
      `SELECT direction, count(*)::text n FROM messages WHERE tenant_id = 'one' GROUP BY direction ORDER BY direction`,
    );
    expect(rows).toEqual([
      { direction: 'in', n: '7650' },
      { direction: 'out', n: '2550' },
    ]);
    const m = await t.admin(
      `SELECT platform, chat_stream_id, agent_id, segments, content, reply_to FROM messages
       WHERE tenant_id = 'one' AND client_message_id IN ('mm24', 'mm45') ORDER BY client_message_id`,
    );
    expect(m.rows[0]).toMatchObject({ reply_to: 'mm23', segments: [] }); // every 6th has no raw content
    expect(m.rows[1]).toMatchObject({
      platform: 'qq',
      chat_stream_id: 'qq-g-888888',
      agent_id: 'mai',
      reply_to: null,
      segments: [{ type: 'maibot_raw_msgpack', data: Buffer.from([0x92, 0xa4, 45, 0]).toString('base64') }],
    });
    const nulls = await t.admin<{ n: string }>(
      `SELECT count(*)::text n FROM messages WHERE tenant_id = 'one'
       AND (agent_id IS NULL OR platform IS NULL OR chat_stream_id IS NULL)`,
    );
    expect(nulls.rows[0]!.n).toBe('0');
  });

  it('verifies every table, and the CLI command exits 0 with the verification table', async () => {
    const ctx = importContext('one', 'mai');
    const { source, plan } = await openSource(t.db, ctx, { sqlitePath: file, agentId: 'mai' });
    try {
      const lines = await verifyImport(t.db, ctx, source, plan);
      expect(lines.filter((l) => !l.ok)).toEqual([]);
    } finally {
      source.close();
    }
    let printed = '';
    const code = await runImportCommand(
      t.db,
      {
        sqlite: file,
        tenant: 'one',
        agent: 'mai',
        platform: 'qq',
        'bot-user-id': [],
        'batch-size': 5000,
        'dry-run': false,
        'verify-only': true,
      },
      { write: (s: string) => (printed += s), isTTY: false },
    );
    expect(code).toBe(0);
    expect(printed).toMatch(/mai_messages\s+messages\s+10200\s+10200\s+10200/);
    expect(printed).toMatch(/all tables match/);
  });

  it('a re-run imports nothing and another tenant stays empty', async () => {
    const two = await tenantSnapshot(t, 'two');
    const again = await importMaiBot(t.db, { sqlitePath: file, tenantId: 'one', agentId: 'mai' });
    expect(again.tables.filter((x) => x.imported !== 0)).toEqual([]);
    // Only the recreated chats are offered again (and conflict): every table resumed at its end.
    expect(again.tables.filter((x) => x.read !== 0).map((x) => x.source)).toEqual([ORPHAN_CHATS]);
    expect(await tenantSnapshot(t, 'two')).toEqual(two);
  });

  it('refuses, writing nothing, when the chats already belong to another agent of the tenant', async () => {
    const before = await tenantSnapshot(t, 'one');
    await expect(
      importMaiBot(t.db, { sqlitePath: file, tenantId: 'one', agentId: 'default' }),
    ).rejects.toThrow(
      /23 chat stream\(s\) this import would write already belong to another agent or platform of tenant one: qq-g-800000 \(agent mai, qq\)/,
    );
    expect(await tenantSnapshot(t, 'one')).toEqual(before);
  });
});
