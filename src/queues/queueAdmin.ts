import type { Job, JobType, Queue } from 'bullmq';

import { ConflictError, NotFoundError } from '../errors';
import { JOB_KINDS, type JobKind } from './names';
import type { TenantQueues } from './tenantQueues';

/**
 * What operators do to one tenant's queues (API.md § Queue administration): counts, pause and
 * resume, job listings, retries and cleaning. Every function takes the tenant first and reaches
 * only that tenant's queues, whose names carry it, so a job id of another tenant is simply not
 * found.
 */

/** The states an operator lists; `waiting` includes BullMQ's `prioritized` (every heartflow job has a priority). */
export const LISTABLE_STATES = ['waiting', 'active', 'delayed', 'failed', 'completed'] as const;
export type ListableState = (typeof LISTABLE_STATES)[number];

/** The states `clean` removes: finished jobs only, never work still to do. */
export const CLEANABLE_STATES = ['completed', 'failed'] as const;
export type CleanableState = (typeof CLEANABLE_STATES)[number];

const BULL_TYPES: Record<ListableState, JobType[]> = {
  waiting: ['waiting', 'prioritized'],
  active: ['active'],
  delayed: ['delayed'],
  failed: ['failed'],
  completed: ['completed'],
};

export interface QueueCounts {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
  completed: number;
}

export interface KindCounts extends QueueCounts {
  paused: boolean;
}

export interface TenantQueueState extends QueueCounts {
  /** True when every kind's queue is paused (pause and resume act on all of them). */
  paused: boolean;
  kinds: Record<JobKind, KindCounts>;
}

async function kindCounts(queue: Queue): Promise<KindCounts> {
  const [c, paused] = await Promise.all([
    queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed', 'completed'),
    queue.isPaused(),
  ]);
  const n = (type: string) => c[type] ?? 0;
  return {
    waiting: n('waiting') + n('prioritized'),
    active: n('active'),
    delayed: n('delayed'),
    failed: n('failed'),
    completed: n('completed'),
    paused,
  };
}

/** Job counts of every kind of a tenant's queues, and their sum. */
export async function tenantQueueState(queues: TenantQueues, tenantId: string): Promise<TenantQueueState> {
  const perKind = await Promise.all(JOB_KINDS.map((kind) => kindCounts(queues.queue(tenantId, kind))));
  const kinds = Object.fromEntries(JOB_KINDS.map((kind, i) => [kind, perKind[i]!])) as Record<
    JobKind,
    KindCounts
  >;
  const sum = (field: keyof QueueCounts) => perKind.reduce((total, k) => total + k[field], 0);
  return {
    waiting: sum('waiting'),
    active: sum('active'),
    delayed: sum('delayed'),
    failed: sum('failed'),
    completed: sum('completed'),
    paused: perKind.every((k) => k.paused),
    kinds,
  };
}

/** Pauses every kind's queue: running jobs finish, nothing new starts in any worker process. */
export async function pauseTenantQueues(queues: TenantQueues, tenantId: string): Promise<void> {
  await Promise.all(JOB_KINDS.map((kind) => queues.queue(tenantId, kind).pause()));
}

/**
 * Resumes every kind's queue and wakes the dispatchers for the kinds that have work: while the
 * queue was paused their fetches found nothing and they marked the tenant idle.
 */
export async function resumeTenantQueues(queues: TenantQueues, tenantId: string): Promise<void> {
  await Promise.all(
    JOB_KINDS.map(async (kind) => {
      const queue = queues.queue(tenantId, kind);
      await queue.resume();
      if ((await queue.count()) > 0) await queues.announce(tenantId, kind);
    }),
  );
}

/** What a listing shows of a job: its progress through the queue, and a bounded view of its data. */
export interface JobSummary {
  job_id: string;
  kind: JobKind;
  name: string;
  state: string;
  attempts_made: number;
  max_attempts: number;
  failed_reason: string | null;
  created_at: string;
  processed_at: string | null;
  finished_at: string | null;
  /** The job's data with strings cut to 200 characters and nesting cut at two levels. */
  data: unknown;
}

const MAX_STRING = 200;
const MAX_DEPTH = 2;

