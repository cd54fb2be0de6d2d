import { z } from 'zod';

import { ANY_ROLE } from '../../auth/principal';
import { countTenants } from '../../db/repositories/tenants';
import { route } from '../http/route';
import type { RouteContext } from './context';

/**
 * Platforms MaiHive knows by name: `qq` is what the OneBot adapter (NapCat, go-cqhttp) stamps on
 * its messages, `default` is the legacy single-tenant platform, and the others are the platforms
 * maim_message adapters commonly name. A message's `platform` may still be any identifier, and a
 * tenant's `allowed_platforms` narrows what it accepts; this list is informational.
 */
export const SUPPORTED_PLATFORMS = ['qq', 'discord', 'telegram', 'wechat', 'default'] as const;

/** `GET /system/info` (API.md § Base): what this installation is, for any authenticated caller. */
export function systemRoutes(ctx: RouteContext): void {
  const { router, registry, deps } = ctx;

  route(router, registry, {
    method: 'get',
    path: '/system/info',
    operationId: 'getSystemInfo',
    summary: 'Version, platforms and tenant count of this installation',
    tag: 'Base',
    auth: ANY_ROLE,
    response: z.object({
      version: z.string(),
      multi_tenant_enabled: z.literal(true),
      supported_platforms: z.array(z.string()),
      /** No tenant limit is configured in this version: always null. */
      max_tenants: z.number().nullable(),
      current_tenants: z.number(),
    }),
    handler: async () => {
      const current = await deps.db.withPlatform((db) => countTenants(db));
      return {
        data: {
          version: deps.version,
          multi_tenant_enabled: true as const,
          supported_platforms: [...SUPPORTED_PLATFORMS],
          max_tenants: null,
          current_tenants: current,
        },
      };
    },
  });
}
