import { z } from 'zod';

import type { MemoryRow } from '../../db/repositories/memories';
import type { FoundMemory } from '../../db/repositories/memorySearch';
import { IDENTIFIER_PATTERN } from '../../domain/isolationContext';
import {
  MAX_PAGE_LIMIT,
  pageQuery,
  type PageRequest,
  pagination,
  PaginationSchema,
} from '../http/pagination';

/** Request and response shapes of API.md § Memory (used by `memory.ts`). */

export const Identifier = z.string().regex(IDENTIFIER_PATTERN, `must match ${IDENTIFIER_PATTERN.source}`);
export const MemoryType = z.enum(['preference', 'fact', 'conversation', 'emotion', 'summary']);
export const MemoryScope = z.enum(['agent', 'platform', 'chat']);

/** Longest memory text; longest query (a query is a few words, not a document). */
export const MAX_CONTENT_CHARS = 10_000;
export const MAX_QUERY_CHARS = 500;
const Importance = z.number().min(0).max(1);
const Tags = z.array(z.string().trim().min(1).max(64)).max(50);
const Metadata = z.record(z.string(), z.unknown());
const Content = z.string().trim().min(1).max(MAX_CONTENT_CHARS);
const Title = z.string().trim().min(1).max(200);
const Expiry = z.iso.datetime({ offset: true });

export const StoreBody = z.strictObject({
  content: Content,
  title: Title.optional(),
  memory_type: MemoryType,
  importance: Importance.default(0.5),
  tags: Tags.default([]),
  /** Default: `chat` when a chat stream is named, else `agent`. */
  scope: MemoryScope.optional(),
  agent_id: Identifier.optional(),
  platform: Identifier.optional(),
  chat_stream_id: Identifier.optional(),
  metadata: Metadata.optional(),
  expires_at: Expiry.optional(),
});

export const UpdateBody = z
  .strictObject({
    content: Content.optional(),
    title: Title.nullable().optional(),
    memory_type: MemoryType.optional(),
    importance: Importance.optional(),
    tags: Tags.optional(),
    metadata: Metadata.optional(),
    /** null removes the expiry. */
    expires_at: Expiry.nullable().optional(),
  })
  .refine((b) => Object.keys(b).length > 0, { message: 'nothing to change' });

export const SearchQuery = z.strictObject({
  query: z.string().trim().min(1).max(MAX_QUERY_CHARS),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_LIMIT).default(10),
  type: MemoryType.optional(),
  scope: MemoryScope.optional(),
  agent_id: Identifier.optional(),
  platform: Identifier.optional(),
  chat_stream_id: Identifier.optional(),
});

export const ListQuery = z.strictObject({ ...pageQuery, type: MemoryType.optional() });
export const ScopedListQuery = z.strictObject({
  ...pageQuery,
  type: MemoryType.optional(),
  agent_id: Identifier.optional(),
});
export const StatisticsQuery = z.strictObject({ agent_id: Identifier.optional() });

export const MemoryIdParams = z.object({ memory_id: z.string().regex(/^mem_[A-Za-z0-9_-]{1,120}$/) });
export const AgentParams = z.object({ agent_id: Identifier });
export const PlatformParams = z.object({ platform: Identifier });
export const ChatParams = z.object({ chat_stream_id: Identifier });

export const MemoryResponse = z.object({
  memory_id: z.string(),
  agent_id: z.string(),
  scope: MemoryScope,
  platform: z.string().nullable(),
  chat_stream_id: z.string().nullable(),
  title: z.string().nullable(),
  content: z.string(),
  memory_type: MemoryType,
  importance: z.number(),
  tags: z.array(z.string()),
  metadata: z.record(z.string(), z.unknown()),
  access_count: z.number().int(),
  last_accessed: z.string().nullable(),
  expires_at: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

export const DeletedResponse = z.object({ memory_id: z.string(), deleted: z.literal(true) });

export const StoredResponse = MemoryResponse.extend({
  /** true: an existing memory said the same and was strengthened instead of a copy stored. */
  merged: z.boolean(),
});

export const FoundResponse = MemoryResponse.extend({ score: z.number() });

export const ListResponse = z.object({ memories: z.array(MemoryResponse), pagination: PaginationSchema });

export const SearchResponse = z.object({ memories: z.array(FoundResponse), total: z.number().int() });

const Counts = (keys: readonly string[]) =>
  z.object(Object.fromEntries(keys.map((k) => [k, z.number().int()])));

export const StatisticsResponse = z.object({
  total_memories: z.number().int(),
  by_type: Counts(MemoryType.options),
  by_scope: Counts(MemoryScope.options),
  by_importance: Counts(['high', 'medium', 'low']),
  recent_activity: Counts(['added_today', 'accessed_today']),
});

export function memoryBody(r: MemoryRow) {
  return {
    memory_id: r.memory_id,
    agent_id: r.agent_id,
    scope: r.scope,
    platform: r.platform,
    chat_stream_id: r.chat_stream_id,
    title: r.title,
    content: r.content,
    memory_type: r.memory_type,
    importance: Math.round(r.importance * 1e4) / 1e4,
    tags: r.tags,
    metadata: r.metadata,
    access_count: r.access_count,
    last_accessed: r.last_accessed?.toISOString() ?? null,
    expires_at: r.expires_at?.toISOString() ?? null,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  };
}

export function foundBody(m: FoundMemory) {
  // Not `{ ...memoryBody(m), score }`: a property added to a spread copy is slow in V8 (see rankMemories).
  return Object.assign(memoryBody(m), { score: m.score });
}

/** `data` of a listing: the page's memories and its pagination. */
export function listBody(request: PageRequest, page: { rows: MemoryRow[]; total: number }) {
  return { memories: page.rows.map(memoryBody), pagination: pagination(request, page.total) };
}
