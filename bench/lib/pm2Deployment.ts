/**
 * The production shape for benches: `dist/` started as `ecosystem.config.js` describes it, under a
 * private pm2 (its own PM2_HOME, so it never touches a pm2 the machine runs), on a free port, with
 * a bootstrap platform admin. Used by `bench:reload` and `bench:scale`; build `dist/` first.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

import { freePort } from '../../test/support/freePort';
import { request } from './isolation/http';

const ROOT = path.resolve(__dirname, '..', '..');
const PM2 = path.join(ROOT, 'node_modules', '.bin', 'pm2');
const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Pm2DeploymentOptions {
  /** Where the private PM2_HOME is made. */
  tmpDir: string;
  databaseAdminUrl: string;
  redisUrl: string;
  redisPrefix: string;
  dataDir: string;
  apiInstances: number;
  workerInstances: number;
  /** `user:password` of the platform admin the first process creates. */
  bootstrapAdmin: string;
  /** Names the JWT and server keys (bench values, not secrets). */
  name: string;
  /** More environment for both apps (e.g. WORKER_CONCURRENCY). */
  env?: NodeJS.ProcessEnv;
}

export interface Pm2Deployment {
  /** `http://127.0.0.1:<port>` of the API instances. */
  base: string;
  pm2Home: string;
  /** Runs the private pm2 with these arguments. */
  pm2: (...args: string[]) => Promise<{ stdout: string; stderr: string }>;
  /** `pm2 kill` and the PM2_HOME removed; never throws. */
  stop: () => Promise<void>;
}

/** Starts the deployment and waits (up to 60 s) until the API answers `/ready`. */
export async function startPm2Deployment(o: Pm2DeploymentOptions): Promise<Pm2Deployment> {
  const pm2Home = await mkdtemp(path.join(o.tmpDir, 'pm2-'));
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PM2_HOME: pm2Home,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    DATABASE_ADMIN_URL: o.databaseAdminUrl,
    REDIS_URL: o.redisUrl,
    REDIS_PREFIX: o.redisPrefix,
    JWT_SECRET: `bench-${o.name}-jwt-secret-0123456789abcdef`,
    MAIHIVE_SECRET_KEY: `bench-${o.name}-server-key-0123456789abcdef`,
    MAIHIVE_BOOTSTRAP_ADMIN: o.bootstrapAdmin,
    MAIHIVE_DATA_DIR: o.dataDir,
    MAIHIVE_API_INSTANCES: String(o.apiInstances),
    MAIHIVE_WORKER_INSTANCES: String(o.workerInstances),
    LOG_LEVEL: 'warn',
    ...o.env,
  };
  const pm2 = (...args: string[]) => run(PM2, args, { cwd: ROOT, env });
  const stop = async () => {
    await pm2('kill').catch(() => undefined);
    await rm(pm2Home, { recursive: true, force: true });
  };
  try {
    await pm2('start', 'ecosystem.config.js');
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; (await request(base, 'GET', '/ready')).status !== 200; i++) {
      if (i > 600) throw new Error('the API did not become ready');
      await sleep(100);
    }
    return { base, pm2Home, pm2, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
