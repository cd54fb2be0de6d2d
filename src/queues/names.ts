import { decodeId, encodeId } from '../redis/keys';

/**
 * The one module that builds queue names. Every name carries the tenant (encoded as in
 * `src/redis/keys.ts`), so a queue is never shared between tenants, and a Redis Cluster hash tag,
 * so that one queue's keys live in one slot.
 */
export const JOB_KINDS = ['heartflow', 'memory', 'stats', 'delivery'] as const;
export type JobKind = (typeof JOB_KINDS)[number];

/** BullMQ queue name of a tenant's queue of one kind, e.g. `{acme}.heartflow`. */
export function tenantQueueName(tenantId: string, kind: JobKind): string {
  return `{${encodeId(tenantId)}}.${kind}`;
}

/** The inverse of `tenantQueueName`; undefined for names that are not MaiHive tenant queues. */
export function parseTenantQueueName(name: string): { tenantId: string; kind: JobKind } | undefined {
  const m = /^\{([^{}]+)\}\.([a-z]+)$/.exec(name);
  if (!m || !(JOB_KINDS as readonly string[]).includes(m[2]!)) return undefined;
  return { tenantId: decodeId(m[1]!), kind: m[2] as JobKind };
}
