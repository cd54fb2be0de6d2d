import type { Job } from 'bullmq';

import type { TenantDirectory } from '../auth/tenantDirectory';
import { EffectiveConfigReader } from '../configuration/effectiveConfig';
import type { Database } from '../db/database';
import { SocketRelay } from '../delivery/socketRelay';
import type { Clock } from '../domain/clock';
import { effectiveSettings } from '../domain/tenantSettings';
import { UnrecoverableJobError } from '../errors';
import { closeAll, closeAllAtOnce } from '../lifecycle';
import { LlmClient } from '../llm/llmClient';
import { RedisLlmConcurrency } from '../llm/llmConcurrency';
import { RedisLlmQuota } from '../llm/llmQuota';
import type { LlmPriceTable } from '../llm/prices';
import type { SecretBox } from '../llm/secretBox';
import type { Logger } from '../logger';
import type { PluginCatalog } from '../plugins/catalog';
import { PluginRuntime } from '../plugins/pluginRuntime';
import { Dispatcher } from '../queues/dispatcher';
import type { TenantSchedule } from '../queues/fairScheduler';
import type { JobKind } from '../queues/names';
import { type HeartflowJobData, TenantQueues } from '../queues/tenantQueues';
import { ChannelHub } from '../redis/channelHub';
import { connectRedis } from '../redis/connect';
import type { Keyspace } from '../redis/keys';
import type { ProcessBeat } from '../telemetry/processBeat';
import type { TelemetryRecorder } from '../telemetry/telemetryRecorder';
import { deliveryJobRunner } from './deliveryProcessor';
import { type HeartflowDeps, processHeartflowJob } from './heartflowProcessor';
import { type SweepJobData, TenantHeat } from './hotStreams';
import { InboundWriter } from './inboundWriter';
import { assertJobTenant } from './jobs';
import { memoryJobRunner } from './memoryProcessor';
import { MemoryPurger } from './memoryPurge';
import { pluginCompletion } from './pluginLlm';
import { statsJobRunner } from './statsProcessor';
import { jobTelemetry, llmTelemetry, pumpDispatcherCounters } from './workerTelemetry';

export interface WorkerPoolOptions {
  redisUrl: string;
  db: Database;
  keys: Keyspace;
  tenants: TenantDirectory;
  logger: Logger;
  clock: Clock;
  /** Heartflow jobs run at once in this process. */
  concurrency: number;
  /** Test hooks: lock and stalled-check timing of the job queue. */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  streamLockTtlMs?: number;
  /** Opens agents' sealed secrets: LLM API keys for the LLM client, webhook secrets for deliveries. */
  secretBox?: SecretBox;
  /** Jobs of each follow-up kind (memory, stats, delivery) a process runs at once. Default 4. */
  followUpConcurrency?: number;
  /** LLM calls of one tenant in flight across all worker processes (`LLM_MAX_CONCURRENCY_PER_TENANT`). Default 4. */
  llmMaxConcurrencyPerTenant?: number;
  /** Test hook: backstop TTL of the pool's configuration cache, ms (default `CONFIG_CACHE_TTL_MS`). */
  configCacheTtlMs?: number;
  /** Plugins the heartflow runs (commands, handlers, actions); none when absent. */
  plugins?: PluginCatalog;
  /** Per-model LLM prices (`LLM_PRICES`). Default none (cost 0 unless an agent sets its own). */
  llmPrices?: LlmPriceTable;
  /** How long minute and hour usage buckets are kept. Default 48 h and 35 days. */
  statsRetention?: { minuteHours: number; hourDays: number };
  /** How often expired memories are purged (one worker process per round), ms. Default none. */
  memoryPurgeIntervalMs?: number;
  /** Shared telemetry (job runs, LLM calls, dispatcher counters) and the process's heartbeat. Default none. */
  telemetry?: { recorder: TelemetryRecorder; beat?: ProcessBeat };
}

export interface WorkerPool {
  /** The heartflow dispatcher (the others serve memory, stats and delivery jobs). */
  readonly dispatcher: Dispatcher;
  /** Closes the dispatchers, the queues and the connection, each even if one fails; idempotent (same promise). */
  close(): Promise<void>;
}

