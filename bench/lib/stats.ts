/** Small measurement helpers for the benchmarks: timing, percentiles, interleaved rounds, a table. */

export interface LatencyStats {
  n: number;
  mean_ms: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  min_ms: number;
  max_ms: number;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function latencyStats(samplesMs: readonly number[]): LatencyStats {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    n: sorted.length,
    mean_ms: round3(sum / sorted.length),
    p50_ms: round3(percentile(sorted, 50)),
    p95_ms: round3(percentile(sorted, 95)),
    p99_ms: round3(percentile(sorted, 99)),
    min_ms: round3(sorted[0] ?? NaN),
    max_ms: round3(sorted[sorted.length - 1] ?? NaN),
  };
}

/** Milliseconds since a `process.hrtime.bigint()` reading. */
export function msSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** Runs `fn` once and returns its duration in ms. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return msSince(start);
}

/** Deterministic PRNG (mulberry32) so that every run draws the same tenants and streams. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Variant<K> {
  name: string;
  run(key: K): Promise<unknown>;
}

/**
 * Sequential (concurrency 1) interleaved measurement: in each round every variant runs the same
 * keys, the order of the variants rotating from round to round, so that drift of a shared machine
 * spreads evenly over all of them. Returns per-call latencies (ms) by variant name.
 */
export async function interleavedRounds<K>(
  variants: readonly Variant<K>[],
  rounds: number,
  keysForRound: (round: number) => readonly K[],
): Promise<Map<string, number[]>> {
  const samples = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  for (let r = 0; r < rounds; r++) {
    const keys = keysForRound(r);
    for (let i = 0; i < variants.length; i++) {
      const variant = variants[(r + i) % variants.length]!;
      const out = samples.get(variant.name)!;
      for (const key of keys) out.push(await timed(() => variant.run(key)));
    }
  }
  return samples;
}

/** Runs `keys` through `fn` with `concurrency` workers; returns wall time and per-call latencies. */
export async function concurrentRun<K>(
  keys: readonly K[],
  concurrency: number,
  fn: (key: K) => Promise<unknown>,
): Promise<{ wallMs: number; samplesMs: number[] }> {
  const samplesMs: number[] = [];
  let next = 0;
  const start = process.hrtime.bigint();
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++]!;
      samplesMs.push(await timed(() => fn(key)));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { wallMs: msSince(start), samplesMs };
}

/** Left-aligned first column, right-aligned others. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map((r) =>
      r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '),
    )
    .join('\n');
}
