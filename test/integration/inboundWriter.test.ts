/**
 * Group commit of inbound messages: messages of one tenant arriving while a write is out are
 * written together in the next unit of work; a batch that fails is written again one message at
 * a time, so only the bad message's store fails.
 */
import type { NewMessage } from '../../src/db/repositories/messages';
import { InboundWriter } from '../../src/workers/inboundWriter';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

let t: TestDatabase;

beforeAll(async () => {
  t = await createTestDatabase();
  await t.admin(`INSERT INTO tenants (tenant_id, name) VALUES ('acme', 'Acme')`);
  await t.admin(`INSERT INTO agents (tenant_id, agent_id, name) VALUES ('acme', 'other', 'Other')`);
  // A stream that belongs to another agent: a message of `default` cannot be stored in it.
  await t.admin(
    `INSERT INTO chat_streams (tenant_id, chat_stream_id, agent_id, platform) VALUES ('acme', 'theirs', 'other', 'qq')`,
  );
});
afterAll(() => t.close());

function inbound(id: string, chatStreamId: string) {
  const message: NewMessage = {
    messageId: id,
    agentId: 'default',
    platform: 'qq',
    chatStreamId,
    direction: 'in',
    content: `message ${id}`,
  };
  return { stream: { chatStreamId, agentId: 'default', platform: 'qq' }, message };
}

async function stored(ids: string[]): Promise<string[]> {
  const { rows } = await t.admin<{ message_id: string }>(
    `SELECT message_id FROM messages WHERE tenant_id = 'acme' AND message_id = ANY($1) ORDER BY message_id`,
    [ids],
  );
  return rows.map((r) => r.message_id);
}

async function commits(): Promise<number> {
  const { rows } = await t.admin<{ n: string }>(
    `SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = current_database()`,
  );
  return Number(rows[0]!.n);
}

describe('InboundWriter', () => {
  it('writes the messages that arrive during a write together, creating their streams', async () => {
    const db = t.openDatabase({ poolMax: 2 });
    try {
      const writer = new InboundWriter(db);
      const ids = Array.from({ length: 30 }, (_, i) => `g${String(i).padStart(2, '0')}`);
      const before = await commits();
      await Promise.all(ids.map((id, i) => writer.store('acme', inbound(id, `s${i % 3}`))));
      expect(await stored(ids)).toEqual(ids);
      // The first message went alone, the other 29 arrived while it was out: two transactions
      // (statistics are per backend and reach pg_stat_database with some delay: at most a few).
      await new Promise((r) => setTimeout(r, 600));
      expect((await commits()) - before).toBeLessThan(10);
    } finally {
      await db.close();
    }
  });

  it('fails only the message that cannot be stored when its batch fails', async () => {
    const db = t.openDatabase({ poolMax: 2 });
    try {
      const writer = new InboundWriter(db);
      const first = writer.store('acme', inbound('h0', 'mine'));
      const results = await Promise.allSettled([
        writer.store('acme', inbound('h1', 'mine')),
        writer.store('acme', inbound('h2', 'theirs')),
        writer.store('acme', inbound('h3', 'mine')),
      ]);
      await first;
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(await stored(['h0', 'h1', 'h2', 'h3'])).toEqual(['h0', 'h1', 'h3']);
      // Idempotent on the message id: storing again changes nothing.
      await writer.store('acme', inbound('h1', 'mine'));
      expect(await stored(['h1'])).toEqual(['h1']);
    } finally {
      await db.close();
    }
  });
});
