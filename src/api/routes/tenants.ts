import { z } from 'zod';

import { TENANT_MEMBERS } from '../../auth/principal';
import { tenantScope } from '../../auth/scope';
import {
  getTenant,
  getTenantForUpdate,
  listTenants,
  tenantCounts,
  updateTenant,
} from '../../db/repositories/tenants';
import { tenantStatistics } from '../../db/repositories/tenantStatistics';
import { createIsolationContext, IDENTIFIER_PATTERN } from '../../domain/isolationContext';
import { effectiveSettings, TenantSettings } from '../../domain/tenantSettings';
import { ForbiddenError, NotFoundError, ValidationError } from '../../errors';
import { applyTenantSchedule, createTenantWithAdmin } from '../../tenants/tenantCreation';
import { deleteTenantEverywhere } from '../../tenants/tenantDeletion';
import { pageQuery, pageWindow, pagination, PaginationSchema } from '../http/pagination';
import { route, zodToValidationError } from '../http/route';
import { resolveTenant } from '../http/tenantContext';
import type { RouteContext } from './context';
import { tenantUsersRoutes } from './tenantUsers';

const TAG = 'Tenants';

const Identifier = z.string().regex(IDENTIFIER_PATTERN, `must match ${IDENTIFIER_PATTERN.source}`);
const Name = z.string().trim().min(1).max(200);
const Description = z.string().max(2000).nullable();
const Password = z.string().min(8, 'at least 8 characters').max(1024);

const TenantParams = z.object({ tenant_id: Identifier });
const ListQuery = z.object({
  ...pageQuery,
  /** Part of the tenant id or name, case-insensitive. */
  search: z.string().trim().max(128).optional(),
});
const CreateBody = z.strictObject({
  tenant_id: Identifier,
  name: Name,
  description: Description.optional(),
  settings: TenantSettings.optional(),
  /** A first tenant admin, created in the same request. */
  admin: z.strictObject({ username: Identifier, password: Password }).optional(),
});
const UpdateBody = z.strictObject({
  name: Name.optional(),
  description: Description.optional(),
  status: z.enum(['active', 'suspended']).optional(),
  /** Merged into the stored settings (nested objects too); `null` resets a key to its default. */
  settings: z.record(z.string(), z.unknown()).optional(),
});

const TenantResponse = z.object({
  tenant_id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  status: z.enum(['active', 'suspended']),
  settings: TenantSettings,
  created_at: z.string(),
  updated_at: z.string(),
});
const ListedTenant = TenantResponse.extend({ agent_count: z.number(), chat_stream_count: z.number() });
const StatisticsResponse = z.object({
  tenant_id: z.string(),
  overview: z.object({
    agents_count: z.number(),
    chat_streams_count: z.number(),
    total_messages: z.number(),
    total_memory_items: z.number(),
  }),
  usage: z.object({
    llm_requests_today: z.number(),
    llm_tokens_this_month: z.number(),
    api_calls_today: z.number(),
  }),
  activity: z.object({
    active_chats_24h: z.number(),
    active_agents_24h: z.number(),
    last_activity: z.string().nullable(),
  }),
  generated_at: z.string(),
});

