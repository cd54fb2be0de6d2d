import type { Logger } from '../../logger';

/** How long refusals are summed before their line is written, ms. */
export const REFUSAL_LOG_INTERVAL_MS = 10_000;

/** Tenant of a refusal whose credential was never authenticated in this process. */
const UNKNOWN_TENANT = '';

/**
 * The access log's lines for rate and load refusals (429 `RATE_LIMIT_EXCEEDED`/`QUOTA_EXCEEDED`),
 * summed: one `requests refused` warn line per tenant and interval, with how many of its requests
 * were refused and for which limit (`{ credential: 812, in_flight: 3 }`), instead of a line per
 * refused request. A tenant over its rate is refused hundreds of times a second by design, and a
 * line each turned every refusal into a log write: 4,100 lines in the 20 s of bench:isolation's
 * single-send flood, and pino 13 % of the API's CPU, on the event loop every other tenant's request
 * shares. Each refusal still has its line at `debug`, and its count in `/metrics`.
 *
 * The first refusal of an interval starts it; its lines are written `intervalMs` later (a timer
 * that does not keep the process alive), or at `flush()` (shutdown), saying over how many ms
 * (`over_ms`) the refusals came. No refusals, no timer, no line. A refusal whose tenant is not
 * known (an early refusal of a credential remembered without one) counts under `tenant_id: null`.
 */
export class RefusalLog {
  /** tenant → limit → refusals, this interval. */
  private counts = new Map<string, Map<string, number>>();
  private timer: NodeJS.Timeout | undefined;
  /** When this interval's first refusal came (`now()`). */
  private since = 0;

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = REFUSAL_LOG_INTERVAL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one refusal; `limit` names what refused it (`credential`, `in_flight`, `quota`, …). */
  note(tenantId: string | undefined, limit: string): void {
    const tenant = tenantId ?? UNKNOWN_TENANT;
    let limits = this.counts.get(tenant);
    if (!limits) this.counts.set(tenant, (limits = new Map<string, number>()));
    limits.set(limit, (limits.get(limit) ?? 0) + 1);
    if (!this.timer) {
      this.since = this.now();
      this.timer = setTimeout(() => this.flush(), this.intervalMs);
      this.timer.unref();
    }
  }

  /** Writes the interval's lines now and starts a new interval. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const counts = this.counts;
    this.counts = new Map();
    const overMs = this.now() - this.since;
    for (const [tenant, limits] of counts) {
      let refused = 0;
      for (const n of limits.values()) refused += n;
      this.logger.warn(
        {
          tenant_id: tenant === UNKNOWN_TENANT ? null : tenant,
          refused,
          limits: Object.fromEntries(limits),
          over_ms: overMs,
        },
        'requests refused',
      );
    }
  }
}
