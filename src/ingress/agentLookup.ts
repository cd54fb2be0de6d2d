import type { Redis } from 'ioredis';

import type { Database } from '../db/database';
import { getAgent } from '../db/repositories/agents';
import { createIsolationContext } from '../domain/isolationContext';
import type { Keyspace } from '../queues/names';
import type { ChannelHub } from './channelHub';

/** What a send needs to know about its agent. */
export interface AgentFacts {
  status: 'active' | 'inactive';
  defaultPlatform: string | null;
}

/** How long a found agent is trusted without asking PostgreSQL again, ms. */
export const AGENT_CACHE_TTL_MS = 30_000;
const MAX_ENTRIES = 10_000;

interface Entry extends AgentFacts {
  tenantId: string;
  agentId: string;
  expiresAt: number;
}

// One cache per Database (per process in production; per test app in tests). Only agents that
// exist are cached, so a new agent is usable at once. A change or deletion is announced to every
// process (`announceAgentChange` → `watchAgentChanges`), so the TTL only bounds staleness when
// that notice is lost (Redis down at the time); then the worker, which re-reads the agent, still
// refuses a deleted or deactivated agent's jobs.
const caches = new WeakMap<Database, Map<string, Entry>>();
// Reads in flight, per Database and key: when a busy agent's entry expires, the sends arriving
// meanwhile share one PostgreSQL read instead of each taking a pooled connection for it.
const loading = new WeakMap<Database, Map<string, Promise<Entry | undefined>>>();

/**
 * The agent of a send, from a short-lived in-process cache keyed by tenant and agent, else from
 * PostgreSQL: the hot path of a busy agent does not touch the database.
 */
export async function lookupAgent(
  db: Database,
  tenantId: string,
  agentId: string,
  nowMs: number,
): Promise<AgentFacts | undefined> {
  let cache = caches.get(db);
  if (!cache) {
    cache = new Map();
    caches.set(db, cache);
  }
  const key = `${tenantId}/${agentId}`;
  const hit = cache.get(key);
  // Caches verify the tenant of what they return.
  if (hit && hit.expiresAt > nowMs && hit.tenantId === tenantId && hit.agentId === agentId) return hit;
  if (hit) cache.delete(key);

  let inFlight = loading.get(db);
  if (!inFlight) {
    inFlight = new Map();
    loading.set(db, inFlight);
  }
  let load = inFlight.get(key);
  if (!load) {
    const pending = inFlight;
    const started = readAgent(db, cache, key, tenantId, agentId, nowMs);
    const settled = () => {
      if (pending.get(key) === started) pending.delete(key);
    };
    void started.then(settled, settled);
    inFlight.set(key, started);
    load = started;
  }
  return load;
}

async function readAgent(
  db: Database,
  cache: Map<string, Entry>,
  key: string,
  tenantId: string,
  agentId: string,
  nowMs: number,
): Promise<Entry | undefined> {
  const row = await db.withTenant(createIsolationContext({ tenantId, agentId }), (t) => getAgent(t, agentId));
  if (!row) return undefined;
  const entry: Entry = {
    tenantId,
    agentId,
    status: row.status,
    defaultPlatform: row.default_platform,
    expiresAt: nowMs + AGENT_CACHE_TTL_MS,
  };
  if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value!);
  cache.set(key, entry);
  return entry;
}

/** Drops cached agents of a tenant (or one agent) in this process, e.g. after an update. */
export function forgetAgent(db: Database, tenantId: string, agentId?: string): void {
  // A read in flight may predate the change: later sends start their own.
  loading.get(db)?.clear();
  const cache = caches.get(db);
  if (!cache) return;
  for (const [key, entry] of cache) {
    if (entry.tenantId === tenantId && (agentId === undefined || entry.agentId === agentId))
      cache.delete(key);
  }
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
