/**
 * A mergeable latency histogram: counts per bin of whole milliseconds. Below `EXACT_MS` every
 * millisecond is its own bin, so percentiles there are exact (the nearest-rank value of the
 * rounded samples); above, bins grow by `GROWTH` (1 %), so a reported percentile is within 0.5 %
 * of the true one (the bin's geometric middle). Two histograms merge by adding bin counts, which is
 * how per-minute histograms become an hour's or a day's: percentiles of a period are read from
 * the merged bins, never averaged from the buckets' percentiles. Pure.
 */

export const EXACT_MS = 1000;
const GROWTH = 1.01;
const LOG_GROWTH = Math.log(GROWTH);

/** Bin of one sample (ms; rounded, negatives count as 0). */
export function binOf(ms: number): number {
  const v = Math.max(0, Math.round(ms));
  if (v < EXACT_MS) return v;
  return EXACT_MS + Math.floor(Math.log(v / EXACT_MS) / LOG_GROWTH + 1e-9);
}

/** Smallest value (ms) of a bin. */
export function binLow(bin: number): number {
  return bin < EXACT_MS ? bin : EXACT_MS * GROWTH ** (bin - EXACT_MS);
}

/** The value a bin reports: itself below `EXACT_MS`, else its geometric middle, rounded to 0.1 ms. */
export function binValue(bin: number): number {
  if (bin < EXACT_MS) return bin;
  return Math.round(binLow(bin) * Math.sqrt(GROWTH) * 10) / 10;
}

/** Bin → count. */
export type Histogram = Map<number, number>;

export function addSample(h: Histogram, ms: number, count = 1): void {
  const bin = binOf(ms);
  h.set(bin, (h.get(bin) ?? 0) + count);
}

/** Adds `from` into `into`. */
export function mergeInto(into: Histogram, from: ReadonlyMap<number, number>): Histogram {
  for (const [bin, n] of from) into.set(bin, (into.get(bin) ?? 0) + n);
  return into;
}

export function countOf(h: ReadonlyMap<number, number>): number {
  let n = 0;
  for (const c of h.values()) n += c;
  return n;
}

/**
 * Nearest-rank percentile (`p` in 0..100): the value of the bin holding the ceil(p% · n)-th
 * smallest sample, as `percentile()` in `usageBuckets.ts` does for raw values. Null when empty.
 */
export function quantile(h: ReadonlyMap<number, number>, p: number): number | null {
  const n = countOf(h);
  if (n === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  let seen = 0;
  for (const bin of [...h.keys()].sort((a, b) => a - b)) {
    seen += h.get(bin)!;
    if (seen >= rank) return binValue(bin);
  }
  return null;
}

/** p50, p95 and p99 of a histogram (null when empty). */
export function latencySummary(h: ReadonlyMap<number, number>): {
  p50: number | null;
  p95: number | null;
  p99: number | null;
} {
  return { p50: quantile(h, 50), p95: quantile(h, 95), p99: quantile(h, 99) };
}

/**
 * Cumulative counts at Prometheus bucket bounds (`le`, seconds): samples whose bin lies wholly at
 * or below the bound. Bounds should be whole milliseconds below `EXACT_MS` to be exact.
 */
export function cumulativeAt(h: ReadonlyMap<number, number>, boundsSeconds: readonly number[]): number[] {
  const bins = [...h.entries()].sort((a, b) => a[0] - b[0]);
  return boundsSeconds.map((le) => {
    let n = 0;
    for (const [bin, c] of bins) {
      const upper = bin < EXACT_MS ? bin : binLow(bin + 1);
      if (upper <= le * 1000 + 1e-9) n += c;
      else break;
    }
    return n;
  });
}
