import { z } from 'zod';

import { TENANT_MEMBERS } from '../../auth/principal';
import {
  featuresOfPeriod,
  TENANT_SORTS,
  usageByTenant,
  type UsageFigures,
  usageOfPeriod,
} from '../../db/repositories/usageRollups';
import { createIsolationContext, IDENTIFIER_PATTERN } from '../../domain/isolationContext';
import { type BucketWindow, bucketWindow, PERIOD_PATTERN, periodMs } from '../../domain/statsPeriods';
import { ValidationError } from '../../errors';
import { pageQuery, pageWindow, pagination, PaginationSchema } from '../http/pagination';
import { route } from '../http/route';
import { resolveTenant } from '../http/tenantContext';
import type { RouteContext } from './context';

export const STATS_TAG = 'Statistics';

const DAY_MS = 86_400_000;
/** Periods of `/stats/usage` and `/stats/tenants`: 1 hour to 366 days. */
const MAX_USAGE_PERIOD_MS = 366 * DAY_MS;

const Period = (fallback: string) =>
  z
    .string()
    .regex(PERIOD_PATTERN, 'must be <n>m, <n>h or <n>d, e.g. 30d')
    .refine((p) => (periodMs(p) ?? 0) >= 3_600_000 && (periodMs(p) ?? 0) <= MAX_USAGE_PERIOD_MS, {
      message: 'must be from 1h to 366d',
    })
    .default(fallback);

const UsageQuery = z.strictObject({
  period: Period('30d'),
  group_by: z.enum(['day', 'hour']).default('day'),
  /** Only this agent's figures. */
  agent_id: z.string().regex(IDENTIFIER_PATTERN).optional(),
});

const TenantsQuery = z.strictObject({
  ...pageQuery,
  period: Period('7d'),
  sort: z.enum(Object.keys(TENANT_SORTS) as [keyof typeof TENANT_SORTS]).default('cost'),
  order: z.enum(['asc', 'desc']).default('desc'),
});

const Figures = z.object({
  messages_in: z.number(),
  replies: z.number(),
  no_replies: z.number(),
  failures: z.number(),
  llm_requests: z.number(),
  tokens_in: z.number(),
  tokens_out: z.number(),
  cost: z.number(),
});

const ZERO: UsageFigures = {
  messagesIn: 0,
  replies: 0,
  noReplies: 0,
  failures: 0,
  llmRequests: 0,
  promptTokens: 0,
  completionTokens: 0,
  cost: 0,
};

/** Sums of money are kept to the 6 decimals `usage_stats.cost` stores. */
const money = (v: number) => Math.round(v * 1e6) / 1e6;

function figuresBody(f: UsageFigures) {
  return {
    messages_in: f.messagesIn,
    replies: f.replies,
    no_replies: f.noReplies,
    failures: f.failures,
    llm_requests: f.llmRequests,
    tokens_in: f.promptTokens,
    tokens_out: f.completionTokens,
    cost: money(f.cost),
  };
}

function sum(all: readonly UsageFigures[]): UsageFigures {
  const out = { ...ZERO };
  for (const f of all) for (const k of Object.keys(out) as (keyof UsageFigures)[]) out[k] += f[k];
  return out;
}

/** The window of a period in buckets of `groupBy`; hours only within their retention. */
function usageWindow(nowMs: number, period: string, groupBy: 'day' | 'hour', hourDays: number): BucketWindow {
  const length = periodMs(period)!;
  if (groupBy === 'hour' && length > hourDays * DAY_MS) {
    throw new ValidationError('invalid request query', [
      {
        path: 'period',
        issue: `group_by=hour keeps ${hourDays} days (STATS_HOUR_RETENTION_DAYS); use group_by=day`,
      },
    ]);
  }
  return bucketWindow(nowMs, length, groupBy);
}

/**
 * `GET /stats/usage` and `GET /stats/tenants` (API.md § Monitoring and statistics): usage and cost
 * from the hour and day buckets the stats jobs keep, never from the source tables.
 */
