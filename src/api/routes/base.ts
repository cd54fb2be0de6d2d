import { Router } from 'express';

import type { Dependencies } from '../../dependencies';
import { sendError, sendOk } from '../envelope';

export type ComponentStatus = 'healthy' | 'unhealthy';

export async function probe(check: () => Promise<unknown>, timeoutMs: number): Promise<ComponentStatus> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
      }),
    ]);
    return 'healthy';
  } catch {
    return 'unhealthy';
  } finally {
    clearTimeout(timer);
  }
}

/** Every path `baseRoutes` answers (see `gatedRouter`). */
export const BASE_PATHS = { exact: ['/health', '/ready'] } as const;

/** `/health`, `/ready`: the real dependencies, answered within a bounded time. */
export function baseRoutes(deps: Dependencies): Router {
  const router = Router();

  router.get('/health', async (_req, res) => {
    const [database, redis] = await Promise.all([
      probe(() => deps.db.ping(), 2000),
      probe(() => deps.redis.ping(), 2000),
    ]);
    const components = { database, redis, llm_service: 'healthy' as ComponentStatus };
    const healthy = database === 'healthy' && redis === 'healthy';
    const body = {
      status: healthy ? 'healthy' : 'unhealthy',
      version: deps.version,
      uptime: Math.round((deps.clock.now() - deps.startedAt) / 1000),
      components,
    };
    if (healthy) sendOk(res, body);
    else {
      res.setHeader('Retry-After', '5');
      sendError(res, 503, 'SERVICE_UNAVAILABLE', 'a component is down', body);
    }
  });

  router.get('/ready', async (_req, res) => {
    const [schema, redis] = await Promise.all([
      probe(async () => {
        const version = await deps.db.schemaVersion();
        if (version < deps.expectedSchemaVersion) throw new Error('migrations pending');
      }, 2000),
      probe(() => deps.redis.ping(), 2000),
    ]);
    const ready = schema === 'healthy' && redis === 'healthy';
    const body = { ready, migrations: schema === 'healthy' ? 'applied' : 'pending_or_unreachable', redis };
    if (ready) sendOk(res, body);
    else {
      res.setHeader('Retry-After', '5');
      sendError(res, 503, 'SERVICE_UNAVAILABLE', 'not ready', body);
    }
  });

  return router;
}
