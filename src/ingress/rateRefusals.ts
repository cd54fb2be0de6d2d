/** Most buckets remembered at once; beyond it, expired entries are dropped, then the oldest. */
const DEFAULT_MAX_ENTRIES = 10_000;

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

  constructor(private readonly maxEntries = DEFAULT_MAX_ENTRIES) {}

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

  /** Records that `bucket` has no token for `waitMs` from `now`. */
  remember(bucket: string, now: number, waitMs: number): void {
    if (!(waitMs > 0)) return;
    this.until.delete(bucket);
    if (this.until.size >= this.maxEntries) this.prune(now);
    this.until.set(bucket, now + waitMs);
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
