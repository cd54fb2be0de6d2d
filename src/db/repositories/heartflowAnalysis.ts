import type { TenantDb } from '../database';

/**
 * What `GET /heartflow/analysis/{chat_stream_id}` reports of a stream over a period, computed in
 * one statement from the stored rows: inbound messages and their outcomes (`messages`), the
 * heartflow's decisions (`action_records`, whose `action_data` carries the target's emotion and
 * the stream's interest). Percentiles are exact (`percentile_cont` over every row of the period).
 */
export interface HeartflowAnalysisRow {
  messages: number;
  replies: number;
  avg_interest: number | null;
  p50: number | null;
  p95: number | null;
  actions_by_type: Record<string, number>;
  emotions: Record<string, number>;
}

export async function heartflowAnalysis(
  db: TenantDb,
  chatStreamId: string,
  since: Date,
): Promise<HeartflowAnalysisRow> {
  const { rows } = await db.query<HeartflowAnalysisRow>(
    `WITH m AS (
       SELECT status, queue_wait_ms, processing_time_ms FROM messages
        WHERE tenant_id = $1 AND chat_stream_id = $2 AND direction = 'in' AND created_at >= $3),
     a AS (
       SELECT action_name, action_data FROM action_records
        WHERE tenant_id = $1 AND chat_stream_id = $2 AND created_at >= $3)
     SELECT
       (SELECT count(*)::int FROM m) AS messages,
       (SELECT count(*)::int FROM m WHERE status = 'replied') AS replies,
       (SELECT avg((action_data->>'interest')::float8) FROM a WHERE action_data ? 'interest') AS avg_interest,
       (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY queue_wait_ms + processing_time_ms) FROM m
         WHERE status IN ('replied', 'no_reply', 'failed') AND processing_time_ms IS NOT NULL) AS p50,
       (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY queue_wait_ms + processing_time_ms) FROM m
         WHERE status IN ('replied', 'no_reply', 'failed') AND processing_time_ms IS NOT NULL) AS p95,
       (SELECT coalesce(jsonb_object_agg(action_name, n), '{}') FROM
          (SELECT action_name, count(*)::int AS n FROM a GROUP BY action_name) x) AS actions_by_type,
       (SELECT coalesce(jsonb_object_agg(emotion, n), '{}') FROM
          (SELECT action_data->>'emotion' AS emotion, count(*)::int AS n FROM a
            WHERE action_data->>'emotion' IS NOT NULL GROUP BY 1) y) AS emotions`,
    [db.ctx.tenantId, chatStreamId, since],
  );
  return rows[0]!;
}

/** The stream's heartflow state as stored (undefined when the stream does not exist). */
export async function streamHeartflowState(
  db: TenantDb,
  chatStreamId: string,
): Promise<
  { state: unknown; chat_type: 'group' | 'private'; agent_id: string; platform: string } | undefined
> {
  const { rows } = await db.query<{
    state: unknown;
    chat_type: 'group' | 'private';
    agent_id: string;
    platform: string;
  }>(
    `SELECT heartflow_state AS state, chat_type, agent_id, platform FROM chat_streams
      WHERE tenant_id = $1 AND chat_stream_id = $2`,
    [db.ctx.tenantId, chatStreamId],
  );
  return rows[0];
}

/** Forgets the stream's heartflow state (the next message starts afresh); false when no such stream. */
export async function resetStreamHeartflow(db: TenantDb, chatStreamId: string): Promise<boolean> {
  const { rowCount } = await db.query(
    'UPDATE chat_streams SET heartflow_state = NULL WHERE tenant_id = $1 AND chat_stream_id = $2',
    [db.ctx.tenantId, chatStreamId],
  );
  return (rowCount ?? 0) > 0;
}
