import { Router } from 'express';

import { adaptersRoutes } from './adapters';
import { adminQueuesRoutes } from './adminQueues';
import { adminUiRoutes } from './adminUi';
import { agentsRoutes } from './agents';
import { authRoutes } from './auth';
import { chatRoutes } from './chat';
import { configurationRoutes } from './configuration';
import type { RouteContext } from './context';
import { emojiRoutes } from './emoji';
import { heartflowRoutes } from './heartflow';
import { memoryRoutes } from './memory';
import { pluginsRoutes } from './plugins';
import { statsRuntimeRoutes } from './statsRuntime';
import { statsUsageRoutes } from './statsUsage';
import { streamsRoutes } from './streams';
import { systemRoutes } from './system';
import { tenantsRoutes } from './tenants';

type RouteModule = (ctx: RouteContext) => void;

/** Every route module of `/api/v1`, in the order of API.md (the OpenAPI document's order). */
const MODULES: readonly RouteModule[] = [
  systemRoutes,
  authRoutes,
  tenantsRoutes,
  agentsRoutes,
  streamsRoutes,
  chatRoutes,
  memoryRoutes,
  emojiRoutes,
  pluginsRoutes,
  adaptersRoutes,
  configurationRoutes,
  heartflowRoutes,
  statsUsageRoutes,
  statsRuntimeRoutes,
  adminQueuesRoutes,
  adminUiRoutes,
];

/**
 * The message ingress, matched first. Express tries a request against every route mounted before
 * the one that takes it (a path match and a `next()` each, with their garbage), and sends are most
 * of the traffic: behind the ~45 routes before them they paid for that on every message.
 */
const HOT: readonly RouteModule[] = [chatRoutes, adaptersRoutes];

/**
 * Mounts every route module, each on a router of its own: documented in API.md's order, matched
 * with the hot modules first. No module mounts middleware outside its own paths (`router.use` only
 * under a path of its own, as the admin UI does), so the order decides nothing but the cost of
 * matching.
 */
export function mountRoutes(ctx: RouteContext): void {
  const routers = new Map<RouteModule, Router>();
  for (const module of MODULES) {
    const router = Router();
    module({ ...ctx, router });
    routers.set(module, router);
  }
  for (const module of HOT) ctx.router.use(routers.get(module)!);
  for (const module of MODULES) if (!HOT.includes(module)) ctx.router.use(routers.get(module)!);
}
