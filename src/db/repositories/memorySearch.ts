import {
  anyTermTsquery,
  literalNeedle,
  queryTerms,
  type Ranked,
  rankMemories,
  termRelevance,
  twoTermTsquery,
} from '../../domain/memory';
import type { TenantDb } from '../database';
import { MEMORY_COLUMNS, type MemoryRow, type MemoryScope, type MemoryType, UNEXPIRED } from './memories';

/**
 * Which memories a search sees. `platform` and `chatStreamId` mean "as seen from there": a
 * platform shows its own memories and the agent-wide ones, a chat stream its own, its platform's
 * and the agent's (the narrowing row-level security applies to a unit of work with that context).
 */
export interface MemorySearchFilter {
  agentId?: string | undefined;
  scope?: MemoryScope | undefined;
  memoryType?: MemoryType | undefined;
  platform?: string | undefined;
  chatStreamId?: string | undefined;
}

export interface MemorySearch extends MemorySearchFilter {
  query: string;
  limit: number;
  /** ms since the epoch: the clock of the ranking. */
  now: number;
}

export type FoundMemory = Ranked<
  MemoryRow & { memoryId: string; createdAt: number; lastAccessed: number | null }
>;

/** Most candidates the index hands to the ranking: enough for the best `limit` by any weighting. */
export function candidateCount(limit: number): number {
  return Math.max(100, limit * 10);
}

type Match = { where: string; order: string; value: string };

async function candidates(db: TenantDb, s: MemorySearch, match: Match) {
  const { rows } = await db.query<MemoryRow & { total: string }>(
    `SELECT ${MEMORY_COLUMNS}, count(*) OVER () AS total FROM memory_chest
     WHERE tenant_id = $1 AND ${match.where}
       AND ($3::text IS NULL OR agent_id = $3)
       AND ($4::text IS NULL OR scope = $4)
       AND ($5::text IS NULL OR memory_type = $5)
       AND ($6::text IS NULL OR platform IS NULL OR platform = $6)
       AND ($7::text IS NULL OR chat_stream_id IS NULL OR chat_stream_id = $7)
       AND ${UNEXPIRED}
     ORDER BY ${match.order} importance DESC, created_at DESC
     LIMIT $8`,
    [
      db.ctx.tenantId,
      match.value,
      s.agentId ?? null,
      s.scope ?? null,
      s.memoryType ?? null,
      s.platform ?? null,
      s.chatStreamId ?? null,
      candidateCount(s.limit),
    ],
  );
  return { rows, total: rows.length > 0 ? Number(rows[0]!.total) : 0 };
}

function termMatch(tsquery: string): Match {
  return {
    where: 'search_vector @@ $2::tsquery',
    order: 'ts_rank(search_vector, $2::tsquery) DESC,',
    value: tsquery,
  };
}

/**
 * Searches the unit's tenant's unexpired memories and ranks them with `rankMemories` (relevance,
 * importance, recency). The index (`search_vector`, GIN over tenant-prefixed lexemes) first finds memories
 * having at least two of the query's terms; only when fewer than `limit` do, memories having any
 * (a common term alone can match a large share of a tenant: ranking all of them is the slow
 * part). Candidates come best `ts_rank` first. A query without any term (only punctuation, `%`,
 * `_`, …) is matched literally as a substring instead. Nothing is written: see `touchMemories`.
 * `total` is how many memories matched in the stage that answered.
 */
export async function searchMemories(
  db: TenantDb,
  s: MemorySearch,
): Promise<{ memories: FoundMemory[]; total: number }> {
  const terms = queryTerms(s.query);
  const needle = literalNeedle(s.query);
  if (terms.length === 0 && needle === '') return { memories: [], total: 0 };
  let found;
  if (terms.length === 0) {
    found = await candidates(db, s, { where: 'strpos(lower(content), $2) > 0', order: '', value: needle });
  } else {
    // Lexemes carry their tenant (migration 008): the index holds each tenant's postings apart.
    const prefix = `${db.ctx.tenantId}/`;
    const pairs = twoTermTsquery(terms, prefix);
    found = pairs === undefined ? undefined : await candidates(db, s, termMatch(pairs));
    if (found === undefined || found.rows.length < s.limit)
      found = await candidates(db, s, termMatch(anyTermTsquery(terms, prefix)));
  }
  const list = found.rows.map(({ total: _t, ...r }) => ({
    ...r,
    memoryId: r.memory_id,
    createdAt: r.created_at.getTime(),
    lastAccessed: r.last_accessed?.getTime() ?? null,
  }));
  const searchable = (m: (typeof list)[number]) => `${m.title ?? ''} ${m.content} ${m.tags.join(' ')}`;
  const memories = rankMemories(s.query, list, {
    now: s.now,
    limit: s.limit,
    // The literal fallback has no terms: every candidate contains the query, equally relevant.
    relevanceOf: (q, m) =>
      terms.length > 0 ? termRelevance(q, terms, searchable(m as (typeof list)[number])) : 1,
  });
  return { memories, total: found.total };
}

/**
 * Counts one access of each memory and stamps `last_accessed`, in one statement for all of a
 * search's hits. Rows another transaction is updating right now are skipped rather than waited
 * for (SKIP LOCKED): a search never waits or deadlocks on its bookkeeping, at the price of an
 * access not counted under that contention.
 */
export async function touchMemories(db: TenantDb, memoryIds: readonly string[]): Promise<void> {
  if (memoryIds.length === 0) return;
  await db.query(
    `UPDATE memory_chest m SET access_count = m.access_count + 1, last_accessed = now()
     FROM (SELECT memory_id FROM memory_chest WHERE tenant_id = $1 AND memory_id = ANY($2::text[])
           FOR UPDATE SKIP LOCKED) hit
     WHERE m.tenant_id = $1 AND m.memory_id = hit.memory_id`,
    [db.ctx.tenantId, [...new Set(memoryIds)]],
  );
}

/** Most characters of the latest pending messages a prompt's memory search is made of. */
export const PROMPT_QUERY_CHARS = 500;

/**
 * The memories a reply prompt in a chat stream gets: the memory search (the one of
 * GET /memory/search, seen from the stream: its agent's, its platform's and its own memories)
 * over the latest messages being answered, best first, their accesses counted.
 */
export async function memoriesForPrompt(
  db: TenantDb,
  stream: { agentId: string; platform: string; chatStreamId: string },
  messages: readonly string[],
  o: { limit: number; now: number },
): Promise<{ content: string; importance: number; score: number }[]> {
  let query = '';
  for (let i = messages.length - 1; i >= 0 && query.length < PROMPT_QUERY_CHARS; i--)
    query = `${messages[i]!} ${query}`;
  const { memories } = await searchMemories(db, {
    query: [...query].slice(-PROMPT_QUERY_CHARS).join(''),
    limit: o.limit,
    now: o.now,
    // Named one by one: an isolation context passed as `stream` has a `scope` of its own.
    agentId: stream.agentId,
    platform: stream.platform,
    chatStreamId: stream.chatStreamId,
  });
  await touchMemories(
    db,
    memories.map((m) => m.memory_id),
  );
  return memories.map((m) => ({ content: m.content, importance: m.importance, score: m.score }));
}
