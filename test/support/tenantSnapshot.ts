import type { TestDatabase } from './testDatabase';

/** Every table with a tenant_id column (read as the owner). */
export async function tenantTables(t: TestDatabase): Promise<string[]> {
  const { rows } = await t.admin<{ table_name: string }>(
    `SELECT c.table_name FROM information_schema.columns c
     JOIN information_schema.tables tb ON tb.table_name = c.table_name AND tb.table_schema = c.table_schema
     WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id' AND tb.table_type = 'BASE TABLE'
     ORDER BY c.table_name`,
  );
  return rows.map((r) => r.table_name);
}

/** Per table with a tenant_id column: how many rows the tenant has there. */
export async function tenantRowCounts(t: TestDatabase, tenantId: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of await tenantTables(t)) {
    const { rows } = await t.admin<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${table}" WHERE tenant_id = $1`,
      [tenantId],
    );
    counts[table] = rows[0]!.n;
  }
  return counts;
}

/** Per table: the tenant's row count and an md5 over its rows' text, in a stable order. */
export async function tenantSnapshot(t: TestDatabase, tenantId: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const table of await tenantTables(t)) {
    const { rows } = await t.admin<{ n: string; sum: string | null }>(
      `SELECT count(*)::text AS n, md5(string_agg(x::text, E'\\n' ORDER BY x::text)) AS sum
       FROM "${table}" x WHERE tenant_id = $1`,
      [tenantId],
    );
    out[table] = `${rows[0]!.n}:${rows[0]!.sum ?? ''}`;
  }
  return out;
}

/**
 * The tenant's rows of the import's tables without the columns that name the tenant or are set at
 * write time, to compare two imports of the same file into different tenants.
 */
export async function importedContent(t: TestDatabase, tenantId: string): Promise<Record<string, string>> {
  const exprs: Record<string, string> = {
    // A chat recreated without any row describing it gets its times at import.
    chat_streams: `(chat_stream_id, agent_id, platform, chat_type, group_id, group_name, user_id, metadata,
      CASE WHEN metadata #> '{maibot,recreated}' IS NULL THEN (created_at, last_active_at)::text END)::text`,
    messages: `(message_id, agent_id, platform, chat_stream_id, direction, client_message_id, reply_to, sender_user_id, content, segments, is_mentioned, interest, status, created_at)::text`,
    memory_chest: `(memory_id, agent_id, platform, chat_stream_id, scope, title, content, memory_type, tags, metadata, locked)::text`,
    llm_usage: `(import_ref, agent_id, provider, model_name, prompt_tokens, completion_tokens, cost, status, error, created_at)::text`,
    emojis: `(emoji_id, pack_id, image_hash, description, emotion, tags, usage_count, created_at)::text`,
    action_records: `(action_id, agent_id, platform, chat_stream_id, action_name, action_data, reasoning, done, created_at)::text`,
    expression: `(expression_id, chat_stream_id, situation, style, context, count, last_active_at)::text`,
    jargon: `(jargon_id, chat_stream_id, term, meaning, count, is_global)::text`,
    person_info: `(person_id, platform, user_id, person_name, nickname, is_known, memory_points, know_times, know_since)::text`,
    group_info: `(agent_id, platform, group_id, group_name, member_list, member_count, created_at)::text`,
  };
  const out: Record<string, string> = {};
  for (const [table, expr] of Object.entries(exprs)) {
    const { rows } = await t.admin<{ n: string; sum: string | null }>(
      `SELECT count(*)::text AS n, md5(string_agg(${expr}, E'\\n' ORDER BY ${expr})) AS sum FROM ${table} WHERE tenant_id = $1`,
      [tenantId],
    );
    out[table] = `${rows[0]!.n}:${rows[0]!.sum ?? ''}`;
  }
  return out;
}