/** A tenant's scheduling settings as the fair scheduler reads them; a suspended tenant is paused. */
export async function scheduleOf(tenants: TenantDirectory, tenantId: string): Promise<TenantSchedule> {
  const meta = await tenants.get(tenantId);
  const s = effectiveSettings(meta?.settings).scheduling;
  return {
    weight: s.weight,
    maxConcurrency: s.max_concurrency,
    rateLimit: s.rate_limit ? { max: s.rate_limit.max, durationMs: s.rate_limit.duration_ms } : undefined,
    paused: meta?.status !== 'active',
  };
}

/** The heartflow worker pool of one process: the fair dispatcher feeding `processHeartflowJob`. */
export async function startWorkerPool(o: WorkerPoolOptions): Promise<WorkerPool> {
  // BullMQ's workers need commands that wait through reconnects rather than fail.
  const connection = connectRedis(o.redisUrl, { maxRetriesPerRequest: null });
  connection.on('error', (err) => o.logger.warn({ err }, 'worker redis connection error'));
  // Every LLM call of the pool (heartflow and memory jobs) is metered against the tenant's quotas.
  const quota = new RedisLlmQuota({
    redis: connection,
    keys: o.keys,
    clock: o.clock,
    quotasOf: async (tenantId) => effectiveSettings((await o.tenants.get(tenantId))?.settings).quotas,
  });
  // ...and holds one of the tenant's LLM call slots, shared with every other worker process.
  const concurrency = new RedisLlmConcurrency({
    redis: connection,
    keys: o.keys,
    maxPerTenant: o.llmMaxConcurrencyPerTenant ?? 4,
  });
  const llm = new LlmClient({
    logger: o.logger,
    clock: o.clock,
    quota,
    concurrency,
    ...(o.llmPrices ? { prices: o.llmPrices } : {}),
    ...(o.telemetry ? { onCall: llmTelemetry(o.telemetry.recorder) } : {}),
    ...(o.secretBox ? { secretBox: o.secretBox } : {}),
  });
  const queues = new TenantQueues(connection, o.keys.prefix);
  // The pool's own configuration cache, kept fresh by change notices of every process.
  const channels = new ChannelHub(connection, o.logger);
  const config = new EffectiveConfigReader({
    db: o.db,
    redis: connection,
    keys: o.keys,
    tenants: o.tenants,
    clock: o.clock,
    logger: o.logger,
    ...(o.configCacheTtlMs ? { ttlMs: o.configCacheTtlMs } : {}),
  });
  const plugins =
    o.plugins &&
    new PluginRuntime(o.plugins, {
      db: o.db,
      clock: o.clock,
      logger: o.logger,
      complete: pluginCompletion(o.db, llm, o.secretBox),
    });
  try {
    await config.watch(channels, plugins ? [plugins.forgetTenant] : []);
  } catch (err) {
    await plugins?.close();
    await channels.close();
    connection.disconnect();
    throw err;
  }
  const heartflowDeps: HeartflowDeps = {
    config,
    db: o.db,
    redis: connection,
    keys: o.keys,
    llm,
    logger: o.logger,
    clock: o.clock,
    queues,
    inbound: new InboundWriter(o.db),
    heat: new TenantHeat(),
    ...(plugins ? { plugins } : {}),
    ...(o.secretBox ? { secretBox: o.secretBox } : {}),
    ...(o.streamLockTtlMs ? { streamLockTtlMs: o.streamLockTtlMs } : {}),
  };
  const common = {
    connection,
    keys: o.keys,
    scheduleOf: (tenantId: string) => scheduleOf(o.tenants, tenantId),
    logger: o.logger,
    clock: o.clock,
    ...(o.lockDurationMs ? { lockDurationMs: o.lockDurationMs } : {}),
    ...(o.stalledIntervalMs ? { stalledIntervalMs: o.stalledIntervalMs } : {}),
    ...(o.telemetry ? { onJob: jobTelemetry(o.telemetry.recorder) } : {}),
  };
  const sockets = new SocketRelay({ redis: connection, prefix: o.keys.prefix, logger: o.logger });
  const kinds = jobKinds(o, heartflowDeps, llm, sockets);
  const dispatcher = new Dispatcher({ ...common, kind: 'heartflow', ...kinds.heartflow });
  const dispatchers = [
    dispatcher,
    ...FOLLOW_UP_KINDS.map((kind) => new Dispatcher({ ...common, kind, ...kinds[kind] })),
  ];
  const started: Dispatcher[] = [];
  try {
    for (const d of dispatchers) {
      await d.start();
      started.push(d);
    }
  } catch (err) {
    await Promise.allSettled(started.map((d) => d.close()));
    await sockets.close();
    await channels.close();
    await plugins?.close();
    connection.disconnect();
    throw err;
  }
  const stopPump = o.telemetry ? pumpDispatcherCounters(o.telemetry.recorder, dispatchers) : () => undefined;
  o.telemetry?.beat?.addRole('worker');
  const purger =
    o.memoryPurgeIntervalMs && o.memoryPurgeIntervalMs > 0
      ? new MemoryPurger({
          db: o.db,
          redis: connection,
          keys: o.keys,
          logger: o.logger,
          intervalMs: o.memoryPurgeIntervalMs,
        })
      : undefined;
  purger?.start();
  let closing: Promise<void> | undefined;
  return {
    dispatcher,
    close: () =>
      (closing ??= closeAll([
        () => closeAllAtOnce(dispatchers.map((d) => () => d.close())),
        () => purger?.close(),
        async () => {
          stopPump();
          await o.telemetry?.recorder.flush();
        },
        () => sockets.close(),
        () => channels.close(),
        () => plugins?.close(),
        () => queues.close(),
        () => connection.quit().catch(() => connection.disconnect()),
      ])),
  };
}

