import { z } from 'zod';

/**
 * maim_message 0.6.x WebSocket frames (`Mai-with-u/maim_message`, `message_base.py`,
 * `api_message_base.py`, `converter.py`, `api.py`, `server_ws_api.py`), pure:
 *
 * - plain mode (`ws_connection.py`): a frame is a `MessageBase` dict, or a custom message
 *   `{platform, message_type_name, content, timestamp, is_custom_message: true}`;
 * - API-Server mode: every frame is an envelope `{ver, msg_id, type, meta, payload}` with `type`
 *   `sys_std` (payload: an `APIMessageBase`, whose sender or receiver is in `sender_info` /
 *   `receiver_info` instead of `group_info` / `user_info`), `sys_ack` or `custom_<name>`.
 */

type Dict = Record<string, unknown>;

/** The delivery request a worker relays to a maim_message socket: `params.message` is the reply. */
export const MAIM_SEND_ACTION = 'maim_send';

function isDict(value: unknown): value is Dict {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A custom message of either mode: its name (`message_id_echo`, `command_response`) and content. */
export interface CustomFrame {
  name: string;
  content: unknown;
}

/** The custom message a plain-mode frame is, if it is one (else it is a `MessageBase`). */
export function plainCustomFrame(frame: Dict): CustomFrame | undefined {
  const name = frame.message_type_name;
  if (frame.is_custom_message !== true && typeof name !== 'string') return undefined;
  return { name: typeof name === 'string' ? name : '', content: frame.content };
}

/** What an adapter says after sending our reply: our message id and the platform's. */
export const messageIdEchoSchema = z.looseObject({
  echo: z.union([z.string().min(1).max(128), z.number()]).transform(String),
  actual_id: z.union([z.string().min(1).max(128), z.number()]).transform(String),
});

/** The envelope of an API-Server frame; `payload` is checked by whoever reads it. */
export const apiEnvelopeSchema = z.looseObject({
  ver: z.number().optional(),
  msg_id: z.string().min(1).max(200).optional(),
  type: z.string().min(1).max(100),
  meta: z.unknown().optional(),
  payload: z.unknown().optional(),
});
export type ApiEnvelope = z.infer<typeof apiEnvelopeSchema>;

/**
 * An `APIMessageBase` as the adapter sends it, as a `MessageBase` (`MessageConverter.from_api_receive`):
 * the sender's `group_info` / `user_info` come out of `sender_info`; the rest passes through.
 */
export function fromApiMessage(payload: unknown): unknown {
  if (!isDict(payload) || !isDict(payload.message_info)) return payload;
  const { message_dim: _dim, ...rest } = payload;
  const info = payload.message_info;
  const sender = isDict(info.sender_info) ? info.sender_info : {};
  return {
    ...rest,
    message_info: {
      ...info,
      group_info: info.group_info ?? sender.group_info,
      user_info: info.user_info ?? sender.user_info,
    },
  };
}

/** Where a reply goes: the chat stream's group or user, and the bot's own account there. */
export interface MaimReplyTarget {
  platform: string;
  chatType: 'group' | 'private';
  groupId: string | null;
  groupName: string | null;
  userId: string | null;
  /** The bot's account on the platform, as the sender of a group reply. */
  botAccountId: string | null;
  /** Platform id of the message answered, quoted with a `reply` segment when known. */
  quotedPlatformId: string | null;
}

/**
 * Our reply as a `MessageBase` for the adapter (MaiBot's own shape): `message_id` is our message id
 * (the adapter's `message_id_echo` names it), the segments a `reply` quoting the message answered
 * and the text. The MaiBot-Napcat-Adapter sends to the group when `group_info` and `user_info` are
 * both set, else privately to `user_info.user_id` (`send_handler/main_send_handler.py`); the
 * target is in `receiver_info` too (`MessageConverter.to_api_send`). Undefined when the stream
 * names no group or user.
 */
export function maimReplyMessage(
  target: MaimReplyTarget,
  reply: { messageId: string; text: string; time: number },
): Dict | undefined {
  const { platform } = target;
  const group =
    target.chatType === 'group' && target.groupId
      ? {
          platform,
          group_id: target.groupId,
          ...(target.groupName ? { group_name: target.groupName } : {}),
        }
      : undefined;
  if (target.chatType === 'group' && !group) return undefined;
  const userId = group ? (target.botAccountId ?? target.userId) : target.userId;
  if (!userId) return undefined;
  const user = { platform, user_id: userId };
  const segments: Dict[] = [];
  if (target.quotedPlatformId) segments.push({ type: 'reply', data: target.quotedPlatformId });
  segments.push({ type: 'text', data: reply.text });
  return {
    message_info: {
      platform,
      message_id: reply.messageId,
      time: reply.time,
      ...(group ? { group_info: group } : {}),
      user_info: user,
      receiver_info: { ...(group ? { group_info: group } : {}), user_info: user },
      format_info: { content_format: ['text', 'reply'], accept_format: ['text', 'reply'] },
    },
    message_segment: { type: 'seglist', data: segments },
  };
}

/**
 * A `MessageBase` reply as an `APIMessageBase` (`MessageConverter.to_api_send`): the target only in
 * `receiver_info`, and `message_dim` naming the connection (never a secret: the key's id).
 */
export function toApiSendMessage(message: Dict, dim: { keyId: string; platform: string }): Dict {
  const info = isDict(message.message_info) ? message.message_info : {};
  const { group_info: _group, user_info: _user, ...rest } = info;
  return {
    message_info: rest,
    message_segment: message.message_segment,
    message_dim: { api_key: dim.keyId, platform: dim.platform },
  };
}

/** An API-Server envelope (`server_ws_api.py` `send_message` / `send_custom_message`). */
export function apiEnvelope(
  type: string,
  msgId: string,
  payload: unknown,
  meta: { platform: string; nowSeconds: number; target?: string },
): Dict {
  return {
    ver: 1,
    msg_id: msgId,
    type,
    meta: {
      sender_user: 'server',
      ...(meta.target === undefined ? {} : { target_user: meta.target }),
      platform: meta.platform,
      timestamp: meta.nowSeconds,
    },
    payload,
  };
}

/** The acknowledgement of a frame (`server_ws_connection.py` `_send_ack`). */
export function apiAck(ackedMsgId: string, o: { ackId: string; uuid: string; nowSeconds: number }): Dict {
  return {
    ver: 1,
    msg_id: o.ackId,
    type: 'sys_ack',
    meta: { uuid: o.uuid, acked_msg_id: ackedMsgId, timestamp: o.nowSeconds },
    payload: { status: 'received', server_timestamp: o.nowSeconds },
  };
}

/** A plain-mode custom message (`api.py` `send_custom_message`). */
export function plainCustomMessage(
  platform: string,
  name: string,
  content: unknown,
  nowSeconds: number,
): Dict {
  return { platform, message_type_name: name, content, timestamp: nowSeconds, is_custom_message: true };
}
