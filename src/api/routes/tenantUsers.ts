import { z } from 'zod';

import { hashPassword } from '../../auth/passwords';
import { countUsers, createUser, findUser, listUsers, type PublicUser } from '../../db/repositories/users';
import { createIsolationContext, IDENTIFIER_PATTERN } from '../../domain/isolationContext';
import { ConflictError, ValidationError } from '../../errors';
import { pageQuery, pageWindow, pagination, PaginationSchema } from '../http/pagination';
import { route } from '../http/route';
import { resolveTenant } from '../http/tenantContext';
import type { RouteContext } from './context';

const TAG = 'Tenants';
const MANAGERS = ['platform_admin', 'tenant_admin'] as const;

const Identifier = z.string().regex(IDENTIFIER_PATTERN, `must match ${IDENTIFIER_PATTERN.source}`);
const TenantParams = z.object({ tenant_id: Identifier });
const CreateUserBody = z.strictObject({
  username: Identifier,
  password: z.string().min(8, 'at least 8 characters').max(1024),
  role: z.enum(['tenant_admin', 'operator', 'agent', 'reader']),
});
const UserResponse = z.object({
  tenant_id: z.string(),
  username: z.string(),
  role: z.enum(['tenant_admin', 'operator', 'agent', 'reader']),
  status: z.enum(['active', 'disabled']),
  created_at: z.string(),
  last_login_at: z.string().nullable(),
});

/** Never the password hash: `PublicUser` does not have it. */
function userBody(u: PublicUser) {
  return {
    tenant_id: u.tenant_id,
    username: u.username,
    role: u.role,
    status: u.status,
    created_at: u.created_at.toISOString(),
    last_login_at: u.last_login_at?.toISOString() ?? null,
  };
}

/** POST/GET /tenants/{tenant_id}/users: platform admins, and tenant admins of that tenant. */
export function tenantUsersRoutes({ router, registry, deps }: RouteContext): void {
  route(router, registry, {
    method: 'post',
    path: '/tenants/:tenant_id/users',
    operationId: 'createTenantUser',
    headers: ['X-Tenant-ID'],
    errors: [409],
    summary: 'Create a user of the tenant',
    tag: TAG,
    auth: MANAGERS,
    status: 201,
    params: TenantParams,
    body: CreateUserBody,
    response: UserResponse,
    handler: async ({ params, body, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req, params.tenant_id);
      // An agent credential is bound to one agent, and users have no agent: agent credentials are
      // API keys (POST /auth/api-keys with role agent and agent_id).
      if (body.role === 'agent') {
        throw new ValidationError('invalid request body', [
          { path: 'role', issue: 'agent credentials are API keys bound to an agent (POST /auth/api-keys)' },
        ]);
      }
      const passwordHash = await hashPassword(body.password);
      const user = await deps.db.withTenant(createIsolationContext({ tenantId }), async (db) => {
        if (await findUser(db, body.username)) {
          throw new ConflictError(`user ${body.username} already exists`, {
            details: { username: body.username },
          });
        }
        return createUser(db, { username: body.username, passwordHash, role: body.role });
      });
      return { status: 201, data: userBody(user) };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/tenants/:tenant_id/users',
    operationId: 'listTenantUsers',
    headers: ['X-Tenant-ID'],
    summary: 'List the users of the tenant (never a password hash)',
    tag: TAG,
    auth: MANAGERS,
    params: TenantParams,
    query: z.object(pageQuery),
    response: z.object({ users: z.array(UserResponse), pagination: PaginationSchema }),
    handler: async ({ params, query, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req, params.tenant_id);
      const { rows, total } = await deps.db.withTenant(createIsolationContext({ tenantId }), async (db) => ({
        rows: (await listUsers(db, pageWindow(query))).rows,
        total: await countUsers(db),
      }));
      return { data: { users: rows.map(userBody), pagination: pagination(query, total) } };
    },
  });
}
