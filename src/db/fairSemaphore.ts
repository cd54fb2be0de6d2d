/**
 * A counting semaphore whose waiters are served round-robin by key (tenant) instead of first
 * come, first served: when permits are short, each key with waiters gets the next free permit in
 * turn, in arrival order within the key. A tenant with one waiter is served within (keys with
 * waiters) releases, however many waiters another tenant has queued.
 *
 * A key also holds at most `maxPerKey` permits at once, free permits or not: its next acquisitions
 * wait for its own releases. So a flood of one tenant runs at most that many transactions side by
 * side in PostgreSQL, and another tenant's statement competes with those few for the server's
 * CPU, not with all of the pool's.
 *
 * The database pool's checkouts go through one (`Database`), so that a flood's transactions
 * queue behind each other, not in front of a quiet tenant's.
 */
export class FairSemaphore {
  private available: number;
  /** Permits each key holds now; only keys holding some are present. */
  private readonly held = new Map<string, number>();
  /** Waiters per key, oldest first; only keys with waiters are present. */
  private readonly queues = new Map<string, Waiter[]>();
  /** Keys with waiters in service order: the next permit goes to the head's key. */
  private rotation: string[] = [];
  private head = 0;
  private waiting = 0;

  constructor(
    readonly permits: number,
    readonly maxPerKey: number = permits,
  ) {
    if (!(Number.isInteger(permits) && permits >= 1)) throw new RangeError('permits must be an integer ≥ 1');
    if (!(Number.isInteger(maxPerKey) && maxPerKey >= 1))
      throw new RangeError('maxPerKey must be an integer ≥ 1');
    this.available = permits;
  }

  /**
   * A permit for `key` at once (its release function) when one is free, `key` holds fewer than
   * `maxPerKey` and has nobody waiting; else undefined. (Free permits mean that every waiter left
   * is a key at its cap: `grant` runs whenever a permit or a key's room frees up.)
   */
  tryAcquire(key: string): (() => void) | undefined {
    if (this.available === 0 || this.heldBy(key) >= this.maxPerKey || this.queues.has(key)) return undefined;
    return this.take(key);
  }

  /**
   * A permit for `key`: at once when `tryAcquire` gives one, else in `key`'s turn. Resolves with
   * its release function (idempotent). An aborted wait rejects with the signal's reason and
   * leaves the queue.
   */
  acquire(key: string, signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    const now = this.tryAcquire(key);
    if (now) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, key, signal, onAbort: undefined };
      if (signal) {
        waiter.onAbort = () => this.cancel(waiter);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      let queue = this.queues.get(key);
      if (!queue) {
        queue = [];
        this.queues.set(key, queue);
        this.rotation.push(key);
      }
      queue.push(waiter);
      this.waiting++;
    });
  }

  /** Permits free now, and waiters. */
  snapshot(): { available: number; waiting: number; keys: number } {
    return { available: this.available, waiting: this.waiting, keys: this.queues.size };
  }

  private heldBy(key: string): number {
    return this.held.get(key) ?? 0;
  }

  private take(key: string): () => void {
    this.available--;
    this.held.set(key, this.heldBy(key) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.available++;
      const left = this.heldBy(key) - 1;
      if (left === 0) this.held.delete(key);
      else this.held.set(key, left);
      this.grant();
    };
  }

  /** Hands free permits to waiters, one key at a time in rotation, skipping keys at their cap. */
  private grant(): void {
    let skipped = 0;
    while (this.available > 0 && this.waiting > 0 && skipped < this.rotation.length) {
      if (this.head >= this.rotation.length) this.head = 0;
      const key = this.rotation[this.head]!;
      if (this.heldBy(key) >= this.maxPerKey) {
        this.head++;
        skipped++;
        continue;
      }
      skipped = 0;
      const queue = this.queues.get(key)!;
      const waiter = queue.shift()!;
      this.waiting--;
      if (queue.length === 0) this.removeKey(key);
      else this.head++;
      if (waiter.signal && waiter.onAbort) waiter.signal.removeEventListener('abort', waiter.onAbort);
      waiter.resolve(this.take(key));
    }
  }

  private cancel(waiter: Waiter): void {
    const queue = this.queues.get(waiter.key);
    const i = queue?.indexOf(waiter) ?? -1;
    if (i < 0) return;
    queue!.splice(i, 1);
    this.waiting--;
    if (queue!.length === 0) this.removeKey(waiter.key);
    waiter.reject(waiter.signal!.reason as Error);
  }

  /** Drops an emptied key from the rotation; the key after it keeps its turn. */
  private removeKey(key: string): void {
    this.queues.delete(key);
    const i = this.rotation.indexOf(key);
    this.rotation.splice(i, 1);
    if (i < this.head) this.head--;
    if (this.rotation.length === 0) this.head = 0;
  }
}

interface Waiter {
  resolve: (release: () => void) => void;
  reject: (err: Error) => void;
  key: string;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}
