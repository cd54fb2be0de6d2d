import { z } from 'zod';

import {
  type AdapterOutcome,
  chatStreamIdFor,
  finishText,
  type InboundSegment,
  keptMedia,
  parsePayload,
} from './types';

/**
 * OneBot v11 events as NapCat / go-cqhttp POST them: message events become one normalized inbound
 * message; notices, requests, meta events and the bot's own sends are acknowledged and ignored.
 */

/** Platform of OneBot accounts in `agent_accounts` and of the chat streams derived here. */
export const ONEBOT_PLATFORM = 'qq';

/** OneBot ids are numbers in go-cqhttp and NapCat, strings in some other implementations. */
const platformId = z
  .union([z.number().int().nonnegative(), z.string().trim().min(1).max(64)])
  .transform((v) => String(v));

const segmentSchema = z.looseObject({
  type: z.string().min(1).max(64),
  data: z.record(z.string(), z.unknown()).nullish(),
});

/** Just enough to route an event by kind; everything else passes through untouched. */
export const oneBotEnvelopeSchema = z
  .looseObject({
    post_type: z.string().min(1).max(64),
    self_id: platformId.optional(),
  })
  .describe(
    'A OneBot v11 event as NapCat/go-cqhttp POST it; unknown fields are accepted (third-party payload).',
  );

const messageEventSchema = z.looseObject({
  post_type: z.literal('message'),
  message_type: z.enum(['private', 'group']),
  sub_type: z.string().optional(),
  self_id: platformId,
  message_id: platformId,
  user_id: platformId,
  group_id: platformId.optional(),
  group_name: z.string().nullish(),
  message: z.union([z.array(segmentSchema).max(1000), z.string()]),
  sender: z
    .looseObject({
      user_id: platformId.optional(),
      nickname: z.string().nullish(),
      card: z.string().nullish(),
    })
    .nullish(),
});

export type OneBotMessageEvent = z.infer<typeof messageEventSchema>;

const CQ_CODE = /\[CQ:([A-Za-z0-9_.-]+)((?:,[^\]]*)?)\]/g;

