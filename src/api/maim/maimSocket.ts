import { normalizeMaimMessage, parseMaimMessage } from '../../adapters/maim';
import { messageIdEchoSchema } from '../../adapters/maimFrames';
import { recordPlatformMessageId } from '../../db/repositories/deliveries';
import { formatSocketId } from '../../delivery/socketRelay';
import type { Dependencies } from '../../dependencies';
import { createIsolationContext } from '../../domain/isolationContext';
import { MaiHiveError } from '../../errors';
import { lookupAgentAccounts } from '../../ingress/agentLookup';
import type { Logger } from '../../logger';
import type { PeerConnection } from '../sockets/connection';
import {
  agentKeyPrincipal,
  header,
  type Identified,
  listenerPrincipal,
  type ProtocolContext,
  type Upgrade,
} from '../sockets/protocol';

/**
 * What the two maim_message WebSocket modes share: where they are served, who the peer is, how a
 * `MessageBase` becomes a message of the agent, and what the custom frames `message_id_echo` and
 * `command_response` do.
 */

/** `/ws` is where maim_message servers listen (and adapters' `base_url` / `host:port/ws` point). */
export const MAIM_WS_PATHS = ['/ws', '/ws/', '/api/v1/adapters/maim/ws', '/api/v1/adapters/maim/ws/'];

export interface MaimState {
  /** The platform the adapter named (`platform` / `x-platform` header); replies carry it. */
  platform: string;
  /** What `message_dim.api_key` of our replies says: the key's id, never the key. */
  keyRef: string;
  /** API-Server mode: the client's `x-uuid` (its connection id), else a fresh one. */
  uuid: string;
}

/**
 * The peer of a maim_message socket: the agent of the API key when one is sent, else the agent of
 * the operator listener the connection came in on; refused (401) with neither.
 */
export async function identifyMaim(
  { auth }: ProtocolContext,
  up: Upgrade,
  o: { token: string | undefined; platform: string | undefined; uuid: string; hint: string },
): Promise<Identified<MaimState>> {
  if (o.platform !== undefined && (o.platform.length > 64 || /[\s:]/.test(o.platform))) {
    return {
      refuse: {
        status: 400,
        code: 'VALIDATION_ERROR',
        message: 'the platform header is not a platform name',
      },
    };
  }
  const platform = o.platform ?? 'qq';
  if (o.token === undefined && up.listener) {
    const { tenantId, agentId } = up.listener;
    const socketId = formatSocketId({ kind: 'maim', agentId, platform });
    const principal = listenerPrincipal(up.listener);
    return {
      peer: { tenantId, agentId, socketId, principal },
      state: { platform, keyRef: principal.subject, uuid: o.uuid },
    };
  }
  const key = await agentKeyPrincipal(auth, o.token, o.hint);
  if ('refuse' in key) return key;
  const { tenantId, agentId } = key.principal;
  const socketId = formatSocketId({ kind: 'maim', agentId, platform });
  return {
    peer: { tenantId, agentId, socketId, principal: key.principal },
    state: { platform, keyRef: key.principal.subject, uuid: o.uuid },
  };
}

/** The raw token of plain mode's `Authorization` (maim_message sends it bare; `Bearer` is accepted). */
export function plainToken(up: Upgrade): string | undefined {
  const value = header(up.req, 'authorization');
  return value?.replace(/^Bearer\s+/i, '').trim() || undefined;
}

/**
 * A `MessageBase` from the adapter, as a message of the socket's agent: its accounts on the
 * message's platform tell which @-mentions name the bot. Throws `ValidationError` when malformed;
 * false when the message is one to ignore (notify, the bot's own, empty).
 */
export async function takeMaimMessage(
  deps: Dependencies,
  conn: PeerConnection<MaimState>,
  body: unknown,
  accept: (m: Exclude<ReturnType<typeof normalizeMaimMessage>, { ignored: true }>) => Promise<void>,
): Promise<boolean> {
  const msg = parseMaimMessage(body);
  const platform = msg.message_info.platform;
  const accounts = await lookupAgentAccounts(deps.db, conn.tenantId, conn.agentId, deps.clock.now());
  const own = accounts.filter((a) => a.platform === platform);
  const outcome = normalizeMaimMessage(msg, {
    accountIds: own.map((a) => a.account_id),
    nickname: own.find((a) => a.nickname)?.nickname ?? undefined,
  });
  if (outcome.ignored) return false;
  await accept(outcome);
  return true;
}

/** How long an echo may wait for the delivery it names to be recorded (the adapter can be quick). */
const ECHO_RETRIES = [50, 200, 500, 1000, 2000];

/**
 * A custom frame: `message_id_echo` stores the platform's id of our reply with its delivery
 * (`send_handler/nc_sending.py` `message_sent_back`: `{type: "echo", echo: <our id>, actual_id}`);
 * `command_response` (the answer to a command segment) is logged: MaiHive sends no commands yet.
 */
export async function takeCustomFrame(
  deps: Dependencies,
  conn: PeerConnection<MaimState>,
  name: string,
  content: unknown,
  log: Logger,
): Promise<void> {
  if (name === 'command_response') {
    log.info({ command_response: content }, 'maim command_response received');
    return;
  }
  if (name !== 'message_id_echo') {
    log.debug({ name }, 'maim custom frame ignored');
    return;
  }
  const echo = messageIdEchoSchema.safeParse(content);
  if (!echo.success) {
    log.warn('maim message_id_echo without echo and actual_id ignored');
    return;
  }
  const ctx = createIsolationContext({ tenantId: conn.tenantId, agentId: conn.agentId });
  for (const delay of [0, ...ECHO_RETRIES]) {
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    const stored = await deps.db.withTenant(ctx, (db) =>
      recordPlatformMessageId(db, echo.data.echo, echo.data.actual_id),
    );
    if (stored) return;
  }
  log.warn({ message_id: echo.data.echo.slice(0, 128) }, 'maim message_id_echo names no delivered reply');
}

/** The body of an error frame: what the envelope's `error` would say (never internals on a 5xx). */
export function errorContent(err: unknown, refused: boolean): Record<string, unknown> {
  if (refused && err instanceof MaiHiveError) {
    return { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) };
  }
  return { code: 'INTERNAL_ERROR', message: 'the message could not be taken; send it again later' };
}
