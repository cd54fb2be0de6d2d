import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import pg from 'pg';

import { migrate, MIGRATIONS_DIR } from '../../src/db/migrate';
import { createLogger } from '../../src/logger';
import { testEnv } from '../support/env';

const logger = createLogger({ level: 'silent' });
const created: string[] = [];
const dirs: string[] = [];

function dbUrl(name: string): string {
  const u = new URL(testEnv('serverUrl'));
  u.pathname = `/${name}`;
  return u.toString();
}

async function server<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: testEnv('serverUrl') });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** An empty database of this file's own. */
async function emptyDatabase(): Promise<string> {
  const name = `maihive_t_${process.pid}_${randomBytes(4).toString('hex')}`;
  await server((c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
  created.push(name);
  return dbUrl(name);
}

/** A copy of the migrations directory that a test may edit. */
function migrationsCopy(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'maihive-migrations-'));
  cpSync(MIGRATIONS_DIR, dir, { recursive: true });
  dirs.push(dir);
  return dir;
}

async function query<R extends pg.QueryResultRow>(url: string, sql: string): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<R>(sql)).rows;
  } finally {
    await c.end();
  }
}

afterAll(async () => {
  await server(async (c) => {
    for (const name of created)
      await c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  });
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('migrate', () => {
  const appRole = () => testEnv('appRole');

  it('applies every migration once, records it with a checksum, and is a no-op the second time', async () => {
    const url = await emptyDatabase();
    const first = await migrate({ adminUrl: url, appRole: appRole(), logger });
    expect(first.applied.length).toBeGreaterThan(0);
    expect(first.version).toBeGreaterThan(0);
    const second = await migrate({ adminUrl: url, appRole: appRole(), logger });
    expect(second.applied).toEqual([]);
    expect(second.version).toBe(first.version);
    const rows = await query<{ md5: string }>(url, 'SELECT md5 FROM schemaversion WHERE version > 0');
    expect(rows.length).toBe(first.applied.length);
    expect(rows.every((r) => /^[0-9a-f]{32}$/.test(r.md5))).toBe(true);
  });

  it('refuses to run when an applied migration was edited', async () => {
    const url = await emptyDatabase();
    const dir = migrationsCopy();
    await migrate({ adminUrl: url, appRole: appRole(), logger, migrationsDir: dir });
    writeFileSync(path.join(dir, '001.do.tenancy-schema.sql'), '-- edited\n', { flag: 'a' });
    await expect(migrate({ adminUrl: url, appRole: appRole(), logger, migrationsDir: dir })).rejects.toThrow(
      /md5/i,
    );
  });

  it('rolls a failing migration back whole, leaving no half-applied schema and no record', async () => {
    const url = await emptyDatabase();
    const dir = migrationsCopy();
    await migrate({ adminUrl: url, appRole: appRole(), logger, migrationsDir: dir });
    writeFileSync(
      path.join(dir, '900.do.broken.sql'),
      'CREATE TABLE half_done (id int);\nSELECT no_such_function();\n',
    );
    await expect(migrate({ adminUrl: url, appRole: appRole(), logger, migrationsDir: dir })).rejects.toThrow(
      /no_such_function/,
    );
    expect(await query(url, "SELECT 1 FROM pg_class WHERE relname = 'half_done'")).toEqual([]);
    expect(await query(url, 'SELECT 1 FROM schemaversion WHERE version = 900')).toEqual([]);
  });

  it('lets two concurrent runs apply each migration exactly once (advisory lock)', async () => {
    const url = await emptyDatabase();
    const [a, b] = await Promise.all([
      migrate({ adminUrl: url, appRole: appRole(), logger }),
      migrate({ adminUrl: url, appRole: appRole(), logger }),
    ]);
    const total = a.applied.length + b.applied.length;
    expect(Math.min(a.applied.length, b.applied.length)).toBe(0);
    const rows = await query<{ n: string }>(url, 'SELECT count(*) AS n FROM schemaversion WHERE version > 0');
    expect(Number(rows[0]?.n)).toBe(total);
  });

  it('refuses an application role that is superuser', async () => {
    const url = await emptyDatabase();
    const role = `maihive_t_super_${randomBytes(3).toString('hex')}`;
    await server((c) => c.query(`CREATE ROLE ${role} LOGIN SUPERUSER`));
    try {
      await expect(migrate({ adminUrl: url, appRole: role, logger })).rejects.toThrow(
        /superuser or has BYPASSRLS/,
      );
    } finally {
      await server((c) => c.query(`DROP ROLE ${role}`));
    }
  });
});
