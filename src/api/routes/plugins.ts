import { z } from 'zod';

import { TENANT_MEMBERS, TENANT_WRITERS } from '../../auth/principal';
import { getChatStream } from '../../db/repositories/chatStreams';
import {
  getTenantPlugin,
  installTenantPlugin,
  listTenantPlugins,
  type TenantPluginRow,
  updateTenantPlugin,
} from '../../db/repositories/plugins';
import { ACTIVATION_TYPES } from '../../domain/heartflow/actions';
import { createIsolationContext, IDENTIFIER_PATTERN } from '../../domain/isolationContext';
import { ConflictError, NotFoundError, ValidationError } from '../../errors';
import type { CatalogEntry } from '../../plugins/catalog';
import type { PluginContext } from '../../plugins/manifest';
import { route } from '../http/route';
import { resolveTenant } from '../http/tenantContext';
import type { RouteContext } from './context';

const TAG = 'Plugins';

const Identifier = z.string().regex(IDENTIFIER_PATTERN, `must match ${IDENTIFIER_PATTERN.source}`);
const Config = z.record(z.string(), z.unknown());
const PluginParams = z.object({ plugin_id: Identifier });
const Status = z.enum(['enabled', 'disabled', 'installed', 'not_installed']);
const ListQuery = z.strictObject({ status: Status.optional(), category: Identifier.optional() });
const InstallBody = z.strictObject({
  plugin_id: Identifier,
  config: Config.optional(),
  auto_enable: z.boolean().default(false),
  /** Granted permissions: a subset of those the plugin declares. */
  permissions: z.array(z.string().min(1).max(64)).max(20).default([]),
});
const ConfigBody = z.strictObject({ config: Config });
const ExecuteBody = z.strictObject({
  /** A command or action name of the plugin. */
  action: z.string().min(1).max(64),
  parameters: z
    .object({
      message: z.string().max(4000).optional(),
      chat_stream_id: Identifier.optional(),
      context: z.record(z.string(), z.unknown()).optional(),
    })
    .catchall(z.unknown())
    .default({}),
});

const PluginSchema = z.object({
  plugin_id: z.string(),
  name: z.string(),
  version: z.string(),
  description: z.string(),
  author: z.string().nullable(),
  categories: z.array(z.string()),
  source: z.enum(['builtin', 'operator']),
  declared_permissions: z.array(z.string()),
  time_budget_ms: z.number(),
  components: z.object({
    commands: z.array(z.object({ name: z.string(), description: z.string(), pattern: z.string() })),
    actions: z.array(
      z.object({
        name: z.string(),
        description: z.string(),
        activation_type: z.enum(ACTIVATION_TYPES),
        activation_keywords: z.array(z.string()),
        action_parameters: z.record(z.string(), z.string()),
        action_require: z.array(z.string()),
      }),
    ),
    event_handlers: z.array(z.object({ name: z.string(), event_type: z.string() })),
  }),
  status: Status.exclude(['installed']),
  granted_permissions: z.array(z.string()),
  installed_at: z.string().nullable(),
});

function pluginBody(e: CatalogEntry, row: TenantPluginRow | undefined) {
  const m = e.manifest;
  return {
    plugin_id: m.id,
    name: m.name,
    version: m.version,
    description: m.description,
    author: m.author ?? null,
    categories: m.categories,
    source: e.source,
    declared_permissions: m.permissions,
    time_budget_ms: m.time_budget_ms,
    components: {
      commands: e.commands.map((c) => ({
        name: c.name,
        description: c.description,
        pattern: c.pattern.source,
      })),
      actions: e.actions.map((a) => ({
        name: a.name,
        description: a.description,
        activation_type: a.activationType,
        activation_keywords: [...a.keywords],
        action_parameters: { ...a.parameters },
        action_require: [...a.require],
      })),
      event_handlers: e.events.map((h) => ({ name: h.name, event_type: h.type })),
    },
    status: row?.status ?? ('not_installed' as const),
    granted_permissions: row?.permissions ?? [],
    installed_at: row?.installed_at.toISOString() ?? null,
  };
}

/** The config checked against the plugin's schema; 400 listing the fields (`config.<path>`). */
function checkConfig(entry: CatalogEntry, config: unknown): Record<string, unknown> {
  const parsed = entry.configSchema.safeParse(config);
  if (parsed.success) return parsed.data;
  throw new ValidationError(
    `config does not match the schema of plugin ${entry.manifest.id}`,
    parsed.error.issues.map((i) => ({
      path: ['config', ...i.path.map(String)].join('.'),
      issue: i.code === 'unrecognized_keys' ? `unknown field(s): ${i.keys.join(', ')}` : i.message,
    })),
  );
}

