import { z } from 'zod';

import { IDENTIFIER_PATTERN } from '../domain/isolationContext';
import { ValidationError } from '../errors';
import {
  type AdapterOutcome,
  chatStreamIdFor,
  finishText,
  type InboundSegment,
  keptMedia,
  MAX_SEGMENT_DATA_BYTES,
  parsePayload,
  type QuotedReply,
} from './types';

/**
 * maim_message `MessageBase` objects as MaiBot adapters send them. The payload carries no id of
 * the bot, so the caller passes the bot's accounts on the message's platform (from the agent's
 * config); a mention is the text `@<nickname:account_id>` naming one of them.
 */

const maimId = z
  .union([z.string().trim().min(1).max(128), z.number().int().nonnegative()])
  .transform((v) => String(v));

const segmentSchema = z.looseObject({
  type: z.string().min(1).max(64),
  data: z.unknown(),
});

/** The parts of `MessageBase` this backend reads; every other field passes through untouched. */
export const maimMessageSchema = z
  .looseObject({
    message_info: z.looseObject({
      platform: z.string().regex(IDENTIFIER_PATTERN, 'must be a valid identifier'),
      message_id: maimId,
      time: z.number().optional(),
      group_info: z.looseObject({ group_id: maimId.nullish(), group_name: z.string().nullish() }).nullish(),
      user_info: z.looseObject({
        user_id: maimId,
        user_nickname: z.string().nullish(),
        user_cardname: z.string().nullish(),
      }),
      additional_config: z.looseObject({ reply_message_id: maimId.nullish() }).nullish(),
    }),
    message_segment: segmentSchema,
    raw_message: z.string().nullish(),
  })
  .describe('A maim_message MessageBase; unknown fields are accepted (third-party payload).');

export type MaimMessage = z.infer<typeof maimMessageSchema>;

/** Who the bot is on the message's platform. */
export interface MaimBotIdentity {
  /** The agent's account ids on this platform. */
  accountIds: readonly string[];
  /** Shown in place of a message that only mentions the bot. */
  nickname?: string | undefined;
}

/** Nesting and size limits of `seglist`s: a hostile payload must not cost unbounded work. */
const MAX_DEPTH = 16;
const MAX_LEAVES = 2000;

interface Leaf {
  type: string;
  data: unknown;
}

function flatten(seg: Leaf, depth: number, path: string, out: Leaf[]): void {
  if (seg.type !== 'seglist') {
    if (out.length >= MAX_LEAVES) {
      throw new ValidationError('invalid adapter event', [
        { path, issue: `more than ${MAX_LEAVES} segments` },
      ]);
    }
    out.push(seg);
    return;
  }
  if (!Array.isArray(seg.data)) {
    throw new ValidationError('invalid adapter event', [
      { path: `${path}.data`, issue: 'a seglist holds a list' },
    ]);
  }
  if (depth >= MAX_DEPTH) {
    throw new ValidationError('invalid adapter event', [{ path, issue: `nested deeper than ${MAX_DEPTH}` }]);
  }
  seg.data.forEach((item: unknown, i) => {
    const child = segmentSchema.safeParse(item);
    if (!child.success) {
      throw new ValidationError('invalid adapter event', [
        { path: `${path}.data.${i}`, issue: 'a segment needs a type and data' },
      ]);
    }
    flatten(child.data, depth + 1, `${path}.data.${i}`, out);
  });
}

const MEDIA: Record<string, string> = { image: '[图片]', emoji: '[表情包]', voice: '[语音]' };
const URL_MEDIA: Record<string, string> = { imageurl: '[图片]', voiceurl: '[语音]', videourl: '[视频]' };
const OTHER: Record<string, string> = {
  video: '[视频]',
  file: '[文件]',
  music: '[音乐]',
  forward: '[合并转发]',
};

/** Other segment data is stored when small; the message row must not carry arbitrary blobs. */
function smallData(data: unknown): Record<string, unknown> {
  const json = JSON.stringify(data) ?? 'null';
  return json.length <= MAX_SEGMENT_DATA_BYTES
    ? { value: data }
    : { dropped: true, size_bytes: json.length, reason: `larger than ${MAX_SEGMENT_DATA_BYTES} bytes` };
}

interface Rendered {
  text: string;
  segment: InboundSegment;
  mentionsBot?: boolean;
  replyTo?: string;
}

