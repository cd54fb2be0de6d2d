import {
  buildHeuristicSummary,
  type ConversationLine,
  deterministicMemoryId,
  extractHeuristicMemories,
  type ExtractionContext,
  extractStatements,
  parseExtraction,
  parseSummary,
  rankMemories,
  relevance,
  shouldEnqueueMemory,
  type SourceMessage,
  summaryDue,
  summaryKeywords,
  tokenize,
} from '../../src/domain/memory';

const T0 = Date.UTC(2030, 0, 1, 10, 0, 0);

function msg(id: string, content: string, name = '张三', userId = 'u1', at = T0): SourceMessage {
  return { messageId: id, content, senderUserId: userId, senderName: name, at };
}

const group: ExtractionContext = { agentId: 'bot', platform: 'qq', chatStreamId: 'g1', chatType: 'group' };
const dm: ExtractionContext = { ...group, chatStreamId: 'p1', chatType: 'private' };

const kinds = (text: string) => extractStatements(text).map((s) => [s.kind, s.object]);

describe('statement extraction (Chinese)', () => {
  it.each([
    ['我喜欢猫', [['like', '猫']]],
    ['我是程序员', [['identity', '程序员']]],
    ['我是一名老师', [['identity', '老师']]],
    ['我叫张伟', [['name', '张伟']]],
    ['我的名字是李四', [['name', '李四']]],
    ['大家叫我小明就行', [['nickname', '小明']]],
    ['我喜欢的颜色是蓝色', [['favorite', '蓝色']]],
    ['我最讨厌香菜了', [['dislike', '香菜']]],
    ['我的生日是5月1日', [['attribute', '5月1日']]],
    ['我今年20岁了', [['attribute', '20岁']]],
    ['哈哈，我是从北京来的', [['origin', '北京']]],
    ['我住在上海', [['residence', '上海']]],
    ['@麦麦 我喜欢吃火锅', [['like', '吃火锅']]],
    ['记住，我的生日是5月1日', [['remember', '我的生日是5月1日']]],
    ['请记住我明天要考试', [['remember', '我明天要考试']]],
    [
      '我喜欢猫。我讨厌狗！',
      [
        ['like', '猫'],
        ['dislike', '狗'],
      ],
    ],
  ])('finds the statement in %s', (text, expected) => {
    expect(kinds(text)).toEqual(expected);
  });

  it.each([
    '我是不是很笨？',
    '你喜欢什么？',
    '我叫什么来着',
    '我喜欢猫吗',
    '我喜欢什么你知道吗',
    '我是说你错了',
    '我爱你',
    '如果我是你',
    '他说我喜欢猫',
    '记住我的名字了吗？',
    '今天天气不错',
  ])('finds no fact in %s', (text) => {
    expect(extractStatements(text)).toEqual([]);
  });

  it('keeps the statement but not the question of "我喜欢猫，你呢？"', () => {
    expect(kinds('我喜欢猫，你呢？')).toEqual([['like', '猫']]);
  });

  it('makes first-person objects third-person', () => {
    expect(kinds('我喜欢我的猫')).toEqual([['like', '自己的猫']]);
  });
});

describe('statement extraction (English)', () => {
  it.each([
    ['I like cats', [['like', 'cats']]],
    ['My name is Bob', [['name', 'Bob']]],
    ['I am a software engineer', [['identity', 'a software engineer']]],
    ["I don't like rainy days", [['dislike', 'rainy days']]],
    ['my favorite color is blue', [['favorite', 'blue']]],
    ["I'm from Berlin", [['origin', 'Berlin']]],
    ['btw I live in Tokyo', [['residence', 'Tokyo']]],
    ['call me Mike', [['nickname', 'Mike']]],
    ['I love my dog', [['like', 'their dog']]],
    ['Remember that my birthday is May 1st', [['remember', 'my birthday is May 1st']]],
    ['I like cats, do you?', [['like', 'cats']]],
    [
      'I hate Mondays and I love Fridays',
      [
        ['dislike', 'Mondays'],
        ['like', 'Fridays'],
      ],
    ],
  ])('finds the statement in %s', (text, expected) => {
    expect(kinds(text)).toEqual(expected);
  });

  it.each([
    'Do you like cats?',
    'What is my name?',
    'Is my name Bob?',
    'do you remember my name',
    'I love you',
    'I like it',
    "I'm a bit tired",
    'remember to buy milk',
    'I think I like cats',
    'Maybe I like cats',
    'how are you doing today',
  ])('finds no fact in %s', (text) => {
    expect(extractStatements(text)).toEqual([]);
  });
});

