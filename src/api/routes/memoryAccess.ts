import type { Principal } from '../../auth/principal';
import { agentScope, type HeaderSource } from '../../auth/scope';

/** The OpenAPI tag of API.md § Memory. */
export const MEMORY_TAG = 'Memory';

/**
 * The agent a memory request is narrowed to: the credential's own agent (an agent-bound key,
 * which naming another gets 403 ISOLATION_VIOLATION), else the one named, else none (all agents).
 */
export function optionalAgent(
  p: Principal,
  req: HeaderSource,
  named: string | undefined,
): string | undefined {
  const asked = named ?? req.header('x-agent-id');
  return asked !== undefined || p.agentId !== undefined ? agentScope(p, req, named) : undefined;
}
