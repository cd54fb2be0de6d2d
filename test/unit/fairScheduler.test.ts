import { FairScheduler, mulberry32, type TenantSchedule } from '../../src/queues/fairScheduler';
import { TimerHeap } from '../../src/queues/timerHeap';
import { TokenBucket } from '../../src/queues/tokenBucket';
import { jainIndex, type SimResult, simulate } from '../support/schedulerSim';

const open = (weight = 1, more: Partial<TenantSchedule> = {}): TenantSchedule => ({
  weight,
  maxConcurrency: Infinity,
  paused: false,
  ...more,
});

function shareOf(counts: Map<string, number>, id: string): number {
  let total = 0;
  for (const n of counts.values()) total += n;
  return (counts.get(id) ?? 0) / total;
}

function countPicks(picks: SimResult['picks'], from = 0, to = picks.length): Map<string, number> {
  const counts = new Map<string, number>();
  for (const p of picks.slice(from, to)) counts.set(p.tenantId, (counts.get(p.tenantId) ?? 0) + 1);
  return counts;
}

/** Picks `n` times, finishing each job at once; returns the tenants picked. */
function pickMany(s: FairScheduler, n: number, nowMs = 0): (string | undefined)[] {
  const out: (string | undefined)[] = [];
  for (let i = 0; i < n; i++) {
    const id = s.pick(nowMs);
    out.push(id);
    if (id !== undefined) s.finished(id);
  }
  return out;
}

describe('FairScheduler: weighted shares', () => {
  it('gives backlogged tenants shares proportional to weights 3:2:1 over 60,000 completions', () => {
    const r = simulate({
      seed: 1,
      slots: 8,
      completions: 60_000,
      tenants: [
        { id: 'a', schedule: open(3), backlog: Infinity },
        { id: 'b', schedule: open(2), backlog: Infinity },
        { id: 'c', schedule: open(1), backlog: Infinity },
      ],
    });
    expect(shareOf(r.completed, 'a')).toBeCloseTo(3 / 6, 2);
    expect(Math.abs(shareOf(r.completed, 'a') - 3 / 6)).toBeLessThan(0.01);
    expect(Math.abs(shareOf(r.completed, 'b') - 2 / 6)).toBeLessThan(0.01);
    expect(Math.abs(shareOf(r.completed, 'c') - 1 / 6)).toBeLessThan(0.01);
  });

  it('keeps weighted shares whatever each tenant queues (100 jobs against 50,000)', () => {
    const r = simulate({
      seed: 2,
      slots: 4,
      completions: 600,
      tenants: [
        { id: 'small', schedule: open(1), backlog: 100 },
        { id: 'huge', schedule: open(1), backlog: 50_000 },
      ],
    });
    // While both have work (the first 200 picks), they alternate.
    const first = countPicks(r.picks, 0, 200);
    expect(first.get('small')).toBeGreaterThanOrEqual(99);
    expect(first.get('huge')).toBeGreaterThanOrEqual(99);
  });

  it('keeps Jain’s fairness index ≥ 0.99 in every window of 500 picks for equal weights', () => {
    const ids = ['t1', 't2', 't3', 't4', 't5'];
    const r = simulate({
      seed: 3,
      slots: 6,
      completions: 30_000,
      tenants: ids.map((id) => ({ id, schedule: open(1), backlog: Infinity })),
    });
    let worst = 1;
    for (let from = 0; from + 500 <= r.picks.length; from += 500) {
      const counts = countPicks(r.picks, from, from + 500);
      worst = Math.min(worst, jainIndex(ids.map((id) => counts.get(id) ?? 0)));
    }
    expect(worst).toBeGreaterThanOrEqual(0.99);
  });

  it('keeps the weighted Jain index ≥ 0.99 in every window of 600 picks for weights 3:2:1', () => {
    const weights = { a: 3, b: 2, c: 1 };
    const r = simulate({
      seed: 4,
      slots: 8,
      completions: 30_000,
      tenants: Object.entries(weights).map(([id, w]) => ({ id, schedule: open(w), backlog: Infinity })),
    });
    let worst = 1;
    for (let from = 0; from + 600 <= r.picks.length; from += 600) {
      const counts = countPicks(r.picks, from, from + 600);
      worst = Math.min(worst, jainIndex(Object.entries(weights).map(([id, w]) => (counts.get(id) ?? 0) / w)));
    }
    expect(worst).toBeGreaterThanOrEqual(0.99);
  });

  it('applies a weight change to a backlogged tenant from its next round', () => {
    const s = new FairScheduler({ rng: mulberry32(5) });
    s.setTenant('a', open(1));
    s.setTenant('b', open(1));
    s.markBacklogged('a');
    s.markBacklogged('b');
    pickMany(s, 100);
    s.setTenant('a', open(3));
    const picks = pickMany(s, 4000);
    expect(picks.filter((id) => id === 'a').length).toBeGreaterThanOrEqual(2995);
    expect(picks.filter((id) => id === 'a').length).toBeLessThanOrEqual(3005);
  });

  it('handles fractional weights (0.5 : 0.25) by scaling quanta to the smallest active weight', () => {
    const s = new FairScheduler({ rng: mulberry32(6) });
    s.setTenant('a', open(0.5));
    s.setTenant('b', open(0.25));
    s.markBacklogged('a');
    s.markBacklogged('b');
    const picks = pickMany(s, 3000);
    expect(picks.filter((id) => id === 'a').length).toBeGreaterThanOrEqual(1998);
    expect(picks.filter((id) => id === 'a').length).toBeLessThanOrEqual(2002);
    expect(s.steps).toBeLessThanOrEqual(2 * 3000);
  });
});

