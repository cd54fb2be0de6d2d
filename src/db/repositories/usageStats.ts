import type { Granularity } from '../../domain/usageBuckets';
import type { TenantDb } from '../database';

export type { Granularity };

/** The summed figures of a set of buckets (one bucket, or a period of them). */
export interface UsageFigures {
  messagesIn: number;
  replies: number;
  noReplies: number;
  failures: number;
  llmRequests: number;
  promptTokens: number;
  completionTokens: number;
  cost: number;
}

/** Per agent, what the source tables say about one bucket (before percentiles). */
export interface BucketSource extends UsageFigures {
  agentId: string;
  /** Queue waits of the bucket's inbound messages that have one, ms, ascending. */
  queueWaitsMs: number[];
  /** Processing times likewise, ms, ascending. */
  processingMs: number[];
}

interface SourceRow {
  agent_id: string;
  messages_in: string;
  replies: string;
  no_replies: string;
  failures: string;
  llm_requests: string;
  prompt_tokens: string;
  completion_tokens: string;
  cost: string;
  waits: number[] | null;
  took: number[] | null;
}

/**
 * Reads one bucket `[start, end)` of the unit's tenant from `messages` and `llm_usage`, per agent.
 * Message figures belong to the bucket an inbound message arrived in (its outcome counted there
 * once known); LLM figures to the bucket of the call.
 */
export async function readBucketSource(db: TenantDb, start: Date, end: Date): Promise<BucketSource[]> {
  const { rows } = await db.query<SourceRow>(
    `WITH msg AS (
       SELECT agent_id,
              count(*) AS messages_in,
              count(*) FILTER (WHERE status = 'replied') AS replies,
              count(*) FILTER (WHERE status = 'no_reply') AS no_replies,
              count(*) FILTER (WHERE status = 'failed') AS failures,
              array_agg(queue_wait_ms ORDER BY queue_wait_ms) FILTER (WHERE queue_wait_ms IS NOT NULL) AS waits,
              array_agg(processing_time_ms ORDER BY processing_time_ms)
                FILTER (WHERE processing_time_ms IS NOT NULL) AS took
       FROM messages
       WHERE tenant_id = $1 AND direction = 'in' AND created_at >= $2 AND created_at < $3
       GROUP BY agent_id
     ), llm AS (
       SELECT agent_id, count(*) AS llm_requests, sum(prompt_tokens) AS prompt_tokens,
              sum(completion_tokens) AS completion_tokens, sum(cost) AS cost
       FROM llm_usage
       WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3
       GROUP BY agent_id
     )
     SELECT coalesce(msg.agent_id, llm.agent_id) AS agent_id,
            coalesce(msg.messages_in, 0) AS messages_in, coalesce(msg.replies, 0) AS replies,
            coalesce(msg.no_replies, 0) AS no_replies, coalesce(msg.failures, 0) AS failures,
            coalesce(llm.llm_requests, 0) AS llm_requests, coalesce(llm.prompt_tokens, 0) AS prompt_tokens,
            coalesce(llm.completion_tokens, 0) AS completion_tokens, coalesce(llm.cost, 0) AS cost,
            msg.waits, msg.took
     FROM msg FULL JOIN llm ON llm.agent_id = msg.agent_id
     ORDER BY 1`,
    [db.ctx.tenantId, start, end],
  );
  return rows.map((r) => ({
    agentId: r.agent_id,
    messagesIn: Number(r.messages_in),
    replies: Number(r.replies),
    noReplies: Number(r.no_replies),
    failures: Number(r.failures),
    llmRequests: Number(r.llm_requests),
    promptTokens: Number(r.prompt_tokens),
    completionTokens: Number(r.completion_tokens),
    cost: Number(r.cost),
    queueWaitsMs: r.waits ?? [],
    processingMs: r.took ?? [],
  }));
}

/**
 * Serialises recomputes of one bucket of the unit's tenant until the transaction ends, so two
 * runs of the same bucket cannot interleave their delete and upsert.
 */
export async function lockUsageBucket(
  db: TenantDb,
  granularity: Granularity,
  bucketStart: Date,
): Promise<void> {
  await db.query(`SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2 || '/' || $3, 0))`, [
    db.ctx.tenantId,
    granularity,
    bucketStart.toISOString(),
  ]);
}

/** One `usage_stats` row as written. */
export interface UsageBucket {
  agentId: string;
  messagesIn: number;
  replies: number;
  noReplies: number;
  failures: number;
  llmRequests: number;
  promptTokens: number;
  completionTokens: number;
  cost: number;
  queueWaitP50: number | null;
  queueWaitP99: number | null;
  processingP50: number | null;
  processingP99: number | null;
}