describe('heuristic memories', () => {
  it('renders third-person facts and preferences with type, importance and tags', () => {
    const out = extractHeuristicMemories(
      [msg('m1', '我叫张伟，我喜欢猫'), msg('m2', 'My name is Bob', 'Bob', 'u2')],
      group,
    );
    expect(out.map((c) => [c.memoryType, c.content, c.scope, c.importance])).toEqual([
      ['fact', '张三的名字是张伟', 'chat', 0.8],
      ['preference', '张三喜欢猫', 'chat', 0.6],
      ['fact', "Bob's name is Bob", 'chat', 0.8],
    ]);
    expect(out[0]!.tags).toEqual(['auto', 'name', 'user:u1']);
    expect(out[0]!.sourceMessageIds).toEqual(['m1']);
  });

  it('names a speaker without a display name by user id', () => {
    const [c] = extractHeuristicMemories([{ ...msg('m1', '我喜欢猫'), senderName: null }], group);
    expect(c!.content).toBe('用户u1喜欢猫');
  });

  it('stores self-descriptions of a private chat agent-wide, unless the policy says chat', () => {
    const m = [msg('m1', '我喜欢猫'), msg('m2', '记住，周五开会')];
    expect(extractHeuristicMemories(m, dm).map((c) => c.scope)).toEqual(['agent', 'chat']);
    expect(
      extractHeuristicMemories(m, { ...dm, policy: { privateSelfFacts: 'chat' } }).map((c) => c.scope),
    ).toEqual(['chat', 'chat']);
  });

  it('derives the same id for the same fact, and keeps one of a repeated fact', () => {
    const a = extractHeuristicMemories(
      [msg('m1', '我喜欢猫'), msg('m2', '我喜欢猫！', '张三', 'u1', T0 + 5)],
      group,
    );
    expect(a).toHaveLength(1);
    const b = extractHeuristicMemories([msg('m1', '我喜欢猫')], group);
    expect(b[0]!.memoryId).toBe(a[0]!.memoryId);
    const other = extractHeuristicMemories([msg('m1', '我喜欢猫')], { ...group, chatStreamId: 'g2' });
    expect(other[0]!.memoryId).not.toBe(a[0]!.memoryId);
    expect(a[0]!.memoryId).toMatch(/^mem_[A-Za-z0-9_-]{23}$/);
  });

  it('makes ids with a source time that sort by it', () => {
    expect(deterministicMemoryId(['x'], 1000) < deterministicMemoryId(['x'], 2000)).toBe(true);
  });
});

describe('summaries', () => {
  it('is due after every full chunk, or for an aged tail of enough messages', () => {
    const t = { everyMessages: 20, maxAgeMs: 3_600_000, minMessages: 5 };
    expect(summaryDue({ count: 19, oldestAt: T0 }, T0 + 1000, t)).toBe(0);
    expect(summaryDue({ count: 45, oldestAt: T0 }, T0 + 1000, t)).toBe(20);
    expect(summaryDue({ count: 7, oldestAt: T0 }, T0 + 3_600_000, t)).toBe(7);
    expect(summaryDue({ count: 4, oldestAt: T0 }, T0 + 9_000_000, t)).toBe(0);
    expect(summaryDue({ count: 0, oldestAt: null }, T0, t)).toBe(0);
  });

  const line = (i: number, sender: string, content: string, isBot = false): ConversationLine => ({
    messageId: `m${i}`,
    sender,
    content,
    isBot,
    at: T0 + i * 60_000,
  });

  it('summarises a Chinese chat with span, participants, topics and highlights', () => {
    const lines = [
      line(0, '张三', '周末去喝咖啡吗'),
      line(1, '李四', '好啊，咖啡馆见'),
      line(2, '麦麦', '我也想喝咖啡', true),
      line(3, '张三', '那就周六下午咖啡馆'),
    ];
    const s = buildHeuristicSummary(lines);
    expect(s.content).toContain('2030-01-01 10:00–10:03 UTC');
    expect(s.content).toContain('3条消息');
    expect(s.content).toContain('参与者：张三、李四');
    expect(s.keywords[0]).toBe('咖啡');
    expect(s.title).toBe('聊天摘要 2030-01-01 10:00');
    expect(buildHeuristicSummary(lines)).toEqual(s);
  });

  it('summarises an English chat in English', () => {
    const s = buildHeuristicSummary([
      line(0, 'Bob', 'Anyone up for hiking on Saturday?'),
      line(1, 'Ann', 'Hiking sounds great, which trail?'),
    ]);
    expect(s.content).toMatch(
      /^2030-01-01 10:00–10:01 UTC, 2 messages\. participants: Bob, Ann\. topics: hiking/,
    );
  });

  it('picks keywords that occur in most messages', () => {
    expect(
      summaryKeywords([
        line(0, 'a', 'the server is offline'),
        line(1, 'b', 'server restarted'),
        line(2, 'c', 'ok'),
      ]),
    ).toEqual(['server', 'offline', 'restarted']);
  });
});

