import { randomUUID } from 'node:crypto';

import { MAIM_SEND_ACTION, plainCustomFrame, plainCustomMessage } from '../../adapters/maimFrames';
import type { PeerConnection } from '../sockets/connection';
import { header, isRefusal, type ProtocolContext, type SocketProtocol } from '../sockets/protocol';
import {
  errorContent,
  identifyMaim,
  MAIM_WS_PATHS,
  type MaimState,
  plainToken,
  takeCustomFrame,
  takeMaimMessage,
} from './maimSocket';

/**
 * maim_message's plain WebSocket (0.6.x `ws_connection.py`, the "Legacy WebSocket" mode of the
 * MaiBot-Napcat-Adapter): the client names its platform in a `platform` header and sends its token
 * bare in `Authorization` when it has one; without one, the operator listener it came in on says
 * whose it is. Frames are `MessageBase` dicts or custom messages; our replies are `MessageBase`
 * dicts on the same socket. The protocol has no acknowledgement: a reply is delivered once written.
 * WebSocket pings are answered by the socket itself (the `ws` library), as aiohttp's heartbeat needs.
 */
export function maimPlainProtocol(ctx: ProtocolContext): SocketProtocol<MaimState> {
  const { deps } = ctx;
  return {
    name: 'maim_plain',
    serves: ({ url }) => MAIM_WS_PATHS.includes(url.pathname),

    identify: (up) =>
      identifyMaim(ctx, up, {
        token: plainToken(up),
        platform: header(up.req, 'platform'),
        uuid: randomUUID(),
        hint: 'Authorization: <key>, or connect through an operator listener (MAIM_LISTENERS)',
      }),

    onFrame(conn, frame, io) {
      const custom = plainCustomFrame(frame);
      if (custom) {
        takeCustomFrame(deps, conn, custom.name, custom.content, io.log).catch((err: unknown) =>
          io.log.error({ err }, 'maim custom frame failed'),
        );
        return;
      }
      io.enqueue(async () => {
        try {
          await takeMaimMessage(deps, conn, frame, (m) => io.accept(m, 'maim'));
        } catch (err) {
          const refused = isRefusal(err);
          if (refused) io.log.warn({ code: err.code, err: err.message }, 'maim message refused');
          else io.log.error({ err }, 'maim message failed');
          const now = deps.clock.now() / 1000;
          conn.notify(plainCustomMessage(conn.state.platform, 'error', errorContent(err, refused), now));
        }
      });
    },

    deliver(conn: PeerConnection<MaimState>, action, params) {
      if (action !== MAIM_SEND_ACTION || typeof params.message !== 'object' || params.message === null) {
        return Promise.resolve({ ok: false, reason: 'not_connected' } as const);
      }
      return conn.write(params.message);
    },
  };
}
