/**
 * The seed report's isolation matrix (tenant 8, agent 6, chat stream 5, platform 6), run against
 * PostgreSQL row-level security through the application role: rows are written in one context and
 * read, updated, deleted or forged from another, and the owner (who bypasses nothing it need not:
 * it is only used to arrange and inspect) checks what is really stored.
 */
import pg from 'pg';

import type { Queryable } from '../../src/db/database';
import { createAgent, deleteAgent, getAgent, listAgents } from '../../src/db/repositories/agents';
import {
  countChatStreams,
  createChatStream,
  deleteChatStream,
  getChatStream,
} from '../../src/db/repositories/chatStreams';
import { usageSince } from '../../src/db/repositories/llmUsage';
import {
  deleteMemory,
  getMemory,
  listMemories,
  storeMemory,
  updateMemoryContent,
} from '../../src/db/repositories/memories';
import {
  countMessages,
  getMessage,
  insertMessages,
  recentMessages,
  setMessageOutcome,
} from '../../src/db/repositories/messages';
import { createTenant } from '../../src/db/repositories/tenants';
import { createIsolationContext, type IsolationContext } from '../../src/domain/isolationContext';
import { IsolationViolationError } from '../../src/errors';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

let t: TestDatabase;

const A = 'acme';
const B = 'globex';

interface Chat {
  agentId: string;
  platform: string;
  chatStreamId: string;
}

// Both tenants get the same agents and chat streams, so that only the tenant tells rows apart.
const QQ1: Chat = { agentId: 'bot1', platform: 'qq', chatStreamId: 'qq-group-1' };
const QQ2: Chat = { agentId: 'bot1', platform: 'qq', chatStreamId: 'qq-group-2' };
const DC1: Chat = { agentId: 'bot1', platform: 'discord', chatStreamId: 'dc-guild-1' };
const BOT2_QQ: Chat = { agentId: 'bot2', platform: 'qq', chatStreamId: 'bot2-qq-group' };
const CHATS = [QQ1, QQ2, DC1, BOT2_QQ];
// Exist in tenant A only.
const A_ONLY_AGENT = 'acme-only-bot';
const A_ONLY_CHAT: Chat = { agentId: A_ONLY_AGENT, platform: 'qq', chatStreamId: 'acme-only-chat' };

function ctx(tenantId: string, agentId?: string, platform?: string, chatStreamId?: string): IsolationContext {
  return createIsolationContext({ tenantId, agentId, platform, chatStreamId });
}

function bot1Ctx(): IsolationContext {
  return ctx(A, 'bot1');
}

function chatCtx(tenantId: string, chat: Chat): IsolationContext {
  return ctx(tenantId, chat.agentId, chat.platform, chat.chatStreamId);
}

let seq = 0;
/** A row id of its own for each test, so tests never see each other's rows by accident. */
function uid(label: string): string {
  seq += 1;
  return `${label}-${seq}`;
}

// ---------------------------------------------------------------------------------------------
// One row per T+A+C+P table, written with raw SQL that names tenant_id explicitly
// ---------------------------------------------------------------------------------------------

/** Where a row belongs: agent-wide (no platform), platform-wide (no chat) or in one chat. */
interface RowSpec {
  tenantId: string;
  /** Marker stored in the table's key (or an otherwise unique) column. */
  tag: string;
  agentId: string;
  platform?: string;
  chatStreamId?: string;
}

interface TableSpec {
  /** Column holding the tag. */
  marker: string;
  /** Narrowest dimension the table needs: `chat` rows need a stream, `platform` rows a platform. */
  needs: 'agent' | 'platform' | 'chat';
  hasChatColumn: boolean;
  /** SET clause for the overwrite attempts. */
  overwrite: string;
  insert(db: Queryable, r: RowSpec): Promise<unknown>;
}

