/**
 * The periods of `GET /stats/*` (`?period=30d`) and the run of buckets that answers one. Pure:
 * the time is passed in.
 */

const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
export type PeriodUnit = keyof typeof UNIT_MS;

/** `<n><unit>`: n from 1, unit m (minutes), h (hours) or d (days). */
export const PERIOD_PATTERN = /^([1-9]\d{0,5})([mhd])$/;

/** Length of a period such as `30d` in ms, or undefined when it is not one. */
export function periodMs(period: string): number | undefined {
  const m = PERIOD_PATTERN.exec(period);
  if (!m) return undefined;
  return Number(m[1]) * UNIT_MS[m[2] as PeriodUnit];
}

export type BucketSize = 'minute' | 'hour' | 'day';
export const BUCKET_SIZE_MS: Readonly<Record<BucketSize, number>> = Object.freeze({
  minute: UNIT_MS.m,
  hour: UNIT_MS.h,
  day: UNIT_MS.d,
});

/** A period as whole buckets: `[from, to)`, the last bucket the one holding `nowMs`. */
export interface BucketWindow {
  size: BucketSize;
  from: number;
  to: number;
  /** Start of every bucket in the window, oldest first. */
  starts: number[];
}

/**
 * The last `ceil(period / size)` buckets of `size` up to and including the one holding `nowMs`
 * (UTC): `period=30d&group_by=day` is today and the 29 days before it, `period=24h&group_by=hour`
 * the current hour and the 23 before.
 */
export function bucketWindow(nowMs: number, periodLengthMs: number, size: BucketSize): BucketWindow {
  const step = BUCKET_SIZE_MS[size];
  const count = Math.max(1, Math.ceil(periodLengthMs / step));
  const to = Math.floor(nowMs / step) * step + step;
  const from = to - count * step;
  const starts: number[] = [];
  for (let t = from; t < to; t += step) starts.push(t);
  return { size, from, to, starts };
}
