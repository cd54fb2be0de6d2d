import type { TenantDb } from '../database';
import { type MemoryScope, type MemoryType, UNEXPIRED } from './memories';

export interface MemoryStatistics {
  total_memories: number;
  by_type: Record<MemoryType, number>;
  by_scope: Record<MemoryScope, number>;
  /** high ≥ 0.7 > medium ≥ 0.4 > low. */
  by_importance: { high: number; medium: number; low: number };
  /** Since midnight UTC. */
  recent_activity: { added_today: number; accessed_today: number };
}

interface CountRow {
  memory_type: MemoryType;
  scope: MemoryScope;
  band: 'high' | 'medium' | 'low';
  n: string;
  added_today: string;
  accessed_today: string;
}

/** The unit's tenant's unexpired memories counted (one statement; `agentId` narrows to one agent). */
export async function memoryStatistics(db: TenantDb, agentId?: string): Promise<MemoryStatistics> {
  const { rows } = await db.query<CountRow>(
    `SELECT memory_type, scope,
            CASE WHEN importance >= 0.7 THEN 'high' WHEN importance >= 0.4 THEN 'medium' ELSE 'low' END AS band,
            count(*) AS n,
            count(*) FILTER (WHERE created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS added_today,
            count(*) FILTER (WHERE last_accessed >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS accessed_today
     FROM memory_chest
     WHERE tenant_id = $1 AND ($2::text IS NULL OR agent_id = $2) AND ${UNEXPIRED}
     GROUP BY 1, 2, 3`,
    [db.ctx.tenantId, agentId ?? null],
  );
  const stats: MemoryStatistics = {
    total_memories: 0,
    by_type: { preference: 0, fact: 0, conversation: 0, emotion: 0, summary: 0 },
    by_scope: { agent: 0, platform: 0, chat: 0 },
    by_importance: { high: 0, medium: 0, low: 0 },
    recent_activity: { added_today: 0, accessed_today: 0 },
  };
  for (const r of rows) {
    const n = Number(r.n);
    stats.total_memories += n;
    stats.by_type[r.memory_type] += n;
    stats.by_scope[r.scope] += n;
    stats.by_importance[r.band] += n;
    stats.recent_activity.added_today += Number(r.added_today);
    stats.recent_activity.accessed_today += Number(r.accessed_today);
  }
  return stats;
}

/**
 * Deletes the unit's tenant's expired memories (at most `max` per call, through the partial
 * expiry index) and returns how many. Reads already ignore expired rows; this reclaims them.
 */
export async function purgeExpiredMemories(db: TenantDb, max = 1000): Promise<number> {
  const result = await db.query(
    `DELETE FROM memory_chest WHERE tenant_id = $1 AND memory_id IN (
       SELECT memory_id FROM memory_chest
        WHERE tenant_id = $1 AND expires_at IS NOT NULL AND expires_at <= now() LIMIT $2)`,
    [db.ctx.tenantId, max],
  );
  return result.rowCount ?? 0;
}