export function statsUsageRoutes(ctx: RouteContext): void {
  const { router, registry, deps } = ctx;

  route(router, registry, {
    method: 'get',
    path: '/stats/usage',
    operationId: 'getUsageStatistics',
    headers: ['X-Tenant-ID'],
    summary:
      "The caller's tenant's messages, replies, tokens, LLM requests and cost per bucket, agent and feature",
    tag: STATS_TAG,
    auth: TENANT_MEMBERS,
    query: UsageQuery,
    response: z.object({
      tenant_id: z.string(),
      period: z.string(),
      group_by: z.enum(['day', 'hour']),
      from: z.string(),
      to: z.string(),
      totals: Figures,
      buckets: z.array(Figures.extend({ bucket_start: z.string() })),
      by_agent: z.array(Figures.extend({ agent_id: z.string() })),
      by_feature: z.array(
        z.object({
          feature: z.enum(['reply', 'planner', 'memory', 'emoji', 'other']),
          llm_requests: z.number(),
          tokens_in: z.number(),
          tokens_out: z.number(),
          cost: z.number(),
        }),
      ),
    }),
    handler: async ({ query, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      const w = usageWindow(
        deps.clock.now(),
        query.period,
        query.group_by,
        deps.config.statsRetention.hourDays,
      );
      const period = {
        granularity: query.group_by,
        from: new Date(w.from),
        to: new Date(w.to),
        agentId: query.agent_id,
      };
      // An agent-bound credential sees its own agent's figures (RLS narrows every row to it).
      const isolation = createIsolationContext({ tenantId, agentId: principal.agentId });
      const { usage, features } = await deps.db.withTenant(isolation, async (db) => ({
        usage: await usageOfPeriod(db, period),
        features: await featuresOfPeriod(db, period),
      }));
      const byStart = new Map(usage.buckets.map((b) => [b.bucketStart.getTime(), b]));
      return {
        data: {
          tenant_id: tenantId,
          period: query.period,
          group_by: query.group_by,
          from: new Date(w.from).toISOString(),
          to: new Date(w.to).toISOString(),
          totals: figuresBody(sum(usage.buckets)),
          buckets: w.starts.map((start) => ({
            bucket_start: new Date(start).toISOString(),
            ...figuresBody(byStart.get(start) ?? ZERO),
          })),
          by_agent: usage.agents.map((a) => ({ agent_id: a.agentId, ...figuresBody(a) })),
          by_feature: features.map((f) => ({
            feature: f.feature,
            llm_requests: f.llmRequests,
            tokens_in: f.promptTokens,
            tokens_out: f.completionTokens,
            cost: money(f.cost),
          })),
        },
      };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/stats/tenants',
    operationId: 'getTenantUsageStatistics',
    summary: "Every tenant's usage and cost over a period, sorted and paginated (platform admins)",
    tag: STATS_TAG,
    auth: ['platform_admin'],
    query: TenantsQuery,
    response: z.object({
      period: z.string(),
      from: z.string(),
      to: z.string(),
      sort: z.string(),
      order: z.enum(['asc', 'desc']),
      tenants: z.array(Figures.extend({ tenant_id: z.string(), name: z.string() })),
      pagination: PaginationSchema,
    }),
    handler: async ({ query }) => {
      // Up to two days in hours, longer periods in whole UTC days (today included).
      const length = periodMs(query.period)!;
      const w = bucketWindow(deps.clock.now(), length, length <= 2 * DAY_MS ? 'hour' : 'day');
      const { rows, total } = await deps.db.withPlatform((db) =>
        usageByTenant(db, {
          granularity: w.size === 'hour' ? 'hour' : 'day',
          from: new Date(w.from),
          to: new Date(w.to),
          sort: query.sort,
          order: query.order,
          ...pageWindow(query),
        }),
      );
      return {
        data: {
          period: query.period,
          from: new Date(w.from).toISOString(),
          to: new Date(w.to).toISOString(),
          sort: query.sort,
          order: query.order,
          tenants: rows.map((r) => ({ tenant_id: r.tenantId, name: r.name, ...figuresBody(r) })),
          pagination: pagination(query, total),
        },
      };
    },
  });
}
