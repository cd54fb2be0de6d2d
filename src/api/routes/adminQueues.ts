import { z } from 'zod';

import { tenantScope } from '../../auth/scope';
import { getTenantForUpdate, listTenants, updateTenant } from '../../db/repositories/tenants';
import { IDENTIFIER_PATTERN } from '../../domain/isolationContext';
import type { Role } from '../../domain/roles';
import { effectiveSettings, SchedulingSettings, type TenantSettings } from '../../domain/tenantSettings';
import { NotFoundError } from '../../errors';
import { JOB_KINDS, type JobKind } from '../../queues/names';
import {
  CLEANABLE_STATES,
  cleanJobs,
  LISTABLE_STATES,
  listJobs,
  pauseTenantQueues,
  resumeTenantQueues,
  retryFailedJobs,
  retryJob,
  tenantQueueState,
} from '../../queues/queueAdmin';
import { applyQueueCaps, publishScheduleChange, readQueueCaps } from '../../queues/scheduleChanges';
import { pageQuery, pageWindow, pagination, PaginationSchema } from '../http/pagination';
import { route } from '../http/route';
import { resolveTenant } from '../http/tenantContext';
import type { RouteContext } from './context';

const TAG = 'Queue administration';

/**
 * Who manages queues: platform admins any tenant's, tenant admins and operators their own (read,
 * pause/resume, retry, clean). Scheduling (weight, caps) is platform-admin only: it decides a
 * tenant's share of the workers against every other tenant, so a tenant must not raise its own.
 */
const QUEUE_MANAGERS: readonly Role[] = ['platform_admin', 'tenant_admin', 'operator'];

const Identifier = z.string().regex(IDENTIFIER_PATTERN, `must match ${IDENTIFIER_PATTERN.source}`);
const Kind = z.enum(JOB_KINDS);

const TenantParams = z.object({ tenant_id: Identifier });
const JobParams = z.object({ tenant_id: Identifier, job_id: Identifier });
const ListQuery = z.object({
  ...pageQuery,
  /** Part of the tenant id or name, case-insensitive (platform admins). */
  search: z.string().trim().max(128).optional(),
});
const JobsQuery = z.object({
  ...pageQuery,
  /** Default `failed`, what operators look for first. `waiting` includes prioritized jobs. */
  state: z.enum(LISTABLE_STATES).default('failed'),
  /** Job kind. Default `heartflow`. */
  kind: Kind.default('heartflow'),
});
const KindQuery = z.object({ kind: Kind.default('heartflow') });
/** Absent `kind` = every kind of the tenant's queues. */
const AnyKindQuery = z.object({ kind: Kind.optional() });
const CleanQuery = z.object({
  state: z.enum(CLEANABLE_STATES),
  /** Only jobs finished at least this long ago, ms. Default 0 (all). */
  older_than_ms: z.coerce.number().int().min(0).default(0),
  kind: Kind.optional(),
});

const Counts = {
  waiting: z.number(),
  active: z.number(),
  delayed: z.number(),
  failed: z.number(),
  completed: z.number(),
  paused: z.boolean(),
};
const RateLimit = z.object({ max: z.number(), duration_ms: z.number() }).nullable();
const TenantQueueResponse = z.object({
  tenant_id: z.string(),
  status: z.enum(['active', 'suspended']),
  ...Counts,
  weight: z.number(),
  max_concurrency: z.number(),
  rate_limit: RateLimit,
  max_queue_size: z.number(),
  kinds: z.record(z.string(), z.object(Counts)),
});
const Caps = z.object({ global_concurrency: z.number().nullable(), global_rate_limit: RateLimit });
const JobResponse = z.object({
  job_id: z.string(),
  kind: z.string(),
  name: z.string(),
  state: z.string(),
  attempts_made: z.number(),
  max_attempts: z.number(),
  failed_reason: z.string().nullable(),
  created_at: z.string(),
  processed_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  data: z.unknown(),
});
const PerKind = z.record(z.string(), z.number());