/** API.md § Plugins: the catalog as the tenant sees it; install, enable, disable, configure, execute. */
export function pluginsRoutes({ router, registry, deps }: RouteContext): void {
  const catalogEntry = (pluginId: string): CatalogEntry => {
    const entry = deps.plugins.catalog.get(pluginId);
    if (!entry) throw new NotFoundError('NOT_FOUND', 'no such plugin', { plugin_id: pluginId });
    return entry;
  };
  /** The heartflow of every process reads a tenant's enabled plugins from a cache: renewed now. */
  const pluginsChanged = async (tenantId: string) => {
    deps.plugins.forgetTenant(tenantId);
    await deps.configReader.announce(tenantId);
  };
  const installed = async (tenantId: string, pluginId: string) => {
    const entry = catalogEntry(pluginId);
    const row = await deps.db.withTenant(createIsolationContext({ tenantId }), (db) =>
      getTenantPlugin(db, pluginId),
    );
    if (!row)
      throw new NotFoundError('NOT_FOUND', `plugin ${pluginId} is not installed`, { plugin_id: pluginId });
    return { entry, row };
  };

  route(router, registry, {
    method: 'get',
    path: '/plugins',
    operationId: 'listPlugins',
    headers: ['X-Tenant-ID'],
    summary: "The server's plugins with this tenant's status, grants and components",
    tag: TAG,
    auth: TENANT_MEMBERS,
    query: ListQuery,
    response: z.object({ plugins: z.array(PluginSchema), total: z.number() }),
    handler: async ({ query, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      const rows = await deps.db.withTenant(createIsolationContext({ tenantId }), (db) =>
        listTenantPlugins(db),
      );
      const byId = new Map(rows.map((r) => [r.plugin_id, r]));
      const plugins = deps.plugins.catalog
        .all()
        .map((e) => pluginBody(e, byId.get(e.manifest.id)))
        .filter((p) => query.category === undefined || p.categories.includes(query.category))
        .filter((p) =>
          query.status === undefined
            ? true
            : query.status === 'installed'
              ? p.status !== 'not_installed'
              : p.status === query.status,
        );
      return { data: { plugins, total: plugins.length } };
    },
  });

  route(router, registry, {
    method: 'post',
    path: '/plugins/install',
    operationId: 'installPlugin',
    headers: ['X-Tenant-ID'],
    errors: [409],
    summary: 'Install a plugin of the catalog for the tenant, granting some of its declared permissions',
    tag: TAG,
    auth: TENANT_WRITERS,
    status: 201,
    body: InstallBody,
    response: PluginSchema,
    handler: async ({ body, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      const entry = deps.plugins.catalog.get(body.plugin_id);
      if (!entry)
        throw new ValidationError('unknown plugin', [
          { path: 'plugin_id', issue: 'no such plugin in the catalog' },
        ]);
      const declared = new Set<string>(entry.manifest.permissions);
      const undeclared = body.permissions.flatMap((p, i) =>
        declared.has(p)
          ? []
          : [{ path: `permissions.${i}`, issue: `${p} is not declared by plugin ${entry.manifest.id}` }],
      );
      if (undeclared.length > 0)
        throw new ValidationError('permissions the plugin did not declare', undeclared);
      const config = checkConfig(entry, body.config ?? {});
      const row = await deps.db.withTenant(createIsolationContext({ tenantId }), (db) =>
        installTenantPlugin(db, {
          pluginId: entry.manifest.id,
          status: body.auto_enable ? 'enabled' : 'disabled',
          config,
          permissions: [...new Set(body.permissions)],
        }),
      );
      if (!row) {
        throw new ConflictError(`plugin ${entry.manifest.id} is installed already`, {
          details: { plugin_id: entry.manifest.id },
        });
      }
      await pluginsChanged(tenantId);
      return { status: 201, data: pluginBody(entry, row) };
    },
  });

  for (const status of ['enabled', 'disabled'] as const) {
    const verb = status === 'enabled' ? 'enable' : 'disable';
    route(router, registry, {
      method: 'post',
      path: `/plugins/:plugin_id/${verb}`,
      operationId: `${verb}Plugin`,
      headers: ['X-Tenant-ID'],
      summary: `${status === 'enabled' ? 'Enable' : 'Disable'} an installed plugin for the tenant`,
      tag: TAG,
      auth: TENANT_WRITERS,
      params: PluginParams,
      response: PluginSchema,
      handler: async ({ params, principal, req }) => {
        const { tenantId } = await resolveTenant(deps, principal, req);
        const { entry } = await installed(tenantId, params.plugin_id);
        const row = await deps.db.withTenant(createIsolationContext({ tenantId }), (db) =>
          updateTenantPlugin(db, params.plugin_id, { status }),
        );
        await pluginsChanged(tenantId);
        return { data: pluginBody(entry, row) };
      },
    });
  }

  route(router, registry, {
    method: 'get',
    path: '/plugins/:plugin_id/config',
    operationId: 'getPluginConfig',
    headers: ['X-Tenant-ID'],
    summary: "The tenant's configuration of an installed plugin",
    tag: TAG,
    auth: TENANT_MEMBERS,
    params: PluginParams,
    response: z.object({ plugin_id: z.string(), config: Config, schema: z.unknown() }),
    handler: async ({ params, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      const { entry, row } = await installed(tenantId, params.plugin_id);
      let schema: unknown = null;
      try {
        schema = z.toJSONSchema(entry.configSchema, { io: 'input', unrepresentable: 'any' });
      } catch {
        // a schema JSON Schema cannot express: the config is still validated by it
      }
      return { data: { plugin_id: params.plugin_id, config: row.config, schema } };
    },
  });

  route(router, registry, {
    method: 'put',
    path: '/plugins/:plugin_id/config',
    operationId: 'updatePluginConfig',
    headers: ['X-Tenant-ID'],
    summary: "Replace the tenant's configuration of a plugin (validated against the plugin's schema)",
    tag: TAG,
    auth: TENANT_WRITERS,
    params: PluginParams,
    body: ConfigBody,
    response: z.object({ plugin_id: z.string(), config: Config }),
    handler: async ({ params, body, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      const { entry } = await installed(tenantId, params.plugin_id);
      const config = checkConfig(entry, body.config);
      await deps.db.withTenant(createIsolationContext({ tenantId }), (db) =>
        updateTenantPlugin(db, params.plugin_id, { config }),
      );
      await pluginsChanged(tenantId);
      return { data: { plugin_id: params.plugin_id, config } };
    },
  });

  route(router, registry, {
    method: 'post',
    path: '/plugins/:plugin_id/execute',
    operationId: 'executePlugin',
    headers: ['X-Tenant-ID', 'X-Agent-ID'],
    summary: 'Run a command or action of an enabled plugin in the sandbox, within its time budget',
    tag: TAG,
    auth: TENANT_WRITERS,
    params: PluginParams,
    body: ExecuteBody,
    response: z.object({
      plugin_id: z.string(),
      action: z.string(),
      success: z.boolean(),
      reply: z.string().nullable(),
      data: z.unknown(),
      error: z.object({ reason: z.string(), message: z.string() }).nullable(),
      duration_ms: z.number(),
    }),
    handler: async ({ params, body, principal, req }) => {
      const { tenantId } = await resolveTenant(deps, principal, req);
      const { entry, row } = await installed(tenantId, params.plugin_id);
      if (row.status !== 'enabled') {
        throw new ValidationError('plugin is disabled', [
          { path: 'plugin_id', issue: `plugin ${params.plugin_id} is disabled for this tenant` },
        ]);
      }
      const kind = entry.commands.some((c) => c.name === body.action)
        ? ('command' as const)
        : entry.actions.some((a) => a.name === body.action)
          ? ('action' as const)
          : undefined;
      if (!kind) {
        throw new ValidationError('unknown action', [
          { path: 'action', issue: `plugin ${params.plugin_id} has no command or action ${body.action}` },
        ]);
      }
      const context = await executionContext(tenantId, principal.agentId, body.parameters.chat_stream_id);
      const message = {
        message_id: null,
        content: body.parameters.message ?? '',
        sender: { user_id: null, nickname: null },
      };
      const { message: _m, chat_stream_id: _c, ...parameters } = body.parameters;
      const input =
        kind === 'command'
          ? {
              message,
              args: Object.fromEntries(Object.entries(parameters).filter(([, v]) => typeof v === 'string')),
            }
          : { message, parameters };
      const o = await deps.plugins.invoke(tenantId, { entry, row }, kind, body.action, input, context);
      return {
        data: {
          plugin_id: params.plugin_id,
          action: body.action,
          success: o.error === null,
          reply: o.reply,
          data: o.data,
          error: o.error,
          duration_ms: o.durationMs,
        },
      };
    },
  });

  /** The context an execution runs in: the named chat stream's (404 when it is not the tenant's), or the agent's. */
  async function executionContext(
    tenantId: string,
    agentId: string | undefined,
    chatStreamId: string | undefined,
  ): Promise<PluginContext> {
    if (chatStreamId === undefined)
      return { agent_id: agentId ?? 'default', platform: null, chat_stream_id: null };
    const ctx = createIsolationContext({ tenantId, agentId });
    const stream = await deps.db.withTenant(ctx, (db) => getChatStream(db, chatStreamId));
    if (!stream)
      throw new NotFoundError('CHAT_STREAM_NOT_FOUND', 'no such chat stream', {
        chat_stream_id: chatStreamId,
      });
    return { agent_id: stream.agent_id, platform: stream.platform, chat_stream_id: stream.chat_stream_id };
  }
}
