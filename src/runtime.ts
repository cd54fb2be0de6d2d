import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { createApp } from './api/app';
import { SocketServer } from './api/sockets/socketServer';
import { ensureBootstrapAdmin } from './auth/bootstrap';
import { compose } from './composition';
import type { Config } from './config';
import { Database } from './db/database';
import { migrate } from './db/migrate';
import { closeAll } from './lifecycle';
import { sealStoredAgentKeys } from './llm/agentKeys';
import type { Logger } from './logger';
import { resolveServices } from './services/localServices';
import { startWorkerPool } from './workers/workerPool';

export type Role = 'api' | 'worker' | 'all';

/** How long an idle HTTP connection is kept open, ms (longer than common proxies' 60 s idle timeout). */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

export interface Runtime {
  /** Base URL of the HTTP server; empty for the worker role. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Finds or starts PostgreSQL and Redis, migrates, and starts the roles asked for. Signals are
 * handled by the entry file, not here.
 */
export async function startRuntime(config: Config, logger: Logger, role: Role): Promise<Runtime> {
  const services = await resolveServices(config, logger);
  const cleanups: (() => Promise<unknown>)[] = [() => services.close()];
  try {
    if (services.databaseAdminUrl !== services.databaseUrl) {
      const result = await migrate({
        adminUrl: services.databaseAdminUrl,
        appRole: config.appRole,
        appPassword: config.databaseUrl ? new URL(config.databaseUrl).password || undefined : undefined,
        logger,
      });
      logger.info({ applied: result.applied.length, version: result.version }, 'database migrated');
    } else {
      logger.info('DATABASE_ADMIN_URL not set: assuming migrations were applied with `npm run migrate`');
    }

    const composition = await compose({
      config,
      logger,
      databaseUrl: services.databaseUrl,
      redisUrl: services.redisUrl,
    });
    cleanups.unshift(() => composition.close());
    await ensureBootstrapAdmin(composition.deps.db, config, logger);
    const { deps } = composition;
    // Agent secrets (LLM API keys, webhook secrets) stored in plaintext by older versions are
    // sealed; workers also check they can open them.
    // In the background (one short transaction per tenant must not hold up start-up); shutdown
    // stops it between tenants and waits for it before the pool closes.
    const sealing = new AbortController();
    const sealed = sealStoredAgentKeys({
      db: deps.db,
      box: composition.secretBox,
      logger,
      verify: role !== 'api',
      signal: sealing.signal,
    }).catch((err: unknown) => logger.error({ err }, 'sealing stored agent secrets failed'));
    cleanups.unshift(() => {
      sealing.abort();
      return sealed;
    });
    if (role === 'worker' || role === 'all') {
      // With the API in the same process, the workers get a pool of their own: the API's
      // requests (operators' endpoints, reads) never wait behind the workers' transactions.
      const workerDb =
        role === 'all'
          ? new Database({
              url: services.databaseUrl,
              ...config.db,
              logger,
              applicationName: 'maihive-worker',
            })
          : deps.db;
      if (workerDb !== deps.db) cleanups.unshift(() => workerDb.close());
      const pool = await startWorkerPool({
        redisUrl: services.redisUrl,
        db: workerDb,
        keys: deps.keys,
        tenants: deps.tenants,
        logger,
        clock: deps.clock,
        concurrency: config.workerConcurrency,
        llmMaxConcurrencyPerTenant: config.llmMaxConcurrencyPerTenant,
        llmPrices: config.llmPrices,
        statsRetention: config.statsRetention,
        memoryPurgeIntervalMs: config.memoryPurgeIntervalMs,
        telemetry: { recorder: deps.telemetry, beat: deps.processBeat },
        secretBox: composition.secretBox,
        plugins: deps.plugins.catalog,
      });
      // Workers stop before the pools and servers they use (cleanups run first to last).
      cleanups.unshift(() => pool.close());
    }
    let url = '';
    if (role === 'api' || role === 'all') {
      const app = createApp(deps);
      const server: Server = app.listen(config.port, config.host);
      // Adapters and API clients keep their connections: a busy process accepts new connections
      // only between other work (under a flood, seconds for a burst of hundreds), so a client
      // should not have to reconnect every few seconds of quiet (Node's default: after 5 s).
      server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
      server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1000;
      await once(server, 'listening');
      cleanups.unshift(
        () =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeIdleConnections();
          }),
      );
      // Chat sockets (NapCat's reverse WebSocket, MaiBot adapters' maim_message) and the operator's
      // maim listener ports; its sockets close before the server (which waits for them).
      const sockets = new SocketServer(deps);
      cleanups.unshift(() => sockets.close());
      await sockets.attach(server);
      await sockets.listenOnPorts(config.host);
      url = `http://${config.host}:${(server.address() as AddressInfo).port}`;
    }
    logger.info({ url, role, started: services.started }, 'maihive started');

    let closing: Promise<void> | undefined;
    return {
      url,
      close: () => (closing ??= closeAll(cleanups.splice(0))),
    };
  } catch (err) {
    await closeAll(cleanups).catch(() => undefined);
    throw err;
  }
}
