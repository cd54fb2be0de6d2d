import { randomBytes } from 'node:crypto';

import type { Redis } from 'ioredis';

import { RedisScript } from '../redis/redisScript';

/**
 * Takes the lock if free. KEYS: lock, last pass end. ARGV: token, ttl ms. Returns
 * `{taken (1|0), last pass end (ms, 0 = unknown)}`.
 */
const TAKE = new RedisScript(`
local taken = redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') and 1 or 0
return { taken, tonumber(redis.call('GET', KEYS[2]) or '0') }`);

/**
 * Takes the lock, or, when another job holds it, marks the stream "dirty" (a message was stored
 * that the holder must look at). One script, so a release cannot slip between the failed take
 * and the mark. KEYS: lock, dirty flag, last pass end. ARGV: token, ttl ms. Returns as `TAKE`.
 */
const TAKE_OR_MARK = new RedisScript(`
local last = tonumber(redis.call('GET', KEYS[3]) or '0')
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return { 1, last } end
redis.call('SET', KEYS[2], '1', 'PX', tonumber(ARGV[2]) * 2)
return { 0, last }`);

/**
 * After a pass: records its end, and releases the lock unless the stream was marked dirty
 * meanwhile; then clears the mark and keeps the lock (renewed) for another pass. KEYS: lock,
 * dirty flag, last pass end. ARGV: token, ttl ms, now ms. Returns 1 (released, or no longer ours)
 * or 0 (kept: look again).
 */
const RELEASE_UNLESS_DIRTY = new RedisScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 1 end
redis.call('SET', KEYS[3], ARGV[3], 'PX', 60000)
if redis.call('DEL', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 0
end
redis.call('DEL', KEYS[1])
return 1`);

const RELEASE = new RedisScript(
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
);
/** Sets the lock's TTL if it is still ours: renewal, hand-over and adoption. */
const EXPIRE_IF_OWN = new RedisScript(
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`,
);

export interface StreamLockKeys {
  lock: string;
  /** Set while the lock is held when a job stored a message the holder must still see. */
  dirty: string;
  /** When the stream's last pass ended (ms), kept a minute. */
  lastPass: string;
}

/**
 * A chat stream's "someone is answering" lock. Its TTL is short and renewed while held, so a
 * worker that dies frees the stream within `ttlMs` — well before BullMQ hands the dead worker's
 * job to another worker (lock duration + stalled interval), which then finds the stream free.
 *
 * The handover between a holder and the jobs that find the lock taken costs no database read: a
 * job that stored its message and finds the lock taken marks the stream dirty (`takeOrMark`), and
 * the holder's `releaseUnlessDirty` keeps the lock for another pass when it was marked. Both are
 * single scripts, so every stored message is either seen by the holder's next pass or finds the
 * lock free. (`take`, which marks nothing, lets a job try for the lock before it stored anything.)
 *
 * A holder may also hand the lock to a later job (`handOver`: the lock outlives it for a while,
 * and the job that knows its `token` `adopt`s it): that is how a busy stream gathers messages.
 */
export class StreamLock {
  private timer: NodeJS.Timeout | undefined;
  /** When the stream's previous pass ended, as the last take read it (ms; undefined = unknown). */
  lastPassEndedAt: number | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly keys: StreamLockKeys,
    private readonly ttlMs = 15_000,
    /** The holder's token; give a handed-over lock's to `adopt` it. */
    readonly token = randomBytes(12).toString('base64url'),
  ) {}

  /** Takes the lock if it is free; leaves no mark when it is not. */
  async take(): Promise<boolean> {
    return this.taken(
      await TAKE.run(this.redis, [this.keys.lock, this.keys.lastPass], [this.token, this.ttlMs]),
    );
  }

  /**
   * Takes the lock (true), or marks the stream for the holder (false). Call it only once the
   * message the holder must see is stored.
   */
  async takeOrMark(): Promise<boolean> {
    const { lock, dirty, lastPass } = this.keys;
    return this.taken(await TAKE_OR_MARK.run(this.redis, [lock, dirty, lastPass], [this.token, this.ttlMs]));
  }

  /** Takes over a lock handed over under this token; false when it expired meanwhile. */
  async adopt(): Promise<boolean> {
    return this.held((await EXPIRE_IF_OWN.run(this.redis, [this.keys.lock], [this.token, this.ttlMs])) === 1);
  }

  /**
   * After a pass ending at `nowMs`: releases the lock (true), or keeps it when the stream was
   * marked dirty (false: look again).
   */
  async releaseUnlessDirty(nowMs: number): Promise<boolean> {
    const { lock, dirty, lastPass } = this.keys;
    const released =
      (await RELEASE_UNLESS_DIRTY.run(
        this.redis,
        [lock, dirty, lastPass],
        [this.token, this.ttlMs, nowMs],
      )) === 1;
    this.lastPassEndedAt = nowMs;
    if (released) this.stopRenewing();
    return released;
  }

  /** Stops renewing and lets the lock live `forMs` more, for the job that will `adopt` it. */
  async handOver(forMs: number): Promise<void> {
    this.stopRenewing();
    await EXPIRE_IF_OWN.run(this.redis, [this.keys.lock], [this.token, forMs]);
  }

  /** Releases the lock whatever the mark says (after a failure: a retried job looks again). */
  async release(): Promise<void> {
    this.stopRenewing();
    await RELEASE.run(this.redis, [this.keys.lock], [this.token]);
  }

  private taken(reply: unknown): boolean {
    const [taken, last] = reply as [number, number];
    this.lastPassEndedAt = last > 0 ? last : undefined;
    return this.held(taken === 1);
  }

  /** Starts renewing a lock just taken. */
  private held(taken: boolean): boolean {
    if (!taken) return false;
    this.stopRenewing();
    this.timer = setInterval(() => {
      EXPIRE_IF_OWN.run(this.redis, [this.keys.lock], [this.token, this.ttlMs]).catch(() => undefined);
    }, this.ttlMs / 3);
    this.timer.unref();
    return true;
  }

  private stopRenewing(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
