import type { Redis } from 'ioredis';

import type { Keyspace } from '../redis/keys';
import { RedisScript } from '../redis/redisScript';

/** The chat's effective `emoji.cooldown_seconds` and `emoji.max_per_hour`. */
export interface AutoEmojiLimits {
  cooldownSeconds: number;
  maxPerHour: number;
}

/** Why an automatic emoji was refused. */
export type AutoEmojiRefusal = 'cooldown' | 'max_per_hour';

const HOUR_MS = 3_600_000;

/** The limits from a chat's effective `emoji` values (the documented defaults when unset). */
export function autoEmojiLimitsOf(values: Record<string, unknown>): AutoEmojiLimits {
  return {
    cooldownSeconds: typeof values.cooldown_seconds === 'number' ? values.cooldown_seconds : 60,
    maxPerHour: typeof values.max_per_hour === 'number' ? values.max_per_hour : 20,
  };
}

/*
 * KEYS[1]: last automatic emoji of the chat (`<ms>|<message id>`), KEYS[2]: the hour's count.
 * ARGV: now (ms, the worker's clock), cooldown (ms), max per hour, message id, hour key TTL (ms).
 * The same message asking again (a retried pass) is granted without counting twice.
 */
const TAKE = new RedisScript(`
local now = tonumber(ARGV[1])
local cooldown = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local last = redis.call('GET', KEYS[1])
if last then
  local sep = string.find(last, '|', 1, true)
  if string.sub(last, sep + 1) == ARGV[4] then return 'ok' end
  if cooldown > 0 and now - tonumber(string.sub(last, 1, sep - 1)) < cooldown then return 'cooldown' end
end
local n = tonumber(redis.call('GET', KEYS[2]) or '0')
if n >= max then return 'max_per_hour' end
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[4], 'PX', math.max(cooldown, 1000))
return 'ok'
`);

/**
 * `emoji.cooldown_seconds` and `emoji.max_per_hour` of AUTOMATIC emoji (the heartflow's `emoji`
 * action) per chat stream: one script, one round trip. The cooldown is the least time since the
 * chat's last automatic emoji; the hourly cap counts per fixed clock hour (UTC, of the worker's
 * clock). An emoji sent by `POST /emoji/send` is not automatic and neither counted nor limited.
 */
export class AutoEmojiLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keyspace,
  ) {}

  /** Takes one automatic emoji for `messageId` at `now`; undefined when granted, else why not. */
  async take(
    at: { tenantId: string; chatStreamId: string; messageId: string; now: number },
    limits: AutoEmojiLimits,
  ): Promise<AutoEmojiRefusal | undefined> {
    if (limits.maxPerHour <= 0) return 'max_per_hour';
    const hour = Math.floor(at.now / HOUR_MS);
    const result = await TAKE.run(
      this.redis,
      [
        this.keys.autoEmojiLast(at.tenantId, at.chatStreamId),
        this.keys.autoEmojiHour(at.tenantId, at.chatStreamId, hour),
      ],
      [at.now, limits.cooldownSeconds * 1000, limits.maxPerHour, at.messageId, HOUR_MS + 60_000],
    );
    return result === 'ok' ? undefined : (result as AutoEmojiRefusal);
  }
}
