import { TENANT_MEMBERS } from '../../auth/principal';
import { agentScope } from '../../auth/scope';
import { listScopePage } from '../../db/repositories/memories';
import { createIsolationContext } from '../../domain/isolationContext';
import { pageWindow } from '../http/pagination';
import { route } from '../http/route';
import { resolveTenant } from '../http/tenantContext';
import type { RouteContext } from './context';
import { MEMORY_TAG, optionalAgent } from './memoryAccess';
import {
  AgentParams,
  ChatParams,
  listBody,
  ListQuery,
  ListResponse,
  PlatformParams,
  ScopedListQuery,
} from './memorySchemas';

/**
 * GET /memory/agent/{agent_id}, /memory/platform/{platform} and /memory/chat/{chat_stream_id}: each
 * lists the memories of its own level only (the seed's multi-level test), newest first, paginated.
 * An agent key naming another agent gets 403 ISOLATION_VIOLATION; its platform and chat listings
 * are narrowed to its agent.
 */
export function memoryListingRoutes({ router, registry, deps }: RouteContext): void {
  route(router, registry, {
    method: 'get',
    path: '/memory/agent/:agent_id',
    operationId: 'listAgentMemories',
    headers: ['X-Tenant-ID'],
    summary: "An agent's agent-level memories, newest first",
    tag: MEMORY_TAG,
    auth: TENANT_MEMBERS,
    params: AgentParams,
    query: ListQuery,
    response: ListResponse,
    handler: async ({ params, query, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      const agentId = agentScope(principal, req, params.agent_id);
      const page = await deps.db.withTenant(createIsolationContext({ tenantId, agentId }), (db) =>
        listScopePage(db, { scope: 'agent', agentId, memoryType: query.type, ...pageWindow(query) }),
      );
      return { data: listBody(query, page) };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/memory/platform/:platform',
    operationId: 'listPlatformMemories',
    headers: ['X-Tenant-ID', 'X-Agent-ID'],
    summary: "A platform's platform-level memories (of every agent, or the one named), newest first",
    tag: MEMORY_TAG,
    auth: TENANT_MEMBERS,
    params: PlatformParams,
    query: ScopedListQuery,
    response: ListResponse,
    handler: async ({ params, query, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      const agentId = optionalAgent(principal, req, query.agent_id);
      const page = await deps.db.withTenant(createIsolationContext({ tenantId, agentId }), (db) =>
        listScopePage(db, {
          scope: 'platform',
          agentId,
          platform: params.platform,
          memoryType: query.type,
          ...pageWindow(query),
        }),
      );
      return { data: listBody(query, page) };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/memory/chat/:chat_stream_id',
    operationId: 'listChatMemories',
    headers: ['X-Tenant-ID', 'X-Agent-ID'],
    summary: "A chat stream's chat-level memories, newest first",
    tag: MEMORY_TAG,
    auth: TENANT_MEMBERS,
    params: ChatParams,
    query: ScopedListQuery,
    response: ListResponse,
    handler: async ({ params, query, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      const agentId = optionalAgent(principal, req, query.agent_id);
      const page = await deps.db.withTenant(createIsolationContext({ tenantId, agentId }), (db) =>
        listScopePage(db, {
          scope: 'chat',
          agentId,
          chatStreamId: params.chat_stream_id,
          memoryType: query.type,
          ...pageWindow(query),
        }),
      );
      return { data: listBody(query, page) };
    },
  });
}
