import { statfs } from 'node:fs/promises';

import type { Request } from 'express';
import { z } from 'zod';

import type { Principal } from '../../auth/principal';
import { TENANT_MEMBERS } from '../../auth/principal';
import { bucketWindow, PERIOD_PATTERN, periodMs } from '../../domain/statsPeriods';
import { JOB_KINDS } from '../../queues/names';
import { liveProcesses, type ProcessReport } from '../../telemetry/processBeat';
import {
  type LabelFigures,
  MAX_TELEMETRY_PERIOD_MS,
  readSeries,
  telemetryWindow,
} from '../../telemetry/telemetryReader';
import { llmHealth, summariseEndpoints, summariseKinds } from '../../telemetry/telemetrySummaries';
import { readQueueSnapshot } from '../http/queueGauges';
import { route } from '../http/route';
import { resolveTenant } from '../http/tenantContext';
import { probe } from './base';
import type { RouteContext } from './context';
import { STATS_TAG } from './statsUsage';

const Period = (fallback: string) =>
  z
    .string()
    .regex(PERIOD_PATTERN, 'must be <n>m, <n>h or <n>d, e.g. 24h')
    .refine((p) => (periodMs(p) ?? 0) <= MAX_TELEMETRY_PERIOD_MS, { message: 'must be at most 90d' })
    .default(fallback);

const Latency = z.object({
  p50: z.number().nullable(),
  p95: z.number().nullable(),
  p99: z.number().nullable(),
});
const Endpoint = z.object({
  endpoint: z.string(),
  requests: z.number(),
  errors: z.number(),
  client_errors: z.number(),
  error_rate_percent: z.number(),
  latency_ms: Latency.extend({ avg: z.number().nullable() }),
});
const Scope = {
  scope: z.enum(['installation', 'tenant']),
  tenant_id: z.string().nullable(),
  period: z.string(),
  from: z.string(),
  to: z.string(),
};

/** Recent window `/monitor/status` reports performance over. */
const STATUS_WINDOW_MS = 5 * 60_000;

/**
 * Whose figures a request reads: a platform admin the installation's, or one tenant's when it
 * names one (`X-Tenant-ID`); anyone else their own tenant's.
 */
async function telemetryScope(
  deps: RouteContext['deps'],
  principal: Principal,
  req: Request,
): Promise<string | null> {
  if (principal.role === 'platform_admin' && !req.header('x-tenant-id')) return null;
  return (await resolveTenant(deps, principal, req)).tenantId;
}

/** Whose figures an answer holds and over which window. */
function scopeBody(tenantId: string | null, period: string, w: { from: number; to: number }) {
  return {
    scope: tenantId === null ? ('installation' as const) : ('tenant' as const),
    tenant_id: tenantId,
    period,
    from: new Date(w.from).toISOString(),
    to: new Date(w.to).toISOString(),
  };
}

/** Disk use of the file system holding the data directory (or the working directory), %. */
async function diskUsedPercent(dir: string): Promise<number | null> {
  for (const path of [dir, '.']) {
    try {
      const s = await statfs(path);
      return Math.round((1 - s.bavail / s.blocks) * 1000) / 10;
    } catch {
      // not there: try the next
    }
  }
  return null;
}

function resources(processes: readonly ProcessReport[]) {
  const hosts = new Map<string, ProcessReport>();
  for (const p of processes) hosts.set(p.host, p);
  const cpus = [...hosts.values()].reduce((n, p) => n + p.host_cpus, 0);
  const cpu = processes.reduce((n, p) => n + p.cpu_percent, 0);
  const mem = [...hosts.values()].map((p) => p.host_memory_used_percent);
  return {
    cpu_usage_percent: cpus === 0 ? 0 : Math.round((cpu / cpus) * 10) / 10,
    memory_usage_percent: mem.length === 0 ? 0 : Math.max(...mem),
    rss_bytes: processes.reduce((n, p) => n + p.rss_bytes, 0),
    event_loop_delay_p99_ms: processes.reduce((n, p) => Math.max(n, p.event_loop_delay_p99_ms), 0),
  };
}

/**
 * `GET /stats/api`, `GET /stats/performance` and `GET /monitor/status` (API.md § Monitoring and
 * statistics): every API and worker process records into the shared telemetry in Redis, so any
 * process answers for all of them. Percentiles come from the merged histogram bins of the period.
 */
