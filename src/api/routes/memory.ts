import type { z } from 'zod';

import { TENANT_MEMBERS, TENANT_WRITERS } from '../../auth/principal';
import { agentScope } from '../../auth/scope';
import { requireAgent } from '../../db/repositories/agents';
import { getChatStream } from '../../db/repositories/chatStreams';
import { deleteMemory, readMemory, storeOrStrengthen, updateMemory } from '../../db/repositories/memories';
import { searchMemories } from '../../db/repositories/memorySearch';
import { memoryStatistics, purgeExpiredMemories } from '../../db/repositories/memoryStatistics';
import { newId } from '../../domain/ids';
import { createIsolationContext } from '../../domain/isolationContext';
import { type FieldIssue, NotFoundError, ValidationError } from '../../errors';
import { route } from '../http/route';
import { resolveTenant } from '../http/tenantContext';
import type { RouteContext } from './context';
import { MEMORY_TAG, optionalAgent } from './memoryAccess';
import { memoryListingRoutes } from './memoryListings';
import {
  DeletedResponse,
  foundBody,
  memoryBody,
  MemoryIdParams,
  MemoryResponse,
  SearchQuery,
  SearchResponse,
  StatisticsQuery,
  StatisticsResponse,
  StoreBody,
  StoredResponse,
  UpdateBody,
} from './memorySchemas';

function notFound(memoryId: string): NotFoundError {
  return new NotFoundError('NOT_FOUND', `memory ${memoryId} not found`, { memory_id: memoryId });
}

/** The scope a stored memory gets, and the fields that contradict it (API.md § Memory). */
function storeScope(body: StoreInput): { scope: 'agent' | 'platform' | 'chat'; issues: FieldIssue[] } {
  const scope = body.scope ?? (body.chat_stream_id !== undefined ? 'chat' : 'agent');
  const issues: FieldIssue[] = [];
  if (scope === 'agent' && body.platform !== undefined)
    issues.push({ path: 'platform', issue: 'only for scope platform or chat' });
  if (scope !== 'chat' && body.chat_stream_id !== undefined)
    issues.push({ path: 'chat_stream_id', issue: 'only for scope chat' });
  if (scope === 'platform' && body.platform === undefined)
    issues.push({ path: 'platform', issue: 'required for scope platform' });
  if (scope === 'chat' && body.chat_stream_id === undefined)
    issues.push({ path: 'chat_stream_id', issue: 'required for scope chat' });
  return { scope, issues };
}

type StoreInput = z.infer<typeof StoreBody>;

/**
 * API.md § Memory: store, search, read, change, delete and count memories. The three scope
 * listings live in `memoryListings.ts`. Reads are open to every member of the tenant (an agent
 * key sees only its agent's memories: its units of work are narrowed to it); writes to admins.
 */
