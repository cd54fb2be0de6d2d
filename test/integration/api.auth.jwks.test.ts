import { createPrivateKey, generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createLocalJWKSet, jwtVerify, SignJWT } from 'jose';

import { ensureBootstrapAdmin } from '../../src/auth/bootstrap';
import { JWT_AUDIENCE, JWT_ISSUER } from '../../src/auth/tokens';
import { loadConfig } from '../../src/config';
import { startTestApp, type TestApp } from '../support/testApp';

// startTestApp still sets JWT_SECRET: the asymmetric keys must win over it.
const HS_SECRET = 'test-secret-that-is-at-least-32-bytes-long';
const ADMIN_PASSWORD = 'rotation-admin-password';

type Jwk = Record<string, unknown>;
const A: Jwk = {
  ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }),
  kid: 'a-2026',
};
const B: Jwk = { ...generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }), kid: 'b-2026' };
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi'];

const dir = mkdtempSync(join(tmpdir(), 'mh-jwks-it-'));
let file = 0;
/** Writes a key file and starts the app on it, as a deployment restarted with new keys would. */
async function appWith(keys: Jwk[], activeKid: string): Promise<TestApp> {
  const path = join(dir, `keys-${++file}.json`);
  writeFileSync(path, JSON.stringify({ keys }));
  return startTestApp({ env: { JWT_KEYS_FILE: path, JWT_ACTIVE_KID: activeKid } });
}

const opened: TestApp[] = [];
async function open(keys: Jwk[], activeKid: string): Promise<TestApp> {
  const app = await appWith(keys, activeKid);
  opened.push(app);
  return app;
}
afterAll(async () => {
  await Promise.allSettled(opened.map((a) => a.close()));
  rmSync(dir, { recursive: true, force: true });
});

const me = (app: TestApp, token: string) => app.request('GET', '/auth/me', { token });
const headerOf = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as Record<string, unknown>;

function claims() {
  const iat = Math.floor(Date.now() / 1000);
  return {
    sub: 'root',
    role: 'platform_admin',
    jti: `at_${iat}`,
    iss: JWT_ISSUER,
    aud: JWT_AUDIENCE,
    iat,
    exp: iat + 600,
  };
}

describe('access tokens signed with asymmetric keys and kid rotation', () => {
  let tokenA: string;
  let tokenB: string;

  it('signs with key A at login, serves the public JWKS, and refuses HS256 and alg none', async () => {
    const app = await open([A], 'a-2026');
    const config = loadConfig({ NODE_ENV: 'test', MAIHIVE_BOOTSTRAP_ADMIN: `root:${ADMIN_PASSWORD}` });
    await ensureBootstrapAdmin(app.deps.db, config, app.t.logger);
    const login = await app.request('POST', '/auth/login', {
      body: { username: 'root', password: ADMIN_PASSWORD },
    });
    expect(login.status).toBe(200);
    tokenA = login.body.data.access_token as string;
    expect(headerOf(tokenA)).toMatchObject({ alg: 'ES256', kid: 'a-2026' });
    expect((await me(app, tokenA)).status).toBe(200);

    const res = await fetch(`${app.url}/api/v1/auth/jwks.json`);
    expect(res.status).toBe(200);
    const jwks = (await res.json()) as { keys: Jwk[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual(['a-2026']);
    for (const k of jwks.keys) for (const m of PRIVATE_MEMBERS) expect(k).not.toHaveProperty(m);
    // What the endpoint publishes is enough for an outside verifier.
    await expect(
      jwtVerify(tokenA, createLocalJWKSet(jwks as never), { issuer: JWT_ISSUER, audience: JWT_AUDIENCE }),
    ).resolves.toBeDefined();

    const hs = await new SignJWT(claims())
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(HS_SECRET));
    const hsRes = await me(app, hs);
    expect(hsRes.status).toBe(401);
    expect(hsRes.body.error?.code).toBe('UNAUTHORIZED');
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    expect((await me(app, `${b64({ alg: 'none', kid: 'a-2026' })}.${b64(claims())}.`)).status).toBe(401);
  });

  it('after rotating to key B, keeps accepting tokens of A while A is in the file', async () => {
    const app = await open([A, B], 'b-2026');
    tokenB = await app.tokenFor({ role: 'platform_admin', sub: 'root' });
    expect(headerOf(tokenB)).toMatchObject({ alg: 'EdDSA', kid: 'b-2026' });
    expect((await me(app, tokenA)).status).toBe(200);
    expect((await me(app, tokenB)).status).toBe(200);
    const jwks = (await (await fetch(`${app.url}/api/v1/auth/jwks.json`)).json()) as { keys: Jwk[] };
    expect(jwks.keys.map((k) => [k.kid, k.alg])).toEqual([
      ['a-2026', 'ES256'],
      ['b-2026', 'EdDSA'],
    ]);
  });

  it('answers 401 for a tampered token and for a kid it does not know', async () => {
    const app = await open([A, B], 'b-2026');
    const [header, payload, signature] = tokenB.split('.') as [string, string, string];
    const body = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const tampered = `${header}.${Buffer.from(JSON.stringify({ ...body, sub: 'mallory' })).toString('base64url')}.${signature}`;
    expect((await me(app, tampered)).status).toBe(401);

    const C = {
      ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }),
      kid: 'c-2026',
    };
    const sign = (kid: string) =>
      new SignJWT(claims())
        .setProtectedHeader({ alg: 'ES256', kid })
        .sign(createPrivateKey({ key: C as JsonWebKey, format: 'jwk' }));
    expect((await me(app, await sign('c-2026'))).status).toBe(401);
    // A foreign key claiming A's kid does not pass either.
    expect((await me(app, await sign('a-2026'))).status).toBe(401);
  });

  it('stops accepting tokens of A once A is removed from the file', async () => {
    const app = await open([B], 'b-2026');
    const res = await me(app, tokenA);
    expect(res.status).toBe(401);
    expect(res.body.error?.code).toBe('UNAUTHORIZED');
    expect((await me(app, tokenB)).status).toBe(200);
  });
});

describe('the JWKS endpoint in HS256 mode', () => {
  it('publishes no keys (the shared secret is never public)', async () => {
    const app = await startTestApp();
    opened.push(app);
    const res = await fetch(`${app.url}/api/v1/auth/jwks.json`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ keys: [] });
    expect(JSON.stringify(await (await fetch(`${app.url}/api/v1/openapi.json`)).json())).toContain(
      '/api/v1/auth/jwks.json',
    );
  });
});
