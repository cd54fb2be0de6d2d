import { Router } from 'express';

import type { Dependencies } from '../../dependencies';
import { PlatformAdminGate } from '../auth/platformAdmin';
import type { ApiMetrics } from '../http/metrics';

/** Every path `metricsRoutes` answers (see `gatedRouter`). */
export const METRICS_PATHS = { exact: ['/metrics'] } as const;

/**
 * `GET /metrics` (API.md § Base): Prometheus text for `Authorization: Bearer <METRICS_TOKEN>` or a
 * platform admin's credentials. Mounted before the authenticator, which would take the static
 * token for a malformed JWT; errors still leave through the error envelope.
 */
export function metricsRoutes(deps: Dependencies, metrics: ApiMetrics): Router {
  const router = Router();
  const gate = new PlatformAdminGate(deps);

  router.get('/metrics', (req, res, next) => {
    const run = async () => {
      const bearer = /^Bearer\s+(\S+)$/i.exec(req.header('authorization') ?? '')?.[1];
      if (bearer === undefined || !gate.isMetricsToken(bearer)) await gate.fromRequest(req);
      const { contentType, body } = await metrics.render();
      res.setHeader('Content-Type', contentType);
      res.setHeader('Cache-Control', 'no-store');
      res.send(body);
    };
    run().catch(next);
  });

  return router;
}
