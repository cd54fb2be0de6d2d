import path from 'node:path';

import pg from 'pg';

import type { Config } from '../config';
import type { Logger } from '../logger';
import { connectRedis } from '../redis/connect';
import {
  postgresReachable,
  type PrivateServer,
  startPrivatePostgres,
  startPrivateRedis,
} from './privateServers';

/** The conventional local servers, tried when no URL is configured (Debian's default ports). */
export const CONVENTIONAL_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
export const CONVENTIONAL_REDIS_URL = 'redis://127.0.0.1:6379';

/** A dependency is unreachable and may not be replaced by a private server (e.g. in production). */
export class DependencyUnreachableError extends Error {
  constructor(
    readonly service: 'PostgreSQL' | 'Redis',
    readonly variable: string,
    cause?: unknown,
  ) {
    super(`${service} is unreachable: set ${variable} to a reachable server`, { cause });
    this.name = 'DependencyUnreachableError';
  }
}

export interface ResolvedServices {
  /** Owner connection for migrations. */
  readonly databaseAdminUrl: string;
  /** Application-role connection. */
  readonly databaseUrl: string;
  readonly redisUrl: string;
  /** Private servers this call started (empty when configured or conventional ones answered). */
  readonly started: readonly string[];
  /** Stops the private servers; idempotent. */
  close(): Promise<void>;
}

export interface ResolveOptions {
  /** Throw-away servers in temp dirs (tests) instead of `<dataDir>/pg` and `<dataDir>/redis`. */
  ephemeral?: boolean;
  /** Database created on a server this call picks (not on a configured one). Default `maihive`. */
  database?: string;
}

/** ms a configured or conventional server gets to answer before it counts as absent. */
const REACHABLE_TIMEOUT_MS = 3000;

export async function redisReachable(url: string): Promise<boolean> {
  const redis = connectRedis(url, {
    lazyConnect: true,
    connectTimeout: REACHABLE_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

function withUser(url: string, user: string): string {
  const u = new URL(url);
  u.username = user;
  u.password = '';
  return u.toString();
}

async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) {
      await client
        .query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`)
        .catch((err: { code?: string }) => {
          if (err.code !== '42P04') throw err; // created concurrently
        });
    }
  } finally {
    await client.end();
  }
}

/**
 * Finds PostgreSQL and Redis: the configured URLs when they answer, else (outside production) the
 * conventional local servers, else private servers started from the installed binaries.
 */
export async function resolveServices(
  config: Config,
  logger: Logger,
  options: ResolveOptions = {},
): Promise<ResolvedServices> {
  const servers: PrivateServer[] = [];
  const started: string[] = [];
  const close = async () => {
    const all = servers.splice(0);
    await Promise.allSettled(all.map((s) => s.stop()));
  };

  try {
    const database = options.database ?? 'maihive';
    let adminUrl = config.databaseAdminUrl;
    let appUrl = config.databaseUrl;
    if (adminUrl && !(await postgresReachable(adminUrl, REACHABLE_TIMEOUT_MS))) {
      if (!config.autostart) throw new DependencyUnreachableError('PostgreSQL', 'DATABASE_ADMIN_URL');
      logger.warn('DATABASE_ADMIN_URL is unreachable; starting a private PostgreSQL instead');
      adminUrl = undefined;
      appUrl = undefined;
    }
    if (!adminUrl) {
      if (!config.autostart) {
        if (!appUrl) throw new DependencyUnreachableError('PostgreSQL', 'DATABASE_URL');
      } else {
        let serverUrl = CONVENTIONAL_POSTGRES_URL;
        if (!(await postgresReachable(serverUrl, REACHABLE_TIMEOUT_MS))) {
          const pgServer = await startPrivatePostgres({
            ...(options.ephemeral ? {} : { dataDir: path.join(config.dataDir, 'pg') }),
            logger,
          });
          servers.push(pgServer);
          started.push('postgresql');
          serverUrl = pgServer.url;
          appUrl = undefined;
        }
        await ensureDatabase(serverUrl, database);
        adminUrl = withDatabase(serverUrl, database);
      }
    }
    const databaseUrl = appUrl ?? withUser(adminUrl!, config.appRole);
    if (!config.autostart && !(await postgresReachable(databaseUrl, REACHABLE_TIMEOUT_MS)) && !adminUrl) {
      throw new DependencyUnreachableError('PostgreSQL', 'DATABASE_URL');
    }

    let redisUrl = config.redisUrl;
    if (redisUrl && !(await redisReachable(redisUrl))) {
      if (!config.autostart) throw new DependencyUnreachableError('Redis', 'REDIS_URL');
      logger.warn('REDIS_URL is unreachable; starting a private Redis instead');
      redisUrl = undefined;
    }
    if (!redisUrl) {
      if (!config.autostart) throw new DependencyUnreachableError('Redis', 'REDIS_URL');
      if (await redisReachable(CONVENTIONAL_REDIS_URL)) {
        redisUrl = CONVENTIONAL_REDIS_URL;
      } else {
        const redisServer = await startPrivateRedis({
          ...(options.ephemeral ? {} : { dataDir: path.join(config.dataDir, 'redis') }),
          logger,
        });
        servers.push(redisServer);
        started.push('redis');
        redisUrl = redisServer.url;
      }
    }

    return { databaseAdminUrl: adminUrl ?? databaseUrl, databaseUrl, redisUrl, started, close };
  } catch (err) {
    await close();
    throw err;
  }
}
