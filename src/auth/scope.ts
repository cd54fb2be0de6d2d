import { isIdentifier } from '../domain/isolationContext';
import { IsolationViolationError, ValidationError } from '../errors';
import type { Principal } from './principal';

/** Where request headers are read from: an Express request, or the headers an adapter passed on. */
export interface HeaderSource {
  header(name: string): string | undefined;
}

export interface TenantScope {
  tenantId: string;
  /** True when a default-tenant credential named no tenant: responses say `tenant_id: "default"`. */
  legacy: boolean;
}

/**
 * The tenant a request acts in. It always comes from the credential; `X-Tenant-ID` (or a
 * `tenant_id` in the body, query or path, passed as `named`) is honoured only for platform admins.
 * Anyone else naming a different tenant gets 403 ISOLATION_VIOLATION.
 */
export function tenantScope(
  principal: Principal,
  req: HeaderSource,
  ...named: (string | undefined)[]
): TenantScope {
  const header = req.header('x-tenant-id');
  const names = [header, ...named].filter((n): n is string => n !== undefined && n !== '');
  const distinct = [...new Set(names)];
  if (distinct.length > 1) throw new IsolationViolationError('the request names more than one tenant');
  const requested = distinct[0];
  if (requested !== undefined && !isIdentifier(requested)) {
    throw new ValidationError('invalid tenant id', [{ path: 'tenant_id', issue: 'not a valid identifier' }]);
  }
  if (principal.role === 'platform_admin') {
    if (requested === undefined) {
      throw new ValidationError('name the tenant', [
        { path: 'X-Tenant-ID', issue: 'required for platform admins' },
      ]);
    }
    return { tenantId: requested, legacy: false };
  }
  const own = principal.tenantId!;
  if (requested !== undefined && requested !== own) {
    throw new IsolationViolationError('the credential does not allow this tenant');
  }
  return { tenantId: own, legacy: requested === undefined && own === 'default' };
}

/**
 * The agent a request acts for: `X-Agent-ID` or a body `agent_id`, else the credential's agent,
 * else `default`. An agent-bound credential naming another agent gets 403 ISOLATION_VIOLATION.
 */
export function agentScope(principal: Principal, req: HeaderSource, named?: string): string {
  const header = req.header('x-agent-id');
  const names = [header, named].filter((n): n is string => n !== undefined && n !== '');
  const distinct = [...new Set(names)];
  if (distinct.length > 1) throw new IsolationViolationError('the request names more than one agent');
  const requested = distinct[0];
  if (requested !== undefined && !isIdentifier(requested)) {
    throw new ValidationError('invalid agent id', [{ path: 'agent_id', issue: 'not a valid identifier' }]);
  }
  if (principal.agentId !== undefined) {
    if (requested !== undefined && requested !== principal.agentId) {
      throw new IsolationViolationError('the credential is bound to another agent');
    }
    return principal.agentId;
  }
  return requested ?? 'default';
}