describe('FairScheduler: work conservation', () => {
  it('gives a lone tenant every pick and every slot, with other tenants registered but idle', () => {
    const r = simulate({
      seed: 7,
      slots: 8,
      completions: 5_000,
      idleTenants: 100,
      checkWorkConserving: true,
      tenants: [{ id: 'solo', schedule: open(0.1), backlog: Infinity }],
    });
    expect(r.picks.every((p) => p.tenantId === 'solo')).toBe(true);
    expect(r.idleSlotWithEligibleWork).toBeUndefined();
    const s = new FairScheduler({ rng: mulberry32(7), capacity: 8 });
    s.setTenant('solo', open(1));
    s.markBacklogged('solo');
    expect(Array.from({ length: 9 }, () => s.pick(0))).toEqual([...Array<string>(8).fill('solo'), undefined]);
  });

  it('hands the share of a tenant that runs out of work to the others, leaving no slot free', () => {
    const r = simulate({
      seed: 8,
      slots: 6,
      completions: 12_000,
      checkWorkConserving: true,
      tenants: [
        { id: 'a', schedule: open(1), backlog: Infinity },
        { id: 'b', schedule: open(1), backlog: Infinity },
        { id: 'c', schedule: open(1), backlog: 3_000 },
      ],
    });
    const lastC = r.picks.map((p) => p.tenantId).lastIndexOf('c');
    expect(lastC).toBeGreaterThan(8_900);
    expect(lastC).toBeLessThan(9_100);
    const before = countPicks(r.picks, 0, lastC);
    expect(Math.abs(shareOf(before, 'c') - 1 / 3)).toBeLessThan(0.01);
    const after = countPicks(r.picks, lastC + 1);
    expect(after.has('c')).toBe(false);
    expect(Math.abs(shareOf(after, 'a') - 1 / 2)).toBeLessThan(0.01);
    expect(r.idleSlotWithEligibleWork).toBeUndefined();
  });
});

