import { performance } from 'node:perf_hooks';

import type { NextFunction, Request, Response } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

import type { Principal } from '../../auth/principal';
import type { Dependencies } from '../../dependencies';
import { SEP } from '../../telemetry/telemetryRecorder';
import { LATENCY_BOUNDS, renderClusterMetrics } from './clusterMetrics';
import { QueueGauges } from './queueGauges';

/** Where a request went, as a label: the route pattern, never the raw URL (bounded cardinality). */
export function routeLabel(req: Request): string {
  const matched: unknown = req.route;
  if (
    typeof matched === 'object' &&
    matched !== null &&
    'path' in matched &&
    typeof matched.path === 'string'
  ) {
    return matched.path;
  }
  return 'unmatched';
}

/** `2xx`, `4xx`, ...: the status as a label of five values. */
export function statusClass(status: number): string {
  return `${Math.floor(status / 100)}xx`;
}

const NON_COUNTERS_NAMED_TOTAL = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** The prom-client children and telemetry label of one method, route pattern and status class. */
interface Series {
  requests: { inc(): void };
  duration: { observe(seconds: number): void };
  /** `METHOD route\tstatus class`, the telemetry label. */
  telemetryLabel: string;
  statusClass: string;
}

type MetricsDeps = Pick<
  Dependencies,
  'queues' | 'redis' | 'keys' | 'version' | 'logger' | 'db' | 'telemetry' | 'config'
>;

/**
 * The process's Prometheus registry: default process metrics (event-loop delay included), HTTP
 * requests by method, route pattern and status class, the database pool, queue depths by kind and
 * state (read from Redis when scraped), and the installation-wide job, LLM and dispatcher series
 * the workers keep in Redis (`clusterMetrics.ts`). No label names a tenant, so the series stay
 * bounded with any number of tenants; `METRICS_TENANT_ALLOWLIST` adds per-tenant series for the
 * tenants it names only. One registry per app (not prom-client's global one), so several apps in
 * one process (tests) do not collide.
 */
export class ApiMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'method' | 'route' | 'status_class'>;
  private readonly duration: Histogram<'method' | 'route' | 'status_class'>;
  private readonly tenantRequests: Counter<'tenant_id' | 'status_class'>;
  private readonly allowlist: ReadonlySet<string>;
  private readonly series = new Map<string, Series>();

  constructor(private readonly deps: MetricsDeps) {
    this.allowlist = new Set(deps.config.metricsTenantAllowlist);
    collectDefaultMetrics({ register: this.registry });
    // Gauges named like counters (`promtool check metrics` flags them); `nodejs_active_handles`,
    // `nodejs_active_requests` and `nodejs_active_resources` by type say the same.
    for (const name of NON_COUNTERS_NAMED_TOTAL) this.registry.removeSingleMetric(name);
    new Gauge({
      name: 'maihive_build_info',
      help: 'Version of the running MaiHive (always 1)',
      labelNames: ['version'],
      registers: [this.registry],
    }).set({ version: deps.version }, 1);
    this.requests = new Counter({
      name: 'maihive_http_requests_total',
      help: 'HTTP requests answered by this process, by method, route pattern and status class',
      labelNames: ['method', 'route', 'status_class'],
      registers: [this.registry],
    });
    this.duration = new Histogram({
      name: 'maihive_http_request_duration_seconds',
      help: 'Time from receiving a request to finishing its response, seconds',
      labelNames: ['method', 'route', 'status_class'],
      buckets: LATENCY_BOUNDS,
      registers: [this.registry],
    });
    this.tenantRequests = new Counter({
      name: 'maihive_tenant_http_requests_total',
      help: 'HTTP requests of the tenants named in METRICS_TENANT_ALLOWLIST, by status class',
      labelNames: ['tenant_id', 'status_class'],
      registers: [this.registry],
    });
    this.registerPoolGauges();
    new QueueGauges(deps, this.registry, this.allowlist);
  }

  /**
   * Counts and times one finished response, here and in the shared telemetry (`/stats/api`, per
   * tenant too); called once routing is done (the route pattern is known), with the time from
   * receiving the request to finishing the response, ms.
   */
  record(req: Request, res: Response, ms: number): void {
    const series = this.seriesOf(req.method, routeLabel(req), statusClass(res.statusCode));
    series.requests.inc();
    series.duration.observe(ms / 1000);
    const tenantId = (res.locals.principal as Principal | undefined)?.tenantId;
    this.deps.telemetry.observe('api', series.telemetryLabel, ms, tenantId);
    if (tenantId !== undefined && this.allowlist.has(tenantId)) {
      this.tenantRequests.inc({ tenant_id: tenantId, status_class: series.statusClass });
    }
  }

  /**
   * A middleware counting and timing every response (`record` at `finish`), for apps that do not
   * call `record` themselves.
   */
  middleware() {
    return (req: Request, res: Response, next: NextFunction): void => {
      const start = performance.now();
      res.on('finish', () => this.record(req, res, performance.now() - start));
      next();
    };
  }

  /**
   * The label children of one method, route and status class, made once: prom-client hashes a
   * label object on every `inc`/`observe`, its children do not. Bounded like the labels (route
   * patterns, not URLs).
   */
  private seriesOf(method: string, route: string, cls: string): Series {
    const key = `${method} ${route}${SEP}${cls}`;
    let series = this.series.get(key);
    if (!series) {
      const labels = { method, route, status_class: cls };
      series = {
        requests: this.requests.labels(labels),
        duration: this.duration.labels(labels),
        telemetryLabel: key,
        statusClass: cls,
      };
      this.series.set(key, series);
    }
    return series;
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    const own = await this.registry.metrics();
    let cluster = '';
    try {
      cluster = await renderClusterMetrics(this.deps.redis, this.deps.keys);
    } catch (err) {
      // The process's own series are still worth having while Redis is away.
      this.deps.logger.warn({ err }, 'installation-wide metrics unavailable');
    }
    return { contentType: this.registry.contentType, body: own + cluster };
  }

  private registerPoolGauges(): void {
    const { db } = this.deps;
    const connections: Gauge<'state'> = new Gauge({
      name: 'maihive_db_pool_connections',
      help: "This process's PostgreSQL pool connections by state (idle, busy)",
      labelNames: ['state'],
      registers: [this.registry],
      collect: () => {
        connections.set({ state: 'idle' }, db.pool.idleCount);
        connections.set({ state: 'busy' }, db.pool.totalCount - db.pool.idleCount);
      },
    });
    const waiting: Gauge = new Gauge({
      name: 'maihive_db_pool_waiting',
      help: 'Units of work of this process waiting for a PostgreSQL connection',
      registers: [this.registry],
      collect: () => {
        waiting.set(db.checkoutSnapshot().waiting);
      },
    });
  }
}
