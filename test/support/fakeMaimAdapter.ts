import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { WebSocket } from 'ws';

type Frame = Record<string, unknown>;

/**
 * A WebSocket client that behaves like a MaiBot adapter on maim_message 0.6.x
 * (`Mai-with-u/maim_message`): in `plain` mode like `ws_connection.py` `WebSocketClient` (headers
 * `platform` and, when it has a token, a bare `Authorization`), in `api` mode like
 * `client_ws_connection.py` (headers `x-uuid`, `x-apikey`, `x-platform`, or `?api_key=`), which
 * acknowledges every frame with a `msg_id` that is not itself an acknowledgement.
 */
export class FakeMaimAdapter {
  /** Every frame received, in order. */
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  /** API mode: acknowledge the server's frames (maim_message clients do). */
  autoAck = true;
  private waiters: (() => void)[] = [];

  private constructor(
    readonly ws: WebSocket,
    readonly mode: 'plain' | 'api',
    readonly uuid: string,
  ) {
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    ws.on('message', (data) => {
      const frame = JSON.parse((data as Buffer).toString('utf8')) as Frame;
      this.frames.push(frame);
      if (mode === 'api' && this.autoAck && frame.type !== 'sys_ack' && typeof frame.msg_id === 'string') {
        this.send({
          ver: 1,
          msg_id: randomUUID(),
          type: 'sys_ack',
          meta: { uuid, acked_msg_id: frame.msg_id, timestamp: Date.now() / 1000 },
          payload: { status: 'received', client_timestamp: Date.now() / 1000 },
        });
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Connects; rejects with the HTTP status when the upgrade is refused. */
  static connect(
    baseUrl: string,
    o: {
      mode: 'plain' | 'api';
      token?: string;
      platform?: string;
      path?: string;
      /** API mode: the key as `?api_key=` instead of `x-apikey`. */
      query?: boolean;
      /** A Host header (an operator listener by host name). */
      host?: string;
      uuid?: string;
    },
  ): Promise<FakeMaimAdapter> {
    const url = new URL(o.path ?? '/ws', baseUrl.replace(/^http/, 'ws'));
    const headers: Record<string, string> = {};
    const uuid = o.uuid ?? `single_${randomUUID().replace(/-/g, '')}`;
    if (o.mode === 'plain') {
      headers.platform = o.platform ?? 'qq';
      if (o.token) headers.Authorization = o.token;
    } else {
      headers['x-uuid'] = uuid;
      headers['x-platform'] = o.platform ?? 'qq';
      if (o.query && o.token) url.searchParams.set('api_key', o.token);
      else headers['x-apikey'] = o.token ?? '';
    }
    if (o.host) headers.Host = o.host;
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    const client = new FakeMaimAdapter(ws, o.mode, uuid);
    return new Promise((resolve, reject) => {
      ws.once('unexpected-response', (_req, res) => {
        reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode }));
        ws.terminate();
      });
      ws.once('error', reject);
      ws.once('open', () => resolve(client));
    });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** API mode: a `sys_std` envelope around a message (`client_ws_api.py` `send_message`). */
  sendStd(payload: unknown, msgId: string = `msg_${randomUUID().slice(0, 12)}`): string {
    this.send({
      ver: 1,
      msg_id: msgId,
      type: 'sys_std',
      meta: { sender_user: 'adapter', platform: 'qq', timestamp: Date.now() / 1000 },
      payload,
    });
    return msgId;
  }

  /** A custom message in the mode's shape (`api.py` / `client_ws_api.py` `send_custom_message`). */
  sendCustom(name: string, content: unknown, msgId: string = `custom_${randomUUID().slice(0, 12)}`): string {
    if (this.mode === 'plain') {
      this.send({
        platform: 'qq',
        message_type_name: name,
        content,
        timestamp: Date.now() / 1000,
        is_custom_message: true,
      });
    } else {
      this.send({
        ver: 1,
        msg_id: msgId,
        type: `custom_${name}`,
        meta: { sender_user: 'adapter', platform: 'qq', timestamp: Date.now() / 1000 },
        payload: content,
      });
    }
    return msgId;
  }

  /** Resolves with the first received frame `match` accepts (never resolving is the test's timeout). */
  async waitFor(match: (f: Frame) => boolean): Promise<Frame> {
    for (;;) {
      const found = this.frames.find(match);
      if (found) return found;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** The replies received: `MessageBase` dicts (plain) or `sys_std` payloads (api). */
  replies(): Frame[] {
    if (this.mode === 'plain') return this.frames.filter((f) => f.message_info !== undefined);
    return this.frames.filter((f) => f.type === 'sys_std').map((f) => f.payload as Frame);
  }

  async waitForReplies(n: number): Promise<Frame[]> {
    while (this.replies().length < n) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    return this.replies().slice(0, n);
  }

  /** The acknowledgements of our frame `msgId`. */
  acksOf(msgId: string): Frame[] {
    return this.frames.filter(
      (f) => f.type === 'sys_ack' && (f.meta as Frame | undefined)?.acked_msg_id === msgId,
    );
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close();
    await this.closed;
  }
}

/**
 * The group-message fixture (`test/fixtures/maim`, the MaiBot-Napcat-Adapter's shape: a mention of
 * the bot as `@<麦麦:1145141919>`), with its own message and group ids.
 */
export function maimGroupMessage(o: { messageId: string | number; groupId: string | number }): Frame {
  const base = JSON.parse(
    readFileSync(join(__dirname, '../fixtures/maim/group-message.json'), 'utf8'),
  ) as Frame & { message_info: Frame & { group_info: Frame } };
  return {
    ...base,
    message_info: {
      ...base.message_info,
      message_id: o.messageId,
      group_info: { ...base.message_info.group_info, group_id: o.groupId },
    },
  };
}

/** The same message as an `APIMessageBase` (`MessageConverter.to_api_receive`): the sender in `sender_info`. */
export function toApiReceive(message: Frame, apiKey: string): Frame {
  const info = message.message_info as Frame;
  const { group_info, user_info, ...rest } = info;
  return {
    message_info: { ...rest, sender_info: { group_info, user_info } },
    message_segment: message.message_segment,
    message_dim: { api_key: apiKey, platform: 'qq' },
  };
}
