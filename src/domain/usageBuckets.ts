/**
 * Time buckets of the usage statistics and the percentile they report. Pure: the stats worker
 * reads the source rows, this decides what a bucket says.
 */

export type Granularity = 'minute' | 'hour';

export const BUCKET_MS: Readonly<Record<Granularity, number>> = Object.freeze({
  minute: 60_000,
  hour: 3_600_000,
});

/** Start (ms, UTC) of the bucket holding `atMs`. */
export function bucketStart(atMs: number, granularity: Granularity): number {
  const size = BUCKET_MS[granularity];
  return Math.floor(atMs / size) * size;
}

/**
 * The nearest-rank percentile (`p` in 0..100) of a list of numbers: the smallest value with at
 * least p% of the values at or below it. Always one of the values (no interpolation), the same
 * as PostgreSQL's `percentile_disc(p / 100)`. Null for an empty list. The input need not be
 * sorted and is not modified.
 */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

export interface BucketFigures {
  queueWaitsMs: readonly number[];
  processingMs: readonly number[];
}

/** p50/p99 of a bucket's queue waits and processing times (rounded to whole ms). */
export function latencyPercentiles(f: BucketFigures): {
  queueWaitP50: number | null;
  queueWaitP99: number | null;
  processingP50: number | null;
  processingP99: number | null;
} {
  const r = (v: number | null) => (v === null ? null : Math.round(v));
  return {
    queueWaitP50: r(percentile(f.queueWaitsMs, 50)),
    queueWaitP99: r(percentile(f.queueWaitsMs, 99)),
    processingP50: r(percentile(f.processingMs, 50)),
    processingP99: r(percentile(f.processingMs, 99)),
  };
}
