import { randomBytes } from 'node:crypto';

import type { Redis } from 'ioredis';
import pg from 'pg';

import { Database } from '../../src/db/database';
import { createLogger, type Logger } from '../../src/logger';
import { connectRedis, scanEach } from '../../src/redis/connect';
import { testEnv } from './env';

export interface TestDatabase {
  /** Name of this file's own database, cloned from the migrated template. */
  readonly name: string;
  /** Owner connection string (bypasses RLS: for arranging and inspecting, never for the code under test). */
  readonly adminUrl: string;
  /** Application-role connection string. */
  readonly appUrl: string;
  readonly appRole: string;
  /** The application's access layer, connected as the application role. */
  readonly db: Database;
  readonly logger: Logger;
  /** Runs SQL as the owner. */
  admin<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  /** A fresh application-role `Database` with its own pool options (statement timeout default 15 s). */
  openDatabase(options?: {
    poolMax?: number;
    connectTimeoutMs?: number;
    statementTimeoutMs?: number;
  }): Database;
  close(): Promise<void>;
}

function withDatabase(url: string, database: string, user?: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  if (user) {
    u.username = user;
    u.password = '';
  }
  return u.toString();
}

async function createFromTemplate(admin: pg.Client, name: string, template: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await admin.query(
        `CREATE DATABASE ${pg.escapeIdentifier(name)} TEMPLATE ${pg.escapeIdentifier(template)}`,
      );
      return;
    } catch (err) {
      // "source database is being accessed by other users": another file is cloning right now.
      if ((err as { code?: string }).code !== '55006' || attempt >= 50) throw err;
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
    }
  }
}

/** Gives the calling test file a database of its own, migrated, with the app role's access layer. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = testEnv('serverUrl');
  const appRole = testEnv('appRole');
  const name = `maihive_t_${process.pid}_${randomBytes(4).toString('hex')}`;
  const server = new pg.Client({ connectionString: serverUrl });
  await server.connect();
  try {
    await createFromTemplate(server, name, testEnv('template'));
  } finally {
    await server.end();
  }
  const adminUrl = withDatabase(serverUrl, name);
  const appUrl = withDatabase(serverUrl, name, appRole);
  const adminPool = new pg.Pool({ connectionString: adminUrl, max: 2 });
  // pool.end() resolves before its sockets have closed; DROP DATABASE … WITH (FORCE) in close()
  // may then terminate one, and the pool re-emits that as an 'error' event.
  adminPool.on('error', () => undefined);
  const logger = createLogger({ level: 'silent' });
  const opened: Database[] = [];
  const openDatabase = (
    options: { poolMax?: number; connectTimeoutMs?: number; statementTimeoutMs?: number } = {},
  ) => {
    const database = new Database({
      url: appUrl,
      poolMax: options.poolMax ?? 5,
      connectTimeoutMs: options.connectTimeoutMs ?? 5000,
      statementTimeoutMs: options.statementTimeoutMs ?? 15000,
      logger,
    });
    opened.push(database);
    return database;
  };
  const db = openDatabase();
  return {
    name,
    adminUrl,
    appUrl,
    appRole,
    db,
    logger,
    admin: (text, params) => adminPool.query(text, params),
    openDatabase,
    async close() {
      await Promise.allSettled(opened.map((d) => d.close()));
      await adminPool.end();
      const s = new pg.Client({ connectionString: serverUrl });
      await s.connect();
      try {
        await s.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      } finally {
        await s.end();
      }
    },
  };
}

/**
 * A Redis connection whose keys this test file owns (prefix), flushed on close. `url` defaults to
 * the test server; a Redis Cluster URL (`redis-cluster://…`) works too.
 */
export function createTestRedis(url = testEnv('redisUrl')): {
  redis: Redis;
  prefix: string;
  /** The same prefix as `REDIS_PREFIX` accepts it (dots for colons): an app's or a queue's keys. */
  appPrefix: string;
  url: string;
  close(): Promise<void>;
} {
  const id = `${process.pid}:${randomBytes(4).toString('hex')}`;
  const prefix = `mhtest:${id}:`;
  const appPrefix = `mhtest.${id.replace(/:/g, '.')}`;
  const redis = connectRedis(url, { maxRetriesPerRequest: null });
  return {
    redis,
    prefix,
    appPrefix,
    url,
    // Both forms: an app started on `appPrefix` left its jobs behind (2,000 keys a run) before.
    async close() {
      for (const pattern of [`${prefix}*`, `${appPrefix}*`]) {
        for await (const keys of scanEach(redis, pattern)) for (const key of keys) await redis.del(key);
      }
      redis.disconnect();
    },
  };
}
