import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';

import { type RawData, WebSocket, WebSocketServer } from 'ws';

import { ONEBOT_PLATFORM, oneBotToInbound } from '../../adapters/onebot';
import { toSendInput } from '../../adapters/types';
import { Authenticator } from '../../auth/authenticate';
import { type Principal, SENDERS } from '../../auth/principal';
import {
  type OneBotKeys,
  onebotKeys,
  ownerValueSchema,
  type RelayRequest,
  relayRequestSchema,
  type RelayResult,
  ROUTE_TTL_SECONDS,
  safeJson,
} from '../../delivery/onebotRelay';
import type { Dependencies } from '../../dependencies';
import { MaiHiveError } from '../../errors';
import { acceptMessage } from '../../ingress/acceptMessage';
import { lookupAccount } from '../../ingress/agentLookup';
import type { Logger } from '../../logger';
import { jsonInputProblem } from '../http/inputSafety';
import { OneBotConnection } from './connection';

/**
 * The OneBot v11 reverse WebSocket server (`botuniverse/onebot-11` communication/ws-reverse.md):
 * NapCat's "WebSocket客户端" connects to `GET /api/v1/adapters/onebot/v11/ws` as a Universal
 * client with `X-Self-ID` and `Authorization: Bearer <agent API key>` (or `?access_token=`).
 * Events take the same path as `POST /adapters/onebot/v11`; replies leave as actions on the
 * socket (see `delivery/onebotRelay.ts` for how a worker reaches the process holding it).
 */

export const ONEBOT_WS_PATH = '/api/v1/adapters/onebot/v11/ws';