const TABLES = {
  messages: {
    marker: 'message_id',
    needs: 'chat',
    hasChatColumn: true,
    overwrite: `content = 'overwritten'`,
    insert: (db, r) =>
      db.query(
        `INSERT INTO messages (tenant_id, message_id, agent_id, platform, chat_stream_id, direction, content)
         VALUES ($1, $2, $3, $4, $5, 'in', $6)`,
        [r.tenantId, r.tag, r.agentId, r.platform, r.chatStreamId, `message ${r.tag}`],
      ),
  },
  memory_chest: {
    marker: 'memory_id',
    needs: 'agent',
    hasChatColumn: true,
    overwrite: `content = 'overwritten'`,
    insert: (db, r) =>
      db.query(
        `INSERT INTO memory_chest (tenant_id, memory_id, agent_id, platform, chat_stream_id, scope, content)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [
          r.tenantId,
          r.tag,
          r.agentId,
          r.platform ?? null,
          r.chatStreamId ?? null,
          r.chatStreamId ? 'chat' : r.platform ? 'platform' : 'agent',
          `memory ${r.tag}`,
        ],
      ),
  },
  llm_usage: {
    marker: 'model_name',
    needs: 'agent',
    hasChatColumn: true,
    overwrite: `error = 'overwritten'`,
    insert: (db, r) =>
      db.query(
        `INSERT INTO llm_usage (tenant_id, model_name, agent_id, platform, chat_stream_id, provider, request_type,
                                prompt_tokens, completion_tokens, total_tokens, cost, status)
         VALUES ($1, $2, $3, $4, $5, 'test', 'reply', 10, 5, 15, 0.01, 'success')`,
        [r.tenantId, r.tag, r.agentId, r.platform ?? null, r.chatStreamId ?? null],
      ),
  },
  action_records: {
    marker: 'action_id',
    needs: 'chat',
    hasChatColumn: true,
    overwrite: `reasoning = 'overwritten'`,
    insert: (db, r) =>
      db.query(
        `INSERT INTO action_records (tenant_id, action_id, agent_id, platform, chat_stream_id, action_name)
         VALUES ($1, $2, $3, $4, $5, 'reply')`,
        [r.tenantId, r.tag, r.agentId, r.platform, r.chatStreamId],
      ),
  },
  expression: {
    marker: 'expression_id',
    needs: 'agent',
    hasChatColumn: true,
    overwrite: `style = 'overwritten'`,
    insert: (db, r) =>
      db.query(
        `INSERT INTO expression (tenant_id, expression_id, agent_id, platform, chat_stream_id, situation, style)
         VALUES ($1, $2, $3, $4, $5, 'greeting', 'casual')`,
        [r.tenantId, r.tag, r.agentId, r.platform ?? null, r.chatStreamId ?? null],
      ),
  },
  jargon: {
    marker: 'jargon_id',
    needs: 'agent',
    hasChatColumn: true,
    overwrite: `meaning = 'overwritten'`,
    insert: (db, r) =>
      db.query(
        `INSERT INTO jargon (tenant_id, jargon_id, agent_id, platform, chat_stream_id, term, meaning)
         VALUES ($1, $2, $3, $4, $5, $2, 'a term')`,
        [r.tenantId, r.tag, r.agentId, r.platform ?? null, r.chatStreamId ?? null],
      ),
  },
  person_info: {
    marker: 'person_id',
    needs: 'platform',
    hasChatColumn: false,
    overwrite: `nickname = 'overwritten'`,
    insert: (db, r) =>
      db.query(
        `INSERT INTO person_info (tenant_id, person_id, agent_id, platform, user_id, nickname)
         VALUES ($1, $2, $3, $4, $2, 'someone')`,
        [r.tenantId, r.tag, r.agentId, r.platform],
      ),
  },
  group_info: {
    marker: 'group_id',
    needs: 'platform',
    hasChatColumn: false,
    overwrite: `group_name = 'overwritten'`,
    insert: (db, r) =>
      db.query(
        `INSERT INTO group_info (tenant_id, group_id, agent_id, platform, group_name)
         VALUES ($1, $2, $3, $4, 'a group')`,
        [r.tenantId, r.tag, r.agentId, r.platform],
      ),
  },
} satisfies Record<string, TableSpec>;

type Table = keyof typeof TABLES;
const ALL_TABLES = Object.keys(TABLES) as Table[];
const CHAT_TABLES = ALL_TABLES.filter((name) => TABLES[name].hasChatColumn);

/** The tables a row of this shape can go to (a message needs a chat stream, a person a platform). */
function tablesFor(r: RowSpec): Table[] {
  return ALL_TABLES.filter((name) => {
    const needs: TableSpec['needs'] = TABLES[name].needs;
    if (needs === 'chat') return r.chatStreamId !== undefined;
    if (needs === 'platform') return r.platform !== undefined;
    return true;
  });
}

function rowIn(tenantId: string, chat: Chat, tag: string): RowSpec {
  return { tenantId, tag, ...chat };
}

function allEqual(tables: readonly Table[], n: number): Record<string, number> {
  return Object.fromEntries(tables.map((name) => [name, n]));
}

function q(identifier: string): string {
  return pg.escapeIdentifier(identifier);
}

/** Writes the row into every table it fits, in one unit of work of `context`; returns those tables. */
async function seed(context: IsolationContext, r: RowSpec): Promise<Table[]> {
  const tables = tablesFor(r);
  await t.db.withTenant(context, async (db) => {
    for (const name of tables) await TABLES[name].insert(db, r);
  });
  return tables;
}

/** Per table, how many rows with this tag `context` sees under `WHERE tenant_id = $tenant` (+ one more column). */
async function countVisible(
  context: IsolationContext,
  tables: readonly Table[],
  tenantId: string,
  tag: string,
  extra?: { column: string; value: string },
): Promise<Record<string, number>> {
  return t.db.withTenant(context, async (db) => {
    const counts: Record<string, number> = {};
    for (const name of tables) {
      const filter = extra ? ` AND ${q(extra.column)} = $3` : '';
      const params = extra ? [tenantId, tag, extra.value] : [tenantId, tag];
      const { rows } = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${q(name)} WHERE tenant_id = $1 AND ${q(TABLES[name].marker)} = $2${filter}`,
        params,
      );
      counts[name] = rows[0]!.n;
    }
    return counts;
  });
}

/** Per table, the rows with this tag as they are really stored (owner connection). */
async function stored(tables: readonly Table[], tenantId: string, tag: string) {
  const snapshot: Record<string, pg.QueryResultRow[]> = {};
  for (const name of tables) {
    const { rows } = await t.admin(
      `SELECT * FROM ${q(name)} WHERE tenant_id = $1 AND ${q(TABLES[name].marker)} = $2`,
      [tenantId, tag],
    );
    snapshot[name] = rows;
  }
  return snapshot;
}

function rowCounts(snapshot: Record<string, pg.QueryResultRow[]>): Record<string, number> {
  return Object.fromEntries(Object.entries(snapshot).map(([name, rows]) => [name, rows.length]));
}

/** Per table, rows affected by an UPDATE of the tagged row of `tenantId`, run in `context`. */
async function tryUpdate(
  context: IsolationContext,
  tables: readonly Table[],
  tenantId: string,
  tag: string,
): Promise<Record<string, number | null>> {
  return t.db.withTenant(context, async (db) => {
    const affected: Record<string, number | null> = {};
    for (const name of tables) {
      const result = await db.query(
        `UPDATE ${q(name)} SET ${TABLES[name].overwrite} WHERE tenant_id = $1 AND ${q(TABLES[name].marker)} = $2`,
        [tenantId, tag],
      );
      affected[name] = result.rowCount;
    }
    return affected;
  });
}

/** Per table, rows affected by a DELETE of the tagged row of `tenantId`, run in `context`. */
async function tryDelete(
  context: IsolationContext,
  tables: readonly Table[],
  tenantId: string,
  tag: string,
): Promise<Record<string, number | null>> {
  return t.db.withTenant(context, async (db) => {
    const affected: Record<string, number | null> = {};
    for (const name of tables) {
      const result = await db.query(
        `DELETE FROM ${q(name)} WHERE tenant_id = $1 AND ${q(TABLES[name].marker)} = $2`,
        [tenantId, tag],
      );
      affected[name] = result.rowCount;
    }
    return affected;
  });
}

