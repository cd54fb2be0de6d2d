import { SignJWT } from 'jose';

import { ensureBootstrapAdmin } from '../../src/auth/bootstrap';
import { hashPassword } from '../../src/auth/passwords';
import { hashSecret, JWT_AUDIENCE, JWT_ISSUER, parseOpaqueSecret } from '../../src/auth/tokens';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { startTestApp, type TestApp } from '../support/testApp';

const PASSWORD = 'correct horse battery staple';
const ADMIN_PASSWORD = 'platform:admin:pw';
const JWT_SECRET = 'test-secret-that-is-at-least-32-bytes-long';

let app: TestApp;
/** Added to the real time: lets a test move the app's clock forward. */
let offsetMs = 0;

interface SessionData {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
  tenant_info: { tenant_id: string | null; name: string | null; permissions: string[] };
}

beforeAll(async () => {
  app = await startTestApp({ clock: { now: () => Date.now() + offsetMs } });
  const hash = await hashPassword(PASSWORD);
  await app.t.admin(
    `INSERT INTO tenants (tenant_id, name) VALUES ('acme', 'Acme Corp'), ('globex', 'Globex'), ('frozen', 'Frozen')`,
  );
  await app.t.admin(
    `INSERT INTO agents (tenant_id, agent_id, name) VALUES ('acme', 'bot1', 'Bot one'), ('globex', 'gbot', 'G bot')`,
  );
  await app.t.admin(
    `INSERT INTO users (tenant_id, username, password_hash, role, status) VALUES
       ('acme', 'alice', $1, 'tenant_admin', 'active'),
       ('acme', 'rita', $1, 'reader', 'active'),
       ('acme', 'dave', $1, 'tenant_admin', 'disabled'),
       ('globex', 'gina', $1, 'tenant_admin', 'active'),
       ('frozen', 'sam', $1, 'tenant_admin', 'active')`,
    [hash],
  );
  // The platform admin comes from the bootstrap path, as in production.
  const config = loadConfig({ NODE_ENV: 'test', MAIHIVE_BOOTSTRAP_ADMIN: `root:${ADMIN_PASSWORD}` });
  await ensureBootstrapAdmin(app.deps.db, config, app.t.logger);
});
afterAll(async () => {
  await app.close();
});
afterEach(() => {
  offsetMs = 0;
});

async function login(body: Record<string, unknown>) {
  return app.request('POST', '/auth/login', { body });
}

async function session(tenantId: string | undefined, username: string, password = PASSWORD) {
  const res = await login(
    tenantId === undefined ? { username, password } : { tenant_id: tenantId, username, password },
  );
  expect(res.status).toBe(200);
  return res.body.data as unknown as SessionData;
}

async function refresh(refreshToken: string) {
  return app.request('POST', '/auth/refresh', { body: { refresh_token: refreshToken } });
}

async function me(credential: { token?: string; apiKey?: string }) {
  return app.request('GET', '/auth/me', credential);
}

async function platformToken(): Promise<string> {
  return (await session(undefined, 'root', ADMIN_PASSWORD)).access_token;
}

