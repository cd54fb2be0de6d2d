/**
 * What an operator deploys: `npm run build`'s output plus a clean `npm ci --omit=dev` (no tsx, no
 * TypeScript), in a directory of its own, started as ecosystem.config.js starts it — an API process
 * and a worker process, `node --enable-source-maps dist/main.js --role …` — from a working directory
 * elsewhere (paths come from the project root, not the cwd). Both answer, and a message sent to the
 * API is answered by the worker.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { testEnv } from '../support/env';
import { freePort } from '../support/freePort';
import { createTestDatabase, createTestRedis, type TestDatabase } from '../support/testDatabase';
import { waitFor } from '../support/waitFor';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const ecosystem = require(path.join(ROOT, 'ecosystem.config.js')) as {
  apps: { name: string; script: string; args: string; node_args: string }[];
};

let install: string;
let t: TestDatabase;
let redis: ReturnType<typeof createTestRedis>;
const children: ChildProcess[] = [];

/** Starts an ecosystem.config.js app from the install directory, the way pm2 would. */
function startApp(name: string, env: NodeJS.ProcessEnv): ChildProcess {
  const app = ecosystem.apps.find((a) => a.name === name)!;
  const child = spawn(
    process.execPath,
    [...app.node_args.split(/\s+/).filter(Boolean), path.join(install, app.script), ...app.args.split(' ')],
    { cwd: os.tmpdir(), env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.push(child);
  return child;
}

function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

beforeAll(async () => {
  install = await mkdtemp(path.join(os.tmpdir(), 'maihive-prod-'));
  await run('npx', ['tsc', '-p', 'tsconfig.build.json', '--outDir', path.join(install, 'dist')], {
    cwd: ROOT,
  });
  for (const entry of ['package.json', 'package-lock.json', 'migrations'])
    cpSync(path.join(ROOT, entry), path.join(install, entry), { recursive: true });
  await run('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: install });
  t = await createTestDatabase();
  redis = createTestRedis();
}, 240_000);

afterAll(async () => {
  await Promise.all(children.map(stop));
  await redis?.close();
  await t?.close();
  await rm(install, { recursive: true, force: true });
});

describe('the production build', () => {
  it('installs without development dependencies', () => {
    expect(existsSync(path.join(install, 'node_modules', 'bullmq'))).toBe(true);
    expect(existsSync(path.join(install, 'node_modules', 'tsx'))).toBe(false);
    // (typescript itself may arrive as valibot's peer dependency, through @bull-board/api.)
    expect(existsSync(path.join(install, 'node_modules', 'jest'))).toBe(false);
    expect(existsSync(path.join(install, 'node_modules', 'pm2'))).toBe(false);
  });

  it('starts the API and worker roles from dist/ and answers a message end to end', async () => {
    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_ADMIN_URL: t.adminUrl,
      MAIHIVE_APP_ROLE: testEnv('appRole'),
      REDIS_URL: redis.url,
      REDIS_PREFIX: redis.appPrefix,
      JWT_SECRET: 'production-build-test-jwt-secret-0123456789',
      MAIHIVE_SECRET_KEY: 'production-build-test-server-key-0123456789',
      MAIHIVE_BOOTSTRAP_ADMIN: 'root:production-build-root-password',
      LOG_LEVEL: 'warn',
    };
    const api = startApp('maihive-api', env);
    let stderr = '';
    api.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const base = `http://127.0.0.1:${port}/api/v1`;
    const ready = await waitFor(async () => {
      if (api.exitCode !== null) throw new Error(`the API exited with ${api.exitCode}: ${stderr}`);
      const res = await fetch(`${base}/ready`).catch(() => undefined);
      return res?.status === 200 ? res : undefined;
    }, 60_000);
    expect(ready.status).toBe(200);
    const worker = startApp('maihive-worker', { ...env, PORT: '0' });

    const call = async (method: string, p: string, body: unknown, auth: Record<string, string> = {}) => {
      const res = await fetch(`${base}${p}`, {
        method,
        headers: { 'content-type': 'application/json', ...auth },
        body: JSON.stringify(body),
      });
      return { status: res.status, data: ((await res.json()) as { data: Record<string, unknown> }).data };
    };
    const admin = await call('POST', '/auth/login', {
      username: 'root',
      password: 'production-build-root-password',
    });
    const bearer = { authorization: `Bearer ${admin.data.access_token as string}` };
    const tenant = await call(
      'POST',
      '/tenants',
      { tenant_id: 'prod', name: 'prod', admin: { username: 'owner', password: 'prod-owner-password' } },
      bearer,
    );
    expect(tenant.status).toBe(201);
    const owner = await call('POST', '/auth/login', {
      tenant_id: 'prod',
      username: 'owner',
      password: 'prod-owner-password',
    });
    const sent = await call(
      'POST',
      '/chat/send?wait=30000',
      { message: '@麦麦 你好', chat_stream_id: 'prod-1', platform: 'qq', agent_id: 'default' },
      { authorization: `Bearer ${owner.data.access_token as string}` },
    );
    expect(sent.status).toBe(200);
    expect(sent.data.status).toBe('replied');

    // Built-in plugins and their sandbox thread load from the compiled files too (they once
    // looked for `.ts` sources next to dist/ and failed on every call).
    const ownerAuth = { authorization: `Bearer ${owner.data.access_token as string}` };
    const installed = await call(
      'POST',
      '/plugins/install',
      { plugin_id: 'dice', permissions: ['message_send'], auto_enable: true },
      ownerAuth,
    );
    expect(installed).toMatchObject({ status: 201, data: { plugin_id: 'dice', status: 'enabled' } });
    const rolled = await call(
      'POST',
      '/plugins/dice/execute',
      { action: 'roll', parameters: { dice: '2d6' } },
      ownerAuth,
    );
    expect(rolled.status).toBe(200);
    expect(rolled.data).toMatchObject({
      success: true,
      reply: expect.stringMatching(/^🎲 2d6: \d+/) as unknown,
    });

    expect(await stop(worker)).toBe(0);
    expect(await stop(api)).toBe(0);
  }, 120_000);
});
