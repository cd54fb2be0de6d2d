import { mulberry32, seedFromString } from '../domain/random';
import {
  type ChatMessage,
  estimatePromptTokens,
  estimateTokens,
  type LlmProvider,
  type ProviderRequest,
  type ProviderResult,
  type Rng,
} from './types';

function pick<T>(rng: Rng, items: readonly [T, ...T[]]): T {
  return items[Math.min(items.length - 1, Math.floor(rng() * items.length))] ?? items[0];
}

/** MaiBot's default persona name, used when neither hints nor the system prompt name the bot. */
export const DEFAULT_PERSONA_NAME = '麦麦';

export const FOOD_SUGGESTIONS_ZH = [
  '火锅',
  '拉面',
  '麻辣烫',
  '饺子',
  '黄焖鸡米饭',
  '煲仔饭',
  '寿司',
  '螺蛳粉',
] as const;
export const FOOD_SUGGESTIONS_EN = [
  'ramen',
  'dumplings',
  'a burrito',
  'pho',
  'curry',
  'sushi',
  'pizza',
] as const;

const CJK = /[\u3400-\u4dbf\u4e00-\u9fff]/;
const MAX_TOPIC_CHARS = 16;
const MAX_TOPIC_WORDS = 6;
const MAX_MEMORY_CHARS = 30;

/** What the rules look at. */
export interface LocalReplyInput {
  /** The text being answered (the last line of the last user message). */
  message: string;
  personaName?: string | undefined;
  /** Retrieved memories, most relevant first. */
  memories?: readonly string[] | undefined;
}

