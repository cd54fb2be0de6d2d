import { Job, type JobsOptions, Queue } from 'bullmq';
import type { Redis } from 'ioredis';

import { isCluster } from '../redis/connect';
import { type Keyspace, keyspace } from '../redis/keys';
import { RedisScript } from '../redis/redisScript';
import { JOB_KINDS, type JobKind, tenantQueueName } from './names';

/** Payload of a heartflow job: one inbound message, everything the worker needs to store and answer it. */
export interface HeartflowJobData {
  /**
   * Set on a job whose pass failed (the LLM failed after its retries): the messages that pass
   * left `failed`, answered again when an operator retries the job.
   */
  rerun?: string[];
  messageId: string;
  tenantId: string;
  agentId: string;
  platform: string;
  chatStreamId: string;
  chatType: 'group' | 'private';
  content: string;
  clientMessageId: string | null;
  replyTo: string | null;
  sender: {
    userId: string | null;
    nickname: string | null;
    cardname: string | null;
    groupId: string | null;
    groupName: string | null;
  };
  /** Message segments as the adapter sent them (images/emoji kept as data placeholders). */
  segments: unknown[];
  /** The adapter saw the bot mentioned (OneBot `at` of self_id, maim `@<nick:account>`). */
  mentioned: boolean;
  options: {
    enableMemory: boolean;
    enableEmoji: boolean;
    priority: 'low' | 'normal' | 'high';
    /**
     * Someone waits for the answer (`?wait`, or an adapter saw the bot mentioned): a `normal` job
     * goes ahead of the tenant's other `normal` jobs. Absent in jobs of older versions.
     */
    interactive?: boolean;
  };
  /** ms since the epoch when the ingress accepted the message. */
  receivedAt: number;
  source: 'http' | 'onebot' | 'maim';
}

// BullMQ: 1 is the highest priority; unprioritised jobs run before all prioritised ones, so every
// job gets a priority and `normal` sits in the middle.
const PRIORITY: Record<HeartflowJobData['options']['priority'], number> = { high: 1, normal: 5, low: 10 };
const INTERACTIVE_NORMAL = 3;

/** A heartflow job's BullMQ priority within its tenant's queue: high, interactive, normal, low. */
export function heartflowPriority(options: HeartflowJobData['options']): number {
  return options.priority === 'normal' && options.interactive
    ? INTERACTIVE_NORMAL
    : PRIORITY[options.priority];
}

/** A pub/sub message sent along with an announcement (e.g. the ingress's `message.received`). */
export interface Publication {
  channel: string;
  message: string;
}

/**
 * The announcement of new work, one command: add the tenant to the dispatchers' active set, wake
 * them, then publish whatever the caller sends along. With a second key (a job's hash), only if
 * that job exists: run after the job's add in one MULTI, nothing is announced for a failed add.
 * KEYS: 1 active-tenant set, [2 job hash]. ARGV: 1 tenant id, 2 wake channel, then channel/message
 * pairs. Returns 1, or 0 when the job does not exist.
 */
const ANNOUNCE = new RedisScript(`
if #KEYS > 1 and redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[1])
for i = 3, #ARGV - 1, 2 do redis.call('PUBLISH', ARGV[i], ARGV[i + 1]) end
return 1
`);

/** A job was stored but announcing it failed: it waits until a dispatcher finds its tenant. */
export class AnnouncementError extends Error {
  constructor(
    readonly jobId: string,
    cause: unknown,
  ) {
    super(`job ${jobId} stored but not announced`, { cause });
  }
}

/** Completed jobs are kept a day for status lookups; failed ones a week for operators. */
export const DEFAULT_JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

/**
 * Most Queue objects one process keeps open. Each holds ~7 KB and three listeners on the shared
 * connection, so an API process that has served ten thousand tenants must not keep one per tenant
 * and kind; past this, the least recently used is closed (closing a Queue on a shared connection
 * leaves the connection open, and a send still holding it finishes normally).
 */
export const MAX_OPEN_QUEUES = 1000;

/**
 * The per-tenant BullMQ queues of one process. All queues share one Redis connection (a Queue
 * does not block), so the connection count does not grow with the number of tenants.
 */
export class TenantQueues {
  /** Open queues by name, least recently used first. */
  private readonly queues = new Map<string, Queue>();
  private readonly keys: Keyspace;

  constructor(
    private readonly connection: Redis,
    private readonly prefix: string,
    /** Open queues kept at most; default `MAX_OPEN_QUEUES`. */
    private readonly maxOpen = MAX_OPEN_QUEUES,
  ) {
    this.keys = keyspace(prefix);
  }

