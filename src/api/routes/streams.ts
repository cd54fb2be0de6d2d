import { z } from 'zod';

import { SENDERS, TENANT_MEMBERS, TENANT_WRITERS } from '../../auth/principal';
import { agentScope } from '../../auth/scope';
import { requireAgent } from '../../db/repositories/agents';
import {
  type ChatStreamRow,
  countChatStreams,
  createChatStream,
  deleteChatStream,
  getChatStream,
  listChatStreams,
  messageCountsOf,
} from '../../db/repositories/chatStreams';
import { lockTenantResource } from '../../db/repositories/tenantLocks';
import { createIsolationContext, IDENTIFIER_PATTERN } from '../../domain/isolationContext';
import { assertPlatformAllowed, limitReached } from '../../domain/tenantLimits';
import { ConflictError, NotFoundError } from '../../errors';
import { pageQuery, pageWindow, pagination, PaginationSchema } from '../http/pagination';
import { route } from '../http/route';
import { resolveTenant } from '../http/tenantContext';
import type { RouteContext } from './context';

const TAG = 'Chat';

const Identifier = z.string().regex(IDENTIFIER_PATTERN, `must match ${IDENTIFIER_PATTERN.source}`);
const ChatType = z.enum(['group', 'private']);
const StreamStatus = z.enum(['active', 'archived']);

const StreamParams = z.object({ chat_stream_id: Identifier });
const ListQuery = z.object({
  ...pageQuery,
  platform: Identifier.optional(),
  status: StreamStatus.optional(),
  agent_id: Identifier.optional(),
});
const CreateBody = z.strictObject({
  chat_stream_id: Identifier,
  platform: Identifier,
  chat_type: ChatType,
  /** User ids of the people in the chat. */
  participants: z.array(z.string().min(1).max(128)).max(1000).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  /** The agent that answers in this chat; default: the credential's agent, else `default`. */
  agent_id: Identifier.optional(),
  group_id: z.string().min(1).max(128).optional(),
  group_name: z.string().min(1).max(256).optional(),
  /** The other person of a private chat. */
  user_id: z.string().min(1).max(128).optional(),
});

const StreamResponse = z.object({
  tenant_id: z.string(),
  chat_stream_id: z.string(),
  agent_id: z.string(),
  platform: z.string(),
  chat_type: ChatType,
  group_id: z.string().nullable(),
  group_name: z.string().nullable(),
  user_id: z.string().nullable(),
  participants: z.array(z.unknown()),
  metadata: z.record(z.string(), z.unknown()),
  status: StreamStatus,
  created_at: z.string(),
  last_active_at: z.string(),
  message_count: z.number(),
});

function streamBody(row: ChatStreamRow, messageCount: number) {
  return {
    tenant_id: row.tenant_id,
    chat_stream_id: row.chat_stream_id,
    agent_id: row.agent_id,
    platform: row.platform,
    chat_type: row.chat_type,
    group_id: row.group_id,
    group_name: row.group_name,
    user_id: row.user_id,
    participants: row.participants,
    metadata: row.metadata,
    status: row.status,
    created_at: row.created_at.toISOString(),
    last_active_at: row.last_active_at.toISOString(),
    message_count: messageCount,
  };
}

/**
 * POST/GET /chat/streams and GET/DELETE /chat/streams/{id} (API.md § Chat and messages). Sending,
 * history and events live in `chat.ts`. Agent-bound credentials see and touch their agent's
 * streams only: their units of work are narrowed to the agent, so another agent's stream is 404.
 */
