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

/**
 * Most memories one index probe (one term, or the pairs query) reads from the table. A common
 * term can match a large share of a tenant; reading, filtering and ranking every such row was
 * the slow part of a search. Capping each probe bounds a search's work by its number of terms,
 * and a rare term's memories (the telling ones) all fit under the cap.
 */
export const PROBE_CAP = { term: 200, pairs: 1000 } as const;

/** Most terms the any-term stage probes one by one (a prompt's query can have hundreds). */
export const MAX_PROBED_TERMS = 16;

const FILTERS = `AND ($3::text IS NULL OR agent_id = $3)
       AND ($4::text IS NULL OR scope = $4)
       AND ($5::text IS NULL OR memory_type = $5)
       AND ($6::text IS NULL OR platform IS NULL OR platform = $6)
       AND ($7::text IS NULL OR chat_stream_id IS NULL OR chat_stream_id = $7)
       AND ${UNEXPIRED}`;

function filterParams(db: TenantDb, s: MemorySearch) {
  return [
    db.ctx.tenantId,
    s.agentId ?? null,
    s.scope ?? null,
    s.memoryType ?? null,
    s.platform ?? null,
    s.chatStreamId ?? null,
  ] as const;
}

type Found = { rows: (MemoryRow & { total: string })[]; total: number };

function found(rows: (MemoryRow & { total: string })[]): Found {
  return { rows, total: rows.length > 0 ? Number(rows[0]!.total) : 0 };
}

/**
 * Candidates of a term search. Each tsquery of `probes` is one GIN probe (`@@~`, migration 012:
 * the leakproof match the index answers under row-level security) reading at most `PROBE_CAP`
 * rows; their union is ranked by `ts_rank` against `rankQuery` (then importance, newest) on a
 * narrow row, and only the best `candidateCount` are read whole. `total` is the union's size.
 */
async function termCandidates(
  db: TenantDb,
  s: MemorySearch,
  probes: readonly string[],
  rankQuery: string,
  cap: number,
): Promise<Found> {
  const [tenantId, ...filters] = filterParams(db, s);
  // One subquery per probe, each with its tsquery as a parameter of its own: planned with the
  // actual lexeme, a rare term's probe is estimated as rare and read from the GIN index alone (a
  // probe estimated as common is ANDed with the tenant's btree, reading all its entries).
  const probe = (
    i: number,
  ) => `(SELECT memory_id, ts_rank(search_vector, $2::tsquery) AS rank, importance, created_at
         FROM memory_chest
         WHERE tenant_id = $1 AND search_vector @@~ $${10 + i}::tsquery
           ${FILTERS}
         LIMIT $8)`;
  const { rows } = await db.query<MemoryRow & { total: string }>(
    `WITH probe AS MATERIALIZED (
       SELECT DISTINCT memory_id, rank, importance, created_at FROM (
         ${probes.map((_, i) => probe(i)).join('\n         UNION ALL\n         ')}) hit
     ), best AS (
       SELECT memory_id, rank, importance, created_at, count(*) OVER () AS total FROM probe
       ORDER BY rank DESC, importance DESC, created_at DESC
       LIMIT $9
     )
     SELECT ${MEMORY_COLUMNS.replace(/(^|,)\s*/g, '$1 m.')}, best.total
     FROM best JOIN memory_chest m ON m.tenant_id = $1 AND m.memory_id = best.memory_id
     ORDER BY best.rank DESC, best.importance DESC, best.created_at DESC`,
    [tenantId, rankQuery, ...filters, cap, candidateCount(s.limit), ...probes],
  );
  return found(rows);
}

/** A query without terms: a literal substring of the content (no index; a scan of the tenant). */
async function literalCandidates(db: TenantDb, s: MemorySearch, needle: string): Promise<Found> {
  const [tenantId, ...filters] = filterParams(db, s);
  const { rows } = await db.query<MemoryRow & { total: string }>(
    `SELECT ${MEMORY_COLUMNS}, count(*) OVER () AS total FROM memory_chest
     WHERE tenant_id = $1 AND strpos(lower(content), $2) > 0
       ${FILTERS}
     ORDER BY importance DESC, created_at DESC
     LIMIT $8`,
    [tenantId, needle, ...filters, candidateCount(s.limit)],
  );
  return found(rows);
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
  let hits: Found | undefined;
  if (terms.length === 0) {
    hits = await literalCandidates(db, s, needle);
  } else {
    // Lexemes carry their tenant (migration 008): the index holds each tenant's postings apart.
    const prefix = `${db.ctx.tenantId}/`;
    const pairs = twoTermTsquery(terms, prefix);
    if (pairs !== undefined) hits = await termCandidates(db, s, [pairs], pairs, PROBE_CAP.pairs);
    if (hits === undefined || hits.rows.length < s.limit) {
      const probed = terms.slice(0, MAX_PROBED_TERMS);
      hits = await termCandidates(
        db,
        s,
        probed.map((t) => anyTermTsquery([t], prefix)),
        anyTermTsquery(probed, prefix),
        PROBE_CAP.term,
      );
    }
  }
  const list = hits.rows.map(({ total: _t, ...r }) => ({
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
  return { memories, total: hits.total };
}

/**
 * Counts accesses and stamps `last_accessed`, in one statement for all of them: `memoryIds` one
 * access each, or `counts` (memory id → accesses). Rows another transaction is updating right
 * now are skipped rather than waited for (SKIP LOCKED): a search never waits or deadlocks on its
 * bookkeeping, at the price of an access not counted under that contention.
 */
function isIdList(x: readonly string[] | ReadonlyMap<string, number>): x is readonly string[] {
  return Array.isArray(x);
}

export async function touchMemories(
  db: TenantDb,
  memoryIds: readonly string[] | ReadonlyMap<string, number>,
): Promise<void> {
  const counts = new Map<string, number>();
  if (isIdList(memoryIds)) for (const id of memoryIds) counts.set(id, (counts.get(id) ?? 0) + 1);
  else for (const [id, n] of memoryIds) counts.set(id, n);
  if (counts.size === 0) return;
  await db.query(
    `UPDATE memory_chest m SET access_count = m.access_count + hit.n, last_accessed = now()
     FROM (SELECT c.memory_id, c.n FROM unnest($2::text[], $3::int[]) AS c(memory_id, n)
           JOIN memory_chest x ON x.tenant_id = $1 AND x.memory_id = c.memory_id
           FOR UPDATE OF x SKIP LOCKED) hit
     WHERE m.tenant_id = $1 AND m.memory_id = hit.memory_id`,
    [db.ctx.tenantId, [...counts.keys()], [...counts.values()]],
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
