import { Gauge, type Registry } from 'prom-client';

import type { Dependencies } from '../../dependencies';
import { JOB_KINDS, type JobKind } from '../../queues/names';

/** Tenant queues whose counts are read at once (one Redis script call each). */
const READ_CONCURRENCY = 200;

export const QUEUE_STATES = ['waiting', 'active', 'failed', 'delayed'] as const;
type QueueState = (typeof QUEUE_STATES)[number];
type Counts = Record<QueueState, number>;

export interface QueueSnapshot {
  ok: boolean;
  /** Tenants in each kind's active set. */
  activeTenants: Record<JobKind, number>;
  /** Jobs per kind and state, summed over the tenants with work or failed jobs. */
  totals: Record<JobKind, Counts>;
  /** The allowlisted tenants' own counts. */
  perTenant: { tenantId: string; kind: JobKind; counts: Counts }[];
}

const zero = (): Counts => ({ waiting: 0, active: 0, failed: 0, delayed: 0 });

/**
 * Queue depths of every tenant, summed per kind and state, for `/metrics` and `/monitor/status`.
 * Read are the tenants of each kind's active set (those with waiting, delayed or running jobs)
 * and of its failed set (those with failed jobs: they leave the active set once nothing else is
 * left), one script call per tenant queue, so the cost follows the tenants with work or failures,
 * not all tenants. Allowlisted tenants are read even when in neither.
 */
export async function readQueueSnapshot(
  deps: Pick<Dependencies, 'redis' | 'keys' | 'queues'>,
  allowlist: ReadonlySet<string> = new Set(),
): Promise<QueueSnapshot> {
  const { redis, keys, queues } = deps;
  const snapshot: QueueSnapshot = { ...emptySnapshot(), ok: true };
  await Promise.all(
    JOB_KINDS.map(async (kind) => {
      const [active, failed] = await Promise.all([
        redis.smembers(keys.activeTenants(kind)),
        redis.smembers(keys.failedTenants(kind)),
      ]);
      snapshot.activeTenants[kind] = active.length;
      const scraped = [...new Set([...active, ...failed, ...allowlist])];
      for (let i = 0; i < scraped.length; i += READ_CONCURRENCY) {
        await Promise.all(
          scraped.slice(i, i + READ_CONCURRENCY).map(async (tenantId) => {
            const c = await queues
              .queue(tenantId, kind)
              .getJobCounts('waiting', 'prioritized', 'active', 'failed', 'delayed');
            const n = (type: string) => c[type] ?? 0;
            const counts: Counts = {
              waiting: n('waiting') + n('prioritized'),
              active: n('active'),
              failed: n('failed'),
              delayed: n('delayed'),
            };
            for (const s of QUEUE_STATES) snapshot.totals[kind][s] += counts[s];
            if (allowlist.has(tenantId)) snapshot.perTenant.push({ tenantId, kind, counts });
          }),
        );
      }
    }),
  );
  return snapshot;
}

/** The queue gauges of `/metrics`, sharing one snapshot per scrape. */
export class QueueGauges {
  private pending: Promise<QueueSnapshot> | undefined;

  constructor(
    private readonly deps: Pick<Dependencies, 'redis' | 'keys' | 'queues' | 'logger'>,
    registry: Registry,
    private readonly allowlist: ReadonlySet<string>,
  ) {
    const up: Gauge = new Gauge({
      name: 'maihive_queue_metrics_up',
      help: '1 when this scrape read the queue counts from Redis, 0 when it failed',
      registers: [registry],
      collect: async () => {
        up.set((await this.snapshot()).ok ? 1 : 0);
      },
    });
    const active: Gauge<'kind'> = new Gauge({
      name: 'maihive_queue_tenants_active',
      help: 'Tenants in the active set of each job kind (tenants with recent work)',
      labelNames: ['kind'],
      registers: [registry],
      collect: async () => {
        const s = await this.snapshot();
        for (const kind of JOB_KINDS) active.set({ kind }, s.activeTenants[kind]);
      },
    });
    const jobs: Gauge<'kind' | 'state'> = new Gauge({
      name: 'maihive_queue_jobs',
      help: 'Jobs by kind and state, summed over the tenants with work or failed jobs',
      labelNames: ['kind', 'state'],
      registers: [registry],
      collect: async () => {
        const s = await this.snapshot();
        for (const kind of JOB_KINDS)
          for (const state of QUEUE_STATES) jobs.set({ kind, state }, s.totals[kind][state]);
      },
    });
    const tenantJobs: Gauge<'tenant_id' | 'kind' | 'state'> = new Gauge({
      name: 'maihive_tenant_queue_jobs',
      help: 'Jobs by kind and state of the tenants named in METRICS_TENANT_ALLOWLIST',
      labelNames: ['tenant_id', 'kind', 'state'],
      registers: [registry],
      collect: async () => {
        const s = await this.snapshot();
        tenantJobs.reset();
        for (const { tenantId, kind, counts } of s.perTenant) {
          for (const state of QUEUE_STATES)
            tenantJobs.set({ tenant_id: tenantId, kind, state }, counts[state]);
        }
      },
    });
  }

  /** One Redis read per scrape, shared by the gauges (prom-client collects them all at once). */
  private snapshot(): Promise<QueueSnapshot> {
    this.pending ??= readQueueSnapshot(this.deps, this.allowlist)
      .catch((err: unknown) => {
        this.deps.logger.warn({ err }, 'queue metrics unavailable');
        return emptySnapshot();
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }
}

function emptySnapshot(): QueueSnapshot {
  return {
    ok: false,
    activeTenants: Object.fromEntries(JOB_KINDS.map((k) => [k, 0])) as Record<JobKind, number>,
    totals: Object.fromEntries(JOB_KINDS.map((k) => [k, zero()])) as Record<JobKind, Counts>,
    perTenant: [],
  };
}
