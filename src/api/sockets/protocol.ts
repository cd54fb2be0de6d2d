import type { IncomingMessage } from 'node:http';

import type { InboundMessage } from '../../adapters/types';
import type { Authenticator } from '../../auth/authenticate';
import { type Principal, SENDERS } from '../../auth/principal';
import type { Dependencies } from '../../dependencies';
import { MaiHiveError } from '../../errors';
import type { Logger } from '../../logger';
import type { CallResult, Peer, PeerConnection } from './connection';

/**
 * What a chat-socket protocol (OneBot v11 reverse WebSocket, maim_message plain, maim_message
 * API-Server) tells the shared socket server (`socketServer.ts`): whether it serves an upgrade,
 * who the peer is, what a frame means, and how a delivery is sent on the socket. The server keeps
 * everything else in one place: a socket per chat-socket id (newer replaces older, in any
 * process), owner keys and the relay through Redis, the bounded send buffer, the frame size limit,
 * pings, and closing.
 */

/** An operator-configured listener: every socket on it is this agent's (`MAIM_LISTENERS`). */
export interface ListenerTarget {
  tenantId: string;
  agentId: string;
  /** `host <name>` or `port <n>`, for logs and the socket's principal. */
  name: string;
}

/** The upgrade, as the protocols look at it. */
export interface Upgrade {
  req: IncomingMessage;
  url: URL;
  /** Set when the connection came in on (or named the host of) an operator listener. */
  listener: ListenerTarget | undefined;
}

/** Who the peer is, or why it is refused (HTTP status before the upgrade, close code after it). */
export type Identified<P> =
  | { refuse: { status: number; code: string; message: string } }
  | { close: { code: number; reason: string } }
  | { peer: Peer; state: P };

/** What a protocol may do while handling a frame. */
export interface FrameIo {
  log: Logger;
  /** Runs `work` after the connection's earlier frames; an overflowing queue closes the socket (1013). */
  enqueue(work: () => Promise<void>): void;
  /** Remembers the socket as the chat's way back, then hands the message to the ingress. */
  accept(message: InboundMessage, source: 'onebot' | 'maim'): Promise<void>;
}

export interface SocketProtocol<P> {
  readonly name: string;
  /** Whether the protocol serves this upgrade (path, headers, listener). */
  serves(up: Upgrade): boolean;
  identify(up: Upgrade): Promise<Identified<P>>;
  /** A JSON object frame from the peer. Never throws; failures are logged or answered. */
  onFrame(conn: PeerConnection<P>, frame: Record<string, unknown>, io: FrameIo): void;
  /** Sends a relayed delivery (`SocketAction`) on the socket; resolves with the peer's answer. */
  deliver(
    conn: PeerConnection<P>,
    action: string,
    params: Record<string, unknown>,
    timeoutMs: number,
  ): Promise<CallResult>;
}

/** What a protocol is built with. */
export interface ProtocolContext {
  deps: Dependencies;
  auth: Authenticator;
}

/**
 * The principal of an agent-bound API key that may send messages, or the refusal (401/403) to
 * answer the upgrade with. `hint` says where the key goes.
 */
export async function agentKeyPrincipal(
  auth: Authenticator,
  token: string | undefined,
  hint: string,
): Promise<
  | { principal: Principal & { tenantId: string; agentId: string } }
  | Extract<Identified<never>, { refuse: unknown }>
> {
  let principal: Principal | undefined;
  if (token?.startsWith('mhk.')) principal = await auth.fromApiKey(token).catch(() => undefined);
  if (!principal || principal.agentId === undefined || principal.tenantId === undefined) {
    return {
      refuse: { status: 401, code: 'UNAUTHORIZED', message: `an agent-bound API key is required (${hint})` },
    };
  }
  if (!SENDERS.includes(principal.role)) {
    return { refuse: { status: 403, code: 'FORBIDDEN', message: 'this API key may not send messages' } };
  }
  return { principal: principal as Principal & { tenantId: string; agentId: string } };
}

/** The principal of a socket an operator listener identified: the agent itself, as a sender. */
export function listenerPrincipal(listener: ListenerTarget): Principal {
  return {
    kind: 'api_key',
    subject: `listener:${listener.name}`,
    role: 'agent',
    tenantId: listener.tenantId,
    agentId: listener.agentId,
  };
}

/** A header's single value (a repeated header counts as missing). */
export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Whether an error is the ingress refusing a message (4xx) rather than failing (logged louder). */
export function isRefusal(err: unknown): err is MaiHiveError {
  return err instanceof MaiHiveError && err.status < 500;
}