/** Tries to insert the row into each table in a unit of work of its own; returns how each attempt ended. */
async function tryInsertEach(
  context: IsolationContext,
  tables: readonly Table[],
  r: RowSpec,
): Promise<Record<string, string>> {
  const outcome: Record<string, string> = {};
  for (const name of tables) {
    try {
      await t.db.withTenant(context, (db) => TABLES[name].insert(db, r));
      outcome[name] = 'inserted';
    } catch (err) {
      outcome[name] = err instanceof Error ? err.constructor.name : String(err);
    }
  }
  return outcome;
}

function allViolations(tables: readonly Table[]): Record<string, string> {
  return Object.fromEntries(tables.map((name) => [name, IsolationViolationError.name]));
}

async function ownerCount(sql: string, params: unknown[]): Promise<number> {
  const { rows } = await t.admin<{ n: number }>(`SELECT count(*)::int AS n FROM (${sql}) AS x`, params);
  return rows[0]!.n;
}

beforeAll(async () => {
  t = await createTestDatabase();
  for (const tenantId of [A, B]) {
    await t.db.withPlatform((db) => createTenant(db, { tenantId, name: `Tenant ${tenantId}` }));
    await t.db.withTenant(ctx(tenantId), async (db) => {
      await createAgent(db, { agentId: 'bot1', name: 'Bot one' });
      await createAgent(db, { agentId: 'bot2', name: 'Bot two' });
      if (tenantId === A) await createAgent(db, { agentId: A_ONLY_AGENT, name: 'Only in A' });
      for (const chat of tenantId === A ? [...CHATS, A_ONLY_CHAT] : CHATS) await createChatStream(db, chat);
    });
  }
});
afterAll(async () => {
  await t.close();
});