describe('FairScheduler: caps', () => {
  it('never exceeds max_concurrency, and a capped tenant’s unused share goes to the others', () => {
    const caps: Record<string, number> = { one: 1, two: 2, five: 5, free: Infinity };
    const r = simulate({
      seed: 9,
      slots: 10,
      completions: 40_000,
      checkWorkConserving: true,
      jobMs: (rng) => 1 + Math.floor(rng() * 50),
      tenants: Object.entries(caps).map(([id, cap]) => ({
        id,
        schedule: open(id === 'free' ? 1 : 3, { maxConcurrency: cap }),
        backlog: Infinity,
      })),
    });
    const { one, two, five, free } = Object.fromEntries(r.peakInFlight);
    expect({ one, two, five }).toEqual({ one: 1, two: 2, five: 5 });
    expect(free).toBeLessThanOrEqual(10);
    expect(r.idleSlotWithEligibleWork).toBeUndefined();
    // The capped tenants hold 8 of 10 slots at most, so `free` gets ≥ 20 % despite the lowest weight.
    expect(shareOf(r.completed, 'free')).toBeGreaterThan(0.2);
  });

  it('counts jobs running in other processes against max_concurrency', () => {
    const s = new FairScheduler({ rng: mulberry32(10) });
    s.setTenant('a', open(1, { maxConcurrency: 3 }));
    s.markBacklogged('a');
    s.setRemoteInFlight('a', 2);
    expect([s.pick(0), s.pick(0)]).toEqual(['a', undefined]);
    s.setRemoteInFlight('a', 0);
    expect([s.pick(0), s.pick(0), s.pick(0)]).toEqual(['a', 'a', undefined]);
    s.finished('a');
    expect(s.pick(0)).toBe('a');
    expect(s.snapshot().tenants[0]).toMatchObject({ tenantId: 'a', state: 'capped', inFlight: 3 });
  });

  it('never lets a rate-limited tenant start more than max jobs in any window', () => {
    const limit = { max: 5, durationMs: 100 };
    const r = simulate({
      seed: 11,
      slots: 4,
      untilMs: 10_000,
      tenants: [
        { id: 'limited', schedule: open(5, { rateLimit: limit }), backlog: Infinity },
        { id: 'other', schedule: open(1), backlog: Infinity },
      ],
    });
    const starts = r.picks.filter((p) => p.tenantId === 'limited').map((p) => p.at);
    let tightest = Infinity; // shortest span holding max + 1 consecutive starts
    for (let i = 0; i + limit.max < starts.length; i++)
      tightest = Math.min(tightest, starts[i + limit.max]! - starts[i]!);
    expect(tightest).toBeGreaterThanOrEqual(limit.durationMs);
    // It still gets nearly all its allowance (5 per 100 ms over 10 s); a freed token may wait for a slot.
    expect(starts.length).toBeGreaterThanOrEqual(475);
  });

  it('sleeps until a lone rate-limited tenant may start again (nextEligibleAt)', () => {
    const r = simulate({
      seed: 12,
      slots: 4,
      untilMs: 1_000,
      checkWorkConserving: true,
      tenants: [
        { id: 'limited', schedule: open(1, { rateLimit: { max: 3, durationMs: 50 } }), backlog: Infinity },
      ],
    });
    const starts = r.picks.map((p) => p.at);
    for (let i = 0; i + 3 < starts.length; i++)
      expect(starts[i + 3]! - starts[i]!).toBeGreaterThanOrEqual(50);
    expect(starts.length).toBeGreaterThanOrEqual(60);
    const s = new FairScheduler({ rng: mulberry32(12) });
    s.setTenant('a', open(1, { rateLimit: { max: 2, durationMs: 100 } }));
    s.markBacklogged('a');
    expect([s.pick(10), s.pick(20), s.pick(30)]).toEqual(['a', 'a', undefined]);
    expect(s.nextEligibleAt(30)).toBe(110);
    expect(s.pick(109)).toBeUndefined();
    expect(s.pick(110)).toBe('a');
  });

  it('never picks a paused tenant, and serves it again once resumed', () => {
    const s = new FairScheduler({ rng: mulberry32(13) });
    s.setTenant('p', open(5));
    s.setTenant('q', open(1));
    s.markBacklogged('p');
    s.markBacklogged('q');
    pickMany(s, 10);
    s.setTenant('p', open(5, { paused: true }));
    expect(pickMany(s, 1_000).every((id) => id === 'q')).toBe(true);
    expect(s.snapshot().tenants.find((t) => t.tenantId === 'p')?.state).toBe('paused');
    s.setTenant('p', open(5));
    const after = pickMany(s, 600);
    expect(after.slice(0, 2)).toContain('p');
    expect(after.filter((id) => id === 'p').length).toBeGreaterThanOrEqual(495);
    s.setTenant('q', open(1, { paused: true }));
    s.markIdle('p');
    expect(pickMany(s, 3)).toEqual([undefined, undefined, undefined]);
  });

  it('keeps a tenant deferred by BullMQ out until the given time', () => {
    const s = new FairScheduler({ rng: mulberry32(14) });
    s.setTenant('a', open(1));
    s.markBacklogged('a');
    s.deferUntil('a', 500);
    expect(s.pick(0)).toBeUndefined();
    expect(s.nextEligibleAt(0)).toBe(500);
    expect(s.pick(500)).toBe('a');
  });
});

