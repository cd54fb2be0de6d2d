import type { Request } from 'express';
import { z } from 'zod';

import { type Principal, TENANT_MEMBERS, TENANT_WRITERS } from '../../auth/principal';
import { agentScope } from '../../auth/scope';
import { lockConfigWrites, recordAgentConfigVersions } from '../../configuration/configWrites';
import type { TenantDb } from '../../db/database';
import { accountsClaimedByOthers, replaceAgentAccounts } from '../../db/repositories/agentAccounts';
import {
  type AgentRow,
  countAgents,
  createAgent,
  deleteAgent,
  getAgent,
  getAgentForUpdate,
  listAgentPage,
  requireAgent,
  updateAgent,
} from '../../db/repositories/agents';
import { chatStreamIdsOfAgent } from '../../db/repositories/chatStreams';
import { lockTenantResource } from '../../db/repositories/tenantLocks';
import {
  type AgentConfig,
  AgentConfigPatch,
  applyAgentConfigPatch,
  maskAgentConfig,
  storedAgentConfig,
} from '../../domain/agentConfig';
import { createIsolationContext, IDENTIFIER_PATTERN } from '../../domain/isolationContext';
import { assertPlatformAllowed, limitReached } from '../../domain/tenantLimits';
import type { TenantSettings } from '../../domain/tenantSettings';
import { ConflictError, NotFoundError, ValidationError } from '../../errors';
import { announceAgentChange } from '../../ingress/agentLookup';
import { pageQuery, pageWindow, pagination, PaginationSchema } from '../http/pagination';
import { route } from '../http/route';
import { resolveTenant } from '../http/tenantContext';
import type { RouteContext } from './context';

const TAG = 'Agents';

const Identifier = z.string().regex(IDENTIFIER_PATTERN, `must match ${IDENTIFIER_PATTERN.source}`);
const Name = z.string().trim().min(1).max(200);
const Description = z.string().max(2000).nullable();
const Status = z.enum(['active', 'inactive']);

const AgentParams = z.object({ agent_id: Identifier });
const ListQuery = z.object({ ...pageQuery, status: Status.optional() });
const CreateBody = z.strictObject({
  agent_id: Identifier,
  name: Name,
  description: Description.optional(),
  /** The platform the agent mainly serves (the upstream `platform`). */
  platform: Identifier.nullable().optional(),
  config: AgentConfigPatch.optional(),
});
const UpdateBody = z.strictObject({
  name: Name.optional(),
  description: Description.optional(),
  platform: Identifier.nullable().optional(),
  status: Status.optional(),
  /** Merged: top-level keys given replace the stored ones, `null` removes one. */
  config: AgentConfigPatch.optional(),
});

const ConfigResponse = z.object({ agent_id: z.string(), config: z.record(z.string(), z.unknown()) });
const AgentResponse = z.object({
  tenant_id: z.string(),
  agent_id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  status: Status,
  platform: z.string().nullable(),
  config: z.record(z.string(), z.unknown()),
  created_at: z.string(),
  updated_at: z.string(),
});
const ListedAgent = AgentResponse.omit({ config: true }).extend({
  last_active: z.string().nullable(),
  message_count: z.number(),
  memory_count: z.number(),
});

/** The default agent is where credentials without an agent land; it always exists. */
const DEFAULT_AGENT = 'default';

