import type { Redis } from 'ioredis';

import type { LlmUsageRecord } from '../db/repositories/llmUsage';
import type { Clock } from '../domain/clock';
import { DAILY_COUNTER_TTL_SECONDS, secondsUntilUtcMidnight, utcDay } from '../domain/quotaPeriods';
import type { TenantSettings } from '../domain/tenantSettings';
import { RateLimitError } from '../errors';
import type { Keyspace } from '../redis/keys';
import { RedisScript } from '../redis/redisScript';

/** The two LLM quotas of `TenantSettings.quotas`. */
export type LlmQuotaName = 'daily_llm_requests' | 'monthly_tokens';

/**
 * A tenant's LLM quota is spent: no call is made. A `RateLimitError` (`QUOTA_EXCEEDED`, 429 with
 * `Retry-After` until the period ends, as API.md has it), so the HTTP layer maps it as is; the
 * heartflow turns it into a `failed` message with this message as the reason.
 */
export class LlmQuotaExceededError extends RateLimitError {
  constructor(
    readonly quota: LlmQuotaName,
    readonly limit: number,
    readonly used: number,
    retryAfterSeconds: number,
  ) {
    super(
      'QUOTA_EXCEEDED',
      quota === 'daily_llm_requests'
        ? `LLM quota exceeded: the tenant's ${limit} LLM requests of this UTC day are used up`
        : `LLM quota exceeded: the tenant's ${limit} LLM tokens of this UTC month are used up`,
      retryAfterSeconds,
      { quota, limit, used },
    );
  }
}

/** What `reserve` booked, for `settle`: the counters of the period the call started in. */
export interface LlmQuotaTicket {
  readonly tenantId: string;
  readonly requestsKey: string;
  readonly tokensKey: string;
}

/** Metering around each LLM call (see `LlmClient`): `reserve` before, `settle` after. */
export interface LlmQuotaGuard {
  /** Refuses with `LlmQuotaExceededError` when a quota is spent; else books one request. */
  reserve(tenantId: string): Promise<LlmQuotaTicket>;
  /** Books what the call really used: its `llm_usage` rows (requests beyond the reserved one, tokens). */
  settle(ticket: LlmQuotaTicket, usage: readonly LlmUsageRecord[]): Promise<void>;
}

/** Monthly counters outlive their month a little, so that last month's usage can still be read. */
const MONTHLY_COUNTER_TTL_SECONDS = 35 * 24 * 3600;

/**
 * Check and reservation in one step, so concurrent calls cannot all pass on the last request.
 * KEYS: 1 requests of the day, 2 tokens of the month.
 * ARGV: 1 request limit (0 = none), 2 token limit (0 = none), 3 day counter ttl s.
 * Reply: {'ok'} | {'requests', used} | {'tokens', used}
 */
const RESERVE = new RedisScript(`
local tokens = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[2]) > 0 and tokens >= tonumber(ARGV[2]) then return { 'tokens', tokens } end
local requests = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > 0 and requests >= tonumber(ARGV[1]) then return { 'requests', requests } end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return { 'ok' }
`);

/** `2026-12`: monthly quota periods are UTC months. */
function utcMonth(nowMs: number): string {
  return new Date(nowMs).toISOString().slice(0, 7);
}

function secondsUntilUtcMonthEnd(nowMs: number): number {
  const d = new Date(nowMs);
  const next = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  return Math.max(1, Math.ceil((next - nowMs) / 1000));
}

export interface RedisLlmQuotaOptions {
  redis: Redis;
  keys: Keyspace;
  /** The tenant's current quotas (absent limit = unlimited). */
  quotasOf: (tenantId: string) => Promise<TenantSettings['quotas']>;
  clock: Clock;
}

/**
 * The tenant LLM quotas of `TenantSettings.quotas`, on Redis counters per tenant: LLM requests
 * per UTC day and tokens per UTC month (keys `quotaCounter(tenant, 'llm_requests', day)` and
 * `quotaCounter(tenant, 'llm_tokens', month)`). A request is one `llm_usage` row (one HTTP call,
 * retries included), for every provider, as the usage statistics count them. A call reserves its
 * first request atomically with the check, so racing calls never start past the request quota;
 * retries of a call already under way are booked afterwards and may pass it by their number. The
 * token quota is checked before the call and booked after it, so calls in flight when it runs out
 * may pass it by their own tokens. Either way, the next call is refused.
 */
export class RedisLlmQuota implements LlmQuotaGuard {
  constructor(private readonly o: RedisLlmQuotaOptions) {}

  async reserve(tenantId: string): Promise<LlmQuotaTicket> {
    const now = this.o.clock.now();
    const ticket: LlmQuotaTicket = {
      tenantId,
      requestsKey: this.o.keys.quotaCounter(tenantId, 'llm_requests', utcDay(now)),
      tokensKey: this.o.keys.quotaCounter(tenantId, 'llm_tokens', utcMonth(now)),
    };
    const quotas = await this.o.quotasOf(tenantId);
    const reply = (await RESERVE.run(
      this.o.redis,
      [ticket.requestsKey, ticket.tokensKey],
      [quotas.daily_llm_requests ?? 0, quotas.monthly_tokens ?? 0, DAILY_COUNTER_TTL_SECONDS],
    )) as [string, number?];
    switch (reply[0]) {
      case 'ok':
        return ticket;
      case 'requests':
        throw new LlmQuotaExceededError(
          'daily_llm_requests',
          quotas.daily_llm_requests!,
          Number(reply[1]),
          secondsUntilUtcMidnight(now),
        );
      case 'tokens':
        throw new LlmQuotaExceededError(
          'monthly_tokens',
          quotas.monthly_tokens!,
          Number(reply[1]),
          secondsUntilUtcMonthEnd(now),
        );
      default:
        throw new Error(`unexpected LLM quota reply ${String(reply[0])}`);
    }
  }

  async settle(ticket: LlmQuotaTicket, usage: readonly LlmUsageRecord[]): Promise<void> {
    const tokens = usage.reduce((sum, u) => sum + u.promptTokens + u.completionTokens, 0);
    // The reservation counted one request; a call that made none (say, an unopenable key) gives it back.
    const extraRequests = usage.length - 1;
    if (extraRequests === 0 && tokens === 0) return;
    const tx = this.o.redis.multi();
    if (extraRequests !== 0) {
      tx.incrby(ticket.requestsKey, extraRequests).expire(ticket.requestsKey, DAILY_COUNTER_TTL_SECONDS);
    }
    if (tokens > 0) {
      tx.incrby(ticket.tokensKey, tokens).expire(ticket.tokensKey, MONTHLY_COUNTER_TTL_SECONDS);
    }
    await tx.exec();
  }
}