  queue(tenantId: string, kind: JobKind): Queue {
    const name = tenantQueueName(tenantId, kind);
    let queue = this.queues.get(name);
    if (queue) {
      // Re-inserted: most recently used last.
      this.queues.delete(name);
      this.queues.set(name, queue);
      return queue;
    }
    queue = new Queue(name, {
      connection: this.connection,
      prefix: this.prefix,
      defaultJobOptions: DEFAULT_JOB_OPTIONS,
    });
    // Each queue re-emits the shared connection's errors; that connection logs them already, and
    // an 'error' event without a listener would make BullMQ print every one to the console.
    queue.on('error', () => undefined);
    this.queues.set(name, queue);
    if (this.queues.size > this.maxOpen) {
      const [oldestName, oldest] = this.queues.entries().next().value!;
      this.queues.delete(oldestName);
      void oldest.close().catch(() => undefined);
    }
    return queue;
  }

  /** Queues open now (at most `maxOpen`). */
  get openCount(): number {
    return this.queues.size;
  }

  /**
   * Stores a message's heartflow job and announces it (with the `along` messages), normally in one
   * round trip: the announcement is sent right behind BullMQ's add on the same connection (one
   * auto-pipelined write), conditional on the job's hash, so nothing is announced before the job
   * is stored. Should the add land later (its script had to be loaded again), the announcement is
   * repeated once the add is done. Rejects with the add's error, or with `AnnouncementError` when
   * the job was stored but could not be announced. The job id is the message id, so adding twice
   * is a no-op.
   */
  async enqueueHeartflow(data: HeartflowJobData, along: readonly Publication[] = []): Promise<void> {
    const queue = this.queue(data.tenantId, 'heartflow');
    const job = new Job(
      queue,
      'message',
      data,
      { ...DEFAULT_JOB_OPTIONS, jobId: data.messageId, priority: heartflowPriority(data.options) },
      data.messageId,
    );
    const client = await queue.getBackend().client;
    // Job#addJob issues BullMQ's add script synchronously (as Queue#add does, without its
    // telemetry wrapper), so the announcement below goes out after it.
    const adding = job.addJob(client);
    const args = this.announceArgs(data.tenantId, 'heartflow', along);
    const activeTenants = this.keys.activeTenants('heartflow');
    // On a Redis Cluster the job (the tenant's slot) and the active set (the shared one) live on
    // different slots: no script may read both, so the announcement follows the add's answer.
    if (isCluster(this.connection)) {
      await adding;
      try {
        await ANNOUNCE.run(this.connection, [activeTenants], args);
      } catch (err) {
        throw new AnnouncementError(data.messageId, err);
      }
      return;
    }
    const announcing = ANNOUNCE.run(this.connection, [activeTenants, queue.toKey(data.messageId)], args);
    announcing.catch(() => undefined);
    await adding;
    try {
      if ((await announcing) !== 1) await ANNOUNCE.run(this.connection, [activeTenants], args);
    } catch (err) {
      throw new AnnouncementError(data.messageId, err);
    }
  }

  /**
   * Stores a message's heartflow job without announcing it; the job id is the message id, so
   * adding twice is a no-op.
   */
  async addHeartflow(data: HeartflowJobData): Promise<void> {
    await this.queue(data.tenantId, 'heartflow').add('message', data, {
      jobId: data.messageId,
      priority: heartflowPriority(data.options),
    });
  }

  /**
   * Tells the dispatchers that a tenant's queue has work: the active-tenant set (their discovery
   * list) and a wake-up, plus the `along` messages, in one script run after the job is stored.
   */
  async announce(tenantId: string, kind: JobKind, along: readonly Publication[] = []): Promise<void> {
    await ANNOUNCE.run(
      this.connection,
      [this.keys.activeTenants(kind)],
      this.announceArgs(tenantId, kind, along),
    );
  }

  private announceArgs(tenantId: string, kind: JobKind, along: readonly Publication[]): string[] {
    return [tenantId, this.keys.workAvailable(kind), ...along.flatMap((p) => [p.channel, p.message])];
  }

  async waitingCount(tenantId: string): Promise<number> {
    return this.queue(tenantId, 'heartflow').getJobCountByTypes('waiting', 'prioritized', 'delayed');
  }

  /** Removes every queue (and job) of a tenant. */
  async obliterateTenant(tenantId: string): Promise<void> {
    for (const kind of JOB_KINDS) {
      const queue = this.queue(tenantId, kind);
      await queue.obliterate({ force: true });
      await queue.close();
      this.queues.delete(queue.name);
    }
  }

  async close(): Promise<void> {
    const all = [...this.queues.values()];
    this.queues.clear();
    await Promise.allSettled(all.map((q) => q.close()));
  }
}