describe('LLM extraction answers', () => {
  const sources = [msg('m1', '我喜欢猫'), msg('m2', '我是医生', '张三', 'u1', T0 + 1)];

  it('reads JSON lines, ignoring broken lines', () => {
    const parsed = parseExtraction(
      [
        '{"type":"preference","content":"张三喜欢猫","importance":0.7,"about":"speaker","message_id":"m1"}',
        'not json',
        '{"type":"fact","content":"张三是医生","message_id":"m2"}',
        '{"type":"opinion","content":"x"}',
      ].join('\n'),
      sources,
      group,
    );
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.rejectedLines).toBe(2);
    expect(
      parsed.candidates.map((c) => [c.memoryType, c.content, c.importance, c.sourceMessageIds[0]]),
    ).toEqual([
      ['preference', '张三喜欢猫', 0.7, 'm1'],
      ['fact', '张三是医生', 0.6, 'm2'],
    ]);
    expect(parsed.candidates.every((c) => c.extractor === 'llm')).toBe(true);
  });

  it('accepts a fenced answer and an empty one', () => {
    const fenced = parseExtraction('```json\n{"type":"fact","content":"张三是医生"}\n```', sources, group);
    expect(fenced.ok && fenced.candidates.length).toBe(1);
    expect(parseExtraction('', sources, group)).toEqual({ ok: true, candidates: [], rejectedLines: 0 });
    expect(parseExtraction('NONE', sources, group)).toEqual({ ok: true, candidates: [], rejectedLines: 0 });
  });

  it('fails an answer without a single valid line (the caller falls back to heuristics)', () => {
    expect(parseExtraction('Sure! Here are the memories: cats.', sources, group).ok).toBe(false);
  });

  it('rejects unusable summaries', () => {
    expect(parseSummary('  张三和李四约了周六喝咖啡。 ')).toBe('张三和李四约了周六喝咖啡。');
    expect(parseSummary('')).toBeUndefined();
    expect(parseSummary('{"summary": 1}')).toBeUndefined();
  });
});

describe('ranking', () => {
  const mem = (id: string, content: string, importance: number, ageDays: number) => ({
    memoryId: id,
    content,
    importance,
    createdAt: T0 - ageDays * 86_400_000,
  });

  it('tokenises Chinese without spaces into bigrams and English into words', () => {
    expect(tokenize('我喜欢猫 and Dogs')).toEqual(['我喜', '喜欢', '欢猫', 'and', 'dogs']);
  });

  it('finds Chinese memories by partial overlap', () => {
    expect(relevance('猫咪', '张三喜欢猫')).toBeGreaterThan(0);
    expect(relevance('咖啡', '张三喜欢猫')).toBe(0);
  });

  it('orders by relevance, then importance and recency, and drops non-matches', () => {
    const ranked = rankMemories(
      'cats',
      [
        mem('a', 'Bob likes dogs', 0.9, 0),
        mem('b', 'Bob likes cats', 0.5, 30),
        mem('c', 'Ann likes cats', 0.9, 1),
      ],
      { now: T0 },
    );
    expect(ranked.map((r) => r.memoryId)).toEqual(['c', 'b']);
  });

  it('orders by importance and recency without a query, deterministically', () => {
    const items = [mem('a', 'x', 0.5, 0), mem('b', 'y', 0.5, 0), mem('c', 'z', 0.9, 10)];
    const first = rankMemories('', items, { now: T0 }).map((r) => r.memoryId);
    expect(first).toEqual(['c', 'a', 'b']);
    expect(rankMemories('', [...items].reverse(), { now: T0 }).map((r) => r.memoryId)).toEqual(first);
  });
});

describe('shouldEnqueueMemory', () => {
  it('enqueues at once for a memorable message and never with memory disabled', () => {
    const messages = [{ messageId: 'msg_a', content: '我喜欢猫' }];
    expect(shouldEnqueueMemory({ enableMemory: true, messages })).toBe(true);
    expect(shouldEnqueueMemory({ enableMemory: false, messages })).toBe(false);
    expect(shouldEnqueueMemory({ enableMemory: true, messages: [] })).toBe(false);
  });

  it('samples other batches deterministically, about one in sampleEvery', () => {
    const batches = Array.from({ length: 1000 }, (_, i) => [
      { messageId: `msg_${i}`, content: '今天天气不错' },
    ]);
    const picks = batches.map((messages) =>
      shouldEnqueueMemory({ enableMemory: true, messages, sampleEvery: 10 }),
    );
    const count = picks.filter(Boolean).length;
    expect(count).toBeGreaterThan(50);
    expect(count).toBeLessThan(150);
    expect(
      batches.map((messages) => shouldEnqueueMemory({ enableMemory: true, messages, sampleEvery: 10 })),
    ).toEqual(picks);
  });
});
