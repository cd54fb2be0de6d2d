/**
 * Whether the bot may answer with an emoji here. The one place the switch is read, so that
 * hierarchical configuration (the `emoji` category, tenant < agent < platform < chat) can take
 * over by changing this function's sources only. Today's sources: the message's
 * `options.enable_emoji` (a message turning it off wins) and the chat's heartflow config
 * `enable_auto_emoji`.
 */
export interface EmojiSwitchSources {
  /** `options.enable_emoji` of the message being answered; undefined when it said nothing. */
  messageOption: boolean | undefined;
  /** The chat stream's heartflow `enable_auto_emoji`. */
  chatAutoEmoji: boolean;
}

export function emojiEnabled(s: EmojiSwitchSources): boolean {
  return s.messageOption !== false && s.chatAutoEmoji;
}
