import type { Request } from 'express';
import { z } from 'zod';

import { verifyLogin } from '../../auth/login';
import { LoginThrottle } from '../../auth/loginThrottle';
import { ANY_ROLE, permissionsOf, type Principal, TENANT_WRITERS } from '../../auth/principal';
import { RefreshTokens, type Session } from '../../auth/refreshTokens';
import type { TenantMeta } from '../../auth/tenantDirectory';
import { makeOpaqueSecret } from '../../auth/tokens';
import { getAgent } from '../../db/repositories/agents';
import { createApiKey, listApiKeys, type PublicApiKey, revokeApiKey } from '../../db/repositories/apiKeys';
import { newId } from '../../domain/ids';
import { createIsolationContext, IDENTIFIER_PATTERN } from '../../domain/isolationContext';
import { ROLES } from '../../domain/roles';
import {
  type FieldIssue,
  IsolationViolationError,
  NotFoundError,
  UnauthorizedError,
  ValidationError,
} from '../../errors';
import { pageQuery, pageWindow, pagination, PaginationSchema } from '../http/pagination';
import { route } from '../http/route';
import { resolveTenant } from '../http/tenantContext';
import type { RouteContext } from './context';

const TAG = 'Auth';

const Identifier = z.string().regex(IDENTIFIER_PATTERN, `must match ${IDENTIFIER_PATTERN.source}`);
const TenantRoleSchema = z.enum(['tenant_admin', 'operator', 'agent', 'reader']);

const LoginBody = z.strictObject({
  /** Absent (or null): a platform admin logs in. */
  tenant_id: Identifier.nullish(),
  username: Identifier,
  password: z.string().min(1).max(1024),
});
const RefreshBody = z.strictObject({ refresh_token: z.string().min(1).max(1024) });
const CreateKeyBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  role: TenantRoleSchema,
  agent_id: Identifier.optional(),
  expires_at: z.iso.datetime({ offset: true }).optional(),
});
const PageQuery = z.object(pageQuery);
const KeyParams = z.object({ key_id: z.string().min(1).max(200) });

const TenantInfo = z.object({
  tenant_id: z.string().nullable(),
  name: z.string().nullable(),
  permissions: z.array(z.string()),
});
const SessionResponse = z
  .object({
    access_token: z.string(),
    refresh_token: z.string(),
    token_type: z.literal('Bearer'),
    expires_in: z.number().int(),
    refresh_expires_in: z.number().int(),
    tenant_info: TenantInfo,
    user: z.object({ username: z.string(), role: z.enum(ROLES) }),
  })
  .openapi('Session');
const ApiKeyResponse = z
  .object({
    key_id: z.string(),
    tenant_id: z.string(),
    name: z.string(),
    role: TenantRoleSchema,
    agent_id: z.string().nullable(),
    status: z.enum(['active', 'revoked', 'expired']),
    created_by: z.string().nullable(),
    created_at: z.string(),
    expires_at: z.string().nullable(),
    revoked_at: z.string().nullable(),
    last_used_at: z.string().nullable(),
  })
  .openapi('ApiKey');
const MeResponse = z.object({
  kind: z.enum(['user', 'platform_admin', 'api_key', 'legacy_anonymous']),
  subject: z.string(),
  username: z.string().nullable(),
  key_id: z.string().nullable(),
  role: z.enum(ROLES),
  tenant_id: z.string().nullable(),
  tenant: z.object({ tenant_id: z.string(), name: z.string(), status: z.string() }).nullable(),
  agent_id: z.string().nullable(),
  permissions: z.array(z.string()),
  expires_at: z.string().nullable(),
});

function sessionBody(session: Session, tenant: TenantMeta | undefined) {
  const { subject } = session;
  return {
    access_token: session.accessToken,
    refresh_token: session.refreshToken,
    token_type: 'Bearer' as const,
    expires_in: session.expiresIn,
    refresh_expires_in: session.refreshExpiresIn,
    // Platform admins have no tenant; the object keeps its shape so clients need not branch.
    tenant_info: {
      tenant_id: tenant?.tenantId ?? null,
      name: tenant?.name ?? null,
      permissions: permissionsOf(subject.role),
    },
    user: { username: subject.username, role: subject.role },
  };
}

