/** The benchmark database: recreated from scratch, migrated, loaded as the owner. */
import pg from 'pg';

import { migrate } from '../../src/db/migrate';
import type { Logger } from '../../src/logger';
import { msSince } from './stats';

export interface DatasetShape {
  tenants: number;
  streamsPerTenant: number;
  messages: number;
}

export const tenantId = (t: number) => `bench_t${String(t).padStart(3, '0')}`;
export const streamId = (s: number) => `bench_c${String(s).padStart(2, '0')}`;

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'maihive-bench-setup' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Drops and recreates `database` on the server of `serverAdminUrl`, then migrates it. */
export async function recreateDatabase(
  serverAdminUrl: string,
  database: string,
  appRole: string,
  logger: Logger,
): Promise<void> {
  await withClient(withDatabase(serverAdminUrl, 'postgres'), async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
  });
  await migrate({ adminUrl: withDatabase(serverAdminUrl, database), appRole, logger });
}

/**
 * Tenants (each gets agent `default` by trigger), `streamsPerTenant` streams on `qq` each, and
 * messages spread evenly over all streams with created_at over the past 30 days, stored in arrival
 * (created_at) order as a live system would write them. Then VACUUM (ANALYZE). Returns ms taken.
 */
export async function loadDataset(adminUrl: string, shape: DatasetShape): Promise<number> {
  const { tenants, streamsPerTenant, messages } = shape;
  const start = process.hrtime.bigint();
  await withClient(adminUrl, async (c) => {
    await c.query(`INSERT INTO tenants (tenant_id, name)
      SELECT 'bench_t' || lpad(t::text, 3, '0'), 'Bench tenant ' || t FROM generate_series(0, ${tenants - 1}) t`);
    await c.query(`INSERT INTO chat_streams (tenant_id, chat_stream_id, agent_id, platform, group_id)
      SELECT 'bench_t' || lpad(t::text, 3, '0'), 'bench_c' || lpad(s::text, 2, '0'), 'default', 'qq', 'g' || s
      FROM generate_series(0, ${tenants - 1}) t, generate_series(0, ${streamsPerTenant - 1}) s`);
    await c.query(`INSERT INTO messages (tenant_id, message_id, agent_id, platform, chat_stream_id, direction,
                                         sender_user_id, sender_nickname, content, status, created_at)
      SELECT 'bench_t' || lpad((i % ${tenants})::text, 3, '0'), 'm' || i, 'default', 'qq',
             'bench_c' || lpad(((i / ${tenants}) % ${streamsPerTenant})::text, 2, '0'),
             CASE WHEN i % 3 = 0 THEN 'out' ELSE 'in' END, 'u' || (i % 997), 'user ' || (i % 997),
             'benchmark message ' || i || ' ' || md5(i::text),
             CASE WHEN i % 3 = 0 THEN 'sent' ELSE 'replied' END, at
      FROM (SELECT i, now() - random() * interval '30 days' AS at
            FROM generate_series(0, ${messages - 1}) i) g
      ORDER BY at`);
    await c.query('VACUUM (ANALYZE)');
  });
  return msSince(start);
}
