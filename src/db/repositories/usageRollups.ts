import type { PlatformDb, TenantDb } from '../database';
import type { UsageFigures } from './usageStats';

/**
 * The usage buckets beyond one recompute (`usageStats.ts`): LLM figures per feature, day buckets
 * summed from hours, the purge of old minutes and hours, and the reads `GET /stats/*` answer from.
 */

/** `llm_usage.request_type` → the feature it is reported under. */
const FEATURE_OF_REQUEST = `CASE request_type WHEN 'replyer' THEN 'reply' WHEN 'planner' THEN 'planner'
  WHEN 'memory' THEN 'memory' WHEN 'summary' THEN 'memory' WHEN 'emoji' THEN 'emoji' ELSE 'other' END`;

export const FEATURES = ['reply', 'planner', 'memory', 'emoji', 'other'] as const;
export type Feature = (typeof FEATURES)[number];

/** Rewrites one bucket's per-feature LLM rows from `llm_usage` (calls of `[start, end)`). */
export async function recomputeFeatureBucket(
  db: TenantDb,
  granularity: 'minute' | 'hour',
  start: Date,
  end: Date,
): Promise<void> {
  const tenantId = db.ctx.tenantId;
  await db.query(
    `DELETE FROM usage_feature_stats WHERE tenant_id = $1 AND granularity = $2 AND bucket_start = $3`,
    [tenantId, granularity, start],
  );
  await db.query(
    `INSERT INTO usage_feature_stats (tenant_id, granularity, bucket_start, agent_id, feature, llm_requests,
                                      prompt_tokens, completion_tokens, cost)
     SELECT $1, $2, $3, agent_id, ${FEATURE_OF_REQUEST}, count(*), sum(prompt_tokens), sum(completion_tokens),
            sum(cost)
     FROM llm_usage
     WHERE tenant_id = $1 AND created_at >= $3 AND created_at < $4
     GROUP BY 4, 5`,
    [tenantId, granularity, start, end],
  );
}

const DAY_MS = 86_400_000;

/**
 * Makes the day holding `dayStart` the sum of its hour rows (usage and per-feature), replacing
 * what an earlier roll-up wrote. Percentiles do not add up, so a day row has none.
 */
export async function rollUpDay(db: TenantDb, dayStart: Date): Promise<void> {
  const tenantId = db.ctx.tenantId;
  const dayEnd = new Date(dayStart.getTime() + DAY_MS);
  const args = [tenantId, dayStart, dayEnd];
  await db.query(
    `DELETE FROM usage_stats WHERE tenant_id = $1 AND granularity = 'day' AND bucket_start = $2`,
    [tenantId, dayStart],
  );
  await db.query(
    `INSERT INTO usage_stats (tenant_id, granularity, bucket_start, agent_id, messages_in, replies, no_replies,
                              failures, llm_requests, prompt_tokens, completion_tokens, cost)
     SELECT $1, 'day', $2, agent_id, sum(messages_in), sum(replies), sum(no_replies), sum(failures),
            sum(llm_requests), sum(prompt_tokens), sum(completion_tokens), sum(cost)
     FROM usage_stats
     WHERE tenant_id = $1 AND granularity = 'hour' AND bucket_start >= $2 AND bucket_start < $3
     GROUP BY agent_id`,
    args,
  );
  await db.query(
    `DELETE FROM usage_feature_stats WHERE tenant_id = $1 AND granularity = 'day' AND bucket_start = $2`,
    [tenantId, dayStart],
  );
  await db.query(
    `INSERT INTO usage_feature_stats (tenant_id, granularity, bucket_start, agent_id, feature, llm_requests,
                                      prompt_tokens, completion_tokens, cost)
     SELECT $1, 'day', $2, agent_id, feature, sum(llm_requests), sum(prompt_tokens), sum(completion_tokens),
            sum(cost)
     FROM usage_feature_stats
     WHERE tenant_id = $1 AND granularity = 'hour' AND bucket_start >= $2 AND bucket_start < $3
     GROUP BY agent_id, feature`,
    args,
  );
}

/**
 * Serialises the roll-ups of the unit's tenant (its day rows and running totals) until the
 * transaction ends: two hour jobs of one day would otherwise interleave their rewrites of the day,
 * and running totals must be rewritten over committed buckets one job at a time.
 */
