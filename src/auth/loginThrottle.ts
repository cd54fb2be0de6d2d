import type { Redis } from 'ioredis';

import { RateLimitError } from '../errors';
import { encodeId } from '../redis/keys';
import { RedisScript } from '../redis/redisScript';

/**
 * Failed-login throttling in Redis: failures counted per account (tenant + username, whether or
 * not it exists, so a 429 tells nothing the uniform 401 would not) and per client IP, each in a
 * fixed window that starts at the first failure. An account or IP at its limit gets 429
 * `RATE_LIMIT_EXCEEDED` with `Retry-After` = the rest of its window, before any password check.
 *
 * The token buckets of `rateLimiter.ts` do not fit: their burst is one second's worth, while a
 * login limit is "n per window". Instead every attempt books one failure up front, atomically with
 * the check, so a burst of parallel guesses cannot outrun the limit; an attempt that turns out not
 * to be a wrong guess (success, or a 503) gives its booking back. A success never resets the
 * account's counter, which would let an attacker interleave guesses with a known login.
 *
 * The keys share the `{login}` hash tag so that the one script runs on Redis Cluster; logins are
 * rare enough for one slot. They are built here rather than in `redis/keys.ts` because they
 * belong to no tenant's keyspace (the IP key cannot), and they expire on their own.
 */
const BOOK = new RedisScript(`
-- KEYS: 1 account counter, 2 IP counter. ARGV: 1 account limit, 2 IP limit, 3 window ms
local wait, which = 0, 0
for i = 1, 2 do
  local n = tonumber(redis.call('GET', KEYS[i]) or '0')
  if n >= tonumber(ARGV[i]) then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then
      ttl = tonumber(ARGV[3])
      redis.call('PEXPIRE', KEYS[i], ttl)
    end
    if ttl > wait then wait, which = ttl, i end
  end
end
if wait > 0 then return { wait, which } end
for i = 1, 2 do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
end
return { 0, 0 }
`);

const REFUND = new RedisScript(`
for i = 1, #KEYS do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
return 1
`);

export interface LoginThrottleOptions {
  redis: Redis;
  /** `REDIS_PREFIX`. */
  prefix: string;
  /** Failed logins allowed per account (tenant + username) per window. */
  maxFailuresPerUser: number;
  /** Failed logins allowed per client IP per window, whichever accounts they name. */
  maxFailuresPerIp: number;
  /** Length of the window, seconds, from the first failure in it. */
  windowSeconds: number;
}

export interface LoginAttempt {
  /** `undefined` for a platform-admin login. */
  tenantId: string | undefined;
  username: string;
  /** The client address as Express sees it (`trust proxy` applied). */
  ip: string;
}

/** One booked attempt: it counts as a failure unless given back. */
export interface BookedAttempt {
  /** The attempt was not a wrong guess (it succeeded, or a dependency failed): stop counting it. */
  giveBack(): Promise<void>;
}

export class LoginThrottle {
  constructor(private readonly options: LoginThrottleOptions) {}

  /** Books an attempt, or throws `RateLimitError` when the account or the IP is at its limit. */
  async book(attempt: LoginAttempt): Promise<BookedAttempt> {
    const o = this.options;
    const keys = this.keysOf(attempt);
    const [wait, which] = (await BOOK.run(o.redis, keys, [
      o.maxFailuresPerUser,
      o.maxFailuresPerIp,
      o.windowSeconds * 1000,
    ])) as [number, number];
    if (wait > 0) {
      const perUser = which === 1;
      throw new RateLimitError(
        'RATE_LIMIT_EXCEEDED',
        'too many failed logins; try again later',
        Math.max(1, Math.ceil(wait / 1000)),
        {
          limit: perUser ? 'login_failures_per_user' : 'login_failures_per_ip',
          max_failures: perUser ? o.maxFailuresPerUser : o.maxFailuresPerIp,
          window_seconds: o.windowSeconds,
        },
      );
    }
    return {
      giveBack: async () => {
        await REFUND.run(o.redis, keys, []);
      },
    };
  }

  private keysOf(a: LoginAttempt): string[] {
    const base = `${this.options.prefix}:{login}`;
    // Tenant ids never start with `*`, so platform-admin accounts cannot collide with a tenant's.
    const tenant = a.tenantId === undefined ? '*' : encodeId(a.tenantId);
    return [`${base}:account:${tenant}:${encodeId(a.username)}`, `${base}:ip:${a.ip}`];
  }
}
