import { ConfigError, loadConfig } from './config';
import { migrate } from './db/migrate';
import { createLogger } from './logger';
import { DependencyUnreachableError, resolveServices } from './services/localServices';

const USAGE = `usage: maihive <command>

commands:
  migrate     apply pending migrations with DATABASE_ADMIN_URL and grant MAIHIVE_APP_ROLE, then exit`;

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

async function main(argv: string[]): Promise<number> {
  const [command] = argv;
  try {
    switch (command) {
      case 'migrate':
        await runMigrate();
        return 0;
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