describe('tenant isolation', () => {
  it("returns 0 rows when tenant B reads A's rows with an explicit WHERE tenant_id = A, in every table", async () => {
    const tag = uid('t-read');
    const tables = await seed(chatCtx(A, QQ1), rowIn(A, QQ1, tag));
    expect(tables).toEqual(ALL_TABLES);

    // A sees them, so the query below would find them if RLS let it.
    expect(await countVisible(ctx(A), tables, A, tag)).toEqual(allEqual(tables, 1));
    expect(await countVisible(ctx(B), tables, A, tag)).toEqual(allEqual(tables, 0));
    // Same agent, platform and chat ids in B change nothing.
    expect(await countVisible(chatCtx(B, QQ1), tables, A, tag)).toEqual(allEqual(tables, 0));

    const platformTables = await t.db.withTenant(ctx(B), async (db) => {
      const streams = await db.query('SELECT * FROM chat_streams WHERE tenant_id = $1', [A]);
      const agents = await db.query('SELECT * FROM agents WHERE tenant_id = $1', [A]);
      return { chat_streams: streams.rows, agents: agents.rows };
    });
    expect(platformTables).toEqual({ chat_streams: [], agents: [] });
  });

  it('shows tenant B only its own rows when it queries every table with no tenant filter at all', async () => {
    const tagA = uid('t-nofilter-a');
    const tagB = uid('t-nofilter-b');
    await seed(chatCtx(A, QQ1), rowIn(A, QQ1, tagA));
    await seed(chatCtx(B, QQ1), rowIn(B, QQ1, tagB));

    const seen = await t.db.withTenant(ctx(B), async (db) => {
      const result: Record<string, { tenants: string[]; tags: string[] }> = {};
      for (const name of [...ALL_TABLES, 'chat_streams', 'agents']) {
        const marker = name in TABLES ? TABLES[name as Table].marker : 'tenant_id';
        const { rows } = await db.query<{ tenant_id: string; tag: string }>(
          `SELECT tenant_id, ${q(marker)} AS tag FROM ${q(name)}`,
        );
        result[name] = {
          tenants: [...new Set(rows.map((r) => r.tenant_id))],
          tags: rows.map((r) => r.tag).filter((tag) => tag === tagA || tag === tagB),
        };
      }
      return result;
    });
    for (const name of ALL_TABLES) expect(seen[name]).toEqual({ tenants: [B], tags: [tagB] });
    expect(seen.chat_streams?.tenants).toEqual([B]);
    expect(seen.agents?.tenants).toEqual([B]);
    // The owner sees both tenants' rows: the filtering above is RLS, not missing data.
    expect(await ownerCount('SELECT 1 FROM messages WHERE message_id = ANY($1)', [[tagA, tagB]])).toBe(2);
  });

  it("affects 0 rows when tenant B UPDATEs A's rows, and leaves A's rows intact", async () => {
    const tag = uid('t-update');
    const tables = await seed(chatCtx(A, QQ1), rowIn(A, QQ1, tag));
    const before = await stored(tables, A, tag);
    expect(rowCounts(before)).toEqual(allEqual(tables, 1));

    expect(await tryUpdate(ctx(B), tables, A, tag)).toEqual(allEqual(tables, 0));
    const viaRepositories = await t.db.withTenant(ctx(B), async (db) => ({
      outcome: await setMessageOutcome(db, tag, { status: 'replied', response: 'overwritten' }),
      memory: await updateMemoryContent(db, tag, 'overwritten'),
    }));
    expect(viaRepositories).toEqual({ outcome: false, memory: false });

    expect(await stored(tables, A, tag)).toEqual(before);
  });

  it("affects 0 rows when tenant B DELETEs A's rows, and leaves A's rows intact", async () => {
    const tag = uid('t-delete');
    const tables = await seed(chatCtx(A, QQ1), rowIn(A, QQ1, tag));
    const before = await stored(tables, A, tag);
    expect(rowCounts(before)).toEqual(allEqual(tables, 1));

    expect(await tryDelete(ctx(B), tables, A, tag)).toEqual(allEqual(tables, 0));
    const viaRepositories = await t.db.withTenant(ctx(B), async (db) => ({
      memory: await deleteMemory(db, tag),
      chatStream: await deleteChatStream(db, A_ONLY_CHAT.chatStreamId),
      agent: await deleteAgent(db, A_ONLY_AGENT),
      rawChatStreams: (await db.query('DELETE FROM chat_streams WHERE tenant_id = $1', [A])).rowCount,
      rawAgents: (await db.query('DELETE FROM agents WHERE tenant_id = $1', [A])).rowCount,
    }));
    expect(viaRepositories).toEqual({
      memory: false,
      chatStream: false,
      agent: false,
      rawChatStreams: 0,
      rawAgents: 0,
    });

    expect(await stored(tables, A, tag)).toEqual(before);
    expect(await ownerCount('SELECT 1 FROM chat_streams WHERE tenant_id = $1', [A])).toBe(CHATS.length + 1);
    expect(await ownerCount('SELECT 1 FROM agents WHERE tenant_id = $1', [A])).toBe(4);
  });

  it('rejects with IsolationViolationError when tenant B inserts rows with tenant_id A, and stores none', async () => {
    const tag = uid('t-forge');
    const forged = rowIn(A, QQ1, tag);
    expect(await tryInsertEach(ctx(B), ALL_TABLES, forged)).toEqual(allViolations(ALL_TABLES));
    // Also at B's narrowest level, with agent, platform and chat ids that exist in A.
    expect(await tryInsertEach(chatCtx(B, QQ1), ALL_TABLES, forged)).toEqual(allViolations(ALL_TABLES));

    await expect(
      t.db.withTenant(ctx(B), (db) =>
        db.query(`INSERT INTO agents (tenant_id, agent_id, name) VALUES ($1, $2, 'forged')`, [A, tag]),
      ),
    ).rejects.toBeInstanceOf(IsolationViolationError);
    await expect(
      t.db.withTenant(ctx(B), (db) =>
        db.query(
          `INSERT INTO chat_streams (tenant_id, chat_stream_id, agent_id, platform) VALUES ($1, $2, 'bot1', 'qq')`,
          [A, tag],
        ),
      ),
    ).rejects.toBeInstanceOf(IsolationViolationError);

    expect(rowCounts(await stored(ALL_TABLES, A, tag))).toEqual(allEqual(ALL_TABLES, 0));
    expect(await ownerCount('SELECT 1 FROM agents WHERE agent_id = $1', [tag])).toBe(0);
    expect(await ownerCount('SELECT 1 FROM chat_streams WHERE chat_stream_id = $1', [tag])).toBe(0);
  });

  it('rejects with IsolationViolationError when tenant B moves its own row into tenant A', async () => {
    const tag = uid('t-move');
    const tables = (await seed(chatCtx(B, QQ1), rowIn(B, QQ1, tag))).filter(
      (name) => name === 'memory_chest' || name === 'llm_usage' || name === 'jargon',
    );
    const before = await stored(tables, B, tag);
    expect(rowCounts(before)).toEqual(allEqual(tables, 1));

    for (const name of tables) {
      await expect(
        t.db.withTenant(ctx(B), (db) =>
          db.query(
            `UPDATE ${q(name)} SET tenant_id = $1 WHERE tenant_id = $2 AND ${q(TABLES[name].marker)} = $3`,
            [A, B, tag],
          ),
        ),
      ).rejects.toBeInstanceOf(IsolationViolationError);
    }
    expect(await stored(tables, B, tag)).toEqual(before);
    expect(rowCounts(await stored(tables, A, tag))).toEqual(allEqual(tables, 0));
  });

  it('keeps the same message_id and memory_id apart in two tenants: no collision, each sees only its own', async () => {
    const messageId = uid('shared-msg');
    const memoryId = uid('shared-mem');
    for (const tenantId of [A, B]) {
      const inserted = await t.db.withTenant(chatCtx(tenantId, QQ1), async (db) => {
        const ids = await insertMessages(db, [
          { messageId, ...QQ1, direction: 'in', content: `hello from ${tenantId}` },
        ]);
        await storeMemory(db, { memoryId, ...QQ1, scope: 'chat', content: `secret of ${tenantId}` });
        return ids;
      });
      // Both inserts are new rows: B's id did not hit A's row (ON CONFLICT DO NOTHING would return []).
      expect(inserted).toEqual([messageId]);
    }

    for (const tenantId of [A, B]) {
      const seen = await t.db.withTenant(chatCtx(tenantId, QQ1), async (db) => ({
        message: (await getMessage(db, messageId))?.content,
        memory: (await getMemory(db, memoryId))?.content,
        history: (await recentMessages(db, QQ1.chatStreamId, 100))
          .filter((m) => m.message_id === messageId)
          .map((m) => [m.tenant_id, m.content]),
        all: (await db.query('SELECT tenant_id FROM memory_chest WHERE memory_id = $1', [memoryId])).rows,
      }));
      expect(seen).toEqual({
        message: `hello from ${tenantId}`,
        memory: `secret of ${tenantId}`,
        history: [[tenantId, `hello from ${tenantId}`]],
        all: [{ tenant_id: tenantId }],
      });
    }
    const owner = await t.admin(
      'SELECT tenant_id, content FROM messages WHERE message_id = $1 ORDER BY tenant_id',
      [messageId],
    );
    expect(owner.rows).toEqual([
      { tenant_id: A, content: `hello from ${A}` },
      { tenant_id: B, content: `hello from ${B}` },
    ]);
  });

  it("finds nothing of A's through B's repository reads, counts and usage totals", async () => {
    const tag = uid('t-repo');
    await seed(chatCtx(A, A_ONLY_CHAT), rowIn(A, A_ONLY_CHAT, tag));
    const since = new Date(Date.now() - 3_600_000);

    const [inA, inB] = await Promise.all(
      [A, B].map((tenantId) =>
        t.db.withTenant(ctx(tenantId), async (db) => ({
          message: (await getMessage(db, tag))?.tenant_id,
          memory: (await getMemory(db, tag))?.tenant_id,
          chatStream: (await getChatStream(db, A_ONLY_CHAT.chatStreamId))?.tenant_id,
          agent: (await getAgent(db, A_ONLY_AGENT))?.tenant_id,
          agents: (await listAgents(db)).map((a) => a.agent_id),
          history: (await recentMessages(db, A_ONLY_CHAT.chatStreamId, 10)).length,
          memories: (await listMemories(db, { agentId: A_ONLY_AGENT })).length,
          messages: await countMessages(db),
          chatStreams: await countChatStreams(db),
          usage: await usageSince(db, since),
        })),
      ),
    );
    expect(inA).toMatchObject({
      message: A,
      memory: A,
      chatStream: A,
      agent: A,
      agents: [A_ONLY_AGENT, 'bot1', 'bot2', 'default'],
      history: 1,
      memories: 1,
    });
    expect(inB).toMatchObject({
      message: undefined,
      memory: undefined,
      chatStream: undefined,
      agent: undefined,
      agents: ['bot1', 'bot2', 'default'],
      history: 0,
      memories: 0,
    });
    // B's totals are exactly B's stored rows.
    const ownerB = await t.admin<{ messages: number; streams: number; requests: number; tokens: number }>(
      `SELECT (SELECT count(*)::int FROM messages WHERE tenant_id = $1) AS messages,
              (SELECT count(*)::int FROM chat_streams WHERE tenant_id = $1) AS streams,
              (SELECT count(*)::int FROM llm_usage WHERE tenant_id = $1 AND created_at >= $2) AS requests,
              (SELECT coalesce(sum(total_tokens), 0)::int FROM llm_usage WHERE tenant_id = $1 AND created_at >= $2) AS tokens`,
      [B, since],
    );
    const expected = ownerB.rows[0]!;
    expect(inB?.messages).toBe(expected.messages);
    expect(inB?.chatStreams).toBe(expected.streams);
    expect(inB?.usage).toMatchObject({ requests: expected.requests, tokens: expected.tokens });
    expect(inA!.usage.requests).toBeGreaterThan(0);
  });
});

