import { adaptersRoutes } from './adapters';
import { adminQueuesRoutes } from './adminQueues';
import { adminUiRoutes } from './adminUi';
import { agentsRoutes } from './agents';
import { authRoutes } from './auth';
import { chatRoutes } from './chat';
import type { RouteContext } from './context';
import { statsRuntimeRoutes } from './statsRuntime';
import { statsUsageRoutes } from './statsUsage';
import { streamsRoutes } from './streams';
import { systemRoutes } from './system';
import { tenantsRoutes } from './tenants';

/** Every route module of `/api/v1`, in the order of API.md. */
export function mountRoutes(ctx: RouteContext): void {
  systemRoutes(ctx);
  authRoutes(ctx);
  tenantsRoutes(ctx);
  agentsRoutes(ctx);
  streamsRoutes(ctx);
  chatRoutes(ctx);
  adaptersRoutes(ctx);
  statsUsageRoutes(ctx);
  statsRuntimeRoutes(ctx);
  adminQueuesRoutes(ctx);
  adminUiRoutes(ctx);
}
