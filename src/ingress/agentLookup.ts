import type { Redis } from 'ioredis';

import type { Database } from '../db/database';
import {
  type AgentAccountRow,
  findAgentByAccount,
  listAgentAccounts,
} from '../db/repositories/agentAccounts';
import { getAgent } from '../db/repositories/agents';
import { storedAgentConfig } from '../domain/agentConfig';
import { createIsolationContext } from '../domain/isolationContext';
import type { ChannelHub } from '../redis/channelHub';
import type { Keyspace } from '../redis/keys';

/** What a send needs to know about its agent. */
export interface AgentFacts {
  status: 'active' | 'inactive';
  defaultPlatform: string | null;
  /**
   * The agent's OneBot HTTP POST secret as stored, when it has one: sealed, or in plaintext in a
   * row the start-up pass has not sealed yet.
   */
  oneBotSecret?: { sealed: string } | { plain: string } | undefined;
}

/** A bot account as the adapters need it: which agent answers as it, and how it is called. */
export type AccountFacts = Pick<AgentAccountRow, 'platform' | 'account_id' | 'agent_id' | 'nickname'>;

/** How long a found agent (or bot account) is trusted without asking PostgreSQL again, ms. */
export const AGENT_CACHE_TTL_MS = 30_000;
const MAX_ENTRIES = 10_000;

interface Entry {
  tenantId: string;
  /** The agent the entry is about; undefined for an account lookup (any agent may claim it). */
  agentId: string | undefined;
  value: unknown;
  expiresAt: number;
}

/**
 * The send path's per-process cache of agents and bot accounts, so that a busy agent's sends (and
 * the adapters' account lookups) do not touch the database. One per Database (per process in
 * production; per test app in tests). Only what exists is cached, so a new agent or account is
 * usable at once. A change or deletion is announced to every process (`announceAgentChange` →
 * `watchAgentChanges`), so the TTL only bounds staleness when that notice is lost (Redis down at
 * the time); then the worker, which re-reads the agent, still refuses a deleted or deactivated
 * agent's jobs. Reads in flight are shared: when a busy entry expires, the sends arriving
 * meanwhile share one PostgreSQL read instead of each taking a pooled connection for it.
 */
class SendPathCache {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<unknown>>();

  async get<T>(
    key: string,
    scope: { tenantId: string; agentId: string | undefined },
    nowMs: number,
    load: () => Promise<T | undefined>,
  ): Promise<T | undefined> {
    const hit = this.entries.get(key);
    // Caches verify the tenant (and agent) of what they return.
    if (hit && hit.expiresAt > nowMs && hit.tenantId === scope.tenantId && hit.agentId === scope.agentId) {
      return hit.value as T;
    }
    if (hit) this.entries.delete(key);
    let pending = this.loading.get(key) as Promise<T | undefined> | undefined;
    if (!pending) {
      const started = load().then((value) => {
        // A change announced while the read was out drops it from `loading`: its result is stale.
        if (value !== undefined && this.loading.get(key) === started) {
          if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
          this.entries.set(key, { ...scope, value, expiresAt: nowMs + AGENT_CACHE_TTL_MS });
        }
        return value;
      });
      const settled = () => {
        if (this.loading.get(key) === started) this.loading.delete(key);
      };
      void started.then(settled, settled);
      this.loading.set(key, started);
      pending = started;
    }
    return pending;
  }

  /** Drops a tenant's entries about `agentId` (all agents when undefined) and all its account entries. */
  forget(tenantId: string, agentId?: string): void {
    // A read in flight may predate the change: later lookups start their own.
    this.loading.clear();
    for (const [key, entry] of this.entries) {
      if (entry.tenantId !== tenantId) continue;
      if (agentId === undefined || entry.agentId === undefined || entry.agentId === agentId) {
        this.entries.delete(key);
      }
    }
  }
}

const caches = new WeakMap<Database, SendPathCache>();

function cacheOf(db: Database): SendPathCache {
  let cache = caches.get(db);
  if (!cache) caches.set(db, (cache = new SendPathCache()));
  return cache;
}

/** The agent of a send, from the process's cache, else from PostgreSQL. */
export function lookupAgent(
  db: Database,
  tenantId: string,
  agentId: string,
  nowMs: number,
): Promise<AgentFacts | undefined> {
  return cacheOf(db).get(`agent/${tenantId}/${agentId}`, { tenantId, agentId }, nowMs, async () => {
    const ctx = createIsolationContext({ tenantId, agentId });
    const row = await db.withTenantAtOnce(ctx, (t) => getAgent(t, agentId));
    if (!row) return undefined;
    const onebot = storedAgentConfig(row.config).onebot;
    return {
      status: row.status,
      defaultPlatform: row.default_platform,
      oneBotSecret:
        onebot?.secret_encrypted !== undefined
          ? { sealed: onebot.secret_encrypted }
          : onebot?.secret !== undefined
            ? { plain: onebot.secret }
            : undefined,
    };
  });
}

/** The agent that answers as bot account `accountId` on `platform` (OneBot's `self_id`), cached. */
export function lookupAccount(
  db: Database,
  tenantId: string,
  platform: string,
  accountId: string,
  nowMs: number,
): Promise<AccountFacts | undefined> {
  const key = `account/${tenantId}/${platform}/${accountId}`;
  return cacheOf(db).get(key, { tenantId, agentId: undefined }, nowMs, async () => {
    const row = await db.withTenant(createIsolationContext({ tenantId }), (t) =>
      findAgentByAccount(t, platform, accountId),
    );
    return row && accountFacts(row);
  });
}

/** An agent's bot accounts (maim messages name the bot by nickname or account), cached. */
export function lookupAgentAccounts(
  db: Database,
  tenantId: string,
  agentId: string,
  nowMs: number,
): Promise<AccountFacts[]> {
  const key = `accounts/${tenantId}/${agentId}`;
  return cacheOf(db)
    .get(key, { tenantId, agentId }, nowMs, async () => {
      const rows = await db.withTenant(createIsolationContext({ tenantId, agentId }), (t) =>
        listAgentAccounts(t, agentId),
      );
      return rows.map(accountFacts);
    })
    .then((accounts) => accounts ?? []);
}

function accountFacts(row: AgentAccountRow): AccountFacts {
  return {
    platform: row.platform,
    account_id: row.account_id,
    agent_id: row.agent_id,
    nickname: row.nickname,
  };
}

/** Drops cached agents of a tenant (or one agent), and the tenant's bot accounts, in this process. */
export function forgetAgent(db: Database, tenantId: string, agentId?: string): void {
  caches.get(db)?.forget(tenantId, agentId);
}

/** Drops the agent here and tells every other process to (see `watchAgentChanges`). */
export async function announceAgentChange(
  db: Database,
  redis: Redis,
  keys: Keyspace,
  tenantId: string,
  agentId: string,
): Promise<void> {
  forgetAgent(db, tenantId, agentId);
  await redis.publish(keys.agentChanged(), JSON.stringify({ tenant_id: tenantId, agent_id: agentId }));
}

/** Forgets cached agents when any process announces a change; resolves once subscribed. */
export function watchAgentChanges(channels: ChannelHub, keys: Keyspace, db: Database): Promise<() => void> {
  return channels.subscribe(keys.agentChanged(), (message) => {
    const { tenant_id: tenantId, agent_id: agentId } = JSON.parse(message) as {
      tenant_id?: unknown;
      agent_id?: unknown;
    };
    if (typeof tenantId === 'string' && typeof agentId === 'string') forgetAgent(db, tenantId, agentId);
  });
}
