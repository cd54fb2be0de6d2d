import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';

/**
 * Where Redis is, from `REDIS_URL`:
 *
 * - `redis://[:password@]host:port[/db]` or `rediss://…` — one server (or a proxy in front of many);
 * - `redis-cluster://[:password@]host:port,host:port,…` (or `rediss-cluster://…` for TLS) — a Redis
 *   Cluster, given by any of its nodes (seeds); the client learns the rest from them.
 */
export type RedisTarget =
  | { kind: 'single'; url: string }
  | { kind: 'cluster'; nodes: { host: string; port: number }[]; password?: string; tls: boolean };

const CLUSTER_SCHEMES: Record<string, boolean> = { 'redis-cluster:': false, 'rediss-cluster:': true };

/** Parses `REDIS_URL`; throws a message naming what is wrong. */
export function parseRedisUrl(url: string): RedisTarget {
  const scheme = /^[a-z-]+:/.exec(url)?.[0];
  if (scheme === 'redis:' || scheme === 'rediss:') {
    new URL(url); // throws on a malformed single-server URL
    return { kind: 'single', url };
  }
  if (scheme === undefined || !(scheme in CLUSTER_SCHEMES))
    throw new Error('must start with redis://, rediss://, redis-cluster:// or rediss-cluster://');
  const rest = url.slice(scheme.length + 2);
  const at = rest.lastIndexOf('@');
  const auth = at >= 0 ? rest.slice(0, at) : '';
  const hosts = (at >= 0 ? rest.slice(at + 1) : rest).replace(/\/.*$/, '');
  const nodes = hosts.split(',').map((hostPort) => {
    const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(hostPort);
    if (!m) throw new Error(`cluster node "${hostPort}" is not host:port`);
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
  });
  const password = auth ? decodeURIComponent(auth.replace(/^[^:]*:/, '')) : undefined;
  return { kind: 'cluster', nodes, ...(password ? { password } : {}), tls: CLUSTER_SCHEMES[scheme]! };
}

export function isClusterUrl(url: string): boolean {
  return parseRedisUrl(url).kind === 'cluster';
}

/** The options a Cluster takes for itself, and the rest, which go to each node's connection. */
function splitOptions(options: RedisOptions): { clusterLevel: ClusterOptions; nodeOptions: RedisOptions } {
  const { lazyConnect, enableOfflineQueue, enableAutoPipelining, ...nodeOptions } = options;
  const clusterLevel: ClusterOptions = {};
  if (lazyConnect !== undefined) clusterLevel.lazyConnect = lazyConnect;
  if (enableOfflineQueue !== undefined) clusterLevel.enableOfflineQueue = enableOfflineQueue;
  if (enableAutoPipelining !== undefined) clusterLevel.enableAutoPipelining = enableAutoPipelining;
  return { clusterLevel, nodeOptions };
}

/**
 * A Redis client for `REDIS_URL`: ioredis's `Redis` for one server, its `Cluster` for a cluster,
 * with the same options (timeouts, retries, offline queue) applied to every node connection.
 *
 * Both are ioredis commanders with the same command methods (and BullMQ takes either), so the rest
 * of MaiHive uses one type, `Redis`. What differs on a cluster is kept in this folder and in the
 * key layout: every multi-key command and script touches keys of one hash slot (every tenant's keys
 * carry its hash tag, `src/redis/keys.ts`), and SCAN must visit every master (`scanEach`).
 */
export function connectRedis(url: string, options: RedisOptions = {}): Redis {
  const target = parseRedisUrl(url);
  if (target.kind === 'single') return new Redis(url, options);
  const { clusterLevel, nodeOptions } = splitOptions(options);
  const cluster = new Cluster(target.nodes, {
    ...clusterLevel,
    // A node that fails over comes back under another address: re-learn the slots when it errors.
    slotsRefreshTimeout: nodeOptions.connectTimeout ?? 3000,
    ...failoverRetries(nodeOptions.maxRetriesPerRequest === null),
    ...(nodeOptions.retryStrategy ? { clusterRetryStrategy: nodeOptions.retryStrategy } : {}),
    redisOptions: {
      ...nodeOptions,
      ...(target.password ? { password: target.password } : {}),
      ...(target.tls ? { tls: {} } : {}),
    },
  });
  return cluster as unknown as Redis;
}

