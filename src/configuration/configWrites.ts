import type { Database, TenantDb } from '../db/database';
import { getAgentForUpdate, updateAgent } from '../db/repositories/agents';
import { getChatStream } from '../db/repositories/chatStreams';
import {
  configEntryForUpdate,
  type ConfigTarget,
  latestConfigVersion,
  recordConfigChange,
  saveConfigEntry,
} from '../db/repositories/configEntries';
import { lockTenantResource } from '../db/repositories/tenantLocks';
import { getTenantForUpdate, updateTenant } from '../db/repositories/tenants';
import type { SecretSealer } from '../domain/agentConfig';
import {
  AGENT_CONFIG_CATEGORIES,
  applyConfigPatch,
  type ConfigCategory,
  type ConfigScope,
  maskConfigValues,
  publicKeyOf,
} from '../domain/configuration/categories';
import { createIsolationContext } from '../domain/isolationContext';
import { NotFoundError } from '../errors';
import type { EffectiveConfigReader } from './effectiveConfig';

/**
 * Writes of the configuration API: a scope's values changed (`PUT /config`) or removed (`POST
 * /config/reset`), each a new version in `config_history` (who, when, what changed), then
 * announced to every process. Each value is written where it lives (see migration 009): an
 * agent's llm/delivery/memory in its config, the tenant's content policy in its settings,
 * everything else in `config_entries`.
 */

export interface ConfigRef {
  tenantId: string;
  category: ConfigCategory;
  scope: ConfigScope;
  agentId?: string | undefined;
  platform?: string | undefined;
  chatStreamId?: string | undefined;
}

export interface ConfigWriteDeps {
  db: Database;
  sealer: SecretSealer;
  reader: EffectiveConfigReader;
  /** The tenant directory: its cached settings are dropped after a content-policy change. */
  tenants: { invalidate(tenantId: string): Promise<void> };
}

export interface ConfigWriteResult {
  version: number;
  /** The scope's values after the change, secrets masked. */
  config: Record<string, unknown>;
  changes: Record<string, { from: unknown; to: unknown }>;
  changed_at: string;
}

function targetOf(ref: ConfigRef): ConfigTarget {
  return {
    category: ref.category,
    scope: ref.scope,
    agentId: ref.scope === 'agent' ? (ref.agentId ?? null) : null,
    platform: ref.scope === 'platform' ? (ref.platform ?? null) : null,
    chatStreamId: ref.scope === 'chat' ? (ref.chatStreamId ?? null) : null,
  };
}

/** Per public key whose value differs: before and after, secrets masked. */
function diff(category: ConfigCategory, before: Record<string, unknown>, after: Record<string, unknown>) {
  const shown = (v: Record<string, unknown>) => maskConfigValues(category, v);
  const [b, a] = [shown(before), shown(after)];
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (JSON.stringify(before[key]) === JSON.stringify(after[key])) continue;
    const k = publicKeyOf(category, key);
    changes[k] = { from: b[k] ?? null, to: a[k] ?? null };
  }
  return changes;
}

/** Where the scope's values live: read (locked) and write them there. */
interface Storage {
  read(): Promise<Record<string, unknown>>;
  write(next: Record<string, unknown> | undefined, version: number): Promise<void>;
}

function entryStorage(db: TenantDb, ref: ConfigRef, by: string): Storage {
  const target = targetOf(ref);
  return {
    read: async () => (await configEntryForUpdate(db, target))?.config ?? {},
    write: (next, version) => saveConfigEntry(db, target, next, version, by),
  };
}

/** An agent's llm/delivery/memory: the section of its config (what `/agents/{id}/config` shows). */
function agentStorage(db: TenantDb, ref: ConfigRef, agentId: string): Storage {
  let config: Record<string, unknown> = {};
  return {
    read: async () => {
      const row = await getAgentForUpdate(db, agentId);
      if (!row) throw new NotFoundError('AGENT_NOT_FOUND', `agent ${agentId} not found`);
      config = row.config;
      return (config[ref.category] as Record<string, unknown> | undefined) ?? {};
    },
    write: async (next) => {
      const rest = Object.fromEntries(Object.entries(config).filter(([k]) => k !== ref.category));
      await updateAgent(db, agentId, {
        config: next === undefined ? rest : { ...rest, [ref.category]: next },
      });
    },
  };
}

async function assertTargetExists(db: TenantDb, ref: ConfigRef): Promise<void> {
  if (ref.scope === 'chat' && !(await getChatStream(db, ref.chatStreamId!))) {
    throw new NotFoundError('CHAT_STREAM_NOT_FOUND', `chat stream ${ref.chatStreamId} not found`);
  }
  if (ref.scope === 'agent' && !AGENT_CONFIG_CATEGORIES.has(ref.category)) {
    const { rows } = await db.query('SELECT 1 FROM agents WHERE tenant_id = $1 AND agent_id = $2', [
      db.ctx.tenantId,
      ref.agentId,
    ]);
    if (rows.length === 0) throw new NotFoundError('AGENT_NOT_FOUND', `agent ${ref.agentId} not found`);
  }
}

