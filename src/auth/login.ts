import type { Database } from '../db/database';
import { findPlatformUser, findUser, touchPlatformUserLogin, touchUserLogin } from '../db/repositories/users';
import { createIsolationContext } from '../domain/isolationContext';
import { UnauthorizedError } from '../errors';
import { decoyHash, verifyPassword } from './passwords';
import type { SessionSubject } from './refreshTokens';
import type { TenantDirectory, TenantMeta } from './tenantDirectory';

export interface LoginDeps {
  db: Database;
  tenants: TenantDirectory;
}

export interface LoginRequest {
  /** Absent: a platform admin logs in. */
  tenantId: string | undefined;
  username: string;
  password: string;
}

export interface LoginResult {
  subject: SessionSubject;
  /** The tenant logged into; undefined for platform admins. */
  tenant: TenantMeta | undefined;
}

/**
 * Checks a username and password. Unknown tenant, suspended tenant, unknown user, disabled user and
 * wrong password are one and the same `UnauthorizedError`, and each path runs one scrypt
 * verification (against a decoy hash when there is no user), so neither the body nor the timing
 * tells which one it was.
 */
export async function verifyLogin(deps: LoginDeps, req: LoginRequest): Promise<LoginResult> {
  if (req.tenantId === undefined) {
    const user = await deps.db.withPlatform((db) => findPlatformUser(db, req.username));
    const ok = await verifyPassword(req.password, user?.password_hash ?? (await decoyHash()));
    if (!user || !ok || user.status !== 'active') throw new UnauthorizedError();
    await deps.db.withPlatform((db) => touchPlatformUserLogin(db, user.username));
    return {
      subject: { username: user.username, role: 'platform_admin', tenantId: undefined },
      tenant: undefined,
    };
  }

  const tenantId = req.tenantId;
  const tenant = await deps.tenants.get(tenantId);
  const ctx = createIsolationContext({ tenantId });
  const user =
    tenant?.status === 'active'
      ? await deps.db.withTenant(ctx, (db) => findUser(db, req.username))
      : undefined;
  const ok = await verifyPassword(req.password, user?.password_hash ?? (await decoyHash()));
  if (!tenant || !user || !ok || user.status !== 'active') throw new UnauthorizedError();
  await deps.db.withTenant(ctx, (db) => touchUserLogin(db, user.username));
  return { subject: { username: user.username, role: user.role, tenantId }, tenant };
}
