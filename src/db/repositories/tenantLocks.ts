import type { TenantDb } from '../database';

/** What a tenant lock serialises: checks of a per-tenant limit against a count and the insert after it. */
export type TenantLockName = 'agents' | 'chat_streams' | 'config';

/**
 * Takes a transaction-scoped advisory lock on one of the unit's tenant's resources, so that two
 * concurrent creates cannot both pass a `max_*` check. Released at COMMIT/ROLLBACK; other tenants
 * never wait on it (the key carries the tenant).
 */
export async function lockTenantResource(db: TenantDb, name: TenantLockName): Promise<void> {
  await db.query("SELECT pg_advisory_xact_lock(hashtextextended('maihive:' || $1 || '/' || $2, 0))", [
    name,
    db.ctx.tenantId,
  ]);
}
