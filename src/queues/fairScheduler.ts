export { mulberry32 } from '../domain/random';
import { type Timer, TimerHeap } from './timerHeap';
import { type RateLimit, TokenBucket } from './tokenBucket';

/**
 * The deterministic core of fair scheduling: which tenant's queue the next job is fetched from.
 * Deficit round robin over the tenants that have work, a list of newly active tenants served first
 * (as in FQ-CoDel), and per-tenant caps (pause, max concurrency, rate limit) that take a tenant out
 * of the round while they hold. No I/O: time is the `nowMs` argument, randomness the `rng` option.
 * `README.md` next to this file states the algorithm, its bounds and the contract of the glue.
 */

export type { RateLimit } from './tokenBucket';

/** Scheduling settings of one tenant. */
export interface TenantSchedule {
  /** Share of picks relative to the other backlogged tenants; finite and > 0. */
  weight: number;
  /** Most jobs of the tenant running at once, here plus `setRemoteInFlight`; ≥ 1 or Infinity. */
  maxConcurrency: number;
  /** Most job starts in any window of `durationMs`; no limit when absent. */
  rateLimit?: RateLimit | undefined;
  /** A paused tenant is never picked; its backlog is kept. */
  paused: boolean;
}

export interface FairSchedulerOptions {
  /** Seeded random source in [0, 1) (see `mulberry32`); breaks ties between tenants waking in the same ms. */
  rng: () => number;
  /** Job slots of this process: `pick` returns undefined while this many picked jobs run. Default Infinity. */
  capacity?: number;
  /**
   * Picks per round of a tenant of the smallest weight (others in proportion). Larger values let
   * the glue keep fetching from the tenant whose job just finished (README, "Affinity") at the
   * price of coarser interleaving. Default 1.
   */
  quantum?: number;
  /**
   * Slots kept for newly active tenants (the fresh list) while others may arrive: when no more
   * than this many slots are free, only a fresh tenant is picked, as long as one was picked in the
   * last `reserveWindowMs`. A tenant alone for that long gets every slot. Default 0 (none).
   */
  reserve?: number;
  /** How long after the last fresh pick the reserve holds, ms. Default 1000. */
  reserveWindowMs?: number;
}

/** `ready`: in the round (or the fresh list); the others say why the tenant is out of it. */
export type TenantState = 'idle' | 'paused' | 'capped' | 'throttled' | 'ready';

export interface TenantSnapshot {
  tenantId: string;
  state: TenantState;
  weight: number;
  /** Picks per round: `quantum` × weight ÷ the smallest weight among tenants with work; 0 when not in the round. */
  quantum: number;
  deficit: number;
  /** Jobs known to wait; Infinity when the glue said "has work" without a count. */
  backlog: number;
  inFlight: number;
  remoteInFlight: number;
  /** Starts in the current rate window. */
  recentStarts: number;
}

export interface FairSchedulerSnapshot {
  registered: number;
  capacity: number;
  inFlight: number;
  picks: number;
  /** Loop iterations of `pick` so far (see README, "Cost"). */
  steps: number;
  /** Tenants that are not idle or have jobs running; idle ones are left out. */
  tenants: TenantSnapshot[];
}

class Tenant {
  backlog = 0;
  inFlight = 0;
  remoteInFlight = 0;
  starts: TokenBucket | undefined;
  deferredUntil = -Infinity;
  deficit = 0;
  /** Counted in the weight multiset: has work and is not paused. */
  tracked = false;
  /** The glue cannot take another job of it now (`hold`): out of the round like a capped tenant. */
  held = false;
  /** Intrusive links: the list it is in (fresh or round), if any. */
  list: List | undefined;
  prev: Tenant | undefined;
  next: Tenant | undefined;
  /** Its live wake-up while throttled; heap entries that are not this one are stale. */
  wake: Timer<Tenant> | undefined;

  constructor(
    readonly id: string,
    public s: TenantSchedule,
  ) {}
}

interface List {
  head: Tenant | undefined;
  tail: Tenant | undefined;
}

