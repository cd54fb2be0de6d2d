/**
 * `npm run bench:startup`: what the compiled build saves over running the sources through tsx.
 *
 * For each role (`api`, `worker`) and each way of running it — `tsx` (`node --import tsx
 * src/main.ts`, what ecosystem.config.js ran before the build) and `dist` (`node
 * --enable-source-maps dist/main.js`, what it runs now) — starts the process BENCH_STARTS times
 * (default 5) against one migrated database, interleaving the two ways so machine noise hits both
 * alike, and records the time from spawn to the `maihive started` log line and the resident set
 * size after BENCH_IDLE_MS (default 5000) of idling. Reports medians and the dist/tsx ratios in
 * bench/results/startup-<timestamp>.json. Builds dist/ first.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { Redis } from 'ioredis';

import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { resolveServices } from '../src/services/localServices';
import { recreateDatabase, withDatabase } from './lib/dataset';
import { round, writeResult } from './lib/queueBench';
import { percentile } from './lib/stats';

const median = (xs: number[]) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );

const ROOT = path.resolve(__dirname, '..');
const DATABASE = 'maihive_bench_startup';
const PREFIX = 'bench.startup';
const STARTS = Number(process.env.BENCH_STARTS ?? 5);
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 5000);

type Way = 'tsx' | 'dist';
type Role = 'api' | 'worker';

const COMMAND: Record<Way, string[]> = {
  tsx: ['--import', 'tsx', 'src/main.ts'],
  dist: ['--enable-source-maps', 'dist/main.js'],
};

interface Start {
  start_ms: number;
  rss_mib: number;
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
  return kb / 1024;
}

/** Starts one process, waits for `maihive started`, idles, reads its RSS, stops it. */
function startOnce(way: Way, role: Role, env: NodeJS.ProcessEnv): Promise<Start> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, [...COMMAND[way], '--role', role], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let seen = '';
    let startMs: number | undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      if (startMs !== undefined) return;
      seen = (seen + chunk.toString('utf8')).slice(-4096);
      if (!seen.includes('"msg":"maihive started"')) return;
      startMs = Number(process.hrtime.bigint() - t0) / 1e6;
      setTimeout(() => {
        const rss = rssMiB(child.pid!);
        child.once('exit', () => resolve({ start_ms: startMs!, rss_mib: rss }));
        child.kill('SIGTERM');
      }, IDLE_MS);
    });
    child.once('exit', (code) => {
      if (startMs === undefined) reject(new Error(`${way} ${role} exited with ${code} before it started`));
    });
  });
}

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({ level: 'warn' });
  const services = await resolveServices(config, logger);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'maihive-bench-startup-'));
  try {
    console.log('building dist/ (npm run build)');
    execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'ignore' });
    await recreateDatabase(services.databaseAdminUrl, DATABASE, config.appRole, logger);
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: '0',
      DATABASE_ADMIN_URL: withDatabase(services.databaseAdminUrl, DATABASE),
      REDIS_URL: services.redisUrl,
      REDIS_PREFIX: PREFIX,
      JWT_SECRET: 'bench-startup-jwt-secret-0123456789abcdef',
      MAIHIVE_SECRET_KEY: 'bench-startup-server-key-0123456789abcdef',
      MAIHIVE_DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
    };
    const samples: Record<Role, Record<Way, Start[]>> = {
      api: { tsx: [], dist: [] },
      worker: { tsx: [], dist: [] },
    };
    for (let i = 0; i < STARTS; i++)
      for (const role of ['api', 'worker'] as const)
        for (const way of (i % 2 === 0 ? ['tsx', 'dist'] : ['dist', 'tsx']) as Way[]) {
          const s = await startOnce(way, role, env);
          samples[role][way].push(s);
          console.log(
            `${role} ${way}: started in ${s.start_ms.toFixed(0)} ms, idle RSS ${s.rss_mib.toFixed(1)} MiB`,
          );
        }
    const summary = Object.fromEntries(
      (['api', 'worker'] as const).map((role) => {
        const of = (way: Way, k: keyof Start) => median(samples[role][way].map((s) => s[k]));
        return [
          role,
          {
            tsx: { start_ms: round(of('tsx', 'start_ms'), 0), rss_mib: round(of('tsx', 'rss_mib'), 1) },
            dist: { start_ms: round(of('dist', 'start_ms'), 0), rss_mib: round(of('dist', 'rss_mib'), 1) },
            start_ratio_dist_to_tsx: round(of('dist', 'start_ms') / of('tsx', 'start_ms'), 2),
            rss_saved_mib: round(of('tsx', 'rss_mib') - of('dist', 'rss_mib'), 1),
          },
        ];
      }),
    );
    console.table(
      Object.entries(summary).map(([role, s]) => ({
        role,
        'tsx start ms': s.tsx.start_ms,
        'dist start ms': s.dist.start_ms,
        'start dist/tsx': s.start_ratio_dist_to_tsx,
        'tsx RSS MiB': s.tsx.rss_mib,
        'dist RSS MiB': s.dist.rss_mib,
      })),
    );
    const finishedAt = new Date();
    const files = await writeResult(
      'startup',
      {
        settings: { starts: STARTS, idle_ms: IDLE_MS },
        machine: { cpus: os.cpus().length, load: os.loadavg() },
        summary,
        samples,
        finished_at: finishedAt,
      },
      finishedAt,
    );
    console.log(`wrote ${files.join(', ')}`);
  } finally {
    const redis = new Redis(services.redisUrl);
    const keys = await redis.keys(`${PREFIX}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    await services.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
