import { routeSql, type RoutingSchema } from '../support/sqlRouting';

const schema: RoutingSchema = {
  distributed: new Set(['tenants', 'agents', 'messages', 'chat_streams', 'memory_chest']),
  tableFunctions: new Set(['maihive_tenant_counts']),
};

async function route(sql: string) {
  const [first, ...rest] = await routeSql(sql, schema);
  expect(rest).toEqual([]);
  return first!;
}

describe('Citus routing of a statement', () => {
  it.each([
    ['SELECT * FROM agents WHERE tenant_id = $1 AND agent_id = $2'],
    ["SELECT * FROM agents a WHERE 'acme' = a.tenant_id"],
    ['SELECT * FROM agents WHERE tenant_id = $1::text'],
    [
      `SELECT m.* FROM messages m JOIN chat_streams s ON s.tenant_id = m.tenant_id AND s.chat_stream_id = m.chat_stream_id
       WHERE m.tenant_id = $1`,
    ],
    [
      `UPDATE messages SET status = 'processing' WHERE tenant_id = $1 AND message_id IN (
         SELECT message_id FROM messages WHERE tenant_id = $1 LIMIT 3)`,
    ],
    [
      `UPDATE messages m SET status = o.s FROM unnest($2::text[], $3::text[]) AS o(id, s) WHERE m.tenant_id = $1 AND m.message_id = o.id`,
    ],
    ['INSERT INTO agents (tenant_id, agent_id) VALUES ($1, $2), ($1, $3) ON CONFLICT DO NOTHING'],
    ['INSERT INTO messages (tenant_id, message_id) SELECT $1, id FROM unnest($2::text[]) AS id'],
    [
      `WITH w0 AS (INSERT INTO chat_streams (tenant_id, chat_stream_id) VALUES ($1, $2))
       INSERT INTO messages (tenant_id, message_id) VALUES ($1, $3)`,
    ],
    [
      `SELECT (SELECT count(*) FROM agents a WHERE a.tenant_id = t.tenant_id) FROM tenants t WHERE t.tenant_id = $1`,
    ],
    ['DELETE FROM tenants WHERE tenant_id = $1'],
  ])('routes to one shard: %s', async (sql) => {
    expect((await route(sql)).routing).toBe('single-tenant');
  });

  it.each([
    // Relies on RLS alone.
    ['SELECT * FROM agents WHERE agent_id = $1', ['agents']],
    // ANY over several tenants, OR, and a predicate on another table's column do not pin.
    ['SELECT * FROM agents WHERE tenant_id = ANY($1::text[])', ['agents']],
    ['SELECT * FROM agents WHERE tenant_id = $1 OR agent_id = $2', ['agents']],
    // A join not on tenant_id leaves the joined table unpinned.
    [
      'SELECT * FROM messages m JOIN chat_streams s ON s.chat_stream_id = m.chat_stream_id WHERE m.tenant_id = $1',
      ['chat_streams'],
    ],
    // The pin of a subquery does not reach the outer table.
    [
      'UPDATE messages SET status = $2 WHERE message_id IN (SELECT message_id FROM messages WHERE tenant_id = $1)',
      ['messages'],
    ],
    ['DELETE FROM memory_chest WHERE expires_at < now()', ['memory_chest']],
    ['INSERT INTO agents (agent_id) VALUES ($1)', ['agents']],
    ['SELECT count(*) FROM tenants', ['tenants']],
    ['SELECT * FROM maihive_tenant_counts($1::text[])', ['maihive_tenant_counts()']],
    [
      'SELECT tenant_id FROM agents WHERE tenant_id = $1 UNION ALL SELECT tenant_id FROM chat_streams',
      ['chat_streams'],
    ],
  ])('finds a multi-shard statement: %s', async (sql, unpinned) => {
    const result = await route(sql);
    expect(result.routing).toBe('multi-shard');
    expect(result.unpinned).toEqual(unpinned);
  });

  it('tells platform-only statements, statements without tables and utility statements apart', async () => {
    expect(await route('SELECT * FROM platform_users WHERE username = $1')).toEqual({
      routing: 'platform',
      tables: ['platform_users'],
      unpinned: [],
    });
    expect((await route('SELECT 1')).routing).toBe('no-table');
    const begin = await routeSql("BEGIN; SELECT set_config('app.tenant_id', 'a', true)", schema);
    expect(begin.map((r) => r.routing)).toEqual(['utility', 'no-table']);
  });

  it('does not count a CTE as a table', async () => {
    const result = await route(
      'WITH recent AS (SELECT * FROM messages WHERE tenant_id = $1) SELECT * FROM recent',
    );
    expect(result).toEqual({ routing: 'single-tenant', tables: ['messages'], unpinned: [] });
  });
});
