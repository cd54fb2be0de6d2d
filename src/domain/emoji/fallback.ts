/**
 * The emoji sent for an `emoji` action when the tenant has no emoji pack for the emotion: one
 * Unicode emoji per emotion label of the heartflow core, `🙂` for anything else.
 */
const BY_EMOTION: Record<string, string> = {
  happy: '😄',
  joy: '😄',
  laugh: '🤣',
  funny: '🤣',
  sad: '😢',
  angry: '😠',
  surprised: '😮',
  love: '🥰',
  tired: '😪',
  confused: '🤔',
  neutral: '🙂',
};

export function emojiFor(emotion: string | undefined): string {
  return (emotion && BY_EMOTION[emotion]) ?? '🙂';
}
