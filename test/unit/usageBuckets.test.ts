import { bucketStart, latencyPercentiles, percentile } from '../../src/domain/usageBuckets';

describe('percentile (nearest rank)', () => {
  it('is null for no values and the value itself for one', () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([7], 50)).toBe(7);
    expect(percentile([7], 99)).toBe(7);
  });

  it('picks the smallest value with at least p% at or below it', () => {
    const values = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 51)).toBe(60);
    expect(percentile(values, 90)).toBe(90);
    expect(percentile(values, 99)).toBe(100);
    expect(percentile(values, 100)).toBe(100);
    expect(percentile(values, 0)).toBe(10);
  });

  it('does not need sorted input and leaves it alone', () => {
    const values = [5, 1, 4, 2, 3];
    expect(percentile(values, 50)).toBe(3);
    expect(values).toEqual([5, 1, 4, 2, 3]);
  });

  it('finds the tail of 100 values', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile(values, 50)).toBe(50);
  });

  it('rejects p outside 0..100', () => {
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
  });
});

describe('buckets', () => {
  it('aligns minutes and hours in UTC', () => {
    const at = Date.UTC(2030, 0, 1, 10, 37, 42, 123);
    expect(bucketStart(at, 'minute')).toBe(Date.UTC(2030, 0, 1, 10, 37));
    expect(bucketStart(at, 'hour')).toBe(Date.UTC(2030, 0, 1, 10));
  });

  it('reports p50/p99 of queue waits and processing times', () => {
    expect(latencyPercentiles({ queueWaitsMs: [1, 2, 3, 400], processingMs: [] })).toEqual({
      queueWaitP50: 2,
      queueWaitP99: 400,
      processingP50: null,
      processingP99: null,
    });
  });
});
