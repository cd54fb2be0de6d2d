import { z } from 'zod';

import type { Database } from '../db/database';
import { usageSince } from '../db/repositories/llmUsage';
import { recentMessages } from '../db/repositories/messages';
import {
  deletePluginState,
  getPluginState,
  messageCountsSince,
  setPluginState,
} from '../db/repositories/plugins';
import type { Clock } from '../domain/clock';
import { createIsolationContext } from '../domain/isolationContext';
import { mulberry32 } from '../domain/random';
import { pickEmoji } from '../emoji/emojiSender';
import type { PluginContext, PluginPermission } from './manifest';
import { pluginMemory } from './memoryAdapter';
import { safeFetch, type SafeFetchOptions } from './safeFetch';

/** What the host side of the PluginAPI uses; plugins never get any of it. */
export interface PluginHostDeps {
  db: Database;
  clock: Clock;
  /** Completes a prompt for the agent (`llm` permission); absent: the call fails. */
  complete?: (ctx: { tenantId: string; agentId: string }, prompt: string) => Promise<string>;
  /** How `http.fetch` resolves and which addresses it may reach (`safeFetch.ts`); tests inject a resolver. */
  http?: SafeFetchOptions;
}

/** One component call as the host sees it: whose, where, with which grants. */
export interface BoundCall {
  tenantId: string;
  pluginId: string;
  granted: ReadonlySet<string>;
  context: PluginContext;
  /** Texts the component sent (`send.text`), answered with after the call. */
  sent: string[];
}

export class PluginPermissionError extends Error {
  constructor(
    readonly pluginId: string,
    readonly permission: PluginPermission,
  ) {
    super(`plugin ${pluginId} was not granted the ${permission} permission`);
    this.name = 'PluginPermissionError';
  }
}

const Text = z.string().min(1).max(2000);
const Key = z.string().min(1).max(256);
const Limit = z.number().int().min(1).max(50).optional();
/** Largest stored value of a plugin's state, bytes of JSON. */
const MAX_STATE_BYTES = 16 * 1024;
const MAX_SENDS = 5;
const MAX_HTTP_BYTES = 64 * 1024;
const HTTP_TIMEOUT_MS = 3000;

interface Method<A extends unknown[] = unknown[]> {
  permission?: PluginPermission;
  args: z.ZodType<A>;
  run(deps: PluginHostDeps, call: BoundCall, args: A): Promise<unknown>;
}

/** A method with its argument types taken from its schema. */
function method<A extends unknown[]>(m: Method<A>): Method {
  return m;
}

function inUnit<T>(
  deps: PluginHostDeps,
  call: BoundCall,
  work: Parameters<Database['withTenant']>[1],
): Promise<T> {
  const ctx = createIsolationContext({
    tenantId: call.tenantId,
    agentId: call.context.agent_id,
    ...(call.context.platform === null ? {} : { platform: call.context.platform }),
    ...(call.context.platform !== null && call.context.chat_stream_id !== null
      ? { chatStreamId: call.context.chat_stream_id }
      : {}),
  });
  return deps.db.withTenant(ctx, work) as Promise<T>;
}

function requireChat(call: BoundCall): string {
  if (call.context.chat_stream_id === null) throw new Error('this call has no chat stream');
  return call.context.chat_stream_id;
}