/** A job's payload can hold whole messages; a listing needs enough to recognise the job, not all of it. */
function summarize(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') {
    return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}…` : value;
  }
  if (Array.isArray(value)) return `[${value.length} items]`;
  if (typeof value === 'object' && value !== null) {
    if (depth >= MAX_DEPTH) return '[object]';
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, summarize(v, depth + 1)]));
  }
  return value;
}

/** BullMQ's state as the API names it: `prioritized` is a kind of waiting. */
function publicState(state: string): string {
  return state === 'prioritized' ? 'waiting' : state;
}

const iso = (ms: number | undefined) => (ms === undefined || ms === 0 ? null : new Date(ms).toISOString());

function jobSummary(job: Job, kind: JobKind, state: string): JobSummary {
  return {
    job_id: String(job.id),
    kind,
    name: job.name,
    state,
    attempts_made: job.attemptsMade,
    max_attempts: job.opts.attempts ?? 1,
    failed_reason: job.failedReason ? job.failedReason : null,
    created_at: new Date(job.timestamp).toISOString(),
    processed_at: iso(job.processedOn),
    finished_at: iso(job.finishedOn),
    data: summarize(job.data),
  };
}

/** One page of a kind's jobs in a state, newest first, with the number of jobs in that state. */
export async function listJobs(
  queues: TenantQueues,
  tenantId: string,
  kind: JobKind,
  state: ListableState,
  window: { offset: number; limit: number },
): Promise<{ jobs: JobSummary[]; total: number }> {
  const queue = queues.queue(tenantId, kind);
  const types = BULL_TYPES[state];
  const [jobs, total] = await Promise.all([
    queue.getJobs(types, window.offset, window.offset + window.limit - 1, false),
    queue.getJobCountByTypes(...types),
  ]);
  // A job removed between the range read and the hash read comes back empty; it is gone.
  const present = jobs.filter((job): job is Job => job !== undefined && job !== null && job.id !== undefined);
  return { jobs: present.map((job) => jobSummary(job, kind, state)), total };
}

/**
 * Moves one failed job back to waiting with its attempts reset, so it gets its full retries again.
 * Unknown ids are 404 NOT_FOUND; a job in another state is 409 CONFLICT.
 */
export async function retryJob(
  queues: TenantQueues,
  tenantId: string,
  kind: JobKind,
  jobId: string,
): Promise<JobSummary> {
  const queue = queues.queue(tenantId, kind);
  const job = await queue.getJob(jobId);
  if (!job) throw new NotFoundError('NOT_FOUND', `job ${jobId} not found`, { job_id: jobId, kind });
  const state = publicState(await job.getState());
  if (state !== 'failed') {
    throw new ConflictError(`job ${jobId} is ${state}; only failed jobs can be retried`, {
      details: { job_id: jobId, state },
    });
  }
  await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
  await queues.announce(tenantId, kind);
  const after = await queue.getJob(jobId);
  return jobSummary(after ?? job, kind, publicState(after ? await after.getState() : 'unknown'));
}

/** Moves every failed job of these kinds back to waiting; returns how many there were per kind. */
export async function retryFailedJobs(
  queues: TenantQueues,
  tenantId: string,
  kinds: readonly JobKind[],
): Promise<Record<string, number>> {
  const retried: Record<string, number> = {};
  await Promise.all(
    kinds.map(async (kind) => {
      const queue = queues.queue(tenantId, kind);
      const failed = await queue.getJobCountByTypes('failed');
      retried[kind] = failed;
      if (failed === 0) return;
      await queue.retryJobs({ state: 'failed', count: 1000 });
      await queues.announce(tenantId, kind);
    }),
  );
  return retried;
}

/** Removes finished jobs in a state older than `olderThanMs`; returns how many per kind. */
export async function cleanJobs(
  queues: TenantQueues,
  tenantId: string,
  kinds: readonly JobKind[],
  state: CleanableState,
  olderThanMs: number,
): Promise<Record<string, number>> {
  const removed: Record<string, number> = {};
  await Promise.all(
    kinds.map(async (kind) => {
      // Limit 0 is "all"; the ids come back in one array, bounded by the retention of finished jobs.
      const ids = await queues.queue(tenantId, kind).clean(olderThanMs, 0, state);
      removed[kind] = ids.length;
    }),
  );
  return removed;
}
