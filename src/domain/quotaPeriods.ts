/** Daily quota periods are UTC days: `2024-05-01`. */
export function utcDay(nowMs: number): string {
  return new Date(nowMs).toISOString().slice(0, 10);
}

/** Seconds until the next UTC midnight, when daily quotas reset (at least 1). */
export function secondsUntilUtcMidnight(nowMs: number): number {
  const d = new Date(nowMs);
  const midnight = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
  return Math.max(1, Math.ceil((midnight - nowMs) / 1000));
}

/** Daily counters outlive their day a little, so that yesterday's usage can still be read. */
export const DAILY_COUNTER_TTL_SECONDS = 3 * 24 * 3600;
