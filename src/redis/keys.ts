/**
 * The one module that builds MaiHive's own Redis keys and channels (queue names are built in
 * `src/queues/names.ts`, on the same encoding). Every key of a tenant carries the tenant's Redis
 * Cluster hash tag, so a key can never be shared between tenants.
 *
 * Identifiers may contain `:`, which BullMQ forbids in queue names and which would make keys
 * ambiguous, so they are percent-encoded (`:` → `%3A`; the other identifier characters are safe).
 */

/** Prefix of every MaiHive key; BullMQ's `prefix` option uses it too. */
export const KEY_PREFIX = 'mh';

export function encodeId(id: string): string {
  return id.replace(/%/g, '%25').replace(/:/g, '%3A');
}

export function decodeId(encoded: string): string {
  return encoded.replace(/%3A/g, ':').replace(/%25/g, '%');
}

/** Escapes Redis glob metacharacters, so that a name is matched literally by SCAN MATCH. */
function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/**
 * Keys outside BullMQ, built for one key prefix (`REDIS_PREFIX`, default `mh`; tests use one per
 * file). Every key of a tenant carries the tenant's hash tag.
 */
export function keyspace(prefix: string = KEY_PREFIX) {
  const tenant = (tenantId: string) => `${prefix}:{${encodeId(tenantId)}}`;
  // `~` is in no tenant id (IDENTIFIER_PATTERN): the platform's tag cannot collide with a tenant's.
  const owner = (tenantId: string | undefined) =>
    tenantId === undefined ? `${prefix}:{~platform}` : tenant(tenantId);
  return Object.freeze({
    prefix,
    /** Cached status and settings of a tenant. */
    tenantMeta: (tenantId: string) => `${tenant(tenantId)}:meta`,
    /** Cached facts of an API key (hash, role, agent, expiry, revoked), see `ApiKeyDirectory`. */
    apiKey: (tenantId: string, keyId: string) => `${tenant(tenantId)}:apikey:${encodeId(keyId)}`,
    /**
     * A revoked access token id, kept until the token would have expired. Under the tenant's hash
     * tag (platform admins': one platform tag), so that one MGET reads it with the tenant's meta.
     */
    revokedToken: (tenantId: string | undefined, jti: string) => `${owner(tenantId)}:revoked:jti:${jti}`,
    /** A revoked refresh-token family: access tokens issued in it stop working too. */
    revokedFamily: (tenantId: string | undefined, familyId: string) =>
      `${owner(tenantId)}:revoked:fam:${familyId}`,
    /** Idempotency record of a send: client message id → message id, 24 h. */
    idempotency: (tenantId: string, agentId: string, clientMessageId: string) =>
      `${tenant(tenantId)}:idem:${encodeId(agentId)}:${clientMessageId}`,
    /** Token bucket of a tenant or of one credential. */
    rateBucket: (tenantId: string, subject: string) => `${tenant(tenantId)}:rate:${subject}`,
    /** Daily/monthly usage counters of a tenant. */
    quotaCounter: (tenantId: string, name: string, period: string) =>
      `${tenant(tenantId)}:quota:${name}:${period}`,
    /**
     * Holders of the tenant's LLM call slots across processes (sorted set: holder id → lease
     * expiry, ms of the Redis clock); see `RedisLlmConcurrency`.
     */
    llmSlots: (tenantId: string) => `${tenant(tenantId)}:llm:slots`,
    /** Chat streams known to exist for a tenant (set), for the `max_chat_streams` check at send time. */
    knownStreams: (tenantId: string) => `${tenant(tenantId)}:streams`,
    /** Pub/sub channel of a chat stream's events (SSE fan-out across API processes). */
    streamEvents: (tenantId: string, chatStreamId: string) =>
      `${tenant(tenantId)}:events:${encodeId(chatStreamId)}`,
    /** "Someone is answering this chat stream" lock of the heartflow worker. */
    streamLock: (tenantId: string, chatStreamId: string) =>
      `${tenant(tenantId)}:lock:${encodeId(chatStreamId)}`,
    /** Set while a chat stream's lock is held when a job stored a message the holder must still see. */
    streamDirty: (tenantId: string, chatStreamId: string) =>
      `${tenant(tenantId)}:dirty:${encodeId(chatStreamId)}`,
    /**
     * The last automatic emoji of a chat stream (`<ms>|<message id>`, expires after
     * `emoji.cooldown_seconds`) and its count in one clock hour (`hour` = ms / 3 600 000), see
     * `AutoEmojiLimiter`.
     */
    autoEmojiLast: (tenantId: string, chatStreamId: string) =>
      `${tenant(tenantId)}:emoji:last:${encodeId(chatStreamId)}`,
    autoEmojiHour: (tenantId: string, chatStreamId: string, hour: number) =>
      `${tenant(tenantId)}:emoji:hour:${encodeId(chatStreamId)}:${hour}`,
    /** When a chat stream's last heartflow pass ended (ms), to tell a busy stream from a quiet one. */
    streamLastPass: (tenantId: string, chatStreamId: string) =>
      `${tenant(tenantId)}:lastpass:${encodeId(chatStreamId)}`,
    /**
     * Set of tenants whose queue of a kind may have work; the dispatchers' discovery list. The sets
     * of all kinds share one hash tag, so that tenant deletion clears them in one pipeline on a
     * Redis Cluster too.
     */
    activeTenants: (kind: string) => `${prefix}:{~active}:${kind}`,
    /**
     * Set of tenants whose queue of a kind holds failed jobs (the dispatchers add a tenant when
     * a job fails for good and drop it when a settle finds none), so that queue depths cover
     * tenants that left the active set with failed jobs behind. Same hash tag as the active sets.
     */
    failedTenants: (kind: string) => `${prefix}:{~active}:failed:${kind}`,
    /** Pub/sub channel waking the dispatchers when a tenant's queue of a kind gets work. */
    workAvailable: (kind: string) => `${prefix}:wake:${kind}`,
    /**
     * Pub/sub channel announcing that an operator changed a tenant's scheduling settings (the
     * message is the tenant id); dispatchers re-read that tenant's schedule.
     */
    scheduleChanged: () => `${prefix}:schedule`,
    /**
     * Pub/sub channel announcing that an agent was changed or deleted (message: JSON
     * `{tenant_id, agent_id}`); every API process drops its cached copy.
     */
    agentChanged: () => `${prefix}:agents`,
    /**
     * Which API process (and connection) holds the tenant's chat socket `socketId` (a OneBot bot
     * account, or a maim_message adapter of an agent on a platform, see `delivery/socketRelay.ts`):
     * JSON `{owner, conn}` with a short TTL the holder renews.
     */
    socketOwner: (tenantId: string, socketId: string) => `${tenant(tenantId)}:ws:owner:${encodeId(socketId)}`,
    /**
     * The chat socket a chat stream's messages last arrived on: its replies go back there. Set by
     * the socket's ingress, read by the delivery job.
     */
    socketRoute: (tenantId: string, agentId: string, chatStreamId: string) =>
      `${tenant(tenantId)}:ws:route:${encodeId(agentId)}:${encodeId(chatStreamId)}`,
    /** Pub/sub channel of requests for one API process (deliveries, "you were replaced"). */
    socketRelay: (ownerId: string) => `${prefix}:ws:relay:${ownerId}`,
    /** Pub/sub channel of answers for one relay (one worker process). */
    socketReply: (relayId: string) => `${prefix}:ws:reply:${relayId}`,
    /**
     * A maim_message API-Server frame id already taken from an agent's adapter: clients re-send
     * unacknowledged frames for 300 s after a reconnect, and a re-sent frame is acknowledged only.
     */
    maimFrameSeen: (tenantId: string, agentId: string, msgId: string) =>
      `${tenant(tenantId)}:maim:seen:${encodeId(agentId)}:${encodeId(msgId)}`,
    /**
     * Pub/sub channel announcing that a tenant's configuration changed (message: the tenant id);
     * every process drops its cached copy (`EffectiveConfigReader`).
     */
    configChanged: () => `${prefix}:config`,
    /**
     * Pub/sub channel announcing that a tenant's row changed (status, settings; message: the
     * tenant id); every process drops its in-process copy (`TenantDirectory`).
     */
    tenantChanged: () => `${prefix}:tenants`,
    /**
     * Telemetry of one time bucket (hash of counts: label and histogram bin → n), of one tenant or,
     * with `null`, of the whole installation. `size` is m, h or d; `start` the bucket's start (ms).
     * The installation's telemetry keys share the `{_tm}` hash tag (no tenant id starts with `_`): one slot.
     */
    telemetryBucket: (tenantId: string | null, series: string, size: string, start: number) =>
      `${tenantId === null ? `${prefix}:{_tm}` : tenant(tenantId)}:tm:${series}:${size}:${start}`,
    /** Installation-wide running totals of a telemetry family (for `/metrics` counters). */
    telemetryTotals: (family: string) => `${prefix}:{_tm}:total:${family}`,
    /** One live process's self-description (JSON, expires unless renewed). */
    processBeat: (processId: string) => `${prefix}:{_tm}:proc:${processId}`,
    /** Live processes (sorted set: process id → expiry, ms). */
    processes: () => `${prefix}:{_tm}:procs`,
    /** Lease of the current round of the periodic purge of expired memories (one worker runs it). */
    memoryPurgeLease: () => `${owner(undefined)}:memory-purge`,
    /** Pub/sub channel announcing that a message reached a final status (long-poll `?wait`). */
    messageDone: (tenantId: string) => `${tenant(tenantId)}:done`,
    /**
     * SCAN MATCH pattern of every key above that belongs to one tenant. It does not match other
     * tenants' keys, nor BullMQ's queue keys (`{tenant}.kind:…`, see TenantQueues).
     */
    tenantKeysPattern: (tenantId: string) => `${escapeGlob(tenant(tenantId))}:*`,
    /**
     * SCAN MATCH pattern of every key with the tenant's hash tag: the keys above and its BullMQ
     * queues' keys (tenant deletion). Ids cannot hold `}`, so no other tenant's key matches.
     */
    tenantHashTagPattern: (tenantId: string) => `${escapeGlob(tenant(tenantId))}*`,
  });
}

export type Keyspace = ReturnType<typeof keyspace>;
