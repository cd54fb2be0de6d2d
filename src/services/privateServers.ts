import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import pg from 'pg';

import type { Logger } from '../logger';

/**
 * Private PostgreSQL and Redis servers started from the installed binaries (Debian packages
 * `postgresql` and `redis-server`), for development and tests on a machine without reachable ones.
 */
export interface PrivateServer {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function findPostgresBin(): string {
  const candidates: string[] = [];
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim());
  } catch {
    // pg_config comes with libpq-dev, which is often absent; fall back to Debian's layout.
  }
  const debianRoot = '/usr/lib/postgresql';
  if (existsSync(debianRoot)) {
    const versions = readdirSync(debianRoot).sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => path.join(debianRoot, v, 'bin')));
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) candidates.push(dir);
  const found = candidates.find(
    (dir) => existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'postgres')),
  );
  if (!found) {
    throw new Error(
      'PostgreSQL binaries (initdb, postgres) not found: install the Debian package "postgresql"',
    );
  }
  return found;
}

/** PostgreSQL refuses to run as root; as root we run it as the `postgres` (or `nobody`) user. */
function serviceUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
      return { uid, gid };
    } catch {
      // try the next one
    }
  }
  throw new Error('running as root and no "postgres" or "nobody" user exists to run PostgreSQL');
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function waitUntil(
  check: () => Promise<boolean>,
  child: ChildProcess,
  what: string,
  log: () => string,
) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode}: ${log()}`);
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`${what} did not become ready within 60 s: ${log()}`);
}

/** Whether PostgreSQL at `url` accepts a connection and answers `SELECT 1` within `timeoutMs`. */
export async function postgresReachable(url: string, timeoutMs: number): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface PostgresOptions {
  /** Data directory; created and initialised when empty. Omit for a throw-away temp dir. */
  dataDir?: string;
  logger: Logger;
}

export async function startPrivatePostgres(options: PostgresOptions): Promise<PrivateServer> {
  const bin = findPostgresBin();
  const user = serviceUser();
  const ephemeral = options.dataDir === undefined;
  const dataDir = options.dataDir
    ? path.resolve(options.dataDir)
    : await mkdtemp(path.join(os.tmpdir(), 'maihive-pg-'));
  mkdirSync(path.dirname(dataDir), { recursive: true, mode: 0o755 });
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (user) {
    await chown(dataDir, user.uid, user.gid);
    try {
      execFileSync('test', ['-w', dataDir], user);
    } catch {
      throw new Error(
        `PostgreSQL runs as uid ${user.uid} and cannot reach ${dataDir}: set MAIHIVE_DATA_DIR to a directory it can traverse`,
      );
    }
  }
  const spawnOpts = { ...(user ?? {}), stdio: ['ignore', 'pipe', 'pipe'] as ('ignore' | 'pipe')[] };

  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    options.logger.info({ dataDir }, 'initialising private PostgreSQL');
    const args = ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C'];
    if (ephemeral) args.push('--no-sync');
    execFileSync(path.join(bin, 'initdb'), args, { ...(user ?? {}), stdio: 'pipe' });
  }

  const port = await freePort();
  const serverArgs = [
    '-D',
    dataDir,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    `unix_socket_directories=${dataDir}`,
    '-c',
    'max_connections=200',
  ];
  // A throw-away test server need not survive a crash; skipping fsync makes tests much faster.
  if (ephemeral)
    serverArgs.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
  const child = spawn(path.join(bin, 'postgres'), serverArgs, spawnOpts);
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);

  // The port opens before the server accepts queries ("the database system is starting up"), so
  // readiness is a real query, not a TCP connect.
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  await waitUntil(
    () => postgresReachable(url, 2000),
    child,
    'private PostgreSQL',
    () => output,
  );
  options.logger.info({ port, dataDir }, 'private PostgreSQL started');

  return {
    url,
    port,
    async stop() {
      child.kill('SIGINT'); // fast shutdown: roll back open transactions, then exit cleanly
      await waitForExit(child, 15_000);
      if (ephemeral) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface RedisOptions {
  /** Directory for the append-only file; omit for a memory-only throw-away server. */
  dataDir?: string;
  logger: Logger;
  /** Port to listen on (e.g. to restart a stopped server in place). Default: a free one. */
  port?: number;
}

export async function startPrivateRedis(options: RedisOptions): Promise<PrivateServer> {
  const port = options.port ?? (await freePort());
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--daemonize', 'no'];
  if (options.dataDir) {
    mkdirSync(options.dataDir, { recursive: true });
    args.push('--dir', path.resolve(options.dataDir), '--appendonly', 'yes');
  } else {
    args.push('--appendonly', 'no');
  }
  let child: ChildProcess;
  try {
    child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new Error('redis-server not found: install the Debian package "redis-server"', { cause: err });
  }
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
  child.stderr?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
  const spawnError = new Promise<never>((_, reject) =>
    child.once('error', (err) =>
      reject(
        new Error('redis-server could not start: install the Debian package "redis-server"', { cause: err }),
      ),
    ),
  );
  await Promise.race([
    waitUntil(
      () => canConnect(port),
      child,
      'private Redis',
      () => output,
    ),
    spawnError,
  ]);
  options.logger.info({ port }, 'private Redis started');
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      child.kill('SIGTERM');
      await waitForExit(child, 10_000);
    },
  };
}

/** A secret kept in the data dir so development tokens survive restarts (never used in production). */
export function developmentSecret(dataDir: string, name: string, make: () => string): string {
  const file = path.join(dataDir, name);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dataDir, { recursive: true });
  const value = make();
  writeFileSync(file, value, { mode: 0o600 });
  return value;
}
