import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';

import { type RawData, WebSocket, WebSocketServer } from 'ws';

import { type InboundMessage, toSendInput } from '../../adapters/types';
import { Authenticator } from '../../auth/authenticate';
import type { MaimListener } from '../../config';
import {
  ownerValueSchema,
  type RelayRequest,
  relayRequestSchema,
  type RelayResult,
  ROUTE_TTL_SECONDS,
  safeJson,
} from '../../delivery/socketRelay';
import type { Dependencies } from '../../dependencies';
import { acceptMessage } from '../../ingress/acceptMessage';
import type { Logger } from '../../logger';
import type { Keyspace } from '../../redis/keys';
import { jsonInputProblem } from '../http/inputSafety';
import { maimApiProtocol } from '../maim/apiServerProtocol';
import { maimPlainProtocol } from '../maim/plainProtocol';
import { oneBotProtocol } from '../onebot/onebotProtocol';
import { PeerConnection } from './connection';
import type { FrameIo, ListenerTarget, SocketProtocol, Upgrade } from './protocol';

/**
 * The chat-socket server: NapCat's OneBot v11 reverse WebSocket (`onebot/onebotProtocol.ts`) and
 * the WebSockets of MaiBot adapters, maim_message plain and API-Server mode (`maim/`). Events take
 * the same path as the HTTP adapters; replies leave on the socket, sent by the process holding it
 * (see `delivery/socketRelay.ts` for how a worker reaches it).
 */

export interface SocketServerOptions {
  /** Largest frame accepted, bytes; a larger one closes the socket (1009). Default MAX_BODY_BYTES. */
  maxPayloadBytes?: number;
  /** Unsent bytes a socket may hold before requests on it are refused. Default 1 MiB. */
  maxBufferedBytes?: number;
  /** TTL of an owner key, ms; it is renewed (and peers pinged) every third of it. Default 30000. */
  ownerTtlMs?: number;
  /** Inbound frames one socket may have waiting; beyond, the socket is closed (1013). Default 256. */
  maxQueuedFrames?: number;
}

/** Compare-and-renew of an owner key: 1 renewed, 0 someone else holds it, -1 it is gone. */
const RENEW_SCRIPT = `local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if v == false then return -1 end
return 0`;
/** Compare-and-delete: a closing socket removes the key only while it is still its own. */
const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

const REPLACED = 'replaced by a newer connection';

type AnyConnection = PeerConnection<unknown>;
type AnyProtocol = SocketProtocol<unknown>;

function refuse(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ success: false, error: { code, message } });
  const reason = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found' }[status] ?? 'Error';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Connection: close\r\n\r\n${body}`,
  );
}

function textOf(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data as ArrayBuffer).toString('utf8');
}

function listenerTarget(l: MaimListener): ListenerTarget {
  const name = l.host !== undefined ? `host ${l.host}` : `port ${l.port}`;
  return { tenantId: l.tenantId, agentId: l.agentId, name };
}

