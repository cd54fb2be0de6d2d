import { randomUUID } from 'node:crypto';

import {
  type BackendFactory,
  type IQueueBackend,
  type Job,
  Queue,
  UnrecoverableError,
  Worker,
  type WorkerOptions,
} from 'bullmq';
import type { Redis } from 'ioredis';

import type { Clock } from '../domain/clock';
import type { Logger } from '../logger';
import { FairScheduler, mulberry32, type TenantSchedule } from './fairScheduler';
import { type JobKind, type Keyspace, tenantQueueName } from './names';

export interface DispatcherOptions {
  kind: JobKind;
  /** Shared connection for commands (BullMQ needs `maxRetriesPerRequest: null`). */
  connection: Redis;
  keys: Keyspace;
  /** Jobs run at once in this process. */
  concurrency: number;
  /** Runs a job; `tenantId` is the tenant whose queue it came from (the only one it may act for). */
  process: (job: Job, tenantId: string) => Promise<unknown>;
  /** A tenant's scheduling settings (weight, caps); called when a tenant is first seen and on refresh. */
  scheduleOf: (tenantId: string) => Promise<TenantSchedule>;
  logger: Logger;
  clock: Clock;
  /** Seed of the scheduler's tie-breaking. Default 1. */
  seed?: number;
  /** BullMQ job lock, ms; renewed at half. Default 30000. */
  lockDurationMs?: number;
  /** How often a tenant worker looks for stalled jobs, ms. Default 15000. */
  stalledIntervalMs?: number;
  /** Full re-read of the active-tenant set, ms (wake-ups make this a safety net). Default 1000. */
  refreshMs?: number;
}

interface TenantWorker {
  worker: Worker<unknown, unknown, string, IQueueBackend>;
  /** For counts and the paused flag; shares the command connection. */
  queue: Queue;
}

/**
 * The thin Redis/BullMQ glue around `FairScheduler`: whenever a slot is free it asks the core
 * which tenant goes next and fetches that tenant's job with BullMQ's manual `getNextJob`.
 *
 * Connections stay flat in the number of tenants: every per-tenant `Worker` is built on one
 * backend (`forQueue`) sharing the process's command connection and a single (unused) blocking
 * connection, plus one subscriber for wake-ups. Discovery: the ingress adds a tenant to
 * `keys.activeTenants(kind)` and publishes on `keys.workAvailable(kind)` with every job.
 * Cross-process caps use BullMQ's own per-queue global concurrency and rate limit, which its
 * `moveToActive` script enforces atomically; the core enforces the same caps locally.
 */
export class Dispatcher {
  private readonly scheduler: FairScheduler;
  private readonly tenants = new Map<string, TenantWorker>();
  private readonly registrations = new Map<string, Promise<TenantWorker>>();
  private readonly running = new Set<Promise<void>>();
  private root: Worker | undefined;
  private subscriber: Redis | undefined;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly lockDurationMs: number;

  constructor(private readonly o: DispatcherOptions) {
    this.scheduler = new FairScheduler({ rng: mulberry32(o.seed ?? 1), capacity: o.concurrency });
    this.lockDurationMs = o.lockDurationMs ?? 30_000;
  }

  async start(): Promise<void> {
    const base = this.workerOptions();
    this.root = new Worker(`{_dispatch}.${this.o.kind}`, null, base);
    this.root.on('error', (err) => this.o.logger.warn({ err: err.message }, 'dispatcher worker error'));
    await this.root.waitUntilReady();
    this.subscriber = this.o.connection.duplicate();
    this.subscriber.on('error', () => undefined);
    const wakeChannel = this.o.keys.workAvailable(this.o.kind);
    await this.subscriber.subscribe(wakeChannel, this.o.keys.scheduleChanged());
    this.subscriber.on('message', (channel: string, tenantId: string) => {
      if (channel === wakeChannel) this.noteWork(tenantId);
      else if (this.tenants.has(tenantId)) {
        this.reschedule(tenantId).catch((err: unknown) =>
          this.o.logger.warn({ err, tenant_id: tenantId }, 'cannot reschedule tenant'),
        );
      }
    });
    await this.refresh();
    this.refreshTimer = setInterval(() => {
      this.refresh().catch((err: unknown) => this.o.logger.warn({ err }, 'active-tenant refresh failed'));
    }, this.o.refreshMs ?? 1000);
    this.loop = this.run();
  }