export async function lockTenantRollups(db: TenantDb): Promise<void> {
  await db.query(`SELECT pg_advisory_xact_lock(hashtextextended($1 || '/rollups', 0))`, [db.ctx.tenantId]);
}

const TOTAL_COLUMNS = [
  'messages_in',
  'replies',
  'no_replies',
  'failures',
  'llm_requests',
  'prompt_tokens',
  'completion_tokens',
  'cost',
] as const;

const BUCKET_INTERVAL = { hour: '1 hour', day: '24 hours' } as const;

/**
 * Rewrites the unit's tenant's running totals (`usage_tenant_totals`, migration 013) of one
 * granularity from the bucket at `from` onwards: each row becomes the total before `from` plus
 * the running sum of the buckets since, one row per bucket (those without figures carry the total
 * on) from the row before `from` to the tenant's last bucket, which is marked latest. Called with
 * the tenant's roll-up lock held (`lockTenantRollups`) after its buckets were rewritten.
 */
export async function rewriteRunningTotals(
  db: TenantDb,
  granularity: 'hour' | 'day',
  from: Date,
): Promise<void> {
  const args = [db.ctx.tenantId, granularity, from];
  await db.query(
    `DELETE FROM usage_tenant_totals WHERE tenant_id = $1 AND granularity = $2 AND bucket_start >= $3`,
    args,
  );
  const cols = TOTAL_COLUMNS.join(', ');
  await db.query(
    `WITH base AS (
       SELECT bucket_start, ${cols} FROM usage_tenant_totals
       WHERE tenant_id = $1 AND granularity = $2 AND bucket_start < $3
       ORDER BY bucket_start DESC LIMIT 1
     ), b AS (
       SELECT bucket_start, ${TOTAL_COLUMNS.map((c) => `sum(${c}) AS ${c}`).join(', ')}
       FROM usage_stats
       WHERE tenant_id = $1 AND granularity = $2 AND bucket_start >= $3
       GROUP BY bucket_start
     ), g AS (
       SELECT generate_series(
                coalesce((SELECT bucket_start FROM base) + $4::interval, (SELECT min(bucket_start) FROM b)),
                (SELECT max(bucket_start) FROM b), $4::interval) AS bucket_start
     )
     INSERT INTO usage_tenant_totals (tenant_id, granularity, bucket_start, ${cols})
     SELECT $1, $2, g.bucket_start,
            ${TOTAL_COLUMNS.map((c) => `coalesce((SELECT ${c} FROM base), 0) + sum(coalesce(b.${c}, 0)) OVER w`).join(',\n            ')}
     FROM g LEFT JOIN b ON b.bucket_start = g.bucket_start
     WINDOW w AS (ORDER BY g.bucket_start)`,
    [...args, BUCKET_INTERVAL[granularity]],
  );
  await db.query(
    `UPDATE usage_tenant_totals x SET is_latest = (x.bucket_start = m.last)
     FROM (SELECT max(bucket_start) AS last FROM usage_tenant_totals WHERE tenant_id = $1 AND granularity = $2) m
     WHERE x.tenant_id = $1 AND x.granularity = $2 AND (x.is_latest OR x.bucket_start = m.last)
       AND x.is_latest IS DISTINCT FROM (x.bucket_start = m.last)`,
    [db.ctx.tenantId, granularity],
  );
}

/** Deletes the unit's tenant's minute buckets before `minutesBefore` and hour buckets before `hoursBefore`. */
export async function purgeUsageBuckets(
  db: TenantDb,
  args: { minutesBefore: Date; hoursBefore: Date },
): Promise<number> {
  let removed = 0;
  for (const table of ['usage_stats', 'usage_feature_stats']) {
    const r = await db.query(
      `DELETE FROM ${table} WHERE tenant_id = $1
         AND ((granularity = 'minute' AND bucket_start < $2) OR (granularity = 'hour' AND bucket_start < $3))`,
      [db.ctx.tenantId, args.minutesBefore, args.hoursBefore],
    );
    removed += r.rowCount ?? 0;
  }
  // Running totals of the purged hours, but the last one: the base of the rows after it.
  const r = await db.query(
    `DELETE FROM usage_tenant_totals WHERE tenant_id = $1 AND granularity = 'hour'
       AND bucket_start < (SELECT max(bucket_start) FROM usage_tenant_totals
                           WHERE tenant_id = $1 AND granularity = 'hour' AND bucket_start < $2)`,
    [db.ctx.tenantId, args.hoursBefore],
  );
  removed += r.rowCount ?? 0;
  return removed;
}

