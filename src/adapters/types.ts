import { createHash } from 'node:crypto';

import type { z } from 'zod';

import { isIdentifier } from '../domain/isolationContext';
import { ValidationError } from '../errors';
import type { SendInput } from '../ingress/types';

/**
 * What the chat adapters (OneBot v11, maim_message) have in common: their payloads are reduced to
 * one normalized inbound message, or to an acknowledged-and-ignored event. Everything here is pure;
 * the route looks up the agent and hands the message to the ingress.
 */

/** One piece of an inbound message as stored with it (`messages.segments`). */
export interface InboundSegment {
  type: string;
  data: Record<string, unknown>;
}

/** The platform message a message quotes. */
export interface QuotedReply {
  /** Platform message id of the quoted message, when the adapter said it. */
  messageId: string | undefined;
  userId: string | undefined;
  nickname: string | undefined;
  /** The quoted text as the adapter rendered it. */
  text: string;
}

export interface InboundMessage {
  ignored: false;
  platform: string;
  /** The bot account the event was received on, when the payload says it (OneBot `self_id`). */
  botAccountId: string | undefined;
  chatType: 'group' | 'private';
  chatStreamId: string;
  /** The platform's message id: the idempotency key of the send. */
  clientMessageId: string;
  /** Plain text with the bot's mention and the quote stripped, media as placeholders (`[图片]`). */
  text: string;
  sender: { userId: string; nickname: string | undefined; cardname: string | undefined };
  groupId: string | undefined;
  groupName: string | undefined;
  replyTo: string | undefined;
  /** The bot itself was mentioned (not `@全体成员`, not someone else). */
  mentioned: boolean;
  segments: InboundSegment[];
}

/** An event the adapter acknowledges without enqueuing (notices, heartbeats, the bot's own sends). */
export interface IgnoredEvent {
  ignored: true;
  reason: string;
}

export type AdapterOutcome = InboundMessage | IgnoredEvent;

/** Longest message text handed to the ingress (API.md: 1–8000 characters); longer text is cut. */
export const MAX_MESSAGE_CHARS = 8000;

/** Largest media payload (decoded bytes) kept in a stored segment; bigger ones keep only their size. */
export const MAX_SEGMENT_DATA_BYTES = 512 * 1024;

/**
 * The chat stream of a conversation: `<platform>-g-<group_id>` or `<platform>-p-<user_id>`, so the
 * same group always lands in the same stream. Ids that would not make a valid identifier (odd
 * characters, too long) are replaced by a hash of themselves, which is just as deterministic.
 */
export function chatStreamIdFor(platform: string, chatType: 'group' | 'private', id: string): string {
  const kind = chatType === 'group' ? 'g' : 'p';
  const plain = `${platform}-${kind}-${id}`;
  if (isIdentifier(plain)) return plain;
  const digest = createHash('sha256').update(`${platform}\0${kind}\0${id}`).digest('hex').slice(0, 40);
  const hashed = `${platform}-${kind}-h${digest}`;
  return isIdentifier(hashed) ? hashed : `mh-${kind}-${digest}`;
}

/** Decoded size of a base64 string (tolerates a `base64://` or data-URL prefix and padding). */
export function base64Bytes(value: string): number {
  const body = value.replace(/^base64:\/\//, '').replace(/^data:[^,]*,/, '');
  const padding = body.endsWith('==') ? 2 : body.endsWith('=') ? 1 : 0;
  return Math.max(0, Math.floor((body.length * 3) / 4) - padding);
}

/**
 * Keeps a media payload in a segment when it is small enough. Bigger payloads are dropped (the
 * message row must stay small; the queue job carries it too) and the segment says so.
 */
export function keptMedia(base64: string): Record<string, unknown> {
  const size = base64Bytes(base64);
  return size <= MAX_SEGMENT_DATA_BYTES
    ? { base64, size_bytes: size }
    : { dropped: true, size_bytes: size, reason: `larger than ${MAX_SEGMENT_DATA_BYTES} bytes` };
}

/**
 * Trims and cuts the rendered text to what the ingress accepts (counted in code points, like the
 * ingress): a long chat message is still a message, and the adapter cannot ask the user to resend.
 */
export function finishText(text: string): string {
  const trimmed = text.trim();
  if (trimmed.length <= MAX_MESSAGE_CHARS) return trimmed;
  const points = [...trimmed];
  return points.length > MAX_MESSAGE_CHARS ? points.slice(0, MAX_MESSAGE_CHARS).join('').trimEnd() : trimmed;
}

/**
 * Parses a third-party payload, listing every failing field like the route layer does. Unknown
 * fields are kept (the schemas are loose): adapters add fields freely, and rejecting them would
 * break with every NapCat release. This is the one documented exception to "unknown fields
 * rejected".
 */
export function parsePayload<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const fields = result.error.issues.map((issue) => {
    const path = issue.path.map(String).join('.');
    return { path: path === '' ? 'body' : path, issue: issue.message };
  });
  throw new ValidationError('invalid adapter event', fields);
}

/** The send the ingress gets for a normalized message, on behalf of the resolved agent. */
export function toSendInput(msg: InboundMessage, agentId: string, source: 'onebot' | 'maim'): SendInput {
  return {
    message: msg.text,
    chatStreamId: msg.chatStreamId,
    agentId,
    platform: msg.platform,
    clientMessageId: msg.clientMessageId,
    chatType: msg.chatType,
    replyTo: msg.replyTo,
    senderInfo: {
      user_id: msg.sender.userId,
      username: msg.sender.nickname,
      cardname: msg.sender.cardname,
      group_id: msg.groupId,
      group_name: msg.groupName,
    },
    segments: msg.segments,
    mentioned: msg.mentioned,
    source,
  };
}
