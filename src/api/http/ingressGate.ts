import { monitorEventLoopDelay } from 'node:perf_hooks';

import type { NextFunction, Request, Response } from 'express';

import { tenantMetaOf } from '../../auth/authenticate';
import type { Principal } from '../../auth/principal';
import { effectiveSettingsOf } from '../../domain/tenantSettings';
import { RateLimitError } from '../../errors';
import { IngressGovernor, type IngressGovernorOptions } from '../../ingress/ingressGovernor';

/** How often the event-loop delay is read and handed to the governor, ms. */
const SAMPLE_MS = 500;
/** What a refused client is told to wait, s (the header's unit). */
const RETRY_AFTER_SECONDS = 1;

/**
 * The glue around `IngressGovernor` (the pure core, see its file for the rules): measures this
 * process's event-loop delay, and admits each authenticated tenant request before its body is
 * read, releasing it when the response ends. A refused request is a 429 `RATE_LIMIT_EXCEEDED`
 * with `Retry-After`, decided without a round trip to Redis or PostgreSQL and before the body is
 * parsed, so turning a flood away costs little. Requests without a tenant (platform admins,
 * anonymous routes) pass ungoverned.
 */
export class IngressGate {
  readonly governor: IngressGovernor;
  private readonly delay = monitorEventLoopDelay({ resolution: 10 });
  private timer: NodeJS.Timeout | undefined;

  constructor(options: IngressGovernorOptions) {
    this.governor = new IngressGovernor(options);
  }

  start(): void {
    if (this.timer) return;
    this.delay.enable();
    this.timer = setInterval(() => {
      this.governor.setLoopDelay(this.delay.percentile(99) / 1e6);
      this.delay.reset();
    }, SAMPLE_MS);
    this.timer.unref();
  }

  /** Stops measuring; idempotent. */
  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.delay.disable();
  }

  middleware() {
    return (_req: Request, res: Response, next: NextFunction) => {
      // The client left while it was being authenticated: its response's `close` has been and
      // gone, so an admission would never be released (each such request held one of its tenant's
      // slots for good, until the tenant was refused for ever). Nobody waits for this answer.
      if (res.closed) return;
      const principal = res.locals.principal as Principal | undefined;
      const tenantId = principal?.tenantId;
      // The authenticator read the tenant's meta for every tenant credential it accepted.
      const meta = tenantId === undefined ? undefined : tenantMetaOf(principal!, tenantId);
      if (tenantId === undefined || !meta) return next();
      const { scheduling } = effectiveSettingsOf(meta.settings);
      const decision = this.governor.admit(tenantId, {
        maxInFlight: scheduling.ingress_max_in_flight,
        weight: scheduling.weight,
      });
      if (!decision.admitted) {
        const reason =
          decision.reason === 'tenant_in_flight' ? 'too many requests in progress' : 'server busy';
        return next(
          new RateLimitError('RATE_LIMIT_EXCEEDED', `${reason}: retry later`, RETRY_AFTER_SECONDS, {
            limit: decision.reason === 'tenant_in_flight' ? 'in_flight' : 'overload',
            in_flight: decision.inFlight,
            max_in_flight: decision.limit,
            retry_after_ms: RETRY_AFTER_SECONDS * 1000,
          }),
        );
      }
      // `close` follows every response, finished or aborted: one listener releases both.
      res.on('close', decision.release);
      next();
    };
  }
}