describe('FairScheduler: latency and starvation', () => {
  it('picks a quiet tenant’s first job within (active tenants) picks while another has 50,000 queued', () => {
    const arrivals = Array.from({ length: 40 }, (_, i) => 200.5 + i * 97);
    const r = simulate({
      seed: 15,
      slots: 8,
      untilMs: 4_200,
      tenants: [
        { id: 'flood', schedule: open(10), backlog: 50_000 },
        { id: 'busy1', schedule: open(2), backlog: Infinity },
        { id: 'busy2', schedule: open(1), backlog: Infinity },
        { id: 'quiet', schedule: open(1), arrivals },
      ],
    });
    const active = 4;
    let worst = 0;
    for (const at of arrivals) {
      const after = r.picks.filter((p) => p.at > at);
      const wait = after.findIndex((p) => p.tenantId === 'quiet');
      expect(wait).toBeGreaterThanOrEqual(0);
      worst = Math.max(worst, wait + 1);
    }
    expect(worst).toBeLessThanOrEqual(active);
    // The flood kept its weighted share (10 of 13) and still had most of its backlog at the end.
    const flood = r.picks.filter((p) => p.tenantId === 'flood').length;
    expect(flood / r.picks.length).toBeGreaterThan(0.7);
    expect(r.scheduler.snapshot().tenants.find((t) => t.tenantId === 'flood')?.backlog).toBeGreaterThan(
      45_000,
    );
  });

  it('does not let a tenant that empties its queue after every job beat its weighted share', () => {
    const s = new FairScheduler({ rng: mulberry32(16) });
    for (const id of ['a', 'b', 'c', 'd']) {
      s.setTenant(id, open(1));
      s.markBacklogged(id);
    }
    s.setTenant('gamer', open(1));
    s.markBacklogged('gamer', 1);
    let gamer = 0;
    for (let i = 0; i < 10_000; i++) {
      const id = s.pick(i)!;
      s.finished(id);
      if (id === 'gamer') {
        gamer++;
        s.markBacklogged('gamer', 1); // one job again, at once, every time
      }
    }
    expect(gamer / 10_000).toBeLessThanOrEqual(0.2 + 0.001);
    expect(gamer / 10_000).toBeGreaterThanOrEqual(0.19);
  });

  it('does not let a capped tenant that goes idle and refills jump ahead through the fresh list', () => {
    const s = new FairScheduler({ rng: mulberry32(30) });
    for (const id of ['a', 'b', 'c']) {
      s.setTenant(id, open(1));
      s.markBacklogged(id);
    }
    s.setTenant('gamer', open(1, { maxConcurrency: 1 }));
    s.markBacklogged('gamer', 2);
    let gamer = 0;
    for (let i = 0; i < 10_000; i++) {
      const id = s.pick(i)!;
      if (id === 'gamer') {
        gamer++;
        s.markIdle('gamer'); // while it is at its cap: e.g. another process took its other job
        s.finished(id);
        s.markBacklogged('gamer', 2);
      } else s.finished(id);
    }
    expect(gamer / 10_000).toBeLessThanOrEqual(0.25 + 0.001);
  });

  it('never starves the light tenant with weights 1 vs 1000', () => {
    const s = new FairScheduler({ rng: mulberry32(17) });
    s.setTenant('light', open(1));
    s.setTenant('heavy', open(1000));
    s.markBacklogged('light');
    s.markBacklogged('heavy');
    const picks = pickMany(s, 200_000);
    const lightAt = picks.flatMap((id, i) => (id === 'light' ? [i] : []));
    expect(lightAt.length).toBeGreaterThanOrEqual(199);
    expect(lightAt.length).toBeLessThanOrEqual(201);
    let gap = lightAt[0]!;
    for (let i = 1; i < lightAt.length; i++) gap = Math.max(gap, lightAt[i]! - lightAt[i - 1]!);
    expect(gap).toBeLessThanOrEqual(1001);
  });
});

