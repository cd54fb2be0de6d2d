import type { Redis } from 'ioredis';

import type { Database } from '../db/database';
import { allChatStreamIds } from '../db/repositories/chatStreams';
import { createIsolationContext } from '../domain/isolationContext';
import type { Keyspace } from '../redis/keys';

/**
 * The set `keys.knownStreams(tenant)` lets a send check `max_chat_streams` without PostgreSQL. It
 * holds the member `''` (never a valid chat stream id) once seeded from the table, so "seeded and
 * empty" differs from "never seeded" (even when `POST /chat/streams` added a member to a set not
 * seeded yet); the stream count is `SCARD - 1`. It has no TTL. Stream creation and deletion
 * elsewhere keep it current with plain SADD/SREM.
 */
export const SEEDED_MARKER = '';

const SEED_BATCH = 1000;

/** Loads the tenant's chat stream ids from PostgreSQL into the set (cold path: once per tenant). */
export async function seedKnownStreams(
  db: Database,
  redis: Redis,
  keys: Keyspace,
  tenantId: string,
): Promise<void> {
  const ids = await db.withTenant(createIsolationContext({ tenantId }), allChatStreamIds);
  const key = keys.knownStreams(tenantId);
  for (let i = 0; i < ids.length; i += SEED_BATCH) {
    await redis.sadd(key, ...ids.slice(i, i + SEED_BATCH));
  }
  // The marker last: a concurrent send sees the set as seeded only when it is complete.
  await redis.sadd(key, SEEDED_MARKER);
}

/** Whether a stream has had a message accepted (or was created) though it may not be stored yet. */
export async function isKnownStream(
  redis: Redis,
  keys: Keyspace,
  tenantId: string,
  chatStreamId: string,
): Promise<boolean> {
  return (await redis.sismember(keys.knownStreams(tenantId), chatStreamId)) === 1;
}