describe('agent isolation', () => {
  const bot1 = ctx(A, 'bot1');
  const bot2 = ctx(A, 'bot2');

  it("returns 0 rows when agent bot2 reads bot1's rows with an explicit WHERE agent_id = bot1", async () => {
    const tag = uid('a-read');
    const tables = await seed(chatCtx(A, QQ1), rowIn(A, QQ1, tag));
    const bot1Filter = { column: 'agent_id', value: 'bot1' };

    expect(await countVisible(bot1, tables, A, tag, bot1Filter)).toEqual(allEqual(tables, 1));
    expect(await countVisible(bot2, tables, A, tag, bot1Filter)).toEqual(allEqual(tables, 0));
    expect(await countVisible(chatCtx(A, BOT2_QQ), tables, A, tag)).toEqual(allEqual(tables, 0));

    const seen = await t.db.withTenant(bot2, async (db) => ({
      message: await getMessage(db, tag),
      memory: await getMemory(db, tag),
      memories: await listMemories(db, { agentId: 'bot1' }),
      history: await recentMessages(db, QQ1.chatStreamId, 10),
    }));
    expect(seen).toEqual({ message: undefined, memory: undefined, memories: [], history: [] });
  });

  it('shows an agent only its own agent row and its own chat streams', async () => {
    const seen = await t.db.withTenant(bot2, async (db) => ({
      agents: (await listAgents(db)).map((a) => a.agent_id),
      bot1: await getAgent(db, 'bot1'),
      streams: (
        await db.query<{ id: string }>(
          'SELECT chat_stream_id AS id FROM chat_streams WHERE tenant_id = $1 ORDER BY 1',
          [A],
        )
      ).rows.map((r) => r.id),
      qq1: await getChatStream(db, QQ1.chatStreamId),
    }));
    expect(seen).toEqual({
      agents: ['bot2'],
      bot1: undefined,
      streams: [BOT2_QQ.chatStreamId],
      qq1: undefined,
    });
    const tenantWide = await t.db.withTenant(ctx(A), async (db) => (await listAgents(db)).length);
    expect(tenantWide).toBe(4);
  });

  it("affects 0 rows when agent bot2 UPDATEs or DELETEs bot1's rows, and leaves them intact", async () => {
    const tag = uid('a-write');
    const tables = await seed(chatCtx(A, QQ1), rowIn(A, QQ1, tag));
    const before = await stored(tables, A, tag);
    expect(rowCounts(before)).toEqual(allEqual(tables, 1));

    expect(await tryUpdate(bot2, tables, A, tag)).toEqual(allEqual(tables, 0));
    expect(await tryDelete(bot2, tables, A, tag)).toEqual(allEqual(tables, 0));
    const viaRepositories = await t.db.withTenant(bot2, async (db) => ({
      outcome: await setMessageOutcome(db, tag, { status: 'failed', error: 'overwritten' }),
      memoryUpdate: await updateMemoryContent(db, tag, 'overwritten'),
      memoryDelete: await deleteMemory(db, tag),
      chatStream: await deleteChatStream(db, QQ1.chatStreamId),
      agent: await deleteAgent(db, 'bot1'),
    }));
    expect(viaRepositories).toEqual({
      outcome: false,
      memoryUpdate: false,
      memoryDelete: false,
      chatStream: false,
      agent: false,
    });

    expect(await stored(tables, A, tag)).toEqual(before);
    expect(await ownerCount(`SELECT 1 FROM agents WHERE tenant_id = $1 AND agent_id = 'bot1'`, [A])).toBe(1);
  });

  it('rejects with IsolationViolationError when agent bot2 inserts rows for bot1, and stores none', async () => {
    const tag = uid('a-forge');
    expect(await tryInsertEach(bot2, ALL_TABLES, rowIn(A, QQ1, tag))).toEqual(allViolations(ALL_TABLES));
    expect(
      await tryInsertEach(chatCtx(A, BOT2_QQ), ['memory_chest', 'llm_usage'], {
        tenantId: A,
        tag,
        agentId: 'bot1',
      }),
    ).toEqual(allViolations(['memory_chest', 'llm_usage']));
    await expect(
      t.db.withTenant(bot2, (db) =>
        createChatStream(db, { chatStreamId: tag, agentId: 'bot1', platform: 'qq' }),
      ),
    ).rejects.toBeInstanceOf(IsolationViolationError);
    await expect(
      t.db.withTenant(bot2, (db) => createAgent(db, { agentId: tag, name: 'another agent' })),
    ).rejects.toBeInstanceOf(IsolationViolationError);

    expect(rowCounts(await stored(ALL_TABLES, A, tag))).toEqual(allEqual(ALL_TABLES, 0));
    expect(await ownerCount('SELECT 1 FROM chat_streams WHERE chat_stream_id = $1', [tag])).toBe(0);
    expect(await ownerCount('SELECT 1 FROM agents WHERE agent_id = $1', [tag])).toBe(0);
  });

  it('rejects with IsolationViolationError when agent bot2 reassigns its own row to bot1', async () => {
    const tag = uid('a-move');
    await seed(bot2, { tenantId: A, tag, agentId: 'bot2' });
    const tables: Table[] = ['memory_chest', 'llm_usage', 'expression', 'jargon'];
    const before = await stored(tables, A, tag);
    expect(rowCounts(before)).toEqual(allEqual(tables, 1));

    for (const name of tables) {
      await expect(
        t.db.withTenant(bot2, (db) =>
          db.query(
            `UPDATE ${q(name)} SET agent_id = 'bot1' WHERE tenant_id = $1 AND ${q(TABLES[name].marker)} = $2`,
            [A, tag],
          ),
        ),
      ).rejects.toBeInstanceOf(IsolationViolationError);
    }
    expect(await stored(tables, A, tag)).toEqual(before);
  });

  it("lets a tenant-level context see every agent's rows of its tenant, and none of another tenant's", async () => {
    const tag1 = uid('a-all-bot1');
    const tag2 = uid('a-all-bot2');
    const tagB = uid('a-all-b');
    const tables = await seed(chatCtx(A, QQ1), rowIn(A, QQ1, tag1));
    await seed(chatCtx(A, BOT2_QQ), rowIn(A, BOT2_QQ, tag2));
    await seed(chatCtx(B, QQ1), rowIn(B, QQ1, tagB));

    expect(await countVisible(ctx(A), tables, A, tag1)).toEqual(allEqual(tables, 1));
    expect(await countVisible(ctx(A), tables, A, tag2)).toEqual(allEqual(tables, 1));
    expect(await countVisible(ctx(A), tables, B, tagB)).toEqual(allEqual(tables, 0));

    const since = new Date(Date.now() - 3_600_000);
    const usage = await Promise.all(
      [ctx(A), bot1, bot2].map((c) =>
        t.db.withTenant(c, async (db) => ({
          agents: (
            await db.query<{ agent_id: string }>(
              'SELECT DISTINCT agent_id FROM llm_usage WHERE tenant_id = $1 AND model_name = ANY($2) ORDER BY 1',
              [A, [tag1, tag2, tagB]],
            )
          ).rows.map((r) => r.agent_id),
          totals: await usageSince(db, since),
        })),
      ),
    );
    expect(usage.map((u) => u.agents)).toEqual([['bot1', 'bot2'], ['bot1'], ['bot2']]);
    // The tenant's total is the sum of its agents' totals.
    const [all, one, two] = usage.map((u) => u.totals.requests);
    expect(one).toBeGreaterThan(0);
    expect(two).toBeGreaterThan(0);
    expect(all).toBe(
      one! +
        two! +
        (await ownerCount(
          `SELECT 1 FROM llm_usage WHERE tenant_id = $1 AND agent_id NOT IN ('bot1', 'bot2') AND created_at >= $2`,
          [A, since],
        )),
    );
  });
});

