import {
  type GovernorDecision,
  IngressGovernor,
  LOOP_DELAY_WINDOWS,
} from '../../src/ingress/ingressGovernor';
import { mulberry32 } from '../../src/queues/fairScheduler';

const limits = (maxInFlight = 100, weight = 1) => ({ maxInFlight, weight });

function admitted(d: GovernorDecision): (() => void) | undefined {
  return d.admitted ? d.release : undefined;
}

describe('IngressGovernor', () => {
  it('refuses a tenant at its in-flight limit, and admits it again once a request ends', () => {
    const g = new IngressGovernor();
    const releases = [1, 2, 3].map(() => admitted(g.admit('a', limits(3))));
    expect(releases.every(Boolean)).toBe(true);
    expect(g.admit('a', limits(3))).toEqual({
      admitted: false,
      reason: 'tenant_in_flight',
      inFlight: 3,
      limit: 3,
    });
    // Another tenant is not affected by a's limit.
    expect(g.admit('b', limits(3)).admitted).toBe(true);
    releases[0]!();
    expect(g.admit('a', limits(3)).admitted).toBe(true);
  });

  it('makes release idempotent', () => {
    const g = new IngressGovernor();
    const release = admitted(g.admit('a', limits(1)))!;
    release();
    release();
    expect(g.snapshot().inFlight).toBe(0);
    expect(admitted(g.admit('a', limits(1)))).toBeDefined();
    expect(g.admit('a', limits(1)).admitted).toBe(false);
  });

  it('sheds nobody but over-limit tenants while the process is not overloaded', () => {
    const g = new IngressGovernor({ maxInFlight: 1000, maxLoopDelayMs: 100 });
    g.setLoopDelay(20);
    for (let i = 0; i < 500; i++) expect(g.admit('flood', limits(1000)).admitted).toBe(true);
    expect(g.overloaded).toBe(false);
  });

  it('under event-loop overload sheds the tenant above its fair share, never the quiet one', () => {
    const g = new IngressGovernor({ maxInFlight: 1000, maxLoopDelayMs: 100 });
    for (let i = 0; i < 90; i++) g.admit('flood', limits(1000));
    g.admit('quiet', limits(1000));
    g.setLoopDelay(250);
    g.setLoopDelay(250);
    expect(g.overloaded).toBe(true);
    // 91 in progress between two tenants of equal weight: a share is 45.5.
    const flood = g.admit('flood', limits(1000));
    expect(flood).toMatchObject({ admitted: false, reason: 'overloaded', inFlight: 90, limit: 45 });
    expect(g.admit('quiet', limits(1000)).admitted).toBe(true);
    // A tenant with nothing in progress is always within its share.
    expect(g.admit('newcomer', limits(1000)).admitted).toBe(true);
  });

  it('takes one long event-loop window for a stall, not an overload; sustained delay is one', () => {
    const g = new IngressGovernor({ maxInFlight: 1000, maxLoopDelayMs: 100 });
    for (let i = 0; i < 50; i++) g.admit('only', limits(1000));
    // Start-up, a major GC or a wait for a core: one window over the bound, then back under it.
    g.setLoopDelay(20);
    g.setLoopDelay(400);
    expect(g.overloaded).toBe(false);
    expect(g.admit('only', limits(1000)).admitted).toBe(true);
    g.setLoopDelay(30);
    g.setLoopDelay(400);
    expect(g.overloaded).toBe(false);
    // Late window after window: the process's own work outruns it, and the tenant is shed.
    for (let i = 1; i < LOOP_DELAY_WINDOWS; i++) g.setLoopDelay(150);
    expect(g.overloaded).toBe(true);
    expect(g.snapshot().sustainedLoopDelayMs).toBe(150);
    expect(g.admit('only', limits(1000))).toMatchObject({ admitted: false, reason: 'overloaded' });
    // One window under the bound ends it.
    g.setLoopDelay(50);
    expect(g.overloaded).toBe(false);
  });

  it('when the in-flight bound is the trigger, shares are of that bound, in proportion to weight', () => {
    const g = new IngressGovernor({ maxInFlight: 12, maxLoopDelayMs: 100 });
    for (let i = 0; i < 8; i++) g.admit('heavy', limits(100, 2));
    for (let i = 0; i < 4; i++) g.admit('light', limits(100, 1));
    expect(g.overloaded).toBe(true);
    // Shares of 12: heavy 8, light 4 (weights 2:1). Both are at their share: both are shed.
    expect(g.admit('heavy', limits(100, 2))).toMatchObject({ admitted: false, limit: 8 });
    expect(g.admit('light', limits(100, 1))).toMatchObject({ admitted: false, limit: 4 });
    // A third tenant of weight 1 has a share of 12/4 = 3 and nothing in progress: admitted.
    expect(g.admit('third', limits(100, 1)).admitted).toBe(true);
  });

  it('keeps its guarantees under random operations against a model', () => {
    const rng = mulberry32(7);
    const g = new IngressGovernor({ maxInFlight: 50, maxLoopDelayMs: 100 });
    const tenants = ['a', 'b', 'c', 'd', 'e'];
    const tenantLimits = new Map(tenants.map((t, i) => [t, limits(5 + i * 10, 1 + (i % 3))]));
    const open: { tenant: string; release: () => void }[] = [];
    const held = new Map<string, number>();
    const violations: string[] = [];
    let admittedWhileOverloaded = 0;
    for (let step = 0; step < 30_000; step++) {
      const r = rng();
      if (r < 0.05) {
        g.setLoopDelay(rng() < 0.5 ? 50 : 300);
        continue;
      }
      if (r < 0.45 && open.length > 0) {
        const [o] = open.splice(Math.floor(rng() * open.length), 1);
        o!.release();
        held.set(o!.tenant, held.get(o!.tenant)! - 1);
        continue;
      }
      const tenant = tenants[Math.floor(rng() * tenants.length)]!;
      const l = tenantLimits.get(tenant)!;
      const before = held.get(tenant) ?? 0;
      const total = [...held.values()].reduce((a, b) => a + b, 0);
      const wasOverloaded = g.overloaded;
      const d = g.admit(tenant, l);
      if (d.admitted) {
        open.push({ tenant, release: d.release });
        held.set(tenant, before + 1);
        if (before + 1 > l.maxInFlight) violations.push(`${step}: ${tenant} over its limit`);
        if (wasOverloaded) {
          admittedWhileOverloaded++;
          const active = [...held.entries()].filter(([t, n]) => n > 0 && t !== tenant);
          const weights = active.reduce((a, [t]) => a + tenantLimits.get(t)!.weight, 0) + l.weight;
          const share = Math.max(1, ((total >= 50 ? 50 : total) * l.weight) / weights);
          if (before >= share) violations.push(`${step}: ${tenant} admitted at ${before} ≥ share ${share}`);
        }
      } else if (!wasOverloaded && (d.reason !== 'tenant_in_flight' || before !== l.maxInFlight)) {
        violations.push(`${step}: ${tenant} refused without overload (${d.reason}, ${before})`);
      }
      if (g.snapshot().inFlight !== total + (d.admitted ? 1 : 0)) violations.push(`${step}: count drifted`);
    }
    expect(violations).toEqual([]);
    // The run exercised the overload rule, not only the per-tenant limit.
    expect(admittedWhileOverloaded).toBeGreaterThan(100);
  });
});
