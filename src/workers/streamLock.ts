import { randomBytes } from 'node:crypto';

import type { Redis } from 'ioredis';

const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`;
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0`;

/**
 * A chat stream's "someone is answering" lock. Its TTL is short and renewed while held, so a
 * worker that dies frees the stream within `ttlMs` — well before BullMQ hands the dead worker's
 * job to another worker (lock duration + stalled interval), which then finds the stream free.
 */
export class StreamLock {
  private readonly token = randomBytes(12).toString('base64url');
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly ttlMs = 15_000,
  ) {}

  async acquire(): Promise<boolean> {
    const ok = await this.redis.set(this.key, this.token, 'PX', this.ttlMs, 'NX');
    if (ok !== 'OK') return false;
    this.timer = setInterval(() => {
      this.redis.eval(RENEW, 1, this.key, this.token, String(this.ttlMs)).catch(() => undefined);
    }, this.ttlMs / 3);
    this.timer.unref();
    return true;
  }

  async release(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.redis.eval(RELEASE, 1, this.key, this.token);
  }
}
