import { detectLang, type Lang } from './text';

/**
 * Heuristic recognition of things people say about themselves ("我喜欢…", "我是…", "I like …",
 * "my name is …") and of explicit requests to remember ("记住…", "remember that …").
 *
 * The rules prefer missing a fact to inventing one: a statement only counts when its clause starts
 * with the first-person pattern (after greetings, fillers and @mentions), and whole sentences that
 * are questions ("我是不是很笨？", "do you like cats", "我叫什么") are skipped, as are objects that
 * are only a pronoun ("我爱你", "I like it") or a question word.
 */

export type StatementKind =
  | 'name'
  | 'nickname'
  | 'identity'
  | 'origin'
  | 'residence'
  | 'attribute'
  | 'favorite'
  | 'like'
  | 'dislike'
  | 'remember';

export interface Statement {
  kind: StatementKind;
  lang: Lang;
  /** What is liked, who the speaker is, what to remember, … (first-person words made third-person). */
  object: string;
  /** The verb as it reads in the memory: `喜欢`, `最讨厌`, `loves`, `doesn't like`. */
  predicate?: string;
  /** What an `attribute`/`favorite` statement is about: `生日`, `color`. */
  attribute?: string;
}

const ZH_LEAD =
  /^(?:(?:@\S+|\[CQ:[^\]]*\])\s*|(?:嗯+|哈+|啊+|哦+|噢+|诶|欸|对了|其实|话说|顺便说一下|顺便说下|说起来|告诉你们?|跟你说|我跟你说|跟大家说|那个|好吧|好的)[\s,，、!！~～.:：]*)+/u;
const EN_LEAD =
  /^(?:(?:@\S+|\[CQ:[^\]]*\])\s*|(?:oh|well|btw|by the way|actually|hey|hi|hello|also|so|ok|okay|yeah|yes|lol|haha|anyway|fyi)\b[\s,!~.:]*)+/i;

function stripLead(s: string): string {
  return s.replace(ZH_LEAD, '').replace(EN_LEAD, '').replace(ZH_LEAD, '').trim();
}

