import type { JobsOptions } from 'bullmq';

import type { TenantQueues } from './tenantQueues';

/**
 * The delivery job's payload and how it is enqueued. Here rather than with the other jobs
 * (`workers/jobs.ts`) because more than the worker enqueues replies to deliver: `POST /emoji/send`
 * sends an emoji "like a reply", through the same job.
 */

/** Delivery job: push one bot reply to the agent's webhook. */
export interface DeliveryJobData {
  tenantId: string;
  agentId: string;
  /** The bot reply (`direction = 'out'`). */
  messageId: string;
}

/** Attempts and backoff of a delivery: 2 s, 4 s, 8 s, 16 s, 32 s between six attempts. */
export const DELIVERY_JOB_OPTIONS: JobsOptions = {
  attempts: 6,
  backoff: { type: 'exponential', delay: 2000 },
};

/** Job id of a delivery; an operator's retry of a dead letter gets the next generation. */
export function deliveryJobId(messageId: string, generation = 0): string {
  return generation === 0 ? `delivery.${messageId}` : `delivery.${messageId}.r${generation}`;
}

/** Enqueue after the reply is committed; the job skips agents without a webhook. */
export async function enqueueDelivery(
  queues: TenantQueues,
  data: DeliveryJobData,
  options: { generation?: number; jobOptions?: JobsOptions } = {},
): Promise<void> {
  await queues.queue(data.tenantId, 'delivery').add('delivery', data, {
    ...DELIVERY_JOB_OPTIONS,
    ...options.jobOptions,
    jobId: deliveryJobId(data.messageId, options.generation),
  });
  await queues.announce(data.tenantId, 'delivery');
}
