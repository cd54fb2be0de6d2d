import type { Redis } from 'ioredis';

import { hashPassword } from '../auth/passwords';
import type { TenantDirectory } from '../auth/tenantDirectory';
import type { Database } from '../db/database';
import { createTenant, deleteTenant, getTenant, type TenantRow } from '../db/repositories/tenants';
import { createUser } from '../db/repositories/users';
import { createIsolationContext } from '../domain/isolationContext';
import { effectiveSettings } from '../domain/tenantSettings';
import { ConflictError } from '../errors';
import { applyQueueCaps, publishScheduleChange } from '../queues/scheduleChanges';
import type { TenantQueues } from '../queues/tenantQueues';
import type { Keyspace } from '../redis/keys';

export interface TenantCreationDeps {
  db: Database;
  redis: Redis;
  keys: Keyspace;
  queues: TenantQueues;
  tenants: TenantDirectory;
}

export interface NewTenant {
  tenantId: string;
  name: string;
  description: string | null;
  settings: Record<string, unknown>;
  /** A first tenant admin, created with the tenant. */
  admin?: { username: string; password: string } | undefined;
}

/** The tenant's queue caps and the dispatchers' copy of its schedule follow its stored settings. */
export async function applyTenantSchedule(
  deps: TenantCreationDeps,
  tenantId: string,
  stored: unknown,
): Promise<void> {
  await applyQueueCaps(deps.queues, tenantId, effectiveSettings(stored).scheduling);
  await publishScheduleChange(deps.redis, deps.keys, tenantId);
}

/**
 * Creates a tenant (its default agent comes with the row) and, optionally, its first admin; 409
 * when the id is taken. The admin lives in a tenant table, reachable only from a tenant unit of
 * work, so the two inserts are two transactions: if the second fails the tenant is removed again
 * and the creation fails as a whole. The password is hashed before anything is written, so the
 * slow step cannot fail halfway through.
 */
export async function createTenantWithAdmin(deps: TenantCreationDeps, t: NewTenant): Promise<TenantRow> {
  const passwordHash = t.admin ? await hashPassword(t.admin.password) : undefined;
  const tenant = await deps.db.withPlatform(async (db) => {
    if (await getTenant(db, t.tenantId)) {
      throw new ConflictError(`tenant ${t.tenantId} already exists`, { details: { tenant_id: t.tenantId } });
    }
    return createTenant(db, {
      tenantId: t.tenantId,
      name: t.name,
      description: t.description,
      settings: t.settings,
    });
  });
  if (t.admin && passwordHash) {
    const username = t.admin.username;
    try {
      await deps.db.withTenant(createIsolationContext({ tenantId: tenant.tenant_id }), (db) =>
        createUser(db, { username, passwordHash, role: 'tenant_admin' }),
      );
    } catch (err) {
      await deps.db.withPlatform((db) => deleteTenant(db, tenant.tenant_id));
      throw err;
    }
  }
  // The directory may hold a short-lived "missing" entry from a request made before this one.
  await deps.tenants.invalidate(tenant.tenant_id);
  await applyTenantSchedule(deps, tenant.tenant_id, tenant.settings);
  return tenant;
}
