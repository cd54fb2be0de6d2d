import { bucketWindow, periodMs } from '../../src/domain/statsPeriods';

describe('periodMs', () => {
  it('reads minutes, hours and days', () => {
    expect(periodMs('15m')).toBe(15 * 60_000);
    expect(periodMs('24h')).toBe(24 * 3_600_000);
    expect(periodMs('30d')).toBe(30 * 86_400_000);
  });

  it('refuses anything else', () => {
    for (const bad of ['', '0d', '30', 'd', '1w', '-1d', '1.5h', '01d', ' 1d', '1d ', '1234567d']) {
      expect(periodMs(bad)).toBeUndefined();
    }
  });
});

describe('bucketWindow', () => {
  const now = Date.UTC(2026, 11, 7, 13, 45, 10);

  it('ends with the bucket holding now and covers whole buckets', () => {
    const w = bucketWindow(now, 3 * 86_400_000, 'day');
    expect(w.to).toBe(Date.UTC(2026, 11, 8));
    expect(w.from).toBe(Date.UTC(2026, 11, 5));
    expect(w.starts).toEqual([Date.UTC(2026, 11, 5), Date.UTC(2026, 11, 6), Date.UTC(2026, 11, 7)]);
  });

  it('rounds a period up to whole buckets', () => {
    const w = bucketWindow(now, 90 * 60_000, 'hour');
    expect(w.starts).toEqual([Date.UTC(2026, 11, 7, 12), Date.UTC(2026, 11, 7, 13)]);
    expect(bucketWindow(now, 60_000, 'day').starts).toEqual([Date.UTC(2026, 11, 7)]);
  });

  it('gives 24 hours for 24h', () => {
    const w = bucketWindow(now, 24 * 3_600_000, 'hour');
    expect(w.starts).toHaveLength(24);
    expect(w.starts[0]).toBe(Date.UTC(2026, 11, 6, 14));
  });
});
