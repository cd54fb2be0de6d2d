import type { Redis } from 'ioredis';

import { type Histogram } from '../domain/latencyHistogram';
import { type BucketSize, type BucketWindow, bucketWindow } from '../domain/statsPeriods';
import type { Keyspace } from '../redis/keys';
import { SEP, SUM_FIELD, type TelemetrySeries, type TelemetrySize } from './telemetryRecorder';

/** A label's merged figures over a window. */
export interface LabelFigures {
  histogram: Histogram;
  count: number;
  sumMs: number;
}

const SIZE_OF: Record<BucketSize, TelemetrySize> = { minute: 'm', hour: 'h', day: 'd' };

/** Longest period `/stats/api` and `/stats/performance` answer (day buckets live 92 days). */
export const MAX_TELEMETRY_PERIOD_MS = 90 * 86_400_000;

/**
 * The buckets that answer a period: minutes up to 3 hours, hours up to 7 days, days beyond (each
 * well inside its retention). The window ends with the bucket holding now.
 */
export function telemetryWindow(nowMs: number, periodLengthMs: number): BucketWindow {
  const size: BucketSize =
    periodLengthMs <= 3 * 3_600_000 ? 'minute' : periodLengthMs <= 7 * 86_400_000 ? 'hour' : 'day';
  return bucketWindow(nowMs, periodLengthMs, size);
}

/** Splits `label\tbin` / `label\tsum` fields into per-label histograms and sums. */
export function mergeFields(into: Map<string, LabelFigures>, fields: Record<string, string>): void {
  for (const [field, raw] of Object.entries(fields)) {
    const cut = field.lastIndexOf(SEP);
    const label = field.slice(0, cut);
    const tail = field.slice(cut + 1);
    let f = into.get(label);
    if (!f) into.set(label, (f = { histogram: new Map(), count: 0, sumMs: 0 }));
    const n = Number(raw);
    if (tail === SUM_FIELD) f.sumMs += n / 1000;
    else {
      const bin = Number(tail);
      f.histogram.set(bin, (f.histogram.get(bin) ?? 0) + n);
      f.count += n;
    }
  }
}

/**
 * Every label of a series over a window, merged across its buckets: the installation's
 * (`tenantId` null) or one tenant's. One pipelined HGETALL per bucket.
 */
export async function readSeries(
  redis: Redis,
  keys: Keyspace,
  tenantId: string | null,
  series: TelemetrySeries,
  window: BucketWindow,
): Promise<Map<string, LabelFigures>> {
  const size = SIZE_OF[window.size];
  const pipeline = redis.pipeline();
  for (const start of window.starts) pipeline.hgetall(keys.telemetryBucket(tenantId, series, size, start));
  const results = (await pipeline.exec()) ?? [];
  const out = new Map<string, LabelFigures>();
  for (const [err, fields] of results) {
    if (err) throw err;
    mergeFields(out, fields as Record<string, string>);
  }
  return out;
}

/** An installation-wide running total family, field → number. */
export async function readTotals(redis: Redis, keys: Keyspace, family: string): Promise<Map<string, number>> {
  const fields = await redis.hgetall(keys.telemetryTotals(family));
  return new Map(Object.entries(fields).map(([k, v]) => [k, Number(v)]));
}
