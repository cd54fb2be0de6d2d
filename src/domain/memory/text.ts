/**
 * Text helpers shared by extraction, summaries and ranking. Chinese has no spaces, so terms are
 * CJK character bigrams (plus single characters for one-character runs) and, for everything
 * else, lower-cased words: the same tokenizer serves mixed Chinese/English chat.
 */

export type Lang = 'zh' | 'en';

const CJK_CHAR = /[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]/;
const CJK_RUN = /[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+/g;
const WORD = /[a-z0-9][a-z0-9'_-]*/g;

/** `zh` when at least a fifth of the letters are CJK, else `en`. */
export function detectLang(text: string): Lang {
  let cjk = 0;
  let letters = 0;
  for (const ch of text) {
    if (CJK_CHAR.test(ch)) {
      cjk++;
      letters++;
    } else if (/[A-Za-z]/.test(ch)) letters++;
  }
  return letters > 0 && cjk / letters >= 0.2 ? 'zh' : 'en';
}

/** Majority language of several texts (ties go to `zh`). */
export function dominantLang(texts: readonly string[]): Lang {
  let zh = 0;
  for (const t of texts) if (detectLang(t) === 'zh') zh++;
  return zh * 2 >= texts.length && zh > 0 ? 'zh' : 'en';
}

const EN_STOP = new Set(
  (
    'a an the and or but if then so to of in on at for with from by as is am are was were be been ' +
    'being it its this that these those i me my you your he him his she her we us our they them ' +
    'their what which who whom how why when where do does did doing have has had not no yes just ' +
    'can could would should will shall may might must very really too also than there here about ' +
    "up down out over again ok okay lol haha im i'm it's don't dont like get got go going know think"
  ).split(/\s+/),
);

// Bigrams that are grammar rather than topic.
const ZH_STOP = new Set(
  (
    '我们 你们 他们 她们 它们 这个 那个 这些 那些 什么 怎么 为什么 今天 明天 昨天 一下 一个 没有 就是 ' +
    '还是 可以 不是 是不 知道 觉得 然后 因为 所以 但是 如果 时候 现在 已经 这样 那样 真的 感觉 哈哈 ' +
    '呵呵 嗯嗯 好的 是的 我是 你是 他是 的话 一起 大家 自己 有点 东西 事情 问题 怎样 这么 那么 还有 ' +
    '我的 你的 他的 她的 了吗 的吗 吗我 是吗 好像 应该 可能 需要 不要 不会 不能 也是 都是 我也 你也'
  ).split(/\s+/),
);

const ZH_STOP_CHARS = new Set('的了吗呢吧啊呀哦嗯哈是在我你他她它们这那有和与就都也还很又被把给');

/** Distinct terms of a text, in order of first occurrence. */
export function tokenize(text: string): string[] {
  const terms: string[] = [];
  const seen = new Set<string>();
  const add = (t: string) => {
    if (!seen.has(t)) {
      seen.add(t);
      terms.push(t);
    }
  };
  const lower = text.toLowerCase();
  for (const run of lower.match(CJK_RUN) ?? []) {
    const chars = [...run];
    if (chars.length === 1) add(chars[0]!);
    for (let i = 0; i + 1 < chars.length; i++) add(chars[i]! + chars[i + 1]!);
  }
  for (const w of lower.replace(CJK_RUN, ' ').match(WORD) ?? []) add(w);
  return terms;
}

/** Terms worth treating as topics: no grammar bigrams, stop words or single characters. */
export function topicTerms(text: string): string[] {
  return tokenize(text).filter((t) => {
    if (CJK_CHAR.test(t)) {
      if ([...t].length < 2 || ZH_STOP.has(t)) return false;
      return ![...t].some((c) => ZH_STOP_CHARS.has(c));
    }
    return t.length >= 3 && !EN_STOP.has(t) && !/^\d+$/.test(t);
  });
}

/** Whitespace collapsed, trimmed, lower-cased: the form two memories are compared in. */
export function normalizeForKey(text: string): string {
  return text.normalize('NFKC').replace(/\s+/g, ' ').trim().toLowerCase();
}

/** At most `max` characters (code points), with an ellipsis when cut. */
export function truncate(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}
