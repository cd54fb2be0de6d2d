import { randomUUID } from 'node:crypto';

import {
  apiAck,
  type ApiEnvelope,
  apiEnvelope,
  apiEnvelopeSchema,
  fromApiMessage,
  MAIM_SEND_ACTION,
  toApiSendMessage,
} from '../../adapters/maimFrames';
import type { PeerConnection } from '../sockets/connection';
import {
  type FrameIo,
  header,
  isRefusal,
  type ProtocolContext,
  type SocketProtocol,
} from '../sockets/protocol';
import {
  errorContent,
  identifyMaim,
  MAIM_WS_PATHS,
  type MaimState,
  takeCustomFrame,
  takeMaimMessage,
} from './maimSocket';

/**
 * maim_message's API-Server mode (0.6.x `server_ws_connection.py` / `server_ws_api.py`, the
 * multi-tenant mode; `doc/external_client_communication_guide.md`): the client sends our agent API
 * key as `x-apikey` (or `?api_key=`), its platform as `x-platform` (or `?platform=`) and its
 * connection id as `x-uuid`. Every frame is an envelope `{ver, msg_id, type, meta, payload}`:
 * `sys_std` carries an `APIMessageBase`, `custom_<name>` a custom message, `sys_ack` acknowledges.
 *
 * A frame with a `msg_id` is acknowledged (`sys_ack`) once taken: accepted, ignored, refused as
 * malformed, or seen before. Clients re-send unacknowledged frames for 300 s after a reconnect, so
 * a `msg_id` is remembered (Redis, 10 min, any process) and a re-sent frame is acknowledged only. A
 * frame the server failed to take (its database away) is not acknowledged: the client sends it
 * again. Our replies are `sys_std` frames, delivered when the client acknowledges them.
 */

/** How long a frame id is remembered: longer than clients re-send (300 s). */
const SEEN_TTL_SECONDS = 600;

function apiKeyOf(url: URL, req: Parameters<typeof header>[0]): string | undefined {
  return url.searchParams.get('api_key') ?? header(req, 'x-apikey');
}

export function maimApiProtocol(ctx: ProtocolContext): SocketProtocol<MaimState> {
  const { deps } = ctx;
  const nowSeconds = () => deps.clock.now() / 1000;

  function ack(conn: PeerConnection<MaimState>, msgId: string): void {
    conn.notify(apiAck(msgId, { ackId: randomUUID(), uuid: conn.state.uuid, nowSeconds: nowSeconds() }));
  }

  function error(conn: PeerConnection<MaimState>, content: Record<string, unknown>, msgId?: string): void {
    const payload = msgId === undefined ? content : { ...content, msg_id: msgId };
    conn.notify(
      apiEnvelope('custom_error', randomUUID(), payload, {
        platform: conn.state.platform,
        nowSeconds: nowSeconds(),
      }),
    );
  }

  /** Takes one frame; true when it may be acknowledged (taken, or refused for good). */
  async function take(conn: PeerConnection<MaimState>, env: ApiEnvelope, io: FrameIo): Promise<boolean> {
    try {
      if (env.type === 'sys_std') {
        await takeMaimMessage(deps, conn, fromApiMessage(env.payload), (m) => io.accept(m, 'maim'));
      } else if (env.type.startsWith('custom_')) {
        await takeCustomFrame(deps, conn, env.type.slice('custom_'.length), env.payload, io.log);
      } else {
        io.log.debug({ type: env.type }, 'maim frame of another type ignored');
      }
      return true;
    } catch (err) {
      const refused = isRefusal(err);
      if (refused) io.log.warn({ code: err.code, err: err.message }, 'maim frame refused');
      else io.log.error({ err }, 'maim frame failed');
      error(conn, errorContent(err, refused), env.msg_id);
      return refused;
    }
  }

  /** Takes a frame once per `msg_id`, and acknowledges it. */
  async function takeOnce(conn: PeerConnection<MaimState>, env: ApiEnvelope, io: FrameIo): Promise<void> {
    const msgId = env.msg_id;
    if (msgId === undefined) {
      await take(conn, env, io);
      return;
    }
    const seen = deps.keys.maimFrameSeen(conn.tenantId, conn.agentId, msgId);
    const first = await deps.redis.set(seen, '1', 'EX', SEEN_TTL_SECONDS, 'NX').catch(() => undefined);
    if (first === undefined) return; // Redis away: no ack, the client sends the frame again.
    if (first === null) {
      io.log.debug({ msg_id: msgId.slice(0, 100) }, 'maim frame seen before: acknowledged only');
      ack(conn, msgId);
      return;
    }
    if (await take(conn, env, io)) ack(conn, msgId);
    else await deps.redis.del(seen).catch(() => undefined);
  }

  return {
    name: 'maim_api_server',
    serves: ({ url, req }) =>
      MAIM_WS_PATHS.includes(url.pathname) &&
      (url.searchParams.has('api_key') ||
        req.headers['x-apikey'] !== undefined ||
        req.headers['x-uuid'] !== undefined),

    identify: (up) =>
      identifyMaim(ctx, up, {
        token: apiKeyOf(up.url, up.req),
        platform: up.url.searchParams.get('platform') ?? header(up.req, 'x-platform'),
        uuid: header(up.req, 'x-uuid')?.slice(0, 200) ?? randomUUID(),
        hint: 'x-apikey: <key> or ?api_key=<key>',
      }),

    onFrame(conn, frame, io) {
      const parsed = apiEnvelopeSchema.safeParse(frame);
      if (!parsed.success) {
        const fields = parsed.error.issues.map((i) => ({
          path: i.path.map(String).join('.') || 'frame',
          issue: i.message,
        }));
        error(conn, {
          code: 'VALIDATION_ERROR',
          message: 'not a maim_message envelope',
          details: { fields },
        });
        return;
      }
      const env = parsed.data;
      if (env.type === 'sys_ack') {
        const meta = env.meta as { acked_msg_id?: unknown } | undefined;
        conn.settle(typeof meta?.acked_msg_id === 'string' ? meta.acked_msg_id : undefined, frame);
        return;
      }
      // Custom frames (echoes may wait for their delivery to be recorded) do not hold up messages.
      if (env.type.startsWith('custom_')) {
        takeOnce(conn, env, io).catch((err: unknown) => io.log.error({ err }, 'maim custom frame failed'));
      } else io.enqueue(() => takeOnce(conn, env, io));
    },

    deliver(conn: PeerConnection<MaimState>, action, params, timeoutMs) {
      if (action !== MAIM_SEND_ACTION || typeof params.message !== 'object' || params.message === null) {
        return Promise.resolve({ ok: false, reason: 'not_connected' } as const);
      }
      const { platform, keyRef } = conn.state;
      const msgId = `msg_${conn.nextKey()}`;
      const payload = toApiSendMessage(params.message as Record<string, unknown>, {
        keyId: keyRef,
        platform,
      });
      const frame = apiEnvelope('sys_std', msgId, payload, {
        platform,
        nowSeconds: nowSeconds(),
        target: keyRef,
      });
      return conn.request(frame, msgId, timeoutMs);
    },
  };
}