function renderLeaf(leaf: Leaf, bots: ReadonlySet<string>): Rendered {
  const { type, data } = leaf;
  if (type === 'text') {
    const text = typeof data === 'string' ? data : '';
    return { text, segment: { type, data: { text } } };
  }
  const media = MEDIA[type];
  if (media !== undefined) {
    return { text: media, segment: { type, data: typeof data === 'string' ? keptMedia(data) : {} } };
  }
  const urlMedia = URL_MEDIA[type];
  if (urlMedia !== undefined) {
    return {
      text: urlMedia,
      segment: { type, data: typeof data === 'string' ? { url: data } : smallData(data) },
    };
  }
  if (type === 'reply' && (typeof data === 'string' || typeof data === 'number')) {
    return { text: '', segment: { type, data: { id: String(data) } }, replyTo: String(data) };
  }
  if (type === 'mention_bot') {
    // MaiBot's own convention: a positive number means the adapter already saw the bot mentioned.
    return { text: '', segment: { type, data: { value: data } }, mentionsBot: Number(data) > 0 };
  }
  if (type === 'at' && (typeof data === 'string' || typeof data === 'number')) {
    const value = String(data);
    const colon = value.lastIndexOf(':');
    const id = colon >= 0 ? value.slice(colon + 1) : value;
    const nick = colon > 0 ? value.slice(0, colon) : undefined;
    if (bots.has(id)) return { text: '', segment: { type, data: { user_id: id } }, mentionsBot: true };
    return { text: `@${nick ?? id}`, segment: { type, data: { user_id: id } } };
  }
  return { text: OTHER[type] ?? '', segment: { type, data: smallData(data) } };
}

/** `[回复<nick:id>：quoted]，说：` (or `[回复 未知用户：…]`) at the start, as the Napcat adapter writes it. */
const QUOTE = /^\s*\[回复(?:<([^<>]*):([^<>:]*)>| ?未知用户)：([\s\S]*?)\]，说：/;
/** `@<nickname:account_id>`; the nickname may itself hold colons, the id does not. */
const MENTION = /@<([^<>]*):([^<>:]+)>/g;

function nonEmpty(value: string | null | undefined): string | undefined {
  return value === null || value === undefined || value === '' ? undefined : value;
}

/** A parsed `MessageBase` as the normalized message, given who the bot is on its platform. */
export function normalizeMaimMessage(msg: MaimMessage, bot: MaimBotIdentity): AdapterOutcome {
  const info = msg.message_info;
  if (msg.message_segment.type === 'notify') return { ignored: true, reason: 'notify' };
  const bots = new Set(bot.accountIds);
  if (bots.has(info.user_info.user_id)) return { ignored: true, reason: 'own_message' };

  const leaves: Leaf[] = [];
  flatten(msg.message_segment, 0, 'message_segment', leaves);
  const rendered = leaves.map((leaf) => renderLeaf(leaf, bots));
  let content = rendered.map((r) => r.text).join('');
  let mentioned = rendered.some((r) => r.mentionsBot === true);
  const segments = rendered.map((r) => r.segment);

  const replyTo = info.additional_config?.reply_message_id ?? rendered.find((r) => r.replyTo)?.replyTo;
  let quote: QuotedReply | undefined;
  const quoted = QUOTE.exec(content);
  if (quoted) {
    quote = {
      messageId: replyTo ?? undefined,
      userId: nonEmpty(quoted[2]),
      nickname: nonEmpty(quoted[1]),
      text: quoted[3] ?? '',
    };
    content = content.slice(quoted[0].length);
    segments.unshift({
      type: 'quote',
      data: {
        id: quote.messageId,
        user_id: quote.userId,
        nickname: quote.nickname,
        text: quote.text,
        // Kept for the heartflow: MaiBot weighs a reply to the bot almost like a mention.
        to_bot: quote.userId !== undefined && bots.has(quote.userId),
      },
    });
  }
  content = content.replace(MENTION, (_all, nick: string, id: string) => {
    if (bots.has(id)) {
      mentioned = true;
      return '';
    }
    return `@${nick === '' ? id : nick}`;
  });

  let text = finishText(content);
  if (text === '' && mentioned) text = `@${bot.nickname ?? bot.accountIds[0] ?? 'bot'}`;
  if (text === '') return { ignored: true, reason: 'empty_message' };

  const groupId = info.group_info?.group_id ?? undefined;
  const chatType = groupId === undefined ? 'private' : 'group';
  return {
    ignored: false,
    platform: info.platform,
    botAccountId: undefined,
    chatType,
    chatStreamId: chatStreamIdFor(info.platform, chatType, groupId ?? info.user_info.user_id),
    clientMessageId: info.message_id,
    text,
    sender: {
      userId: info.user_info.user_id,
      nickname: nonEmpty(info.user_info.user_nickname),
      cardname: nonEmpty(info.user_info.user_cardname),
    },
    groupId,
    groupName: nonEmpty(info.group_info?.group_name),
    replyTo: replyTo ?? undefined,
    mentioned,
    segments,
  };
}

/** Validates a `MessageBase` (400 listing its fields when malformed). */
export function parseMaimMessage(body: unknown): MaimMessage {
  return parsePayload(maimMessageSchema, body);
}

/** Parse and normalize in one step (the route needs the platform in between, tests do not). */
export function maimToInbound(body: unknown, bot: MaimBotIdentity): AdapterOutcome {
  return normalizeMaimMessage(parseMaimMessage(body), bot);
}
