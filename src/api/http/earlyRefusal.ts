import type { NextFunction, Request, Response } from 'express';

import type { Principal } from '../../auth/principal';
import { RateLimitError } from '../../errors';
import { CredentialRefusals } from '../../ingress/credentialRefusals';

/** What an early refusal leaves in `res.locals`: the tenant the refused credential belongs to. */
interface EarlyRefusalLocals {
  refusedTenant?: string | undefined;
}

/**
 * The tenant a refused request counts for: its principal's once authenticated, else (an early
 * refusal, before authentication) the tenant its credential was last refused for.
 */
export function refusedTenantOf(res: Response): string | undefined {
  return (
    (res.locals.principal as Principal | undefined)?.tenantId ??
    (res.locals as EarlyRefusalLocals).refusedTenant
  );
}

/** The header a send authenticates with (API key first, as the authenticator reads them). */
function credentialHeader(req: Request): string | undefined {
  const key = req.headers['x-api-key'];
  if (typeof key === 'string' && key !== '') return `k:${key}`;
  const auth = req.headers.authorization;
  return typeof auth === 'string' && auth !== '' ? `a:${auth}` : undefined;
}

/**
 * Sends turned away before authentication and before their body is read, when this process
 * refused the same credential's last send for rate and its bucket has not refilled yet
 * (`CredentialRefusals`): the same 429 `RATE_LIMIT_EXCEEDED` and `Retry-After` the admission would
 * answer, through the same error handler (and its jitter). Mount `refuse` before authentication on
 * the send route, and `remember` as an error middleware after the routes.
 */
export function earlyRateRefusal(now: () => number = Date.now, refusals = new CredentialRefusals()) {
  return {
    refusals,
    refuse: (req: Request, res: Response, next: NextFunction): void => {
      // Marks the send for `remember`; the digest is worked out only when something is remembered.
      res.locals.earlyRefusal = true;
      if (refusals.size === 0) return next();
      const header = credentialHeader(req);
      if (header === undefined) return next();
      const known = refusals.refusal(CredentialRefusals.fingerprint(header), now());
      if (!known) return next();
      (res.locals as EarlyRefusalLocals).refusedTenant = known.tenantId;
      next(
        new RateLimitError(
          'RATE_LIMIT_EXCEEDED',
          `${known.limit} rate limit exceeded`,
          Math.max(1, Math.ceil(known.waitMs / 1000)),
          { limit: known.limit, rate_per_second: known.ratePerSecond, retry_after_ms: known.waitMs },
        ),
      );
    },
    remember: (err: unknown, req: Request, res: Response, next: NextFunction): void => {
      const header = res.locals.earlyRefusal === true ? credentialHeader(req) : undefined;
      if (header !== undefined && err instanceof RateLimitError && err.code === 'RATE_LIMIT_EXCEEDED') {
        const details = err.details ?? {};
        const limit = details.limit;
        const waitMs = Number(details.retry_after_ms);
        if ((limit === 'tenant' || limit === 'credential') && waitMs > 0) {
          const rate = details.rate_per_second;
          refusals.remember(CredentialRefusals.fingerprint(header), now(), {
            limit,
            waitMs,
            ratePerSecond: typeof rate === 'number' ? rate : undefined,
            // An early refusal passes here too, unauthenticated: it keeps the tenant it was refused for.
            tenantId: refusedTenantOf(res),
          });
        }
      }
      next(err);
    },
  };
}
