import { MemoryAccessCounter } from '../../src/db/memoryAccessCounter';
import { insertMemoriesIfAbsent, type MemoryInsert } from '../../src/db/repositories/memoryExtraction';
import { createIsolationContext } from '../../src/domain/isolationContext';
import { createLogger } from '../../src/logger';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

let t: TestDatabase;

function memory(memoryId: string): MemoryInsert {
  return {
    memoryId,
    agentId: 'bot1',
    scope: 'agent',
    platform: null,
    chatStreamId: null,
    title: null,
    content: `memory ${memoryId}`,
    memoryType: 'fact',
    importance: 0.5,
    tags: [],
    metadata: {},
  };
}

beforeAll(async () => {
  t = await createTestDatabase();
  for (const tenantId of ['ta', 'tb']) {
    await t.admin(`INSERT INTO tenants (tenant_id, name) VALUES ($1, $1)`, [tenantId]);
    await t.admin(`INSERT INTO agents (tenant_id, agent_id, name) VALUES ($1, 'bot1', 'b')`, [tenantId]);
    await t.db.withTenant(createIsolationContext({ tenantId }), (db) =>
      insertMemoriesIfAbsent(db, [memory('m1'), memory('m2')]),
    );
  }
});
afterAll(async () => {
  await t.close();
});

async function accesses(): Promise<Record<string, number>> {
  const { rows } = await t.admin<{ tenant_id: string; memory_id: string; access_count: number }>(
    `SELECT tenant_id, memory_id, access_count FROM memory_chest ORDER BY 1, 2`,
  );
  return Object.fromEntries(rows.map((r) => [`${r.tenant_id}/${r.memory_id}`, r.access_count]));
}

describe('MemoryAccessCounter', () => {
  it('gathers the accesses of many searches into one write per tenant, written by drain at once', async () => {
    // A flush interval no test waits for: only drain writes here.
    const counter = new MemoryAccessCounter(t.db, createLogger({ level: 'silent' }), 3_600_000);
    counter.count('ta', ['m1', 'm2']);
    counter.count('ta', ['m1']);
    counter.count('tb', ['m2']);
    counter.count('ta', []);
    // Nothing is written while the accesses gather.
    await new Promise((resolve) => setImmediate(resolve));
    expect(await accesses()).toEqual({ 'ta/m1': 0, 'ta/m2': 0, 'tb/m1': 0, 'tb/m2': 0 });
    await counter.drain();
    expect(await accesses()).toEqual({ 'ta/m1': 2, 'ta/m2': 1, 'tb/m1': 0, 'tb/m2': 1 });
    // A later round starts afresh; drain with nothing pending returns.
    counter.count('tb', ['m2', 'm1']);
    await counter.drain();
    await counter.drain();
    expect(await accesses()).toEqual({ 'ta/m1': 2, 'ta/m2': 1, 'tb/m1': 1, 'tb/m2': 2 });
  });
});