describe('chat stream isolation', () => {
  const qq1 = chatCtx(A, QQ1);
  const qq2 = chatCtx(A, QQ2);

  it("returns 0 rows when chat qq-group-2 reads qq-group-1's rows, even by id or explicit chat_stream_id", async () => {
    const tag = uid('c-read');
    await seed(qq1, rowIn(A, QQ1, tag));
    const inChat1 = { column: 'chat_stream_id', value: QQ1.chatStreamId };

    expect(await countVisible(qq1, CHAT_TABLES, A, tag, inChat1)).toEqual(allEqual(CHAT_TABLES, 1));
    expect(await countVisible(qq2, CHAT_TABLES, A, tag, inChat1)).toEqual(allEqual(CHAT_TABLES, 0));
    const seen = await t.db.withTenant(qq2, async (db) => ({
      message: await getMessage(db, tag),
      memory: await getMemory(db, tag),
      history: await recentMessages(db, QQ1.chatStreamId, 10),
    }));
    expect(seen).toEqual({ message: undefined, memory: undefined, history: [] });
    // Tables without a chat column (people, groups) are per agent and platform, shared by its chats.
    expect(await countVisible(qq2, ['person_info', 'group_info'], A, tag)).toEqual({
      person_info: 1,
      group_info: 1,
    });
  });

  it("shows agent-level memory inside every chat of that agent, but never another chat's memories", async () => {
    const tag = uid('c-mem');
    const ids = {
      agent: `${tag}-agent`,
      qq: `${tag}-platform-qq`,
      chat1: `${tag}-chat-1`,
      chat2: `${tag}-chat-2`,
      discord: `${tag}-chat-dc`,
      bot2: `${tag}-bot2`,
    };
    await t.db.withTenant(bot1Ctx(), async (db) => {
      await storeMemory(db, { memoryId: ids.agent, agentId: 'bot1', scope: 'agent', content: 'agent-wide' });
    });
    await t.db.withTenant(ctx(A, 'bot1', 'qq'), async (db) => {
      await storeMemory(db, {
        memoryId: ids.qq,
        agentId: 'bot1',
        scope: 'platform',
        platform: 'qq',
        content: 'qq-wide',
      });
    });
    for (const [memoryId, chat] of [
      [ids.chat1, QQ1],
      [ids.chat2, QQ2],
      [ids.discord, DC1],
      [ids.bot2, BOT2_QQ],
    ] as const) {
      await t.db.withTenant(chatCtx(A, chat), (db) =>
        storeMemory(db, { memoryId, ...chat, scope: 'chat', content: `in ${chat.chatStreamId}` }),
      );
    }

    const visibleIn = async (c: IsolationContext) =>
      t.db.withTenant(c, async (db) =>
        (await listMemories(db, { limit: 1000 }))
          .map((m) => m.memory_id)
          .filter((id) => id.startsWith(`${tag}-`))
          .sort(),
      );
    expect(await visibleIn(qq1)).toEqual([ids.agent, ids.chat1, ids.qq].sort());
    expect(await visibleIn(qq2)).toEqual([ids.agent, ids.chat2, ids.qq].sort());
    expect(await visibleIn(chatCtx(A, DC1))).toEqual([ids.agent, ids.discord].sort());
    expect(await visibleIn(chatCtx(A, BOT2_QQ))).toEqual([ids.bot2]);
    // The agent level itself sees all of its own.
    expect(await visibleIn(bot1Ctx())).toEqual([ids.agent, ids.chat1, ids.chat2, ids.discord, ids.qq].sort());
  });

  it("affects 0 rows when chat qq-group-2 UPDATEs or DELETEs qq-group-1's rows, and leaves them intact", async () => {
    const tag = uid('c-write');
    await seed(qq1, rowIn(A, QQ1, tag));
    const before = await stored(CHAT_TABLES, A, tag);
    expect(rowCounts(before)).toEqual(allEqual(CHAT_TABLES, 1));

    expect(await tryUpdate(qq2, CHAT_TABLES, A, tag)).toEqual(allEqual(CHAT_TABLES, 0));
    expect(await tryDelete(qq2, CHAT_TABLES, A, tag)).toEqual(allEqual(CHAT_TABLES, 0));
    const viaRepositories = await t.db.withTenant(qq2, async (db) => ({
      outcome: await setMessageOutcome(db, tag, { status: 'replied', response: 'overwritten' }),
      memoryUpdate: await updateMemoryContent(db, tag, 'overwritten'),
      memoryDelete: await deleteMemory(db, tag),
      chatStream: await deleteChatStream(db, QQ1.chatStreamId),
    }));
    expect(viaRepositories).toEqual({
      outcome: false,
      memoryUpdate: false,
      memoryDelete: false,
      chatStream: false,
    });

    expect(await stored(CHAT_TABLES, A, tag)).toEqual(before);
    expect(
      await ownerCount('SELECT 1 FROM chat_streams WHERE tenant_id = $1 AND chat_stream_id = $2', [
        A,
        QQ1.chatStreamId,
      ]),
    ).toBe(1);
  });

  it('rejects with IsolationViolationError when chat qq-group-2 writes rows into qq-group-1, and stores none', async () => {
    const tag = uid('c-forge');
    expect(await tryInsertEach(qq2, CHAT_TABLES, rowIn(A, QQ1, tag))).toEqual(allViolations(CHAT_TABLES));
    await seed(qq2, { tenantId: A, tag: `${tag}-own`, ...QQ2 });
    await expect(
      t.db.withTenant(qq2, (db) =>
        db.query(`UPDATE memory_chest SET chat_stream_id = $3 WHERE tenant_id = $1 AND memory_id = $2`, [
          A,
          `${tag}-own`,
          QQ1.chatStreamId,
        ]),
      ),
    ).rejects.toBeInstanceOf(IsolationViolationError);
    await expect(
      t.db.withTenant(qq2, (db) =>
        createChatStream(db, { chatStreamId: tag, agentId: 'bot1', platform: 'qq' }),
      ),
    ).rejects.toBeInstanceOf(IsolationViolationError);

    expect(rowCounts(await stored(CHAT_TABLES, A, tag))).toEqual(allEqual(CHAT_TABLES, 0));
    expect((await stored(['memory_chest'], A, `${tag}-own`)).memory_chest?.[0]).toMatchObject({
      chat_stream_id: QQ2.chatStreamId,
    });
    expect(await ownerCount('SELECT 1 FROM chat_streams WHERE chat_stream_id = $1', [tag])).toBe(0);
  });

  it('shows a chat context only its own chat stream row', async () => {
    const seen = await t.db.withTenant(qq2, async (db) => ({
      streams: (
        await db.query<{ id: string }>('SELECT chat_stream_id AS id FROM chat_streams WHERE tenant_id = $1', [
          A,
        ])
      ).rows.map((r) => r.id),
      count: await countChatStreams(db),
      qq1: await getChatStream(db, QQ1.chatStreamId),
      own: (await getChatStream(db, QQ2.chatStreamId))?.chat_stream_id,
    }));
    expect(seen).toEqual({ streams: [QQ2.chatStreamId], count: 1, qq1: undefined, own: QQ2.chatStreamId });
  });
});

