import { randomUUID } from 'node:crypto';

import { WebSocket } from 'ws';

import type { Principal } from '../../auth/principal';
import type { RelayResult } from '../../delivery/onebotRelay';

type CallResult =
  Omit<Extract<RelayResult, { ok: true }>, 'id'> | Omit<Extract<RelayResult, { ok: false }>, 'id'>;

interface Pending {
  resolve: (result: CallResult) => void;
  timer: NodeJS.Timeout;
}

/**
 * One OneBot implementation (NapCat) connected as a reverse WebSocket Universal client for one
 * bot account of one tenant's agent: events come in on it, and actions go out on it, matched to
 * their answers by `echo`.
 */
export class OneBotConnection {
  readonly connId = randomUUID();
  /** Answered the last ping (dead peers are terminated on the next round). */
  alive = true;
  private seq = 0;
  private readonly pending = new Map<string, Pending>();
  /** Inbound frames being handled one after another, and how many wait. */
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;

  constructor(
    readonly ws: WebSocket,
    readonly tenantId: string,
    readonly agentId: string,
    readonly accountId: string,
    readonly principal: Principal,
    private readonly maxBufferedBytes: number,
  ) {}

  /**
   * Sends an action and resolves with the implementation's answer, or why there is none. A socket
   * whose unsent data exceeds the buffer bound (a consumer that stopped reading) is not written
   * to: memory per socket stays bounded, and the delivery is retried later.
   */
  call(action: string, params: Record<string, unknown>, timeoutMs: number): Promise<CallResult> {
    if (this.ws.readyState !== WebSocket.OPEN) return Promise.resolve({ ok: false, reason: 'not_connected' });
    if (this.ws.bufferedAmount > this.maxBufferedBytes) {
      return Promise.resolve({ ok: false, reason: 'backpressure' });
    }
    const echo = `mh.${this.connId.slice(0, 8)}.${++this.seq}`;
    return new Promise<CallResult>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(echo);
        resolve({ ok: false, reason: 'timeout' });
      }, timeoutMs);
      this.pending.set(echo, { resolve, timer });
      this.ws.send(JSON.stringify({ action, params, echo }), (err) => {
        if (!err) return;
        clearTimeout(timer);
        this.pending.delete(echo);
        resolve({ ok: false, reason: 'not_connected' });
      });
    });
  }

  /** Resolves the action an answer belongs to; false when no action of ours waits for it. */
  answer(frame: Record<string, unknown>): boolean {
    const echo = typeof frame.echo === 'string' ? frame.echo : undefined;
    const waiting = echo === undefined ? undefined : this.pending.get(echo);
    if (!waiting) return false;
    clearTimeout(waiting.timer);
    this.pending.delete(echo!);
    waiting.resolve({ ok: true, response: frame });
    return true;
  }

  /**
   * Runs `work` after the frames received before it (a chat's messages keep their order). False,
   * and nothing queued, when `maxQueued` frames already wait: the caller closes the socket.
   */
  enqueue(work: () => Promise<void>, maxQueued: number): boolean {
    if (this.queued >= maxQueued) return false;
    this.queued++;
    this.chain = this.chain.then(work).finally(() => {
      this.queued--;
    });
    return true;
  }

  /** Fails every action still waiting (the socket closed). */
  failPending(): void {
    for (const { resolve, timer } of this.pending.values()) {
      clearTimeout(timer);
      resolve({ ok: false, reason: 'not_connected' });
    }
    this.pending.clear();
  }

  close(code: number, reason: string): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.close(code, reason);
    }
  }
}
