import type { TenantDb } from '../database';

export interface TenantStatistics {
  agentsCount: number;
  chatStreamsCount: number;
  totalMessages: number;
  /** Memories that have not expired. */
  totalMemoryItems: number;
  llmRequestsToday: number;
  llmTokensThisMonth: number;
  /** Chat streams with a message (either direction) since `since24h`. */
  activeChats24h: number;
  /** Agents with a message since `since24h`. */
  activeAgents24h: number;
  /** Newest message of the tenant. */
  lastActivity: Date | null;
}

export interface StatisticsWindow {
  now: Date;
  /** Start of the current UTC day (quotas count per UTC day too). */
  dayStart: Date;
  /** Start of the current UTC month. */
  monthStart: Date;
  since24h: Date;
}

/** The unit's tenant's counts and activity for `GET /tenants/{id}/statistics`, in one statement. */
export async function tenantStatistics(db: TenantDb, w: StatisticsWindow): Promise<TenantStatistics> {
  const { rows } = await db.query<Record<string, string | Date | null>>(
    `SELECT
       (SELECT count(*) FROM agents WHERE tenant_id = $1) AS agents,
       (SELECT count(*) FROM chat_streams WHERE tenant_id = $1) AS chat_streams,
       (SELECT count(*) FROM messages WHERE tenant_id = $1) AS messages,
       (SELECT count(*) FROM memory_chest
         WHERE tenant_id = $1 AND (expires_at IS NULL OR expires_at > $2)) AS memories,
       (SELECT count(*) FROM llm_usage WHERE tenant_id = $1 AND created_at >= $3) AS llm_requests,
       (SELECT coalesce(sum(total_tokens), 0) FROM llm_usage
         WHERE tenant_id = $1 AND created_at >= $4) AS llm_tokens,
       (SELECT count(DISTINCT chat_stream_id) FROM messages
         WHERE tenant_id = $1 AND created_at >= $5) AS active_chats,
       (SELECT count(DISTINCT agent_id) FROM messages WHERE tenant_id = $1 AND created_at >= $5) AS active_agents,
       (SELECT max(created_at) FROM messages WHERE tenant_id = $1) AS last_activity`,
    [db.ctx.tenantId, w.now, w.dayStart, w.monthStart, w.since24h],
  );
  const r = rows[0] ?? {};
  const n = (key: string) => Number(r[key] ?? 0);
  return {
    agentsCount: n('agents'),
    chatStreamsCount: n('chat_streams'),
    totalMessages: n('messages'),
    totalMemoryItems: n('memories'),
    llmRequestsToday: n('llm_requests'),
    llmTokensThisMonth: n('llm_tokens'),
    activeChats24h: n('active_chats'),
    activeAgents24h: n('active_agents'),
    lastActivity: (r.last_activity as Date | null | undefined) ?? null,
  };
}
