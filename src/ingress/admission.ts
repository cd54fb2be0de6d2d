import type { Redis } from 'ioredis';

import { DAILY_COUNTER_TTL_SECONDS, secondsUntilUtcMidnight, utcDay } from '../domain/quotaPeriods';
import { limitReached } from '../domain/tenantLimits';
import type { TenantSettings } from '../domain/tenantSettings';
import { RateLimitError } from '../errors';
import type { TenantQueues } from '../queues/tenantQueues';
import type { Keyspace } from '../redis/keys';
import { RedisScript } from '../redis/redisScript';
import { IDEMPOTENCY_TTL_SECONDS, type IdempotencyRecord, parseIdempotencyRecord } from './idempotency';
import { TOKEN_BUCKETS_LUA } from './rateLimiter';
import type { RateRefusals } from './rateRefusals';

/**
 * Every check of a send that needs shared state, in ONE Redis round trip (one Lua script, atomic):
 * the tenant and credential token buckets, the idempotency record, the daily message quota, the
 * `max_chat_streams` limit and the queue size limit; and, when all pass, the bookkeeping (record,
 * counter, known stream). Atomicity is what makes concurrent duplicates safe: exactly one of them
 * finds no record. All keys carry the tenant's hash tag, BullMQ's included, so the script runs on
 * Redis Cluster too.
 *
 * Reply: {'seed'} | {'rate', bucket, wait_ms} | {'duplicate', record} | {'quota', used}
 *      | {'streams', count} | {'queue', waiting} | {'ok', known}
 */
const ADMIT = new RedisScript(`${TOKEN_BUCKETS_LUA}
-- KEYS: 1 tenant bucket, 2 credential bucket, 3 idempotency record, 4 daily message counter,
--       5 known streams, 6-9 the heartflow queue's wait, paused, prioritized and delayed keys
-- ARGV: 1 tenant rate, 2 credential rate, 3 record ('' = not idempotent), 4 record ttl s,
--       5 daily limit (0 = none), 6 counter ttl s, 7 chat stream id, 8 max streams, 9 max queue
if redis.call('SISMEMBER', KEYS[5], '') == 0 then return { 'seed' } end
local wait, short = take_tokens({ KEYS[1], KEYS[2] }, { ARGV[1], ARGV[2] })
if wait > 0 then return { 'rate', short, wait } end
if ARGV[3] ~= '' then
  local first = redis.call('GET', KEYS[3])
  if first then return { 'duplicate', first } end
end
local limit = tonumber(ARGV[5])
if limit > 0 then
  local used = tonumber(redis.call('GET', KEYS[4]) or '0')
  if used >= limit then return { 'quota', used } end
end
local stream = ARGV[7]
local known = redis.call('SISMEMBER', KEYS[5], stream) == 1
if not known then
  local count = redis.call('SCARD', KEYS[5]) - 1
  if count >= tonumber(ARGV[8]) then return { 'streams', count } end
end
local waiting = redis.call('LLEN', KEYS[6]) + redis.call('LLEN', KEYS[7])
  + redis.call('ZCARD', KEYS[8]) + redis.call('ZCARD', KEYS[9])
if waiting >= tonumber(ARGV[9]) then return { 'queue', waiting } end
if ARGV[3] ~= '' then redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[4]) end
redis.call('INCR', KEYS[4])
redis.call('EXPIRE', KEYS[4], ARGV[6])
if not known then redis.call('SADD', KEYS[5], stream) end
return { 'ok', known and 1 or 0 }
`);

/** Undoes the bookkeeping of an admitted send whose enqueue failed, so that a retry is not a duplicate. */
const RELEASE = new RedisScript(`
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DECR', KEYS[2]) end
return 1
`);

/** Seconds a sender is told to wait when the tenant's queue is full. */
const QUEUE_FULL_RETRY_AFTER_SECONDS = 5;

export interface AdmissionRequest {
  tenantId: string;
  /** Names the credential's bucket, e.g. `api_key:key_123`. */
  credential: string;
  /** client_message_id / Idempotency-Key, when the send is idempotent. */
  idempotencyId: string | undefined;
  /** What a repeat of this send answers with. */
  record: IdempotencyRecord;
  settings: TenantSettings;
  /** ms since the epoch (the application clock: picks the quota day). */
  now: number;
}

export type Admission =
  | { kind: 'admitted'; newStream: boolean; release: () => Promise<void> }
  | { kind: 'duplicate'; record: IdempotencyRecord }
  | { kind: 'unseeded' };

