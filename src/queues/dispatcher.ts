import { randomUUID } from 'node:crypto';

import {
  type BackendFactory,
  type IQueueBackend,
  type Job,
  type JobJson,
  Queue,
  Worker,
  type WorkerOptions,
} from 'bullmq';
import type { Redis } from 'ioredis';

import type { Clock } from '../domain/clock';
import { closeAll, closeAllAtOnce } from '../lifecycle';
import type { Logger } from '../logger';
import { type Keyspace } from '../redis/keys';
import { RedisScript } from '../redis/redisScript';
import { FairScheduler, mulberry32, type TenantSchedule } from './fairScheduler';
import { type JobKind, tenantQueueName } from './names';
import { asBullmqFailure, retryDecision } from './retryDecision';

export interface DispatcherOptions {
  kind: JobKind;
  /** Shared connection for commands (BullMQ needs `maxRetriesPerRequest: null`). */
  connection: Redis;
  keys: Keyspace;
  /** Jobs run at once in this process. */
  concurrency: number;
  /**
   * Runs a job; `tenantId` is the tenant whose queue it came from (the only one it may act for),
   * `log` a child of `logger` carrying `kind`, `tenant_id` and `job_id`.
   */
  process: (job: Job, tenantId: string, log: Logger) => Promise<unknown>;
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
  /** Picks per round of a weight-1 tenant (`FairSchedulerOptions.quantum`). Default 8. */
  quantum?: number;
  /** Told of every job run (telemetry); must not throw. */
  onJob?: (run: JobRun) => void;
}

/** One job run as `DispatcherOptions.onJob` hears of it. */
export interface JobRun {
  kind: JobKind;
  tenantId: string;
  ok: boolean;
  /** From when the job was due (added, plus its delay) to when its processor started, ms. */
  queueWaitMs: number;
  /** The processor's run, ms. */
  processingMs: number;
}

/**
 * Fetches of one tenant's queue out at once once its last two found a job (a backlog, most
 * likely); otherwise one, so a tenant with a job or two costs no burst of empty fetches. While
 * this many are out the tenant is held out of the round and loses its turn: with 4, a weight-3
 * tenant (24 picks a turn at quantum 8) was held often enough to lose up to 2 % of its share
 * (bench:fairness, 3:2:1); with 16, under 1 %.
 */
const FETCH_AHEAD = 16;

/**
 * A queue's jobs by state, read in one call after a fetch found nothing: `[ready, delayed, active,
 * paused, due]`, `due` the earliest delayed job's time (ms; 0 when none: BullMQ scores a delayed
 * job `timestamp * 0x1000 + counter`). Keys of one queue only (one hash slot); the active-tenant
 * set is updated beside it.
 */
const QUEUE_STATE = new RedisScript(`
local ready = redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2])
local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
local due = first[2] and math.floor(tonumber(first[2]) / 4096) or 0
return { ready, redis.call('ZCARD', KEYS[3]), redis.call('LLEN', KEYS[4]), redis.call('HEXISTS', KEYS[5], 'paused'), due,
  redis.call('ZCARD', KEYS[6]) }`);

/** Longest wait before a tenant whose jobs are all delayed is looked at again, ms. */
const DELAYED_RECHECK_MS = 1000;

/** What a dispatcher's glue did so far (metrics, benchmarks). */
export interface DispatcherCounters {
  /** `getNextJob` calls, and those that found a job. */
  fetches: number;
  fetchHits: number;
  /** Completions that asked for the same tenant's next job, and those that got one. */
  chains: number;
  chainHits: number;
  /** Queue-state reads after a fetch or chain found nothing. */
  settles: number;
}

/**
 * A tenant's BullMQ worker, used only for its scripts: fetching by hand (`getNextJob`) and turning
 * the job that `moveToCompleted(…, fetchNext)` hands over into a `Job`, as BullMQ's own loop does.
 */
class TenantWorker extends Worker<unknown, unknown, string, IQueueBackend> {
  jobFrom(next: unknown, token: string): Promise<Job | undefined> {
    if (!Array.isArray(next) || !next[0]) return Promise.resolve(undefined);
    const [jobData, jobId] = next as [JobJson, string];
    return this.nextJobFromJobData(jobData, jobId, token);
  }
}

