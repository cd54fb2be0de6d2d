/**
 * A bot reply as a OneBot v11 action (`send_group_msg` / `send_private_msg`, array message
 * format, `botuniverse/onebot-11` api/public.md and message/array.md), and what a OneBot
 * implementation's answer to an action means. Pure: the reverse WebSocket and the HTTP API
 * delivery both use it.
 */

/** One OneBot message segment (array format). */
export interface OneBotSegment {
  type: string;
  data: Record<string, unknown>;
}

export interface OneBotAction {
  action: 'send_group_msg' | 'send_private_msg';
  params: Record<string, unknown>;
}

/** Where a reply goes and what it quotes, from the chat stream and the message it answers. */
export interface ReplyTarget {
  chatType: 'group' | 'private';
  groupId: string | null;
  userId: string | null;
  /** Platform message id of the message answered (its `client_message_id`), when known. */
  quotedPlatformId: string | null;
}

/**
 * OneBot ids are numbers in the spec (go-cqhttp and NapCat accept strings too); a decimal id that
 * fits a safe integer is sent as a number, anything else as it was stored.
 */
export function oneBotId(id: string): number | string {
  if (/^\d{1,15}$/.test(id)) return Number(id);
  return id;
}

/**
 * The reply as segments: a `reply` quoting the message answered (when its platform id is known)
 * and the text. Unicode emoji replies are text, which QQ shows as they are; an emoji image of a
 * pack goes as an `image` segment (`base64://`, the text as its summary) instead of its text.
 */
export function replySegments(
  text: string,
  quotedPlatformId: string | null,
  image?: { base64: string },
): OneBotSegment[] {
  const segments: OneBotSegment[] = [];
  if (quotedPlatformId) segments.push({ type: 'reply', data: { id: quotedPlatformId } });
  if (image) segments.push({ type: 'image', data: { file: `base64://${image.base64}`, summary: text } });
  else segments.push({ type: 'text', data: { text } });
  return segments;
}

/** The action that sends `text` (or the image) to the target; undefined when the stream names no group or user. */
export function sendAction(
  target: ReplyTarget,
  text: string,
  image?: { base64: string },
): OneBotAction | undefined {
  const message = replySegments(text, target.quotedPlatformId, image);
  if (target.chatType === 'group') {
    if (!target.groupId) return undefined;
    return { action: 'send_group_msg', params: { group_id: oneBotId(target.groupId), message } };
  }
  if (!target.userId) return undefined;
  return { action: 'send_private_msg', params: { user_id: oneBotId(target.userId), message } };
}

/** What an action's answer says. */
export type ActionVerdict =
  | { ok: true; platformMessageId: string | null }
  | { ok: false; retcode: number | null; message: string; retry: boolean };

/**
 * A OneBot action response `{status, retcode, data, message|msg|wording, echo}`. Only `retcode`
 * 0 is success (NapCat answers HTTP 200 with a non-zero retcode on errors). 1400 (bad request)
 * and 1404 (unsupported action) will not pass on a later attempt; other failures may (QQ's own
 * limits, a group briefly unavailable).
 */
export function actionVerdict(response: unknown): ActionVerdict {
  if (typeof response !== 'object' || response === null) {
    return { ok: false, retcode: null, message: 'the answer is not a JSON object', retry: true };
  }
  const r = response as Record<string, unknown>;
  const retcode = typeof r.retcode === 'number' ? r.retcode : null;
  if (retcode === 0) {
    const data = r.data as Record<string, unknown> | null | undefined;
    const id = data?.message_id;
    const platformMessageId = typeof id === 'number' || typeof id === 'string' ? String(id) : null;
    return { ok: true, platformMessageId };
  }
  const said = [r.wording, r.message, r.msg].find((v): v is string => typeof v === 'string' && v !== '');
  const message = `retcode ${retcode ?? 'missing'}${said ? `: ${said}` : ''}`.slice(0, 500);
  return { ok: false, retcode, message, retry: retcode !== 1400 && retcode !== 1404 };
}