describe('POST /auth/login', () => {
  it('logs a tenant user in and returns a Bearer pair with tenant_info', async () => {
    const s = await session('acme', 'alice');
    expect(s).toMatchObject({
      token_type: 'Bearer',
      expires_in: 3600,
      tenant_info: {
        tenant_id: 'acme',
        name: 'Acme Corp',
        permissions: expect.arrayContaining(['tenant:admin']) as unknown,
      },
    });
    expect(s.refresh_token).toMatch(/^mhr\./);
    const who = await me({ token: s.access_token });
    expect(who.status).toBe(200);
    expect(who.body.data).toMatchObject({
      kind: 'user',
      username: 'alice',
      role: 'tenant_admin',
      tenant_id: 'acme',
    });
    const { rows } = await app.t.admin<{ last_login_at: Date | null }>(
      `SELECT last_login_at FROM users WHERE tenant_id = 'acme' AND username = 'alice'`,
    );
    expect(rows[0]?.last_login_at).toBeInstanceOf(Date);
  });

  it('logs a platform admin in when no tenant_id is given', async () => {
    const s = await session(undefined, 'root', ADMIN_PASSWORD);
    expect(s.tenant_info).toMatchObject({
      tenant_id: null,
      permissions: expect.arrayContaining(['platform:admin']) as unknown,
    });
    const who = await me({ token: s.access_token });
    expect(who.body.data).toMatchObject({ kind: 'platform_admin', role: 'platform_admin', tenant_id: null });
    const { rows } = await app.t.admin<{ last_login_at: Date | null }>(
      `SELECT last_login_at FROM platform_users WHERE username = 'root'`,
    );
    expect(rows[0]?.last_login_at).toBeInstanceOf(Date);
  });

  it('answers wrong password, unknown user, unknown tenant, disabled user and suspended tenant with the same 401 body', async () => {
    await app.t.admin(
      `INSERT INTO tenants (tenant_id, name, status) VALUES ('parked', 'Parked', 'suspended')`,
    );
    await app.t.admin(
      `INSERT INTO users (tenant_id, username, password_hash, role)
       SELECT 'parked', 'pat', password_hash, role FROM users WHERE tenant_id = 'acme' AND username = 'alice'`,
    );
    const attempts = [
      { tenant_id: 'acme', username: 'alice', password: 'wrong password' },
      { tenant_id: 'acme', username: 'nobody', password: PASSWORD },
      { tenant_id: 'no-such-tenant', username: 'alice', password: PASSWORD },
      { tenant_id: 'acme', username: 'dave', password: PASSWORD },
      { tenant_id: 'parked', username: 'pat', password: PASSWORD },
      { tenant_id: 'globex', username: 'alice', password: PASSWORD },
      { username: 'alice', password: PASSWORD },
      { username: 'root', password: 'wrong password' },
    ];
    const responses = await Promise.all(attempts.map((a) => login(a)));
    for (const res of responses) {
      expect(res.status).toBe(401);
      expect(res.body.error).toEqual(responses[0]!.body.error);
    }
    expect(responses[0]!.body.error?.code).toBe('UNAUTHORIZED');
  }, 90_000);

  it('spends about as long on an unknown user as on a wrong password', async () => {
    const timed = async (body: Record<string, unknown>) => {
      const start = process.hrtime.bigint();
      const res = await login(body);
      expect(res.status).toBe(401);
      return Number(process.hrtime.bigint() - start) / 1e6;
    };
    const wrong: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 3; i++) {
      wrong.push(await timed({ tenant_id: 'acme', username: 'alice', password: 'nope' }));
      unknown.push(await timed({ tenant_id: 'acme', username: `ghost${i}`, password: 'nope' }));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[1]!;
    // Without the decoy verification an unknown user answers in a few ms, against hundreds for scrypt.
    expect(median(unknown)).toBeGreaterThan(median(wrong) * 0.3);
  }, 90_000);

  it('rejects malformed bodies with 400 listing every field', async () => {
    const res = await login({ tenant_id: 'bad tenant!', password: '', extra: 1 });
    expect(res.status).toBe(400);
    const paths = (res.body.error?.details?.fields as { path: string }[]).map((f) => f.path).sort();
    expect(paths).toEqual(expect.arrayContaining(['body', 'password', 'tenant_id', 'username']));
  });
});