export function memoryRoutes(ctx: RouteContext): void {
  const { router, registry, deps } = ctx;
  route(router, registry, {
    method: 'post',
    path: '/memory/store',
    operationId: 'storeMemory',
    headers: ['X-Tenant-ID', 'X-Agent-ID'],
    summary: 'Store a memory (one saying the same in the same scope is strengthened instead)',
    tag: MEMORY_TAG,
    auth: TENANT_WRITERS,
    status: 201,
    body: StoreBody,
    response: StoredResponse,
    handler: async ({ body, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      const { scope, issues } = storeScope(body);
      const expiresAt = body.expires_at === undefined ? undefined : new Date(body.expires_at);
      if (expiresAt && expiresAt.getTime() <= deps.clock.now())
        issues.push({ path: 'expires_at', issue: 'must be in the future' });
      if (issues.length > 0) throw new ValidationError('invalid request body', issues);
      const named = body.agent_id ?? req.header('x-agent-id');
      const stored = await deps.db.withTenant(createIsolationContext({ tenantId }), async (db) => {
        let agentId = named === undefined ? undefined : agentScope(principal, req, body.agent_id);
        let platform = body.platform;
        if (scope === 'chat') {
          const stream = await getChatStream(db, body.chat_stream_id!);
          if (!stream)
            throw new NotFoundError('CHAT_STREAM_NOT_FOUND', `chat stream ${body.chat_stream_id} not found`);
          const clash: FieldIssue[] = [];
          if (platform !== undefined && platform !== stream.platform)
            clash.push({ path: 'platform', issue: `the chat stream is on ${stream.platform}` });
          if (agentId !== undefined && agentId !== stream.agent_id)
            clash.push({ path: 'agent_id', issue: `the chat stream belongs to agent ${stream.agent_id}` });
          if (clash.length > 0) throw new ValidationError('invalid request body', clash);
          agentId = stream.agent_id;
          platform = stream.platform;
        }
        agentId ??= agentScope(principal, req, undefined);
        await requireAgent(db, agentId);
        await purgeExpiredMemories(db, 100);
        return storeOrStrengthen(db, {
          memoryId: newId('mem', deps.clock.now()),
          agentId,
          scope,
          platform: platform ?? null,
          chatStreamId: body.chat_stream_id ?? null,
          content: body.content,
          title: body.title ?? null,
          memoryType: body.memory_type,
          importance: body.importance,
          tags: body.tags,
          metadata: body.metadata ?? {},
          expiresAt: expiresAt ?? null,
        });
      });
      return { status: 201, data: { ...memoryBody(stored.row), merged: stored.merged } };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/memory/search',
    operationId: 'searchMemories',
    headers: ['X-Tenant-ID', 'X-Agent-ID'],
    summary:
      'Search memories (Chinese without spaces, English, mixed) ranked by relevance, importance and recency',
    tag: MEMORY_TAG,
    auth: TENANT_MEMBERS,
    query: SearchQuery,
    response: SearchResponse,
    handler: async ({ query, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      let agentId = optionalAgent(principal, req, query.agent_id);
      let platform = query.platform;
      // Reads only, one round trip per step (readTenant): seen from a chat stream, the search's
      // filters are the stream's agent and platform, so it waits for the stream's row (two steps).
      const found = await deps.db.readTenant(createIsolationContext({ tenantId, agentId }), async (db) => {
        if (query.chat_stream_id !== undefined) {
          // Seen from a chat stream: its agent's memories, its platform's and its own.
          const stream = await getChatStream(db, query.chat_stream_id);
          if (!stream)
            throw new NotFoundError('CHAT_STREAM_NOT_FOUND', `chat stream ${query.chat_stream_id} not found`);
          if (agentId !== undefined && agentId !== stream.agent_id) return { memories: [], total: 0 };
          if (platform !== undefined && platform !== stream.platform) return { memories: [], total: 0 };
          agentId = stream.agent_id;
          platform = stream.platform;
        }
        const result = await searchMemories(db, {
          query: query.query,
          limit: query.limit,
          now: deps.clock.now(),
          agentId,
          scope: query.scope,
          memoryType: query.type,
          platform,
          chatStreamId: query.chat_stream_id,
        });
        return result;
      });
      // Counted off the response's path (MemoryAccessCounter).
      deps.memoryAccess.count(
        tenantId,
        found.memories.map((m) => m.memory_id),
      );
      return { data: { memories: found.memories.map(foundBody), total: found.total } };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/memory/statistics',
    operationId: 'memoryStatistics',
    headers: ['X-Tenant-ID', 'X-Agent-ID'],
    summary: "Counts of the tenant's (or one agent's) unexpired memories by type, scope and importance",
    tag: MEMORY_TAG,
    auth: TENANT_MEMBERS,
    query: StatisticsQuery,
    response: StatisticsResponse,
    handler: async ({ query, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      const agentId = optionalAgent(principal, req, query.agent_id);
      const stats = await deps.db.withTenantAtOnce(
        createIsolationContext({ tenantId, agentId }),
        (db) => memoryStatistics(db, agentId),
        { readOnly: true },
      );
      return { data: stats };
    },
  });

  memoryListingRoutes(ctx);

  route(router, registry, {
    method: 'get',
    path: '/memory/:memory_id',
    operationId: 'getMemory',
    headers: ['X-Tenant-ID'],
    summary: 'A memory (reading it counts as an access)',
    tag: MEMORY_TAG,
    auth: TENANT_MEMBERS,
    params: MemoryIdParams,
    response: MemoryResponse,
    handler: async ({ params, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      const isolation = createIsolationContext({ tenantId, agentId: principal.agentId });
      const row = await deps.db.withTenant(isolation, (db) => readMemory(db, params.memory_id));
      if (!row) throw notFound(params.memory_id);
      return { data: memoryBody(row) };
    },
  });

  route(router, registry, {
    method: 'put',
    path: '/memory/:memory_id',
    operationId: 'updateMemory',
    headers: ['X-Tenant-ID'],
    summary: "Change a memory's content, title, type, importance, tags, metadata or expiry",
    tag: MEMORY_TAG,
    auth: TENANT_WRITERS,
    params: MemoryIdParams,
    body: UpdateBody,
    response: MemoryResponse,
    handler: async ({ params, body, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      const expiresAt =
        body.expires_at === undefined
          ? undefined
          : body.expires_at === null
            ? null
            : new Date(body.expires_at);
      if (expiresAt && expiresAt.getTime() <= deps.clock.now())
        throw new ValidationError('invalid request body', [
          { path: 'expires_at', issue: 'must be in the future' },
        ]);
      const isolation = createIsolationContext({ tenantId, agentId: principal.agentId });
      const row = await deps.db.withTenant(isolation, (db) =>
        updateMemory(db, params.memory_id, {
          content: body.content,
          title: body.title,
          memoryType: body.memory_type,
          importance: body.importance,
          tags: body.tags,
          metadata: body.metadata,
          expiresAt,
        }),
      );
      if (!row) throw notFound(params.memory_id);
      return { data: memoryBody(row) };
    },
  });

  route(router, registry, {
    method: 'delete',
    path: '/memory/:memory_id',
    operationId: 'deleteMemory',
    headers: ['X-Tenant-ID'],
    summary: 'Delete a memory',
    tag: MEMORY_TAG,
    auth: TENANT_WRITERS,
    params: MemoryIdParams,
    response: DeletedResponse,
    handler: async ({ params, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      const isolation = createIsolationContext({ tenantId, agentId: principal.agentId });
      const deleted = await deps.db.withTenant(isolation, (db) => deleteMemory(db, params.memory_id));
      if (!deleted) throw notFound(params.memory_id);
      return { data: { memory_id: params.memory_id, deleted: true as const } };
    },
  });
}
