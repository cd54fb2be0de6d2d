import { type Config, ConfigError, configIssue } from '../config';
import type { Database } from '../db/database';
import { ensurePlatformUser, findPlatformUser } from '../db/repositories/users';
import { isIdentifier } from '../domain/isolationContext';
import type { Logger } from '../logger';
import { hashPassword, verifyPassword } from './passwords';

/**
 * Creates a platform admin unless one of that name exists (its password is then left alone).
 * Returns whether it was created. Safe to run concurrently from several processes.
 */
export async function createPlatformAdmin(
  db: Database,
  username: string,
  password: string,
): Promise<boolean> {
  if (!isIdentifier(username))
    throw new Error(`invalid platform admin username: ${JSON.stringify(username)}`);
  if (password.length === 0) throw new Error('the platform admin password must not be empty');
  // Checked first so that a restart does not pay for an scrypt hash it would throw away.
  const existing = await db.withPlatform((p) => findPlatformUser(p, username));
  if (existing) return false;
  const passwordHash = await hashPassword(password);
  return db.withPlatform((p) => ensurePlatformUser(p, username, passwordHash));
}

/** `MAIHIVE_BOOTSTRAP_ADMIN=username:password`: that platform admin exists after start-up. */
export async function ensureBootstrapAdmin(db: Database, config: Config, logger: Logger): Promise<boolean> {
  const admin = config.bootstrapAdmin;
  if (!admin) return false;
  if (!isIdentifier(admin.username)) {
    throw new ConfigError([configIssue('MAIHIVE_BOOTSTRAP_ADMIN', 'names an invalid username')]);
  }
  const created = await createPlatformAdmin(db, admin.username, admin.password);
  if (created) {
    logger.info({ username: admin.username }, 'bootstrap platform admin created');
    return true;
  }
  const existing = await db.withPlatform((p) => findPlatformUser(p, admin.username));
  if (existing && !(await verifyPassword(admin.password, existing.password_hash))) {
    // The stored password wins: start-up must not reset an admin's password behind their back.
    logger.warn(
      { username: admin.username, variable: 'MAIHIVE_BOOTSTRAP_ADMIN' },
      'MAIHIVE_BOOTSTRAP_ADMIN names an existing platform admin with a different password: the stored password is kept. Log in with it, or remove MAIHIVE_BOOTSTRAP_ADMIN (or set it to the stored password) to silence this',
    );
  } else logger.debug({ username: admin.username }, 'bootstrap platform admin already exists');
  return false;
}
