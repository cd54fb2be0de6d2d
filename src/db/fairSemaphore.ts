/**
 * A counting semaphore whose waiters are served round-robin by key (tenant) instead of first
 * come, first served: when permits are short, each key with waiters gets the next free permit in
 * turn, in arrival order within the key. A tenant with one waiter is served within (keys with
 * waiters) releases, however many waiters another tenant has queued.
 *
 * The database pool's checkouts go through one (`Database`), so that a flood's transactions
 * queue behind each other, not in front of a quiet tenant's.
 */
export class FairSemaphore {
  private available: number;
  /** Waiters per key, oldest first; only keys with waiters are present. */
  private readonly queues = new Map<string, Waiter[]>();
  /** Keys with waiters in service order: the next permit goes to the head's key. */
  private rotation: string[] = [];
  private head = 0;
  private waiting = 0;

  constructor(readonly permits: number) {
    if (!(Number.isInteger(permits) && permits >= 1)) throw new RangeError('permits must be an integer ≥ 1');
    this.available = permits;
  }

  /** A permit at once (its release function) when one is free and nobody waits; else undefined. */
  tryAcquire(): (() => void) | undefined {
    if (this.available === 0 || this.waiting > 0) return undefined;
    this.available--;
    return this.releaser();
  }

  /**
   * A permit for `key`: at once when one is free and nobody waits, else in `key`'s turn. Resolves
   * with its release function (idempotent). An aborted wait rejects with the signal's reason and
   * leaves the queue.
   */
  acquire(key: string, signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    const now = this.tryAcquire();
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

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.available++;
      this.grant();
    };
  }

  /** Hands free permits to waiters, one key at a time in rotation. */
  private grant(): void {
    while (this.available > 0 && this.waiting > 0) {
      if (this.head >= this.rotation.length) this.head = 0;
      const key = this.rotation[this.head]!;
      const queue = this.queues.get(key)!;
      const waiter = queue.shift()!;
      this.waiting--;
      if (queue.length === 0) this.removeKey(key);
      else this.head++;
      if (waiter.signal && waiter.onAbort) waiter.signal.removeEventListener('abort', waiter.onAbort);
      this.available--;
      waiter.resolve(this.releaser());
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