/**
 * Applies `change` (stored values → next values, undefined = none) to the scope, records the
 * version and announces it. The tenant's content policy lives in the tenant row (a platform unit
 * of work); its history row follows in a second transaction.
 */
async function changeScope(
  deps: ConfigWriteDeps,
  ref: ConfigRef,
  by: string,
  action: 'put' | 'reset',
  change: (stored: Record<string, unknown>) => Record<string, unknown> | undefined,
): Promise<ConfigWriteResult | undefined> {
  // A reset of a scope that sets nothing is no change: no version.
  const noop = (before: Record<string, unknown>) => action === 'reset' && Object.keys(before).length === 0;
  const tenantWide = createIsolationContext({ tenantId: ref.tenantId });
  const target = targetOf(ref);
  let before: Record<string, unknown> = {};
  let after: Record<string, unknown> = {};
  if (ref.scope === 'tenant' && ref.category === 'content_policy') {
    await deps.db.withPlatform(async (db) => {
      const row = await getTenantForUpdate(db, ref.tenantId);
      if (!row) throw new NotFoundError('TENANT_NOT_FOUND', 'no such tenant');
      before = (row.settings.content_policy as Record<string, unknown> | undefined) ?? {};
      if (noop(before)) return;
      const next = change(before);
      after = next ?? {};
      const rest = Object.fromEntries(Object.entries(row.settings).filter(([k]) => k !== 'content_policy'));
      await updateTenant(db, ref.tenantId, { settings: next ? { ...rest, content_policy: next } : rest });
    });
    if (noop(before)) return undefined;
    await deps.tenants.invalidate(ref.tenantId);
  }
  const result = await deps.db.withTenant(tenantWide, async (db) => {
    await lockTenantResource(db, 'config');
    const version = (await latestConfigVersion(db, target)) + 1;
    if (!(ref.scope === 'tenant' && ref.category === 'content_policy')) {
      await assertTargetExists(db, ref);
      const storage =
        ref.scope === 'agent' && AGENT_CONFIG_CATEGORIES.has(ref.category)
          ? agentStorage(db, ref, ref.agentId!)
          : entryStorage(db, ref, by);
      before = await storage.read();
      if (noop(before)) return undefined;
      const next = change(before);
      after = next ?? {};
      await storage.write(next && Object.keys(next).length > 0 ? next : undefined, version);
    }
    const changes = diff(ref.category, before, after);
    const config = maskConfigValues(ref.category, after);
    const at = await recordConfigChange(db, target, { version, action, config, changes, changedBy: by });
    return { version, config, changes, changed_at: at.toISOString() };
  });
  if (result) await deps.reader.announce(ref.tenantId);
  return result;
}

/**
 * Serialises configuration writes of the unit's tenant (version numbers). Take it before locking
 * an agent row, as `PUT /config` does, so that the two write paths cannot deadlock.
 */
export function lockConfigWrites(db: TenantDb): Promise<void> {
  return lockTenantResource(db, 'config');
}

/**
 * An agent's config written through `/agents` (`POST /agents`, `PUT /agents/{id}`, `PUT
 * /agents/{id}/config`): each of its config-category sections (`llm`, `delivery`, `memory`) that
 * changed becomes a new version at agent scope, exactly as `PUT /config` at agent scope records
 * it, so both APIs write one history. Runs in the write's unit of work, after `lockConfigWrites`.
 * Returns the versions recorded.
 */
export async function recordAgentConfigVersions(
  db: TenantDb,
  agentId: string,
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  by: string,
): Promise<ConfigWriteResult[]> {
  const recorded: ConfigWriteResult[] = [];
  for (const category of AGENT_CONFIG_CATEGORIES) {
    const was = (before[category] as Record<string, unknown> | undefined) ?? {};
    const now = (after[category] as Record<string, unknown> | undefined) ?? {};
    const changes = diff(category, was, now);
    if (Object.keys(changes).length === 0) continue;
    const target = targetOf({ tenantId: db.ctx.tenantId, category, scope: 'agent', agentId });
    const version = (await latestConfigVersion(db, target)) + 1;
    const config = maskConfigValues(category, now);
    const action = Object.keys(now).length === 0 ? 'reset' : 'put';
    const at = await recordConfigChange(db, target, { version, action, config, changes, changedBy: by });
    recorded.push({ version, config, changes, changed_at: at.toISOString() });
  }
  return recorded;
}

/** `PUT /config`: keys given replace the scope's, `null` removes one; a new version. */
export function putConfig(
  deps: ConfigWriteDeps,
  ref: ConfigRef,
  patch: Record<string, unknown>,
  by: string,
): Promise<ConfigWriteResult> {
  return changeScope(deps, ref, by, 'put', (stored) =>
    applyConfigPatch(ref.category, stored, patch, deps.sealer),
  ) as Promise<ConfigWriteResult>;
}

/**
 * `POST /config/reset`: the scope sets nothing of the category any more (it inherits); a new
 * version, or undefined when it set nothing.
 */
export function resetConfig(
  deps: ConfigWriteDeps,
  ref: ConfigRef,
  by: string,
): Promise<ConfigWriteResult | undefined> {
  return changeScope(deps, ref, by, 'reset', () => undefined);
}
