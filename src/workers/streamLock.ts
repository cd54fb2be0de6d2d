import { randomBytes } from 'node:crypto';

import type { Redis } from 'ioredis';

import { RedisScript } from '../ingress/redisScript';

/**
 * Takes the lock, or, when another job holds it, marks the stream "dirty" (a message was stored
 * that the holder must look at). One script, so a release cannot slip between the failed take
 * and the mark. KEYS: lock, dirty flag. ARGV: token, ttl ms. Returns 1 (taken) or 0 (marked).
 */
const TAKE_OR_MARK = new RedisScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 end
redis.call('SET', KEYS[2], '1', 'PX', tonumber(ARGV[2]) * 2)
return 0`);

/**
 * Releases the lock unless the stream was marked dirty meanwhile; then clears the mark and keeps
 * the lock (renewed) for another pass. KEYS: lock, dirty flag. ARGV: token, ttl ms. Returns 1
 * (released, or no longer ours) or 0 (kept: look again).
 */
const RELEASE_UNLESS_DIRTY = new RedisScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 1 end
if redis.call('DEL', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 0
end
redis.call('DEL', KEYS[1])
return 1`);

const RELEASE = new RedisScript(
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
);
const RENEW = new RedisScript(
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`,
);

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
 */
export class StreamLock {
  private readonly token = randomBytes(12).toString('base64url');
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly dirtyKey: string,
    private readonly ttlMs = 15_000,
  ) {}

  /** Takes the lock if it is free; leaves no mark when it is not. */
  async take(): Promise<boolean> {
    return this.held((await this.redis.set(this.key, this.token, 'PX', this.ttlMs, 'NX')) === 'OK');
  }

  /**
   * Takes the lock (true), or marks the stream for the holder (false). Call it only once the
   * message the holder must see is stored.
   */
  async takeOrMark(): Promise<boolean> {
    return this.held(
      (await TAKE_OR_MARK.run(this.redis, [this.key, this.dirtyKey], [this.token, this.ttlMs])) === 1,
    );
  }

  /** Releases the lock (true), or keeps it when the stream was marked dirty (false: look again). */
  async releaseUnlessDirty(): Promise<boolean> {
    const released =
      (await RELEASE_UNLESS_DIRTY.run(this.redis, [this.key, this.dirtyKey], [this.token, this.ttlMs])) === 1;
    if (released) this.stopRenewing();
    return released;
  }

  /** Releases the lock whatever the mark says (after a failure: a retried job looks again). */
  async release(): Promise<void> {
    this.stopRenewing();
    await RELEASE.run(this.redis, [this.key], [this.token]);
  }

  /** Starts renewing a lock just taken. */
  private held(taken: boolean): boolean {
    if (!taken) return false;
    this.timer = setInterval(() => {
      RENEW.run(this.redis, [this.key], [this.token, this.ttlMs]).catch(() => undefined);
    }, this.ttlMs / 3);
    this.timer.unref();
    return true;
  }

  private stopRenewing(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