describe('FairScheduler: determinism and cost', () => {
  const tied = (seed: number) =>
    simulate({
      seed,
      slots: 20,
      untilMs: 2_000,
      jobMs: () => 5,
      tenants: Array.from({ length: 20 }, (_, i) => ({
        id: `t${i}`,
        schedule: open(1 + (i % 3), { rateLimit: { max: 1, durationMs: 50 } }),
        backlog: Infinity,
      })),
    }).picks.map((p) => p.tenantId);

  it('repeats the same pick sequence for the same seed', () => {
    expect(tied(18)).toEqual(tied(18));
    const capped = () =>
      simulate({
        seed: 19,
        slots: 5,
        completions: 5_000,
        tenants: [
          { id: 'x', schedule: open(2), backlog: Infinity },
          { id: 'y', schedule: open(1, { maxConcurrency: 2 }), backlog: Infinity },
        ],
      });
    expect(capped().picks).toEqual(capped().picks);
  });

  it('breaks ties between tenants waking in the same ms by the seeded rng, not by name', () => {
    const one = tied(18);
    const other = tied(20);
    expect(one).not.toEqual(other);
    expect([...one].sort()).toEqual([...other].sort());
  });

  /** 20,000 picks of 3 backlogged tenants with random job ends, after `prepare`; steps of each pick. */
  const costRun = (prepare: (s: FairScheduler) => void) => {
    const s = new FairScheduler({ rng: mulberry32(21) });
    prepare(s);
    for (const [id, w] of [
      ['a', 3],
      ['b', 2],
      ['c', 1],
    ] as const) {
      s.setTenant(id, open(w, { maxConcurrency: 4 }));
      s.markBacklogged(id);
    }
    const perPick: number[] = [];
    const picked: (string | undefined)[] = [];
    const running: string[] = [];
    const rng = mulberry32(22);
    for (let i = 0; i < 20_000; i++) {
      if (running.length >= 6 || (running.length > 0 && rng() < 0.5)) {
        s.finished(running.splice(Math.floor(rng() * running.length), 1)[0]!);
      }
      const before = s.steps;
      const id = s.pick(i);
      perPick.push(s.steps - before);
      picked.push(id);
      if (id !== undefined) running.push(id);
    }
    return { perPick, picked, scheduler: s };
  };

  it('does not spend a single extra step per pick on 10,000 idle registered tenants', () => {
    const without = costRun(() => {});
    const with10k = costRun((s) => {
      for (let i = 0; i < 10_000; i++) s.setTenant(`idle-${i}`, open(0.01 + (i % 5)));
    });
    expect(with10k.picked).toEqual(without.picked);
    expect(with10k.perPick).toEqual(without.perPick);
    expect(Math.max(...with10k.perPick)).toBeLessThanOrEqual(3);
  });

  it('spends one step, once, on each tenant that went idle while still in the round', () => {
    const without = costRun(() => {});
    const churned = costRun((s) => {
      for (let i = 0; i < 10_000; i++) {
        s.setTenant(`idle-${i}`, open(1));
        s.markBacklogged(`idle-${i}`, 1);
        s.markIdle(`idle-${i}`); // its entry is removed lazily, when it comes round
      }
    });
    const extra = churned.perPick.reduce((a, b) => a + b, 0) - without.perPick.reduce((a, b) => a + b, 0);
    expect(extra).toBeGreaterThan(0);
    expect(extra).toBeLessThanOrEqual(2 * 10_000); // fresh list → round → removed
    expect(churned.picked).toEqual(without.picked);
    expect(
      churned.scheduler
        .snapshot()
        .tenants.map((t) => t.tenantId)
        .sort(),
    ).toEqual(['a', 'b', 'c']);
  });

  it('costs at most two steps per pick on average with many active tenants', () => {
    const r = simulate({
      seed: 23,
      slots: 64,
      completions: 50_000,
      tenants: Array.from({ length: 500 }, (_, i) => ({
        id: `t${i}`,
        schedule: open(1 + (i % 10), { maxConcurrency: 1 + (i % 4) }),
        backlog: i % 3 === 0 ? Infinity : 20,
      })),
    });
    expect(r.steps / r.picks.length).toBeLessThanOrEqual(2);
  });
});