export interface AdmissionDeps {
  redis: Redis;
  keys: Keyspace;
  queues: TenantQueues;
  /** Buckets this process saw empty: refused again without a round trip until they refill. */
  rateRefusals: RateRefusals;
}

function rateLimitExceeded(which: 'tenant' | 'credential', waitMs: number, settings: TenantSettings) {
  return new RateLimitError(
    'RATE_LIMIT_EXCEEDED',
    `${which} rate limit exceeded`,
    Math.max(1, Math.ceil(waitMs / 1000)),
    {
      limit: which,
      rate_per_second:
        which === 'tenant' ? settings.rate_limit_per_second : settings.credential_rate_limit_per_second,
      retry_after_ms: waitMs,
    },
  );
}

/**
 * Runs the admission script, unless this process already knows one of the send's rate buckets is
 * empty. Throws `RateLimitError` (rate, quota, queue size) or `ForbiddenError` (chat stream limit,
 * via `limitReached`); returns `unseeded` when the tenant's known-stream set must be loaded first.
 */
export async function admit(deps: AdmissionDeps, r: AdmissionRequest): Promise<Admission> {
  const { keys } = deps;
  const { settings } = r;
  const buckets = [
    keys.rateBucket(r.tenantId, 'tenant'),
    keys.rateBucket(r.tenantId, `credential:${r.credential}`),
  ] as const;
  // Wall-clock time, like the buckets' (Redis `TIME`); `r.now` is the application clock.
  const known = deps.rateRefusals.refusal(buckets, Date.now());
  if (known)
    throw rateLimitExceeded(known.bucket === buckets[0] ? 'tenant' : 'credential', known.waitMs, settings);
  const queue = deps.queues.queue(r.tenantId, 'heartflow');
  const idemKey = keys.idempotency(r.tenantId, r.record.agent_id, r.idempotencyId ?? '');
  const counterKey = keys.quotaCounter(r.tenantId, 'messages', utcDay(r.now));
  const recordJson = r.idempotencyId === undefined ? '' : JSON.stringify(r.record);
  const reply = (await ADMIT.run(
    deps.redis,
    [
      ...buckets,
      idemKey,
      counterKey,
      keys.knownStreams(r.tenantId),
      queue.toKey('wait'),
      queue.toKey('paused'),
      queue.toKey('prioritized'),
      queue.toKey('delayed'),
    ],
    [
      settings.rate_limit_per_second,
      settings.credential_rate_limit_per_second,
      recordJson,
      IDEMPOTENCY_TTL_SECONDS,
      settings.quotas.daily_messages ?? 0,
      DAILY_COUNTER_TTL_SECONDS,
      r.record.chat_stream_id,
      settings.max_chat_streams,
      settings.scheduling.max_queue_size,
    ],
  )) as [string, ...(string | number)[]];

  switch (reply[0]) {
    case 'ok':
      return {
        kind: 'admitted',
        newStream: reply[1] === 0,
        release: async () => {
          await RELEASE.run(deps.redis, [idemKey, counterKey], [recordJson]);
        },
      };
    case 'seed':
      return { kind: 'unseeded' };
    case 'duplicate': {
      const record = parseIdempotencyRecord(String(reply[1]));
      // A corrupt record names no message: answer as if it were ours rather than enqueue twice.
      return { kind: 'duplicate', record: record ?? r.record };
    }
    case 'rate': {
      const which = reply[1] === 1 ? 'tenant' : 'credential';
      const waitMs = Number(reply[2]);
      deps.rateRefusals.remember(buckets[which === 'tenant' ? 0 : 1], Date.now(), waitMs);
      throw rateLimitExceeded(which, waitMs, settings);
    }
    case 'quota':
      throw new RateLimitError(
        'QUOTA_EXCEEDED',
        'daily message quota exceeded',
        secondsUntilUtcMidnight(r.now),
        { quota: 'daily_messages', limit: settings.quotas.daily_messages, used: Number(reply[1]) },
      );
    case 'streams':
      // The same 403 as POST /chat/streams at the limit (see limitReached for why not 409/429).
      throw limitReached('max_chat_streams', settings.max_chat_streams);
    case 'queue':
      throw new RateLimitError(
        'RATE_LIMIT_EXCEEDED',
        'the tenant queue is full',
        QUEUE_FULL_RETRY_AFTER_SECONDS,
        {
          limit: 'max_queue_size',
          max_queue_size: settings.scheduling.max_queue_size,
          waiting: Number(reply[1]),
        },
      );
    default:
      throw new Error(`unexpected admission reply ${String(reply[0])}`);
  }
}
