import {
  addSample,
  binOf,
  binValue,
  countOf,
  cumulativeAt,
  type Histogram,
  mergeInto,
  quantile,
} from '../../src/domain/latencyHistogram';
import { percentile } from '../../src/domain/usageBuckets';

/** A seeded uniform source, so the samples are the same in every run. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const histogramOf = (values: readonly number[]): Histogram => {
  const h: Histogram = new Map();
  for (const v of values) addSample(h, v);
  return h;
};

describe('latency histogram', () => {
  it('is exact below one second: the nearest-rank percentile of the rounded samples', () => {
    const rng = lcg(7);
    const values = Array.from({ length: 5000 }, () => Math.round(rng() ** 3 * 999));
    const h = histogramOf(values);
    for (const p of [0, 1, 50, 90, 95, 99, 99.9, 100]) expect(quantile(h, p)).toBe(percentile(values, p));
  });

  it('stays within 0.5 % of the true percentile above one second', () => {
    const rng = lcg(11);
    const values = Array.from({ length: 5000 }, () => 1000 + Math.round(rng() * 3_600_000));
    const h = histogramOf(values);
    for (const p of [50, 95, 99]) {
      const truth = percentile(values, p)!;
      expect(Math.abs(quantile(h, p)! - truth) / truth).toBeLessThanOrEqual(0.005);
    }
    for (const v of [1000, 1234, 59_999, 3_600_000])
      expect(Math.abs(binValue(binOf(v)) - v) / v).toBeLessThanOrEqual(0.005);
  });

  it('merges per-bucket histograms into the histogram of the whole period', () => {
    const rng = lcg(3);
    const buckets = Array.from({ length: 60 }, (_, i) =>
      Array.from({ length: 20 + i }, () => Math.round(rng() * (i < 30 ? 50 : 900))),
    );
    const merged = buckets
      .map(histogramOf)
      .reduce((into, h) => mergeInto(into, h), new Map<number, number>());
    const all = buckets.flat();
    expect(countOf(merged)).toBe(all.length);
    for (const p of [50, 95, 99]) expect(quantile(merged, p)).toBe(percentile(all, p));
    // Averaging the buckets' p99s is not the period's p99 (why the bins are kept, not percentiles).
    const averaged = buckets.map((b) => percentile(b, 99)!).reduce((a, b) => a + b, 0) / buckets.length;
    expect(averaged).not.toBe(quantile(merged, 99));
  });

  it('gives cumulative counts at Prometheus bounds', () => {
    const h = histogramOf([1, 5, 5, 10, 11, 250, 2000]);
    expect(cumulativeAt(h, [0.005, 0.01, 0.25, 1, 10])).toEqual([3, 4, 6, 6, 7]);
    expect(quantile(new Map(), 50)).toBeNull();
  });
});