/** Sentences with their closing punctuation (which tells a question apart). */
function sentences(text: string): string[] {
  return text
    .split(/(?<=[。！!？?；;\n…])|(?<=\.)(?=\s|$)/u)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

const ENDS_WITH_QUESTION_MARK = /[?？][\s"'”’)）]*$/u;
const ZH_QUESTION_TAIL = /(?:[吗么]|呢)[\s。.!！~～…]*$/u;
const ZH_A_NOT_A = /是不是|是否|有没有|要不要|对不对|会不会|能不能|可不可以|好不好|行不行/u;
const ZH_QUESTION_WORDS = /什么|为什么|怎么|哪|谁|多少|几[个岁点号月年天]|啥/u;
const EN_QUESTION_START =
  /^(?:do|does|did|is|are|am|was|were|can|could|would|will|should|shall|may|what|who|whom|whose|where|when|why|how|which|have you|has)\b/i;
const EN_QUESTION_WORDS = /\b(?:what|who|whom|whose|which|why|how)\b/i;

/** A clause asks rather than tells: question mark, 吗/呢 tail, A-not-A, or an English question opener. */
function isQuestion(clause: string): boolean {
  const s = stripLead(clause);
  return (
    ENDS_WITH_QUESTION_MARK.test(s) ||
    ZH_QUESTION_TAIL.test(s) ||
    ZH_A_NOT_A.test(s) ||
    EN_QUESTION_START.test(s)
  );
}

const ZH_PRONOUN_ONLY = new Set([
  '你',
  '您',
  '他',
  '她',
  '它',
  '你们',
  '他们',
  '她们',
  '它们',
  '这',
  '那',
  '这个',
  '那个',
  '这样',
  '那样',
  '这些',
  '那些',
  'ta',
]);
const EN_PRONOUN_ONLY = new Set([
  'you',
  'it',
  'that',
  'this',
  'them',
  'him',
  'her',
  'me',
  'so',
  'those',
  'these',
  'there',
  'yourself',
  'you guys',
  'it a lot',
  'that a lot',
]);

// "我是说…" (I mean), "我是觉得…", "我是在…": 是 as emphasis, not identity.
const ZH_NOT_IDENTITY =
  /^(?:说|不是|真|觉得|想|在|要|会|不|因为|被|把|来|去|刚|已经|也|还|就|都|很|太|有点|挺|这么|那么|否|故意|认真|开玩笑|随便|问|以为|怕|对|指|为了|第一次|第\d)/u;

function thirdPersonZh(o: string): string {
  return o.replace(/我(?!们)的/gu, '自己的').replace(/我(?!们)/gu, 'ta');
}

function thirdPersonEn(o: string): string {
  return o
    .replace(/\bmyself\b/gi, 'themselves')
    .replace(/\bmine\b/gi, 'theirs')
    .replace(/\bmy\b/gi, 'their')
    .replace(/\bme\b/gi, 'them');
}

function cleanZh(raw: string, kind: StatementKind): string | undefined {
  let o = raw.trim().replace(/^[：:，,\s]+/u, '');
  o = o.replace(/[\s。.!！~～…"“”]+$/u, '');
  o = o.replace(/(?:啊|呀|哦|啦|了|呢|吧|嘛|哈+|噢|哟|就行|就好|就可以)+$/u, '').trim();
  if (o.length === 0 || ZH_PRONOUN_ONLY.has(o)) return undefined;
  if (/^[你您]/u.test(o)) return undefined;
  if (ZH_QUESTION_WORDS.test(o) || ZH_A_NOT_A.test(o)) return undefined;
  const max = kind === 'remember' ? 80 : 24;
  if ([...o].length > max) return undefined;
  if (kind === 'identity' && ZH_NOT_IDENTITY.test(o)) return undefined;
  return kind === 'remember' ? o : thirdPersonZh(o);
}

function cleanEn(raw: string, kind: StatementKind): string | undefined {
  let o = raw.trim().replace(/^[:,\s]+/, '');
  o = o.replace(/[\s.!~"]+$/, '');
  o = o.replace(/\s+(?:so much|a lot|very much|too|as well|haha|lol)$/i, '').trim();
  const lower = o.toLowerCase();
  if (o.length === 0 || EN_PRONOUN_ONLY.has(lower)) return undefined;
  if (/^(?:you|your)\b/i.test(o)) return undefined;
  if (EN_QUESTION_WORDS.test(o)) return undefined;
  const words = o.split(/\s+/).length;
  const max = kind === 'remember' ? 200 : 60;
  if (o.length > max || (kind !== 'remember' && words > 10)) return undefined;
  if ((kind === 'name' || kind === 'nickname') && words > 4) return undefined;
  if (kind === 'identity' && /^(?:a|an)\s+(?:bit|little|lot|few)\b/i.test(o)) return undefined;
  if (kind === 'remember' && /^to\s/i.test(o)) return undefined; // "remember to …" is a reminder
  return kind === 'remember' ? o : thirdPersonEn(o);
}

interface Rule {
  kind: StatementKind;
  re: RegExp;
  /** Builds the statement from the match; undefined drops it. */
  build: (m: RegExpExecArray) => Omit<Statement, 'kind' | 'lang' | 'object'> & { raw: string };
}

const obj = (i: number) => (m: RegExpExecArray) => ({ raw: m[i] ?? '' });

// Order matters: the first matching rule wins ("我喜欢的颜色是…" before "我喜欢…").
const ZH_RULES: Rule[] = [
  { kind: 'name', re: /^我(?:的)?名字(?:是|叫)(.+)$/u, build: obj(1) },
  { kind: 'name', re: /^我叫(.+)$/u, build: obj(1) },
  { kind: 'nickname', re: /^(?:大家|你们|你)?(?:可以)?(?:叫|喊|称呼)我(.+)$/u, build: obj(1) },
  { kind: 'nickname', re: /^我的(?:昵称|外号|小名)(?:是|叫)(.+)$/u, build: obj(1) },
  {
    kind: 'favorite',
    re: /^我(?:最)?喜欢的([^\s的是]{1,8})是(.+)$/u,
    build: (m) => ({ attribute: m[1] ?? '', raw: m[2] ?? '' }),
  },
  {
    kind: 'dislike',
    re: /^我(?:也|还|真的|其实|一直)?(不喜欢|不太喜欢|不爱|讨厌|最讨厌|很讨厌|特别讨厌|受不了|最怕|害怕)(.+)$/u,
    build: (m) => ({ predicate: m[1] ?? '', raw: m[2] ?? '' }),
  },
  {
    kind: 'like',
    re: /^我(?:也|还|真的|其实|一直|从小就?)?((?:特别|非常|很|超|超级|最|挺|好)?(?:喜欢|热爱|爱))(.+)$/u,
    build: (m) => ({ predicate: m[1] ?? '', raw: m[2] ?? '' }),
  },
  {
    kind: 'attribute',
    re: /^我的(生日|职业|工作|专业|爱好|兴趣|家乡|老家|年龄|学校|星座|血型)(?:是|在)(.+)$/u,
    build: (m) => ({ attribute: m[1] ?? '', raw: m[2] ?? '' }),
  },
  {
    kind: 'attribute',
    re: /^我(?:今年)?(\d{1,3}岁)了?$/u,
    build: (m) => ({ attribute: '年龄', raw: m[1] ?? '' }),
  },
  { kind: 'origin', re: /^我(?:来自|是从)(.+?)(?:来的)?$/u, build: obj(1) },
  { kind: 'residence', re: /^我(?:住在|家在|生活在)(.+)$/u, build: obj(1) },
  { kind: 'identity', re: /^我是(?:一名|一个|一位|个|名)?(.+)$/u, build: obj(1) },
];

const EN_LIKE: Record<string, string> = {
  like: 'likes',
  love: 'loves',
  enjoy: 'enjoys',
  adore: 'adores',
  prefer: 'prefers',
};

function enDislike(verb: string): string {
  const v = verb.toLowerCase().replace(/\s+/g, ' ');
  if (v === 'hate') return 'hates';
  if (v === 'dislike') return 'dislikes';
  if (v.includes('stand')) return "can't stand";
  if (v.includes('enjoy')) return "doesn't enjoy";
  return "doesn't like";
}

const EN_RULES: Rule[] = [
  { kind: 'name', re: /^my name(?: is|'s)\s+(.+)$/i, build: obj(1) },
  { kind: 'name', re: /^(?:i am|i'm) called\s+(.+)$/i, build: obj(1) },
  { kind: 'nickname', re: /^(?:you can |please )?call me\s+(.+)$/i, build: obj(1) },
  {
    kind: 'favorite',
    re: /^my\s+favou?rite\s+([a-z]+(?: [a-z]+)?)\s+is\s+(.+)$/i,
    build: (m) => ({ attribute: (m[1] ?? '').toLowerCase(), raw: m[2] ?? '' }),
  },
  {
    kind: 'dislike',
    re: /^i\s+(?:really\s+|just\s+|also\s+|totally\s+)?(don't like|do not like|dislike|hate|can't stand|cannot stand|don't enjoy|do not enjoy)\s+(.+)$/i,
    build: (m) => ({ predicate: enDislike(m[1] ?? ''), raw: m[2] ?? '' }),
  },
  {
    kind: 'like',
    re: /^i\s+(?:really\s+|just\s+|also\s+|absolutely\s+|totally\s+)?(like|love|enjoy|adore|prefer)\s+(.+)$/i,
    build: (m) => ({ predicate: EN_LIKE[(m[1] ?? '').toLowerCase()] ?? 'likes', raw: m[2] ?? '' }),
  },
  {
    kind: 'attribute',
    re: /^my\s+(birthday|job|profession|hobby|hometown|major|age|school)\s+is\s+(.+)$/i,
    build: (m) => ({ attribute: (m[1] ?? '').toLowerCase(), raw: m[2] ?? '' }),
  },
  {
    kind: 'attribute',
    re: /^(?:i am|i'm)\s+(\d{1,3})(?:\s+years?\s+old)?$/i,
    build: (m) => ({ attribute: 'age', raw: m[1] ?? '' }),
  },
  { kind: 'origin', re: /^(?:(?:i am|i'm)\s+from|i come from)\s+(.+)$/i, build: obj(1) },
  { kind: 'residence', re: /^i\s+(?:live|am living|'m living)\s+in\s+(.+)$/i, build: obj(1) },
  {
    kind: 'identity',
    re: /^(?:(?:i am|i'm)|i work as)\s+((?:a|an)\s+.+)$/i,
    build: obj(1),
  },
];

const ZH_REMEMBER = /^(?:请|帮我|你要|你得|一定要)?记住了?[：:，,\s]*(.+)$/u;
const EN_REMEMBER = /^(?:please\s+)?(?:remember|note|keep in mind)(?:\s+that)?[:,]?\s+(.+)$/i;

function clauses(sentence: string): string[] {
  return sentence
    .split(/[，,；;]|\s+(?:but|and|although|though)\s+(?=(?:i|my)\b)|(?:但是|不过|可是|而且)/iu)
    .map((c) => stripLead(c))
    .filter((c) => c.length > 0);
}

function applyRules(clause: string, lang: Lang): Statement | undefined {
  const rules = lang === 'zh' ? ZH_RULES : EN_RULES;
  const clean = lang === 'zh' ? cleanZh : cleanEn;
  for (const rule of rules) {
    const m = rule.re.exec(clause);
    if (!m) continue;
    const { raw, ...rest } = rule.build(m);
    const object = clean(raw, rule.kind);
    // The first matching rule decides: a rejected object is not retried as a weaker reading.
    return object === undefined ? undefined : { kind: rule.kind, lang, object, ...rest };
  }
  return undefined;
}

/**
 * The self-descriptions and remember-requests of one message, in order. A question yields none:
 * a remember-request must not be a question as a whole, a statement's own clause must not be one,
 * and the last clause of a sentence ending in "?" counts as one ("我喜欢猫，你呢？" keeps 我喜欢猫).
 */
export function extractStatements(text: string): Statement[] {
  const out: Statement[] = [];
  for (const sentence of sentences(text)) {
    const lead = stripLead(sentence);
    const lang = detectLang(lead);
    const remember = (lang === 'zh' ? ZH_REMEMBER : EN_REMEMBER).exec(lead);
    if (remember) {
      if (isQuestion(sentence)) continue;
      const object = (lang === 'zh' ? cleanZh : cleanEn)(remember[1] ?? '', 'remember');
      if (object !== undefined) out.push({ kind: 'remember', lang, object });
      continue;
    }
    const parts = clauses(sentence);
    const asks = ENDS_WITH_QUESTION_MARK.test(sentence);
    parts.forEach((clause, i) => {
      if (isQuestion(clause) || (asks && i === parts.length - 1)) return;
      const s = applyRules(clause, detectLang(clause));
      if (s) out.push(s);
    });
  }
  return out;
}

/** Cheap pre-check for the heartflow glue: does this text say anything worth remembering? */
export function looksMemorable(text: string): boolean {
  return extractStatements(text).length > 0;
}
