import type { Job, JobsOptions } from 'bullmq';

import { bucketStart, type Granularity } from '../domain/usageBuckets';
import { UnrecoverableJobError } from '../errors';
import type { TenantQueues } from '../queues/tenantQueues';
import { encodeId } from '../redis/keys';

export {
  DELIVERY_JOB_OPTIONS,
  type DeliveryJobData,
  deliveryJobId,
  enqueueDelivery,
} from '../queues/deliveryJobs';

/**
 * Payloads of the memory, stats and delivery jobs and the helpers that enqueue them. Each helper
 * makes enqueueing idempotent: a deterministic job id (memory, delivery) or deduplication id
 * (stats) means the same trigger enqueued twice is one job.
 */

/** Memory job: extract facts/preferences and due summaries of one chat stream. */
export interface MemoryJobData {
  tenantId: string;
  agentId: string;
  platform: string;
  chatStreamId: string;
  /** Look at messages up to and including this one (the trigger). */
  upToMessageId?: string;
  /** …or up to this time, ms since the epoch. Neither = everything stored when the job runs. */
  upToTime?: number;
}

/** Stats job: recompute one usage bucket of a tenant from the source tables. */
export interface StatsJobData {
  tenantId: string;
  granularity: Granularity;
  /** Bucket start, ms since the epoch (UTC, aligned to the granularity). */
  bucketStart: number;
}

/** Memory jobs are retried a few times (LLM hiccups); the job itself is idempotent. */
export const MEMORY_JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 5000 },
};

/** How long after a bucket closes its stats job runs, ms (late commits of the bucket land first). */
export const STATS_SETTLE_MS = 5000;
/** The hour bucket is refreshed at most this often while its hour runs, ms. */
export const STATS_HOUR_REFRESH_MS = 60_000;

/** Job id of a memory job: stream plus trigger, so one trigger is one job. */
export function memoryJobId(data: MemoryJobData): string {
  const point = data.upToMessageId ?? (data.upToTime === undefined ? 'all' : `t${data.upToTime}`);
  return `memory.${encodeId(data.chatStreamId)}.${encodeId(point)}`;
}

export async function enqueueMemory(queues: TenantQueues, data: MemoryJobData): Promise<void> {
  await queues.queue(data.tenantId, 'memory').add('memory', data, {
    ...MEMORY_JOB_OPTIONS,
    jobId: memoryJobId(data),
  });
  await queues.announce(data.tenantId, 'memory');
}

/** Deduplication id of a stats bucket. */
export function statsDedupId(granularity: Granularity, start: number): string {
  return `stats.${granularity}.${start}`;
}

/**
 * Per `TenantQueues` (per process): bucket → when the stats job this process last added for it
 * runs, ms. Until shortly before then, adding again would only hit BullMQ's deduplication: the
 * add is skipped, so a busy tenant costs about two stats adds per minute instead of two per batch.
 */
const scheduledStats = new WeakMap<TenantQueues, Map<string, number>>();
/** Adds are not skipped within this many ms of the job's run (it may be running by then). */
const STATS_RESCHEDULE_MARGIN_MS = 1000;
const MAX_SCHEDULED_STATS = 10_000;

function scheduledStatsOf(queues: TenantQueues, nowMs: number): Map<string, number> {
  let scheduled = scheduledStats.get(queues);
  if (!scheduled) scheduledStats.set(queues, (scheduled = new Map<string, number>()));
  if (scheduled.size >= MAX_SCHEDULED_STATS) {
    for (const [key, runAt] of scheduled) if (runAt <= nowMs) scheduled.delete(key);
    if (scheduled.size >= MAX_SCHEDULED_STATS) scheduled.clear();
  }
  return scheduled;
}

/**
 * Schedules the recompute of the minute and the hour holding `atMs` (a message's arrival, an LLM
 * call's time). Call it whenever figures of that time change (a batch finished). Per bucket at
 * most one job waits and one runs (BullMQ deduplication, `keepLastIfActive`): a burst of calls
 * is one job, and a call while the bucket's job runs queues exactly one more, so the last change
 * is always counted. The minute's job waits until the minute is over; the hour's until the hour
 * is over or `STATS_HOUR_REFRESH_MS`, whichever is sooner. A call while this process's last add
 * for the bucket still waits well before its run is skipped (the add would be deduplicated).
 */
export async function enqueueStats(
  queues: TenantQueues,
  tenantId: string,
  atMs: number,
  nowMs: number,
  options: { settleMs?: number; hourRefreshMs?: number } = {},
): Promise<void> {
  const settle = options.settleMs ?? STATS_SETTLE_MS;
  const minute = bucketStart(atMs, 'minute');
  const hour = bucketStart(atMs, 'hour');
  const queue = queues.queue(tenantId, 'stats');
  const scheduled = scheduledStatsOf(queues, nowMs);
  const jobs: { data: StatsJobData; delay: number }[] = [
    {
      data: { tenantId, granularity: 'minute', bucketStart: minute },
      delay: minute + 60_000 + settle - nowMs,
    },
    {
      data: { tenantId, granularity: 'hour', bucketStart: hour },
      delay: Math.min(hour + 3_600_000 + settle - nowMs, options.hourRefreshMs ?? STATS_HOUR_REFRESH_MS),
    },
  ];
  const adds: Promise<unknown>[] = [];
  for (const { data, delay } of jobs) {
    const key = `${tenantId}\0${data.granularity}\0${data.bucketStart}`;
    if ((scheduled.get(key) ?? -Infinity) > nowMs + STATS_RESCHEDULE_MARGIN_MS) continue;
    scheduled.set(key, nowMs + Math.max(0, delay));
    adds.push(
      queue.add('stats', data, {
        attempts: 3,
        backoff: { type: 'exponential', delay: 1000 },
        delay: Math.max(0, delay),
        deduplication: { id: statsDedupId(data.granularity, data.bucketStart), keepLastIfActive: true },
      }),
    );
  }
  if (adds.length === 0) return;
  try {
    await Promise.all(adds);
  } catch (err) {
    // Not added after all: the next call adds again.
    for (const { data } of jobs) scheduled.delete(`${tenantId}\0${data.granularity}\0${data.bucketStart}`);
    throw err;
  }
  await queues.announce(tenantId, 'stats');
}

/** Which attempt a job is on (1-based) and how many it has, as BullMQ counts them. */
export interface JobAttempt {
  attempt: number;
  maxAttempts: number;
}

export function attemptOf(job: Pick<Job, 'attemptsMade' | 'opts'>): JobAttempt {
  return { attempt: job.attemptsMade + 1, maxAttempts: job.opts.attempts ?? 1 };
}

/**
 * The queue a job sits in decides its tenant; a payload naming another tenant is never run (it
 * would act, and sign, for a tenant the queue does not belong to).
 */
export function assertJobTenant(job: Pick<Job, 'id' | 'data'>, tenantId: string): void {
  const named = (job.data as { tenantId?: unknown } | null)?.tenantId;
  if (named !== tenantId) {
    throw new UnrecoverableJobError(
      `job ${job.id} of tenant ${tenantId}'s queue names tenant ${String(named)}`,
    );
  }
}
