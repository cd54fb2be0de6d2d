/** Most job starts allowed in any window of `durationMs`. */
export interface RateLimit {
  /** Starts per window; an integer ≥ 1. */
  max: number;
  /** Window length in ms; > 0. */
  durationMs: number;
}

/**
 * A bucket of `max` tokens in which each spent token comes back exactly `durationMs` after it was
 * spent (a sliding-window log). A continuously refilled bucket lets up to 2 × max starts through in
 * one window (a full bucket, then the refill); this one never lets more than `max` through in any
 * half-open window of `durationMs`, which is the rate limit's promise. Memory: one timestamp per
 * token currently out, so at most `max`, and only as many as the tenant really used in the window.
 * Pure; times must not go backwards.
 */
export class TokenBucket {
  private spent: number[] = [];
  private head = 0;

  /**
   * `previous` carries over, when a tenant's limit changes at `nowMs`, the tokens still out under
   * the old limit; so windows after the change stay within the new limit, and a window spanning the
   * change sees the starts the old limit still counted.
   */
  constructor(
    readonly limit: RateLimit,
    previous?: { bucket: TokenBucket; nowMs: number },
  ) {
    if (!previous) return;
    previous.bucket.expire(previous.nowMs);
    this.spent = previous.bucket.spent.slice(previous.bucket.head);
  }

  /** Spends a token at `nowMs` (the caller checked `nextAt`; a forced start is counted all the same). */
  take(nowMs: number): void {
    this.spent.push(nowMs);
  }

  /** Gives back the token spent last (its start did not happen). */
  refund(): void {
    if (this.spent.length > this.head) this.spent.pop();
  }

  /** Tokens out at `nowMs`: starts in the window (nowMs − durationMs, nowMs]. */
  count(nowMs: number): number {
    this.expire(nowMs);
    return this.spent.length - this.head;
  }

  /** The earliest time ≥ nowMs at which a token is free. */
  nextAt(nowMs: number): number {
    const over = this.count(nowMs) - this.limit.max;
    return over < 0 ? nowMs : this.spent[this.head + over]! + this.limit.durationMs;
  }

  private expire(nowMs: number): void {
    const { spent } = this;
    while (this.head < spent.length && spent[this.head]! + this.limit.durationMs <= nowMs) this.head++;
    // Compact now and then, so the array does not grow with the tenant's lifetime.
    if (this.head > 64 && this.head * 2 > spent.length) {
      this.spent = spent.slice(this.head);
      this.head = 0;
    }
  }
}