export class SocketServer {
  /** This process's id as an owner of sockets. */
  readonly ownerId = randomUUID();
  private readonly keys: Keyspace;
  private readonly wss: WebSocketServer;
  private readonly log: Logger;
  private readonly protocols: AnyProtocol[];
  /** `tenant\0socketId` → the socket serving it in this process, and its protocol. */
  private readonly conns = new Map<string, { conn: AnyConnection; protocol: AnyProtocol }>();
  private readonly ttlMs: number;
  private readonly listeners: Server[] = [];
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly deps: Dependencies,
    private readonly options: SocketServerOptions = {},
  ) {
    this.keys = deps.keys;
    this.log = deps.logger.child({ component: 'chat_ws' });
    this.ttlMs = options.ownerTtlMs ?? 30_000;
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxPayloadBytes ?? deps.config.maxBodyBytes,
      perMessageDeflate: false,
    });
    const auth = new Authenticator({
      tokens: deps.tokens,
      tenants: deps.tenants,
      apiKeys: deps.apiKeys,
      db: deps.db,
      redis: deps.redis,
      keys: deps.keys,
      legacyAnonymous: false,
      now: () => deps.clock.now(),
    });
    const ctx = { deps, auth };
    // API-Server mode first: on `/ws` it is told from plain mode by its key header or parameter.
    this.protocols = [oneBotProtocol(ctx), maimApiProtocol(ctx), maimPlainProtocol(ctx)] as AnyProtocol[];
  }

  /**
   * Listens for deliveries addressed to this process (once) and serves upgrades of `server`; every
   * socket on it belongs to `listener` when one is given (an operator's port listener).
   */
  async attach(server: Server, listener?: ListenerTarget): Promise<void> {
    if (!this.unsubscribe) {
      this.unsubscribe = await this.deps.channels.subscribe(this.keys.socketRelay(this.ownerId), (m) =>
        this.onRelay(m),
      );
      this.timer = setInterval(() => void this.renew(), Math.max(100, Math.floor(this.ttlMs / 3)));
      this.timer.unref();
    }
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      this.upgrade(server, req, socket, head, listener).catch((err: unknown) => {
        this.log.error({ err }, 'websocket upgrade failed');
        refuse(socket, 500, 'INTERNAL_ERROR', 'internal error');
      });
    });
  }

  /**
   * Opens the port listeners of `MAIM_LISTENERS` on `host`: plain maim_message WebSockets whose
   * agent is the port's (the standalone MaiBot-Napcat-Adapter sends no token).
   */
  async listenOnPorts(host: string): Promise<void> {
    for (const l of this.deps.config.maimListeners) {
      if (l.port === undefined) continue;
      const server = createServer((_req, res) => {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ success: false, error: { code: 'NOT_FOUND', message: 'WebSocket only' } }));
      });
      server.listen(l.port, host);
      await once(server, 'listening');
      this.listeners.push(server);
      await this.attach(server, listenerTarget(l));
    }
  }

  /** Number of sockets this process holds (tests, metrics). */
  get size(): number {
    return this.conns.size;
  }

  /** The operator listener a request names with its Host header, if any. */
  private hostListener(req: IncomingMessage): ListenerTarget | undefined {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
    const l = this.deps.config.maimListeners.find((x) => x.host !== undefined && x.host === host);
    return l && listenerTarget(l);
  }

  private async upgrade(
    server: Server,
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    portListener: ListenerTarget | undefined,
  ): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const up: Upgrade = { req, url, listener: portListener ?? this.hostListener(req) };
    const protocol = this.protocols.find((p) => p.serves(up));
    if (!protocol) {
      // Another upgrade listener may serve the path; alone, this one answers for the server.
      if (server.listenerCount('upgrade') <= 1) refuse(socket, 404, 'NOT_FOUND', 'no such route');
      return;
    }
    const identified = await protocol.identify(up);
    if ('refuse' in identified) {
      const r = identified.refuse;
      return refuse(socket, r.status, r.code, r.message);
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if ('close' in identified) return ws.close(identified.close.code, identified.close.reason);
      const conn = new PeerConnection(
        ws,
        identified.peer,
        identified.state,
        this.options.maxBufferedBytes ?? 1024 * 1024,
      );
      void this.register(conn, protocol);
    });
  }

  private async register(conn: AnyConnection, protocol: AnyProtocol): Promise<void> {
    const { ws } = conn;
    const key = `${conn.tenantId}\0${conn.socketId}`;
    const log = this.log.child({
      tenant_id: conn.tenantId,
      agent_id: conn.agentId,
      socket: conn.socketId,
      protocol: protocol.name,
    });
    const io = this.frameIo(conn, log);
    ws.on('message', (data) => this.onFrame(conn, protocol, data, io));
    ws.on('pong', () => (conn.alive = true));
    ws.on('error', (err) => log.warn({ err: err.message }, 'chat socket error'));
    ws.on('close', (code, reason) => {
      conn.failPending();
      if (this.conns.get(key)?.conn !== conn) return;
      this.conns.delete(key);
      log.info({ code, reason: reason.toString() }, 'chat socket closed');
      void this.deps.redis
        .eval(RELEASE_SCRIPT, 1, this.keys.socketOwner(conn.tenantId, conn.socketId), this.ownerValue(conn))
        .catch(() => undefined);
    });
    // A newer connection of the same socket replaces the older one, as NapCat and maim_message
    // expect after a reconnect whose old socket the server has not noticed closing yet.
    const older = this.conns.get(key);
    this.conns.set(key, { conn, protocol });
    older?.conn.close(4000, REPLACED);
    try {
      const previous = await this.deps.redis.set(
        this.keys.socketOwner(conn.tenantId, conn.socketId),
        this.ownerValue(conn),
        'PX',
        this.ttlMs,
        'GET',
      );
      const prior = previous === null ? undefined : ownerValueSchema.safeParse(safeJson(previous)).data;
      if (prior && prior.owner !== this.ownerId) {
        const notice: RelayRequest = {
          type: 'replaced',
          tenant_id: conn.tenantId,
          socket_id: conn.socketId,
          conn: prior.conn,
        };
        await this.deps.redis.publish(this.keys.socketRelay(prior.owner), JSON.stringify(notice));
      }
      log.info('chat socket connected');
    } catch (err) {
      // Deliveries cannot find this socket: let the client reconnect once Redis answers again.
      log.warn({ err }, 'registering the chat socket failed');
      conn.close(1011, 'try again later');
    }
  }

  private frameIo(conn: AnyConnection, log: Logger): FrameIo {
    return {
      log,
      enqueue: (work) => {
        if (!conn.enqueue(work, this.options.maxQueuedFrames ?? 256)) {
          conn.close(1013, 'too many frames waiting; slow down');
        }
      },
      accept: (message, source) => this.accept(conn, message, source),
    };
  }

  private ownerValue(conn: AnyConnection): string {
    return JSON.stringify({ owner: this.ownerId, conn: conn.connId });
  }

  private onFrame(conn: AnyConnection, protocol: AnyProtocol, data: RawData, io: FrameIo): void {
    const frame = safeJson(textOf(data));
    if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
      conn.close(1007, 'frames must be JSON objects');
      return;
    }
    // Too deep for the code after it, or a string PostgreSQL cannot store: refused like HTTP bodies.
    const problem = jsonInputProblem(frame);
    if (problem) {
      conn.close(1007, `${problem.path}: ${problem.issue}`.slice(0, 120));
      return;
    }
    protocol.onFrame(conn, frame as Record<string, unknown>, io);
  }

  /**
   * A message as the HTTP adapters take it; refusals and failures are logged and rethrown for the
   * protocol (which may answer them), never crash the socket.
   */
  private async accept(
    conn: AnyConnection,
    message: InboundMessage,
    source: 'onebot' | 'maim',
  ): Promise<void> {
    // The route first: the reply may be ready before acceptMessage returns.
    await this.deps.redis.set(
      this.keys.socketRoute(conn.tenantId, conn.agentId, message.chatStreamId),
      conn.socketId,
      'EX',
      ROUTE_TTL_SECONDS,
    );
    await acceptMessage(
      this.deps,
      { principal: conn.principal, headers: {} },
      toSendInput(message, conn.agentId, source),
    );
  }

  private onRelay(message: string): void {
    const parsed = relayRequestSchema.safeParse(safeJson(message));
    if (!parsed.success) return;
    const r = parsed.data;
    const held = this.conns.get(`${r.tenant_id}\0${r.socket_id}`);
    if (r.type === 'replaced') {
      if (held?.conn.connId === r.conn) held.conn.close(4000, REPLACED);
      return;
    }
    const answer = (result: RelayResult) =>
      this.deps.redis.publish(r.reply_to, JSON.stringify(result)).catch((err: unknown) => {
        this.log.warn({ err }, 'answering a relayed request failed');
      });
    if (!held) {
      void answer({ id: r.id, ok: false, reason: 'not_connected' });
      return;
    }
    void held.protocol
      .deliver(held.conn, r.action, r.params, r.timeout_ms)
      .catch(() => ({ ok: false as const, reason: 'not_connected' as const }))
      .then((result) => answer({ id: r.id, ...result }));
  }

  /** Renews this process's owner keys and pings its sockets; a silent peer is dropped. */
  private async renew(): Promise<void> {
    for (const { conn } of [...this.conns.values()]) {
      if (!conn.alive) {
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      if (conn.ws.readyState === WebSocket.OPEN) conn.ws.ping();
      const key = this.keys.socketOwner(conn.tenantId, conn.socketId);
      try {
        const renewed = await this.deps.redis.eval(RENEW_SCRIPT, 1, key, this.ownerValue(conn), this.ttlMs);
        if (renewed === 0) conn.close(4000, REPLACED);
        else if (renewed === -1)
          await this.deps.redis.set(key, this.ownerValue(conn), 'PX', this.ttlMs, 'NX');
      } catch (err) {
        this.log.debug({ err }, 'renewing a chat socket owner key failed');
      }
    }
  }

  /** Closes every socket (1001), the port listeners, and stops listening for deliveries. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.timer);
      this.unsubscribe?.();
      const closed = [...this.conns.values()].map(
        ({ conn }) =>
          new Promise<void>((resolve) => {
            if (conn.ws.readyState === WebSocket.CLOSED) return resolve();
            conn.ws.once('close', () => resolve());
            conn.close(1001, 'server shutting down');
            setTimeout(() => {
              conn.ws.terminate();
              resolve();
            }, 1000).unref();
          }),
      );
      await Promise.all(closed);
      await new Promise<void>((resolve) => this.wss.close(() => resolve()));
      await Promise.all(
        this.listeners.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
    })();
    return this.closing;
  }
}
