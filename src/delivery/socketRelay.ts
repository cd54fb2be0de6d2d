import { randomUUID } from 'node:crypto';

import type { Redis } from 'ioredis';
import { z } from 'zod';

import type { Logger } from '../logger';
import { ChannelHub } from '../redis/channelHub';
import { decodeId, encodeId, type Keyspace, keyspace } from '../redis/keys';

/**
 * How a delivery worker reaches the API process that holds a chat socket: a OneBot bot account's
 * reverse WebSocket, or a maim_message adapter's WebSocket.
 *
 * Every API process has an owner id and listens on its own relay channel. A connected socket has an
 * owner key (`socketOwner` in `redis/keys.ts` → `{owner, conn}`, a short TTL the holder renews), so
 * the worker looks the holder up, publishes the request on the holder's channel, and waits on its
 * own reply channel for the answer. Keys and requests carry the tenant: a holder only ever sends on
 * a socket that authenticated as that tenant.
 */

/** A chat socket, as named in owner keys and stream routes. */
export type SocketId =
  { kind: 'onebot'; accountId: string } | { kind: 'maim'; agentId: string; platform: string };

/** `onebot:<account>` or `maim:<agent>:<platform>`, the ids percent-encoded like keys' ids. */
export function formatSocketId(id: SocketId): string {
  return id.kind === 'onebot'
    ? `onebot:${encodeId(id.accountId)}`
    : `maim:${encodeId(id.agentId)}:${encodeId(id.platform)}`;
}

export function parseSocketId(value: string): SocketId | undefined {
  const [kind, first, second, ...rest] = value.split(':');
  if (kind === 'onebot' && first && second === undefined) return { kind, accountId: decodeId(first) };
  if (kind === 'maim' && first && second && rest.length === 0) {
    return { kind, agentId: decodeId(first), platform: decodeId(second) };
  }
  return undefined;
}

/** How long a stream's route is remembered after its last message over the socket, s. */
export const ROUTE_TTL_SECONDS = 7 * 24 * 3600;

/** A request on an owner's channel. */
export const relayRequestSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('send'),
    id: z.string().min(1).max(100),
    reply_to: z.string().min(1).max(300),
    tenant_id: z.string().min(1),
    socket_id: z.string().min(1),
    action: z.string().min(1).max(64),
    params: z.record(z.string(), z.unknown()),
    timeout_ms: z.number().int().positive().max(120_000),
  }),
  z.object({
    type: z.literal('replaced'),
    tenant_id: z.string().min(1),
    socket_id: z.string().min(1),
    conn: z.string().min(1),
  }),
]);
export type RelayRequest = z.infer<typeof relayRequestSchema>;

/** The holder's answer: the peer's response, or why there is none. */
export type RelayResult =
  | { id: string; ok: true; response: unknown }
  | { id: string; ok: false; reason: 'not_connected' | 'timeout' | 'backpressure' | 'closed' };

export const relayResultSchema = z.union([
  z.object({ id: z.string(), ok: z.literal(true), response: z.unknown() }),
  z.object({
    id: z.string(),
    ok: z.literal(false),
    reason: z.enum(['not_connected', 'timeout', 'backpressure', 'closed']),
  }),
]);

/** The owner key's value. */
export const ownerValueSchema = z.object({ owner: z.string(), conn: z.string() });

export interface SocketRelayOptions {
  redis: Redis;
  prefix: string;
  logger: Logger;
  /** How long the holder waits for the implementation's answer, ms. Default 10000. */
  actionTimeoutMs?: number;
}

/** A request for the peer: an action name the holder's protocol knows, and its parameters. */
export interface SocketAction {
  action: string;
  params: Record<string, unknown>;
}

/**
 * The worker side: sends an action through whichever API process holds the socket. One reply
 * channel per relay, subscribed on first use.
 */
export class SocketRelay {
  readonly keys: Keyspace;
  private readonly id = randomUUID();
  private readonly hub: ChannelHub;
  private readonly pending = new Map<string, (r: RelayResult) => void>();
  private subscribed: Promise<() => void> | undefined;
  private closed = false;

  constructor(private readonly o: SocketRelayOptions) {
    this.keys = keyspace(o.prefix);
    this.hub = new ChannelHub(o.redis, o.logger);
  }

  get actionTimeoutMs(): number {
    return this.o.actionTimeoutMs ?? 10_000;
  }

  /** The socket a chat stream's replies go back on, if its messages came over one. */
  async routeOf(tenantId: string, agentId: string, chatStreamId: string): Promise<SocketId | undefined> {
    const value = await this.o.redis.get(this.keys.socketRoute(tenantId, agentId, chatStreamId));
    return value === null ? undefined : parseSocketId(value);
  }

  /** Sends the action on the socket and resolves with the peer's answer. */
  async send(tenantId: string, socket: SocketId, action: SocketAction): Promise<RelayResult> {
    const id = randomUUID();
    const socketId = formatSocketId(socket);
    const raw = await this.o.redis.get(this.keys.socketOwner(tenantId, socketId));
    const owner = raw === null ? undefined : ownerValueSchema.safeParse(safeJson(raw)).data;
    if (!owner) return { id, ok: false, reason: 'not_connected' };
    await this.listen();
    const answered = new Promise<RelayResult>((resolve) => this.pending.set(id, resolve));
    const request: RelayRequest = {
      type: 'send',
      id,
      reply_to: this.keys.socketReply(this.id),
      tenant_id: tenantId,
      socket_id: socketId,
      action: action.action,
      params: action.params,
      timeout_ms: this.actionTimeoutMs,
    };
    let timer: NodeJS.Timeout | undefined;
    try {
      const receivers = await this.o.redis.publish(
        this.keys.socketRelay(owner.owner),
        JSON.stringify(request),
      );
      // The holder is gone (its key has not expired yet): nobody will answer.
      if (receivers === 0) return { id, ok: false, reason: 'not_connected' };
      // The holder answers within its own timeout; the margin covers the two hops through Redis.
      const timedOut = new Promise<RelayResult>((resolve) => {
        timer = setTimeout(() => resolve({ id, ok: false, reason: 'timeout' }), this.actionTimeoutMs + 2000);
      });
      return await Promise.race([answered, timedOut]);
    } finally {
      clearTimeout(timer);
      this.pending.delete(id);
    }
  }

  private listen(): Promise<() => void> {
    this.subscribed ??= this.hub.subscribe(this.keys.socketReply(this.id), (message) => {
      const parsed = relayResultSchema.safeParse(safeJson(message));
      if (!parsed.success) return;
      this.pending.get(parsed.data.id)?.(parsed.data);
    });
    // A failed subscription is tried again by the next send.
    this.subscribed.catch(() => (this.subscribed = undefined));
    return this.subscribed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [id, resolve] of this.pending) resolve({ id, ok: false, reason: 'closed' });
    this.pending.clear();
    await this.hub.close();
  }
}

export function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
