import type { Database } from '../db/database';
import { enabledTenantPlugins, type TenantPluginRow } from '../db/repositories/plugins';
import { createIsolationContext } from '../domain/isolationContext';
import { TenantSnapshots } from '../domain/tenantSnapshots';
import type { Logger } from '../logger';
import type { CatalogEntry, PluginCatalog } from './catalog';
import type { ComponentKind, ComponentResult, EventType, PluginContext, PluginMessage } from './manifest';
import { answerApiCall, type BoundCall, type PluginHostDeps } from './pluginApiHost';
import { PluginCallError, PluginSandbox } from './sandbox';

/** A component's call as it ended: what it answers (only with `message_send`), or why it did not. */
export interface PluginOutcome {
  pluginId: string;
  component: string;
  kind: ComponentKind;
  /** The text to answer with: the result's `reply` and what it sent, when it may send. */
  reply: string | null;
  data: unknown;
  error: { reason: 'timeout' | 'crash' | 'error' | 'permission'; message: string } | null;
  durationMs: number;
}

/** Longest a process uses a tenant's enabled plugins without re-reading them, ms (as configuration). */
export const ENABLED_TTL_MS = 5000;

/** A tenant's enabled plugin, with its catalog entry. */
export interface EnabledPlugin {
  entry: CatalogEntry;
  row: TenantPluginRow;
}

/**
 * The plugin system of one process: the catalog, the sandbox and the host side of the PluginAPI.
 * The heartflow asks it for commands (before the planner), `on_message` / `post_llm` / `after_send`
 * handlers and actions; `POST /plugins/{id}/execute` runs a component directly.
 */
export class PluginRuntime {
  readonly sandbox: PluginSandbox;
  /**
   * Each tenant's enabled plugin rows, read once per `ENABLED_TTL_MS` instead of in a transaction
   * of their own for every heartflow pass. The plugin routes announce every change on the
   * configuration channel, whose notices `forgetTenant` (wired by `EffectiveConfigReader.watch`)
   * turn into a re-read; the TTL bounds staleness only when a notice is lost.
   */
  private readonly enabledRows: TenantSnapshots<TenantPluginRow[]>;

  constructor(
    readonly catalog: PluginCatalog,
    private readonly host: PluginHostDeps & { logger?: Logger },
    sandbox?: PluginSandbox,
  ) {
    this.sandbox =
      sandbox ??
      new PluginSandbox({
        preload: catalog.all().map((e) => e.modulePath),
        ...(host.logger ? { logger: host.logger } : {}),
      });
    this.sandbox.start();
    this.enabledRows = new TenantSnapshots(
      (tenantId) =>
        host.db.withTenant(createIsolationContext({ tenantId }), (db) => enabledTenantPlugins(db)),
      { clock: host.clock, ttlMs: ENABLED_TTL_MS },
    );
  }

  /** Drops the tenant's enabled plugins read so far (a plugin was installed, switched or changed). */
  readonly forgetTenant = (tenantId: string): void => this.enabledRows.forget(tenantId);

  get db(): Database {
    return this.host.db;
  }

  /** The tenant's enabled plugins that the catalog still has (an uninstalled module is skipped). */
  async enabled(tenantId: string): Promise<EnabledPlugin[]> {
    const rows = await this.enabledRows.get(tenantId);
    return rows.flatMap((row) => {
      const entry = this.catalog.get(row.plugin_id);
      return entry ? [{ entry, row }] : [];
    });
  }

  /** Runs one component of an enabled plugin; never throws (the outcome says what went wrong). */
  async invoke(
    tenantId: string,
    plugin: EnabledPlugin,
    kind: ComponentKind,
    name: string,
    input: unknown,
    context: PluginContext,
  ): Promise<PluginOutcome> {
    const started = Date.now();
    const call: BoundCall = {
      tenantId,
      pluginId: plugin.entry.manifest.id,
      granted: new Set(plugin.row.permissions),
      context,
      sent: [],
    };
    const outcome = (o: Partial<PluginOutcome>): PluginOutcome => ({
      pluginId: call.pluginId,
      component: name,
      kind,
      reply: null,
      data: null,
      error: null,
      durationMs: Date.now() - started,
      ...o,
    });
    try {
      const result = (await this.sandbox.run({
        modulePath: plugin.entry.modulePath,
        kind,
        name,
        input,
        context,
        config: plugin.row.config,
        budgetMs: plugin.entry.manifest.time_budget_ms,
        api: (method, args) => answerApiCall(this.host, call, method, args),
      })) as ComponentResult | null;
      const texts = [
        ...call.sent,
        ...(typeof result?.reply === 'string' && result.reply !== '' ? [result.reply] : []),
      ];
      if (texts.length > 0 && !call.granted.has('message_send')) {
        return outcome({
          data: result?.data ?? null,
          error: {
            reason: 'permission',
            message: `plugin ${call.pluginId} was not granted the message_send permission`,
          },
        });
      }
      return outcome({ reply: texts.length > 0 ? texts.join('\n') : null, data: result?.data ?? null });
    } catch (err) {
      const reason = err instanceof PluginCallError ? err.reason : 'error';
      this.host.logger?.warn(
        { plugin_id: call.pluginId, component: name, reason, err },
        'plugin call failed',
      );
      return outcome({ error: { reason, message: (err as Error).message } });
    }
  }

  /**
   * The first command of the tenant's enabled plugins whose pattern matches the whole (trimmed)
   * message, run: commands intercept a message before the planner sees it.
   */
  async runCommand(
    tenantId: string,
    plugins: readonly EnabledPlugin[],
    message: PluginMessage,
    context: PluginContext,
  ): Promise<PluginOutcome | undefined> {
    const text = message.content.trim();
    for (const plugin of plugins) {
      for (const command of plugin.entry.commands) {
        const match = command.pattern.exec(text);
        if (!match || match[0].length !== text.length) continue;
        const args = Object.fromEntries(
          Object.entries(match.groups ?? {}).filter(([, v]) => v !== undefined),
        );
        return this.invoke(tenantId, plugin, 'command', command.name, { message, args }, context);
      }
    }
    return undefined;
  }

  /**
   * Runs the tenant's handlers of an event, one after another, each within its plugin's budget.
   * For `on_message` and `post_llm` the first handler that answers (a `reply`) decides: the message
   * is answered with it (`on_message` intercepts it before the planner; `post_llm` replaces the
   * generated reply). `after_send` answers are ignored.
   */
  async emit(
    tenantId: string,
    plugins: readonly EnabledPlugin[],
    type: EventType,
    event: { message: PluginMessage; reply: string | null },
    context: PluginContext,
  ): Promise<PluginOutcome[]> {
    const outcomes: PluginOutcome[] = [];
    for (const plugin of plugins) {
      for (const handler of plugin.entry.events.filter((h) => h.type === type)) {
        const o = await this.invoke(tenantId, plugin, 'event', handler.name, { type, ...event }, context);
        outcomes.push(o);
        if (o.reply !== null && type !== 'after_send') return outcomes;
      }
    }
    return outcomes;
  }

  close(): Promise<void> {
    return this.sandbox.close();
  }
}