export class FairScheduler {
  private readonly tenants = new Map<string, Tenant>();
  /** Newly active tenants: one pick each, ahead of the round, before they join it. */
  private readonly fresh: List = { head: undefined, tail: undefined };
  /** The round: a tenant at the head is served while its deficit lasts, then goes to the tail. */
  private readonly round: List = { head: undefined, tail: undefined };
  private readonly wakes = new TimerHeap<Tenant>();
  /** Weights of tracked tenants (weight → count), to scale quanta so the smallest is 1. */
  private readonly weights = new Map<number, number>();
  private minWeight: number | undefined;
  private readonly rng: () => number;
  private readonly capacity: number;
  private readonly quantumScale: number;
  private readonly reserveSlots: number;
  private readonly reserveWindowMs: number;
  /** When the last pick from the fresh list happened (newcomers seen recently keep the reserve). */
  private lastFreshPickAt = -Infinity;
  private now = -Infinity;
  private inFlight = 0;
  private picks = 0;
  /** Loop iterations of `pick` so far; the cost measure the tests and metrics read. */
  steps = 0;

  constructor(options: FairSchedulerOptions) {
    this.rng = options.rng;
    this.capacity = options.capacity ?? Infinity;
    this.quantumScale = options.quantum ?? 1;
    this.reserveSlots = options.reserve ?? 0;
    this.reserveWindowMs = options.reserveWindowMs ?? 1000;
    if (!(Number.isInteger(this.reserveSlots) && this.reserveSlots >= 0 && this.reserveSlots < this.capacity))
      throw new RangeError('fair scheduler: reserve must be an integer in [0, capacity)');
    if (!(Number.isInteger(this.quantumScale) && this.quantumScale >= 1))
      throw new RangeError('fair scheduler: quantum must be an integer ≥ 1');
  }

  /** Registers a tenant or changes its settings, at once (a pause takes it out of the round). */
  setTenant(tenantId: string, schedule: TenantSchedule): void {
    validate(tenantId, schedule);
    let t = this.tenants.get(tenantId);
    if (!t) this.tenants.set(tenantId, (t = new Tenant(tenantId, schedule)));
    const tracked = t.tracked;
    if (tracked) this.untrack(t); // re-counted under the new weight, keeping its place
    t.s = { ...schedule };
    if (tracked) this.track(t);
    const previous = t.starts && { bucket: t.starts, nowMs: this.now };
    t.starts = schedule.rateLimit ? new TokenBucket(schedule.rateLimit, previous) : undefined;
    this.settle(t);
  }

  /** Forgets a tenant. Its running jobs still count against `capacity` until `finished`. */
  removeTenant(tenantId: string): void {
    const t = this.tenants.get(tenantId);
    if (!t) return;
    this.unlink(t);
    t.wake = undefined;
    if (t.tracked) this.untrack(t);
    this.tenants.delete(tenantId);
  }

  /** The tenant has work: `waiting` jobs, or an unknown non-zero number (until `markIdle`). */
  markBacklogged(tenantId: string, waiting?: number): void {
    const t = this.get(tenantId);
    t.backlog = waiting ?? Infinity;
    this.settle(t);
  }

  /** The tenant's queue is empty. It keeps its place until it comes round (README, rule 5). */
  markIdle(tenantId: string): void {
    this.markBacklogged(tenantId, 0);
  }

  /**
   * The tenant to fetch the next job from, or undefined if none may start now. A pick reserves a
   * slot: it counts against capacity, max concurrency and the rate limit until `finished` (or
   * `unpick`, when the fetch found no job).
   */
  pick(nowMs: number, prefer?: string): string | undefined {
    this.advance(nowMs);
    if (this.inFlight >= this.capacity) return undefined;
    // The last free slots wait for newcomers, the fresh list only (README, "Reserve").
    const reserved = this.inReserve();
    const p = prefer === undefined ? undefined : this.tenants.get(prefer);
    if (p && !reserved && !this.fresh.head && p.list === this.round && p.backlog > 0 && p.deficit >= 1) {
      // Affinity: the preferred tenant spends a pick it has already been credited for this round,
      // out of turn. Its picks per round, and so every share, are unchanged (README, "Affinity").
      return this.take(p);
    }
    for (;;) {
      this.steps++;
      const list = this.fresh.head || reserved ? this.fresh : this.round;
      const t = list.head;
      if (!t) return undefined;
      this.unlink(t);
      if (t.backlog <= 0) {
        // Went idle while listed. Out of the fresh list it still goes round once, so emptying
        // the queue after every job does not win the fresh list again and again.
        if (list === this.fresh) this.rotate(t);
        else this.settle(t);
      } else if (t.deficit < 1) {
        this.rotate(t);
      } else {
        this.prepend(list, t);
        if (list === this.fresh) this.lastFreshPickAt = this.now;
        return this.take(t);
      }
    }
  }

