/**
 * `maihive import-maibot` as a process: SIGKILLed mid-import, then run again, it ends with the same
 * rows as an uninterrupted import; the exit code and printed summary of a whole run.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { buildMaiBotV0 } from '../support/maibotFixture';
import { importedContent, tenantSnapshot } from '../support/tenantSnapshot';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

let t: TestDatabase;
let dir: string;
let file: string;

const CLI = path.join(__dirname, '../../src/cli.ts');

function cli(args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; out: string }> } {
  const child = fork(CLI, ['import-maibot', ...args], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: {
      ...process.env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      DATABASE_URL: t.appUrl,
      DATABASE_ADMIN_URL: t.adminUrl,
      JWT_SECRET: 'test-secret-that-is-at-least-32-bytes-long',
    },
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<{ code: number | null; out: string }>((resolve) =>
    child.once('exit', (code) => resolve({ code, out })),
  );
  return { child, done };
}

async function messages(tenantId: string): Promise<number> {
  const { rows } = await t.admin<{ n: string }>(
    `SELECT count(*)::text n FROM messages WHERE tenant_id = $1`,
    [tenantId],
  );
  return Number(rows[0]!.n);
}

beforeAll(async () => {
  t = await createTestDatabase();
  dir = mkdtempSync(path.join(tmpdir(), 'maibot-cli-'));
  file = path.join(dir, 'MaiBot.db');
  await buildMaiBotV0(file, { chats: 20, messages: 10_000 });
  await t.admin(`INSERT INTO tenants (tenant_id, name) VALUES ('whole', 'W'), ('killed', 'K')`);
}, 60_000);

afterAll(async () => {
  await t.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('maihive import-maibot (process)', () => {
  it('imports, prints the summary and the verification, exits 0; a dry run exits 0 and writes nothing', async () => {
    const dry = await cli(['--sqlite', file, '--tenant', 'killed', '--agent', 'default', '--dry-run']).done;
    expect(dry.code).toBe(0);
    expect(dry.out).toMatch(/dry run: nothing written/);
    expect(await messages('killed')).toBe(0);

    const { code, out } = await cli(['--sqlite', file, '--tenant', 'whole', '--agent', 'default']).done;
    expect(out).toMatch(/messages\s+messages\s+10000\s+10000\s+0/);
    expect(out).toMatch(/not imported \(no home here\)/);
    expect(out).toMatch(/all tables match/);
    expect(code).toBe(0);
  }, 60_000);

  it('SIGKILLed mid-import and run again, ends with the same rows as an uninterrupted import', async () => {
    const whole = await tenantSnapshot(t, 'whole');
    const run = cli(['--sqlite', file, '--tenant', 'killed', '--agent', 'default', '--batch-size', '200']);
    const deadline = Date.now() + 30_000;
    while ((await messages('killed')) < 1000 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    run.child.kill('SIGKILL');
    const killed = await run.done;
    expect(killed.code).toBeNull();
    const partial = await messages('killed');
    expect(partial).toBeGreaterThanOrEqual(1000);
    expect(partial).toBeLessThan(10_000);

    const again = await cli(['--sqlite', file, '--tenant', 'killed', '--agent', 'default']).done;
    expect(again.out).toMatch(/all tables match/);
    expect(again.code).toBe(0);
    expect(await messages('killed')).toBe(10_000);
    expect(await importedContent(t, 'killed')).toEqual(await importedContent(t, 'whole'));
    expect(await tenantSnapshot(t, 'whole')).toEqual(whole);
  }, 90_000);

  it('a file that is not a MaiBot database exits 1 saying nothing was written; bad arguments exit 2', async () => {
    const bad = await cli(['--sqlite', CLI, '--tenant', 'killed', '--agent', 'default']).done;
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/not a SQLite database.*nothing was written/);
    const usage = await cli(['--sqlite', file, '--tenant', 'bad tenant!']).done;
    expect(usage.code).toBe(2);
    expect(usage.out).toMatch(/--tenant/);
  }, 60_000);
});