describe('platform isolation', () => {
  const qq = ctx(A, 'bot1', 'qq');
  const discord = ctx(A, 'bot1', 'discord');

  it("returns 0 rows when a qq context reads discord rows with an explicit WHERE platform = 'discord'", async () => {
    const tag = uid('p-read');
    const tables = await seed(chatCtx(A, DC1), rowIn(A, DC1, tag));
    const onDiscord = { column: 'platform', value: 'discord' };

    expect(await countVisible(discord, tables, A, tag, onDiscord)).toEqual(allEqual(tables, 1));
    expect(await countVisible(qq, tables, A, tag, onDiscord)).toEqual(allEqual(tables, 0));
    expect(await countVisible(chatCtx(A, QQ1), tables, A, tag)).toEqual(allEqual(tables, 0));
    const streams = await t.db.withTenant(qq, async (db) => ({
      discord: (
        await db.query(`SELECT 1 FROM chat_streams WHERE tenant_id = $1 AND platform = 'discord'`, [A])
      ).rowCount,
      dc1: await getChatStream(db, DC1.chatStreamId),
    }));
    expect(streams).toEqual({ discord: 0, dc1: undefined });
  });

  it('hides discord rows from a qq context but keeps the agent-wide rows visible', async () => {
    const tag = uid('p-narrow');
    const agentWide = await seed(bot1Ctx(), { tenantId: A, tag: `${tag}-agent`, agentId: 'bot1' });
    expect(agentWide).toEqual(['memory_chest', 'llm_usage', 'expression', 'jargon']);
    const discordWide = await seed(discord, {
      tenantId: A,
      tag: `${tag}-dc`,
      agentId: 'bot1',
      platform: 'discord',
    });
    await seed(chatCtx(A, DC1), rowIn(A, DC1, `${tag}-dc-chat`));

    for (const c of [qq, chatCtx(A, QQ1)]) {
      expect(await countVisible(c, agentWide, A, `${tag}-agent`)).toEqual(allEqual(agentWide, 1));
      expect(await countVisible(c, discordWide, A, `${tag}-dc`)).toEqual(allEqual(discordWide, 0));
      expect(await countVisible(c, ALL_TABLES, A, `${tag}-dc-chat`)).toEqual(allEqual(ALL_TABLES, 0));
    }
    // The discord side sees both its own rows and the agent-wide ones.
    expect(await countVisible(discord, agentWide, A, `${tag}-agent`)).toEqual(allEqual(agentWide, 1));
    expect(await countVisible(discord, discordWide, A, `${tag}-dc`)).toEqual(allEqual(discordWide, 1));
  });

  it('lets a qq context see the rows of every qq chat of its agent, and a T+A context both platforms', async () => {
    const tag = uid('p-wide');
    const tables = await seed(chatCtx(A, QQ1), rowIn(A, QQ1, `${tag}-1`));
    await seed(chatCtx(A, QQ2), rowIn(A, QQ2, `${tag}-2`));
    await seed(chatCtx(A, DC1), rowIn(A, DC1, `${tag}-dc`));

    expect(await countVisible(qq, tables, A, `${tag}-1`)).toEqual(allEqual(tables, 1));
    expect(await countVisible(qq, tables, A, `${tag}-2`)).toEqual(allEqual(tables, 1));
    expect(await countVisible(qq, tables, A, `${tag}-dc`)).toEqual(allEqual(tables, 0));
    expect(await countVisible(bot1Ctx(), tables, A, `${tag}-dc`)).toEqual(allEqual(tables, 1));
    const streams = await t.db.withTenant(qq, async (db) =>
      (
        await db.query<{ id: string }>(
          'SELECT chat_stream_id AS id FROM chat_streams WHERE tenant_id = $1 ORDER BY 1',
          [A],
        )
      ).rows.map((r) => r.id),
    );
    expect(streams).toEqual([QQ1.chatStreamId, QQ2.chatStreamId].sort());
  });

  it('affects 0 rows when a qq context UPDATEs or DELETEs discord rows, and leaves them intact', async () => {
    const tag = uid('p-write');
    const tables = await seed(chatCtx(A, DC1), rowIn(A, DC1, tag));
    const before = await stored(tables, A, tag);
    expect(rowCounts(before)).toEqual(allEqual(tables, 1));

    expect(await tryUpdate(qq, tables, A, tag)).toEqual(allEqual(tables, 0));
    expect(await tryDelete(qq, tables, A, tag)).toEqual(allEqual(tables, 0));
    const viaRepositories = await t.db.withTenant(qq, async (db) => ({
      outcome: await setMessageOutcome(db, tag, { status: 'no_reply' }),
      memoryUpdate: await updateMemoryContent(db, tag, 'overwritten'),
      memoryDelete: await deleteMemory(db, tag),
      chatStream: await deleteChatStream(db, DC1.chatStreamId),
    }));
    expect(viaRepositories).toEqual({
      outcome: false,
      memoryUpdate: false,
      memoryDelete: false,
      chatStream: false,
    });

    expect(await stored(tables, A, tag)).toEqual(before);
    expect(
      await ownerCount('SELECT 1 FROM chat_streams WHERE tenant_id = $1 AND chat_stream_id = $2', [
        A,
        DC1.chatStreamId,
      ]),
    ).toBe(1);
  });

  it('rejects with IsolationViolationError when a qq context writes discord rows or moves its rows to discord', async () => {
    const tag = uid('p-forge');
    expect(await tryInsertEach(qq, ALL_TABLES, rowIn(A, DC1, tag))).toEqual(allViolations(ALL_TABLES));
    await expect(
      t.db.withTenant(qq, (db) =>
        createChatStream(db, { chatStreamId: tag, agentId: 'bot1', platform: 'discord' }),
      ),
    ).rejects.toBeInstanceOf(IsolationViolationError);
    await expect(
      t.db.withTenant(qq, (db) =>
        storeMemory(db, {
          memoryId: tag,
          agentId: 'bot1',
          scope: 'platform',
          platform: 'discord',
          content: 'x',
        }),
      ),
    ).rejects.toBeInstanceOf(IsolationViolationError);

    const own = `${tag}-own`;
    await seed(qq, { tenantId: A, tag: own, agentId: 'bot1', platform: 'qq' });
    await expect(
      t.db.withTenant(qq, (db) =>
        db.query(`UPDATE memory_chest SET platform = 'discord' WHERE tenant_id = $1 AND memory_id = $2`, [
          A,
          own,
        ]),
      ),
    ).rejects.toBeInstanceOf(IsolationViolationError);

    expect(rowCounts(await stored(ALL_TABLES, A, tag))).toEqual(allEqual(ALL_TABLES, 0));
    expect(await ownerCount('SELECT 1 FROM chat_streams WHERE chat_stream_id = $1', [tag])).toBe(0);
    expect((await stored(['memory_chest'], A, own)).memory_chest?.[0]).toMatchObject({ platform: 'qq' });
  });

  it("keeps another agent's qq rows hidden from a bot1 qq context: platform narrowing does not cross agents", async () => {
    const tag = uid('p-agent');
    const tables = await seed(chatCtx(A, BOT2_QQ), rowIn(A, BOT2_QQ, tag));
    const onQq = { column: 'platform', value: 'qq' };

    expect(await countVisible(ctx(A, 'bot2', 'qq'), tables, A, tag, onQq)).toEqual(allEqual(tables, 1));
    expect(await countVisible(qq, tables, A, tag, onQq)).toEqual(allEqual(tables, 0));
    expect(await countVisible(chatCtx(A, QQ1), tables, A, tag, onQq)).toEqual(allEqual(tables, 0));
    // Nor does a platform context of another tenant see it.
    expect(await countVisible(ctx(B, 'bot2', 'qq'), tables, A, tag, onQq)).toEqual(allEqual(tables, 0));
  });
});
