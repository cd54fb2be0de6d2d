import { mulberry32 } from '../../src/domain/random';
import {
  DEFAULT_PERSONA_NAME,
  FOOD_SUGGESTIONS_EN,
  FOOD_SUGGESTIONS_ZH,
  lastUtterance,
  LocalProvider,
  localReply,
  personaNameFrom,
} from '../../src/llm/localProvider';
import type { ChatMessage, ProviderRequest } from '../../src/llm/types';

function request(messages: ChatMessage[], hints?: ProviderRequest['hints']): ProviderRequest {
  return {
    model: 'maihive-local',
    messages,
    temperature: 0.7,
    maxTokens: 512,
    timeoutMs: 1000,
    requestType: 'replyer',
    hints,
  };
}

const user = (content: string): ChatMessage => ({ role: 'user', content });
const system = (content: string): ChatMessage => ({ role: 'system', content });

const PROMPTS = [
  '你好',
  '今天吃什么',
  '我最近在学吉他',
  '你觉得明天会下雨吗？',
  'hello',
  'I went hiking today',
  '',
];

describe('mulberry32', () => {
  it('repeats its sequence for the same seed and stays in [0, 1)', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 100 }, () => a());
    expect(Array.from({ length: 100 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(new Set(xs).size).toBeGreaterThan(90);
  });
});

describe('LocalProvider', () => {
  it('gives the same replies for the same seed, call after call', async () => {
    const run = async (seed: number) => {
      const provider = new LocalProvider({ rng: mulberry32(seed) });
      const out: string[] = [];
      for (const p of [...PROMPTS, ...PROMPTS])
        out.push((await provider.complete(request([user(p)]))).content);
      return out;
    };
    expect(await run(7)).toEqual(await run(7));
  });

  it('answers the same prompt the same way without an injected rng', async () => {
    const a = new LocalProvider();
    const b = new LocalProvider();
    for (const p of PROMPTS) {
      expect((await a.complete(request([user(p)]))).content).toBe(
        (await b.complete(request([user(p)]))).content,
      );
    }
  });

  it('greets back in Chinese with the persona name from the hints', async () => {
    const r = await new LocalProvider().complete(request([user('你好')], { personaName: '小蜂' }));
    expect(r.content).toMatch(/^你好/);
    expect(r.content).toContain('小蜂');
  });

  it('greets back in English', async () => {
    const r = await new LocalProvider().complete(request([user('hi there')], { personaName: 'Mai' }));
    expect(r.content).toMatch(/^Hi!/);
    expect(r.content).toContain('Mai');
  });

  it('takes the persona name from the system prompt when no hint is given', async () => {
    const r = await new LocalProvider().complete(
      request([system('你是小蜂，一个活泼的群聊机器人。'), user('你是谁')]),
    );
    expect(r.content).toBe('我是小蜂呀～');
    expect(personaNameFrom([system('You are Hive, a friendly bot.')])).toBe('Hive');
  });

  it('falls back to the default persona name', async () => {
    const r = await new LocalProvider().complete(request([user('你叫什么名字')]));
    expect(r.content).toContain(DEFAULT_PERSONA_NAME);
  });

  it('suggests something from the food list for 今天吃什么, varying with the seed', async () => {
    const seen = new Set<string>();
    for (let seed = 0; seed < 40; seed++) {
      const r = await new LocalProvider({ rng: mulberry32(seed) }).complete(request([user('今天吃什么')]));
      const food = FOOD_SUGGESTIONS_ZH.find((f) => r.content.includes(f));
      expect(food).toBeDefined();
      seen.add(food ?? '');
    }
    expect(seen.size).toBeGreaterThan(3);
  });

  it('suggests food in English too', async () => {
    const r = await new LocalProvider().complete(request([user('What should I eat for dinner?')]));
    expect(FOOD_SUGGESTIONS_EN.some((f) => r.content.includes(f))).toBe(true);
  });

  it('echoes the topic of a statement', async () => {
    const zh = await new LocalProvider().complete(request([user('我最近在学吉他')]));
    expect(zh.content).toContain('最近在学吉他');
    const en = await new LocalProvider().complete(request([user('I went hiking today')]));
    expect(en.content).toContain('went hiking today');
  });

  it('answers the last line of the last user message, without mentions or speaker prefixes', async () => {
    const messages = [
      user('[10:01] 小明: 早上好\n[10:02] 小红: @<麦麦:10001> 今天吃什么'),
      { role: 'assistant', content: '…' } as ChatMessage,
    ];
    expect(lastUtterance(messages)).toBe('今天吃什么');
    const r = await new LocalProvider().complete(request(messages));
    expect(FOOD_SUGGESTIONS_ZH.some((f) => r.content.includes(f))).toBe(true);
  });

  it('brings up a retrieved memory that shares words with the message', async () => {
    const r = await new LocalProvider().complete(
      request([user('周末想去爬山')], { memories: ['小明喜欢猫', '小明上个月去爬山摔了一跤'] }),
    );
    expect(r.content).toMatch(/^我记得小明上个月去爬山摔了一跤。/);
    const none = await new LocalProvider().complete(
      request([user('周末想去爬山')], { memories: ['小明喜欢猫'] }),
    );
    expect(none.content).not.toContain('我记得');
  });

  it('never answers with an empty or long reply', () => {
    const long = '这是一段非常非常长的消息'.repeat(20);
    for (const p of [...PROMPTS, long, '   ', '?!', '[CQ:image,file=x.jpg]']) {
      for (let seed = 0; seed < 5; seed++) {
        const reply = localReply(
          { message: p, memories: ['一段很长很长的记忆'.repeat(10)] },
          mulberry32(seed),
        );
        expect(reply.trim().length).toBeGreaterThan(0);
        expect(reply.length).toBeLessThanOrEqual(90);
      }
    }
  });

  it('estimates token counts from the prompt and the reply', async () => {
    const provider = new LocalProvider();
    const short = await provider.complete(request([user('你好')]));
    const long = await provider.complete(request([system('你是麦麦。'.repeat(50)), user('你好')]));
    expect(short.promptTokens).toBeGreaterThan(0);
    expect(short.completionTokens).toBeGreaterThan(0);
    expect(long.promptTokens).toBeGreaterThan(short.promptTokens + 100);
  });
});
