import type { Rng } from '../random';
import { emojiFor } from './fallback';

/** What selection needs of an emoji. */
export interface EmojiCandidate {
  emoji_id: string;
  emotion: string;
  tags: readonly string[];
  usage_weight: number;
}

/**
 * Emotion words that mean the same: the heartflow labels (`happy`, …), MaiBot's Chinese emotion
 * texts and common synonyms. A pack labelled `开心` answers a `happy` request and vice versa.
 */
const SYNONYMS: readonly (readonly string[])[] = [
  ['happy', 'joy', 'laugh', 'funny', '开心', '高兴', '快乐', '笑', '哈哈', '愉快'],
  ['sad', '难过', '伤心', '哭', '悲伤', '委屈'],
  ['angry', '生气', '愤怒', '气', '恼火'],
  ['surprised', 'surprise', '惊讶', '震惊', '吃惊'],
  ['love', 'like', '喜欢', '爱', '可爱', '贴贴'],
  ['confused', '疑惑', '困惑', '问号'],
  ['tired', '累', '困', '疲惫'],
  ['neutral', '平静', '无语'],
];

function norm(s: string): string {
  return s.normalize('NFKC').trim().toLowerCase();
}

/** The words that count as `emotion` (itself and its synonyms), normalised. */
export function emotionWords(emotion: string): Set<string> {
  const e = norm(emotion);
  const group = SYNONYMS.find((g) => g.includes(e));
  return new Set(group ?? [e]);
}

/** Whether an emoji fits the emotion: its emotion or one of its tags is the emotion or a synonym. */
export function fitsEmotion(c: EmojiCandidate, words: ReadonlySet<string>): boolean {
  return words.has(norm(c.emotion)) || c.tags.some((t) => words.has(norm(t)));
}

/** One candidate drawn with probability proportional to `usage_weight` (weights ≤ 0 never). */
export function weightedPick<T extends { usage_weight: number }>(
  items: readonly T[],
  rng: Rng,
): T | undefined {
  const usable = items.filter((i) => i.usage_weight > 0 && Number.isFinite(i.usage_weight));
  const total = usable.reduce((s, i) => s + i.usage_weight, 0);
  if (usable.length === 0 || total <= 0) return undefined;
  let r = rng() * total;
  for (const item of usable) {
    r -= item.usage_weight;
    if (r < 0) return item;
  }
  return usable[usable.length - 1];
}

export type EmojiChoice<T> = { kind: 'pack'; emoji: T } | { kind: 'fallback'; emoji: string };

/**
 * The emoji to send for an emotion: a weighted draw among the tenant's emoji that fit it (by
 * emotion, synonym or tag). Without an emotion, a weighted draw among all of them. When nothing
 * fits, the Unicode emoji of the emotion (`fallback.ts`): a wrong-emotion image is worse than a
 * plain emoji that says the right thing.
 */
export function chooseEmoji<T extends EmojiCandidate>(
  candidates: readonly T[],
  emotion: string | undefined,
  rng: Rng,
): EmojiChoice<T> {
  const pool =
    emotion === undefined ? candidates : candidates.filter((c) => fitsEmotion(c, emotionWords(emotion)));
  const picked = weightedPick(pool, rng);
  return picked ? { kind: 'pack', emoji: picked } : { kind: 'fallback', emoji: emojiFor(emotion) };
}
