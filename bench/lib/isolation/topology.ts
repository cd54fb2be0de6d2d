/**
 * The two deployment shapes `bench:isolation` measures, started the way users start them:
 *
 * - `single`: `npm start` — `src/main.ts` with every role in one process, development defaults;
 * - `split`: the apps of `ecosystem.config.js` (its script, args, node_args and env), one API
 *   instance and two workers, as pm2 runs them: the compiled output, rebuilt from the sources first.
 *
 * Each process gets the bench's probe preloaded (`probe.ts`: CPU and event-loop delay over IPC) and
 * writes its log to a file. Nothing else differs from a user's start.
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

import { freePort } from '../../../test/support/freePort';
import type { ProbeReport, ProbeTick } from './probe';

export type TopologyName = 'single' | 'split';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const PROBE = path.join(__dirname, 'probe.ts');

export interface ServerProcess {
  /** `all`, `api` or `worker-<n>`. */
  name: string;
  child: ChildProcess;
  ticks: ProbeTick[];
  exited: boolean;
  exitCode: number | null;
}

export interface Topology {
  name: TopologyName;
  url: string;
  processes: ServerProcess[];
  /** Starts a new phase histogram in every process's probe. */
  markPhase(phase: string): void;
  /** Every process's figures for the phase since the last `markPhase`. */
  report(): Promise<(ProbeReport & { name: string })[]>;
  stop(): Promise<void>;
}

export interface TopologyEnv {
  databaseAdminUrl: string;
  redisUrl: string;
  redisPrefix: string;
  /** Platform admin created at start: `username:password`. */
  bootstrapAdmin: string;
  jwtSecret: string;
  secretKey: string;
  dataDir: string;
  logDir: string;
  /** Extra Node options for every server process (e.g. `--cpu-prof`). */
  nodeOptions?: string[];
  /** Extra environment of every server process (experiments: `WORKER_CONCURRENCY`, …). */
  extraEnv?: Record<string, string>;
}

interface EcosystemApp {
  name: string;
  script: string;
  args?: string;
  node_args?: string;
  env?: Record<string, string>;
}

/** Starts one process and resolves once its log says `maihive started`. */
async function startProcess(
  name: string,
  script: string,
  args: string[],
  nodeArgs: string[],
  env: NodeJS.ProcessEnv,
  logDir: string,
  extraNodeArgs: string[] = [],
): Promise<ServerProcess> {
  const log = createWriteStream(path.join(logDir, `${name}.log`));
  const child = fork(path.join(ROOT, script), args, {
    cwd: ROOT,
    env,
    // The probe is TypeScript: tsx's loader is added for it (it only compiles what it loads).
    execArgv: [
      ...nodeArgs,
      ...extraNodeArgs,
      ...(nodeArgs.includes('tsx') ? [] : ['--import', 'tsx']),
      '--import',
      PROBE,
    ],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const proc: ServerProcess = { name, child, ticks: [], exited: false, exitCode: null };
  child.on('message', (m: ProbeTick | ProbeReport) => {
    if (m.type === 'probe-tick') proc.ticks.push(m);
  });
  child.stderr!.pipe(log);
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer) => {
      log.write(chunk);
      if (seen === 'done') return;
      seen = (seen + chunk.toString('utf8')).slice(-4096);
      if (seen.includes('"msg":"maihive started"')) {
        seen = 'done';
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      proc.exited = true;
      proc.exitCode = code;
      reject(new Error(`${name} exited with ${code} before it started (log: ${logDir}/${name}.log)`));
    });
  });
  child.removeAllListeners('exit');
  child.once('exit', (code) => {
    proc.exited = true;
    proc.exitCode = code;
  });
  return proc;
}

function stopProcess(p: ServerProcess, graceMs = 20_000): Promise<void> {
  if (p.exited) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
    p.child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    p.child.kill('SIGTERM');
  });
}

function reportOf(p: ServerProcess): Promise<ProbeReport & { name: string }> {
  return new Promise((resolve, reject) => {
    if (p.exited) return reject(new Error(`${p.name} has exited`));
    const onMessage = (m: ProbeTick | ProbeReport) => {
      if (m.type !== 'probe-report') return;
      p.child.off('message', onMessage);
      resolve({ ...m, name: p.name });
    };
    p.child.on('message', onMessage);
    p.child.send({ type: 'probe-report' });
  });
}

export async function startTopology(name: TopologyName, e: TopologyEnv): Promise<Topology> {
  await mkdir(e.logDir, { recursive: true });
  const port = await freePort();
  const base: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATABASE_ADMIN_URL: e.databaseAdminUrl,
    REDIS_URL: e.redisUrl,
    REDIS_PREFIX: e.redisPrefix,
    MAIHIVE_DATA_DIR: e.dataDir,
    PORT: String(port),
    ...e.extraEnv,
  };
  const processes: ServerProcess[] = [];
  try {
    if (name === 'single') {
      // `npm start` is `tsx src/main.ts`: the same as node with tsx's loader.
      processes.push(
        await startProcess(
          'all',
          'src/main.ts',
          [],
          ['--import', 'tsx'],
          { ...base, MAIHIVE_BOOTSTRAP_ADMIN: e.bootstrapAdmin },
          e.logDir,
          e.nodeOptions,
        ),
      );
    } else {
      // ecosystem.config.js runs the compiled output: build it from the sources being measured.
      execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'ignore' });
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const ecosystem = require(path.join(ROOT, 'ecosystem.config.js')) as { apps: EcosystemApp[] };
      const app = (n: string) => ecosystem.apps.find((a) => a.name === n)!;
      const env = (a: EcosystemApp): NodeJS.ProcessEnv => ({
        ...base,
        ...a.env,
        JWT_SECRET: e.jwtSecret,
        MAIHIVE_SECRET_KEY: e.secretKey,
      });
      const split = (s: string | undefined) => (s ?? '').split(/\s+/).filter(Boolean);
      const api = app('maihive-api');
      processes.push(
        await startProcess(
          'api',
          api.script,
          split(api.args),
          split(api.node_args),
          { ...env(api), MAIHIVE_BOOTSTRAP_ADMIN: e.bootstrapAdmin },
          e.logDir,
          e.nodeOptions,
        ),
      );
      const worker = app('maihive-worker');
      const workers = await Promise.all(
        [1, 2].map((n) =>
          startProcess(
            `worker-${n}`,
            worker.script,
            split(worker.args),
            split(worker.node_args),
            env(worker),
            e.logDir,
            e.nodeOptions,
          ),
        ),
      );
      processes.push(...workers);
    }
  } catch (err) {
    await Promise.all(processes.map((p) => stopProcess(p)));
    throw err;
  }
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    processes,
    markPhase(phase) {
      for (const p of processes) if (!p.exited) p.child.send({ type: 'probe-phase', phase });
    },
    report: () => Promise.all(processes.map(reportOf)),
    stop: async () => {
      await Promise.all(processes.map((p) => stopProcess(p)));
    },
  };
}
