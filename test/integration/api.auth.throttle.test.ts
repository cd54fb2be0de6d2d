import { hashPassword } from '../../src/auth/passwords';
import { startTestApp, type TestApp } from '../support/testApp';

const PASSWORD = 'correct horse battery staple';
const WINDOW_SECONDS = 120;

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp({
    env: {
      LOGIN_MAX_FAILURES_PER_USER: '3',
      LOGIN_MAX_FAILURES_PER_IP: '6',
      LOGIN_FAILURE_WINDOW_SECONDS: String(WINDOW_SECONDS),
    },
  });
  const hash = await hashPassword(PASSWORD);
  await app.t.admin(`INSERT INTO tenants (tenant_id, name) VALUES ('acme', 'Acme'), ('globex', 'Globex')`);
  await app.t.admin(
    `INSERT INTO users (tenant_id, username, password_hash, role, status)
     SELECT t, u, $1, 'tenant_admin', 'active'
     FROM unnest($2::text[]) AS t, unnest($3::text[]) AS u`,
    [hash, ['acme', 'globex'], ['alice', 'bob', 'carol', 'dora', 'erin', 'finn', 'gus', 'hana']],
  );
});
afterAll(async () => {
  await app.close();
});

/** A login from `ip` (the app trusts X-Forwarded-For from loopback, as behind a local proxy). */
function login(ip: string, body: Record<string, unknown>) {
  return app.request('POST', '/auth/login', { body, headers: { 'x-forwarded-for': ip } });
}

const wrong = (tenant: string, username: string) => ({ tenant_id: tenant, username, password: 'nope' });
const right = (tenant: string, username: string) => ({ tenant_id: tenant, username, password: PASSWORD });

function expectThrottled(res: Awaited<ReturnType<typeof login>>, limit: string) {
  expect(res.status).toBe(429);
  expect(res.body.error).toMatchObject({ code: 'RATE_LIMIT_EXCEEDED', details: { limit } });
  const retryAfter = Number(res.headers.get('retry-after'));
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(WINDOW_SECONDS);
}

describe('failed-login throttling', () => {
  it('answers 429 with Retry-After once an account had too many wrong passwords, even for the right one', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await login('10.0.0.1', wrong('acme', 'alice'));
      expect(res.status).toBe(401);
      expect(res.body.error?.code).toBe('UNAUTHORIZED');
    }
    expectThrottled(await login('10.0.0.1', wrong('acme', 'alice')), 'login_failures_per_user');
    // The account is locked from any address, with the right password too.
    expectThrottled(await login('10.0.0.2', right('acme', 'alice')), 'login_failures_per_user');
  });

  it("does not block another user's successful login, nor the same username in another tenant", async () => {
    for (let i = 0; i < 3; i++) expect((await login('10.0.1.1', wrong('acme', 'bob'))).status).toBe(401);
    expectThrottled(await login('10.0.1.1', right('acme', 'bob')), 'login_failures_per_user');
    expect((await login('10.0.1.1', right('acme', 'carol'))).status).toBe(200);
    expect((await login('10.0.1.2', right('globex', 'bob'))).status).toBe(200);
  });

  it('throttles unknown users and tenants the same way, so a 429 reveals no more than the 401', async () => {
    for (const body of [wrong('acme', 'ghost'), wrong('no-such-tenant', 'alice')]) {
      for (let i = 0; i < 3; i++) expect((await login('10.0.2.1', body)).status).toBe(401);
      expectThrottled(await login('10.0.2.1', body), 'login_failures_per_user');
    }
  });

  it('limits failures from one client address across accounts, without locking those accounts elsewhere', async () => {
    const names = ['dora', 'erin', 'finn'];
    // Two failures each: no account reaches its limit of 3, the address reaches its 6.
    for (const name of names) {
      for (let i = 0; i < 2; i++) expect((await login('10.0.3.1', wrong('acme', name))).status).toBe(401);
    }
    expectThrottled(await login('10.0.3.1', right('acme', 'gus')), 'login_failures_per_ip');
    expect((await login('10.0.3.2', right('acme', 'dora'))).status).toBe(200);
  });

  it('does not count successful logins', async () => {
    for (let i = 0; i < 8; i++) expect((await login('10.0.4.1', right('globex', 'hana'))).status).toBe(200);
    expect((await login('10.0.4.1', wrong('globex', 'hana'))).status).toBe(401);
    expect((await login('10.0.4.1', right('globex', 'hana'))).status).toBe(200);
  });

  it('holds the limit against a burst of parallel guesses', async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => login(`10.0.5.${i + 1}`, wrong('globex', 'carol'))),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([401, 401, 401, 429, 429, 429, 429, 429]);
  });

  it('throttles platform-admin logins (no tenant_id) per username as well', async () => {
    for (let i = 0; i < 3; i++) {
      expect((await login('10.0.6.1', { username: 'root', password: 'nope' })).status).toBe(401);
    }
    expectThrottled(
      await login('10.0.6.1', { username: 'root', password: 'nope' }),
      'login_failures_per_user',
    );
    // A tenant user of the same name is another account.
    expect((await login('10.0.6.1', { tenant_id: 'acme', username: 'root', password: 'nope' })).status).toBe(
      401,
    );
  });
});
