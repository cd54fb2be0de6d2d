import type { Request } from 'express';
import { z } from 'zod';

import { type Principal, TENANT_MEMBERS, TENANT_WRITERS } from '../../auth/principal';
import { agentScope } from '../../auth/scope';
import {
  type ConfigRef,
  type ConfigWriteDeps,
  putConfig,
  resetConfig,
} from '../../configuration/configWrites';
import { getChatStream } from '../../db/repositories/chatStreams';
import { configHistory } from '../../db/repositories/configEntries';
import {
  CONFIG_CATEGORIES,
  CONFIG_SCOPES,
  type ConfigCategory,
  configJsonSchema,
  configPatchSchema,
  maskConfigValues,
} from '../../domain/configuration/categories';
import type { EffectiveConfig } from '../../domain/configuration/precedence';
import { createIsolationContext, IDENTIFIER_PATTERN } from '../../domain/isolationContext';
import { NotFoundError, ValidationError } from '../../errors';
import { route, zodToValidationError } from '../http/route';
import { resolveTenant } from '../http/tenantContext';
import type { RouteContext } from './context';

const TAG = 'Configuration';

const Identifier = z.string().regex(IDENTIFIER_PATTERN, `must match ${IDENTIFIER_PATTERN.source}`);
const Category = z.enum(CONFIG_CATEGORIES);
const Scope = z.enum(CONFIG_SCOPES);
const Source = z.enum([...CONFIG_SCOPES, 'default']);

const Target = {
  agent_id: Identifier.optional(),
  platform: Identifier.optional(),
  chat_stream_id: Identifier.optional(),
};
const ReadQuery = z.strictObject({ category: Category.optional(), ...Target });
const PutBody = z.strictObject({
  category: Category,
  scope: Scope,
  ...Target,
  /** Keys of the category: given ones replace the scope's, `null` removes one, `"***"` keeps a secret. */
  config: z.record(z.string(), z.unknown()),
});
const ResetQuery = z.strictObject({ category: Category.optional(), scope: Scope, ...Target });
const HistoryQuery = z.strictObject({
  category: Category.optional(),
  agent_id: Identifier.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});

const Values = z.record(z.string(), z.unknown());
const Change = z.object({
  category: Category,
  scope: Scope,
  agent_id: z.string().nullable(),
  platform: z.string().nullable(),
  chat_stream_id: z.string().nullable(),
  version: z.number().int(),
  action: z.enum(['put', 'reset']),
  config: Values,
  changes: z.record(z.string(), z.object({ from: z.unknown(), to: z.unknown() })),
  changed_by: z.string().nullable(),
  changed_at: z.string(),
});
const EffectiveResponse = z.object({
  tenant_id: z.string(),
  agent_id: z.string().nullable(),
  platform: z.string().nullable(),
  chat_stream_id: z.string().nullable(),
  config: z.record(z.string(), Values),
  sources: z.record(z.string(), z.record(z.string(), Source)),
});

/** The effective values as reads show them (secrets `***`), of one category or all. */
export function shownConfig(effective: EffectiveConfig, category: ConfigCategory | undefined) {
  const categories = category ? [category] : [...CONFIG_CATEGORIES];
  return {
    config: Object.fromEntries(categories.map((c) => [c, maskConfigValues(c, effective[c].values)])),
    sources: Object.fromEntries(categories.map((c) => [c, effective[c].sources])),
  };
}

