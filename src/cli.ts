import { createPlatformAdmin } from './auth/bootstrap';
import { type Config, ConfigError, loadConfig } from './config';
import { Database } from './db/database';
import { migrate } from './db/migrate';
import { parseImportArgs, runImportCommand, UsageError } from './legacy/command';
import { UnknownSchemaError } from './legacy/detect';
import { ImportTargetError } from './legacy/importer';
import { SourceFileError } from './legacy/sqliteSource';
import { createLogger, type Logger } from './logger';
import { DependencyUnreachableError, type ResolvedServices, resolveServices } from './services/localServices';

const USAGE = `usage: maihive <command>

commands:
  migrate                                apply pending migrations with DATABASE_ADMIN_URL and grant
                                         MAIHIVE_APP_ROLE, then exit
  admin create <username> <password>     create a platform admin (migrates first when
                                         DATABASE_ADMIN_URL is available); exits 1 if it exists
  import-maibot --sqlite <file> --tenant <id> --agent <id> [--platform qq] [--dry-run] [--verify-only]
                                         import a MaiBot 0.x/1.x database into a tenant's agent, then
                                         verify it (README § Moving in from MaiBot)`;

async function runMigrate(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel });
  const services = await resolveServices(config, logger);
  try {
    if (services.databaseAdminUrl === services.databaseUrl) {
      throw new DependencyUnreachableError('PostgreSQL', 'DATABASE_ADMIN_URL');
    }
    const result = await migrate({
      adminUrl: services.databaseAdminUrl,
      appRole: config.appRole,
      appPassword: config.databaseUrl ? new URL(config.databaseUrl).password || undefined : undefined,
      logger,
    });
    console.log(`applied ${result.applied.length} migration(s); schema version ${result.version}`);
  } finally {
    await services.close();
  }
}

/**
 * Applies pending migrations when the owner's connection is known apart from the app role's
 * (always with private servers; with configured ones only when DATABASE_ADMIN_URL is given).
 */
async function migrateWhenOwner(config: Config, services: ResolvedServices, logger: Logger): Promise<void> {
  if (services.databaseAdminUrl === services.databaseUrl) return;
  await migrate({
    adminUrl: services.databaseAdminUrl,
    appRole: config.appRole,
    appPassword: config.databaseUrl ? new URL(config.databaseUrl).password || undefined : undefined,
    logger,
  });
}

/** `admin create <username> <password>`: 0 when created, 1 when that admin already exists. */
async function runAdminCreate(username: string, password: string): Promise<number> {
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel });
  const services = await resolveServices(config, logger);
  try {
    // A fresh install has no platform_users table yet; migrating is idempotent.
    await migrateWhenOwner(config, services, logger);
    const db = new Database({ url: services.databaseUrl, ...config.db, logger });
    try {
      const created = await createPlatformAdmin(db, username, password);
      console.log(
        created ? `platform admin ${username} created` : `platform admin ${username} already exists`,
      );
      return created ? 0 : 1;
    } finally {
      await db.close();
    }
  } finally {
    await services.close();
  }
}

/** `import-maibot …`: migrates first when it can (the checkpoint table), then imports as the app role. */
async function runImportMaiBot(argv: string[]): Promise<number> {
  const args = parseImportArgs(argv);
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel });
  const services = await resolveServices(config, logger);
  try {
    await migrateWhenOwner(config, services, logger);
    // Batches are bigger than requests: a longer statement timeout than the API's.
    const db = new Database({ url: services.databaseUrl, ...config.db, statementTimeoutMs: 120_000, logger });
    const abort = new AbortController();
    const stop = () => abort.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      return await runImportCommand(db, args, process.stdout, abort.signal);
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      await db.close();
    }
  } finally {
    await services.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, sub, ...args] = argv;
  try {
    switch (command) {
      case 'migrate':
        await runMigrate();
        return 0;
      case 'admin': {
        const [username, password] = args;
        if (sub !== 'create' || username === undefined || password === undefined || args.length !== 2) {
          console.error(USAGE);
          return 2;
        }
        return await runAdminCreate(username, password);
      }
      case 'import-maibot':
        return await runImportMaiBot(argv.slice(1));
      default:
        console.error(USAGE);
        return command === undefined || command === 'help' ? 0 : 2;
    }
  } catch (err) {
    if (err instanceof ConfigError || err instanceof DependencyUnreachableError) {
      console.error(err.message);
      return 1;
    }
    if (err instanceof UsageError) {
      console.error(err.message);
      return 2;
    }
    if (
      err instanceof SourceFileError ||
      err instanceof UnknownSchemaError ||
      err instanceof ImportTargetError
    ) {
      console.error(`import-maibot: ${err.message}; nothing was written`);
      return 1;
    }
    console.error(err);
    return 1;
  }
}

void main(process.argv.slice(2)).then((code) => process.exit(code));