interface TenantEntry {
  worker: TenantWorker;
  /** For counts and the paused flag; shares the command connection. */
  queue: Queue;
  /** Fetches (`getNextJob`) out now. */
  fetching: number;
  /**
   * Fetches in a row that found a job, back to 0 when one finds none or a settle finds nothing
   * ready (after a chained fetch came back empty): from two on, up to `FETCH_AHEAD` may be out at
   * once.
   */
  streak: number;
  /** A `settleEmpty` is running; another empty fetch meanwhile sets `resettle` instead. */
  settling: boolean;
  resettle: boolean;
  /** Empty fetches in a row while the queue had ready jobs (refused by a cap elsewhere). */
  refusals: number;
  /** Whether this process last put the tenant in (true) or took it out of (false) the failed set. */
  failedListed?: boolean;
}

/**
 * The thin Redis/BullMQ glue around `FairScheduler`: whenever a slot is free it asks the core
 * which tenant goes next and fetches that tenant's job with BullMQ's manual `getNextJob`; when a
 * job ends and the core picks the same tenant again (its affinity, see README), the completion
 * fetches the next job in the same script call, as BullMQ's own Worker does.
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
  private readonly tenants = new Map<string, TenantEntry>();
  private readonly registrations = new Map<string, Promise<TenantEntry>>();
  private readonly running = new Set<Promise<void>>();
  private root: Worker | undefined;
  private subscriber: Redis | undefined;
  private pumpQueued = false;
  private sleepTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private closing: Promise<void> | undefined;
  private readonly lockDurationMs: number;
  get kind(): JobKind {
    return this.o.kind;
  }

  readonly counters: DispatcherCounters = { fetches: 0, fetchHits: 0, chains: 0, chainHits: 0, settles: 0 };

  constructor(private readonly o: DispatcherOptions) {
    this.scheduler = new FairScheduler({
      rng: mulberry32(o.seed ?? 1),
      capacity: o.concurrency,
      quantum: o.quantum ?? 8,
      // 1 slot in 25 (at least one) waits for newcomers while they keep coming, so a quiet
      // tenant's job need not wait for a flood's job to end; none with a single slot.
      reserve: o.concurrency >= 2 ? Math.max(1, Math.floor(o.concurrency / 25)) : 0,
    });
    this.lockDurationMs = o.lockDurationMs ?? 30_000;
  }

  async start(): Promise<void> {
    const base = this.workerOptions();
    this.root = new Worker(`{_dispatch}.${this.o.kind}`, null, base);
    this.root.on('error', (err) => this.o.logger.warn({ err, kind: this.o.kind }, 'dispatcher worker error'));
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
    this.wake();
  }

  /**
   * Stops fetching, lets running jobs finish (BullMQ releases the rest when their locks lapse),
   * closes. Every call returns the same promise, settled when all of that is done.
   */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    clearInterval(this.refreshTimer);
    clearTimeout(this.sleepTimer);
    // Jobs and fetches may add to `running` while it is awaited (a fetch starts its job).
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
    // A registration still reading its schedule either adds its tenant now or gives up.
    await Promise.allSettled([...this.registrations.values()]);
    const tenants = [...this.tenants.values()];
    this.tenants.clear();
    this.registrations.clear();
    await closeAll([
      () => closeAllAtOnce(tenants.flatMap((t) => [() => t.worker.close(), () => t.queue.close()])),
      () => this.root?.close(),
      () => this.subscriber?.disconnect(),
    ]);
  }

  snapshot() {
    return this.scheduler.snapshot();
  }

  /** Re-reads a tenant's schedule (after an operator changed it). */
  async reschedule(tenantId: string): Promise<void> {
    this.scheduler.setTenant(tenantId, await this.o.scheduleOf(tenantId));
    this.wake();
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
  private ensureTenant(tenantId: string): Promise<TenantEntry> {
    let pending = this.registrations.get(tenantId);
    if (!pending) {
      pending = this.register(tenantId);
      this.registrations.set(tenantId, pending);
      pending.catch(() => this.registrations.delete(tenantId));
    }
    return pending;
  }

  private async register(tenantId: string): Promise<TenantEntry> {
    const schedule = await this.o.scheduleOf(tenantId);
    // Closed meanwhile: a worker made now would never be closed, and its stalled check would run on.
    if (this.stopping) throw new Error('the dispatcher is closing');
    this.scheduler.setTenant(tenantId, schedule);
    const rootBackend = this.root!.getBackend();
    const name = tenantQueueName(tenantId, this.o.kind);
    // A sibling of the root backend: same command and blocking connections, another queue's keys.
    const shared: BackendFactory = (queueName) => rootBackend.forQueue(queueName, this.o.keys.prefix);
    const worker = new TenantWorker(name, null, this.workerOptions(), shared);
    worker.on('error', (err) =>
      this.o.logger.warn({ err, kind: this.o.kind, tenant_id: tenantId }, 'tenant worker error'),
    );
    const queue = new Queue(name, { connection: this.o.connection, prefix: this.o.keys.prefix });
    queue.on('error', () => undefined);
    const entry: TenantEntry = {
      worker,
      queue,
      fetching: 0,
      streak: 0,
      settling: false,
      resettle: false,
      refusals: 0,
    };
    this.tenants.set(tenantId, entry);
    // Jobs whose worker died are moved back to waiting by whichever process checks this queue.
    void worker.startStalledCheckTimer();
    return entry;
  }

  private noteWork(tenantId: string): void {
    this.ensureTenant(tenantId)
      .then(() => {
        this.scheduler.markBacklogged(tenantId);
        this.wake();
      })
      .catch((err: unknown) => {
        if (!this.stopping) this.o.logger.warn({ err, tenant_id: tenantId }, 'cannot schedule tenant');
      });
  }

  private async refresh(): Promise<void> {
    const members = await this.o.connection.smembers(this.o.keys.activeTenants(this.o.kind));
    for (const tenantId of members) this.noteWork(tenantId);
  }

  /** Runs `pump` once soon; many wake-ups in one tick cost one pump. */
  private wake(): void {
    if (this.pumpQueued || this.stopping) return;
    this.pumpQueued = true;
    setImmediate(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  /**
   * Fills every free slot the core allows, without waiting for the fetches: they run side by side
   * (one pipelined round trip for many), each holding the slot its pick reserved. Then sleeps until
   * a throttled tenant is due; a finished job, a fetch or new work wakes it sooner.
   */
  private pump(): void {
    clearTimeout(this.sleepTimer);
    let tenantId: string | undefined;
    while (!this.stopping && (tenantId = this.scheduler.pick(this.o.clock.now())) !== undefined) {
      this.track(this.fetch(tenantId));
    }
    if (this.stopping) return;
    const next = this.scheduler.nextEligibleAt(this.o.clock.now());
    const sleepMs = next === undefined ? 250 : Math.max(1, next - this.o.clock.now());
    this.sleepTimer = setTimeout(() => this.wake(), sleepMs);
  }

  private track(work: Promise<void>): void {
    const tracked = work
      .catch((err: unknown) => this.o.logger.error({ err }, 'dispatcher task failed'))
      .finally(() => this.running.delete(tracked));
    this.running.add(tracked);
  }

  /** Fetches a job of the tenant for the slot its pick reserved, and runs it. */
  private async fetch(tenantId: string): Promise<void> {
    const entry = this.tenants.get(tenantId)!;
    entry.fetching++;
    this.holdIfFetching(tenantId, entry);
    const token = randomUUID();
    let job: Job | undefined;
    try {
      job = await entry.worker.getNextJob(token, { block: false });
    } catch (err) {
      this.o.logger.warn({ err, tenant_id: tenantId }, 'fetching a job failed');
      entry.fetching--;
      this.holdIfFetching(tenantId, entry);
      this.scheduler.unpick(tenantId);
      this.scheduler.deferUntil(tenantId, this.o.clock.now() + 500);
      return;
    }
    entry.fetching--;
    entry.streak = job ? entry.streak + 1 : 0;
    this.counters.fetches++;
    if (job) {
      entry.refusals = 0;
      this.counters.fetchHits++;
    }
    this.holdIfFetching(tenantId, entry);
    if (!job) {
      await this.settleEmpty(tenantId);
      return;
    }
    await this.runFrom(tenantId, job, token);
  }

  /** While a fetch of an unproven queue is out, another would most likely find it empty too. */
  private holdIfFetching(tenantId: string, entry: TenantEntry): void {
    this.scheduler.hold(tenantId, entry.fetching >= (entry.streak >= 2 ? FETCH_AHEAD : 1));
  }

  /**
   * Runs jobs in one slot: this job, then as long as the core picks the same tenant for the slot
   * when a job ends, the next one that its completion fetched.
   */
  private async runFrom(tenantId: string, first: Job, token: string): Promise<void> {
    let job: Job | undefined = first;
    while (job) {
      const outcome = await this.execute(tenantId, job, token);
      this.scheduler.finished(tenantId);
      const next = this.stopping ? undefined : this.scheduler.pick(this.o.clock.now(), tenantId);
      if (next !== undefined && next !== tenantId) this.track(this.fetch(next));
      job = await this.finish(tenantId, job, token, outcome, next === tenantId);
      if (next === tenantId) {
        this.counters.chains++;
        if (job) this.counters.chainHits++;
      }
      if (next === tenantId && !job) await this.settleEmpty(tenantId);
      this.wake();
    }
  }

  /** Runs the job's processor with its lock renewed; never throws. */
  private async execute(tenantId: string, job: Job, token: string): Promise<Outcome> {
    const renew = setInterval(() => {
      job.extendLock(token, this.lockDurationMs).catch(() => undefined);
    }, this.lockDurationMs / 2);
    // BullMQ stamps jobs with the wall clock, so waits are measured on it too (not `o.clock`).
    const startedAt = Date.now();
    let ok = false;
    try {
      const log = this.o.logger.child({ kind: this.o.kind, tenant_id: tenantId, job_id: job.id });
      const result = await this.o.process(job, tenantId, log);
      ok = true;
      return { ok: true, result };
    } catch (err) {
      return { ok: false, error: err instanceof Error ? err : new Error(String(err)) };
    } finally {
      clearInterval(renew);
      this.o.onJob?.({
        kind: this.o.kind,
        tenantId,
        ok,
        queueWaitMs: Math.max(0, startedAt - (job.timestamp + (job.delay || 0))),
        processingMs: Date.now() - startedAt,
      });
    }
  }

  /** Moves the job to completed or failed; with `fetchNext`, returns the tenant's next job if any. */
  private async finish(
    tenantId: string,
    job: Job,
    token: string,
    outcome: Outcome,
    fetchNext: boolean,
  ): Promise<Job | undefined> {
    try {
      if (outcome.ok) {
        const next = await job.moveToCompleted(outcome.result, token, fetchNext);
        return fetchNext ? await this.tenants.get(tenantId)!.worker.jobFrom(next, token) : undefined;
      }
      const { error } = outcome;
      this.o.logger.warn(
        { err: error, kind: this.o.kind, tenant_id: tenantId, job_id: job.id },
        'job failed',
      );
      const decision = retryDecision(error, {
        attemptsMade: job.attemptsMade,
        attempts: job.opts.attempts ?? 1,
      });
      const next = await job.moveToFailed(asBullmqFailure(error, decision), token, fetchNext);
      if (decision !== 'retry') this.listFailed(tenantId, true);
      // Retries wait in `delayed`; look at the tenant again when the backoff is over.
      if (decision === 'retry') this.scheduler.markBacklogged(tenantId);
      return fetchNext ? await this.tenants.get(tenantId)!.worker.jobFrom(next, token) : undefined;
    } catch (err) {
      // Lock lost (the stalled check gave the job to someone else) or Redis failed: the job is
      // BullMQ's to recover; this slot just moves on.
      this.o.logger.error(
        { err, kind: this.o.kind, tenant_id: tenantId, job_id: job.id },
        'cannot finish job',
      );
      return undefined;
    }
  }

  /**
   * No job came back for a pick: the queue is empty, paused, or at its global cap or rate limit.
   * The pick is undone, the tenant marked idle and taken out of the active set, and only then are
   * the queue's counts read, so a job announced meanwhile is never lost: its wake-up marks the
   * tenant backlogged again after this, and the set gets it back. Work that is there but cannot
   * be fetched now is looked at again later.
   */
  private async settleEmpty(tenantId: string): Promise<void> {
    const entry = this.tenants.get(tenantId)!;
    // At once, so no pick meanwhile goes for a job that is not there; the read below brings the
    // tenant back if there is work after all.
    this.scheduler.unpick(tenantId);
    this.scheduler.markIdle(tenantId);
    this.wake();
    if (entry.settling) {
      entry.resettle = true; // another empty fetch meanwhile: settle again once this one is done
      return;
    }
    entry.settling = true;
    try {
      do {
        entry.resettle = false;
        await this.settleOnce(tenantId, entry);
      } while (entry.resettle && !this.stopping);
    } finally {
      entry.settling = false;
      this.wake();
    }
  }

  /**
   * Puts the tenant in or takes it out of the kind's failed set (what queue depths read besides
   * the active set); only on a change this process sees, so settles cost no extra round trip.
   */
  private listFailed(tenantId: string, failed: boolean): void {
    const entry = this.tenants.get(tenantId);
    if (entry) entry.failedListed = failed;
    const set = this.o.keys.failedTenants(this.o.kind);
    (failed ? this.o.connection.sadd(set, tenantId) : this.o.connection.srem(set, tenantId)).catch(
      (err: unknown) => {
        if (entry) entry.failedListed = undefined; // try again at the next settle
        this.o.logger.warn({ err, tenant_id: tenantId }, 'cannot update the failed-tenant set');
      },
    );
  }

  private async settleOnce(tenantId: string, entry: TenantEntry): Promise<void> {
    const activeSet = this.o.keys.activeTenants(this.o.kind);
    const k = entry.queue.keys;
    this.counters.settles++;
    this.scheduler.markIdle(tenantId);
    // Sent together: one round trip. The set gets the tenant back below if work is left.
    const [, state] = await Promise.all([
      this.o.connection.srem(activeSet, tenantId),
      QUEUE_STATE.run(
        this.o.connection,
        [k.wait!, k.prioritized!, k.delayed!, k.active!, k.meta!, k.failed!],
        [],
      ),
    ]);
    const [ready = 0, delayed = 0, active = 0, paused = 0, due = 0, failed = 0] = state as number[];
    // Nothing ready: the backlog, if there was one, is gone, and the next wake-up sends one fetch,
    // not a burst (a chained fetch that found nothing used to leave the streak as it was).
    if (ready === 0) entry.streak = 0;
    if (failed > 0 !== entry.failedListed) this.listFailed(tenantId, failed > 0);
    if (ready + delayed + active > 0) await this.o.connection.sadd(activeSet, tenantId);
    if (paused) return; // resuming announces the queue again
    if (ready > 0) {
      // A job that arrived just after the fetch is taken at once; if the queue refuses again, it
      // is at its global cap or rate limit (another process runs its jobs): look again shortly.
      this.scheduler.markBacklogged(tenantId);
      if (entry.refusals++ > 0) this.scheduler.deferUntil(tenantId, this.o.clock.now() + 20);
    } else if (delayed > 0) {
      // Back when the earliest delayed job is due (a retry's backoff, a stream's gathering), or
      // within a second: the clocks of Redis's scores and this process may differ a little.
      const now = this.o.clock.now();
      this.scheduler.markBacklogged(tenantId);
      this.scheduler.deferUntil(tenantId, Math.min(now + DELAYED_RECHECK_MS, Math.max(now + 1, due)));
    }
  }
}

type Outcome = { ok: true; result: unknown } | { ok: false; error: Error };
