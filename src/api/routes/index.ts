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

/** Every route module of `/api/v1`, in the order of API.md. */
export function mountRoutes(ctx: RouteContext): void {
  systemRoutes(ctx);
  authRoutes(ctx);
  tenantsRoutes(ctx);
  agentsRoutes(ctx);
  streamsRoutes(ctx);
  chatRoutes(ctx);
  memoryRoutes(ctx);
  emojiRoutes(ctx);
  pluginsRoutes(ctx);
  adaptersRoutes(ctx);
  configurationRoutes(ctx);
  heartflowRoutes(ctx);
  statsUsageRoutes(ctx);
  statsRuntimeRoutes(ctx);
  adminQueuesRoutes(ctx);
  adminUiRoutes(ctx);
}
