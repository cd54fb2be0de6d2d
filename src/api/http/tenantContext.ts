import type { Request } from 'express';

import type { Principal } from '../../auth/principal';
import { type TenantScope, tenantScope } from '../../auth/scope';
import type { TenantMeta } from '../../auth/tenantDirectory';
import type { Dependencies } from '../../dependencies';
import { effectiveSettings, type TenantSettings } from '../../domain/tenantSettings';
import { NotFoundError } from '../../errors';

export interface ResolvedTenant extends TenantScope {
  meta: TenantMeta;
  /** Stored settings with every default filled in. */
  settings: TenantSettings;
}

/**
 * The tenant a request acts in (`tenantScope` rules) and what the directory knows of it. A tenant
 * member's tenant always exists (authentication checked it); a platform admin naming an unknown
 * tenant gets 404 TENANT_NOT_FOUND rather than a foreign-key failure further down.
 */
export async function resolveTenant(
  deps: Pick<Dependencies, 'tenants'>,
  principal: Principal,
  req: Request,
  ...named: (string | undefined)[]
): Promise<ResolvedTenant> {
  const scope = tenantScope(principal, req, ...named);
  const meta = await deps.tenants.get(scope.tenantId);
  if (!meta) throw new NotFoundError('TENANT_NOT_FOUND', `tenant ${scope.tenantId} not found`);
  return { ...scope, meta, settings: effectiveSettings(meta.settings) };
}
