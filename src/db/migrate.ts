import path from 'node:path';

import pg from 'pg';
import Postgrator from 'postgrator';

import type { Logger } from '../logger';
import { projectPath } from '../projectRoot';

export const MIGRATIONS_DIR = projectPath('migrations');
export const MIGRATIONS_TABLE = 'schemaversion';

// Any fixed 64-bit key; the same one in every MaiHive process so that two never migrate at once.
const MIGRATION_LOCK_KEY = 0x6d616968697665n; // "maihive"

export interface MigrateOptions {
  /** Owner connection (DATABASE_ADMIN_URL). */
  adminUrl: string;
  /** Application role to create (if missing) and grant to. */
  appRole: string;
  /** Password for the application role when it is created or updated; none leaves it unchanged. */
  appPassword?: string | undefined;
  logger: Logger;
  /** Directory of `NNN.do.name.sql` files. Default `migrations/`. */
  migrationsDir?: string;
}

export interface MigrateResult {
  applied: string[];
  version: number;
}

/**
 * Applies pending migrations with Postgrator (numbered SQL files, md5 checksums: an applied file
 * that was edited is an error) under a session advisory lock, each migration and its record in one
 * transaction, then makes sure the application role exists, is unprivileged and has exactly the
 * grants it needs.
 */
export async function migrate(options: MigrateOptions): Promise<MigrateResult> {
  const client = new pg.Client({ connectionString: options.adminUrl, application_name: 'maihive-migrate' });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
    try {
      const applied = await runPostgrator(client, options);
      await ensureAppRole(client, options);
      await grantAppRole(client, options.appRole);
      const version = await currentVersion(client);
      return { applied, version };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY.toString()]);
    }
  } finally {
    await client.end();
  }
}

async function runPostgrator(client: pg.Client, options: MigrateOptions): Promise<string[]> {
  // Postgrator runs a migration's script and then the INSERT recording it. Opening a transaction
  // at `migration-started` and committing at `migration-finished` puts both in one transaction.
  // The event handlers are synchronous, so their queries are collected here and awaited before
  // Postgrator's next statement.
  const pending: Promise<unknown>[] = [];
  const postgrator = new Postgrator({
    migrationPattern: path.join(options.migrationsDir ?? MIGRATIONS_DIR, '*.sql'),
    driver: 'pg',
    schemaTable: MIGRATIONS_TABLE,
    validateChecksums: true,
    // Each call first waits for the BEGIN/COMMIT issued from the event handlers below, so queries
    // never pile up on the client.
    execQuery: async (query) => {
      await Promise.all(pending.splice(0));
      return client.query(query);
    },
    execSqlScript: async (sql) => {
      await Promise.all(pending.splice(0));
      await client.query(sql);
    },
  });
  postgrator.on('migration-started', (m) => {
    options.logger.info({ migration: m.filename }, 'applying migration');
    pending.push(client.query('BEGIN'));
  });
  postgrator.on('migration-finished', () => pending.push(client.query('COMMIT')));
  try {
    const applied = await postgrator.migrate();
    await Promise.all(pending.splice(0));
    return applied.map((m) => m.filename);
  } catch (err) {
    await Promise.allSettled(pending);
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

async function ensureAppRole(client: pg.Client, options: MigrateOptions): Promise<void> {
  const role = pg.escapeIdentifier(options.appRole);
  const existing = await client.query<{ rolsuper: boolean; rolbypassrls: boolean }>(
    'SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1',
    [options.appRole],
  );
  const password = options.appPassword ? ` PASSWORD ${pg.escapeLiteral(options.appPassword)}` : '';
  const row = existing.rows[0];
  if (!row) {
    try {
      await client.query(
        `CREATE ROLE ${role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION${password}`,
      );
      options.logger.info({ role: options.appRole }, 'created application role');
    } catch (err) {
      // Roles are cluster-wide: another database's migration may have created it a moment ago.
      if ((err as { code?: string }).code !== '42710') throw err;
    }
  } else if (row.rolsuper || row.rolbypassrls) {
    throw new Error(
      `application role ${options.appRole} is superuser or has BYPASSRLS; row-level security would not apply. ` +
        'Set MAIHIVE_APP_ROLE to an unprivileged role.',
    );
  } else if (password) {
    await client.query(`ALTER ROLE ${role}${password}`);
  }
}

async function grantAppRole(client: pg.Client, appRole: string): Promise<void> {
  const role = pg.escapeIdentifier(appRole);
  const db = await client.query<{ db: string }>('SELECT current_database() AS db');
  const database = pg.escapeIdentifier(db.rows[0]!.db);
  await client.query(`
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;
    GRANT CONNECT ON DATABASE ${database} TO ${role};
    GRANT USAGE ON SCHEMA public TO ${role};
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role};
    REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM ${role};
    REVOKE INSERT, UPDATE, DELETE ON ${pg.escapeIdentifier(MIGRATIONS_TABLE)} FROM ${role};
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${role};
  `);
}

async function currentVersion(client: pg.Client): Promise<number> {
  const result = await client.query<{ version: string | null }>(
    `SELECT max(version)::text AS version FROM ${pg.escapeIdentifier(MIGRATIONS_TABLE)}`,
  );
  return Number(result.rows[0]?.version ?? 0);
}

/** Highest migration number on disk; `/ready` compares it with the database. */
export async function latestMigrationVersion(migrationsDir = MIGRATIONS_DIR): Promise<number> {
  const { readdir } = await import('node:fs/promises');
  const versions = (await readdir(migrationsDir))
    .map((f) => /^(\d+)\.do\./.exec(f)?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number);
  return Math.max(0, ...versions);
}
