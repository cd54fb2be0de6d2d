import type { NextFunction, Request, Response } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

import type { Dependencies } from '../../dependencies';

/**
 * Most tenants whose queues one scrape reads (one Redis round trip each). The active set holds
 * the tenants that had work recently, normally far fewer; past this, tenants are taken in id order
 * and `maihive_queue_tenants_active` still tells the whole size.
 */
export const MAX_SCRAPED_TENANTS = 1000;

const QUEUE_STATES = ['waiting', 'active', 'failed', 'delayed'] as const;

interface QueueSnapshot {
  ok: boolean;
  activeTenants: number;
  perTenant: { tenantId: string; counts: Record<(typeof QUEUE_STATES)[number], number> }[];
}

/** Where a request went, as a label: the route pattern, never the raw URL (bounded cardinality). */
function routeLabel(req: Request): string {
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

/**
 * The process's Prometheus registry: default process metrics, HTTP requests by route and status,
 * and per-tenant heartflow queue gauges read from Redis when scraped. One registry per app (not
 * prom-client's global one), so several apps in one process (tests) do not collide.
 */
export class ApiMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'method' | 'route' | 'status'>;
  private readonly duration: Histogram<'method' | 'route' | 'status'>;
  private pendingSnapshot: Promise<QueueSnapshot> | undefined;

  constructor(private readonly deps: Pick<Dependencies, 'queues' | 'redis' | 'keys' | 'version' | 'logger'>) {
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'maihive_build_info',
      help: 'Version of the running MaiHive (always 1)',
      labelNames: ['version'],
      registers: [this.registry],
    }).set({ version: deps.version }, 1);
    this.requests = new Counter({
      name: 'maihive_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status',
      labelNames: ['method', 'route', 'status'],
      registers: [this.registry],
    });
    this.duration = new Histogram({
      name: 'maihive_http_request_duration_seconds',
      help: 'Time from receiving a request to finishing its response, seconds',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [this.registry],
    });
    this.registerQueueGauges();
  }

  /** Counts and times every response; the route is known only once routing is done, at `finish`. */
  middleware() {
    return (req: Request, res: Response, next: NextFunction): void => {
      const start = process.hrtime.bigint();
      res.on('finish', () => {
        const labels = { method: req.method, route: routeLabel(req), status: String(res.statusCode) };
        this.requests.inc(labels);
        this.duration.observe(labels, Number(process.hrtime.bigint() - start) / 1e9);
      });
      next();
    };
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /**
   * One Redis read per scrape, shared by the three queue gauges: prom-client collects every metric
   * at once, so each gauge's `collect` awaits the same snapshot instead of reading its own.
   */
  private queueSnapshot(): Promise<QueueSnapshot> {
    this.pendingSnapshot ??= this.readQueues().finally(() => {
      this.pendingSnapshot = undefined;
    });
    return this.pendingSnapshot;
  }

  private async readQueues(): Promise<QueueSnapshot> {
    const { redis, keys, queues, logger } = this.deps;
    try {
      const members = await redis.smembers(keys.activeTenants('heartflow'));
      const scraped = members.sort().slice(0, MAX_SCRAPED_TENANTS);
      const counts = await Promise.all(
        scraped.map((tenantId) =>
          queues
            .queue(tenantId, 'heartflow')
            .getJobCounts('waiting', 'prioritized', 'active', 'failed', 'delayed'),
        ),
      );
      const perTenant = scraped.map((tenantId, i) => {
        const c = counts[i] ?? {};
        const n = (type: string) => c[type] ?? 0;
        return {
          tenantId,
          counts: {
            waiting: n('waiting') + n('prioritized'),
            active: n('active'),
            failed: n('failed'),
            delayed: n('delayed'),
          },
        };
      });
      return { ok: true, activeTenants: members.length, perTenant };
    } catch (err) {
      // The rest of the scrape (process, HTTP) is still worth having while Redis is away.
      logger.warn({ err }, 'queue metrics unavailable');
      return { ok: false, activeTenants: 0, perTenant: [] };
    }
  }

  private registerQueueGauges(): void {
    const up: Gauge = new Gauge({
      name: 'maihive_queue_metrics_up',
      help: '1 when this scrape read the queue counts from Redis, 0 when it failed',
      registers: [this.registry],
      collect: async () => {
        up.set((await this.queueSnapshot()).ok ? 1 : 0);
      },
    });
    const active: Gauge = new Gauge({
      name: 'maihive_queue_tenants_active',
      help: 'Tenants in the heartflow active set (tenants with recent work)',
      registers: [this.registry],
      collect: async () => {
        active.set((await this.queueSnapshot()).activeTenants);
      },
    });
    const jobs: Gauge<'tenant_id' | 'kind' | 'state'> = new Gauge({
      name: 'maihive_queue_jobs',
      help: 'Jobs per tenant queue and state, for tenants in the heartflow active set',
      labelNames: ['tenant_id', 'kind', 'state'],
      registers: [this.registry],
      collect: async () => {
        const snapshot = await this.queueSnapshot();
        // Tenants that left the active set must not keep their last values.
        jobs.reset();
        for (const { tenantId, counts } of snapshot.perTenant) {
          for (const state of QUEUE_STATES) {
            jobs.set({ tenant_id: tenantId, kind: 'heartflow', state }, counts[state]);
          }
        }
      },
    });
  }
}
