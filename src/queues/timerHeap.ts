/** An entry of a `TimerHeap`; callers keep it to recognise (and so ignore) entries they cancelled. */
export interface Timer<T> {
  readonly at: number;
  readonly tie: number;
  readonly seq: number;
  readonly value: T;
}

/**
 * A binary min-heap of timers: earliest `at` first, equal times by the `tie` key (the scheduler
 * passes a seeded random number, so that no tenant always wakes first), then by insertion. Pure;
 * O(log n) per push and pop. Cancelling is the caller's: it drops its reference and skips the entry.
 */
export class TimerHeap<T> {
  private readonly heap: Timer<T>[] = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  peek(): Timer<T> | undefined {
    return this.heap[0];
  }

  push(at: number, tie: number, value: T): Timer<T> {
    const timer: Timer<T> = { at, tie, seq: ++this.seq, value };
    const h = this.heap;
    let i = h.push(timer) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(timer, h[parent]!)) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = timer;
    return timer;
  }

  pop(): Timer<T> | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= h.length) break;
      const child = left + 1 < h.length && before(h[left + 1]!, h[left]!) ? left + 1 : left;
      if (!before(h[child]!, last)) break;
      h[i] = h[child]!;
      i = child;
    }
    h[i] = last;
    return top;
  }
}

function before<T>(a: Timer<T>, b: Timer<T>): boolean {
  if (a.at !== b.at) return a.at < b.at;
  return a.tie !== b.tie ? a.tie < b.tie : a.seq < b.seq;
}