export type { UsageFigures };

export interface UsagePeriod {
  granularity: 'hour' | 'day';
  from: Date;
  to: Date;
}

const SUMS = `sum(messages_in) AS messages_in, sum(replies) AS replies, sum(no_replies) AS no_replies,
  sum(failures) AS failures, sum(llm_requests) AS llm_requests, sum(prompt_tokens) AS prompt_tokens,
  sum(completion_tokens) AS completion_tokens, sum(cost) AS cost`;

type Numeric = string | number | null;
type FigureRow = Record<
  | 'messages_in'
  | 'replies'
  | 'no_replies'
  | 'failures'
  | 'llm_requests'
  | 'prompt_tokens'
  | 'completion_tokens'
  | 'cost',
  Numeric
>;

function figures(r: FigureRow): UsageFigures {
  const n = (v: Numeric) => Number(v ?? 0);
  return {
    messagesIn: n(r.messages_in),
    replies: n(r.replies),
    noReplies: n(r.no_replies),
    failures: n(r.failures),
    llmRequests: n(r.llm_requests),
    promptTokens: n(r.prompt_tokens),
    completionTokens: n(r.completion_tokens),
    cost: n(r.cost),
  };
}

const WHERE_PERIOD = `tenant_id = $1 AND granularity = $2 AND bucket_start >= $3 AND bucket_start < $4
  AND ($5::text IS NULL OR agent_id = $5)`;

/** The unit's tenant's usage of a period: per bucket (buckets without figures left out) and per agent. */
export async function usageOfPeriod(
  db: TenantDb,
  p: UsagePeriod & { agentId?: string | undefined },
): Promise<{
  buckets: (UsageFigures & { bucketStart: Date })[];
  agents: (UsageFigures & { agentId: string })[];
}> {
  const args = [db.ctx.tenantId, p.granularity, p.from, p.to, p.agentId ?? null];
  const buckets = await db.query<FigureRow & { bucket_start: Date }>(
    `SELECT bucket_start, ${SUMS} FROM usage_stats WHERE ${WHERE_PERIOD} GROUP BY bucket_start ORDER BY bucket_start`,
    args,
  );
  const agents = await db.query<FigureRow & { agent_id: string }>(
    `SELECT agent_id, ${SUMS} FROM usage_stats WHERE ${WHERE_PERIOD} GROUP BY agent_id ORDER BY agent_id`,
    args,
  );
  return {
    buckets: buckets.rows.map((r) => ({ bucketStart: r.bucket_start, ...figures(r) })),
    agents: agents.rows.map((r) => ({ agentId: r.agent_id, ...figures(r) })),
  };
}

export interface FeatureFigures {
  feature: Feature;
  llmRequests: number;
  promptTokens: number;
  completionTokens: number;
  cost: number;
}

/** The unit's tenant's LLM figures of a period per feature (features without calls left out). */
export async function featuresOfPeriod(
  db: TenantDb,
  p: UsagePeriod & { agentId?: string | undefined },
): Promise<FeatureFigures[]> {
  const { rows } = await db.query<{ feature: Feature } & Record<string, Numeric>>(
    `SELECT feature, sum(llm_requests) AS llm_requests, sum(prompt_tokens) AS prompt_tokens,
            sum(completion_tokens) AS completion_tokens, sum(cost) AS cost
     FROM usage_feature_stats WHERE ${WHERE_PERIOD} GROUP BY feature ORDER BY feature`,
    [db.ctx.tenantId, p.granularity, p.from, p.to, p.agentId ?? null],
  );
  return rows.map((r) => ({
    feature: r.feature,
    llmRequests: Number(r.llm_requests ?? 0),
    promptTokens: Number(r.prompt_tokens ?? 0),
    completionTokens: Number(r.completion_tokens ?? 0),
    cost: Number(r.cost ?? 0),
  }));
}

