/**
 * Fair overload control at the ingress: the deterministic core that decides, for each request of
 * an authenticated tenant, whether this API process takes it on now. No I/O and no timers: the
 * glue (`src/api/http/ingressGate.ts`) feeds it the event-loop delay and the tenants' limits.
 *
 * Two rules, checked in this order:
 *
 * 1. **Per-tenant in-flight limit.** A tenant has at most `limit` requests in progress in this
 *    process (its `scheduling.ingress_max_in_flight`, default `DEFAULT_TENANT_IN_FLIGHT`);
 *    beyond it, 429 at once. This bounds what one tenant's client concurrency can occupy.
 * 2. **Fair shedding under overload.** The process is overloaded while its event-loop delay has
 *    stayed over `maxLoopDelayMs` for `LOOP_DELAY_WINDOWS` windows in a row, or its requests in
 *    progress reach `maxInFlight`. Then a tenant is
 *    turned away only if it holds at least its weighted fair share of the requests in progress:
 *    `share(t) = N · w_t / Σ w` over the tenants with requests in progress (and `t`), where N is
 *    `maxInFlight` when that bound is the trigger, else the requests in progress now. The
 *    heaviest tenants are shed first, and **a tenant below its fair share is never shed**: a quiet
 *    tenant's request gets in however heavy the flood next to it.
 *
 * One long window is not an overload: the glue's reading is the p99 of half a second at 10 ms
 * resolution, i.e. the longest single stall in it, and a single stall (start-up and the first
 * requests' compilation, a major GC, the process waiting for a core on a busy machine) is over
 * before a refusal could help; bench:ingress saw lone 200–320 ms windows shed a single tenant's
 * sends at 100 connections with nothing queued behind them. A process whose own work outruns it
 * stays late window after window, and is shed from the second one.
 *
 * Guarantees (tested in `test/unit/ingressGovernor.test.ts`): a tenant's in-flight count never
 * exceeds its limit; while overloaded, every admitted request's tenant held less than its share
 * when it was admitted; with no overload, only the per-tenant limit refuses; `release` is
 * idempotent per admission. Requests of principals without a tenant (platform admins, health
 * checks) are not governed.
 */

/** Requests one tenant may have in progress in one API process, unless its settings say otherwise. */
export const DEFAULT_TENANT_IN_FLIGHT = 128;

/** Consecutive event-loop delay readings over the bound that make an overload (see above). */
export const LOOP_DELAY_WINDOWS = 2;

export interface IngressGovernorOptions {
  /** Requests in progress in the process at which it counts as overloaded. Default 1024. */
  maxInFlight?: number;
  /**
   * Event-loop delay (the glue's p99 per window) above which, `LOOP_DELAY_WINDOWS` windows in a
   * row, the process counts as overloaded, ms. Default 200.
   */
  maxLoopDelayMs?: number;
}

export interface TenantLimits {
  /** Most requests of the tenant in progress here. */
  maxInFlight: number;
  /** The tenant's scheduling weight (its share under overload is proportional to it). */
  weight: number;
}

export type GovernorDecision =
  | { admitted: true; release: () => void }
  | {
      admitted: false;
      /** `tenant_in_flight`: rule 1; `overloaded`: rule 2. */
      reason: 'tenant_in_flight' | 'overloaded';
      inFlight: number;
      /** The bound the tenant hit: its limit, or its fair share now. */
      limit: number;
    };

interface TenantState {
  inFlight: number;
  weight: number;
}

export class IngressGovernor {
  private readonly tenants = new Map<string, TenantState>();
  private readonly maxInFlight: number;
  private readonly maxLoopDelayMs: number;
  private total = 0;
  /** Σ weight over tenants with requests in progress. */
  private activeWeight = 0;
  /** The last readings, newest last (at most LOOP_DELAY_WINDOWS). */
  private readonly loopDelays: number[] = [];
  private shed = 0;

  constructor(options: IngressGovernorOptions = {}) {
    this.maxInFlight = options.maxInFlight ?? 1024;
    this.maxLoopDelayMs = options.maxLoopDelayMs ?? 200;
    if (!(this.maxInFlight >= 1)) throw new RangeError('ingress governor: maxInFlight must be ≥ 1');
    if (!(this.maxLoopDelayMs > 0)) throw new RangeError('ingress governor: maxLoopDelayMs must be > 0');
  }

  /** The event-loop delay the glue measured over its last window (p99), ms. */
  setLoopDelay(ms: number): void {
    this.loopDelays.push(ms);
    if (this.loopDelays.length > LOOP_DELAY_WINDOWS) this.loopDelays.shift();
  }

  /** The delay every one of the last `LOOP_DELAY_WINDOWS` windows reached, ms (0 until there are as many). */
  get sustainedLoopDelayMs(): number {
    return this.loopDelays.length < LOOP_DELAY_WINDOWS ? 0 : Math.min(...this.loopDelays);
  }

  get overloaded(): boolean {
    return this.sustainedLoopDelayMs > this.maxLoopDelayMs || this.total >= this.maxInFlight;
  }

  /** Decides on one request of `tenantId`; an admitted one must be released when it ends. */
  admit(tenantId: string, limits: TenantLimits): GovernorDecision {
    const t = this.tenants.get(tenantId);
    const inFlight = t?.inFlight ?? 0;
    if (inFlight >= limits.maxInFlight) {
      this.shed++;
      return { admitted: false, reason: 'tenant_in_flight', inFlight, limit: limits.maxInFlight };
    }
    if (this.overloaded) {
      const pool = this.total >= this.maxInFlight ? this.maxInFlight : this.total;
      const weights = this.activeWeight + (inFlight === 0 ? limits.weight : 0);
      // At least one: a tenant with nothing in progress is always within its share.
      const share = Math.max(1, (pool * limits.weight) / weights);
      if (inFlight >= share) {
        this.shed++;
        return { admitted: false, reason: 'overloaded', inFlight, limit: Math.floor(share) };
      }
    }
    const state = t ?? { inFlight: 0, weight: limits.weight };
    if (!t) this.tenants.set(tenantId, state);
    if (state.inFlight === 0) {
      state.weight = limits.weight;
      this.activeWeight += state.weight;
    }
    state.inFlight++;
    this.total++;
    let released = false;
    return {
      admitted: true,
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        state.inFlight--;
        if (state.inFlight === 0) {
          this.activeWeight -= state.weight;
          this.tenants.delete(tenantId);
        }
      },
    };
  }

  snapshot() {
    return {
      inFlight: this.total,
      tenants: this.tenants.size,
      loopDelayMs: this.loopDelays[this.loopDelays.length - 1] ?? 0,
      sustainedLoopDelayMs: this.sustainedLoopDelayMs,
      overloaded: this.overloaded,
      shed: this.shed,
    };
  }
}