function unescapeCq(text: string, inParam: boolean): string {
  let out = text.replace(/&#91;/g, '[').replace(/&#93;/g, ']');
  if (inParam) out = out.replace(/&#44;/g, ',');
  return out.replace(/&amp;/g, '&');
}

/** The CQ-code string form (`message_format: "string"`) as the array form. */
export function parseCqString(message: string): InboundSegment[] {
  const segments: InboundSegment[] = [];
  const pushText = (raw: string) => {
    if (raw !== '') segments.push({ type: 'text', data: { text: unescapeCq(raw, false) } });
  };
  let last = 0;
  for (const match of message.matchAll(CQ_CODE)) {
    pushText(message.slice(last, match.index));
    const data: Record<string, unknown> = {};
    for (const pair of (match[2] ?? '').split(',').slice(1)) {
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      data[pair.slice(0, eq)] = unescapeCq(pair.slice(eq + 1), true);
    }
    segments.push({ type: match[1]!, data });
    last = match.index + match[0].length;
  }
  pushText(message.slice(last));
  return segments;
}

function str(value: unknown): string | undefined {
  if (typeof value === 'string') return value === '' ? undefined : value;
  if (typeof value === 'number') return String(value);
  return undefined;
}

/** Media placeholders, in the words MaiBot uses for them. */
const PLACEHOLDERS: Record<string, string> = {
  face: '[表情]',
  mface: '[表情包]',
  record: '[语音]',
  video: '[视频]',
  file: '[文件]',
  forward: '[合并转发]',
  node: '[合并转发]',
  json: '[卡片消息]',
  xml: '[卡片消息]',
  share: '[链接]',
  location: '[位置]',
  music: '[音乐]',
  contact: '[名片]',
  dice: '[骰子]',
  rps: '[猜拳]',
  poke: '[戳一戳]',
  shake: '[戳一戳]',
};

/** Stored form of a segment: its data as sent, except inline media that is too large. */
function storedSegment(seg: InboundSegment): InboundSegment {
  const file = seg.data.file;
  if (typeof file !== 'string' || !file.startsWith('base64://')) return seg;
  const { file: _inline, ...rest } = seg.data;
  const media = keptMedia(file.slice('base64://'.length));
  return {
    type: seg.type,
    data:
      'dropped' in media ? { ...rest, media } : { ...rest, file, media: { size_bytes: media.size_bytes } },
  };
}

/**
 * A OneBot message event as the normalized message. The bot is mentioned by an `at` segment
 * naming `self_id` (stripped from the text); other mentions read `@name` (or `@qq`).
 */
export function normalizeOneBotMessage(event: OneBotMessageEvent): AdapterOutcome {
  const selfId = event.self_id;
  const raw: InboundSegment[] =
    typeof event.message === 'string'
      ? parseCqString(event.message)
      : event.message.map((s) => ({ type: s.type, data: s.data ?? {} }));
  if (str(event.user_id) === selfId) return { ignored: true, reason: 'own_message' };

  let text = '';
  let mentioned = false;
  let replyTo: string | undefined;
  for (const seg of raw) {
    const d = seg.data;
    switch (seg.type) {
      case 'text':
        text += typeof d.text === 'string' ? d.text : '';
        break;
      case 'at': {
        const qq = str(d.qq);
        if (qq === selfId) mentioned = true;
        else if (qq === 'all') text += '@全体成员';
        else if (qq !== undefined) text += `@${str(d.name) ?? qq}`;
        break;
      }
      case 'reply':
        replyTo ??= str(d.id);
        break;
      case 'image':
        // NapCat marks stickers with a non-zero sub_type; MaiBot treats them as 表情包.
        text += Number(d.sub_type ?? 0) === 0 ? '[图片]' : '[表情包]';
        break;
      case 'markdown':
        text += typeof d.content === 'string' ? d.content : '[消息]';
        break;
      default:
        text += PLACEHOLDERS[seg.type] ?? '';
    }
  }

  let finished = finishText(text);
  // A message that only mentions the bot still asks for its attention; keep the mention as text.
  if (finished === '' && mentioned) finished = `@${selfId}`;
  if (finished === '') return { ignored: true, reason: 'empty_message' };

  const chatType = event.message_type;
  const groupId = chatType === 'group' ? event.group_id : undefined;
  if (chatType === 'group' && groupId === undefined) {
    return { ignored: true, reason: 'group_message_without_group_id' };
  }
  return {
    ignored: false,
    platform: ONEBOT_PLATFORM,
    botAccountId: selfId,
    chatType,
    chatStreamId: chatStreamIdFor(ONEBOT_PLATFORM, chatType, groupId ?? event.user_id),
    clientMessageId: event.message_id,
    text: finished,
    sender: {
      userId: event.user_id,
      nickname: str(event.sender?.nickname),
      cardname: str(event.sender?.card),
    },
    groupId,
    groupName: str(event.group_name),
    replyTo,
    mentioned,
    segments: raw.map(storedSegment),
  };
}

/**
 * Any OneBot event: message events (private and group) are normalized, every other kind is
 * ignored. A malformed message event is a 400 listing its fields.
 */
export function oneBotToInbound(body: unknown): AdapterOutcome {
  const envelope = parsePayload(oneBotEnvelopeSchema, body);
  if (envelope.post_type !== 'message') {
    // `message_sent` is NapCat's echo of the bot's own messages: never an inbound message.
    return { ignored: true, reason: envelope.post_type };
  }
  const kind = (body as { message_type?: unknown }).message_type;
  // Guild and other extension message types are not chats this backend serves.
  if (typeof kind === 'string' && kind !== 'group' && kind !== 'private') {
    return { ignored: true, reason: `message_type ${kind}` };
  }
  return normalizeOneBotMessage(parsePayload(messageEventSchema, body));
}
