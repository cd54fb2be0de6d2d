/**
 * A private Redis Cluster for a test file, from the installed `redis-server` and `redis-cli`
 * binaries (Debian package redis-server / redis-tools): `masters` masters with `replicasPerMaster`
 * replicas each, on free ports in a temp dir, slots assigned by `redis-cli --cluster create`.
 * With replicas, it returns once every replica's link to its master is up (a failover needs it).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { Redis } from 'ioredis';

import { waitFor } from './waitFor';

const run = promisify(execFile);

export interface RedisClusterNode {
  port: number;
  process: ChildProcess;
}

export interface RedisCluster {
  /** `redis-cluster://127.0.0.1:p1,127.0.0.1:p2,…` with every node as a seed. */
  url: string;
  nodes: RedisClusterNode[];
  /** Ports of the current masters (they change after a failover). */
  masterPorts(): Promise<number[]>;
  /** Kills a node with SIGKILL (a crash, not a shutdown). */
  kill(port: number): Promise<void>;
  /** Port of the master serving `slot` as a live node sees it (after a failover: the promoted replica). */
  masterOfSlot(slot: number): Promise<number>;
  /** Ports of the replicas of the master on `port`. */
  replicasOf(port: number): Promise<number[]>;
  close(): Promise<void>;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A free port whose cluster bus port (port + 10000) is free too. */
async function freeClusterPort(taken: Set<number>): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    if (taken.has(port)) continue;
    if ((await portFree(port)) && (await portFree(port + 10000))) {
      taken.add(port);
      return port;
    }
  }
}

/** One command on one node, on a connection of its own. */
async function onNode<T>(port: number, ...args: string[]): Promise<T> {
  const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return (await redis.call(args[0]!, ...args.slice(1))) as T;
  } finally {
    redis.disconnect();
  }
}

/** `key:value` lines (CLUSTER INFO, INFO replication) as an object. */
const fields = (text: string): Record<string, string> =>
  Object.fromEntries(text.split('\r\n').map((line) => line.split(':') as [string, string]));

const clusterInfo = async (port: number) => fields(await onNode<string>(port, 'CLUSTER', 'INFO'));

export async function startRedisCluster(
  options: {
    masters?: number;
    replicasPerMaster?: number;
    /** `cluster-node-timeout`, ms: how long a master may be unreachable before its replica takes over. Default 2000. */
    nodeTimeoutMs?: number;
  } = {},
): Promise<RedisCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicasPerMaster ?? 0;
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 2000;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'maihive-redis-cluster-'));
  const taken = new Set<number>();
  const nodes: RedisClusterNode[] = [];
  const close = async () => {
    await Promise.all(
      nodes.map(
        (n) =>
          new Promise<void>((resolve) => {
            if (n.process.exitCode !== null || n.process.signalCode !== null) return resolve();
            n.process.once('exit', () => resolve());
            n.process.kill('SIGKILL');
          }),
      ),
    );
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const port = await freeClusterPort(taken);
      const nodeDir = path.join(dir, String(port));
      await mkdir(nodeDir);
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--dir',
          nodeDir,
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          String(nodeTimeoutMs),
          '--save',
          '',
          '--appendonly',
          'no',
        ],
        { stdio: 'ignore' },
      );
      nodes.push({ port, process: child });
    }
    for (const n of nodes)
      await waitFor(() => portFree(n.port).then((free) => (free ? undefined : true)), 10_000);
    await run('redis-cli', [
      '--cluster',
      'create',
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas',
      String(replicas),
      '--cluster-yes',
    ]);
    for (const n of nodes)
      await waitFor(
        async () => ((await clusterInfo(n.port)).cluster_state === 'ok' ? true : undefined),
        20_000,
      );
    // A replica that has not synced yet refuses to stand for election.
    for (const n of nodes)
      await waitFor(async () => {
        const info = fields(await onNode<string>(n.port, 'INFO', 'replication'));
        return info.role === 'master' || info.master_link_status === 'up' ? true : undefined;
      }, 20_000);
  } catch (err) {
    await close();
    throw err;
  }
  return {
    url: `redis-cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`,
    nodes,
    async masterPorts() {
      const live = nodes.filter((n) => n.process.exitCode === null && n.process.signalCode === null);
      const roles = await Promise.all(
        live.map(async (n) => {
          const redis = new Redis({ port: n.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
          try {
            return { port: n.port, role: ((await redis.call('ROLE')) as [string])[0] };
          } finally {
            redis.disconnect();
          }
        }),
      );
      return roles.filter((r) => r.role === 'master').map((r) => r.port);
    },
    async masterOfSlot(slot) {
      const live = nodes.find((n) => n.process.exitCode === null && n.process.signalCode === null)!;
      const ranges = await onNode<[number, number, [string, number]][]>(live.port, 'CLUSTER', 'SLOTS');
      const range = ranges.find(([from, to]) => slot >= from && slot <= to);
      if (!range) throw new Error(`slot ${slot} is served by no node`);
      return range[2][1];
    },
    async replicasOf(port) {
      const info = fields(await onNode<string>(port, 'INFO', 'replication'));
      return Object.entries(info)
        .filter(([k]) => /^slave\d+$/.test(k))
        .map(([, v]) => Number(/port=(\d+)/.exec(v)?.[1]));
    },
    async kill(port) {
      const node = nodes.find((n) => n.port === port)!;
      await new Promise<void>((resolve) => {
        node.process.once('exit', () => resolve());
        node.process.kill('SIGKILL');
      });
    },
    close,
  };
}
