import type { Request } from 'express';

import type { Principal } from '../../auth/principal';
import { TENANT_MEMBERS } from '../../auth/principal';
import { agentScope } from '../../auth/scope';
import { listScopePage, type MemoryType, type ScopeListing } from '../../db/repositories/memories';
import { createIsolationContext } from '../../domain/isolationContext';
import { type PageRequest, pageWindow } from '../http/pagination';
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
  /** One level's page, in the caller's tenant, narrowed to `agentId` when there is one. */
  const listLevel = async (
    query: PageRequest & { type?: MemoryType | undefined },
    principal: Principal,
    req: Request,
    agentId: string | undefined,
    level: Pick<ScopeListing, 'scope' | 'platform' | 'chatStreamId'>,
  ) => {
    const { tenantId } = await resolveTenant(deps, principal, req);
    // Read-only, one round trip (two for a page past the end, which counts again).
    const page = await deps.db.readTenant(createIsolationContext({ tenantId, agentId }), (db) =>
      listScopePage(db, { ...level, agentId, memoryType: query.type, ...pageWindow(query) }),
    );
    return { data: listBody(query, page) };
  };

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
    handler: async ({ params, query, principal, req }) =>
      listLevel(query, principal, req, agentScope(principal, req, params.agent_id), { scope: 'agent' }),
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
    handler: async ({ params, query, principal, req }) =>
      listLevel(query, principal, req, optionalAgent(principal, req, query.agent_id), {
        scope: 'platform',
        platform: params.platform,
      }),
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
    handler: async ({ params, query, principal, req }) =>
      listLevel(query, principal, req, optionalAgent(principal, req, query.agent_id), {
        scope: 'chat',
        chatStreamId: params.chat_stream_id,
      }),
  });
}
