/**
 * The statements the application sends that Citus would run on every shard, and why that is
 * acceptable. Keyed by the application function that sends the statement (`file:function`, as
 * `sqlCapture.ts` reports it). Every entry is explained in docs/citus.md § Multi-shard statements,
 * and test/integration/citusQueries.test.ts fails on a multi-shard statement whose sender is not
 * listed here, and on an entry its workload never saw sending one (extend the workload first).
 * To add one: a line here AND a row in that section of the doc.
 */
export const MULTI_SHARD_ALLOWED: Readonly<Record<string, string>> = {
  'src/db/repositories/tenants.ts:listTenants':
    'GET /tenants (platform admins): a page of all tenants with a search, one small row per tenant',
  'src/db/repositories/tenants.ts:countTenants': 'GET /system/info (platform admins): count(*) of tenants',
  'src/db/repositories/tenants.ts:allTenantIds':
    'start-up maintenance (sealing stored agent secrets): every tenant id, once per process start',
  'src/db/repositories/tenants.ts:recentTenantIds':
    "the queue dashboard's tenant list (platform admins): newest tenant ids, LIMIT n",
  'src/db/repositories/tenants.ts:tenantCounts':
    'GET /tenants counts: maihive_tenant_counts runs one tenant-pinned count per listed tenant (router queries, one page at a time)',
};