export function adminQueuesRoutes(ctx: RouteContext): void {
  const { router, registry, deps } = ctx;
  const kindsOf = (kind: JobKind | undefined): readonly JobKind[] => (kind ? [kind] : JOB_KINDS);
  const total = (perKind: Record<string, number>) => Object.values(perKind).reduce((a, b) => a + b, 0);

  async function tenantQueue(tenantId: string, status: 'active' | 'suspended', settings: TenantSettings) {
    const state = await tenantQueueState(deps.queues, tenantId);
    const s = settings.scheduling;
    return {
      tenant_id: tenantId,
      status,
      waiting: state.waiting,
      active: state.active,
      delayed: state.delayed,
      failed: state.failed,
      completed: state.completed,
      paused: state.paused,
      weight: s.weight,
      max_concurrency: s.max_concurrency,
      rate_limit: s.rate_limit ?? null,
      max_queue_size: s.max_queue_size,
      kinds: state.kinds,
    };
  }

  route(router, registry, {
    method: 'get',
    path: '/admin/queues',
    operationId: 'listQueues',
    headers: ['X-Tenant-ID'],
    summary: "Every tenant's queue counts and scheduling (tenant admins and operators: their own)",
    tag: TAG,
    auth: QUEUE_MANAGERS,
    query: ListQuery,
    response: z.object({ queues: z.array(TenantQueueResponse), pagination: PaginationSchema }),
    handler: async ({ query, principal, req }) => {
      const p = principal;
      // A platform admin naming a tenant (X-Tenant-ID) and every tenant member see one tenant.
      if (p.role !== 'platform_admin' || req.header('x-tenant-id')) {
        const { tenantId, meta, settings } = await resolveTenant(deps, p, req);
        const item = await tenantQueue(tenantId, meta.status, settings);
        return { data: { queues: [item], pagination: pagination({ page: 1, limit: query.limit }, 1) } };
      }
      const page = await deps.db.withPlatform((db) =>
        listTenants(db, { ...pageWindow(query), search: query.search || undefined }),
      );
      const queues = await Promise.all(
        page.rows.map((row) => tenantQueue(row.tenant_id, row.status, effectiveSettings(row.settings))),
      );
      return { data: { queues, pagination: pagination(query, page.total) } };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/admin/queues/:tenant_id',
    operationId: 'getTenantQueues',
    headers: ['X-Tenant-ID'],
    summary: "A tenant's queue counts per kind, scheduling, and the caps BullMQ enforces",
    tag: TAG,
    auth: QUEUE_MANAGERS,
    params: TenantParams,
    response: TenantQueueResponse.extend({ caps: Caps }),
    handler: async ({ params, principal, req }) => {
      const { tenantId, meta, settings } = await resolveTenant(deps, principal, req, params.tenant_id);
      const [item, caps] = await Promise.all([
        tenantQueue(tenantId, meta.status, settings),
        readQueueCaps(deps.queues, tenantId),
      ]);
      return { data: { ...item, caps } };
    },
  });

  route(router, registry, {
    method: 'post',
    path: '/admin/queues/:tenant_id/pause',
    operationId: 'pauseTenantQueues',
    headers: ['X-Tenant-ID'],
    summary: 'Pause every queue of a tenant: running jobs finish, no new job starts',
    tag: TAG,
    auth: QUEUE_MANAGERS,
    params: TenantParams,
    response: z.object({ tenant_id: z.string(), paused: z.literal(true) }),
    handler: async ({ params, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req, params.tenant_id);
      await pauseTenantQueues(deps.queues, tenantId);
      return { data: { tenant_id: tenantId, paused: true as const } };
    },
  });

  route(router, registry, {
    method: 'post',
    path: '/admin/queues/:tenant_id/resume',
    operationId: 'resumeTenantQueues',
    headers: ['X-Tenant-ID'],
    summary: 'Resume every queue of a tenant and wake the workers',
    tag: TAG,
    auth: QUEUE_MANAGERS,
    params: TenantParams,
    response: z.object({ tenant_id: z.string(), paused: z.literal(false) }),
    handler: async ({ params, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req, params.tenant_id);
      await resumeTenantQueues(deps.queues, tenantId);
      return { data: { tenant_id: tenantId, paused: false as const } };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/admin/queues/:tenant_id/jobs',
    operationId: 'listQueueJobs',
    headers: ['X-Tenant-ID'],
    summary: "A page of a tenant's jobs in one state (newest first)",
    tag: TAG,
    auth: QUEUE_MANAGERS,
    params: TenantParams,
    query: JobsQuery,
    response: z.object({
      tenant_id: z.string(),
      kind: z.string(),
      state: z.string(),
      jobs: z.array(JobResponse),
      pagination: PaginationSchema,
    }),
    handler: async ({ params, query, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req, params.tenant_id);
      const { jobs, total: count } = await listJobs(
        deps.queues,
        tenantId,
        query.kind,
        query.state,
        pageWindow(query),
      );
      return {
        data: {
          tenant_id: tenantId,
          kind: query.kind,
          state: query.state,
          jobs,
          pagination: pagination(query, count),
        },
      };
    },
  });

  route(router, registry, {
    method: 'post',
    path: '/admin/queues/:tenant_id/jobs/:job_id/retry',
    operationId: 'retryQueueJob',
    headers: ['X-Tenant-ID'],
    errors: [409],
    summary: 'Retry one failed job with fresh attempts (409 when it is not failed)',
    tag: TAG,
    auth: QUEUE_MANAGERS,
    params: JobParams,
    query: KindQuery,
    response: z.object({ tenant_id: z.string(), job: JobResponse }),
    handler: async ({ params, query, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req, params.tenant_id);
      const job = await retryJob(deps.queues, tenantId, query.kind, params.job_id);
      return { data: { tenant_id: tenantId, job } };
    },
  });

  route(router, registry, {
    method: 'post',
    path: '/admin/queues/:tenant_id/retry-failed',
    operationId: 'retryFailedJobs',
    headers: ['X-Tenant-ID'],
    summary: 'Retry every failed job of a tenant (of one kind, or all kinds)',
    tag: TAG,
    auth: QUEUE_MANAGERS,
    params: TenantParams,
    query: AnyKindQuery,
    response: z.object({ tenant_id: z.string(), retried: z.number(), kinds: PerKind }),
    handler: async ({ params, query, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req, params.tenant_id);
      const kinds = await retryFailedJobs(deps.queues, tenantId, kindsOf(query.kind));
      return { data: { tenant_id: tenantId, retried: total(kinds), kinds } };
    },
  });

  route(router, registry, {
    method: 'delete',
    path: '/admin/queues/:tenant_id/jobs',
    operationId: 'cleanQueueJobs',
    headers: ['X-Tenant-ID'],
    summary: 'Remove completed or failed jobs older than `older_than_ms`',
    tag: TAG,
    auth: QUEUE_MANAGERS,
    params: TenantParams,
    query: CleanQuery,
    response: z.object({ tenant_id: z.string(), state: z.string(), removed: z.number(), kinds: PerKind }),
    handler: async ({ params, query, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req, params.tenant_id);
      const kinds = await cleanJobs(
        deps.queues,
        tenantId,
        kindsOf(query.kind),
        query.state,
        query.older_than_ms,
      );
      return { data: { tenant_id: tenantId, state: query.state, removed: total(kinds), kinds } };
    },
  });

  route(router, registry, {
    method: 'put',
    path: '/admin/tenants/:tenant_id/scheduling',
    operationId: 'updateTenantScheduling',
    headers: ['X-Tenant-ID'],
    summary: "Replace a tenant's scheduling settings and apply them to its queues (platform admins)",
    tag: TAG,
    auth: ['platform_admin'],
    params: TenantParams,
    body: SchedulingSettings,
    response: z.object({ tenant_id: z.string(), scheduling: SchedulingSettings, caps: Caps }),
    handler: async ({ params, body, principal, req }) => {
      const { tenantId } = tenantScope(principal, req, params.tenant_id);
      // PUT replaces: fields left out take their defaults, an absent rate_limit removes the limit.
      const row = await deps.db.withPlatform(async (db) => {
        const current = await getTenantForUpdate(db, tenantId);
        if (!current) throw new NotFoundError('TENANT_NOT_FOUND', `tenant ${tenantId} not found`);
        return updateTenant(db, tenantId, { settings: { ...current.settings, scheduling: body } });
      });
      await deps.tenants.invalidate(tenantId);
      // Stored first, then applied: a failure here leaves the settings right and a retried PUT
      // converges; dispatchers hear of the change last, when there is something to re-read.
      const caps = await applyQueueCaps(deps.queues, tenantId, body);
      await publishScheduleChange(deps.redis, deps.keys, tenantId);
      return {
        data: { tenant_id: tenantId, scheduling: effectiveSettings(row!.settings).scheduling, caps },
      };
    },
  });
}