  /** Stops fetching, lets running jobs finish (BullMQ releases the rest when their locks lapse), closes. */
  async close(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.refreshTimer);
    this.wake?.();
    await this.loop;
    await Promise.allSettled(this.running);
    await Promise.allSettled([...this.tenants.values()].flatMap((t) => [t.worker.close(), t.queue.close()]));
    this.tenants.clear();
    this.registrations.clear();
    await this.root?.close();
    this.subscriber?.disconnect();
  }

  snapshot() {
    return this.scheduler.snapshot();
  }

  /** Re-reads a tenant's schedule (after an operator changed it). */
  async reschedule(tenantId: string): Promise<void> {
    this.scheduler.setTenant(tenantId, await this.o.scheduleOf(tenantId));
    this.wake?.();
  }

  private workerOptions(): WorkerOptions {
    return {
      connection: this.o.connection,
      prefix: this.o.keys.prefix,
      autorun: false,
      lockDuration: this.lockDurationMs,
      stalledInterval: this.o.stalledIntervalMs ?? 15_000,
      maxStalledCount: 2,
    };
  }

  /**
   * Registers a tenant once: concurrent wake-ups share one registration, and the scheduler knows
   * the tenant before anything else can see its entry (a second wake-up arriving while the first
   * still reads the schedule used to reach the scheduler first and crash the worker).
   */
  private ensureTenant(tenantId: string): Promise<TenantWorker> {
    let pending = this.registrations.get(tenantId);
    if (!pending) {
      pending = this.register(tenantId);
      this.registrations.set(tenantId, pending);
      pending.catch(() => this.registrations.delete(tenantId));
    }
    return pending;
  }

  private async register(tenantId: string): Promise<TenantWorker> {
    this.scheduler.setTenant(tenantId, await this.o.scheduleOf(tenantId));
    const rootBackend = this.root!.getBackend();
    const name = tenantQueueName(tenantId, this.o.kind);
    // A sibling of the root backend: same command and blocking connections, another queue's keys.
    const shared: BackendFactory = (queueName) => rootBackend.forQueue(queueName, this.o.keys.prefix);
    const worker = new Worker(name, null, this.workerOptions(), shared);
    worker.on('error', (err) =>
      this.o.logger.warn({ err: err.message, tenant_id: tenantId }, 'tenant worker error'),
    );
    const queue = new Queue(name, { connection: this.o.connection, prefix: this.o.keys.prefix });
    queue.on('error', () => undefined);
    const entry = { worker, queue };
    this.tenants.set(tenantId, entry);
    // Jobs whose worker died are moved back to waiting by whichever process checks this queue.
    void worker.startStalledCheckTimer();
    return entry;
  }

  private noteWork(tenantId: string): void {
    this.ensureTenant(tenantId)
      .then(() => {
        this.scheduler.markBacklogged(tenantId);
        this.wake?.();
      })
      .catch((err: unknown) => this.o.logger.warn({ err, tenant_id: tenantId }, 'cannot schedule tenant'));
  }

  private async refresh(): Promise<void> {
    const members = await this.o.connection.smembers(this.o.keys.activeTenants(this.o.kind));
    for (const tenantId of members) this.noteWork(tenantId);
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      let tenantId: string | undefined;
      while (!this.stopping && (tenantId = this.scheduler.pick(this.o.clock.now())) !== undefined) {
        await this.fetchAndStart(tenantId);
      }
      if (this.stopping) break;
      const next = this.scheduler.nextEligibleAt(this.o.clock.now());
      const sleepMs = next === undefined ? 250 : Math.max(1, next - this.o.clock.now());
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, sleepMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  private async fetchAndStart(tenantId: string): Promise<void> {
    const { worker } = this.tenants.get(tenantId)!;
    const token = randomUUID();
    let job: Job | undefined;
    try {
      job = await worker.getNextJob(token, { block: false });
    } catch (err) {
      this.scheduler.unpick(tenantId);
      this.scheduler.deferUntil(tenantId, this.o.clock.now() + 500);
      this.o.logger.warn({ err, tenant_id: tenantId }, 'fetching a job failed');
      return;
    }
    if (!job) {
      this.scheduler.unpick(tenantId);
      await this.settleEmpty(tenantId);
      return;
    }
    const done = this.execute(tenantId, job, token).finally(() => {
      this.running.delete(done);
      this.scheduler.finished(tenantId);
      this.wake?.();
    });
    this.running.add(done);
  }

  /**
   * No job came back: the queue is empty, paused, or at its global cap. Only an empty queue
   * leaves the active set; the others are retried a little later.
   */
  private async settleEmpty(tenantId: string): Promise<void> {
    const { queue } = this.tenants.get(tenantId)!;
    const [c, paused] = await Promise.all([
      queue.getJobCounts('wait', 'prioritized', 'delayed', 'active'),
      queue.isPaused(),
    ]);
    const ready = (c.wait ?? 0) + (c.prioritized ?? 0);
    if (ready > 0 && !paused) {
      // At its global cap or rate limit in another process: look again shortly.
      this.scheduler.deferUntil(tenantId, this.o.clock.now() + 20);
      return;
    }
    this.scheduler.markIdle(tenantId);
    if (ready + (c.delayed ?? 0) + (c.active ?? 0) === 0) {
      // A job added after the count announces itself on the wake channel, so nothing is lost.
      await this.o.connection.srem(this.o.keys.activeTenants(this.o.kind), tenantId);
    } else if ((c.delayed ?? 0) > 0 && !paused) {
      this.scheduler.markBacklogged(tenantId);
      this.scheduler.deferUntil(tenantId, this.o.clock.now() + 1000);
    }
  }

  private async execute(tenantId: string, job: Job, token: string): Promise<void> {
    const renew = setInterval(() => {
      job.extendLock(token, this.lockDurationMs).catch(() => undefined);
    }, this.lockDurationMs / 2);
    try {
      const result = await this.o.process(job, tenantId);
      await job.moveToCompleted(result, token, false);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.o.logger.warn({ err: error, tenant_id: tenantId, job_id: job.id }, 'job failed');
      await job
        .moveToFailed(error, token, false)
        .catch((e: unknown) => this.o.logger.error({ err: e }, 'cannot fail job'));
      if (!(error instanceof UnrecoverableError) && job.attemptsMade < (job.opts.attempts ?? 1)) {
        // Retries wait in `delayed`; look at the tenant again when the backoff is over.
        this.scheduler.markBacklogged(tenantId);
      }
    } finally {
      clearInterval(renew);
    }
  }
}