/** The five configuration endpoints of API.md § Configuration. */
export function configurationRoutes({ router, registry, deps }: RouteContext): void {
  const writeDeps: ConfigWriteDeps = {
    db: deps.db,
    sealer: deps.secrets,
    reader: deps.configReader,
    tenants: deps.tenants,
  };

  /** The scope a write names, with the id its scope needs (and no other). */
  async function refOf(
    p: Principal,
    req: Request,
    input: { category: ConfigCategory; scope: (typeof CONFIG_SCOPES)[number] } & Partial<
      Record<'agent_id' | 'platform' | 'chat_stream_id', string>
    >,
  ): Promise<ConfigRef> {
    const { tenantId } = await resolveTenant(deps, p, req);
    const needs = {
      tenant: undefined,
      agent: 'agent_id',
      platform: 'platform',
      chat: 'chat_stream_id',
    } as const;
    const needed = needs[input.scope];
    const fields: { path: string; issue: string }[] = [];
    for (const key of ['agent_id', 'platform', 'chat_stream_id'] as const) {
      if (key === needed && input[key] === undefined && !(key === 'agent_id' && p.agentId)) {
        fields.push({ path: key, issue: `required for scope ${input.scope}` });
      } else if (key !== needed && input[key] !== undefined) {
        fields.push({ path: key, issue: `not used by scope ${input.scope}` });
      }
    }
    if (fields.length > 0) throw new ValidationError('the scope and its ids do not match', fields);
    return {
      tenantId,
      category: input.category,
      scope: input.scope,
      agentId: input.scope === 'agent' ? agentScope(p, req, input.agent_id) : undefined,
      platform: input.platform,
      chatStreamId: input.chat_stream_id,
    };
  }

  route(router, registry, {
    method: 'get',
    path: '/config/schema',
    operationId: 'getConfigSchema',
    summary: 'Every configuration category as JSON Schema, with defaults and units',
    tag: TAG,
    auth: TENANT_MEMBERS,
    response: z.object({ scopes: z.array(Scope), categories: z.record(z.string(), z.unknown()) }),
    handler: () => Promise.resolve({ data: { scopes: [...CONFIG_SCOPES], categories: configJsonSchema() } }),
  });

  route(router, registry, {
    method: 'get',
    path: '/config',
    operationId: 'getConfig',
    headers: ['X-Tenant-ID', 'X-Agent-ID'],
    errors: [404],
    summary: 'Effective configuration of a tenant, agent, platform or chat, and the scope of each key',
    tag: TAG,
    auth: TENANT_MEMBERS,
    query: ReadQuery,
    response: EffectiveResponse,
    handler: async ({ query, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      let agentId =
        query.agent_id !== undefined || principal.agentId !== undefined || req.header('x-agent-id')
          ? agentScope(principal, req, query.agent_id)
          : undefined;
      let platform = query.platform;
      if (query.chat_stream_id !== undefined) {
        // A chat's configuration is what its worker reads: its own agent and platform.
        const stream = await deps.db.withTenant(createIsolationContext({ tenantId }), (db) =>
          getChatStream(db, query.chat_stream_id!),
        );
        if (!stream || (agentId !== undefined && stream.agent_id !== agentId)) {
          throw new NotFoundError('CHAT_STREAM_NOT_FOUND', `chat stream ${query.chat_stream_id} not found`);
        }
        agentId = stream.agent_id;
        platform = stream.platform;
      }
      const ctx = { tenantId, agentId, platform, chatStreamId: query.chat_stream_id };
      const effective = await deps.configReader.effectiveConfig(ctx);
      return {
        data: {
          tenant_id: tenantId,
          agent_id: agentId ?? null,
          platform: platform ?? null,
          chat_stream_id: query.chat_stream_id ?? null,
          ...shownConfig(effective, query.category),
        },
      };
    },
  });

  route(router, registry, {
    method: 'put',
    path: '/config',
    operationId: 'putConfig',
    headers: ['X-Tenant-ID', 'X-Agent-ID'],
    errors: [404],
    summary: 'Set values of one category at one scope (validated; a new version)',
    tag: TAG,
    auth: TENANT_WRITERS,
    body: PutBody,
    response: Change,
    handler: async ({ body, principal, req }) => {
      const parsed = configPatchSchema(body.category).safeParse(body.config);
      if (!parsed.success) {
        const error = zodToValidationError(parsed.error, 'body');
        throw new ValidationError(
          'invalid config',
          error.fields.map((f) => ({
            path: f.path === 'body' ? 'config' : `config.${f.path}`,
            issue: f.issue,
          })),
        );
      }
      const ref = await refOf(principal, req, body);
      const result = await putConfig(writeDeps, ref, parsed.data, principal.subject);
      return { data: changeBody(ref, 'put', result, principal.subject) };
    },
  });

  route(router, registry, {
    method: 'post',
    path: '/config/reset',
    operationId: 'resetConfig',
    headers: ['X-Tenant-ID', 'X-Agent-ID'],
    errors: [404],
    summary: 'Remove the values a scope sets (one category, or all): it inherits them again',
    tag: TAG,
    auth: TENANT_WRITERS,
    query: ResetQuery,
    response: z.object({ reset: z.array(Change) }),
    handler: async ({ query, principal, req }) => {
      const categories = query.category ? [query.category] : [...CONFIG_CATEGORIES];
      const reset = [];
      for (const category of categories) {
        const ref = await refOf(principal, req, { ...query, category });
        const result = await resetConfig(writeDeps, ref, principal.subject);
        if (result) reset.push(changeBody(ref, 'reset', result, principal.subject));
      }
      return { data: { reset } };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/config/history',
    operationId: 'getConfigHistory',
    headers: ['X-Tenant-ID', 'X-Agent-ID'],
    summary: 'The latest configuration changes, newest first (who, when, what changed)',
    tag: TAG,
    auth: TENANT_MEMBERS,
    query: HistoryQuery,
    response: z.object({ history: z.array(Change) }),
    handler: async ({ query, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      // An agent credential sees its own agent's changes only.
      const agentId = principal.agentId ?? query.agent_id;
      if (principal.agentId && query.agent_id && query.agent_id !== principal.agentId)
        agentScope(principal, req, query.agent_id);
      const rows = await deps.db.withTenant(createIsolationContext({ tenantId }), (db) =>
        configHistory(db, { category: query.category, agentId, limit: query.limit }),
      );
      return {
        data: {
          history: rows.map((r) => ({
            category: r.category as ConfigCategory,
            scope: r.scope,
            agent_id: r.agent_id,
            platform: r.platform,
            chat_stream_id: r.chat_stream_id,
            version: r.version,
            action: r.action,
            config: r.config,
            changes: r.changes,
            changed_by: r.changed_by,
            changed_at: r.created_at.toISOString(),
          })),
        },
      };
    },
  });
}

function changeBody(
  ref: ConfigRef,
  action: 'put' | 'reset',
  result: {
    version: number;
    config: Record<string, unknown>;
    changes: Record<string, { from: unknown; to: unknown }>;
    changed_at: string;
  },
  by: string,
) {
  return {
    category: ref.category,
    scope: ref.scope,
    agent_id: ref.agentId ?? null,
    platform: ref.platform ?? null,
    chat_stream_id: ref.chatStreamId ?? null,
    version: result.version,
    action,
    config: result.config,
    changes: result.changes,
    changed_by: by,
    changed_at: result.changed_at,
  };
}
