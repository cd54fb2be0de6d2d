/** The repository functions run as the owner: identical SQL, no RLS (the owner bypasses it). */
import type pg from 'pg';

import type { TenantDb } from '../../src/db/database';
import type { IsolationContext } from '../../src/domain/isolationContext';

/** A `TenantDb` over an owner pool (one statement, no transaction) or an owner client. */
export function ownerHandle(q: pg.Pool | pg.PoolClient, ctx: IsolationContext): TenantDb {
  const query = <R extends pg.QueryResultRow>(text: string, params?: readonly unknown[]) =>
    (q as pg.Pool).query<R>(text, params as unknown[] | undefined);
  return { ctx, query, rawSql: query };
}

/** `BEGIN; fn; COMMIT` on one pooled owner client: the unit-of-work shape without the settings. */
export async function ownerTx<T>(
  pool: pg.Pool,
  ctx: IsolationContext,
  fn: (db: TenantDb) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(ownerHandle(client, ctx));
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
