/**
 * Small deterministic text cues the heartflow uses without an LLM: the emotion a message shows
 * (for interest and for picking an emoji by emotion) and whether it is low-effort chatter that an
 * emoji answers as well as a sentence would.
 */

/** Emotions as `POST /emoji/send` picks emoji by them. */
export type Emotion = 'happy' | 'sad' | 'angry' | 'surprised' | 'love';

// Checked in order; the first lexicon with a hit names the emotion. Patterns run on NFKC-lowercased text.
const LEXICON: readonly (readonly [Emotion, RegExp])[] = [
  ['angry', /生气|气死|烦死|滚|可恶|讨厌|火大|怒|mad\b|angry|wtf/],
  ['sad', /难过|伤心|哭|呜呜|555+|好累|emo|悲|失望|sad\b|😢|😭/u],
  ['surprised', /卧槽|我靠|震惊|天哪|天啊|不会吧|真的假的|居然|竟然|wow|omg|😮|😱/u],
  ['love', /喜欢你|爱你|贴贴|抱抱|亲亲|可爱|love|❤|😍|🥰/u],
  ['happy', /哈哈|嘿嘿|嘻嘻|开心|高兴|快乐|太好了|好耶|笑死|233|lol|lmao|h{3,}|xswl|😂|😄|😊|🤣/u],
];

const LAUGHTER = /^(?:[哈呵嘿嘻草ha23]|笑死|lol|lmao|xswl|[!~.?])+$/u;
const ACK = /^(?:嗯|哦|噢|喔|啊|额|呃|好|好的|行|ok|okay|k|收到|了解|懂了|确实|是的|对|对的|[!~.?])+$/u;
const EMOJI_ONLY =
  /^(?:\p{Extended_Pictographic}|\p{Emoji_Modifier}|\u200d|\ufe0f|\[表情\]|\[动画表情\]|\[emoji\]|\s)+$/u;

function clean(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(/\s+/g, '');
}

/** The emotion a message shows, if any of the lexicons matches. */
export function detectEmotion(text: string): Emotion | undefined {
  const t = clean(text);
  return LEXICON.find(([, pattern]) => pattern.test(t))?.[0];
}

/** Laughter (`哈哈哈`, `233`, `lol`), acknowledgements (`嗯嗯`, `ok`) or emoji only. */
export function isLowEffort(text: string): boolean {
  const t = clean(text);
  if (t === '') return false;
  return LAUGHTER.test(t) || ACK.test(t) || EMOJI_ONLY.test(text.normalize('NFKC'));
}
