/**
 * Whether a message calls the bot. Pure text rules, applied after NFKC normalization (so `＠`,
 * fullwidth letters and `：，` read as their ASCII forms):
 *
 * 1. the adapter already said so (OneBot `at` of `self_id`, maim `mention_bot`);
 * 2. `@<nick:account>` (maim) or `[CQ:at,qq=account]` naming the bot's account;
 * 3. a quoted reply `[回复<nick:account>：…]，说：` to one of the bot's messages (MaiBot weighs a reply
 *    to the bot like a mention);
 * 4. `@account`, `@nickname` or `@alias` (case-insensitive), ending where the `@` token ends;
 * 5. the nickname or an alias (2+ characters) anywhere in the text: ASCII names as whole words,
 *    names with CJK characters as plain substrings (Chinese has no spaces: `麦麦你好`).
 *
 * Someone else's structured mention (`@<小明:123>`), the quoted text and plain `@someone` tokens are
 * removed before rule 5, so `@麦麦子` or a quote of the bot's name is not a false positive (the
 * price: `@麦麦你好`, with no space, is not recognised as `@麦麦`; `麦麦你好` is).
 */

/** Who the bot is on the platform the message came from. */
export interface BotIdentity {
  /** The bot's own account id (QQ number, maim account). */
  accountId: string;
  nickname?: string | undefined;
  /** Other names people call the bot by. */
  aliases?: readonly string[] | undefined;
}

/** Which rule found the mention. */
export type MentionVia = 'adapter' | 'at_account' | 'reply' | 'at_name' | 'name';

export interface MentionResult {
  mentioned: boolean;
  via: MentionVia | undefined;
}

/** Shortest name recognised without an `@` in front: one character matches too much text. */
export const MIN_BARE_NAME_LENGTH = 2;

/** `[回复<nick:id>:quoted],说:` after NFKC (which maps `：，` to `:,`), or `[回复 未知用户:…]`. */
const QUOTE = /^\s*\[回复(?:<([^<>]*):([^<>:]*)>| ?未知用户):([\s\S]*?)\],说:/;
/** `@<nickname:account_id>`; the nickname may itself hold colons, the id does not. */
const STRUCTURED_AT = /@<([^<>]*):([^<>:]+)>/g;
/** CQ codes; `[CQ:at,qq=<id>]` is a mention. */
const CQ_CODE = /\[CQ:([a-z_]+)((?:,[^\]]*)?)\]/gi;
/** A plain `@token`: `@` not inside a word (not an e-mail), up to whitespace or punctuation. */
const PLAIN_AT = /(^|[^A-Za-z0-9_.])@[^\s@,.!?;:、。…~()[\]<>"'“”‘’]+/g;
/** URLs and e-mail addresses: a name inside them is not a mention. */
const LINK = /[a-z][a-z0-9+.-]*:\/\/\S+|[^\s@]+@[^\s@]+\.[^\s@]+/g;
const ASCII_WORD = /[A-Za-z0-9_]/;
const ANY_WORD = /[\p{L}\p{N}_]/u;

function norm(value: string): string {
  return value.normalize('NFKC').toLowerCase();
}

function isAsciiWordChar(ch: string | undefined): boolean {
  return ch !== undefined && ASCII_WORD.test(ch);
}

/**
 * Whether `name` occurs in `hay` as a mention. After `@` (`afterAt`) the name must end where the
 * token ends (no letter or digit of any script follows), so `@麦麦子` is not `@麦麦`. Bare, an ASCII
 * name must be a whole word; a CJK name may sit anywhere.
 */
function occurs(hay: string, name: string, afterAt: boolean): boolean {
  if (name === '') return false;
  const needsLeft = isAsciiWordChar(name[0]);
  const needsRight = isAsciiWordChar(name[name.length - 1]);
  let i = hay.indexOf(name);
  while (i !== -1) {
    const before = hay[i - 1];
    const after = hay[i + name.length];
    const ok = afterAt
      ? before === '@' && !isAsciiWordChar(hay[i - 2]) && (after === undefined || !ANY_WORD.test(after))
      : (!needsLeft || !isAsciiWordChar(before)) && (!needsRight || !isAsciiWordChar(after));
    if (ok) return true;
    i = hay.indexOf(name, i + 1);
  }
  return false;
}

/** Whether `text` mentions the bot, and how. */
export function detectMention(text: string, bot: BotIdentity, adapterFlag = false): MentionResult {
  if (adapterFlag) return { mentioned: true, via: 'adapter' };
  const account = norm(bot.accountId);
  let rest = norm(text);

  const quote = QUOTE.exec(rest);
  if (quote) {
    if (quote[2] !== undefined && quote[2] === account) return { mentioned: true, via: 'reply' };
    rest = rest.slice(quote[0].length);
  }

  let atAccount = false;
  rest = rest.replace(STRUCTURED_AT, (_all, _nick: string, id: string) => {
    if (id === account) atAccount = true;
    return ' ';
  });
  rest = rest.replace(CQ_CODE, (_all, kind: string, args: string) => {
    if (kind === 'at' && /(?:^|,)qq=([^,]*)/.exec(args)?.[1] === account) atAccount = true;
    return ' ';
  });
  if (atAccount) return { mentioned: true, via: 'at_account' };

  const names = [bot.nickname ?? '', ...(bot.aliases ?? [])].map(norm).filter((n) => n !== '');
  if (occurs(rest, account, true)) return { mentioned: true, via: 'at_account' };
  if (names.some((n) => occurs(rest, n, true))) return { mentioned: true, via: 'at_name' };

  const bare = rest.replace(LINK, ' ').replace(PLAIN_AT, '$1 ');
  const longNames = names.filter((n) => [...n].length >= MIN_BARE_NAME_LENGTH);
  if (longNames.some((n) => occurs(bare, n, false))) return { mentioned: true, via: 'name' };
  return { mentioned: false, via: undefined };
}