describe('FairScheduler: affinity (quantum 8, a slot offered to the tenant whose job ended)', () => {
  const affine = { slots: 50, quantum: 8, affinity: true };

  it('keeps the 3:2:1 shares within 1 % over 60,000 completions', () => {
    const r = simulate({
      ...affine,
      seed: 11,
      completions: 60_000,
      tenants: [
        { id: 'a', schedule: open(3), backlog: Infinity },
        { id: 'b', schedule: open(2), backlog: Infinity },
        { id: 'c', schedule: open(1), backlog: Infinity },
      ],
    });
    expect(Math.abs(shareOf(r.completed, 'a') - 3 / 6)).toBeLessThan(0.01);
    expect(Math.abs(shareOf(r.completed, 'b') - 2 / 6)).toBeLessThan(0.01);
    expect(Math.abs(shareOf(r.completed, 'c') - 1 / 6)).toBeLessThan(0.01);
  });

  it('keeps Jain’s index ≥ 0.99 in every window of 1,000 picks for 10 equal tenants, most slots reused', () => {
    const tenants = Array.from({ length: 10 }, (_, i) => ({
      id: `t${i}`,
      schedule: open(1),
      backlog: Infinity,
    }));
    const r = simulate({ ...affine, seed: 12, completions: 50_000, tenants });
    for (let from = 0; from + 1000 <= r.picks.length; from += 1000) {
      const counts = countPicks(r.picks, from, from + 1000);
      expect(jainIndex(tenants.map((t) => counts.get(t.id) ?? 0))).toBeGreaterThanOrEqual(0.99);
    }
    // The point of affinity: most ends fetch their tenant's next job in the same call.
    expect(r.affinityHits / 50_000).toBeGreaterThan(0.6);
  });

  it('still picks a quiet tenant’s job within (active tenants) picks of its arrival during a flood', () => {
    const r = simulate({
      ...affine,
      seed: 13,
      untilMs: 2_000,
      tenants: [
        { id: 'noisy', schedule: open(1), backlog: 50_000 },
        { id: 'quiet', schedule: open(1), arrivals: [100, 400, 700, 1000, 1300, 1600] },
      ],
    });
    const quiet = r.picks.flatMap((p, i) => (p.tenantId === 'quiet' ? [i] : []));
    expect(quiet).toHaveLength(6);
    for (const [n, at] of [100, 400, 700, 1000, 1300, 1600].entries()) {
      const firstAfter = r.picks.findIndex((p) => p.at >= at);
      expect(quiet[n]! - firstAfter).toBeLessThanOrEqual(2);
    }
  });

  it('offers the slot to the preferred tenant only while it has credit this round', () => {
    const s = new FairScheduler({ rng: mulberry32(1), quantum: 2 });
    for (const id of ['a', 'b']) s.setTenant(id, open());
    s.markBacklogged('a');
    s.markBacklogged('b');
    // Fresh picks first (a, b; no affinity while the fresh list has anyone), then the round's
    // head a, with b behind it holding 2 credits.
    expect(s.pick(0, 'b')).toBe('a');
    expect(s.pick(0, 'a')).toBe('b');
    expect(s.pick(0, 'b')).toBe('a');
    expect(s.pick(0, 'b')).toBe('b'); // out of turn, from b's credit
    expect(s.pick(0, 'b')).toBe('b');
    expect(s.pick(0, 'b')).toBe('a'); // b's credit for this round is spent: the head goes on
    expect(pickMany(s, 3)).toEqual(['a', 'a', 'b']); // and each still gets 2 per round
  });
});

describe('FairScheduler: hold', () => {
  it('never picks a held tenant, gives its slots to others, and serves it again once released', () => {
    const s = new FairScheduler({ rng: mulberry32(1), capacity: 3 });
    for (const id of ['a', 'b']) s.setTenant(id, open());
    s.markBacklogged('a');
    s.markBacklogged('b');
    s.hold('a', true);
    expect([s.pick(0), s.pick(0), s.pick(0)]).toEqual(['b', 'b', 'b']);
    expect(s.snapshot().tenants.find((t) => t.tenantId === 'a')?.state).toBe('capped');
    s.finished('b');
    s.hold('a', false);
    expect(s.pick(0)).toBe('a');
  });
});

describe('FairScheduler: reserve', () => {
  it('keeps the last free slots for newcomers while they keep coming, then gives them to anyone', () => {
    const s = new FairScheduler({ rng: mulberry32(1), capacity: 4, reserve: 1, reserveWindowMs: 1000 });
    for (const id of ['flood', 'quiet']) s.setTenant(id, open());
    s.markBacklogged('flood');
    expect([s.pick(0), s.pick(0), s.pick(0)]).toEqual(['flood', 'flood', 'flood']);
    // One slot left: held for a newcomer, since one (the flood itself) came within the window.
    expect(s.pick(10)).toBeUndefined();
    expect(s.nextEligibleAt(10)).toBe(1000);
    s.markBacklogged('quiet', 1);
    expect(s.pick(20)).toBe('quiet');
    s.finished('quiet');
    // The window runs from the newest newcomer's pick: the reserve holds until 1020.
    expect(s.pick(1019)).toBeUndefined();
    expect(s.pick(1020)).toBe('flood');
  });

  it('leaves a tenant that has been alone for the window every slot', () => {
    const s = new FairScheduler({ rng: mulberry32(1), capacity: 50, reserve: 2, reserveWindowMs: 1000 });
    s.setTenant('flood', open());
    s.markBacklogged('flood');
    expect(pickMany(s, 48).every((id) => id === 'flood')).toBe(true);
    const held = Array.from({ length: 50 }, () => s.pick(0));
    expect(held.filter((id) => id !== undefined)).toHaveLength(48);
    expect(Array.from({ length: 2 }, () => s.pick(1000))).toEqual(['flood', 'flood']);
    expect(s.snapshot().inFlight).toBe(50);
  });

  it('rejects a reserve that leaves no slot', () => {
    expect(() => new FairScheduler({ rng: mulberry32(1), capacity: 2, reserve: 2 })).toThrow(RangeError);
  });
});