describe('access tokens', () => {
  const forge = (payload: Record<string, unknown>, secret = JWT_SECRET) =>
    new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));
  const now = () => Math.floor(Date.now() / 1000);
  const goodClaims = () => ({
    sub: 'alice',
    role: 'tenant_admin',
    tenant_id: 'acme',
    jti: 'at_forged',
    iss: JWT_ISSUER,
    aud: JWT_AUDIENCE,
    iat: now(),
    exp: now() + 600,
  });

  it('accepts a correctly signed token (the control for the cases below)', async () => {
    expect((await me({ token: await forge(goodClaims()) })).status).toBe(200);
  });

  it('rejects an invalid token with 401', async () => {
    const res = await me({ token: 'not.a.jwt' });
    expect(res.status).toBe(401);
    expect(res.body.error?.code).toBe('UNAUTHORIZED');
  });

  it('rejects an expired token', async () => {
    const { access_token } = await session('acme', 'alice');
    expect((await me({ token: access_token })).status).toBe(200);
    offsetMs = 3601 * 1000;
    expect((await me({ token: access_token })).status).toBe(401);
  });

  it('rejects a token signed with alg none', async () => {
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(goodClaims())}.`;
    expect((await me({ token })).status).toBe(401);
  });

  it('rejects a token signed with another secret', async () => {
    const token = await forge(goodClaims(), 'some-other-secret-that-is-32-bytes-long');
    expect((await me({ token })).status).toBe(401);
  });

  it('rejects a token without exp', async () => {
    const { exp: _exp, ...claims } = goodClaims();
    expect((await me({ token: await forge(claims) })).status).toBe(401);
  });
});

describe('refresh tokens', () => {
  it('rotates: the new pair works and the spent refresh token is marked used', async () => {
    const first = await session('acme', 'alice');
    const res = await refresh(first.refresh_token);
    expect(res.status).toBe(200);
    const second = res.body.data as unknown as SessionData;
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(second.tenant_info).toMatchObject({ tenant_id: 'acme', name: 'Acme Corp' });
    expect((await me({ token: second.access_token })).status).toBe(200);
    const firstId = parseOpaqueSecret('mhr', first.refresh_token)!.id;
    const secondId = parseOpaqueSecret('mhr', second.refresh_token)!.id;
    const { rows } = await app.t.admin<{ token_id: string; family_id: string; used_at: Date | null }>(
      `SELECT token_id, family_id, used_at FROM refresh_tokens WHERE token_id = ANY($1) ORDER BY token_id`,
      [[firstId, secondId]],
    );
    expect(rows).toHaveLength(2);
    expect(rows[0]!.family_id).toBe(rows[1]!.family_id);
    expect(rows.find((r) => r.token_id === firstId)?.used_at).toBeInstanceOf(Date);
    expect(rows.find((r) => r.token_id === secondId)?.used_at).toBeNull();
  });

  it('stores only a hash of the refresh token secret', async () => {
    const s = await session('acme', 'alice');
    const parsed = parseOpaqueSecret('mhr', s.refresh_token)!;
    const { rows } = await app.t.admin<{ token_hash: Buffer }>(
      'SELECT token_hash FROM refresh_tokens WHERE token_id = $1',
      [parsed.id],
    );
    expect(rows[0]?.token_hash).toEqual(hashSecret(parsed.secret));
  });

  it('revokes the whole family when a spent refresh token is presented again', async () => {
    const first = await session('acme', 'alice');
    const second = (await refresh(first.refresh_token)).body.data as unknown as SessionData;
    const reuse = await refresh(first.refresh_token);
    expect(reuse.status).toBe(401);
    // The newer refresh token and every access token of the family are dead too.
    expect((await refresh(second.refresh_token)).status).toBe(401);
    expect((await me({ token: second.access_token })).status).toBe(401);
    expect((await me({ token: first.access_token })).status).toBe(401);
    const { rows } = await app.t.admin<{ live: string }>(
      `SELECT count(*) FILTER (WHERE revoked_at IS NULL) AS live FROM refresh_tokens WHERE token_id = ANY($1)`,
      [
        [
          parseOpaqueSecret('mhr', first.refresh_token)!.id,
          parseOpaqueSecret('mhr', second.refresh_token)!.id,
        ],
      ],
    );
    expect(rows[0]?.live).toBe('0');
    // Another session of the same user is untouched.
    const other = await session('acme', 'alice');
    expect((await refresh(other.refresh_token)).status).toBe(200);
  });

  it('refuses a tampered or unknown refresh token without harming the real one', async () => {
    const s = await session('acme', 'alice');
    const parsed = parseOpaqueSecret('mhr', s.refresh_token)!;
    const tampered = s.refresh_token.replace(parsed.secret, `${parsed.secret.slice(0, -2)}AA`);
    expect((await refresh(tampered)).status).toBe(401);
    expect((await refresh('mhr.garbage')).status).toBe(401);
    expect((await refresh(s.refresh_token.replace(parsed.id, 'rt_unknown'))).status).toBe(401);
    expect((await refresh(s.refresh_token)).status).toBe(200);
  });

  it('refuses an expired refresh token', async () => {
    const s = await session('acme', 'alice');
    offsetMs = (app.deps.config.refreshTokenTtlSeconds + 10) * 1000;
    expect((await refresh(s.refresh_token)).status).toBe(401);
  });

  it('refuses to refresh for a user who was disabled since login', async () => {
    const hash = await app.t.admin<{ password_hash: string }>(
      `SELECT password_hash FROM users WHERE tenant_id = 'acme' AND username = 'alice'`,
    );
    await app.t.admin(
      `INSERT INTO users (tenant_id, username, password_hash, role) VALUES ('acme', 'leaver', $1, 'operator')`,
      [hash.rows[0]!.password_hash],
    );
    const s = await session('acme', 'leaver');
    await app.t.admin(
      `UPDATE users SET status = 'disabled' WHERE tenant_id = 'acme' AND username = 'leaver'`,
    );
    expect((await refresh(s.refresh_token)).status).toBe(401);
  });

  it('rotates and revokes a platform admin family the same way', async () => {
    const first = await session(undefined, 'root', ADMIN_PASSWORD);
    expect(first.refresh_token.split('.')[1]).toBe(Buffer.from('*').toString('base64url'));
    const second = (await refresh(first.refresh_token)).body.data as unknown as SessionData;
    expect((await me({ token: second.access_token })).body.data).toMatchObject({ role: 'platform_admin' });
    expect((await refresh(first.refresh_token)).status).toBe(401);
    expect((await refresh(second.refresh_token)).status).toBe(401);
    expect((await me({ token: second.access_token })).status).toBe(401);
  });
});

describe('POST /auth/logout', () => {
  it('revokes the access token and its refresh family at once', async () => {
    const s = await session('acme', 'alice');
    const other = await session('acme', 'alice');
    const res = await app.request('POST', '/auth/logout', { token: s.access_token });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ logged_out: true, refresh_family_revoked: true });
    expect((await me({ token: s.access_token })).status).toBe(401);
    expect((await refresh(s.refresh_token)).status).toBe(401);
    // Only that session ends.
    expect((await me({ token: other.access_token })).status).toBe(200);
  });

  it('logs a platform admin out as well', async () => {
    const s = await session(undefined, 'root', ADMIN_PASSWORD);
    expect((await app.request('POST', '/auth/logout', { token: s.access_token })).status).toBe(200);
    expect((await me({ token: s.access_token })).status).toBe(401);
    expect((await refresh(s.refresh_token)).status).toBe(401);
  });

  it('needs credentials', async () => {
    expect((await app.request('POST', '/auth/logout')).status).toBe(401);
  });

  it('refuses to log out an API key, which is revoked through its own endpoint', async () => {
    const alice = (await session('acme', 'alice')).access_token;
    const key = await app.request('POST', '/auth/api-keys', {
      token: alice,
      body: { name: 'logout-probe', role: 'reader' },
    });
    const apiKey = key.body.data.api_key as string;
    const res = await app.request('POST', '/auth/logout', { apiKey });
    expect(res.status).toBe(400);
    expect((await me({ apiKey })).status).toBe(200);
  });
});

describe('GET /auth/me', () => {
  it('shows identity, role, tenant, agent and permissions', async () => {
    const { access_token } = await session('acme', 'rita');
    const res = await me({ token: access_token });
    expect(res.body.data).toEqual({
      kind: 'user',
      subject: 'rita',
      username: 'rita',
      key_id: null,
      role: 'reader',
      tenant_id: 'acme',
      tenant: { tenant_id: 'acme', name: 'Acme Corp', status: 'active' },
      agent_id: null,
      permissions: ['read'],
      expires_at: expect.any(String) as unknown,
    });
  });

  it('needs credentials', async () => {
    expect((await app.request('GET', '/auth/me')).status).toBe(401);
  });
});

describe('API keys', () => {
  let adminToken: string;
  beforeAll(async () => {
    adminToken = (await session('acme', 'alice')).access_token;
  });

  const createKey = (
    body: Record<string, unknown>,
    token = adminToken,
    headers: Record<string, string> = {},
  ) => app.request('POST', '/auth/api-keys', { token, body, headers });

  it('creates, lists (without secrets), uses and revokes a key, effective immediately', async () => {
    const created = await createKey({ name: 'ci', role: 'operator' });
    expect(created.status).toBe(201);
    const { key_id, api_key } = created.body.data as { key_id: string; api_key: string };
    expect(key_id).toMatch(/^key_/);
    expect(api_key).toMatch(/^mhk\./);
    expect(created.body.data).toMatchObject({
      name: 'ci',
      role: 'operator',
      tenant_id: 'acme',
      status: 'active',
    });

    const stored = await app.t.admin<{ key_hash: Buffer }>(
      'SELECT key_hash FROM api_keys WHERE key_id = $1',
      [key_id],
    );
    expect(stored.rows[0]?.key_hash).toEqual(hashSecret(parseOpaqueSecret('mhk', api_key)!.secret));

    const list = await app.request('GET', '/auth/api-keys', { token: adminToken });
    expect(list.status).toBe(200);
    const keys = list.body.data.api_keys as Record<string, unknown>[];
    const listed = keys.find((k) => k.key_id === key_id);
    expect(listed).toMatchObject({ name: 'ci', status: 'active' });
    expect(listed).not.toHaveProperty('api_key');
    expect(listed).not.toHaveProperty('key_hash');
    expect(JSON.stringify(list.body)).not.toContain(parseOpaqueSecret('mhk', api_key)!.secret);
    expect(list.body.data.pagination).toMatchObject({ page: 1, limit: 20, total: keys.length });

    const used = await me({ apiKey: api_key });
    expect(used.status).toBe(200);
    expect(used.body.data).toMatchObject({ kind: 'api_key', key_id, role: 'operator', tenant_id: 'acme' });

    const revoked = await app.request('DELETE', `/auth/api-keys/${key_id}`, { token: adminToken });
    expect(revoked.status).toBe(200);
    expect(revoked.body.data).toMatchObject({ key_id, status: 'revoked' });
    expect((await me({ apiKey: api_key })).status).toBe(401);
  });

  it('records last_used_at when a key authenticates, at most once a minute, and lists it', async () => {
    const created = await createKey({ name: 'adapter', role: 'operator' });
    const { key_id, api_key } = created.body.data as { key_id: string; api_key: string };
    expect(created.body.data).toMatchObject({ last_used_at: null });
    const lastUsed = async () =>
      (
        await app.t.admin<{ at: Date | null }>('SELECT last_used_at AS at FROM api_keys WHERE key_id = $1', [
          key_id,
        ])
      ).rows[0]?.at ?? null;
    const listed = async () => {
      const list = await app.request('GET', '/auth/api-keys?limit=100', { token: adminToken });
      return (list.body.data.api_keys as { key_id: string; last_used_at: string | null }[]).find(
        (k) => k.key_id === key_id,
      )?.last_used_at;
    };
    expect(await listed()).toBeNull();

    const before = Date.now();
    expect((await me({ apiKey: api_key })).status).toBe(200);
    const first = await lastUsed();
    expect(first).not.toBeNull();
    expect(first!.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(await listed()).toBe(first!.toISOString());

    // Within the minute: authenticated every time, written none of them.
    offsetMs = 30_000;
    for (let i = 0; i < 5; i++) expect((await me({ apiKey: api_key })).status).toBe(200);
    expect(await lastUsed()).toEqual(first);

    // A minute on, the next use is recorded again.
    offsetMs = 61_000;
    expect((await me({ apiKey: api_key })).status).toBe(200);
    const second = await lastUsed();
    expect(second!.getTime() - first!.getTime()).toBeGreaterThanOrEqual(60_000);
    expect(await listed()).toBe(second!.toISOString());

    // A wrong secret for the same key id is refused and records nothing.
    offsetMs = 200_000;
    const forged = `${api_key.slice(0, api_key.lastIndexOf('.'))}.${'A'.repeat(43)}`;
    expect((await me({ apiKey: forged })).status).toBe(401);
    expect(await lastUsed()).toEqual(second);
  });

  it('refuses a key after its expires_at', async () => {
    const expiresAt = new Date(Date.now() + 60_000).toISOString();
    const created = await createKey({ name: 'short-lived', role: 'reader', expires_at: expiresAt });
    expect(created.status).toBe(201);
    const apiKey = created.body.data.api_key as string;
    expect((await me({ apiKey })).status).toBe(200);
    offsetMs = 61_000;
    expect((await me({ apiKey })).status).toBe(401);
  });

  it('rejects an expires_at in the past and unknown fields', async () => {
    const past = await createKey({ name: 'x', role: 'reader', expires_at: '2001-01-01T00:00:00Z' });
    expect(past.status).toBe(400);
    const unknown = await createKey({ name: 'x', role: 'reader', secret: 'mine' });
    expect(unknown.status).toBe(400);
    expect(JSON.stringify(unknown.body.error?.details)).toContain('secret');
  });

  it('binds an agent key to its agent', async () => {
    const created = await createKey({ name: 'adapter', role: 'agent', agent_id: 'bot1' });
    expect(created.status).toBe(201);
    expect(created.body.data).toMatchObject({ role: 'agent', agent_id: 'bot1' });
    const res = await me({ apiKey: created.body.data.api_key as string });
    expect(res.body.data).toMatchObject({
      kind: 'api_key',
      role: 'agent',
      agent_id: 'bot1',
      tenant_id: 'acme',
    });
  });

  it('requires agent_id for role agent and an agent of the own tenant', async () => {
    const missing = await createKey({ name: 'adapter', role: 'agent' });
    expect(missing.status).toBe(400);
    expect(missing.body.error?.details?.fields).toEqual([
      { path: 'agent_id', issue: 'required for role agent' },
    ]);
    const unknown = await createKey({ name: 'adapter', role: 'agent', agent_id: 'no-such-agent' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error?.code).toBe('AGENT_NOT_FOUND');
    // globex's agent exists, but not in acme.
    const foreign = await createKey({ name: 'adapter', role: 'agent', agent_id: 'gbot' });
    expect(foreign.status).toBe(404);
    expect(foreign.body.error?.code).toBe('AGENT_NOT_FOUND');
  });

  it('forbids readers and agent keys to manage keys', async () => {
    const reader = (await session('acme', 'rita')).access_token;
    const res = await createKey({ name: 'x', role: 'reader' }, reader);
    expect(res.status).toBe(403);
    expect(res.body.error?.code).toBe('FORBIDDEN');
    expect((await app.request('GET', '/auth/api-keys', { token: reader })).status).toBe(403);
    const agentKey = (await createKey({ name: 'adapter', role: 'agent', agent_id: 'bot1' })).body.data
      .api_key as string;
    expect((await app.request('GET', '/auth/api-keys', { apiKey: agentKey })).status).toBe(403);
  });

  it('refuses a tenant admin naming another tenant with X-Tenant-ID', async () => {
    const res = await createKey({ name: 'x', role: 'reader' }, adminToken, { 'x-tenant-id': 'globex' });
    expect(res.status).toBe(403);
    expect(res.body.error?.code).toBe('ISOLATION_VIOLATION');
    const list = await app.request('GET', '/auth/api-keys', {
      token: adminToken,
      headers: { 'x-tenant-id': 'globex' },
    });
    expect(list.status).toBe(403);
    expect(list.body.error?.code).toBe('ISOLATION_VIOLATION');
    // Naming the own tenant is fine.
    expect(
      (await createKey({ name: 'x', role: 'reader' }, adminToken, { 'x-tenant-id': 'acme' })).status,
    ).toBe(201);
  });

  it('lets a platform admin manage the keys of the tenant named by X-Tenant-ID', async () => {
    const root = await platformToken();
    const created = await createKey({ name: 'ops', role: 'tenant_admin' }, root, { 'x-tenant-id': 'globex' });
    expect(created.status).toBe(201);
    expect(created.body.data).toMatchObject({ tenant_id: 'globex', created_by: 'root' });
    expect((await me({ apiKey: created.body.data.api_key as string })).body.data).toMatchObject({
      tenant_id: 'globex',
      role: 'tenant_admin',
    });
    const noTenant = await createKey({ name: 'ops', role: 'reader' }, root);
    expect(noTenant.status).toBe(400);
    const ghost = await createKey({ name: 'ops', role: 'reader' }, root, { 'x-tenant-id': 'no-such-tenant' });
    expect(ghost.status).toBe(404);
    expect(ghost.body.error?.code).toBe('TENANT_NOT_FOUND');
  });

  it("answers 404 for an unknown key and for another tenant's key, which keeps working", async () => {
    expect((await app.request('DELETE', '/auth/api-keys/key_nope', { token: adminToken })).status).toBe(404);
    const created = await createKey({ name: 'mine', role: 'reader' });
    const { key_id, api_key } = created.body.data as { key_id: string; api_key: string };
    const globexAdmin = (await session('globex', 'gina')).access_token;
    const res = await app.request('DELETE', `/auth/api-keys/${key_id}`, { token: globexAdmin });
    expect(res.status).toBe(404);
    expect(res.body.error?.code).toBe('NOT_FOUND');
    expect((await me({ apiKey: api_key })).status).toBe(200);
    const globexList = await app.request('GET', '/auth/api-keys', { token: globexAdmin });
    expect((globexList.body.data.api_keys as { key_id: string }[]).map((k) => k.key_id)).not.toContain(
      key_id,
    );
  });

  it('refuses a key whose secret was altered', async () => {
    const created = await createKey({ name: 'x', role: 'reader' });
    const apiKey = created.body.data.api_key as string;
    expect((await me({ apiKey: `${apiKey.slice(0, -2)}AA` })).status).toBe(401);
  });
});

describe('suspended tenants', () => {
  it("stops the tenant's tokens, refresh tokens, API keys and logins", async () => {
    const s = await session('frozen', 'sam');
    const key = await app.request('POST', '/auth/api-keys', {
      token: s.access_token,
      body: { name: 'k', role: 'reader' },
    });
    const apiKey = key.body.data.api_key as string;
    expect((await me({ token: s.access_token })).status).toBe(200);
    expect((await me({ apiKey })).status).toBe(200);

    await app.t.admin(`UPDATE tenants SET status = 'suspended' WHERE tenant_id = 'frozen'`);
    await app.deps.tenants.invalidate('frozen');

    expect((await me({ token: s.access_token })).status).toBe(401);
    expect((await me({ apiKey })).status).toBe(401);
    expect((await refresh(s.refresh_token)).status).toBe(401);
    expect((await login({ tenant_id: 'frozen', username: 'sam', password: PASSWORD })).status).toBe(401);
    // Other tenants are untouched.
    expect((await me({ token: await app.tokenFor({ role: 'tenant_admin', tenantId: 'acme' }) })).status).toBe(
      200,
    );
  });
});

describe('bootstrap admin', () => {
  it('creates the platform admin once and leaves an existing one alone', async () => {
    const config = loadConfig({ NODE_ENV: 'test', MAIHIVE_BOOTSTRAP_ADMIN: 'boot:first-password' });
    expect(await ensureBootstrapAdmin(app.deps.db, config, app.t.logger)).toBe(true);
    const again = loadConfig({ NODE_ENV: 'test', MAIHIVE_BOOTSTRAP_ADMIN: 'boot:second-password' });
    const lines: { level: number; msg: string; username?: string }[] = [];
    const captured = createLogger({
      level: 'debug',
      destination: { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) },
    });
    expect(await ensureBootstrapAdmin(app.deps.db, again, captured)).toBe(false);
    // A conflict is said at warn, with what to do; the password is not in it.
    const warned = lines.filter((l) => l.level === 40);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ username: 'boot' });
    expect(warned[0]!.msg).toMatch(
      /different password.*stored password is kept.*remove MAIHIVE_BOOTSTRAP_ADMIN/,
    );
    expect(JSON.stringify(lines)).not.toContain('second-password');
    // The same password again is no conflict.
    lines.length = 0;
    expect(await ensureBootstrapAdmin(app.deps.db, config, captured)).toBe(false);
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
    const { rows } = await app.t.admin(`SELECT username FROM platform_users WHERE username = 'boot'`);
    expect(rows).toHaveLength(1);
    expect((await login({ username: 'boot', password: 'first-password' })).status).toBe(200);
    expect((await login({ username: 'boot', password: 'second-password' })).status).toBe(401);
  }, 90_000);

  it('does nothing without MAIHIVE_BOOTSTRAP_ADMIN', async () => {
    expect(await ensureBootstrapAdmin(app.deps.db, loadConfig({ NODE_ENV: 'test' }), app.t.logger)).toBe(
      false,
    );
  });
});
