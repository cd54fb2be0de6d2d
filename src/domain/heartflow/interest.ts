import { detectEmotion, isLowEffort } from './emotion';

/**
 * A heuristic interest score (0..1) for one inbound message, deterministic and cheap enough to run
 * on every message. It is the sum of weighted cues, capped at 1:
 *
 * | cue | weight |
 * |---|---|
 * | any text | `INTEREST_BASE` |
 * | length (up to `LENGTH_FULL_CHARS` characters) | up to `INTEREST_LENGTH` |
 * | a question (`?`, 吗/什么/怎么/为什么…, why/how/what…) | `INTEREST_QUESTION` |
 * | keywords shared with the bot's recent messages | up to `INTEREST_TOPIC` |
 * | the bot is mentioned | `INTEREST_MENTION` |
 * | an emotion word, scaled by 2 × emotion_sensitivity | `INTEREST_EMOTION` |
 *
 * Low-effort chatter (laughter, `嗯嗯`, emoji only) keeps `LOW_EFFORT_FACTOR` of its score.
 */

export const INTEREST_BASE = 0.05;
export const INTEREST_LENGTH = 0.15;
/** Characters at which the length cue is full. */
export const LENGTH_FULL_CHARS = 80;
export const INTEREST_QUESTION = 0.2;
export const INTEREST_TOPIC = 0.3;
/** Shared keywords that give the full topic cue. */
export const TOPIC_FULL_KEYWORDS = 3;
export const INTEREST_MENTION = 0.4;
export const INTEREST_EMOTION = 0.1;
export const LOW_EFFORT_FACTOR = 0.5;

export interface InterestContext {
  /** The bot was mentioned (see `detectMention`). */
  mentioned?: boolean;
  /** The bot's recent messages in this stream: words the text shares with them raise interest. */
  recentBotMessages?: readonly string[];
  /** `emotion_sensitivity` of the stream config, 0..1. Default 0.5. */
  emotionSensitivity?: number;
}

const QUESTION =
  /[?]|吗|什么|怎么|为什么|为啥|如何|哪里|哪个|哪儿|谁|几点|多少|是不是|能不能|可不可以|有没有|\b(?:why|how|what|when|where|who|which|can you|do you|is it)\b/;

// Bigrams too common in Chinese chat to say anything about a topic.
const STOP_BIGRAMS = new Set(
  '我们 你们 他们 什么 怎么 这个 那个 就是 还是 没有 可以 不是 一个 一下 知道 觉得 现在 今天 真的 然后 但是 因为 所以 这样'.split(
    ' ',
  ),
);
const STOP_WORDS = new Set(
  "the and you for are but not with this that have was what how why can just your its it's they there from about like".split(
    ' ',
  ),
);
const HAN_RUN = /\p{Script=Han}+/gu;
const WORD_RUN = /[a-z0-9][a-z0-9']{2,}/g;

/**
 * Topic keywords of a text: lower-cased words of 3+ letters/digits and every bigram of a run of
 * Chinese characters (Chinese has no spaces to split on), minus a few very common ones.
 */
export function keywordsOf(text: string): Set<string> {
  const t = text.normalize('NFKC').toLowerCase();
  const out = new Set<string>();
  for (const word of t.match(WORD_RUN) ?? []) if (!STOP_WORDS.has(word)) out.add(word);
  for (const run of t.match(HAN_RUN) ?? []) {
    const chars = [...run];
    for (let i = 0; i + 1 < chars.length; i++) {
      const bigram = `${chars[i] ?? ''}${chars[i + 1] ?? ''}`;
      if (!STOP_BIGRAMS.has(bigram)) out.add(bigram);
    }
  }
  return out;
}

/** How much of the text's vocabulary continues what the bot recently said, 0..1. */
function topicOverlap(text: string, recentBotMessages: readonly string[]): number {
  if (recentBotMessages.length === 0) return 0;
  const own = keywordsOf(text);
  if (own.size === 0) return 0;
  const bot = keywordsOf(recentBotMessages.join('\n'));
  let shared = 0;
  for (const k of own) if (bot.has(k)) shared++;
  return Math.min(1, shared / Math.min(TOPIC_FULL_KEYWORDS, own.size));
}

/** Interest of a message, 0..1 (see the table above). */
export function interestOf(text: string, context: InterestContext = {}): number {
  const trimmed = text.normalize('NFKC').trim();
  const mention = context.mentioned === true ? INTEREST_MENTION : 0;
  if (trimmed === '') return mention;
  const lower = trimmed.toLowerCase();
  const chars = [...trimmed].length;
  const sensitivity = Math.min(1, Math.max(0, context.emotionSensitivity ?? 0.5));

  let score = INTEREST_BASE + INTEREST_LENGTH * Math.min(1, chars / LENGTH_FULL_CHARS);
  if (QUESTION.test(lower)) score += INTEREST_QUESTION;
  score += INTEREST_TOPIC * topicOverlap(trimmed, context.recentBotMessages ?? []);
  if (detectEmotion(trimmed) !== undefined) score += INTEREST_EMOTION * 2 * sensitivity;
  if (isLowEffort(trimmed)) score *= LOW_EFFORT_FACTOR;
  return Math.min(1, score + mention);
}
