/**
 * Search terms of memories and queries. `memoryTerms` is the TypeScript twin of the SQL function
 * `maihive_memory_terms` (migration 008) that fills the `search_vector` GIN index: CJK runs become
 * character bigrams (a one-character run stays a character), everything else lower-cased ASCII
 * letter/digit words with a plural "s" stripped from words longer than three letters. Only ASCII
 * letters and digits make words, so `%`, `_`, quotes and other metacharacters are never terms.
 */

const CJK_RUN = /[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+/gu;
const ASCII_WORD = /[a-z0-9]+/g;

function stem(word: string): string {
  return word.length > 3 && /[^s]s$/.test(word) ? word.slice(0, -1) : word;
}

/** Distinct terms of a text, as the index stores them (order of first occurrence). */
export function memoryTerms(text: string): string[] {
  const lower = text.toLowerCase();
  const terms = new Set<string>();
  for (const run of lower.match(CJK_RUN) ?? []) {
    const chars = [...run];
    if (chars.length === 1) terms.add(chars[0]!);
    for (let i = 0; i + 1 < chars.length; i++) terms.add(chars[i]! + chars[i + 1]!);
  }
  for (const w of lower.match(ASCII_WORD) ?? []) terms.add(stem(w));
  return [...terms];
}

const EN_STOP = new Set(
  (
    'a an the and or but if then so to of in on at for with from by as is am are was were be been it its ' +
    'this that these those i me my you your he him his she her we us our they them their what which who ' +
    'whom how why when where do doe did have ha had not no yes just can could would should will shall ' +
    'may might must very also than there here about does has thi'
  ).split(/\s+/),
);
// Grammar rather than topic: bigrams made of these characters alone, and common function bigrams.
const ZH_STOP_CHARS = new Set('的了吗呢吧啊呀哦嗯是在我你他她它们这那有和与就都也还很又被把给么什');
const ZH_STOP = new Set(
  '什么 怎么 为什么 哪些 哪里 哪个 一个 一下 没有 就是 还是 可以 不是 知道 觉得 然后 因为 所以 但是 如果 时候 现在'.split(
    ' ',
  ),
);

function isStop(term: string): boolean {
  if (/^[a-z0-9]+$/.test(term)) return EN_STOP.has(term);
  if (ZH_STOP.has(term)) return true;
  return [...term].every((c) => ZH_STOP_CHARS.has(c));
}

/**
 * Terms a query is searched by: its memory terms without stop words and grammar bigrams (all of
 * them when nothing else is left, so "你是谁" still searches something).
 */
export function queryTerms(query: string): string[] {
  const all = memoryTerms(query);
  const topical = all.filter((t) => !isStop(t));
  return topical.length > 0 ? topical : all;
}

const quoted = (t: string) => `'${t.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

/**
 * A tsquery matching any of the terms (terms are CJK or [a-z0-9], quoted all the same). `prefix`
 * is the tenant's lexeme prefix (`acme/`, see `maihive_memory_vector` in migration 008).
 */
export function anyTermTsquery(terms: readonly string[], prefix = ''): string {
  return terms.map((t) => quoted(prefix + t)).join(' | ');
}

/** Most terms the two-term tsquery pairs up (8 terms → 28 pairs). */
export const MAX_PAIRED_TERMS = 8;

/**
 * A tsquery matching texts that have at least two of the terms (any pair of the first
 * `MAX_PAIRED_TERMS`), or undefined for fewer than two terms. Far fewer rows match it than any
 * single common term, so it is searched first; GIN intersects the posting lists.
 */
export function twoTermTsquery(terms: readonly string[], prefix = ''): string | undefined {
  const t = terms.slice(0, MAX_PAIRED_TERMS).map((x) => quoted(prefix + x));
  if (t.length < 2) return undefined;
  const pairs: string[] = [];
  for (let i = 0; i < t.length; i++) for (let j = i + 1; j < t.length; j++) pairs.push(`(${t[i]} & ${t[j]})`);
  return pairs.join(' | ');
}

/** Whitespace collapsed, trimmed, lower-cased: how a query is matched literally as a substring. */
export function literalNeedle(query: string): string {
  return query.replace(/\s+/g, ' ').trim().toLowerCase();
}

/** What relevance needs to know of a memory text: the index's lexemes can tell it without the text. */
export interface TermMatch {
  /** How many of the query's terms the text has. */
  hit: number;
  /** How many distinct terms the text has (`memoryTerms(text).length`). */
  docTerms: number;
  /** Whether the text contains the whole query literally (`literalNeedle`, lower-cased). */
  phrase: boolean;
}

/**
 * Relevance of a match to a query of `queryTermCount` terms, 0..1 (pure): mostly the share of
 * the query's terms the text has, plus a little for how much of the text the match covers (a
 * focused memory beats a long one mentioning the same words) and for containing the whole query
 * literally.
 */
export function matchRelevance(queryTermCount: number, m: TermMatch): number {
  if (queryTermCount === 0 || m.hit === 0) return 0;
  const coverage = m.hit / queryTermCount;
  const focus = m.hit / Math.max(m.docTerms, 1);
  return Math.min(1, 0.8 * coverage + 0.1 * focus + 0.1 * (m.phrase ? 1 : 0));
}

/** The `TermMatch` of a text (what the search reads from the index's lexemes instead). */
export function termMatch(query: string, terms: readonly string[], text: string): TermMatch {
  const doc = new Set(memoryTerms(text));
  let hit = 0;
  for (const t of terms) if (doc.has(t)) hit++;
  const needle = literalNeedle(query);
  return { hit, docTerms: doc.size, phrase: needle !== '' && text.toLowerCase().includes(needle) };
}

/** Relevance of a memory text to a query's terms, 0..1 (pure): `matchRelevance` of its `termMatch`. */
export function termRelevance(query: string, terms: readonly string[], text: string): number {
  if (terms.length === 0) return 0;
  return matchRelevance(terms.length, termMatch(query, terms, text));
}
