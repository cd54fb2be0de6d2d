import type { Redis } from 'ioredis';

import type { Database } from '../db/database';
import {
  type ConfigEntryRow,
  type TenantConfigRows,
  tenantConfigRows,
} from '../db/repositories/configEntries';
import type { Clock } from '../domain/clock';
import { AGENT_CONFIG_CATEGORIES, type ConfigCategory } from '../domain/configuration/categories';
import { type ConfigLayer, type EffectiveConfig, resolveConfig } from '../domain/configuration/precedence';
import { createIsolationContext } from '../domain/isolationContext';
import { TenantSnapshots } from '../domain/tenantSnapshots';
import type { Logger } from '../logger';
import type { ChannelHub } from '../redis/channelHub';
import type { Keyspace } from '../redis/keys';

/**
 * THE way to read configuration: `reader.effectiveConfig({tenantId, agentId, platform,
 * chatStreamId})` gives every category's effective values for that chat (tenant < agent <
 * platform < chat, most specific wins) and the scope each key came from. The heartflow worker,
 * memory, emoji, delivery and the content policy read through it; a new feature adds its keys to
 * a category in `src/domain/configuration/categories.ts` and reads them here.
 *
 * Each process keeps a tenant's whole configuration (its `config_entries` rows and its agents'
 * config sections: one statement) for at most `ttlMs`. A change made through any process is
 * published on `keys.configChanged()` (agent changes on `keys.agentChanged()`), and every process
 * that `watch`es drops that tenant's copy at once: a change reaches every API and worker process
 * in about a Redis round trip; the TTL only bounds staleness when a notice is lost (Redis down).
 * The tenant's own content policy switch is read from the tenant settings on every call (the
 * tenant directory's cache, invalidated by `PUT /tenants`).
 */

/** Whose configuration: a tenant, and optionally an agent, a platform and a chat stream of it. */
export interface ConfigContext {
  tenantId: string;
  agentId?: string | undefined;
  platform?: string | undefined;
  chatStreamId?: string | undefined;
}

/** Where the tenant settings come from (the tenant directory). */
export interface TenantSettingsSource {
  get(tenantId: string): Promise<{ settings: Record<string, unknown> } | undefined>;
}

/** Backstop TTL of a cached tenant configuration, ms (changes normally arrive by pub/sub). */
export const CONFIG_CACHE_TTL_MS = 5000;
export interface EffectiveConfigReaderOptions {
  db: Database;
  redis: Redis;
  keys: Keyspace;
  tenants: TenantSettingsSource;
  clock: Clock;
  logger: Logger;
  ttlMs?: number;
}

export class EffectiveConfigReader {
  private readonly snapshots: TenantSnapshots<TenantConfigRows>;

  constructor(private readonly o: EffectiveConfigReaderOptions) {
    this.snapshots = new TenantSnapshots(
      (tenantId) => o.db.withTenant(createIsolationContext({ tenantId }), (db) => tenantConfigRows(db)),
      { clock: o.clock, ttlMs: o.ttlMs ?? CONFIG_CACHE_TTL_MS },
    );
  }

  /** Every category's effective values and sources for `ctx`. */
  async effectiveConfig(ctx: ConfigContext): Promise<EffectiveConfig> {
    const [rows, tenant] = await Promise.all([
      this.snapshots.get(ctx.tenantId),
      this.o.tenants.get(ctx.tenantId),
    ]);
    return resolveConfig((category) => layersOf(category, rows, tenant?.settings, ctx));
  }

  /** Drops a tenant's cached configuration in this process. */
  forget(tenantId: string): void {
    this.snapshots.forget(tenantId);
  }

  /** Drops it here and tells every process (`watch`) to. */
  async announce(tenantId: string): Promise<void> {
    this.forget(tenantId);
    await this.o.redis.publish(this.o.keys.configChanged(), tenantId);
  }

  /**
   * Follows change notices of every process; resolves once subscribed. Returns the unsubscribe.
   * `alsoForget`: other per-tenant caches of this process that the same notices invalidate (the
   * plugin runtime's enabled plugins).
   */
  async watch(
    channels: ChannelHub,
    alsoForget: readonly ((tenantId: string) => void)[] = [],
  ): Promise<() => void> {
    const forget = (tenantId: string) => {
      this.forget(tenantId);
      for (const f of alsoForget) f(tenantId);
    };
    const offConfig = await channels.subscribe(this.o.keys.configChanged(), forget);
    const offAgents = await channels.subscribe(this.o.keys.agentChanged(), (message) => {
      const { tenant_id: tenantId } = JSON.parse(message) as { tenant_id?: unknown };
      if (typeof tenantId === 'string') forget(tenantId);
    });
    return () => {
      offConfig();
      offAgents();
    };
  }
}

function entryLayer(category: ConfigCategory, e: ConfigEntryRow): ConfigLayer {
  return { scope: e.scope, values: e.config };
}

/** The layers of one category that apply to `ctx`, each scope once. */
export function layersOf(
  category: ConfigCategory,
  rows: TenantConfigRows,
  tenantSettings: Record<string, unknown> | undefined,
  ctx: ConfigContext,
): ConfigLayer[] {
  const layers: ConfigLayer[] = [];
  for (const e of rows.entries) {
    if (e.category !== category) continue;
    const applies =
      e.scope === 'tenant' ||
      (e.scope === 'agent' && e.agent_id === ctx.agentId) ||
      (e.scope === 'platform' && e.platform === ctx.platform) ||
      (e.scope === 'chat' && e.chat_stream_id === ctx.chatStreamId);
    if (applies && !(e.scope === 'agent' && AGENT_CONFIG_CATEGORIES.has(category))) {
      layers.push(entryLayer(category, e));
    }
  }
  if (category === 'content_policy') {
    const policy = tenantSettings?.content_policy;
    if (typeof policy === 'object' && policy !== null) {
      layers.push({ scope: 'tenant', values: policy as Record<string, unknown> });
    }
  }
  if (AGENT_CONFIG_CATEGORIES.has(category) && ctx.agentId !== undefined) {
    const section = rows.agents.find((a) => a.agent_id === ctx.agentId)?.config[category];
    if (typeof section === 'object' && section !== null) {
      layers.push({ scope: 'agent', values: section as Record<string, unknown> });
    }
  }
  return layers;
}
