import type { Redis } from 'ioredis';

import type { TenantSettings } from '../domain/tenantSettings';
import { type Keyspace } from '../redis/keys';
import { JOB_KINDS } from './names';
import type { TenantQueues } from './tenantQueues';

type Scheduling = TenantSettings['scheduling'];

/** The caps BullMQ enforces across every worker process, as read back from a tenant's queue. */
export interface AppliedCaps {
  global_concurrency: number | null;
  global_rate_limit: { max: number; duration_ms: number } | null;
}

/**
 * Writes a tenant's `max_concurrency` and `rate_limit` onto every one of its queues, where
 * BullMQ's `moveToActive` enforces them atomically whichever process fetches (see README § Several
 * worker processes). A tenant without a rate limit gets any earlier one removed. Weight and
 * `max_queue_size` are not queue properties: the dispatchers' cores and the ingress read them.
 */
export async function applyQueueCaps(
  queues: TenantQueues,
  tenantId: string,
  scheduling: Scheduling,
): Promise<AppliedCaps> {
  await Promise.all(
    JOB_KINDS.map(async (kind) => {
      const queue = queues.queue(tenantId, kind);
      await queue.setGlobalConcurrency(scheduling.max_concurrency);
      if (scheduling.rate_limit) {
        await queue.setGlobalRateLimit(scheduling.rate_limit.max, scheduling.rate_limit.duration_ms);
      } else {
        await queue.removeGlobalRateLimit();
      }
    }),
  );
  return readQueueCaps(queues, tenantId);
}

/** The caps BullMQ holds for a tenant, as stored on its heartflow queue (the kinds share them). */
export async function readQueueCaps(queues: TenantQueues, tenantId: string): Promise<AppliedCaps> {
  const heartflow = queues.queue(tenantId, 'heartflow');
  const [concurrency, rate] = await Promise.all([
    heartflow.getGlobalConcurrency(),
    heartflow.getGlobalRateLimit(),
  ]);
  return {
    global_concurrency: concurrency,
    global_rate_limit: rate ? { max: rate.max, duration_ms: rate.duration } : null,
  };
}

/**
 * Tells every dispatcher that a tenant's schedule changed, so each re-reads it
 * (`Dispatcher.reschedule`) instead of waiting for the tenant-directory cache to expire.
 */
export async function publishScheduleChange(redis: Redis, keys: Keyspace, tenantId: string): Promise<void> {
  await redis.publish(keys.scheduleChanged(), tenantId);
}

/**
 * Subscribes `subscriber` (a connection in subscriber mode, used for nothing else on this channel)
 * to schedule changes; `onChange` gets the tenant id of each. Returns the unsubscribe.
 */
export async function onScheduleChange(
  subscriber: Redis,
  keys: Keyspace,
  onChange: (tenantId: string) => void,
): Promise<() => Promise<void>> {
  const channel = keys.scheduleChanged();
  const listener = (from: string, tenantId: string) => {
    if (from === channel) onChange(tenantId);
  };
  subscriber.on('message', listener);
  await subscriber.subscribe(channel);
  return async () => {
    subscriber.off('message', listener);
    await subscriber.unsubscribe(channel);
  };
}