function apiKeyBody(key: PublicApiKey, now: number) {
  const status =
    key.revoked_at !== null
      ? 'revoked'
      : key.expires_at !== null && key.expires_at.getTime() <= now
        ? 'expired'
        : 'active';
  return {
    key_id: key.key_id,
    tenant_id: key.tenant_id,
    name: key.name,
    role: key.role,
    agent_id: key.agent_id,
    status,
    created_by: key.created_by,
    created_at: key.created_at.toISOString(),
    expires_at: key.expires_at?.toISOString() ?? null,
    revoked_at: key.revoked_at?.toISOString() ?? null,
    last_used_at: key.last_used_at?.toISOString() ?? null,
  };
}

/** POST /auth/login, /auth/refresh, /auth/logout, GET /auth/me, and the API-key endpoints. */
export function authRoutes({ router, registry, deps }: RouteContext): void {
  const sessions = new RefreshTokens({
    db: deps.db,
    redis: deps.redis,
    keys: deps.keys,
    tokens: deps.tokens,
    tenants: deps.tenants,
    clock: deps.clock,
    refreshTtlSeconds: deps.config.refreshTokenTtlSeconds,
  });
  const loginThrottle = new LoginThrottle({
    redis: deps.redis,
    prefix: deps.keys.prefix,
    maxFailuresPerUser: deps.config.login.maxFailuresPerUser,
    maxFailuresPerIp: deps.config.login.maxFailuresPerIp,
    windowSeconds: deps.config.login.failureWindowSeconds,
  });

  /** The tenant whose keys are managed; a platform admin naming an unknown tenant gets 404. */
  const keyTenant = async (principal: Principal, req: Request) =>
    (await resolveTenant(deps, principal, req)).tenantId;

  route(router, registry, {
    method: 'post',
    path: '/auth/login',
    operationId: 'login',
    errors: [401, 429],
    summary: 'Log in with username and password (no tenant_id: platform admin); failures are throttled (429)',
    tag: TAG,
    auth: 'public',
    body: LoginBody,
    response: SessionResponse,
    handler: async ({ body, req }) => {
      const tenantId = body.tenant_id ?? undefined;
      // 429 for an account or address with too many recent failures, before any password check.
      const attempt = await loginThrottle.book({
        tenantId,
        username: body.username,
        ip: req.ip ?? req.socket.remoteAddress ?? 'unknown',
      });
      let verified: Awaited<ReturnType<typeof verifyLogin>>;
      try {
        verified = await verifyLogin(deps, { tenantId, username: body.username, password: body.password });
      } catch (err) {
        // Only a refused login counts as a failure; an outage (503) is not the caller's guess.
        if (!(err instanceof UnauthorizedError)) await attempt.giveBack().catch(() => undefined);
        throw err;
      }
      await attempt.giveBack().catch((err: unknown) => {
        deps.logger.warn({ err }, 'login attempt not given back');
      });
      const session = await sessions.startSession(verified.subject);
      return { data: sessionBody(session, verified.tenant) };
    },
  });

  route(router, registry, {
    method: 'post',
    path: '/auth/refresh',
    operationId: 'refreshToken',
    errors: [401],
    summary: 'Exchange a refresh token for a new pair (rotation; re-use revokes the family)',
    tag: TAG,
    auth: 'public',
    body: RefreshBody,
    response: SessionResponse,
    handler: async ({ body }) => {
      const session = await sessions.rotate(body.refresh_token);
      const tenantId = session.subject.tenantId;
      const tenant = tenantId === undefined ? undefined : await deps.tenants.get(tenantId);
      return { data: sessionBody(session, tenant) };
    },
  });

  route(router, registry, {
    method: 'post',
    path: '/auth/logout',
    operationId: 'logout',
    errors: [401],
    summary: 'Revoke the presented access token and its refresh-token family',
    tag: TAG,
    auth: ANY_ROLE,
    response: z.object({ logged_out: z.literal(true), refresh_family_revoked: z.boolean() }),
    handler: async ({ principal }) => {
      const p = principal;
      if (p.tokenId === undefined || p.expiresAt === undefined) {
        throw new ValidationError(
          'logout ends a token session; revoke API keys with DELETE /auth/api-keys/{key_id}',
          [{ path: 'Authorization', issue: 'a Bearer access token is required' }],
        );
      }
      const owner = p.role === 'platform_admin' ? undefined : p.tenantId;
      await sessions.revokeAccessToken(owner, p.tokenId, p.expiresAt);
      if (p.familyId !== undefined) await sessions.revokeFamily(owner, p.familyId);
      return { data: { logged_out: true, refresh_family_revoked: p.familyId !== undefined } };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/auth/me',
    operationId: 'getMe',
    summary: 'The caller: identity, role, tenant, agent and permissions',
    tag: TAG,
    auth: ANY_ROLE,
    response: MeResponse,
    handler: async ({ principal }) => {
      const p = principal;
      const tenant = p.tenantId === undefined ? undefined : await deps.tenants.get(p.tenantId);
      return {
        data: {
          kind: p.kind,
          subject: p.subject,
          username: p.kind === 'user' || p.kind === 'platform_admin' ? p.subject : null,
          key_id: p.kind === 'api_key' ? p.subject : null,
          role: p.role,
          tenant_id: p.tenantId ?? null,
          tenant: tenant ? { tenant_id: tenant.tenantId, name: tenant.name, status: tenant.status } : null,
          agent_id: p.agentId ?? null,
          permissions: permissionsOf(p.role),
          expires_at: p.expiresAt === undefined ? null : new Date(p.expiresAt * 1000).toISOString(),
        },
      };
    },
  });

  route(router, registry, {
    method: 'post',
    path: '/auth/api-keys',
    operationId: 'createApiKey',
    headers: ['X-Tenant-ID'],
    summary: 'Create an API key (the secret is returned once)',
    tag: TAG,
    auth: TENANT_WRITERS,
    status: 201,
    body: CreateKeyBody,
    response: ApiKeyResponse.extend({ api_key: z.string() }),
    handler: async ({ body, principal, req }) => {
      const p = principal;
      const tenantId = await keyTenant(p, req);
      // An agent-bound credential can only mint keys for its own agent.
      if (p.agentId !== undefined && body.agent_id !== undefined && body.agent_id !== p.agentId) {
        throw new IsolationViolationError('the credential is bound to another agent');
      }
      const agentId = body.agent_id ?? p.agentId;
      const issues: FieldIssue[] = [];
      if (body.role === 'agent' && agentId === undefined) {
        issues.push({ path: 'agent_id', issue: 'required for role agent' });
      }
      const now = deps.clock.now();
      const expiresAt = body.expires_at === undefined ? null : new Date(body.expires_at);
      if (expiresAt !== null && expiresAt.getTime() <= now) {
        issues.push({ path: 'expires_at', issue: 'must be in the future' });
      }
      if (issues.length > 0) throw new ValidationError('invalid request body', issues);

      const keyId = newId('key', now);
      const secret = makeOpaqueSecret('mhk', tenantId, keyId);
      const key = await deps.db.withTenant(createIsolationContext({ tenantId }), async (db) => {
        if (agentId !== undefined && !(await getAgent(db, agentId))) {
          throw new NotFoundError('AGENT_NOT_FOUND', 'agent not found', { agent_id: agentId });
        }
        return createApiKey(db, {
          keyId,
          name: body.name,
          role: body.role,
          agentId: agentId ?? null,
          keyHash: secret.hash,
          createdBy: p.subject,
          expiresAt,
        });
      });
      return { status: 201, data: { ...apiKeyBody(key, now), api_key: secret.value } };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/auth/api-keys',
    operationId: 'listApiKeys',
    headers: ['X-Tenant-ID'],
    summary: "List the tenant's API keys (never their secrets)",
    tag: TAG,
    auth: TENANT_WRITERS,
    query: PageQuery,
    response: z.object({
      api_keys: z.array(ApiKeyResponse),
      pagination: PaginationSchema,
    }),
    handler: async ({ query, principal, req }) => {
      const tenantId = await keyTenant(principal, req);
      const { rows, total } = await deps.db.withTenant(createIsolationContext({ tenantId }), (db) =>
        listApiKeys(db, pageWindow(query)),
      );
      const now = deps.clock.now();
      return {
        data: {
          api_keys: rows.map((k) => apiKeyBody(k, now)),
          pagination: pagination(query, total),
        },
      };
    },
  });

  route(router, registry, {
    method: 'delete',
    path: '/auth/api-keys/:key_id',
    operationId: 'revokeApiKey',
    headers: ['X-Tenant-ID'],
    summary: 'Revoke an API key (effective at the next request)',
    tag: TAG,
    auth: TENANT_WRITERS,
    params: KeyParams,
    response: ApiKeyResponse,
    handler: async ({ params, principal, req }) => {
      const tenantId = await keyTenant(principal, req);
      const key = await deps.db.withTenant(createIsolationContext({ tenantId }), (db) =>
        revokeApiKey(db, params.key_id),
      );
      if (!key) throw new NotFoundError('NOT_FOUND', 'api key not found');
      // Every process's cached copy stops working at once.
      await deps.apiKeys.revoked(tenantId, key.key_id);
      return { data: apiKeyBody(key, deps.clock.now()) };
    },
  });
}