/** The line being answered: adapters' mentions, CQ codes, a `[time]` and a `speaker:` prefix removed. */
export function lastUtterance(messages: readonly ChatMessage[]): string {
  const lastUser = [...messages].reverse().find((m) => m.role === 'user');
  const lines = (lastUser?.content ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  let line = lines[lines.length - 1] ?? '';
  line = line
    .replace(/\[CQ:[^\]]*\]/g, ' ')
    .replace(/@<[^>]*>/g, ' ')
    .replace(/^\[[^\]]{1,40}\]\s*/, '');
  const speaker = /^[^:：\s]{1,20}[:：]\s*(.+)$/.exec(line);
  if (speaker?.[1]) line = speaker[1];
  return line
    .replace(/(^|\s)@\S+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** The bot's name from a system prompt such as "你是麦麦，…" or "You are Mai, …". */
export function personaNameFrom(messages: readonly ChatMessage[]): string | undefined {
  const system = messages.find((m) => m.role === 'system')?.content ?? '';
  const zh = /(?:你的名字是|你叫|你是)[「“"]?([^\s，,。.!！?？「」“”"、]{1,12})/.exec(system);
  if (zh?.[1]) return zh[1];
  const en = /(?:your name is|you are)\s+["“]?([A-Z][\w-]{0,31})/i.exec(system);
  return en?.[1];
}

/** Keywords for overlap: CJK bigrams and lower-case words of three letters or more. */
function keywords(text: string): Set<string> {
  const out = new Set<string>();
  for (const run of text.match(/[\u3400-\u4dbf\u4e00-\u9fff]+/g) ?? []) {
    for (let i = 0; i + 1 < run.length; i++) out.add(run.slice(i, i + 2));
  }
  for (const word of text.toLowerCase().match(/[a-z0-9]{3,}/g) ?? []) out.add(word);
  return out;
}

function relevantMemory(message: string, memories: readonly string[]): string | undefined {
  const wanted = keywords(message);
  let best: { memory: string; score: number } | undefined;
  for (const memory of memories) {
    let score = 0;
    for (const k of keywords(memory)) if (wanted.has(k)) score++;
    if (score > 0 && (best === undefined || score > best.score)) best = { memory, score };
  }
  return best?.memory;
}

function clip(text: string, zh: boolean): string {
  const trimmed = text.replace(/[\s。.!！?？~～,，…]+$/u, '');
  if (zh) return trimmed.length > MAX_TOPIC_CHARS ? `${trimmed.slice(0, MAX_TOPIC_CHARS)}…` : trimmed;
  const words = trimmed.split(' ');
  return words.length > MAX_TOPIC_WORDS ? `${words.slice(0, MAX_TOPIC_WORDS).join(' ')}…` : trimmed;
}

function clipMemory(memory: string): string {
  const m = memory.trim().replace(/[。.!！]+$/u, '');
  return m.length > MAX_MEMORY_CHARS ? `${m.slice(0, MAX_MEMORY_CHARS)}…` : m;
}

/** "I went hiking" → "you went hiking": the echo speaks back to the user. */
function mirror(text: string, zh: boolean): string {
  if (zh) return text.replace(/[我你]/g, (w) => (w === '我' ? '你' : '我'));
  const swaps: Record<string, string> = {
    i: 'you',
    "i'm": "you're",
    me: 'you',
    my: 'your',
    mine: 'yours',
    am: 'are',
  };
  return text.replace(/\b(i'm|i|me|my|mine|am)\b/gi, (w) => swaps[w.toLowerCase()] ?? w);
}

const ZH = {
  laugh: /^(哈|嘿|呵|嘻|233|hh)+[!！~～]*$/i,
  greeting: /^(你好|您好|嗨|哈喽|哈啰|早上好|早安|中午好|下午好|晚上好|在吗|在不在|大家好)/,
  food: /吃(什么|啥|点啥|点什么)|饿了|午饭|晚饭|早饭|夜宵/,
  who: /你是谁|你叫什么|你的名字/,
  thanks: /谢谢|多谢|感谢|谢啦/,
  bye: /再见|拜拜|晚安|回头见|下线了/,
  question: /[?？]$|[吗呢么嘛]$|^(为什么|怎么|如何|什么|哪|谁|几)/,
};
const EN = {
  laugh: /^(ha|he|lol|lmao|xd)+[!~]*$/i,
  greeting: /^(hello|hi|hey|yo|good (morning|afternoon|evening)|greetings)\b/i,
  food: /what (should|shall|do|can) (i|we) (eat|have)|what to eat|what'?s for (breakfast|lunch|dinner)|\bhungry\b/i,
  who: /who are you|what'?s your name|what is your name/i,
  thanks: /\b(thanks|thank you|thx)\b/i,
  bye: /\b(bye|goodbye|good ?night|see you|later)\b/i,
  question: /\?$|^(what|why|how|who|where|when|which|is|are|do|does|can|could|should|would)\b/i,
};

/**
 * A short, sensible reply from rules and templates: greets back, introduces itself, suggests food,
 * thanks, says goodbye, brings up a related memory, otherwise echoes the topic. Pure: the same
 * input and random sequence give the same reply.
 */
export function localReply(input: LocalReplyInput, rng: Rng): string {
  const name = input.personaName?.trim() || DEFAULT_PERSONA_NAME;
  const message = input.message.trim();
  const zh = CJK.test(message) || (message === '' && CJK.test(name));
  const rules = zh ? ZH : EN;

  if (message === '')
    return zh ? pick(rng, ['嗯？怎么啦', '我在呢～']) : pick(rng, ["Hm? What's up?", "I'm here."]);
  if (rules.food.test(message)) {
    if (zh) {
      const food = pick(rng, FOOD_SUGGESTIONS_ZH);
      return pick(rng, [`要不试试${food}？`, `今天就吃${food}吧！`, `${food}怎么样？我觉得不错～`]);
    }
    const food = pick(rng, FOOD_SUGGESTIONS_EN);
    return pick(rng, [`How about ${food}?`, `I'd go for ${food} today!`]);
  }
  if (rules.who.test(message)) return zh ? `我是${name}呀～` : `I'm ${name}!`;
  if (rules.thanks.test(message))
    return zh ? pick(rng, ['不客气～', '小事一桩！']) : pick(rng, ["You're welcome!", 'Any time!']);
  if (rules.bye.test(message)) {
    if (zh) return message.includes('晚安') ? '晚安，好梦～' : pick(rng, ['拜拜～', '回头见！']);
    return /night/i.test(message) ? 'Good night, sleep well!' : pick(rng, ['Bye!', 'See you!']);
  }
  if (rules.laugh.test(message))
    return zh ? pick(rng, ['哈哈哈', '笑死我了哈哈', '嘿嘿～']) : pick(rng, ['Haha!', 'lol']);
  const greeting = rules.greeting.exec(message)?.[0];
  if (greeting) {
    if (zh) {
      const back = /^(在吗|在不在)$/.test(greeting) ? '在呢' : greeting;
      return pick(rng, [`${back}！我是${name}，有什么想聊的吗？`, `${back}呀～我是${name}。`]);
    }
    const back = greeting.charAt(0).toUpperCase() + greeting.slice(1).toLowerCase();
    return pick(rng, [`${back}! I'm ${name}. What's up?`, `${back}! ${name} here.`]);
  }

  const topic = clip(message, zh);
  const memory = relevantMemory(message, input.memories ?? []);
  const recall =
    memory === undefined ? '' : zh ? `我记得${clipMemory(memory)}。` : `I remember ${clipMemory(memory)}. `;
  if (rules.question.test(message)) {
    return (
      recall +
      (zh
        ? pick(rng, [`关于「${topic}」，我也说不太准，你怎么看？`, `「${topic}」这个问题好难，我想想～`])
        : pick(rng, [
            `Good question about "${topic}". What do you think?`,
            `Hmm, "${topic}"... let me think.`,
          ]))
    );
  }
  return (
    recall +
    (zh
      ? pick(rng, [
          `「${topic}」啊，听起来挺有意思的，展开说说？`,
          `${mirror(topic, true)}？然后呢～`,
          `原来是「${topic}」呀。`,
        ])
      : pick(rng, [
          `"${topic}", sounds interesting. Tell me more?`,
          `Oh, ${mirror(topic, false)}? And then?`,
        ]))
  );
}

export interface LocalProviderOptions {
  /**
   * Random source for template choice. Default: a PRNG seeded from the prompt, so the same prompt
   * always gets the same reply; pass `mulberry32(n)` to make a whole sequence of calls reproducible.
   */
  rng?: Rng;
}

/**
 * The built-in `local` provider: no network, rule and template based, so MaiHive runs and demos
 * offline. Token counts are estimated; the persona name and memories come from `hints` or, failing
 * that, the system prompt.
 */
export class LocalProvider implements LlmProvider {
  readonly name = 'local';
  private readonly rng: Rng | undefined;

  constructor(options: LocalProviderOptions = {}) {
    this.rng = options.rng;
  }

  complete(req: ProviderRequest): Promise<ProviderResult> {
    const message = lastUtterance(req.messages);
    const personaName = req.hints?.personaName ?? personaNameFrom(req.messages);
    const rng = this.rng ?? mulberry32(seedFromString(`${personaName ?? ''}\u0000${message}`));
    const content = localReply({ message, personaName, memories: req.hints?.memories }, rng);
    return Promise.resolve({
      content,
      promptTokens: estimatePromptTokens(req.messages),
      completionTokens: estimateTokens(content),
    });
  }
}
