import { tokenize } from './text';

/** What ranking needs to know of a memory. */
export interface RankableMemory {
  memoryId: string;
  content: string;
  /** 0..1. */
  importance: number;
  tags?: readonly string[];
  /** ms since the epoch. */
  createdAt: number;
  /** ms since the epoch; a recently used memory counts as recent. */
  lastAccessed?: number | null;
}

export interface RankOptions {
  /** ms since the epoch (injected: ranking is pure). */
  now: number;
  /** Recency halves every this many ms. Default 7 days. */
  halfLifeMs?: number;
  /** Weights of relevance, importance and recency. Default 0.6 / 0.25 / 0.15. */
  weights?: { relevance: number; importance: number; recency: number };
  /** With a non-empty query, drop memories sharing no term with it. Default true. */
  requireMatch?: boolean;
  /** Most results. Default all. */
  limit?: number;
  /** Relevance of a memory to the query, 0..1. Default `relevance` over content and tags. */
  relevanceOf?: (query: string, m: RankableMemory) => number;
}

export type Ranked<T> = T & { score: number; relevance: number };

/** The default weights of `rankMemories`. */
export const RANK_WEIGHTS = { relevance: 0.6, importance: 0.25, recency: 0.15 } as const;
/** The default half-life of recency, ms (7 days). */
export const RECENCY_HALF_LIFE_MS = 7 * 24 * 3600_000;

const CJK_CHAR = /[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]/u;
const WEAK_CHARS = new Set('的了吗呢吧啊呀哦嗯是在我你他她它们这那有和与就都也还很');

function cjkChars(text: string): Set<string> {
  return new Set([...text].filter((c) => CJK_CHAR.test(c) && !WEAK_CHARS.has(c)));
}

/**
 * Term overlap of a query with a text, 0..1: CJK bigrams and words count fully, single CJK
 * characters half (so "猫咪" still finds "喜欢猫" without spaces to split on).
 */
export function relevance(query: string, text: string): number {
  const q = tokenize(query);
  const qc = cjkChars(query);
  if (q.length === 0 && qc.size === 0) return 0;
  const t = new Set(tokenize(text));
  const tc = cjkChars(text);
  let hit = 0;
  for (const term of q) if (t.has(term)) hit++;
  let charHit = 0;
  for (const c of qc) if (tc.has(c)) charHit++;
  return (hit + 0.5 * charHit) / (q.length + 0.5 * qc.size);
}

/**
 * Orders memories for a query by relevance, importance and recency (pure: `now` is passed in).
 * Ties go to the newer memory, then to the smaller id, so the order is total and reproducible.
 * Only the returned memories are copied (with their score): adding properties to a spread copy of
 * an object costs V8 ~3 µs per object (the copy's hidden class starts a new transition each
 * time), which for a search's 100 candidates was ~0.3 ms of the 10 it returns.
 */
export function rankMemories<T extends RankableMemory>(
  query: string,
  memories: readonly T[],
  o: RankOptions,
): Ranked<T>[] {
  const w = o.weights ?? RANK_WEIGHTS;
  const halfLife = o.halfLifeMs ?? RECENCY_HALF_LIFE_MS;
  const hasQuery = query.trim().length > 0;
  const scored: { m: T; score: number; relevance: number }[] = [];
  for (const m of memories) {
    const rel = !hasQuery
      ? 0
      : o.relevanceOf
        ? o.relevanceOf(query, m)
        : relevance(query, `${m.content} ${(m.tags ?? []).join(' ')}`);
    if (hasQuery && o.requireMatch !== false && !(rel > 0)) continue;
    const seen = Math.max(m.createdAt, m.lastAccessed ?? 0);
    const recency = 0.5 ** (Math.max(0, o.now - seen) / halfLife);
    const score = w.relevance * rel + w.importance * m.importance + w.recency * recency;
    scored.push({ m, score: Math.round(score * 1e6) / 1e6, relevance: rel });
  }
  scored.sort(
    (a, b) =>
      b.score - a.score ||
      b.m.createdAt - a.m.createdAt ||
      (a.m.memoryId < b.m.memoryId ? -1 : a.m.memoryId > b.m.memoryId ? 1 : 0),
  );
  const winners = o.limit === undefined ? scored : scored.slice(0, o.limit);
  return winners.map(({ m, score, relevance: rel }) => Object.assign({}, m, { score, relevance: rel }));
}