function agentFields(row: AgentRow) {
  return {
    tenant_id: row.tenant_id,
    agent_id: row.agent_id,
    name: row.name,
    description: row.description,
    status: row.status,
    platform: row.default_platform,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

/** Secrets are write-only: every read shows `***`. */
function agentBody(row: AgentRow) {
  return { ...agentFields(row), config: maskAgentConfig(storedAgentConfig(row.config)) };
}

/**
 * Every platform a write names must be allowed by the tenant (when it restricts platforms). Only
 * what the request names: accounts stored before the tenant restricted platforms do not block
 * unrelated changes.
 */
function assertPlatformsAllowed(
  settings: TenantSettings,
  platform: string | null | undefined,
  patch: AgentConfigPatch | undefined,
): void {
  if (platform) assertPlatformAllowed(settings, platform);
  for (const account of patch?.accounts ?? []) assertPlatformAllowed(settings, account.platform);
}

/**
 * Writes the agent's bot accounts to `agent_accounts` in the caller's transaction; 409 when another
 * agent of the tenant already answers as one of them (a bot account belongs to one agent).
 */
async function syncAccounts(db: TenantDb, agentId: string, config: AgentConfig): Promise<void> {
  const claimed = await accountsClaimedByOthers(db, agentId, config.accounts);
  if (claimed.length > 0) {
    throw new ConflictError('a bot account is already used by another agent', {
      details: { reason: 'account_claimed', accounts: claimed },
    });
  }
  await replaceAgentAccounts(db, agentId, config.accounts);
}

/** The seven agent endpoints of API.md § Agents, inside the caller's tenant. */
export function agentsRoutes({ router, registry, deps }: RouteContext): void {
  /**
   * Tenant and agent of a request naming an agent; an agent-bound credential naming another agent
   * gets 403 ISOLATION_VIOLATION. Reads run narrowed to the agent (`agentOnly`), so RLS agrees;
   * writes run tenant-wide (`tenantWide`), because limits and bot-account claims are checked
   * against the tenant's other agents.
   */
  async function agentRequest(p: Principal, req: Request, agentId: string) {
    const tenant = await resolveTenant(deps, p, req);
    const scoped = agentScope(p, req, agentId);
    return {
      ...tenant,
      agentId: scoped,
      tenantWide: createIsolationContext({ tenantId: tenant.tenantId }),
      agentOnly: createIsolationContext({ tenantId: tenant.tenantId, agentId: scoped }),
    };
  }

  route(router, registry, {
    method: 'post',
    path: '/agents',
    operationId: 'createAgent',
    headers: ['X-Tenant-ID'],
    errors: [409],
    summary: 'Create an agent (within the tenant’s max_agents)',
    tag: TAG,
    auth: TENANT_WRITERS,
    status: 201,
    body: CreateBody,
    response: AgentResponse,
    handler: async ({ body, principal, req }) => {
      const { settings, tenantWide } = await agentRequest(principal, req, body.agent_id);
      const config = applyAgentConfigPatch(storedAgentConfig({}), body.config ?? {}, deps.secrets);
      assertPlatformsAllowed(settings, body.platform, body.config);
      const row = await deps.db.withTenant(tenantWide, async (db) => {
        // Serialises concurrent creates of this tenant, so the count below cannot be outrun.
        await lockTenantResource(db, 'agents');
        await lockConfigWrites(db);
        if (await getAgent(db, body.agent_id)) {
          throw new ConflictError(`agent ${body.agent_id} already exists`, {
            details: { agent_id: body.agent_id },
          });
        }
        if ((await countAgents(db)) >= settings.max_agents)
          throw limitReached('max_agents', settings.max_agents);
        const agent = await createAgent(db, {
          agentId: body.agent_id,
          name: body.name,
          description: body.description ?? null,
          defaultPlatform: body.platform ?? null,
          config,
        });
        await syncAccounts(db, body.agent_id, config);
        // Its llm/delivery/memory values are configuration: their first version in the history.
        await recordAgentConfigVersions(db, body.agent_id, {}, config, principal.subject);
        return agent;
      });
      return { status: 201, data: agentBody(row) };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/agents',
    operationId: 'listAgents',
    headers: ['X-Tenant-ID'],
    summary: 'List the tenant’s agents (an agent credential sees its own agent only)',
    tag: TAG,
    auth: TENANT_MEMBERS,
    query: ListQuery,
    response: z.object({ agents: z.array(ListedAgent), pagination: PaginationSchema }),
    handler: async ({ query, principal, req }) => {
      const p = principal;
      const { tenantId } = await resolveTenant(deps, p, req);
      const isolation = createIsolationContext({ tenantId, agentId: p.agentId });
      const { rows, total } = await deps.db.withTenant(isolation, (db) =>
        listAgentPage(db, { status: query.status, agentId: p.agentId, ...pageWindow(query) }),
      );
      return {
        data: {
          agents: rows.map((r) => ({
            ...agentFields(r),
            last_active: r.last_active?.toISOString() ?? null,
            message_count: r.message_count,
            memory_count: r.memory_count,
          })),
          pagination: pagination(query, total),
        },
      };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/agents/:agent_id',
    operationId: 'getAgent',
    headers: ['X-Tenant-ID', 'X-Agent-ID'],
    summary: 'An agent (secrets masked)',
    tag: TAG,
    auth: TENANT_MEMBERS,
    params: AgentParams,
    response: AgentResponse,
    handler: async ({ params, principal, req }) => {
      const { agentOnly, agentId } = await agentRequest(principal, req, params.agent_id);
      const row = await deps.db.withTenant(agentOnly, (db) => requireAgent(db, agentId));
      return { data: agentBody(row) };
    },
  });

  route(router, registry, {
    method: 'put',
    path: '/agents/:agent_id',
    operationId: 'updateAgent',
    headers: ['X-Tenant-ID', 'X-Agent-ID'],
    errors: [409],
    summary: 'Update an agent: name, description, platform, status, config (merged)',
    tag: TAG,
    auth: TENANT_WRITERS,
    params: AgentParams,
    body: UpdateBody,
    response: AgentResponse,
    handler: async ({ params, body, principal, req }) => {
      const { tenantWide, agentId, settings, tenantId } = await agentRequest(principal, req, params.agent_id);
      assertPlatformsAllowed(settings, body.platform, body.config);
      const row = await deps.db.withTenant(tenantWide, async (db) => {
        if (body.config) await lockConfigWrites(db);
        const current = await getAgentForUpdate(db, agentId);
        if (!current) throw new NotFoundError('AGENT_NOT_FOUND', `agent ${agentId} not found`);
        const config =
          body.config && applyAgentConfigPatch(storedAgentConfig(current.config), body.config, deps.secrets);
        if (config) {
          await syncAccounts(db, agentId, config);
          await recordAgentConfigVersions(db, agentId, current.config, config, principal.subject);
        }
        return updateAgent(db, agentId, {
          ...(body.name === undefined ? {} : { name: body.name }),
          ...(body.description === undefined ? {} : { description: body.description }),
          ...(body.status === undefined ? {} : { status: body.status }),
          ...(body.platform === undefined ? {} : { defaultPlatform: body.platform }),
          ...(config === undefined ? {} : { config }),
        });
      });
      // The send path caches agents per process: every process drops this one.
      await announceAgentChange(deps.db, deps.redis, deps.keys, tenantId, agentId);
      return { data: agentBody(row!) };
    },
  });

  route(router, registry, {
    method: 'delete',
    path: '/agents/:agent_id',
    operationId: 'deleteAgent',
    headers: ['X-Tenant-ID', 'X-Agent-ID'],
    summary: 'Delete an agent with its chat streams, messages and memories (not the default agent)',
    tag: TAG,
    auth: TENANT_WRITERS,
    params: AgentParams,
    response: z.object({ agent_id: z.string(), deleted: z.literal(true), chat_streams_removed: z.number() }),
    handler: async ({ params, principal, req }) => {
      const { tenantWide, agentId, tenantId } = await agentRequest(principal, req, params.agent_id);
      // Credentials without an agent fall back to `default`; it must always be there. A bad
      // target, hence 400 (as for the default tenant).
      if (agentId === DEFAULT_AGENT) {
        throw new ValidationError('the default agent cannot be deleted', [
          { path: 'agent_id', issue: 'the default agent cannot be deleted' },
        ]);
      }
      const streams = await deps.db.withTenant(tenantWide, async (db) => {
        const ids = await chatStreamIdsOfAgent(db, agentId);
        if (!(await deleteAgent(db, agentId))) {
          throw new NotFoundError('AGENT_NOT_FOUND', `agent ${agentId} not found`);
        }
        return ids;
      });
      await announceAgentChange(deps.db, deps.redis, deps.keys, tenantId, agentId);
      // The send path's stream set must not keep counting streams that are gone.
      const key = deps.keys.knownStreams(tenantId);
      for (let i = 0; i < streams.length; i += 1000) {
        await deps.redis.srem(key, ...streams.slice(i, i + 1000));
      }
      return { data: { agent_id: agentId, deleted: true as const, chat_streams_removed: streams.length } };
    },
  });

  route(router, registry, {
    method: 'get',
    path: '/agents/:agent_id/config',
    operationId: 'getAgentConfig',
    headers: ['X-Tenant-ID', 'X-Agent-ID'],
    summary: 'An agent’s config: bot accounts, persona, reply style, LLM and delivery (secrets masked)',
    tag: TAG,
    auth: TENANT_MEMBERS,
    params: AgentParams,
    response: ConfigResponse,
    handler: async ({ params, principal, req }) => {
      const { agentOnly, agentId } = await agentRequest(principal, req, params.agent_id);
      const row = await deps.db.withTenant(agentOnly, (db) => requireAgent(db, agentId));
      return { data: { agent_id: agentId, config: maskAgentConfig(storedAgentConfig(row.config)) } };
    },
  });

  route(router, registry, {
    method: 'put',
    path: '/agents/:agent_id/config',
    operationId: 'updateAgentConfig',
    headers: ['X-Tenant-ID', 'X-Agent-ID'],
    errors: [409],
    summary: 'Change an agent’s config (keys given replace, null removes; "***" keeps a secret)',
    tag: TAG,
    auth: TENANT_WRITERS,
    params: AgentParams,
    body: AgentConfigPatch,
    response: ConfigResponse,
    handler: async ({ params, body, principal, req }) => {
      const { tenantWide, agentId, settings, tenantId } = await agentRequest(principal, req, params.agent_id);
      assertPlatformsAllowed(settings, undefined, body);
      const config = await deps.db.withTenant(tenantWide, async (db) => {
        await lockConfigWrites(db);
        const current = await getAgentForUpdate(db, agentId);
        if (!current) throw new NotFoundError('AGENT_NOT_FOUND', `agent ${agentId} not found`);
        const next = applyAgentConfigPatch(storedAgentConfig(current.config), body, deps.secrets);
        await syncAccounts(db, agentId, next);
        await updateAgent(db, agentId, { config: next });
        // The same history as `PUT /config` at agent scope: one version per category changed.
        await recordAgentConfigVersions(db, agentId, current.config, next, principal.subject);
        return next;
      });
      // Its bot accounts may have changed: the adapters' cached lookups go in every process.
      await announceAgentChange(deps.db, deps.redis, deps.keys, tenantId, agentId);
      return { data: { agent_id: agentId, config: maskAgentConfig(config) } };
    },
  });
}
