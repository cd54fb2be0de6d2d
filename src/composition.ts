import { randomBytes } from 'node:crypto';

import { IngressGate } from './api/http/ingressGate';
import { RefusalLog } from './api/http/refusalLog';
import { ApiKeyDirectory } from './auth/apiKeyDirectory';
import { TenantDirectory } from './auth/tenantDirectory';
import { TokenService } from './auth/tokens';
import type { Config } from './config';
import { EffectiveConfigReader } from './configuration/effectiveConfig';
import { Database } from './db/database';
import { MemoryAccessCounter } from './db/memoryAccessCounter';
import { latestMigrationVersion } from './db/migrate';
import type { Dependencies } from './dependencies';
import { type Clock, systemClock } from './domain/clock';
import { watchAgentChanges } from './ingress/agentLookup';
import { OutcomeWaiters } from './ingress/outcomeWaiters';
import { RateRefusals } from './ingress/rateRefusals';
import { closeAll, closeAllAtOnce } from './lifecycle';
import type { SecretBox } from './llm/secretBox';
import { serverSecretBox } from './llm/serverSecretBox';
import type { Logger } from './logger';
import { PluginCatalog } from './plugins/catalog';
import { PluginRuntime } from './plugins/pluginRuntime';
import { PACKAGE_VERSION } from './projectRoot';
import { TenantQueues } from './queues/tenantQueues';
import { ChannelHub } from './redis/channelHub';
import { connectRedis } from './redis/connect';
import { keyspace } from './redis/keys';
import { developmentSecret } from './services/privateServers';
import { ProcessBeat } from './telemetry/processBeat';
import { TelemetryRecorder } from './telemetry/telemetryRecorder';

export interface CompositionOptions {
  config: Config;
  logger: Logger;
  /** Application-role PostgreSQL URL. */
  databaseUrl: string;
  redisUrl: string;
  clock?: Clock;
}

export interface Composition {
  readonly deps: Dependencies;
  /** The server's box for stored secrets; workers open agents' LLM API keys with it. */
  readonly secretBox: SecretBox;
  /** Closes queues, Redis and the pool; runs every step even if one fails. Idempotent (same promise). */
  close(): Promise<void>;
}

/** Builds the long-lived parts every role shares. The one place where they are wired together. */
export async function compose(options: CompositionOptions): Promise<Composition> {
  const { config, logger } = options;
  const clock = options.clock ?? systemClock;
  // First: a missing production key is a configuration error, reported before anything connects.
  const secretBox = serverSecretBox(config);
  const db = new Database({ url: options.databaseUrl, ...config.db, logger });
  // Commands fail fast while Redis is down (no offline queue): callers answer 503 instead of hanging.
  // Auto-pipelining sends the commands issued in one event-loop turn (concurrent sends' token
  // checks, admission scripts, job adds, announcements) in one write, which Redis reads and answers
  // at once: under load Redis spends ~15-20 % less CPU per send (bench:ingress) and the API about
  // the same (fewer syscalls, more ioredis bookkeeping).
  const redis = connectRedis(options.redisUrl, {
    enableAutoPipelining: true,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 3000,
    commandTimeout: 3000,
  });
  redis.on('error', (err) => logger.warn({ err }, 'redis connection error'));
  // BullMQ's queues get a connection of their own, without auto-pipelining: BullMQ defines its 64
  // scripts as commands on the connection it is given, and ioredis copies every defined command
  // onto each pipeline it makes — with auto-pipelining, one per event-loop turn: 71 µs a pipeline
  // with them, 9.6 µs without (bench:ingress helper measurement, load 5). A job's add and its
  // announcement still go out together, in one turn on this connection.
  const queueRedis = connectRedis(options.redisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 3000,
    commandTimeout: 3000,
  });
  queueRedis.on('error', (err) => logger.warn({ err }, 'redis queue connection error'));
  // Without an offline queue, commands sent before the connection is up would fail: wait for it.
  await Promise.all([redis.connect(), queueRedis.connect()]);
  const keys = keyspace(config.redisPrefix);
  const queues = new TenantQueues(queueRedis, config.redisPrefix);
  const channels = new ChannelHub(redis, logger);
  // Agents changed through any API process leave this process's send-path cache at once.
  await watchAgentChanges(channels, keys, db);
  const tenants = new TenantDirectory(db, redis, keys);
  // Tenant changes made through any process leave this process's copies at once.
  await tenants.watch(channels);
  // Configuration changed through any process leaves this process's cache at once.
  const configReader = new EffectiveConfigReader({ db, redis, keys, tenants, clock, logger });
  // Asymmetric keys, when configured, replace the HS256 secret (no development secret is made then).
  const tokenKeys = config.jwtKeys
    ? { keys: config.jwtKeys }
    : {
        secret:
          config.jwtSecret ??
          developmentSecret(config.dataDir, 'jwt-secret', () => randomBytes(48).toString('base64url')),
      };
  const plugins = new PluginRuntime(PluginCatalog.load({ pluginDir: config.pluginDir, logger }), {
    db,
    clock,
    logger,
  });
  // Configuration (and plugin) changes made through any process leave this process's caches at once.
  await configReader.watch(channels, [plugins.forgetTenant]);
  const ingress = new IngressGate(config.ingress);
  ingress.start();
  const refusalLog = new RefusalLog(logger);
  const telemetry = new TelemetryRecorder({ redis, keys, clock, logger });
  telemetry.start();
  const memoryAccess = new MemoryAccessCounter(db, logger);
  const startedAt = clock.now();
  const processBeat = new ProcessBeat({ redis, keys, clock, logger, startedAt });
  const deps: Dependencies = {
    config,
    logger,
    db,
    redis,
    keys,
    queues,
    channels,
    outcomes: new OutcomeWaiters(channels, keys),
    ingress,
    rateRefusals: new RateRefusals(),
    refusalLog,
    tokens: new TokenService({
      ...tokenKeys,
      accessTtlSeconds: config.accessTokenTtlSeconds,
      now: () => clock.now(),
    }),
    tenants,
    configReader,
    apiKeys: new ApiKeyDirectory(db, redis, keys),
    secrets: secretBox,
    adapterSecrets: secretBox,
    plugins,
    telemetry,
    memoryAccess,
    processBeat,
    clock,
    version: PACKAGE_VERSION,
    startedAt,
    expectedSchemaVersion: await latestMigrationVersion(),
  };
  let closing: Promise<void> | undefined;
  return {
    deps,
    secretBox,
    close: () =>
      (closing ??= closeAll([
        () => ingress.close(),
        () => refusalLog.flush(),
        () => plugins.close(),
        () => memoryAccess.drain(),
        () => closeAllAtOnce([() => telemetry.close(), () => processBeat.close()]),
        () => closeAllAtOnce([() => queues.close(), () => channels.close()]),
        () =>
          closeAllAtOnce([
            () => redis.quit().catch(() => redis.disconnect()),
            () => queueRedis.quit().catch(() => queueRedis.disconnect()),
            () => db.close(),
          ]),
      ])),
  };
}
