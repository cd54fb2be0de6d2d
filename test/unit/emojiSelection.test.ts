import {
  checkEmojiImage,
  chooseEmoji,
  decodeBase64Image,
  type EmojiCandidate,
  emojiEnabled,
  MAX_EMOJI_IMAGE_BYTES,
  sniffImageFormat,
  weightedPick,
} from '../../src/domain/emoji';
import { mulberry32 } from '../../src/domain/random';
import { StatsPeriod } from '../../src/domain/statsPeriod';
import { fakeImage } from '../support/images';

function emoji(id: string, emotion: string, weight = 1, tags: string[] = []): EmojiCandidate {
  return { emoji_id: id, emotion, tags, usage_weight: weight };
}

describe('emoji image checks', () => {
  it.each(['png', 'jpeg', 'gif', 'webp'] as const)('recognises %s from its bytes', (format) => {
    expect(sniffImageFormat(fakeImage(format))).toBe(format);
    expect(checkEmojiImage(fakeImage(format))).toEqual({ ok: true, format });
  });

  it('refuses other bytes (SVG, text, a truncated header) whatever they claim to be', () => {
    expect(sniffImageFormat(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))).toBeUndefined();
    expect(sniffImageFormat(Buffer.from('hello'))).toBeUndefined();
    expect(sniffImageFormat(Buffer.from([0x89, 0x50, 0x4e]))).toBeUndefined();
    expect(sniffImageFormat(Buffer.from('RIFF0000AVI LIST'))).toBeUndefined();
    expect(checkEmojiImage(Buffer.from('hello'))).toEqual({
      ok: false,
      issue: 'not a PNG, JPEG, GIF or WebP image',
    });
  });

  it('takes exactly 512 KiB and refuses one byte more', () => {
    expect(checkEmojiImage(fakeImage('png', MAX_EMOJI_IMAGE_BYTES)).ok).toBe(true);
    const over = checkEmojiImage(fakeImage('png', MAX_EMOJI_IMAGE_BYTES + 1));
    expect(over.ok).toBe(false);
    expect(!over.ok && over.issue).toContain('512 KiB');
  });

  it('decodes strict base64 and data URLs, nothing else', () => {
    const png = fakeImage('png');
    expect(decodeBase64Image(png.toString('base64'))).toEqual(png);
    expect(decodeBase64Image(`data:image/png;base64,${png.toString('base64')}`)).toEqual(png);
    expect(decodeBase64Image('not base64!')).toBeUndefined();
    expect(decodeBase64Image('abc')).toBeUndefined();
    expect(decodeBase64Image('')).toBeUndefined();
  });
});

describe('choosing an emoji by emotion', () => {
  const pool = [
    emoji('happy-heavy', 'happy', 9),
    emoji('happy-light', '开心', 1),
    emoji('sad', 'sad', 1),
    emoji('tagged', 'other', 1, ['愤怒']),
    emoji('never', 'happy', 0),
  ];

  it('draws among the fitting emoji in proportion to their weight (seeded)', () => {
    const rng = mulberry32(42);
    const counts = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) {
      const c = chooseEmoji(pool, 'happy', rng);
      if (c.kind !== 'pack') throw new Error('expected a pack emoji');
      counts.set(c.emoji.emoji_id, (counts.get(c.emoji.emoji_id) ?? 0) + 1);
    }
    // 9 : 1 by weight; the Chinese label is a synonym; weight 0 is never drawn; others never fit.
    expect([...counts.keys()].sort()).toEqual(['happy-heavy', 'happy-light']);
    expect(counts.get('happy-heavy')! / 10_000).toBeGreaterThan(0.87);
    expect(counts.get('happy-heavy')! / 10_000).toBeLessThan(0.93);
  });

  it('is reproducible with the same seed', () => {
    const draw = (seed: number) => {
      const rng = mulberry32(seed);
      return Array.from({ length: 20 }, () => chooseEmoji(pool, 'happy', rng)).map((c) =>
        c.kind === 'pack' ? c.emoji.emoji_id : c.emoji,
      );
    };
    expect(draw(7)).toEqual(draw(7));
  });

  it('matches an emotion by tag and by a Chinese synonym', () => {
    expect(chooseEmoji(pool, 'angry', mulberry32(1))).toMatchObject({
      kind: 'pack',
      emoji: { emoji_id: 'tagged' },
    });
    expect(chooseEmoji(pool, '难过', mulberry32(1))).toMatchObject({
      kind: 'pack',
      emoji: { emoji_id: 'sad' },
    });
  });

  it('falls back to the Unicode emoji of the emotion when nothing fits, rather than a wrong one', () => {
    expect(chooseEmoji(pool, 'surprised', mulberry32(1))).toEqual({ kind: 'fallback', emoji: '😮' });
    expect(chooseEmoji([], 'happy', mulberry32(1))).toEqual({ kind: 'fallback', emoji: '😄' });
    expect(chooseEmoji([], undefined, mulberry32(1))).toEqual({ kind: 'fallback', emoji: '🙂' });
  });

  it('without an emotion draws among every emoji by weight', () => {
    const rng = mulberry32(3);
    const seen = new Set(
      Array.from({ length: 500 }, () => chooseEmoji(pool, undefined, rng)).map((c) =>
        c.kind === 'pack' ? c.emoji.emoji_id : c.emoji,
      ),
    );
    expect([...seen].sort()).toEqual(['happy-heavy', 'happy-light', 'sad', 'tagged']);
  });

  it('weightedPick returns nothing when no weight is positive', () => {
    expect(weightedPick([{ usage_weight: 0 }, { usage_weight: -1 }], mulberry32(1))).toBeUndefined();
    expect(weightedPick([{ usage_weight: 2 }], () => 0.999)).toEqual({ usage_weight: 2 });
  });
});

describe('the emoji switch', () => {
  it('is on unless the message or the chat turns it off', () => {
    expect(emojiEnabled({ messageOption: undefined, chatAutoEmoji: true })).toBe(true);
    expect(emojiEnabled({ messageOption: true, chatAutoEmoji: true })).toBe(true);
    expect(emojiEnabled({ messageOption: false, chatAutoEmoji: true })).toBe(false);
    expect(emojiEnabled({ messageOption: true, chatAutoEmoji: false })).toBe(false);
  });
});

describe('statistics periods', () => {
  it('reads minutes, hours and days up to 90 days', () => {
    expect(StatsPeriod.parse('7d')).toBe(7 * 86_400_000);
    expect(StatsPeriod.parse('24h')).toBe(86_400_000);
    expect(StatsPeriod.parse('30m')).toBe(1_800_000);
    expect(StatsPeriod.safeParse('91d').success).toBe(false);
    expect(StatsPeriod.safeParse('7w').success).toBe(false);
    expect(StatsPeriod.safeParse('0d').success).toBe(false);
  });
});