describe('FairScheduler: random operations', () => {
  it.each([28, 29, 30, 31, 32])(
    'holds every cap and hold, and never idles a slot that could work (seed %i, 20,000 operations)',
    (seed) => {
      const rng = mulberry32(seed);
      const int = (n: number) => Math.floor(rng() * n);
      const capacity = 6;
      const s = new FairScheduler({ rng: mulberry32(seed + 1000), capacity });
      interface Model {
        schedule: TenantSchedule;
        backlog: number;
        running: number;
        remote: number;
        starts: number[];
        deferredUntil: number;
        held: boolean;
      }
      const model = new Map<string, Model>();
      const ids = ['a', 'b', 'c', 'd', 'e'];
      const running: string[] = [];
      const startsIn = (m: Model, now: number) =>
        m.schedule.rateLimit
          ? m.starts.filter((at) => at > now - m.schedule.rateLimit!.durationMs).length
          : 0;
      const eligible = (m: Model, now: number) =>
        m.backlog > 0 &&
        !m.schedule.paused &&
        !m.held &&
        m.running + m.remote < m.schedule.maxConcurrency &&
        startsIn(m, now) < (m.schedule.rateLimit?.max ?? Infinity) &&
        m.deferredUntil <= now;
      let now = 0;
      let lastNow = 0; // the scheduler's clock: the last time it was given
      let violations = 0;
      let idleWhileEligible = 0;
      for (let i = 0; i < 20_000; i++) {
        now += int(3);
        const id = ids[int(ids.length)]!;
        const op = int(100);
        if (op < 5 || !model.has(id)) {
          const schedule = open(0.5 + int(4), {
            maxConcurrency: 1 + int(4),
            paused: rng() < 0.15,
            rateLimit: rng() < 0.4 ? { max: 1 + int(3), durationMs: 5 + int(30) } : undefined,
          });
          s.setTenant(id, schedule);
          const m = model.get(id);
          // Starts are only counted while a limit is set; a new limit keeps those the old one held.
          const held = m?.schedule.rateLimit?.durationMs ?? 0;
          if (m) Object.assign(m, { schedule, starts: m.starts.filter((at) => at > lastNow - held) });
          else
            model.set(id, {
              schedule,
              backlog: 0,
              running: 0,
              remote: 0,
              starts: [],
              deferredUntil: -Infinity,
              held: false,
            });
        } else if (op < 25) {
          const n = rng() < 0.2 ? Infinity : int(20);
          s.markBacklogged(id, n === Infinity ? undefined : n);
          model.get(id)!.backlog = n;
        } else if (op < 28) {
          const n = int(3);
          s.setRemoteInFlight(id, n);
          model.get(id)!.remote = n;
        } else if (op < 30) {
          const until = now + int(20);
          s.deferUntil(id, until);
          model.get(id)!.deferredUntil = Math.max(model.get(id)!.deferredUntil, until);
        } else if (op < 33) {
          const held = rng() < 0.5;
          s.hold(id, held);
          model.get(id)!.held = held;
        } else if (op < 60 && running.length > 0) {
          const done = running.splice(int(running.length), 1)[0]!;
          s.finished(done);
          model.get(done)!.running--;
        } else {
          lastNow = now;
          const picked = s.pick(now, rng() < 0.5 ? ids[int(ids.length)] : undefined);
          if (picked === undefined) {
            const anyEligible = [...model.values()].some((m) => eligible(m, now));
            if (running.length < capacity && anyEligible) idleWhileEligible++;
            continue;
          }
          const m = model.get(picked)!;
          if (!eligible(m, now) || running.length >= capacity) violations++;
          if (rng() < 0.05) {
            s.unpick(picked); // the fetch found nothing
            s.markIdle(picked);
            m.backlog = 0;
            continue;
          }
          m.backlog--;
          m.running++;
          if (m.schedule.rateLimit) m.starts.push(now);
          running.push(picked);
        }
      }
      expect({ violations, idleWhileEligible }).toEqual({ violations: 0, idleWhileEligible: 0 });
      expect(s.snapshot().picks).toBeGreaterThan(2_000);
    },
  );
});

