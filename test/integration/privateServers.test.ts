import { Redis } from 'ioredis';
import pg from 'pg';

import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { DependencyUnreachableError, resolveServices } from '../../src/services/localServices';
import { freePort, startPrivatePostgres, startPrivateRedis } from '../../src/services/privateServers';

const logger = createLogger({ level: 'silent' });

describe('private servers from the installed binaries', () => {
  it('starts a throw-away PostgreSQL that accepts connections, and stops it', async () => {
    const server = await startPrivatePostgres({ logger });
    try {
      const client = new pg.Client({ connectionString: server.url });
      await client.connect();
      const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version') AS v");
      await client.end();
      expect(rows[0]?.v).toMatch(/^\d+/);
    } finally {
      await server.stop();
    }
    const after = new pg.Client({ connectionString: server.url, connectionTimeoutMillis: 1000 });
    after.on('error', () => undefined);
    await expect(after.connect()).rejects.toThrow();
  }, 60_000);

  it('starts a throw-away Redis that answers PING, and stops it', async () => {
    const server = await startPrivateRedis({ logger });
    const redis = new Redis(server.url);
    try {
      expect(await redis.ping()).toBe('PONG');
    } finally {
      redis.disconnect();
      await server.stop();
    }
  }, 30_000);

  it('in production refuses to start private servers and names the variable to set', async () => {
    const port = await freePort(); // nothing listens there
    const config = loadConfig({
      NODE_ENV: 'production',
      JWT_SECRET: 'x'.repeat(32),
      DATABASE_ADMIN_URL: `postgres://postgres@127.0.0.1:${port}/postgres`,
    });
    const err: unknown = await resolveServices(config, logger).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DependencyUnreachableError);
    expect((err as DependencyUnreachableError).variable).toBe('DATABASE_ADMIN_URL');
  });

  it('outside production replaces an unreachable configured Redis with a private one', async () => {
    const port = await freePort();
    const config = loadConfig({ NODE_ENV: 'test', REDIS_URL: `redis://127.0.0.1:${port}` });
    const services = await resolveServices(config, logger, { ephemeral: true, database: 'postgres' });
    try {
      expect(services.redisUrl).not.toBe(`redis://127.0.0.1:${port}`);
      const redis = new Redis(services.redisUrl);
      expect(await redis.ping()).toBe('PONG');
      redis.disconnect();
    } finally {
      await services.close();
    }
  }, 60_000);
});
