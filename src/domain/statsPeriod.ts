import { z } from 'zod';

/** Longest statistics period, ms (90 days). */
const MAX_PERIOD_MS = 90 * 24 * 3600_000;
const UNIT_MS = { m: 60_000, h: 3600_000, d: 24 * 3600_000 } as const;

/** `?period=7d` (`<n>m`, `<n>h` or `<n>d`, at most 90 days) as milliseconds. */
export const StatsPeriod = z
  .string()
  .regex(/^[1-9]\d{0,4}[mhd]$/, 'must be a number of minutes, hours or days, e.g. 30m, 24h, 7d')
  .transform((p) => Number(p.slice(0, -1)) * UNIT_MS[p.slice(-1) as keyof typeof UNIT_MS])
  .refine((ms) => ms <= MAX_PERIOD_MS, 'at most 90d');