describe('FairScheduler: the glue’s contract', () => {
  it('undoes a pick whose fetch found no job (unknown backlog), refunding slot, rate and turn', () => {
    const s = new FairScheduler({ rng: mulberry32(24), capacity: 1 });
    s.setTenant('a', open(1, { rateLimit: { max: 1, durationMs: 1000 } }));
    s.setTenant('b', open(1));
    s.markBacklogged('a');
    expect(s.pick(0)).toBe('a');
    s.unpick('a');
    s.markIdle('a');
    s.markBacklogged('b');
    expect(s.pick(0)).toBe('b');
    s.finished('b');
    s.markIdle('b');
    s.markBacklogged('a');
    expect(s.pick(1)).toBe('a'); // the refunded token is free again
    expect(s.snapshot()).toMatchObject({ inFlight: 1, picks: 2 });
  });

  it('counts jobs started without a pick, and forgets removed tenants', () => {
    const s = new FairScheduler({ rng: mulberry32(25), capacity: 2 });
    s.setTenant('a', open(1, { maxConcurrency: 1 }));
    s.markBacklogged('a');
    s.started('a', 0);
    expect(s.pick(0)).toBeUndefined();
    s.finished('a');
    expect(s.pick(0)).toBe('a');
    s.removeTenant('a');
    expect(() => s.markBacklogged('a')).toThrow(RangeError);
    expect(s.snapshot()).toMatchObject({ registered: 0, inFlight: 1 });
    s.finished('a');
    expect(s.snapshot().inFlight).toBe(0);
  });

  it('rejects settings it cannot honour', () => {
    const s = new FairScheduler({ rng: mulberry32(26) });
    expect(() => s.setTenant('a', open(0))).toThrow(/weight/);
    expect(() => s.setTenant('a', open(Infinity))).toThrow(/weight/);
    expect(() => s.setTenant('a', open(1, { maxConcurrency: 0 }))).toThrow(/maxConcurrency/);
    expect(() => s.setTenant('a', open(1, { rateLimit: { max: 1.5, durationMs: 10 } }))).toThrow(/rateLimit/);
  });
});

describe('TokenBucket', () => {
  it('lets at most max starts through in any window and frees each token durationMs after use', () => {
    const b = new TokenBucket({ max: 3, durationMs: 100 });
    for (const at of [0, 10, 20]) {
      expect(b.nextAt(at)).toBe(at);
      b.take(at);
    }
    expect(b.nextAt(30)).toBe(100);
    expect(b.nextAt(100)).toBe(100);
    b.take(100);
    expect(b.nextAt(100)).toBe(110);
    b.refund();
    expect(b.nextAt(100)).toBe(100);
    expect(b.count(115)).toBe(1);
    expect(new TokenBucket({ max: 1, durationMs: 100 }, { bucket: b, nowMs: 115 }).nextAt(115)).toBe(120);
  });
});

describe('TimerHeap', () => {
  it('pops by time, then tie key, then insertion order', () => {
    const rng = mulberry32(27);
    const h = new TimerHeap<number>();
    const times = Array.from({ length: 2_000 }, () => Math.floor(rng() * 100));
    times.forEach((at, i) => h.push(at, 0, i));
    h.push(5, -1, -1);
    const out: number[] = [];
    for (let t = h.pop(); t; t = h.pop()) out.push(t.at);
    expect(out).toEqual([...times, 5].sort((a, b) => a - b));
    const ties = new TimerHeap<string>();
    ties.push(1, 0.5, 'b');
    ties.push(1, 0.1, 'a');
    ties.push(1, 0.5, 'c');
    expect([ties.pop()?.value, ties.pop()?.value, ties.pop()?.value]).toEqual(['a', 'b', 'c']);
    expect(ties.size).toBe(0);
  });
});
