import { WebSocket } from 'ws';

/** An action MaiHive sent on the socket. */
export interface ReceivedAction {
  action: string;
  params: Record<string, unknown>;
  echo: string;
}

/**
 * A WebSocket client that behaves like NapCat's "WebSocket客户端" (reverse WebSocket, Universal
 * role; `packages/napcat-onebot/network/websocket-client.ts`): it connects with `X-Self-ID`,
 * `X-Client-Role: Universal` and `Authorization: Bearer <token>`, sends the lifecycle event on
 * open, pushes events, and answers actions as `{status, retcode, data, message, wording, echo}`.
 */
export class FakeNapCat {
  readonly actions: ReceivedAction[] = [];
  /** Resolves with the close code and reason when the socket closes. */
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Answers each action; undefined leaves it unanswered. Default: success with a message id. */
  answer: (a: ReceivedAction) => Record<string, unknown> | undefined = (a) => ({
    status: 'ok',
    retcode: 0,
    data: { message_id: 900_000 + this.actions.indexOf(a) },
    message: '',
    wording: '',
  });
  private waiters: (() => void)[] = [];

  private constructor(
    readonly ws: WebSocket,
    readonly selfId: string,
  ) {
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    ws.on('message', (data) => {
      const frame = JSON.parse((data as Buffer).toString('utf8')) as ReceivedAction;
      this.actions.push(frame);
      const reply = this.answer(frame);
      if (reply) ws.send(JSON.stringify({ ...reply, echo: frame.echo }));
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /**
   * Connects; resolves once open (after the lifecycle event was sent), rejects with the HTTP
   * status when the upgrade is refused. `token` in the query instead of the header with `query`.
   */
  static connect(
    baseUrl: string,
    o: { token?: string; selfId: string; query?: boolean; lifecycle?: boolean },
  ): Promise<FakeNapCat> {
    const url = new URL('/api/v1/adapters/onebot/v11/ws', baseUrl.replace(/^http/, 'ws'));
    if (o.query && o.token) url.searchParams.set('access_token', o.token);
    const headers: Record<string, string> = {
      'X-Self-ID': o.selfId,
      'X-Client-Role': 'Universal',
      'User-Agent': 'OneBot/11',
    };
    if (!o.query && o.token) headers.Authorization = `Bearer ${o.token}`;
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    const client = new FakeNapCat(ws, o.selfId);
    return new Promise((resolve, reject) => {
      ws.once('unexpected-response', (_req, res) => {
        reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode }));
        ws.terminate();
      });
      ws.once('error', reject);
      ws.once('open', () => {
        if (o.lifecycle !== false) {
          client.send({
            time: Math.floor(Date.now() / 1000),
            self_id: Number(o.selfId),
            post_type: 'meta_event',
            meta_event_type: 'lifecycle',
            sub_type: 'connect',
          });
        }
        resolve(client);
      });
    });
  }

  send(event: unknown): void {
    this.ws.send(typeof event === 'string' ? event : JSON.stringify(event));
  }

  /** Resolves once `n` actions have arrived (never resolving is the test's timeout). */
  async waitForActions(n: number): Promise<ReceivedAction[]> {
    while (this.actions.length < n) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    return this.actions.slice(0, n);
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close();
    await this.closed;
  }
}

/** A group message event of NapCat (array format) with an `at` of the bot, like the fixture. */
export function groupMessageAt(
  selfId: string,
  o: { messageId: number; groupId: number; userId?: number; text?: string },
): Record<string, unknown> {
  const userId = o.userId ?? 2345678901;
  return {
    time: Math.floor(Date.now() / 1000),
    self_id: Number(selfId),
    post_type: 'message',
    message_type: 'group',
    sub_type: 'normal',
    message_id: o.messageId,
    group_id: o.groupId,
    user_id: userId,
    message: [
      { type: 'at', data: { qq: selfId } },
      { type: 'text', data: { text: ` ${o.text ?? '今天吃什么'}` } },
    ],
    raw_message: `[CQ:at,qq=${selfId}] ${o.text ?? '今天吃什么'}`,
    font: 14,
    message_format: 'array',
    sender: { user_id: userId, nickname: '小明', card: '明明', role: 'member' },
  };
}
