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
