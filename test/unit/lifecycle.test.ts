import { closeAll, closeAllAtOnce } from '../../src/lifecycle';

describe('closeAll', () => {
  it('runs every step in order even when one throws, then fails with every failure', async () => {
    const ran: string[] = [];
    const boom = new Error('root close failed');
    const closing = closeAll([
      () => ran.push('workers'),
      () => {
        ran.push('root');
        throw boom;
      },
      () => Promise.reject(new Error('quit failed')).finally(() => ran.push('quit')),
      async () => {
        await Promise.resolve();
        ran.push('disconnect');
      },
    ]);
    const err = await closing.catch((e: unknown) => e);
    expect(ran).toEqual(['workers', 'root', 'quit', 'disconnect']);
    expect(err).toBeInstanceOf(AggregateError);
    expect((err as AggregateError).errors).toEqual([boom, new Error('quit failed')]);
  });

  it('resolves when every step succeeds', async () => {
    await expect(closeAll([() => undefined, () => Promise.resolve()])).resolves.toBeUndefined();
  });
});

describe('closeAllAtOnce', () => {
  it('starts every step before any finishes, and reports a synchronous throw as a failure', async () => {
    const started: number[] = [];
    let release = () => undefined as void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const closing = closeAllAtOnce([
      async () => {
        started.push(1);
        await gate;
      },
      () => {
        started.push(2);
        throw new Error('sync');
      },
      () => {
        started.push(3);
      },
    ]);
    expect(started).toEqual([]);
    await Promise.resolve();
    expect(started).toEqual([1, 2, 3]);
    release();
    const err = await closing.catch((e: unknown) => e);
    expect((err as AggregateError).errors).toEqual([new Error('sync')]);
  });
});