export const TENANT_SORTS = {
  tenant_id: 'tenant_id',
  messages_in: 'messages_in',
  replies: 'replies',
  llm_requests: 'llm_requests',
  tokens: 'prompt_tokens + completion_tokens',
  cost: 'cost',
} as const;
export type TenantSort = keyof typeof TENANT_SORTS;

const BUCKET_MS = { hour: 3_600_000, day: 86_400_000 } as const;

/** Typed NULLs standing in for the figures in the tenants' rows of `usageByTenant`. */
const NULLS = TOTAL_COLUMNS.map((c) => `NULL::${c === 'cost' ? 'numeric' : 'bigint'} AS ${c}`).join(', ');

/**
 * Every tenant's usage of a period (platform unit of work: the `platform_read` policy lets it read
 * all tenants' running totals), tenants without figures included as zeros, one page in `sort`
 * order (ties by tenant id), with the number of tenants. A tenant's figures over `[from, to)` are
 * its running totals before `to` minus those before `from`; "before X" is its latest row when
 * that is older than X, else its row of the bucket before X (the rows are dense, so that row
 * exists unless the tenant has no bucket before X: zero). Four index ranges of at most one row
 * per tenant (normally two: the latest, and the bucket before `from`), however long the period (summing the
 * buckets read 30 rows per tenant for 30 days), grouped with the tenants in one pass: a join would
 * be planned as a nested loop (RLS makes the planner expect a handful of rows on each side).
 */
export async function usageByTenant(
  db: PlatformDb,
  p: UsagePeriod & { sort: TenantSort; order: 'asc' | 'desc'; limit: number; offset: number },
): Promise<{ rows: (UsageFigures & { tenantId: string; name: string })[]; total: number }> {
  const dir = p.order === 'asc' ? 'ASC' : 'DESC';
  const size = BUCKET_MS[p.granularity];
  const cols = TOTAL_COLUMNS.join(', ');
  const negated = TOTAL_COLUMNS.map((c) => `-${c}`).join(', ');
  const { rows } = await db.query<FigureRow & { tenant_id: string; name: string; total: string }>(
    `WITH r AS (
       SELECT tenant_id, name, ${NULLS} FROM tenants
       UNION ALL
       -- The totals before \`to\`: the latest row if older, else the row of the bucket before \`to\`.
       SELECT tenant_id, NULL, ${cols} FROM usage_tenant_totals
       WHERE granularity = $1 AND is_latest AND bucket_start < $3
       UNION ALL
       SELECT tenant_id, NULL, ${cols} FROM usage_tenant_totals
       WHERE granularity = $1 AND bucket_start = $4 AND NOT is_latest
       UNION ALL
       -- Minus the totals before \`from\`, likewise.
       SELECT tenant_id, NULL, ${negated} FROM usage_tenant_totals
       WHERE granularity = $1 AND is_latest AND bucket_start < $2
       UNION ALL
       SELECT tenant_id, NULL, ${negated} FROM usage_tenant_totals
       WHERE granularity = $1 AND bucket_start = $5 AND NOT is_latest
     ), u AS (
       SELECT tenant_id, max(name) AS name, ${TOTAL_COLUMNS.map((c) => `coalesce(sum(${c}), 0) AS ${c}`).join(', ')}
       FROM r GROUP BY tenant_id
       HAVING count(name) > 0
     )
     SELECT u.*, (SELECT count(*) FROM tenants) AS total
     FROM u
     ORDER BY ${TENANT_SORTS[p.sort]} ${dir}, tenant_id ${dir}
     LIMIT $6 OFFSET $7`,
    [
      p.granularity,
      p.from,
      p.to,
      new Date(p.to.getTime() - size),
      new Date(p.from.getTime() - size),
      p.limit,
      p.offset,
    ],
  );
  let total = Number(rows[0]?.total ?? 0);
  if (rows.length === 0 && p.offset > 0) {
    const c = await db.query<{ n: string }>('SELECT count(*) AS n FROM tenants');
    total = Number(c.rows[0]?.n ?? 0);
  }
  return { rows: rows.map((r) => ({ tenantId: r.tenant_id, name: r.name, ...figures(r) })), total };
}
