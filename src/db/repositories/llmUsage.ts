import type { TenantDb } from '../database';

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

export async function recordLlmUsage(db: TenantDb, u: LlmUsageRecord): Promise<void> {
  await db.query(
    `INSERT INTO llm_usage (tenant_id, agent_id, platform, chat_stream_id, message_id, provider, model_name,
                            request_type, prompt_tokens, completion_tokens, total_tokens, cost, latency_ms,
                            status, error)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
    [
      db.ctx.tenantId,
      u.agentId,
      u.platform ?? null,
      u.chatStreamId ?? null,
      u.messageId ?? null,
      u.provider,
      u.modelName,
      u.requestType,
      u.promptTokens,
      u.completionTokens,
      u.promptTokens + u.completionTokens,
      u.cost,
      u.latencyMs,
      u.status,
      u.error ?? null,
    ],
  );
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