export interface OneBotSocketOptions {
  /** Largest frame accepted, bytes; a larger one closes the socket (1009). Default MAX_BODY_BYTES. */
  maxPayloadBytes?: number;
  /** Unsent bytes a socket may hold before actions for it are refused. Default 1 MiB. */
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

function refuse(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ success: false, error: { code, message } });
  const reason = status === 401 ? 'Unauthorized' : status === 404 ? 'Not Found' : 'Error';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Connection: close\r\n\r\n${body}`,
  );
}

function bearerOf(req: IncomingMessage, url: URL): string | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  return m?.[1] ?? url.searchParams.get('access_token') ?? undefined;
}

function textOf(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data as ArrayBuffer).toString('utf8');
}

export class OneBotSocketServer {
  /** This process's id as an owner of sockets. */
  readonly ownerId = randomUUID();
  private readonly keys: OneBotKeys;
  private readonly wss: WebSocketServer;
  private readonly auth: Authenticator;
  private readonly log: Logger;
  /** `tenant\0account` → the socket serving it in this process. */
  private readonly conns = new Map<string, OneBotConnection>();
  private readonly ttlMs: number;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly deps: Dependencies,
    private readonly options: OneBotSocketOptions = {},
  ) {
    this.keys = onebotKeys(deps.keys.prefix);
    this.log = deps.logger.child({ component: 'onebot_ws' });
    this.ttlMs = options.ownerTtlMs ?? 30_000;
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxPayloadBytes ?? deps.config.maxBodyBytes,
      perMessageDeflate: false,
    });
    this.auth = new Authenticator({
      tokens: deps.tokens,
      tenants: deps.tenants,
      apiKeys: deps.apiKeys,
      db: deps.db,
      redis: deps.redis,
      keys: deps.keys,
      legacyAnonymous: false,
      now: () => deps.clock.now(),
    });
  }

  /** Listens for deliveries addressed to this process and serves upgrades of `server`. */
  async attach(server: Server): Promise<void> {
    this.unsubscribe = await this.deps.channels.subscribe(this.keys.ownerChannel(this.ownerId), (m) =>
      this.onRelay(m),
    );
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      this.upgrade(server, req, socket, head).catch((err: unknown) => {
        this.log.error({ err }, 'websocket upgrade failed');
        refuse(socket, 500, 'INTERNAL_ERROR', 'internal error');
      });
    });
    this.timer = setInterval(() => void this.renew(), Math.max(100, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  /** Number of sockets this process holds (tests, metrics). */
  get size(): number {
    return this.conns.size;
  }

  private async upgrade(server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== ONEBOT_WS_PATH && url.pathname !== `${ONEBOT_WS_PATH}/`) {
      // Another upgrade listener may serve the path; alone, this one answers for the server.
      if (server.listenerCount('upgrade') <= 1) refuse(socket, 404, 'NOT_FOUND', 'no such route');
      return;
    }
    const token = bearerOf(req, url);
    let principal: Principal | undefined;
    if (token?.startsWith('mhk.')) principal = await this.auth.fromApiKey(token).catch(() => undefined);
    if (!principal || principal.agentId === undefined || principal.tenantId === undefined) {
      return refuse(
        socket,
        401,
        'UNAUTHORIZED',
        'an agent-bound API key is required (Authorization: Bearer <key> or ?access_token=<key>)',
      );
    }
    if (!SENDERS.includes(principal.role)) {
      return refuse(socket, 403, 'FORBIDDEN', 'this API key may not send messages');
    }
    const selfId = req.headers['x-self-id'];
    const { tenantId, agentId } = principal as Principal & { tenantId: string; agentId: string };
    const account =
      typeof selfId === 'string' && selfId !== ''
        ? await lookupAccount(this.deps.db, tenantId, ONEBOT_PLATFORM, selfId, this.deps.clock.now())
        : undefined;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if (typeof selfId !== 'string' || selfId === '') {
        return ws.close(1008, 'X-Self-ID header (the bot QQ number) is required');
      }
      if (!account || account.agent_id !== agentId) {
        return ws.close(1008, `X-Self-ID ${selfId.slice(0, 32)} is not a qq account of agent ${agentId}`);
      }
      const conn = new OneBotConnection(
        ws,
        tenantId,
        agentId,
        selfId,
        principal,
        this.options.maxBufferedBytes ?? 1024 * 1024,
      );
      void this.register(conn);
    });
  }

  private async register(conn: OneBotConnection): Promise<void> {
    const { ws } = conn;
    const key = `${conn.tenantId}\0${conn.accountId}`;
    const log = this.log.child({ tenant_id: conn.tenantId, agent_id: conn.agentId, self_id: conn.accountId });
    ws.on('message', (data) => this.onFrame(conn, data, log));
    ws.on('pong', () => (conn.alive = true));
    ws.on('error', (err) => log.warn({ err: err.message }, 'onebot socket error'));
    ws.on('close', (code, reason) => {
      conn.failPending();
      if (this.conns.get(key) !== conn) return;
      this.conns.delete(key);
      log.info({ code, reason: reason.toString() }, 'onebot socket closed');
      void this.deps.redis
        .eval(RELEASE_SCRIPT, 1, this.keys.owner(conn.tenantId, conn.accountId), this.ownerValue(conn))
        .catch(() => undefined);
    });
    // A newer connection for the same account replaces the older one, as NapCat expects after
    // a reconnect whose old socket the server has not noticed closing yet.
    const older = this.conns.get(key);
    this.conns.set(key, conn);
    older?.close(4000, 'replaced by a newer connection');
    try {
      const previous = await this.deps.redis.set(
        this.keys.owner(conn.tenantId, conn.accountId),
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
          account_id: conn.accountId,
          conn: prior.conn,
        };
        await this.deps.redis.publish(this.keys.ownerChannel(prior.owner), JSON.stringify(notice));
      }
      log.info('onebot socket connected');
    } catch (err) {
      // Deliveries cannot find this socket: let NapCat reconnect once Redis answers again.
      log.warn({ err }, 'registering the onebot socket failed');
      conn.close(1011, 'try again later');
    }
  }

  private ownerValue(conn: OneBotConnection): string {
    return JSON.stringify({ owner: this.ownerId, conn: conn.connId });
  }

  private onFrame(conn: OneBotConnection, data: RawData, log: Logger): void {
    const frame = safeJson(textOf(data));
    if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
      conn.close(1007, 'frames must be JSON objects');
      return;
    }
    const problem = jsonInputProblem(frame);
    if (problem) {
      conn.close(1007, `${problem.path}: ${problem.issue}`.slice(0, 120));
      return;
    }
    const f = frame as Record<string, unknown>;
    if (f.post_type === undefined) {
      // An action's answer; one for nobody (a late answer after its timeout) is dropped.
      conn.answer(f);
      return;
    }
    const queued = conn.enqueue(() => this.onEvent(conn, f, log), this.options.maxQueuedFrames ?? 256);
    if (!queued) conn.close(1013, 'too many events waiting; slow down');
  }

  /** An event as `POST /adapters/onebot/v11` takes it; failures are logged, never thrown. */
  private async onEvent(conn: OneBotConnection, frame: Record<string, unknown>, log: Logger): Promise<void> {
    try {
      const outcome = oneBotToInbound(frame);
      if (outcome.ignored) return;
      if (outcome.botAccountId !== conn.accountId) {
        log.warn(
          { event_self_id: outcome.botAccountId },
          'event of another bot account on this socket ignored',
        );
        return;
      }
      // The route first: the reply may be ready before acceptMessage returns.
      await this.deps.redis.set(
        this.keys.route(conn.tenantId, conn.agentId, outcome.chatStreamId),
        conn.accountId,
        'EX',
        ROUTE_TTL_SECONDS,
      );
      await acceptMessage(
        this.deps,
        { principal: conn.principal, headers: {} },
        toSendInput(outcome, conn.agentId, 'onebot'),
      );
    } catch (err) {
      if (err instanceof MaiHiveError && err.status < 500) {
        log.warn({ code: err.code, err: err.message }, 'onebot event refused');
      } else {
        log.error({ err }, 'onebot event failed');
      }
    }
  }

  private onRelay(message: string): void {
    const parsed = relayRequestSchema.safeParse(safeJson(message));
    if (!parsed.success) return;
    const r = parsed.data;
    const conn = this.conns.get(`${r.tenant_id}\0${r.account_id}`);
    if (r.type === 'replaced') {
      if (conn?.connId === r.conn) conn.close(4000, 'replaced by a newer connection');
      return;
    }
    const answer = (result: RelayResult) =>
      this.deps.redis.publish(r.reply_to, JSON.stringify(result)).catch((err: unknown) => {
        this.log.warn({ err }, 'answering a relayed action failed');
      });
    if (!conn) {
      void answer({ id: r.id, ok: false, reason: 'not_connected' });
      return;
    }
    void conn.call(r.action, r.params, r.timeout_ms).then((result) => answer({ id: r.id, ...result }));
  }

  /** Renews this process's owner keys and pings its sockets; a silent peer is dropped. */
  private async renew(): Promise<void> {
    for (const conn of [...this.conns.values()]) {
      if (!conn.alive) {
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      if (conn.ws.readyState === WebSocket.OPEN) conn.ws.ping();
      const key = this.keys.owner(conn.tenantId, conn.accountId);
      try {
        const renewed = await this.deps.redis.eval(RENEW_SCRIPT, 1, key, this.ownerValue(conn), this.ttlMs);
        if (renewed === 0) conn.close(4000, 'replaced by a newer connection');
        else if (renewed === -1)
          await this.deps.redis.set(key, this.ownerValue(conn), 'PX', this.ttlMs, 'NX');
      } catch (err) {
        this.log.debug({ err }, 'renewing an onebot owner key failed');
      }
    }
  }

  /** Closes every socket (1001) and stops listening for deliveries. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.timer);
      this.unsubscribe?.();
      const closed = [...this.conns.values()].map(
        (conn) =>
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
    })();
    return this.closing;
  }
}