interface TenantLike {
  tenant_id: string;
  name: string;
  description: string | null;
  status: 'active' | 'suspended';
  settings: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

function tenantBody(row: TenantLike) {
  return {
    tenant_id: row.tenant_id,
    name: row.name,
    description: row.description,
    status: row.status,
    settings: effectiveSettings(row.settings),
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `patch` over `base`: nested objects merge, arrays and scalars replace, `null` removes the key. */
function mergeSettings(
  base: Record<string, unknown>,
  patch: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    const current = out[key];
    if (value === null) delete out[key];
    else if (isPlainObject(value) && isPlainObject(current)) out[key] = mergeSettings(current, value);
    else out[key] = value;
  }
  return out;
}

/** The merged settings, validated; errors name their field under `settings.`. */
function validatedSettings(merged: Record<string, unknown>): TenantSettings {
  const result = TenantSettings.safeParse(merged);
  if (result.success) return result.data;
  const fields = zodToValidationError(result.error, 'body').fields.map((f) => ({
    path: f.path === 'body' ? 'settings' : `settings.${f.path}`,
    issue: f.issue,
  }));
  throw new ValidationError('invalid request body', fields);
}

/** The eight tenant endpoints of API.md § Tenants (users in `tenantUsers.ts`). */
export function tenantsRoutes(ctx: RouteContext): void {
  const { router, registry, deps } = ctx;

  /**
   * Puts a tenant's scheduling caps on its queues (BullMQ enforces them across processes) and
   * tells the dispatchers to re-read its weight, as `PUT /admin/tenants/{id}/scheduling` does.
   */
  const applySchedule = (tenantId: string, stored: unknown) => applyTenantSchedule(deps, tenantId, stored);

  route(router, registry, {
    method: 'get',
    path: '/tenants',
    operationId: 'listTenants',
    summary: 'List tenants with their agent and chat-stream counts',
    tag: TAG,
    auth: ['platform_admin'],
    query: ListQuery,
    response: z.object({ tenants: z.array(ListedTenant), pagination: PaginationSchema }),
    handler: async ({ query }) => {
      const { rows, total, counts } = await deps.db.withPlatform(async (db) => {
        const page = await listTenants(db, { ...pageWindow(query), search: query.search || undefined });
        return {
          ...page,
          counts: await tenantCounts(
            db,
            page.rows.map((r) => r.tenant_id),
          ),
        };
      });
      return {
        data: {
          tenants: rows.map((row) => ({
            ...tenantBody(row),
            agent_count: counts.get(row.tenant_id)?.agentCount ?? 0,
            chat_stream_count: counts.get(row.tenant_id)?.chatStreamCount ?? 0,
          })),
          pagination: pagination(query, total),
        },
      };
    },
  });

  route(router, registry, {
    method: 'post',
    path: '/tenants',
    operationId: 'createTenant',
    errors: [409],
    summary: 'Create a tenant (with its default agent, and optionally a first tenant admin)',
    tag: TAG,
    auth: ['platform_admin'],
    status: 201,
    body: CreateBody,
    response: TenantResponse.extend({
      admin: z.object({ username: z.string(), role: z.literal('tenant_admin') }).nullable(),
    }),
    handler: async ({ body }) => {
      const tenant = await createTenantWithAdmin(deps, {
        tenantId: body.tenant_id,
        name: body.name,
        description: body.description ?? null,
        settings: body.settings ?? {},
        admin: body.admin,
      });
      return {
        status: 201,
        data: {
          ...tenantBody(tenant),
          admin: body.admin ? { username: body.admin.username, role: 'tenant_admin' as const } : null,
        },
      };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/tenants/:tenant_id',
    operationId: 'getTenant',
    headers: ['X-Tenant-ID'],
    summary: 'A tenant: platform admins any, members their own',
    tag: TAG,
    auth: TENANT_MEMBERS,
    params: TenantParams,
    response: TenantResponse,
    handler: async ({ params, principal, req }) => {
      // The path names a tenant explicitly, so a member naming another tenant gets 403
      // ISOLATION_VIOLATION (API.md § Identity: "the request names another tenant"), like
      // X-Tenant-ID; the 404 rule is for objects looked up by their own id inside one's tenant.
      const { tenantId } = tenantScope(principal, req, params.tenant_id);
      const row = await deps.db.withTenant(createIsolationContext({ tenantId }), (db) =>
        getTenant(db, tenantId),
      );
      if (!row) throw new NotFoundError('TENANT_NOT_FOUND', `tenant ${tenantId} not found`);
      return { data: tenantBody(row) };
    },
  });

  route(router, registry, {
    method: 'put',
    path: '/tenants/:tenant_id',
    operationId: 'updateTenant',
    headers: ['X-Tenant-ID'],
    summary: 'Update a tenant (tenant admins: name and description only)',
    tag: TAG,
    auth: ['platform_admin', 'tenant_admin'],
    params: TenantParams,
    body: UpdateBody,
    response: TenantResponse,
    handler: async ({ params, body, principal, req }) => {
      const p = principal;
      const { tenantId } = tenantScope(p, req, params.tenant_id);
      if (p.role !== 'platform_admin') {
        const denied = (['settings', 'status'] as const).filter((k) => body[k] !== undefined);
        if (denied.length > 0) {
          throw new ForbiddenError('tenant admins may change name and description only', {
            details: { fields: denied },
          });
        }
      }
      const row = await deps.db.withPlatform(async (db) => {
        const current = await getTenantForUpdate(db, tenantId);
        if (!current) throw new NotFoundError('TENANT_NOT_FOUND', `tenant ${tenantId} not found`);
        const settings =
          body.settings === undefined
            ? undefined
            : validatedSettings(mergeSettings(effectiveSettings(current.settings), body.settings));
        return updateTenant(db, tenantId, {
          ...(body.name === undefined ? {} : { name: body.name }),
          ...(body.description === undefined ? {} : { description: body.description }),
          ...(body.status === undefined ? {} : { status: body.status }),
          ...(settings === undefined ? {} : { settings }),
        });
      });
      // Status and settings are read through the directory on every request, in every process.
      await deps.tenants.invalidate(tenantId);
      if (body.settings !== undefined || body.status !== undefined)
        await applySchedule(tenantId, row!.settings);
      return { data: tenantBody(row!) };
    },
  });

  route(router, registry, {
    method: 'delete',
    path: '/tenants/:tenant_id',
    operationId: 'deleteTenant',
    headers: ['X-Tenant-ID'],
    summary: 'Delete a tenant: every row, queue and Redis key of it (not the default tenant)',
    tag: TAG,
    auth: ['platform_admin'],
    params: TenantParams,
    response: z.object({ tenant_id: z.string(), deleted: z.literal(true), redis_keys_removed: z.number() }),
    handler: async ({ params, principal, req }) => {
      const { tenantId } = tenantScope(principal, req, params.tenant_id);
      // The legacy single-tenant install runs as tenant `default`; without it legacy credentials
      // and LEGACY_ANONYMOUS would have nowhere to go. A bad target, hence 400 rather than 409.
      if (tenantId === 'default') {
        throw new ValidationError('the default tenant cannot be deleted', [
          { path: 'tenant_id', issue: 'the default tenant cannot be deleted' },
        ]);
      }
      const removed = await deleteTenantEverywhere(deps, tenantId);
      if (!removed) throw new NotFoundError('TENANT_NOT_FOUND', `tenant ${tenantId} not found`);
      return { data: { tenant_id: tenantId, deleted: true as const, redis_keys_removed: removed.redisKeys } };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/tenants/:tenant_id/statistics',
    operationId: 'getTenantStatistics',
    headers: ['X-Tenant-ID'],
    summary: "A tenant's counts, LLM usage and recent activity",
    tag: TAG,
    auth: TENANT_MEMBERS,
    params: TenantParams,
    response: StatisticsResponse,
    handler: async ({ params, principal, req }) => {
      const p = principal;
      const { tenantId } = await resolveTenant(deps, p, req, params.tenant_id);
      const now = new Date(deps.clock.now());
      const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
      const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
      const since24h = new Date(now.getTime() - 24 * 3600 * 1000);
      // An agent-bound credential sees its own agent's slice (RLS narrows every count to it).
      const isolation = createIsolationContext({ tenantId, agentId: p.agentId });
      const s = await deps.db.withTenant(isolation, (db) =>
        tenantStatistics(db, { now, dayStart, monthStart, since24h }),
      );
      return {
        data: {
          tenant_id: tenantId,
          overview: {
            agents_count: s.agentsCount,
            chat_streams_count: s.chatStreamsCount,
            total_messages: s.totalMessages,
            total_memory_items: s.totalMemoryItems,
          },
          usage: {
            llm_requests_today: s.llmRequestsToday,
            llm_tokens_this_month: s.llmTokensThisMonth,
            // API calls are not counted anywhere yet (no per-request statistics); 0 until they are.
            api_calls_today: 0,
          },
          activity: {
            active_chats_24h: s.activeChats24h,
            active_agents_24h: s.activeAgents24h,
            last_activity: s.lastActivity?.toISOString() ?? null,
          },
          generated_at: now.toISOString(),
        },
      };
    },
  });

  tenantUsersRoutes(ctx);
}
