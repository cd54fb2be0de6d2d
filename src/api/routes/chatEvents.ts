import { z } from 'zod';

import { TENANT_MEMBERS } from '../../auth/principal';
import type { StreamEvent } from '../../queues/messageEvents';
import { route } from '../http/route';
import { readContext, requireChatStream } from './chatAccess';
import { StreamParams } from './chatSchemas';
import type { RouteContext } from './context';

/** ms between SSE heartbeat comments, which keep proxies from closing an idle stream. */
export const SSE_HEARTBEAT_MS = 15_000;
/** ms an EventSource waits before reconnecting after a drop (sent as `retry:`). */
const SSE_RETRY_MS = 3000;

/**
 * `GET /chat/streams/{id}/events`: the stream's events as Server-Sent Events. Every API process
 * subscribes (through the shared `ChannelHub`) to the stream's Redis channel, so a client sees the
 * events of messages accepted by any process and of outcomes stored by any worker.
 */
export function chatEventsRoutes({ router, registry, deps }: RouteContext): void {
  route(router, registry, {
    method: 'get',
    path: '/chat/streams/:chat_stream_id/events',
    operationId: 'streamEvents',
    headers: ['X-Tenant-ID'],
    produces: 'text/event-stream',
    summary: 'Server-Sent Events: message.received, message.replied, message.no_reply, message.failed',
    tag: 'Chat',
    auth: TENANT_MEMBERS,
    params: StreamParams,
    response: z.string().describe('text/event-stream'),
    handler: async ({ params, principal, req, res }) => {
      const context = readContext(principal, req);
      await requireChatStream(deps, context, params.chat_stream_id);

      let closed = false;
      let cleanup = () => {
        closed = true;
      };
      res.on('close', () => cleanup());
      const unsubscribe = await deps.channels.subscribe(
        deps.keys.streamEvents(context.tenantId, params.chat_stream_id),
        (raw) => {
          let event: StreamEvent;
          try {
            event = JSON.parse(raw) as StreamEvent;
          } catch {
            return;
          }
          if (context.agentId !== undefined && event.agent_id !== context.agentId) return;
          res.write(`event: ${event.type}\nid: ${event.message_id}\ndata: ${raw}\n\n`);
        },
      );
      // The client may have gone while the subscription was being set up.
      if (closed) {
        unsubscribe();
        return { raw: true };
      }

      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache, no-transform',
        Connection: 'keep-alive',
        'X-Accel-Buffering': 'no',
      });
      res.write(`retry: ${SSE_RETRY_MS}\n: connected\n\n`);
      const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), SSE_HEARTBEAT_MS);
      cleanup = () => {
        clearInterval(heartbeat);
        unsubscribe();
      };
      return { raw: true };
    },
  });
}
