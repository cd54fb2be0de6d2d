import { RateRefusals } from '../../src/ingress/rateRefusals';

describe('RateRefusals', () => {
  it('refuses a remembered bucket until its wait has passed, then forgets it', () => {
    const r = new RateRefusals();
    r.remember('t1:credential:k', 1000, 250);
    expect(r.refusal(['t1:tenant', 't1:credential:k'], 1000)).toEqual({
      bucket: 't1:credential:k',
      waitMs: 250,
    });
    expect(r.refusal(['t1:credential:k'], 1249)).toEqual({ bucket: 't1:credential:k', waitMs: 1 });
    expect(r.refusal(['t1:credential:k'], 1250)).toBeUndefined();
    expect(r.size).toBe(0);
  });

  it('keeps buckets apart: another credential or tenant is not refused', () => {
    const r = new RateRefusals();
    r.remember('t1:credential:k', 0, 500);
    expect(r.refusal(['t1:tenant', 't1:credential:other'], 10)).toBeUndefined();
    expect(r.refusal(['t2:tenant', 't2:credential:k'], 10)).toBeUndefined();
  });

  it('answers with the first empty bucket in the order asked', () => {
    const r = new RateRefusals();
    r.remember('t:credential:k', 0, 900);
    r.remember('t:tenant', 0, 100);
    expect(r.refusal(['t:tenant', 't:credential:k'], 50)?.bucket).toBe('t:tenant');
    expect(r.refusal(['t:tenant', 't:credential:k'], 150)?.bucket).toBe('t:credential:k');
  });

  it('ignores waits that are not positive', () => {
    const r = new RateRefusals();
    r.remember('b', 0, 0);
    r.remember('c', 0, Number.NaN);
    expect(r.size).toBe(0);
  });

  it('stays within its bound: expired entries go first, then the oldest', () => {
    const r = new RateRefusals(3, 0);
    r.remember('a', 0, 10);
    r.remember('b', 0, 1000);
    r.remember('c', 0, 1000);
    r.remember('d', 20, 1000); // 'a' has expired: pruned
    expect(r.size).toBe(3);
    expect(r.refusal(['b', 'c', 'd'], 30)?.bucket).toBe('b');
    r.remember('e', 30, 1000); // none expired: the oldest ('b') goes
    expect(r.size).toBe(3);
    expect(r.refusal(['b'], 30)).toBeUndefined();
    expect(r.refusal(['e'], 30)?.bucket).toBe('e');
  });

  it('holds a refusal for at least its hold time (the tokens refilled meanwhile are kept), at most a second', () => {
    const r = new RateRefusals(10, 100);
    r.remember('t:credential:k', 0, 10); // the next token in 10 ms (100/s)
    expect(r.refusal(['t:credential:k'], 50)).toEqual({ bucket: 't:credential:k', waitMs: 50 });
    expect(r.refusal(['t:credential:k'], 100)).toBeUndefined();
    r.remember('t:credential:k', 0, 400); // a longer wait than the hold: the wait
    expect(r.refusal(['t:credential:k'], 399)?.waitMs).toBe(1);
    const long = new RateRefusals(10, 5000);
    long.remember('t:tenant', 0, 10);
    expect(long.refusal(['t:tenant'], 999)).toBeDefined();
    expect(long.refusal(['t:tenant'], 1000)).toBeUndefined();
  });
});