const METHODS: Record<string, Method> = {
  'message.recent': method({
    permission: 'message_read',
    args: z.tuple([Limit]),
    run: (deps, call, [limit]) =>
      inUnit(deps, call, async (db) =>
        (await recentMessages(db, requireChat(call), limit ?? 10)).map((m) => ({
          sender: m.sender_nickname ?? m.sender_user_id ?? 'bot',
          content: m.content,
          from_bot: m.direction === 'out',
        })),
      ),
  }),
  'send.text': method({
    permission: 'message_send',
    args: z.tuple([Text]),
    run: (_deps, call, [text]) => {
      if (call.sent.length >= MAX_SENDS) throw new Error(`at most ${MAX_SENDS} texts per call`);
      call.sent.push(text);
      return Promise.resolve(null);
    },
  }),
  'memory.remember': method({
    permission: 'memory_write',
    args: z.tuple([Text, z.array(z.string().min(1).max(64)).max(10).optional()]),
    run: (deps, call, [content, tags]: [string, string[] | undefined]) =>
      inUnit(deps, call, (db) => pluginMemory.remember(db, call.context, call.pluginId, content, tags ?? [])),
  }),
  'memory.recall': method({
    permission: 'memory_read',
    args: z.tuple([z.string().max(500), Limit]),
    run: (deps, call, [query, limit]) =>
      inUnit(deps, call, (db) => pluginMemory.recall(db, call.context, query, limit ?? 5)),
  }),
  'emoji.pick': method({
    permission: 'emoji',
    args: z.tuple([z.string().min(1).max(64).optional()]),
    run: (deps, call, [emotion]) =>
      inUnit(deps, call, async (db) => {
        const rng = mulberry32(deps.clock.now() >>> 0);
        return (await pickEmoji(db, call.context.platform ?? 'default', emotion, rng)).text;
      }),
  }),
  'llm.complete': method({
    permission: 'llm',
    args: z.tuple([z.string().min(1).max(8000)]),
    run: (deps, call, [prompt]) => {
      if (!deps.complete) throw new Error('no LLM is available to plugins in this process');
      return deps.complete({ tenantId: call.tenantId, agentId: call.context.agent_id }, prompt);
    },
  }),
  'http.fetch': method({
    permission: 'http',
    args: z.tuple([z.url({ protocol: /^https?$/ })]),
    // Public addresses only, after DNS resolution, connecting to the address checked; redirects
    // checked hop by hop (`safeFetch.ts`).
    run: (deps, _call, [url]) =>
      safeFetch(url, { timeoutMs: HTTP_TIMEOUT_MS, maxBytes: MAX_HTTP_BYTES, ...deps.http }),
  }),
  'usage.today': method({
    permission: 'usage_read',
    args: z.tuple([]),
    run: (deps, call) =>
      inUnit(deps, call, async (db) => {
        const now = new Date(deps.clock.now());
        const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
        const [llm, messages] = await Promise.all([
          usageSince(db, dayStart),
          messageCountsSince(db, dayStart),
        ]);
        return {
          messages_in: messages.in,
          replies: messages.out,
          llm_requests: llm.requests,
          tokens: llm.tokens,
          cost: llm.cost,
        };
      }),
  }),
  'storage.get': method({
    args: z.tuple([Key]),
    run: (deps, call, [key]) => inUnit(deps, call, (db) => getPluginState(db, call.pluginId, key)),
  }),
  'storage.set': method({
    args: z.tuple([Key, z.unknown()]),
    run: (deps, call, [key, value]) => {
      const json = JSON.stringify(value ?? null);
      if (Buffer.byteLength(json) > MAX_STATE_BYTES)
        throw new Error(`state values are at most ${MAX_STATE_BYTES} bytes`);
      return inUnit(deps, call, (db) => setPluginState(db, call.pluginId, key, value ?? null));
    },
  }),
  'storage.delete': method({
    args: z.tuple([Key]),
    run: (deps, call, [key]) => inUnit(deps, call, (db) => deletePluginState(db, call.pluginId, key)),
  }),
};

/**
 * Answers one PluginAPI call of a component: the method must exist, the plugin must hold its
 * permission (checked on every call, against the tenant's grant), the arguments must check out,
 * and the work runs in a unit of work of the call's own tenant and context, under row-level
 * security. Nothing else is reachable: there is no method that takes a tenant, a table or a key.
 */
export async function answerApiCall(
  deps: PluginHostDeps,
  call: BoundCall,
  method: string,
  args: unknown[],
): Promise<unknown> {
  const m = METHODS[method];
  if (!m) throw new Error(`no PluginAPI method ${method}`);
  if (m.permission && !call.granted.has(m.permission))
    throw new PluginPermissionError(call.pluginId, m.permission);
  const parsed = m.args.safeParse(args.length < 1 ? [] : args);
  if (!parsed.success)
    throw new Error(`bad arguments to ${method}: ${parsed.error.issues[0]?.message ?? ''}`);
  return m.run(deps, call, parsed.data);
}
