import { createPlatformAdmin } from './auth/bootstrap';
import { ConfigError, loadConfig } from './config';
import { Database } from './db/database';
import { migrate } from './db/migrate';
import { createLogger } from './logger';
import { DependencyUnreachableError, resolveServices } from './services/localServices';

const USAGE = `usage: maihive <command>

commands:
  migrate                                apply pending migrations with DATABASE_ADMIN_URL and grant
                                         MAIHIVE_APP_ROLE, then exit
  admin create <username> <password>     create a platform admin (migrates first when
                                         DATABASE_ADMIN_URL is available); exits 1 if it exists`;

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

/** `admin create <username> <password>`: 0 when created, 1 when that admin already exists. */
async function runAdminCreate(username: string, password: string): Promise<number> {
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel });
  const services = await resolveServices(config, logger);
  try {
    // A fresh install has no platform_users table yet; migrating is idempotent.
    if (services.databaseAdminUrl !== services.databaseUrl) {
      await migrate({
        adminUrl: services.databaseAdminUrl,
        appRole: config.appRole,
        appPassword: config.databaseUrl ? new URL(config.databaseUrl).password || undefined : undefined,
        logger,
      });
    }
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
      default:
        console.error(USAGE);
        return command === undefined || command === 'help' ? 0 : 2;
    }
  } catch (err) {
    if (err instanceof ConfigError || err instanceof DependencyUnreachableError) {
      console.error(err.message);
      return 1;
    }
    console.error(err);
    return 1;
  }
}

void main(process.argv.slice(2)).then((code) => process.exit(code));