/**
 * Makes a bucket's rows exactly `buckets`: upserts them (overwriting, never adding to, what a
 * previous run wrote) and deletes the bucket's rows of agents that no longer have any figures.
 */
export async function replaceUsageBucket(
  db: TenantDb,
  granularity: Granularity,
  bucketStart: Date,
  buckets: readonly UsageBucket[],
): Promise<void> {
  const col = <T>(f: (b: UsageBucket) => T) => buckets.map(f);
  await db.query(
    `DELETE FROM usage_stats
     WHERE tenant_id = $1 AND granularity = $2 AND bucket_start = $3 AND NOT (agent_id = ANY($4::text[]))`,
    [db.ctx.tenantId, granularity, bucketStart, col((b) => b.agentId)],
  );
  if (buckets.length === 0) return;
  await db.query(
    `INSERT INTO usage_stats (tenant_id, granularity, bucket_start, agent_id, messages_in, replies, no_replies,
                              failures, llm_requests, prompt_tokens, completion_tokens, cost, queue_wait_ms_p50,
                              queue_wait_ms_p99, processing_ms_p50, processing_ms_p99)
     SELECT $1, $2, $3, b.* FROM unnest($4::text[], $5::int[], $6::int[], $7::int[], $8::int[], $9::int[],
                                        $10::bigint[], $11::bigint[], $12::numeric[], $13::int[], $14::int[],
                                        $15::int[], $16::int[]) AS b
     ON CONFLICT (tenant_id, granularity, bucket_start, agent_id) DO UPDATE SET
       messages_in = EXCLUDED.messages_in, replies = EXCLUDED.replies, no_replies = EXCLUDED.no_replies,
       failures = EXCLUDED.failures, llm_requests = EXCLUDED.llm_requests,
       prompt_tokens = EXCLUDED.prompt_tokens, completion_tokens = EXCLUDED.completion_tokens,
       cost = EXCLUDED.cost, queue_wait_ms_p50 = EXCLUDED.queue_wait_ms_p50,
       queue_wait_ms_p99 = EXCLUDED.queue_wait_ms_p99, processing_ms_p50 = EXCLUDED.processing_ms_p50,
       processing_ms_p99 = EXCLUDED.processing_ms_p99`,
    [
      db.ctx.tenantId,
      granularity,
      bucketStart,
      col((b) => b.agentId),
      col((b) => b.messagesIn),
      col((b) => b.replies),
      col((b) => b.noReplies),
      col((b) => b.failures),
      col((b) => b.llmRequests),
      col((b) => b.promptTokens),
      col((b) => b.completionTokens),
      col((b) => b.cost),
      col((b) => b.queueWaitP50),
      col((b) => b.queueWaitP99),
      col((b) => b.processingP50),
      col((b) => b.processingP99),
    ],
  );
}

export interface UsageStatsRow {
  granularity: Granularity;
  bucket_start: Date;
  agent_id: string;
  messages_in: number;
  replies: number;
  no_replies: number;
  failures: number;
  llm_requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost: number;
  queue_wait_ms_p50: number | null;
  queue_wait_ms_p99: number | null;
  processing_ms_p50: number | null;
  processing_ms_p99: number | null;
}

/** The unit's tenant's buckets of one granularity in `[from, to)`, oldest first (for `/stats/*`). */
export async function listUsageStats(
  db: TenantDb,
  args: { granularity: Granularity; from: Date; to: Date; agentId?: string | undefined },
): Promise<UsageStatsRow[]> {
  const { rows } = await db.query<
    Omit<UsageStatsRow, 'prompt_tokens' | 'completion_tokens' | 'cost'> & {
      prompt_tokens: string;
      completion_tokens: string;
      cost: string;
    }
  >(
    `SELECT granularity, bucket_start, agent_id, messages_in, replies, no_replies, failures, llm_requests,
            prompt_tokens, completion_tokens, cost, queue_wait_ms_p50, queue_wait_ms_p99, processing_ms_p50,
            processing_ms_p99
     FROM usage_stats
     WHERE tenant_id = $1 AND granularity = $2 AND bucket_start >= $3 AND bucket_start < $4
       AND ($5::text IS NULL OR agent_id = $5)
     ORDER BY bucket_start, agent_id`,
    [db.ctx.tenantId, args.granularity, args.from, args.to, args.agentId ?? null],
  );
  return rows.map((r) => ({
    ...r,
    prompt_tokens: Number(r.prompt_tokens),
    completion_tokens: Number(r.completion_tokens),
    cost: Number(r.cost),
  }));
}
