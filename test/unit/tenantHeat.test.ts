import { TenantHeat } from '../../src/workers/hotStreams';

describe('TenantHeat', () => {
  it('reads a steady rate as that rate, and forgets it as time passes', () => {
    const heat = new TenantHeat(1000);
    let rate = 0;
    // 50 jobs/s for five seconds.
    for (let t = 0; t < 5000; t += 20) rate = heat.record('flood', t);
    expect(rate).toBeGreaterThan(45);
    expect(rate).toBeLessThan(55);
    expect(heat.rate('flood', 5000 + 3000)).toBeLessThan(3);
  });

  it('keeps tenants apart and reads an unknown tenant as 0', () => {
    const heat = new TenantHeat(1000);
    for (let t = 0; t < 1000; t += 10) heat.record('a', t);
    heat.record('b', 1000);
    expect(heat.rate('a', 1000)).toBeGreaterThan(50);
    expect(heat.rate('b', 1000)).toBeLessThanOrEqual(1);
    expect(heat.rate('c', 1000)).toBe(0);
  });

  it('forgets the least recently seen tenant beyond its size', () => {
    const heat = new TenantHeat(1000, 2);
    heat.record('a', 0);
    heat.record('b', 1);
    heat.record('c', 2);
    expect(heat.rate('a', 2)).toBe(0);
    expect(heat.rate('c', 2)).toBeGreaterThan(0);
  });
});
