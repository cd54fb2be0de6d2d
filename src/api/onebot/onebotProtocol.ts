import { ONEBOT_PLATFORM, oneBotToInbound } from '../../adapters/onebot';
import { formatSocketId } from '../../delivery/socketRelay';
import { lookupAccount } from '../../ingress/agentLookup';
import type { PeerConnection } from '../sockets/connection';
import {
  agentKeyPrincipal,
  header,
  isRefusal,
  type ProtocolContext,
  type SocketProtocol,
  type Upgrade,
} from '../sockets/protocol';

/**
 * The OneBot v11 reverse WebSocket (`botuniverse/onebot-11` communication/ws-reverse.md): NapCat's
 * "WebSocket客户端" connects to `GET /api/v1/adapters/onebot/v11/ws` as a Universal client with
 * `X-Self-ID` and `Authorization: Bearer <agent API key>` (or `?access_token=`). One socket per bot
 * account; events take the same path as `POST /adapters/onebot/v11`; replies leave as actions,
 * matched to their answers by `echo`.
 */

export const ONEBOT_WS_PATH = '/api/v1/adapters/onebot/v11/ws';

/** What the socket serves: the bot account of `X-Self-ID`. */
interface OneBotState {
  accountId: string;
}

function bearerOf(up: Upgrade): string | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(up.req.headers.authorization ?? '');
  return m?.[1] ?? up.url.searchParams.get('access_token') ?? undefined;
}

export function oneBotProtocol({ deps, auth }: ProtocolContext): SocketProtocol<OneBotState> {
  return {
    name: 'onebot_v11',
    serves: ({ url }) => url.pathname === ONEBOT_WS_PATH || url.pathname === `${ONEBOT_WS_PATH}/`,

    async identify(up) {
      const key = await agentKeyPrincipal(
        auth,
        bearerOf(up),
        'Authorization: Bearer <key> or ?access_token=<key>',
      );
      if ('refuse' in key) return key;
      const { principal } = key;
      const selfId = header(up.req, 'x-self-id');
      if (selfId === undefined) {
        return { close: { code: 1008, reason: 'X-Self-ID header (the bot QQ number) is required' } };
      }
      const { tenantId, agentId } = principal;
      const account = await lookupAccount(deps.db, tenantId, ONEBOT_PLATFORM, selfId, deps.clock.now());
      if (!account || account.agent_id !== agentId) {
        return {
          close: {
            code: 1008,
            reason: `X-Self-ID ${selfId.slice(0, 32)} is not a qq account of agent ${agentId}`,
          },
        };
      }
      const socketId = formatSocketId({ kind: 'onebot', accountId: selfId });
      return { peer: { tenantId, agentId, socketId, principal }, state: { accountId: selfId } };
    },

    onFrame(conn, frame, io) {
      // An action's answer; one for nobody (a late answer after its timeout) is dropped.
      if (frame.post_type === undefined) {
        conn.settle(typeof frame.echo === 'string' ? frame.echo : undefined, frame);
        return;
      }
      io.enqueue(async () => {
        try {
          const outcome = oneBotToInbound(frame);
          if (outcome.ignored) return;
          if (outcome.botAccountId !== conn.state.accountId) {
            io.log.warn(
              { event_self_id: outcome.botAccountId },
              'event of another bot account on this socket ignored',
            );
            return;
          }
          await io.accept(outcome, 'onebot');
        } catch (err) {
          if (isRefusal(err)) io.log.warn({ code: err.code, err: err.message }, 'onebot event refused');
          else io.log.error({ err }, 'onebot event failed');
        }
      });
    },

    deliver(conn: PeerConnection<OneBotState>, action, params, timeoutMs) {
      const echo = conn.nextKey();
      return conn.request({ action, params, echo }, echo, timeoutMs);
    },
  };
}
