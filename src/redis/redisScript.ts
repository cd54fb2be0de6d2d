import { createHash } from 'node:crypto';

import type { Redis } from 'ioredis';

/**
 * A Lua script run by its SHA (`EVALSHA`), loaded with `EVAL` only when the server does not know
 * it yet (first use, or after a restart or `SCRIPT FLUSH`): one round trip in the steady state.
 */
export class RedisScript {
  /** Every script defined so far (module constants): the Redis Cluster test runs them all. */
  static readonly defined = new Set<RedisScript>();
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
    RedisScript.defined.add(this);
  }

  async run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}