  /** Spends one of the listed tenant's picks. */
  private take(t: Tenant): string {
    t.deficit -= 1;
    t.backlog -= 1;
    this.reserve(t);
    this.picks++;
    this.settle(t); // takes it out of the round if it just reached a cap
    return t.id;
  }

  /** Undoes the tenant's last pick (the fetch found no job); follow with `markIdle` or `deferUntil`. */
  unpick(tenantId: string): void {
    const t = this.get(tenantId);
    t.inFlight = Math.max(0, t.inFlight - 1);
    this.inFlight = Math.max(0, this.inFlight - 1);
    t.backlog += 1;
    t.deficit += 1;
    t.starts?.refund();
    this.picks--;
    this.settle(t);
  }

  /** A job of the tenant started here without `pick` (e.g. taken over at start-up); pair with `finished`. */
  started(tenantId: string, nowMs: number): void {
    this.advance(nowMs);
    const t = this.get(tenantId);
    this.reserve(t);
    this.settle(t);
  }

  /** A job picked (or `started`) here completed, failed or was given up: its slot is free. */
  finished(tenantId: string): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    const t = this.tenants.get(tenantId);
    if (!t) return;
    t.inFlight = Math.max(0, t.inFlight - 1);
    this.settle(t);
  }

  /** Jobs of the tenant running in other processes (read from Redis); they count against its cap. */
  setRemoteInFlight(tenantId: string, count: number): void {
    const t = this.get(tenantId);
    t.remoteInFlight = Math.max(0, count);
    this.settle(t);
  }

  /**
   * Holds the tenant out of the round while `held` (e.g. the glue's fetch for it is still out and
   * another could only find the queue empty); releasing it puts it back as after a cap.
   */
  hold(tenantId: string, held: boolean): void {
    const t = this.get(tenantId);
    if (t.held === held) return;
    t.held = held;
    this.settle(t);
  }

  /** Keeps the tenant out of the round until `untilMs` (e.g. BullMQ said its queue is rate limited). */
  deferUntil(tenantId: string, untilMs: number): void {
    const t = this.get(tenantId);
    t.deferredUntil = Math.max(t.deferredUntil, untilMs);
    this.settle(t);
  }

  /**
   * When `pick` returned undefined with slots free: the earliest time a throttled tenant becomes
   * eligible, to sleep until; undefined when only `finished` or new work can change the answer.
   */
  nextEligibleAt(nowMs: number): number | undefined {
    this.advance(nowMs);
    // Slots held in reserve free up for everyone when the window ends without a newcomer.
    if (this.inReserve() && this.round.head) return this.lastFreshPickAt + this.reserveWindowMs;
    for (let w = this.wakes.peek(); w; w = this.wakes.peek()) {
      if (w.value.wake === w) return Math.max(w.at, this.now);
      this.wakes.pop();
    }
    return undefined;
  }

  snapshot(): FairSchedulerSnapshot {
    const tenants: TenantSnapshot[] = [];
    for (const t of this.tenants.values()) {
      const state = this.state(t);
      if (state === 'idle' && t.inFlight === 0) continue;
      const { backlog, deficit, inFlight, remoteInFlight } = t;
      const quantum = t.tracked ? this.quantum(t) : 0;
      const recentStarts = t.starts?.count(this.now) ?? 0;
      tenants.push({
        tenantId: t.id,
        state,
        weight: t.s.weight,
        quantum,
        deficit,
        backlog,
        inFlight,
        remoteInFlight,
        recentStarts,
      });
    }
    const { capacity, inFlight, picks, steps } = this;
    return { registered: this.tenants.size, capacity, inFlight, picks, steps, tenants };
  }

  private inReserve(): boolean {
    return (
      this.reserveSlots > 0 &&
      this.capacity - this.inFlight <= this.reserveSlots &&
      this.now - this.lastFreshPickAt < this.reserveWindowMs
    );
  }

  private get(tenantId: string): Tenant {
    const t = this.tenants.get(tenantId);
    if (!t) throw new RangeError(`fair scheduler: unknown tenant ${tenantId}`);
    return t;
  }

  /** Moves the clock (never backwards) and returns tenants whose throttle ended to the round. */
  private advance(nowMs: number): void {
    this.now = Math.max(this.now, nowMs);
    for (let w = this.wakes.peek(); w && w.at <= this.now; w = this.wakes.peek()) {
      this.wakes.pop();
      if (w.value.wake !== w) continue;
      w.value.wake = undefined;
      this.settle(w.value);
    }
  }

  private reserve(t: Tenant): void {
    t.inFlight++;
    this.inFlight++;
    t.starts?.take(this.now);
  }

  private state(t: Tenant): TenantState {
    if (t.backlog <= 0) return 'idle';
    if (t.list) return 'ready';
    if (t.s.paused) return 'paused';
    return t.wake ? 'throttled' : 'capped';
  }

  /** Puts the tenant where its facts say: in a list, parked until a time or a `finished`, or nowhere. */
  private settle(t: Tenant): void {
    if (t.s.paused || t.backlog <= 0) {
      t.wake = undefined;
      // An idle tenant keeps its place until it comes round, a parked one takes a place to do so:
      // it is back in the fresh list only after one round.
      if (t.s.paused) this.unlink(t);
      else if (t.tracked && !t.list) this.append(this.round, t);
      if (t.tracked) this.untrack(t);
      if (!t.list) t.deficit = 0;
      return;
    }
    const joining = !t.tracked;
    if (joining) this.track(t);
    if (t.held || t.inFlight + t.remoteInFlight >= t.s.maxConcurrency) {
      this.unlink(t);
      t.wake = undefined; // capped or held: `finished` or `hold(…, false)` brings it back
      return;
    }
    const at = Math.max(t.deferredUntil, t.starts?.nextAt(this.now) ?? -Infinity);
    if (at > this.now) {
      this.unlink(t);
      if (t.wake?.at !== at) t.wake = this.wakes.push(at, this.rng(), t);
      return;
    }
    t.wake = undefined;
    if (t.list) return;
    if (!joining) return this.rotate(t); // back from a cap
    t.deficit = 1;
    this.append(this.fresh, t);
  }

  /** To the tail of the round; a spent deficit is credited a quantum there (it waits one round). */
  private rotate(t: Tenant): void {
    if (t.deficit < 1) t.deficit += this.quantum(t);
    this.append(this.round, t);
  }

  private quantum(t: Tenant): number {
    if (this.minWeight === undefined) {
      this.minWeight = Infinity;
      for (const w of this.weights.keys()) this.minWeight = Math.min(this.minWeight, w);
    }
    return (this.quantumScale * t.s.weight) / this.minWeight;
  }

  private track(t: Tenant): void {
    t.tracked = true;
    this.weights.set(t.s.weight, (this.weights.get(t.s.weight) ?? 0) + 1);
    if (this.minWeight !== undefined) this.minWeight = Math.min(this.minWeight, t.s.weight);
  }

  private untrack(t: Tenant): void {
    t.tracked = false;
    const n = (this.weights.get(t.s.weight) ?? 1) - 1;
    if (n > 0) return void this.weights.set(t.s.weight, n);
    this.weights.delete(t.s.weight);
    // Recomputed on demand over the distinct weights (a handful of plans in practice).
    if (t.s.weight === this.minWeight) this.minWeight = undefined;
  }

  private append(list: List, t: Tenant): void {
    t.list = list;
    t.prev = list.tail;
    if (list.tail) list.tail.next = t;
    else list.head = t;
    list.tail = t;
  }

  private prepend(list: List, t: Tenant): void {
    t.list = list;
    t.next = list.head;
    if (list.head) list.head.prev = t;
    else list.tail = t;
    list.head = t;
  }

  private unlink(t: Tenant): void {
    const list = t.list;
    if (!list) return;
    if (t.prev) t.prev.next = t.next;
    else list.head = t.next;
    if (t.next) t.next.prev = t.prev;
    else list.tail = t.prev;
    t.list = t.prev = t.next = undefined;
  }
}

function validate(tenantId: string, s: TenantSchedule): void {
  const bad = (what: string) => new RangeError(`fair scheduler: tenant ${tenantId}: ${what}`);
  if (!(Number.isFinite(s.weight) && s.weight > 0)) throw bad('weight must be finite and > 0');
  if (!(s.maxConcurrency >= 1)) throw bad('maxConcurrency must be ≥ 1');
  const r = s.rateLimit;
  if (r && !(Number.isInteger(r.max) && r.max >= 1 && Number.isFinite(r.durationMs) && r.durationMs > 0))
    throw bad('rateLimit needs an integer max ≥ 1 and a finite durationMs > 0');
}