export function statsRuntimeRoutes(ctx: RouteContext): void {
  const { router, registry, deps } = ctx;

  route(router, registry, {
    method: 'get',
    path: '/stats/api',
    operationId: 'getApiStatistics',
    headers: ['X-Tenant-ID'],
    summary: 'Requests, error rate and latency p50/p95/p99 per route (the installation for platform admins)',
    tag: STATS_TAG,
    auth: TENANT_MEMBERS,
    query: z.strictObject({
      /** One route: `/chat/send` (any method) or `POST /chat/send`. */
      endpoint: z.string().min(1).max(300).optional(),
      period: Period('24h'),
    }),
    response: z.object({ ...Scope, totals: Endpoint, endpoints: z.array(Endpoint) }),
    handler: async ({ query, principal, req }) => {
      const tenantId = await telemetryScope(deps, principal, req);
      const w = telemetryWindow(deps.clock.now(), periodMs(query.period)!);
      const series = await readSeries(deps.redis, deps.keys, tenantId, 'api', w);
      return {
        data: { ...scopeBody(tenantId, query.period, w), ...summariseEndpoints(series, query.endpoint) },
      };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/stats/performance',
    operationId: 'getQueuePerformance',
    headers: ['X-Tenant-ID'],
    summary: 'Queue wait and processing time p50/p95/p99 and jobs per second, per job kind',
    tag: STATS_TAG,
    auth: TENANT_MEMBERS,
    query: z.strictObject({ period: Period('1h') }),
    response: z.object({
      ...Scope,
      kinds: z.array(
        z.object({
          kind: z.string(),
          jobs: z.number(),
          failed: z.number(),
          jobs_per_second: z.number(),
          queue_wait_ms: Latency,
          processing_ms: Latency,
        }),
      ),
    }),
    handler: async ({ query, principal, req }) => {
      const tenantId = await telemetryScope(deps, principal, req);
      const now = deps.clock.now();
      const w = telemetryWindow(now, periodMs(query.period)!);
      const series = await readSeries(deps.redis, deps.keys, tenantId, 'job', w);
      return {
        data: {
          ...scopeBody(tenantId, query.period, w),
          kinds: summariseKinds(series, (now - w.from) / 1000),
        },
      };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/monitor/status',
    operationId: 'getMonitorStatus',
    summary: 'Health, performance, resources, services and queues of every live API and worker process',
    tag: STATS_TAG,
    auth: ['platform_admin'],
    response: z.object({
      system_health: z.enum(['healthy', 'degraded', 'unhealthy']),
      uptime_seconds: z.number(),
      performance: z.object({
        avg_response_time_ms: z.number(),
        requests_per_second: z.number(),
        error_rate_percent: z.number(),
      }),
      resources: z.object({
        cpu_usage_percent: z.number(),
        memory_usage_percent: z.number(),
        disk_usage_percent: z.number().nullable(),
        rss_bytes: z.number(),
        event_loop_delay_p99_ms: z.number(),
      }),
      services: z.object({
        database: z.enum(['healthy', 'unhealthy']),
        redis: z.enum(['healthy', 'unhealthy']),
        llm_service: z.enum(['healthy', 'degraded', 'unknown']),
      }),
      queues: z.object({ waiting: z.number(), active: z.number(), failed: z.number(), delayed: z.number() }),
      processes: z.array(
        z.object({
          process_id: z.string(),
          roles: z.array(z.string()),
          host: z.string(),
          pid: z.number(),
          uptime_seconds: z.number(),
          cpu_percent: z.number(),
          rss_bytes: z.number(),
          event_loop_delay_p99_ms: z.number(),
          reported_at: z.string(),
        }),
      ),
    }),
    handler: async () => {
      const now = deps.clock.now();
      const recent = bucketWindow(now, STATUS_WINDOW_MS, 'minute');
      const [database, redis] = await Promise.all([
        probe(() => deps.db.ping(), 2000),
        probe(() => deps.redis.ping(), 2000),
      ]);
      const redisUp = redis === 'healthy';
      // This process's own report is always current; the others come from their heartbeats.
      const own = deps.processBeat.report();
      const others = redisUp ? await liveProcesses(deps.redis, deps.keys, now) : [];
      const processes = [own, ...others.filter((p) => p.process_id !== own.process_id)];
      const none = new Map<string, LabelFigures>();
      const api = redisUp ? await readSeries(deps.redis, deps.keys, null, 'api', recent) : none;
      const llm = redisUp ? await readSeries(deps.redis, deps.keys, null, 'llm', recent) : none;
      const queues = redisUp ? (await readQueueSnapshot(deps)).totals : undefined;
      const { totals } = summariseEndpoints(api);
      const seconds = Math.max(1, (now - recent.from) / 1000);
      const llmService = llmHealth(llm);
      const sum = (state: 'waiting' | 'active' | 'failed' | 'delayed') =>
        queues ? JOB_KINDS.reduce((n, kind) => n + queues[kind][state], 0) : 0;
      const down = database !== 'healthy' || !redisUp;
      const degraded =
        llmService === 'degraded' ||
        totals.error_rate_percent > 5 ||
        !processes.some((p) => p.roles.includes('worker'));
      return {
        data: {
          system_health: down
            ? ('unhealthy' as const)
            : degraded
              ? ('degraded' as const)
              : ('healthy' as const),
          uptime_seconds: Math.max(...processes.map((p) => p.uptime_seconds)),
          performance: {
            avg_response_time_ms: totals.latency_ms.avg ?? 0,
            requests_per_second: Math.round((totals.requests / seconds) * 100) / 100,
            error_rate_percent: totals.error_rate_percent,
          },
          resources: {
            ...resources(processes),
            disk_usage_percent: await diskUsedPercent(deps.config.dataDir),
          },
          services: { database, redis, llm_service: llmService },
          queues: {
            waiting: sum('waiting'),
            active: sum('active'),
            failed: sum('failed'),
            delayed: sum('delayed'),
          },
          processes: processes.map((p) => ({
            process_id: p.process_id,
            roles: p.roles,
            host: p.host,
            pid: p.pid,
            uptime_seconds: p.uptime_seconds,
            cpu_percent: p.cpu_percent,
            rss_bytes: p.rss_bytes,
            event_loop_delay_p99_ms: p.event_loop_delay_p99_ms,
            reported_at: p.reported_at,
          })),
        },
      };
    },
  });
}
