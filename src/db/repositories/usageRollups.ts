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
  tenant_id: 't.tenant_id',
  messages_in: 'coalesce(u.messages_in, 0)',
  replies: 'coalesce(u.replies, 0)',
  llm_requests: 'coalesce(u.llm_requests, 0)',
  tokens: 'coalesce(u.prompt_tokens + u.completion_tokens, 0)',
  cost: 'coalesce(u.cost, 0)',
} as const;
export type TenantSort = keyof typeof TENANT_SORTS;

/**
 * Every tenant's usage of a period (platform unit of work: the `platform_read` policy lets it sum
 * all tenants' buckets), tenants without figures included as zeros, one page in `sort` order
 * (ties by tenant id), with the number of tenants.
 */
export async function usageByTenant(
  db: PlatformDb,
  p: UsagePeriod & { sort: TenantSort; order: 'asc' | 'desc'; limit: number; offset: number },
): Promise<{ rows: (UsageFigures & { tenantId: string; name: string })[]; total: number }> {
  const dir = p.order === 'asc' ? 'ASC' : 'DESC';
  const { rows } = await db.query<FigureRow & { tenant_id: string; name: string; total: string }>(
    `WITH u AS (
       SELECT tenant_id, ${SUMS} FROM usage_stats
       WHERE granularity = $1 AND bucket_start >= $2 AND bucket_start < $3
       GROUP BY tenant_id
     )
     SELECT t.tenant_id, t.name, coalesce(u.messages_in, 0) AS messages_in, coalesce(u.replies, 0) AS replies,
            coalesce(u.no_replies, 0) AS no_replies, coalesce(u.failures, 0) AS failures,
            coalesce(u.llm_requests, 0) AS llm_requests, coalesce(u.prompt_tokens, 0) AS prompt_tokens,
            coalesce(u.completion_tokens, 0) AS completion_tokens, coalesce(u.cost, 0) AS cost,
            count(*) OVER () AS total
     FROM tenants t LEFT JOIN u ON u.tenant_id = t.tenant_id
     ORDER BY ${TENANT_SORTS[p.sort]} ${dir}, t.tenant_id ${dir}
     LIMIT $4 OFFSET $5`,
    [p.granularity, p.from, p.to, p.limit, p.offset],
  );
  let total = Number(rows[0]?.total ?? 0);
  if (rows.length === 0 && p.offset > 0) {
    const c = await db.query<{ n: string }>('SELECT count(*) AS n FROM tenants');
    total = Number(c.rows[0]?.n ?? 0);
  }
  return { rows: rows.map((r) => ({ tenantId: r.tenant_id, name: r.name, ...figures(r) })), total };
}
