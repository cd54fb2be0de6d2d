import type { TenantDb } from '../database';
import type { Statement } from '../statement';

export interface LlmUsageRecord {
  agentId: string;
  platform?: string | null;
  chatStreamId?: string | null;
  messageId?: string | null;
  provider: string;
  modelName: string;
  requestType: string;
  promptTokens: number;
  completionTokens: number;
  cost: number;
  latencyMs: number;
  status: 'success' | 'error' | 'timeout';
  error?: string | null;
}

/** Stores one call; answers its `created_at` (the bucket its figures belong to). */
export async function recordLlmUsage(db: TenantDb, u: LlmUsageRecord): Promise<Date> {
  const { text, values } = llmUsageStatement(db.ctx.tenantId, [u]);
  const { rows } = await db.query<{ created_at: Date }>(`${text} RETURNING created_at`, values);
  return rows[0]!.created_at;
}

/** Inserts usage rows in one statement, to combine with others (`combineStatements`); none is a no-op. */
export function llmUsageStatement(tenantId: string, records: readonly LlmUsageRecord[]): Statement {
  const col = <T>(f: (u: LlmUsageRecord) => T) => records.map(f);
  return {
    text: `INSERT INTO llm_usage (tenant_id, agent_id, platform, chat_stream_id, message_id, provider, model_name,
                            request_type, prompt_tokens, completion_tokens, total_tokens, cost, latency_ms,
                            status, error)
     SELECT $1, u.* FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                                $8::text[], $9::int[], $10::int[], $11::int[], $12::numeric[], $13::int[],
                                $14::text[], $15::text[]) AS u`,
    values: [
      tenantId,
      col((u) => u.agentId),
      col((u) => u.platform ?? null),
      col((u) => u.chatStreamId ?? null),
      col((u) => u.messageId ?? null),
      col((u) => u.provider),
      col((u) => u.modelName),
      col((u) => u.requestType),
      col((u) => u.promptTokens),
      col((u) => u.completionTokens),
      col((u) => u.promptTokens + u.completionTokens),
      col((u) => u.cost),
      col((u) => u.latencyMs),
      col((u) => u.status),
      col((u) => u.error ?? null),
    ],
  };
}

export interface UsageTotals {
  requests: number;
  tokens: number;
  cost: number;
}

/** LLM requests, tokens and cost of the unit's tenant since a point in time (quotas, statistics). */
export async function usageSince(db: TenantDb, since: Date): Promise<UsageTotals> {
  const { rows } = await db.query<{ requests: string; tokens: string | null; cost: string | null }>(
    `SELECT count(*) AS requests, sum(total_tokens) AS tokens, sum(cost) AS cost
     FROM llm_usage WHERE tenant_id = $1 AND created_at >= $2`,
    [db.ctx.tenantId, since],
  );
  const r = rows[0];
  return { requests: Number(r?.requests ?? 0), tokens: Number(r?.tokens ?? 0), cost: Number(r?.cost ?? 0) };
}