export function streamsRoutes({ router, registry, deps }: RouteContext): void {
  route(router, registry, {
    method: 'post',
    path: '/chat/streams',
    operationId: 'createStream',
    headers: ['X-Tenant-ID', 'X-Agent-ID'],
    errors: [409],
    summary: 'Create a chat stream ahead of its first message (within max_chat_streams)',
    tag: TAG,
    auth: SENDERS,
    status: 201,
    body: CreateBody,
    response: StreamResponse,
    handler: async ({ body, principal, req }) => {
      const p = principal;
      const { tenantId, settings } = await resolveTenant(deps, p, req);
      const agentId = agentScope(p, req, body.agent_id);
      assertPlatformAllowed(settings, body.platform);
      // Tenant-wide: the id and the limit are the tenant's, whichever agent the stream gets.
      const row = await deps.db.withTenant(createIsolationContext({ tenantId }), async (db) => {
        await requireAgent(db, agentId);
        // Serialises concurrent creates of this tenant, so the count below cannot be outrun.
        await lockTenantResource(db, 'chat_streams');
        if (await getChatStream(db, body.chat_stream_id)) {
          throw new ConflictError(`chat stream ${body.chat_stream_id} already exists`, {
            details: { chat_stream_id: body.chat_stream_id },
          });
        }
        if ((await countChatStreams(db)) >= settings.max_chat_streams) {
          throw limitReached('max_chat_streams', settings.max_chat_streams);
        }
        return createChatStream(db, {
          chatStreamId: body.chat_stream_id,
          agentId,
          platform: body.platform,
          chatType: body.chat_type,
          groupId: body.group_id ?? null,
          groupName: body.group_name ?? null,
          userId: body.user_id ?? null,
          participants: body.participants ?? [],
          metadata: body.metadata ?? {},
        });
      });
      // The send path counts streams against max_chat_streams from this set, without a query.
      // The row is committed and authoritative; a Redis hiccup here must not fail the request.
      await deps.redis.sadd(deps.keys.knownStreams(tenantId), row.chat_stream_id).catch((err: unknown) => {
        deps.logger.warn(
          { err, tenant_id: tenantId, chat_stream_id: row.chat_stream_id },
          'stream set not updated',
        );
      });
      return { status: 201, data: streamBody(row, 0) };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/chat/streams',
    operationId: 'listStreams',
    headers: ['X-Tenant-ID', 'X-Agent-ID'],
    summary: 'List chat streams, newest first, by platform, status and agent',
    tag: TAG,
    auth: TENANT_MEMBERS,
    query: ListQuery,
    response: z.object({ chat_streams: z.array(StreamResponse), pagination: PaginationSchema }),
    handler: async ({ query, principal, req }) => {
      const p = principal;
      const { tenantId } = await resolveTenant(deps, p, req);
      // Only narrowed when an agent is named or the credential is bound to one (agentScope would
      // otherwise fall back to `default`).
      const named = query.agent_id ?? req.header('x-agent-id');
      const agentId =
        named !== undefined || p.agentId !== undefined ? agentScope(p, req, query.agent_id) : undefined;
      const { rows, total, counts } = await deps.db.withTenant(
        createIsolationContext({ tenantId, agentId }),
        async (db) => {
          const page = await listChatStreams(db, {
            platform: query.platform,
            status: query.status,
            agentId,
            ...pageWindow(query),
          });
          return {
            ...page,
            counts: await messageCountsOf(
              db,
              page.rows.map((r) => r.chat_stream_id),
            ),
          };
        },
      );
      return {
        data: {
          chat_streams: rows.map((r) => streamBody(r, counts.get(r.chat_stream_id) ?? 0)),
          pagination: pagination(query, total),
        },
      };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/chat/streams/:chat_stream_id',
    operationId: 'getStream',
    headers: ['X-Tenant-ID'],
    summary: 'A chat stream with its message count',
    tag: TAG,
    auth: TENANT_MEMBERS,
    params: StreamParams,
    response: StreamResponse,
    handler: async ({ params, principal, req }) => {
      const p = principal;
      const { tenantId } = await resolveTenant(deps, p, req);
      const isolation = createIsolationContext({ tenantId, agentId: p.agentId });
      const found = await deps.db.withTenant(isolation, async (db) => {
        const row = await getChatStream(db, params.chat_stream_id);
        return (
          row && {
            row,
            count: (await messageCountsOf(db, [row.chat_stream_id])).get(row.chat_stream_id) ?? 0,
          }
        );
      });
      if (!found) {
        throw new NotFoundError('CHAT_STREAM_NOT_FOUND', `chat stream ${params.chat_stream_id} not found`);
      }
      return { data: streamBody(found.row, found.count) };
    },
  });

  route(router, registry, {
    method: 'delete',
    path: '/chat/streams/:chat_stream_id',
    operationId: 'deleteStream',
    headers: ['X-Tenant-ID'],
    summary: 'Delete a chat stream and its messages',
    tag: TAG,
    auth: TENANT_WRITERS,
    params: StreamParams,
    response: z.object({ chat_stream_id: z.string(), deleted: z.literal(true) }),
    handler: async ({ params, principal, req }) => {
      const p = principal;
      const { tenantId } = await resolveTenant(deps, p, req);
      const isolation = createIsolationContext({ tenantId, agentId: p.agentId });
      // Messages and action records go with it (foreign keys ON DELETE CASCADE).
      const deleted = await deps.db.withTenant(isolation, (db) =>
        deleteChatStream(db, params.chat_stream_id),
      );
      if (!deleted) {
        throw new NotFoundError('CHAT_STREAM_NOT_FOUND', `chat stream ${params.chat_stream_id} not found`);
      }
      await deps.redis.srem(deps.keys.knownStreams(tenantId), params.chat_stream_id);
      return { data: { chat_stream_id: params.chat_stream_id, deleted: true as const } };
    },
  });
}
