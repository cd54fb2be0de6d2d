import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import pg from 'pg';

import { loadConfig } from '../../src/config';
import { migrate, MIGRATIONS_DIR } from '../../src/db/migrate';
import { createLogger } from '../../src/logger';
import { type ResolvedServices, resolveServices } from '../../src/services/localServices';
import { TEST_ENV } from './env';

declare global {
  var __MAIHIVE_TEST_SERVICES__: ResolvedServices | undefined;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** The template's name changes whenever a migration (or the migrate code) changes. */
function templateName(): string {
  const hash = createHash('sha256');
  for (const file of readdirSync(MIGRATIONS_DIR).sort())
    hash.update(file).update(readFileSync(path.join(MIGRATIONS_DIR, file)));
  hash.update(readFileSync(path.resolve(__dirname, '../../src/db/migrate.ts')));
  return `maihive_tpl_${hash.digest('hex').slice(0, 16)}`;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds (or starts) PostgreSQL and Redis once for the whole run, builds a migrated template
 * database, and hands both to the test files through the environment. Each test file then clones
 * the template into a database of its own (see `testDatabase.ts`).
 */
export default async function globalSetup(): Promise<void> {
  const config = loadConfig({ ...process.env, NODE_ENV: 'test' });
  const logger = createLogger({ level: 'warn' });
  const services = await resolveServices(config, logger, { ephemeral: true, database: 'postgres' });
  globalThis.__MAIHIVE_TEST_SERVICES__ = services;

  const serverUrl = services.databaseAdminUrl;
  const template = templateName();
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    // Databases left behind by runs that died (their jest process is gone).
    const stale = await admin.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname ~ '^maihive_t_[0-9]+_' OR datname ~ '^maihive_tpl_.*_building$'`,
    );
    for (const { datname } of stale.rows) {
      const pid = Number(/^maihive_t_(\d+)_/.exec(datname)?.[1] ?? 0);
      if (pid === 0 || !pidAlive(pid))
        await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(datname)} WITH (FORCE)`);
    }
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [template]);
    if (exists.rowCount === 0) {
      // Build under a temporary name and rename at the end, so a half-built template is never used.
      const building = `${template}_building`;
      await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(building)} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(building)}`);
      await migrate({ adminUrl: withDatabase(serverUrl, building), appRole: config.appRole, logger });
      await admin.query(
        `ALTER DATABASE ${pg.escapeIdentifier(building)} RENAME TO ${pg.escapeIdentifier(template)}`,
      );
    }
  } finally {
    await admin.end();
  }

  process.env[TEST_ENV.serverUrl] = serverUrl;
  process.env[TEST_ENV.template] = template;
  process.env[TEST_ENV.redisUrl] = services.redisUrl;
  process.env[TEST_ENV.appRole] = config.appRole;
}
