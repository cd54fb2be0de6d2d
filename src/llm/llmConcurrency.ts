import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';

import type { Redis } from 'ioredis';

import type { Keyspace } from '../redis/keys';
import { RedisScript } from '../redis/redisScript';
import { LlmError } from './types';

/**
 * Every LLM call slot of a tenant stayed taken for the whole wait, so no call was made. An
 * `LlmError` of kind `timeout`: the heartflow fails the message with this text as the reason,
 * memory extraction falls back to its heuristics, as for any other LLM failure.
 */
export class LlmConcurrencyTimeoutError extends LlmError {
  constructor(
    readonly tenantId: string,
    readonly limit: number,
    readonly waitedMs: number,
    options: { details?: Record<string, unknown> } = {},
  ) {
    super(
      'timeout',
      `no LLM call slot free within ${waitedMs} ms: the tenant already has ${limit} LLM calls in flight ` +
        'across all workers (LLM_MAX_CONCURRENCY_PER_TENANT)',
      { details: { ...options.details, limit, waited_ms: waitedMs } },
    );
  }
}

/** A taken slot. `release` is idempotent; a slot never released frees itself when its lease ends. */
export interface LlmSlot {
  release(): Promise<void>;
}

/** Concurrency of each tenant's LLM calls across every process sharing the guard. */
export interface LlmConcurrencyGuard {
  /** Most LLM calls of one tenant in flight at once, all processes together. */
  readonly maxPerTenant: number;
  /**
   * Takes a slot of the tenant for one HTTP call that gives up after `callTimeoutMs`, waiting up
   * to `waitMs` for one to free; undefined when none did.
   */
  acquire(tenantId: string, o: { callTimeoutMs: number; waitMs: number }): Promise<LlmSlot | undefined>;
}

/**
 * Drops expired leases, then takes a slot if fewer than the limit are held. Leases are in the
 * Redis server's clock (`TIME`), so processes on hosts with skewed clocks agree on them. The key
 * lives as long as its longest lease, so an idle tenant leaves nothing behind.
 * KEYS: 1 holders (sorted set: holder id → lease end, ms).
 * ARGV: 1 holder id, 2 limit, 3 lease ms.
 * Reply: 1 taken, 0 every slot held.
 */
const ACQUIRE = new RedisScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
local lease = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
if redis.call('PTTL', KEYS[1]) < lease then redis.call('PEXPIRE', KEYS[1], lease) end
return 1
`);

export interface RedisLlmConcurrencyOptions {
  redis: Redis;
  keys: Keyspace;
  /** Most LLM calls of one tenant in flight across all processes (`LLM_MAX_CONCURRENCY_PER_TENANT`). */
  maxPerTenant: number;
  /**
   * Added to the call's timeout to make its lease, ms: covers the time between taking the slot and
   * sending, and between the abort and the release. Default 2000.
   */
  leaseMarginMs?: number;
  /** First wait between polls for a free slot, ms; doubles per poll, with jitter. Default 5. */
  pollMinMs?: number;
  /** Longest wait between polls, ms. Default 100. */
  pollMaxMs?: number;
}

/**
 * A counting semaphore per tenant in Redis, shared by every worker process: a sorted set of the
 * holders (key `llmSlots(tenant)`) scored by when their lease ends. A slot is held for one HTTP
 * call, whose own timeout bounds it, so its lease is that timeout plus a margin and needs no
 * renewal; a process that dies holding slots gives them back when the leases end. Taking a slot
 * is one Lua script; a release is one `ZREM` (a single command, atomic without a script). Waiters
 * poll with capped exponential backoff until their wait runs out: not FIFO across processes, but
 * bounded, and a release is seen at the next poll.
 */
export class RedisLlmConcurrency implements LlmConcurrencyGuard {
  readonly maxPerTenant: number;
  /** This instance's part of every holder id (one per process in practice). */
  private readonly instance = randomUUID();
  private seq = 0;
  private readonly leaseMarginMs: number;
  private readonly pollMinMs: number;
  private readonly pollMaxMs: number;

  constructor(private readonly o: RedisLlmConcurrencyOptions) {
    this.maxPerTenant = Math.max(1, Math.floor(o.maxPerTenant));
    this.leaseMarginMs = o.leaseMarginMs ?? 2000;
    this.pollMinMs = o.pollMinMs ?? 5;
    this.pollMaxMs = o.pollMaxMs ?? 100;
  }

  async acquire(
    tenantId: string,
    { callTimeoutMs, waitMs }: { callTimeoutMs: number; waitMs: number },
  ): Promise<LlmSlot | undefined> {
    const key = this.o.keys.llmSlots(tenantId);
    const holder = `${this.instance}:${++this.seq}`;
    const leaseMs = Math.ceil(callTimeoutMs + this.leaseMarginMs);
    const deadline = performance.now() + waitMs;
    for (let poll = 0; ; poll++) {
      const taken = await ACQUIRE.run(this.o.redis, [key], [holder, this.maxPerTenant, leaseMs]);
      if (taken === 1) return this.slot(key, holder);
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      const ceiling = Math.min(this.pollMaxMs, this.pollMinMs * 2 ** Math.min(poll, 16));
      const pause = Math.min(left, ceiling / 2 + (Math.random() * ceiling) / 2);
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }

  private slot(key: string, holder: string): LlmSlot {
    let released: Promise<void> | undefined;
    return {
      release: () => (released ??= this.o.redis.zrem(key, holder).then(() => undefined)),
    };
  }
}