/**
 * While a master fails over (from its crash until the cluster has marked it failed and promoted a
 * replica: about 1.5-3 × `cluster-node-timeout`), commands for its slots meet a closed connection,
 * `CLUSTERDOWN`, or `MOVED` back to the dead master; ioredis retries each after a delay, at most
 * `maxRedirections` times (the MOVED ones without delay: about two redirections per delay).
 *
 * - A client that waits through outages (`maxRetriesPerRequest: null`: the workers' BullMQ
 *   connection) rides through a failover of up to `FAILOVER_RIDE_THROUGH_MS`: its job locks,
 *   completions and fetches resume on the promoted replica instead of failing (a failed completion
 *   would leave the job to BullMQ's stalled-job check, 30-45 s later).
 * - Any other client (the API's) keeps ioredis's default of 16 (about 2 s): a send meeting the
 *   switch fails fast and the API answers 503 with `Retry-After` (`availability.ts`).
 */
export const FAILOVER_RIDE_THROUGH_MS = 60_000;
const FAILOVER_RETRY_DELAY_MS = 200;

function failoverRetries(waitThrough: boolean): ClusterOptions {
  return {
    retryDelayOnFailover: FAILOVER_RETRY_DELAY_MS,
    retryDelayOnClusterDown: FAILOVER_RETRY_DELAY_MS,
    retryDelayOnTryAgain: FAILOVER_RETRY_DELAY_MS,
    maxRedirections: waitThrough ? Math.ceil((2 * FAILOVER_RIDE_THROUGH_MS) / FAILOVER_RETRY_DELAY_MS) : 16,
  };
}

/**
 * What decides a key's hash slot: the text of its first non-empty `{…}` hash tag, else the whole
 * key. Keys with the same answer share a slot (and one pipeline on a cluster may carry them).
 */
export function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

/** Whether a client made by `connectRedis` talks to a cluster. */
export function isCluster(redis: Redis): boolean {
  return (redis as unknown as { isCluster?: boolean }).isCluster === true;
}

/** A cluster client's current masters, the slot map read again first: an idle client's map may predate a failover. */
async function currentMasters(cluster: Cluster): Promise<Redis[]> {
  await new Promise<void>((resolve, reject) =>
    cluster.refreshSlotsCache((err) => (err ? reject(err) : resolve())),
  );
  return cluster.nodes('master');
}

/**
 * Every key matching `pattern`, a SCAN page at a time, on every master of a cluster (SCAN on a
 * cluster client would visit one node only) or on the one server.
 */
export async function* scanEach(redis: Redis, pattern: string, count = 500): AsyncGenerator<string[]> {
  const nodes = isCluster(redis) ? await currentMasters(redis as unknown as Cluster) : [redis];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', count);
      cursor = next;
      if (keys.length > 0) yield keys;
    } while (cursor !== '0');
  }
}

/**
 * A new connection with the same target as `redis` and some options changed (e.g. a subscriber
 * that queues while reconnecting). ioredis's `Cluster.duplicate` takes (nodes, cluster options),
 * not a node's options: this puts each option where the client kind wants it.
 */
export function duplicateRedis(redis: Redis, options: RedisOptions): Redis {
  if (!isCluster(redis)) return redis.duplicate(options);
  const cluster = redis as unknown as Cluster;
  const { clusterLevel, nodeOptions } = splitOptions(options);
  return cluster.duplicate([], {
    ...clusterLevel,
    redisOptions: { ...cluster.options.redisOptions, ...nodeOptions },
  }) as unknown as Redis;
}