/** The kinds served after the heartflow, in the order their dispatchers start. */
const FOLLOW_UP_KINDS = ['memory', 'stats', 'delivery'] as const satisfies readonly JobKind[];

/** How one job kind is served: its jobs running at once in this process, and its processor. */
interface KindServing {
  concurrency: number;
  process: (job: Job, tenantId: string, log: Logger) => Promise<unknown>;
}

/** The table of job kinds the pool serves; every processor runs only for its queue's tenant. */
function jobKinds(
  o: WorkerPoolOptions,
  heartflowDeps: HeartflowDeps,
  llm: LlmClient,
  sockets: SocketRelay,
): Record<JobKind, KindServing> {
  const followUps = o.followUpConcurrency ?? 4;
  const sealed = o.secretBox ? { secretBox: o.secretBox } : {};
  return {
    heartflow: {
      concurrency: o.concurrency,
      process: async (job, tenantId, log) => {
        assertJobTenant(job, tenantId);
        const data = job.data as HeartflowJobData | SweepJobData;
        const failed = await processHeartflowJob({ ...heartflowDeps, logger: log }, data);
        if (failed.length === 0) return;
        // The outcomes are stored (`failed`, with the reason) and announced; the job fails too,
        // remembering which messages, so that operators see it and a retry answers them again.
        // When Redis was unreachable (a failover), the job's own attempts retry it after backoff.
        const rerun = failed.flatMap((f) => f.messageIds);
        await job.updateData({ ...data, rerun });
        const reason = `reply generation failed for ${rerun.length} message(s) (${rerun.join(', ')}): ${failed[0]!.error}`;
        throw failed.every((f) => f.transient) ? new Error(reason) : new UnrecoverableJobError(reason);
      },
    },
    memory: {
      concurrency: followUps,
      process: memoryJobRunner({
        db: o.db,
        llm,
        logger: o.logger,
        clock: o.clock,
        config: heartflowDeps.config,
        queues: heartflowDeps.queues,
        ...sealed,
      }),
    },
    stats: {
      concurrency: followUps,
      process: statsJobRunner({
        db: o.db,
        logger: o.logger,
        ...(o.statsRetention ? { retention: o.statsRetention } : {}),
      }),
    },
    delivery: {
      concurrency: followUps,
      process: deliveryJobRunner({
        db: o.db,
        logger: o.logger,
        clock: o.clock,
        config: heartflowDeps.config,
        sockets,
        ...sealed,
      }),
    },
  };
}
