import { FairScheduler, mulberry32, type TenantSchedule } from '../../src/queues/fairScheduler';
import { TimerHeap } from '../../src/queues/timerHeap';

/** A tenant of the simulation: its settings, the jobs it has at t = 0, and jobs arriving later. */
export interface SimTenant {
  id: string;
  schedule: TenantSchedule;
  /** Jobs waiting at t = 0; Infinity floods. Default 0. */
  backlog?: number;
  /** Simulated times (ms) at which one more job arrives. */
  arrivals?: number[];
}

export interface SimOptions {
  seed: number;
  /** Worker slots (the scheduler's capacity). */
  slots: number;
  tenants: SimTenant[];
  /** Run time of one job; drawn from the simulation's seeded rng. Default 1–20 ms. */
  jobMs?: (rng: () => number, tenantId: string) => number;
  /** Stop after this many completions, or at this simulated time, whichever comes first. */
  completions?: number;
  untilMs?: number;
  /** Registered tenants that never have work. */
  idleTenants?: number;
  /** Check after every dispatch that no slot stays free while a tenant could start (costs O(tenants)). */
  checkWorkConserving?: boolean;
  /** The scheduler's `quantum` option. Default 1. */
  quantum?: number;
  /** As the dispatcher does: when a job ends, its slot is first offered to its tenant (`pick(now, tenant)`). */
  affinity?: boolean;
}

export interface SimResult {
  /** Tenant of every pick, in order, with the pick's time. */
  picks: { tenantId: string; at: number }[];
  completed: Map<string, number>;
  /** Highest number of jobs of each tenant running at once. */
  peakInFlight: Map<string, number>;
  /** Time at which a slot was free while some tenant could have started a job (work conservation). */
  idleSlotWithEligibleWork: number | undefined;
  steps: number;
  /** With `affinity`: ends whose slot went straight back to the same tenant. */
  affinityHits: number;
  endMs: number;
  scheduler: FairScheduler;
}

/**
 * A discrete-event simulation of the dispatcher: whenever slots are free it picks and starts jobs,
 * then jumps to the next event (a job ending, a job arriving, a throttle ending). No timers.
 */
export function simulate(o: SimOptions): SimResult {
  const rng = mulberry32(o.seed);
  const jobRng = mulberry32(o.seed ^ 0x9e3779b9);
  const jobMs = o.jobMs ?? ((r: () => number) => 1 + Math.floor(r() * 20));
  const scheduler = new FairScheduler({ rng, capacity: o.slots, quantum: o.quantum ?? 1 });
  for (let i = 0; i < (o.idleTenants ?? 0); i++)
    scheduler.setTenant(`idle-${i}`, { weight: 1 + (i % 7), maxConcurrency: 10, paused: false });

  const waiting = new Map<string, number>();
  const running = new Map<string, number>();
  const events = new TimerHeap<{ kind: 'end' | 'arrive'; tenantId: string }>();
  const result: SimResult = {
    picks: [],
    completed: new Map(),
    peakInFlight: new Map(),
    idleSlotWithEligibleWork: undefined,
    steps: 0,
    affinityHits: 0,
    endMs: 0,
    scheduler,
  };
  for (const t of o.tenants) {
    scheduler.setTenant(t.id, t.schedule);
    waiting.set(t.id, t.backlog ?? 0);
    if ((t.backlog ?? 0) > 0) scheduler.markBacklogged(t.id, t.backlog);
    for (const at of t.arrivals ?? []) events.push(at, 0, { kind: 'arrive', tenantId: t.id });
  }

  let now = 0;
  let done = 0;
  let inFlight = 0;
  const start = (id: string) => {
    const left = (waiting.get(id) ?? 0) - 1;
    if (left < 0) throw new Error(`picked ${id}, which has no job`);
    waiting.set(id, left);
    inFlight++;
    const r = (running.get(id) ?? 0) + 1;
    running.set(id, r);
    result.peakInFlight.set(id, Math.max(result.peakInFlight.get(id) ?? 0, r));
    result.picks.push({ tenantId: id, at: now });
    events.push(now + jobMs(jobRng, id), 0, { kind: 'end', tenantId: id });
  };
  for (;;) {
    const stepsBefore = scheduler.steps;
    while (inFlight < o.slots) {
      const id = scheduler.pick(now);
      if (id === undefined) break;
      start(id);
    }
    result.steps += scheduler.steps - stepsBefore;
    if (o.checkWorkConserving && inFlight < o.slots && result.idleSlotWithEligibleWork === undefined) {
      // A free slot is only allowed when every tenant with work is paused or at a cap.
      const eligible = scheduler.snapshot().tenants.some((t) => t.state === 'ready');
      if (eligible) result.idleSlotWithEligibleWork = now;
    }
    const wake = inFlight < o.slots ? scheduler.nextEligibleAt(now) : undefined;
    const next = events.peek();
    if (next === undefined && wake === undefined) break;
    if (next === undefined || (wake !== undefined && wake < next.at)) {
      now = wake!;
    } else {
      events.pop();
      now = next.at;
      const { kind, tenantId } = next.value;
      if (kind === 'end') {
        inFlight--;
        running.set(tenantId, (running.get(tenantId) ?? 0) - 1);
        scheduler.finished(tenantId);
        result.completed.set(tenantId, (result.completed.get(tenantId) ?? 0) + 1);
        done++;
        if (o.affinity) {
          const id = scheduler.pick(now, tenantId);
          if (id === tenantId) result.affinityHits++;
          if (id !== undefined) start(id);
        }
      } else {
        const w = (waiting.get(tenantId) ?? 0) + 1;
        waiting.set(tenantId, w);
        scheduler.markBacklogged(tenantId, w);
      }
    }
    if (
      (o.completions !== undefined && done >= o.completions) ||
      (o.untilMs !== undefined && now >= o.untilMs)
    )
      break;
  }
  result.endMs = now;
  return result;
}

/** Jain's fairness index of weight-normalised allocations: 1 is perfectly fair, 1/n the worst. */
export function jainIndex(allocations: number[]): number {
  const sum = allocations.reduce((a, b) => a + b, 0);
  const squares = allocations.reduce((a, b) => a + b * b, 0);
  return squares === 0 ? 1 : (sum * sum) / (allocations.length * squares);
}
