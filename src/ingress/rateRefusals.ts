/** Most buckets remembered at once; beyond it, expired entries are dropped, then the oldest. */
const DEFAULT_MAX_ENTRIES = 10_000;

/**
 * Least time an empty bucket is remembered, ms. A bucket at 100/s is empty for 10 ms before its
 * next token, so a flood arriving faster than that would go to Redis again (and be refused there)
 * for most of its requests. Holding the refusal longer costs the sender nothing: a bucket holds a
 * second's worth of tokens (`burst` = rate, `rateLimiter.ts`), so the tokens that come back
 * meanwhile are still there, taken in a burst, when the hold ends.
 */
export const DEFAULT_HOLD_MS = 100;

/** A bucket that was found empty: which one, and for how much longer. */
export interface KnownRefusal {
  /** The bucket's name as the caller gave it to `remember`. */
  bucket: string;
  /** ms until the bucket holds the next token again. */
  waitMs: number;
}

/**
 * What the admission script said about empty token buckets, remembered in this process until
 * the bucket can hold a token again. Until then Redis would refuse every send that needs the
 * bucket (tokens only come back with time, and other processes only take more), so the answer is
 * the same without the round trip: a flood that its rate limit refuses costs the process a map
 * lookup per request instead of a script call. A pure core: the clock is the caller's.
 */
export class RateRefusals {
  private readonly until = new Map<string, number>();

  constructor(
    private readonly maxEntries = DEFAULT_MAX_ENTRIES,
    private readonly holdMs = DEFAULT_HOLD_MS,
  ) {}

  /** The first of `buckets` known to be empty at `now`, if any. */
  refusal(buckets: readonly string[], now: number): KnownRefusal | undefined {
    for (const bucket of buckets) {
      const until = this.until.get(bucket);
      if (until === undefined) continue;
      if (until > now) return { bucket, waitMs: until - now };
      this.until.delete(bucket);
    }
    return undefined;
  }

  /**
   * Records that `bucket` has no token for `waitMs` from `now`; it is refused for at least
   * `holdMs` (≤ 1 s: no token is lost, see `DEFAULT_HOLD_MS`).
   */
  remember(bucket: string, now: number, waitMs: number): void {
    if (!(waitMs > 0)) return;
    this.until.delete(bucket);
    if (this.until.size >= this.maxEntries) this.prune(now);
    this.until.set(bucket, now + Math.max(waitMs, Math.min(this.holdMs, 1000)));
  }

  /** Buckets remembered now (expired ones included until they are next looked at or pruned). */
  get size(): number {
    return this.until.size;
  }

  private prune(now: number): void {
    for (const [bucket, until] of this.until) if (until <= now) this.until.delete(bucket);
    // Still full: drop the oldest insertions (Map keeps insertion order); forgetting a refusal
    // only costs a round trip.
    for (const bucket of this.until.keys()) {
      if (this.until.size < this.maxEntries) break;
      this.until.delete(bucket);
    }
  }
}
