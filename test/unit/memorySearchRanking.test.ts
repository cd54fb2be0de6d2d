import {
  anyTermTsquery,
  matchRelevance,
  memoryTerms,
  queryTerms,
  type RankableMemory,
  rankMemories,
  termMatch,
  termRelevance,
  twoTermTsquery,
} from '../../src/domain/memory';

const NOW = Date.UTC(2026, 11, 1);
const DAY = 24 * 3600_000;

describe('memoryTerms', () => {
  it('makes CJK bigrams without spaces, lower-cased ASCII words with a plural s stripped', () => {
    expect(memoryTerms('喜欢吃火锅')).toEqual(['喜欢', '欢吃', '吃火', '火锅']);
    expect(memoryTerms('猫')).toEqual(['猫']);
    expect(memoryTerms('Likes CATS, glass and bus')).toEqual(['like', 'cat', 'glass', 'and', 'bus']);
    expect(memoryTerms('玩 Minecraft 服务器')).toEqual(['玩', '服务', '务器', 'minecraft']);
  });

  it('never makes a term of %, _, quotes or other SQL metacharacters', () => {
    expect(memoryTerms("100% a_b '; DROP --")).toEqual(['100', 'a', 'b', 'drop']);
    expect(memoryTerms('%_\\\'"')).toEqual([]);
  });
});

describe('queryTerms', () => {
  it('drops stop words and grammar bigrams, unless nothing else is left', () => {
    expect(queryTerms('小明喜欢什么')).toEqual(['小明', '明喜', '喜欢', '欢什']);
    expect(queryTerms('what does Bob like')).toEqual(['bob', 'like']);
    expect(queryTerms('你是谁')).toEqual(['是谁']);
    expect(queryTerms('你是')).toEqual(['你是']);
  });

  it('quotes every term of the tsquery', () => {
    expect(anyTermTsquery(['火锅', "it's"])).toBe("'火锅' | 'it''s'");
    expect(anyTermTsquery(['火锅'], 'acme/')).toBe("'acme/火锅'");
    expect(twoTermTsquery(['a', 'b'], 'acme/')).toBe("('acme/a' & 'acme/b')");
  });

  it('pairs terms for the two-term stage, at most 8 of them', () => {
    expect(twoTermTsquery(['a'])).toBeUndefined();
    expect(twoTermTsquery(['a', 'b', 'c'])).toBe("('a' & 'b') | ('a' & 'c') | ('b' & 'c')");
    const many = twoTermTsquery(Array.from({ length: 20 }, (_, i) => `t${i}`))!;
    expect(many.split(' | ')).toHaveLength(28);
  });
});

describe('termRelevance', () => {
  it('is the share of query terms present, more for a focused text and a literal match', () => {
    const terms = queryTerms('火锅');
    expect(termRelevance('火锅', terms, '不喜欢吃面条')).toBe(0);
    const focused = termRelevance('火锅', terms, '火锅');
    const long = termRelevance('火锅', terms, '小明昨天和同事们一起去吃了重庆火锅');
    expect(focused).toBeGreaterThan(long);
    expect(long).toBeGreaterThan(0.8);
    expect(termRelevance('x', [], 'x')).toBe(0);
  });

  it('comes from the term match alone (what the search reads from the index lexemes)', () => {
    const q = 'Alice 火锅';
    const terms = queryTerms(q);
    expect(termMatch(q, terms, '小明 alice 火锅 hotpot')).toEqual({ hit: 2, docTerms: 4, phrase: true });
    expect(termMatch(q, terms, 'Alice 吃火锅')).toEqual({ hit: 2, docTerms: 3, phrase: false });
    expect(matchRelevance(2, { hit: 2, docTerms: 4, phrase: true })).toBeCloseTo(0.8 + 0.05 + 0.1, 12);
    expect(matchRelevance(2, { hit: 1, docTerms: 1, phrase: false })).toBeCloseTo(0.4 + 0.1, 12);
    expect(matchRelevance(2, { hit: 0, docTerms: 3, phrase: true })).toBe(0);
    expect(matchRelevance(0, { hit: 1, docTerms: 1, phrase: true })).toBe(0);
    for (const text of ['小明 alice 火锅 hotpot', 'Alice 吃火锅', 'bob', '火锅'])
      expect(matchRelevance(terms.length, termMatch(q, terms, text))).toBe(termRelevance(q, terms, text));
  });
});

describe('rankMemories with the search relevance and a fixed clock', () => {
  const base: RankableMemory[] = [
    { memoryId: 'mem_a', content: '小明喜欢火锅', importance: 0.5, createdAt: NOW - 30 * DAY },
    { memoryId: 'mem_b', content: '小明喜欢火锅', importance: 0.5, createdAt: NOW - DAY },
    { memoryId: 'mem_c', content: '小明喜欢火锅', importance: 0.9, createdAt: NOW - 30 * DAY },
    { memoryId: 'mem_d', content: '小红喜欢看书', importance: 1, createdAt: NOW },
  ];
  const rank = (memories: readonly RankableMemory[], now = NOW) =>
    rankMemories('小明火锅', memories, {
      now,
      relevanceOf: (q, m) => termRelevance(q, queryTerms(q), m.content),
    }).map((m) => m.memoryId);

  it('puts relevance first, then importance and recency; drops what does not match', () => {
    const order = rank(base);
    expect(order).not.toContain('mem_d');
    // The same text: the more important and the newer one beat mem_a; a day's recency (0.15 of
    // the score) outweighs 0.4 more importance (0.25 of it) at a month's age.
    expect(order).toEqual(['mem_b', 'mem_c', 'mem_a']);
  });

  it('counts a recent access as recent, with the clock passed in', () => {
    const accessed = base.map((m) => (m.memoryId === 'mem_a' ? { ...m, lastAccessed: NOW - 1000 } : m));
    expect(rank(accessed).indexOf('mem_a')).toBeLessThan(rank(accessed).indexOf('mem_b'));
    // A month later nothing is recent any more: equal memories fall back to the newer one.
    expect(rank(base, NOW + 365 * DAY)).toEqual(['mem_c', 'mem_b', 'mem_a']);
  });

  it('is reproducible whatever the input order', () => {
    expect(rank([...base].reverse())).toEqual(rank(base));
  });
});
