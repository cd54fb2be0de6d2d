import { randomUUID } from 'node:crypto';

import { WebSocket } from 'ws';

import type { Principal } from '../../auth/principal';
import type { RelayResult } from '../../delivery/socketRelay';

export type CallResult =
  Omit<Extract<RelayResult, { ok: true }>, 'id'> | Omit<Extract<RelayResult, { ok: false }>, 'id'>;

interface Pending {
  resolve: (result: CallResult) => void;
  timer: NodeJS.Timeout;
}

/** Who a socket serves: one tenant's agent, as one chat socket (`delivery/socketRelay.ts`). */
export interface Peer {
  tenantId: string;
  agentId: string;
  /** `formatSocketId(...)`: one socket per id; a newer connection replaces an older one. */
  socketId: string;
  /** Whom the socket's messages are sent as. */
  principal: Principal;
}

/**
 * One chat client (NapCat, a MaiBot adapter) connected for one tenant's agent: frames come in on it
 * one after another, and requests go out on it, each matched to its answer by a key (OneBot's
 * `echo`, maim_message's acknowledged `msg_id`). `P` is what its protocol keeps about it.
 */
export class PeerConnection<P = unknown> implements Peer {
  readonly connId = randomUUID();
  readonly tenantId: string;
  readonly agentId: string;
  readonly socketId: string;
  readonly principal: Principal;
  /** Answered the last ping (dead peers are terminated on the next round). */
  alive = true;
  private seq = 0;
  private readonly pending = new Map<string, Pending>();
  /** Inbound frames being handled one after another, and how many wait. */
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;

  constructor(
    readonly ws: WebSocket,
    peer: Peer,
    readonly state: P,
    private readonly maxBufferedBytes: number,
  ) {
    this.tenantId = peer.tenantId;
    this.agentId = peer.agentId;
    this.socketId = peer.socketId;
    this.principal = peer.principal;
  }

  /** A key for a request of this connection, unique in the process. */
  nextKey(): string {
    return `mh.${this.connId.slice(0, 8)}.${++this.seq}`;
  }

  /**
   * Sends a frame and resolves with the answer `settle(key, …)` is called with, or why there is
   * none. A socket whose unsent data exceeds the buffer bound (a consumer that stopped reading) is
   * not written to: memory per socket stays bounded, and the delivery is retried later.
   */
  request(frame: unknown, key: string, timeoutMs: number): Promise<CallResult> {
    const refused = this.refusal();
    if (refused) return Promise.resolve(refused);
    return new Promise<CallResult>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(key);
        resolve({ ok: false, reason: 'timeout' });
      }, timeoutMs);
      this.pending.set(key, { resolve, timer });
      this.ws.send(JSON.stringify(frame), (err) => {
        if (!err) return;
        clearTimeout(timer);
        this.pending.delete(key);
        resolve({ ok: false, reason: 'not_connected' });
      });
    });
  }

  /** Sends a frame that has no answer; resolves once it was written to the socket. */
  write(frame: unknown): Promise<CallResult> {
    const refused = this.refusal();
    if (refused) return Promise.resolve(refused);
    return new Promise<CallResult>((resolve) => {
      this.ws.send(JSON.stringify(frame), (err) =>
        resolve(err ? { ok: false, reason: 'not_connected' } : { ok: true, response: null }),
      );
    });
  }

  /** Sends a frame of our own (an acknowledgement, an error), unless the socket is backed up. */
  notify(frame: unknown): void {
    if (!this.refusal()) this.ws.send(JSON.stringify(frame));
  }

  private refusal(): CallResult | undefined {
    if (this.ws.readyState !== WebSocket.OPEN) return { ok: false, reason: 'not_connected' };
    if (this.ws.bufferedAmount > this.maxBufferedBytes) return { ok: false, reason: 'backpressure' };
    return undefined;
  }

  /** Resolves the request `key` names; false when no request of ours waits for it. */
  settle(key: string | undefined, response: unknown): boolean {
    const waiting = key === undefined ? undefined : this.pending.get(key);
    if (!waiting) return false;
    clearTimeout(waiting.timer);
    this.pending.delete(key!);
    waiting.resolve({ ok: true, response });
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

  /** Fails every request still waiting (the socket closed). */
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
