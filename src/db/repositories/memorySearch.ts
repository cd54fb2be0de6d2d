import {
  anyTermTsquery,
  literalNeedle,
  matchRelevance,
  queryTerms,
  RANK_WEIGHTS,
  type RankableMemory,
  type Ranked,
  rankMemories,
  RECENCY_HALF_LIFE_MS,
  type TermMatch,
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
  /** How many candidates come whole with the search statement. Default `prefetchCount(limit)`. */
  prefetch?: number;
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

const FILTERS = `AND ($2::text IS NULL OR agent_id = $2)
       AND ($3::text IS NULL OR scope = $3)
       AND ($4::text IS NULL OR memory_type = $4)
       AND ($5::text IS NULL OR platform IS NULL OR platform = $5)
       AND ($6::text IS NULL OR chat_stream_id IS NULL OR chat_stream_id = $6)
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

type FullRow = MemoryRow & { memoryId: string; createdAt: number; lastAccessed: number | null };

function fullRow(r: MemoryRow): FullRow {
  // Object.assign, not a spread with properties added (slow in V8, see `rankMemories`).
  return Object.assign({}, r, {
    memoryId: r.memory_id,
    createdAt: r.created_at.getTime(),
    lastAccessed: r.last_accessed?.getTime() ?? null,
  });
}

/** A query without terms: a literal substring of the content (no index; a scan of the tenant). */
async function literalSearch(
  db: TenantDb,
  s: MemorySearch,
  needle: string,
): Promise<{ memories: FoundMemory[]; total: number }> {
  const [tenantId, ...filters] = filterParams(db, s);
  const { rows } = await db.query<MemoryRow & { total: string }>(
    `SELECT ${MEMORY_COLUMNS}, count(*) OVER () AS total FROM memory_chest
     WHERE tenant_id = $1 AND strpos(lower(content), $7) > 0
       ${FILTERS}
     ORDER BY importance DESC, created_at DESC
     LIMIT $8`,
    [tenantId, ...filters, needle, candidateCount(s.limit)],
  );
  const list = rows.map(({ total: _t, ...r }) => fullRow(r));
  // No terms: every candidate contains the query, equally relevant.
  const memories = rankMemories(s.query, list, { now: s.now, limit: s.limit, relevanceOf: () => 1 });
  return { memories, total: rows.length > 0 ? Number(rows[0]!.total) : 0 };
}

/** The columns of `MEMORY_COLUMNS` a candidate row carries only when it is fetched whole. */
const WIDE_COLUMNS = MEMORY_COLUMNS.split(',')
  .map((c) => c.trim())
  .filter((c) => !['memory_id', 'importance', 'created_at', 'last_accessed'].includes(c));

/**
 * How many of the best candidates by the SQL twin of the ranking come whole with the statement:
 * the winners of `rankMemories` are among them unless floating point puts a near-tie the other
 * way round at the edge, when the missing ones are read in a second statement.
 */
export function prefetchCount(limit: number): number {
  return 2 * limit;
}

/** `rankMemories`' default score (the relevance of `matchRelevance`) in SQL, over `scored`. */
function sqlScore(termCount: string, now: string): string {
  const w = RANK_WEIGHTS;
  const rel = `CASE WHEN hit = 0 THEN 0 ELSE least(1, 0.8 * hit / ${termCount}
                 + 0.1 * hit / greatest(doc_terms, 1) + CASE WHEN phrase THEN 0.1 ELSE 0 END) END`;
  const recency = `power(0.5, greatest(0, ${now} - greatest(created_ms, coalesce(accessed_ms, 0)))
                 / ${RECENCY_HALF_LIFE_MS})`;
  return `${w.relevance} * (${rel}) + ${w.importance} * importance + ${w.recency} * ${recency}`;
}

/**
 * The GIN match of a probe. Lexemes carry their tenant, so every row the index returns is the
 * tenant's; but the planner takes the tenant condition (the query's and the policy's) for an
 * independent 10 % filter and, with tsvector's default estimate of a match (0.5 % of the table:
 * thousands of rows), ANDed the GIN scan with a scan of the tenant's btree: all its 100k entries,
 * ~8 ms, for no row fewer. Migration 014 gives `@@~` an estimate of a handful of rows (`eqsel`),
 * so every probe is read from the GIN index alone. (Before it the match was written twice to square
 * the estimate; GIN then evaluated it twice, reading every posting list twice.)
 */
function match(tsquery: string): string {
  return `search_vector @@~ ${tsquery}`;
}

/**
 * `value`, hidden from the planner's estimates: a parameter read through a subquery (an InitPlan,
 * still usable as an index condition) is not a constant even to a custom plan, so a custom plan
 * estimates the pairs probe and the number of terms as a generic plan does, not from the actual
 * tsquery and array. Every search's plan is then the same, and after its first five executions on
 * a connection PostgreSQL keeps the statement's generic plan instead of planning it anew each time
 * (1–3 ms, more under load: every probe is planned, executed or not).
 */
function opaque(value: string): string {
  return `(SELECT ${value})`;
}

interface CandidateRow extends Partial<MemoryRow> {
  memory_id: string;
  importance: number;
  created_ms: number;
  accessed_ms: number | null;
  hit: number;
  doc_terms: number;
  phrase: boolean;
  total: string;
}

/**
 * The term search, one statement. Its stages, chosen in SQL: `pairs`, the memories having at
 * least two of the query's terms (one GIN probe of `pairsQuery`, at most `PROBE_CAP.pairs` rows);
 * only when fewer than `limit` do (a one-time filter: otherwise never executed), `anyterm`, one
 * probe per term of `probes` (`@@~`, migration 012: the leakproof match the index answers under
 * row-level security), each reading at most `PROBE_CAP.term` rows. The answering stage's hits are
 * ordered by `ts_rank` on narrow rows and the best `candidateCount` read again by the row
 * version the probe found (`ctid`: a TID scan, where a primary-key lookup descended the 1M-row
 * btree for each; the statement's one snapshot keeps that version in place): for each, what the
 * ranking needs (importance, times, and the term match from the index's lexemes: how many of the
 * query's terms, how many terms in all, whether the whole query is in the text); the best
 * `prefetchCount` of them by the SQL twin of the ranking also come whole. `total` is the
 * answering stage's number of hits.
 */
async function termCandidates(
  db: TenantDb,
  s: MemorySearch,
  terms: readonly string[],
  prefix: string,
): Promise<CandidateRow[]> {
  const probed = terms.slice(0, MAX_PROBED_TERMS);
  const { rows } = await db.query<CandidateRow>(SEARCH_SQL, [
    ...filterParams(db, s),
    s.limit,
    candidateCount(s.limit),
    terms.map((t) => prefix + t),
    literalNeedle(s.query),
    terms.length,
    s.now,
    s.prefetch ?? prefetchCount(s.limit),
    anyTermTsquery(probed, prefix),
    twoTermTsquery(terms, prefix) ?? null,
    probed.map((t) => anyTermTsquery([t], prefix)),
  ]);
  return rows;
}

/**
 * The statement of `termCandidates`: one text for every query (the probes are an array), so it
 * is prepared once per connection. Parameters: $1–$6 tenant and filters, $7 limit, $8
 * `candidateCount`, $9 the query's terms as lexemes, $10 its literal needle, $11 its number of
 * terms, $12 now (ms), $13 `prefetchCount`, $14 the any-term tsquery (what both stages rank
 * by: `ts_rank` of the pairs tsquery counts each of its terms once, so it ranks as the any-term
 * one of its terms does, at the cost of sorting its 56 operands for every row), $15 the pairs
 * tsquery (null: fewer than two terms), $16 one tsquery per probed term.
 */
const SEARCH_SQL = `WITH pairs AS MATERIALIZED (
       SELECT ctid AS row_ctid, memory_id, ts_rank(search_vector, $14::tsquery) AS rank, importance, created_at
       FROM memory_chest
       WHERE tenant_id = $1 AND ${match(opaque('$15::tsquery'))}
         ${FILTERS}
       LIMIT ${PROBE_CAP.pairs}
     ), anyterm AS MATERIALIZED (
       SELECT DISTINCT hit.row_ctid, hit.memory_id, hit.rank, hit.importance, hit.created_at
       FROM unnest(${opaque('$16::tsquery[]')}) AS probe(q)
       CROSS JOIN LATERAL (
         SELECT ctid AS row_ctid, memory_id, ts_rank(search_vector, $14::tsquery) AS rank, importance, created_at
         FROM memory_chest
         WHERE tenant_id = $1 AND ${match('probe.q')}
           ${FILTERS}
         LIMIT ${PROBE_CAP.term}) hit
       WHERE (SELECT count(*) FROM pairs) < $7
     ), hits AS (
       SELECT * FROM pairs WHERE (SELECT count(*) FROM pairs) >= $7
       UNION ALL
       SELECT * FROM anyterm
     ), best AS (
       SELECT row_ctid, memory_id, rank, count(*) OVER () AS total FROM hits
       ORDER BY rank DESC, importance DESC, created_at DESC
       LIMIT $8
     ), scored AS MATERIALIZED (
       SELECT ${MEMORY_COLUMNS.replace(/(^|,)\s*/g, '$1 m.')}, best.total,
              extract(epoch FROM m.created_at)::float8 * 1000 AS created_ms,
              extract(epoch FROM m.last_accessed)::float8 * 1000 AS accessed_ms,
              length(m.search_vector) - length(ts_delete(m.search_vector, $9::text[])) AS hit,
              length(m.search_vector) AS doc_terms,
              strpos(lower(coalesce(m.title, '') || ' ' || m.content || ' ' || array_to_string(m.tags, ' ')),
                     $10) > 0 AS phrase
       FROM best JOIN memory_chest m ON m.ctid = best.row_ctid AND m.tenant_id = $1
     ), ranked AS (
       SELECT *, row_number() OVER (
         ORDER BY ${sqlScore('$11::float8', '$12::float8')} DESC, created_ms DESC, memory_id) AS pos
       FROM scored
     )
     SELECT memory_id, importance, created_ms, accessed_ms, hit, doc_terms, phrase, total,
            ${WIDE_COLUMNS.map((c) => `CASE WHEN pos <= $13 THEN ${c} END AS ${c}`).join(', ')},
            CASE WHEN pos <= $13 THEN created_at END AS created_at,
            CASE WHEN pos <= $13 THEN last_accessed END AS last_accessed
     FROM ranked`;

/**
 * Searches the unit's tenant's unexpired memories and ranks them with `rankMemories` (relevance,
 * importance, recency). The index (`search_vector`, GIN over tenant-prefixed lexemes) first finds
 * memories having at least two of the query's terms; only when fewer than `limit` do, memories
 * having any (a common term alone can match a large share of a tenant: ranking all of them is the
 * slow part); both in one statement (`termCandidates`). Candidates come best `ts_rank` first, with
 * their term match read from the index's lexemes, and `rankMemories` ranks them all; the winners'
 * whole rows mostly came with them (else one more statement reads the missing ones). A query
 * without any term (only punctuation, `%`, `_`, …) is matched literally as a substring instead.
 * Nothing is written: see `touchMemories`. `total` is how many memories matched in the stage
 * that answered.
 */
export async function searchMemories(
  db: TenantDb,
  s: MemorySearch,
): Promise<{ memories: FoundMemory[]; total: number }> {
  const terms = queryTerms(s.query);
  const needle = literalNeedle(s.query);
  if (terms.length === 0 && needle === '') return { memories: [], total: 0 };
  if (terms.length === 0) return literalSearch(db, s, needle);
  // Lexemes carry their tenant (migration 008): the index holds each tenant's postings apart.
  const rows = await termCandidates(db, s, terms, `${db.ctx.tenantId}/`);
  const ranked = rankMemories(
    s.query,
    rows.map((r) => ({
      memoryId: r.memory_id,
      content: '',
      importance: r.importance,
      createdAt: r.created_ms,
      lastAccessed: r.accessed_ms,
      row: r,
    })),
    { now: s.now, limit: s.limit, relevanceOf: (_q, m) => matchRelevance(terms.length, termMatchOf(m)) },
  );
  const whole = new Map<string, MemoryRow>();
  for (const { row: r } of ranked) if (r.tenant_id != null) whole.set(r.memory_id, r as MemoryRow);
  const missing = ranked.filter((m) => !whole.has(m.memoryId)).map((m) => m.memoryId);
  if (missing.length > 0) {
    const { rows: read } = await db.query<MemoryRow>(
      `SELECT ${MEMORY_COLUMNS} FROM memory_chest WHERE tenant_id = $1 AND memory_id = ANY ($2::text[])`,
      [db.ctx.tenantId, missing],
    );
    for (const r of read) whole.set(r.memory_id, r);
  }
  const memories: FoundMemory[] = [];
  for (const m of ranked) {
    const r = whole.get(m.memoryId);
    // (Gone only if deleted by another transaction between the two statements.)
    if (r) memories.push(Object.assign(fullRow(r), { score: m.score, relevance: m.relevance }));
  }
  return { memories, total: rows.length > 0 ? Number(rows[0]!.total) : 0 };
}

function termMatchOf(m: RankableMemory): TermMatch {
  const r = (m as RankableMemory & { row: CandidateRow }).row;
  return { hit: r.hit, docTerms: r.doc_terms, phrase: r.phrase };
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
