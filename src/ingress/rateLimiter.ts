import type { Redis } from 'ioredis';

import { RedisScript } from '../redis/redisScript';

/**
 * Token buckets in Redis. A bucket holds at most one second's worth of tokens (`rate`, at least 1)
 * and refills continuously at `rate` tokens per second; state is a hash `{t: tokens, ts: ms}` that
 * expires once it would be full again. Time comes from the Redis server (`TIME`), so every API
 * process sees the same clock.
 *
 * `TOKEN_BUCKETS_LUA` defines `take_tokens(keys, rates)`: all buckets must have a token, or none
 * is charged; it returns 0 when allowed, else the ms until the first short bucket has one, and the
 * index of that bucket. The admission script of a send embeds it; `takeTokens` runs it alone.
 */
export const TOKEN_BUCKETS_LUA = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function take_tokens(keys, rates)
  local now = now_ms()
  local state = {}
  local wait, short = 0, 0
  for i = 1, #keys do
    local rate = tonumber(rates[i])
    local burst = math.max(1, rate)
    local h = redis.call('HMGET', keys[i], 't', 'ts')
    local tokens, ts = tonumber(h[1]), tonumber(h[2])
    if tokens == nil or ts == nil then tokens, ts = burst, now end
    tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
    state[i] = { tokens, rate, burst }
    if tokens < 1 then
      local w = math.ceil((1 - tokens) * 1000 / rate)
      if w > wait then wait, short = w, i end
    end
  end
  local charge = (wait == 0) and 1 or 0
  for i = 1, #keys do
    local tokens, rate, burst = state[i][1] - charge, state[i][2], state[i][3]
    redis.call('HSET', keys[i], 't', tostring(tokens), 'ts', now)
    redis.call('PEXPIRE', keys[i], math.ceil((burst - tokens) * 1000 / rate) + 1000)
  end
  return wait, short
end
`;

const STANDALONE = new RedisScript(`${TOKEN_BUCKETS_LUA}
local n = #KEYS
local rates = {}
for i = 1, n do rates[i] = ARGV[i] end
local wait, short = take_tokens(KEYS, rates)
return { wait, short }
`);

export interface Bucket {
  key: string;
  /** Tokens per second; also the bucket's capacity (burst), at least 1. */
  ratePerSecond: number;
}

export type RateDecision = { allowed: true } | { allowed: false; retryAfterMs: number; bucket: number };

/**
 * Takes one token from every bucket in one round trip, or from none of them. All keys must live
 * in one Redis Cluster slot (tenant keys share the tenant's hash tag).
 */
export async function takeTokens(redis: Redis, buckets: readonly Bucket[]): Promise<RateDecision> {
  const reply = (await STANDALONE.run(
    redis,
    buckets.map((b) => b.key),
    buckets.map((b) => b.ratePerSecond),
  )) as [number, number];
  const [wait, short] = reply;
  return wait === 0 ? { allowed: true } : { allowed: false, retryAfterMs: wait, bucket: short - 1 };
}
