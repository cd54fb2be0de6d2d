import { HeartflowConfig } from '../../src/domain/heartflow/config';
import {
  buildReplyPrompt,
  type ChatMessage,
  continuousReplyNote,
  type HistoryMessage,
  MIN_PROMPT_BUDGET,
  type ReplyPromptInput,
  truncate,
} from '../../src/domain/heartflow/prompt';

const T0 = Date.UTC(2025, 0, 15, 12, 0, 0);
const size = (messages: ChatMessage[]): number => messages.reduce((n, m) => n + [...m.content].length, 0);

function history(n: number, chars = 50): HistoryMessage[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `h${i}`,
    sender: i % 3 === 0 ? '麦麦' : `用户${i}`,
    content: `第${i}条` + '字'.repeat(chars),
    isBot: i % 3 === 0,
    at: T0 + i * 1000,
  }));
}

function input(over: Partial<ReplyPromptInput> = {}): ReplyPromptInput {
  return {
    persona: { name: '麦麦', description: '一个爱聊天的女大学生', style: '活泼' },
    recentMessages: history(5),
    memories: [
      { content: '小明喜欢 TypeScript', importance: 0.9 },
      { content: '群里周五聚餐', importance: 0.2 },
    ],
    target: { id: 't', sender: '小明', content: '今天吃什么？' },
    config: HeartflowConfig.parse({ response_style: 'casual', memory_strength: 0.5 }),
    ...over,
  };
}

describe('buildReplyPrompt', () => {
  it('puts persona, style and memories in the system message, history in order, the target last', () => {
    const messages = buildReplyPrompt(input());
    const [system, ...rest] = messages;
    expect(system?.role).toBe('system');
    expect(system?.content).toContain('你是麦麦');
    expect(system?.content).toContain('一个爱聊天的女大学生');
    expect(system?.content).toContain('活泼；casual');
    expect(system?.content).toContain('小明喜欢 TypeScript');
    expect(rest.map((m) => m.role)).toEqual(['assistant', 'user', 'user', 'assistant', 'user', 'user']);
    expect(rest[1]?.content).toMatch(/^用户1：第1条/);
    expect(rest.at(-1)).toEqual({ role: 'user', content: '小明：今天吃什么？' });
  });

  it('keeps the most important memories, as many as memory_strength allows', () => {
    const memories = Array.from({ length: 20 }, (_, i) => ({ content: `记忆${i}`, importance: i / 20 }));
    const at = (strength: number): string =>
      buildReplyPrompt(input({ memories, config: HeartflowConfig.parse({ memory_strength: strength }) }))[0]
        ?.content ?? '';
    expect(at(0)).not.toContain('记忆');
    const half = at(0.5);
    expect(half).toContain('记忆19');
    expect(half).toContain('记忆16');
    expect(half).not.toContain('记忆15');
    expect((at(1).match(/记忆\d+/g) ?? []).length).toBe(8);
  });

  it('drops the oldest history to stay within the character budget', () => {
    const messages = buildReplyPrompt(input({ recentMessages: history(200), budgetChars: 3000 }));
    expect(size(messages)).toBeLessThanOrEqual(3000);
    expect(size(messages)).toBeGreaterThan(2500);
    expect(messages.at(-2)?.content).toContain('第199条');
    expect(messages.some((m) => m.content.includes('第0条'))).toBe(false);
    expect(messages.at(-1)?.content).toBe('小明：今天吃什么？');
  });

  it('stays within budget even with huge persona, memories, target and history', () => {
    const huge = 'x'.repeat(50_000);
    for (const budget of [MIN_PROMPT_BUDGET, 4000, 12_000]) {
      const messages = buildReplyPrompt(
        input({
          persona: { name: huge, description: huge, style: huge },
          memories: Array.from({ length: 50 }, () => ({ content: huge, importance: 1 })),
          recentMessages: history(100, 5000),
          target: { sender: huge, content: huge },
          budgetChars: budget,
        }),
      );
      expect(size(messages)).toBeLessThanOrEqual(budget);
      expect(messages.at(-1)?.role).toBe('user');
    }
    expect(size(buildReplyPrompt(input({ budgetChars: 10 })))).toBeLessThanOrEqual(MIN_PROMPT_BUDGET);
  });

  it('leaves out a history entry that is the target itself and flattens sender names', () => {
    const recent = [
      ...history(2),
      { id: 't', sender: '小明', content: '今天吃什么？', isBot: false, at: T0 },
    ];
    const messages = buildReplyPrompt(
      input({ recentMessages: recent, target: { id: 't', sender: '小\n明', content: '今天吃什么？' } }),
    );
    expect(messages.filter((m) => m.content.includes('今天吃什么'))).toHaveLength(1);
    expect(messages.at(-1)?.content).toBe('小 明：今天吃什么？');
  });
});

describe('truncate', () => {
  it('cuts by code points and marks the cut', () => {
    expect(truncate('😀😀😀', 2)).toBe('😀…');
    expect(truncate('abc', 3)).toBe('abc');
    expect(truncate('abc', 0)).toBe('');
  });
});

describe('continuous-reply note (MaiBot "你已经连续回复了…条消息")', () => {
  it('says nothing below 2, reminds from 2, and says it is too much at the limit', () => {
    expect(continuousReplyNote(0, 3)).toBeUndefined();
    expect(continuousReplyNote(1, 3)).toBeUndefined();
    expect(continuousReplyNote(2, 3)).toBe('你已经连续回复了2条消息，请注意别刷屏。');
    expect(continuousReplyNote(3, 3)).toContain('你已经连续回复了3条消息，你回复的有点多了');
    expect(continuousReplyNote(7, 0)).toBe('你已经连续回复了7条消息，请注意别刷屏。');
  });

  it('goes into the system message of the reply prompt', () => {
    const system = (n: number) =>
      buildReplyPrompt(
        input({ continuousReplies: n, config: { ...input().config, max_continuous_replies: 3 } }),
      )[0]!.content;
    expect(system(0)).not.toContain('连续回复');
    expect(system(3)).toContain('你已经连续回复了3条消息，你回复的有点多了');
  });
});
