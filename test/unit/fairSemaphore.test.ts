import { FairSemaphore } from '../../src/db/fairSemaphore';

/** Lets resolved acquisitions run their continuations. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('FairSemaphore', () => {
  it('grants at once while permits are free', async () => {
    const s = new FairSemaphore(2);
    const a = await s.acquire('t');
    await s.acquire('t');
    expect(s.snapshot()).toEqual({ available: 0, waiting: 0, keys: 0 });
    a();
    a(); // idempotent
    expect(s.snapshot().available).toBe(1);
  });

  it('serves a quiet key next, ahead of a flood queued before it', async () => {
    const s = new FairSemaphore(1);
    const first = await s.acquire('flood');
    const order: string[] = [];
    const releases: (() => void)[] = [];
    const wait = (key: string, label: string) =>
      void s.acquire(key).then((release) => {
        order.push(label);
        releases.push(release);
      });
    for (let i = 0; i < 50; i++) wait('flood', `flood${i}`);
    wait('quiet', 'quiet');
    first();
    await settle();
    // The flood's oldest waiter had its turn; the quiet key is next, before 49 more of the flood.
    releases.shift()!();
    await settle();
    expect(order).toEqual(['flood0', 'quiet']);
  });

  it('alternates between keys and keeps arrival order within a key', async () => {
    const s = new FairSemaphore(1);
    const held = await s.acquire('x');
    const order: string[] = [];
    const all: Promise<void>[] = [];
    for (const label of ['a1', 'a2', 'a3', 'b1', 'b2', 'c1']) {
      all.push(
        s.acquire(label[0]!).then((release) => {
          order.push(label);
          release();
        }),
      );
    }
    held();
    await Promise.all(all);
    expect(order).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'a3']);
    expect(s.snapshot()).toEqual({ available: 1, waiting: 0, keys: 0 });
  });

  it('takes an aborted waiter out of the queue and passes its turn on', async () => {
    const s = new FairSemaphore(1);
    const held = await s.acquire('x');
    const abort = new AbortController();
    const aborted = s.acquire('a', abort.signal);
    const next = s.acquire('b');
    abort.abort(new Error('timed out'));
    await expect(aborted).rejects.toThrow('timed out');
    expect(s.snapshot().waiting).toBe(1);
    held();
    const release = await next;
    release();
    expect(s.snapshot()).toEqual({ available: 1, waiting: 0, keys: 0 });
    await expect(s.acquire('c', AbortSignal.abort(new Error('late')))).rejects.toThrow('late');
  });

  it('never hands out more permits than it has, whatever the order of events', async () => {
    const s = new FairSemaphore(3);
    let held = 0;
    let most = 0;
    const work = async (key: string) => {
      const release = await s.acquire(key);
      held++;
      most = Math.max(most, held);
      await settle();
      held--;
      release();
    };
    await Promise.all(Array.from({ length: 200 }, (_, i) => work(`k${i % 7}`)));
    expect(most).toBe(3);
    expect(s.snapshot()).toEqual({ available: 3, waiting: 0, keys: 0 });
  });
});

describe('FairSemaphore with a cap per key', () => {
  it('holds a key to its cap while permits are free, and lets another key take them at once', async () => {
    const s = new FairSemaphore(4, 2);
    const flood = [await s.acquire('flood'), await s.acquire('flood')];
    expect(s.tryAcquire('flood')).toBeUndefined();
    let third = false;
    void s.acquire('flood').then(() => (third = true));
    await settle();
    expect(third).toBe(false);
    // Free permits are not the flood's: a quiet key gets one at once, though the flood waits.
    const quiet = s.tryAcquire('quiet');
    expect(quiet).toBeDefined();
    expect(s.snapshot()).toEqual({ available: 1, waiting: 1, keys: 1 });
    // The flood's own release makes room for its waiter.
    flood[0]!();
    await settle();
    expect(third).toBe(true);
    expect(s.snapshot()).toEqual({ available: 1, waiting: 0, keys: 0 });
  });

  it("passes a capped key's turn to the next key when permits are short", async () => {
    const s = new FairSemaphore(3, 2);
    const a = [await s.acquire('a'), await s.acquire('a')];
    const b = await s.acquire('b');
    const order: string[] = [];
    for (const label of ['a1', 'a2']) void s.acquire('a').then(() => order.push(label));
    void s.acquire('b').then(() => order.push('b1'));
    await settle();
    expect(order).toEqual([]);
    // b's release: a is at its cap, so b's waiter takes the permit although a queued first.
    b();
    await settle();
    expect(order).toEqual(['b1']);
    a[0]!();
    await settle();
    expect(order).toEqual(['b1', 'a1']);
  });

  it('never lets a key hold more than its cap, nor hands out more permits than there are', async () => {
    const s = new FairSemaphore(5, 2);
    const held = new Map<string, number>();
    let total = 0;
    let peak = 0;
    const run = async (key: string) => {
      const release = await s.acquire(key);
      held.set(key, (held.get(key) ?? 0) + 1);
      total++;
      peak = Math.max(peak, held.get(key)!);
      expect(total).toBeLessThanOrEqual(5);
      await new Promise((r) => setTimeout(r, key.charCodeAt(0) % 3));
      held.set(key, held.get(key)! - 1);
      total--;
      release();
    };
    await Promise.all(Array.from({ length: 60 }, (_, i) => run(['a', 'b', 'c', 'a', 'a'][i % 5]!)));
    expect(peak).toBe(2);
    expect(s.snapshot()).toEqual({ available: 5, waiting: 0, keys: 0 });
  });
});
